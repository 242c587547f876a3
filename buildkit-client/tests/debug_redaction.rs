//! `Debug` output of every public type that holds a credential shows that a
//! credential is there, never its value.

use cicd_agents_buildkit::build::BuildOptions;
use cicd_agents_buildkit::session::auth::Credentials;
use cicd_agents_buildkit::{RegistryAuth, Secret, TlsOptions};

const PASSWORD: &str = "registry-password-5b1e";
const TOKEN: &str = "git-token-c9d4";
const BUILD_SECRET: &str = "build-secret-0a7f";

fn assert_redacted(what: &str, debug: &str) {
    for value in [PASSWORD, TOKEN, BUILD_SECRET] {
        assert!(!debug.contains(value), "{what} shows a secret: {debug}");
    }
}

#[test]
fn credentials() {
    let credentials = Credentials {
        username: "ci".into(),
        secret: PASSWORD.to_string().into(),
    };
    let debug = format!("{credentials:?}");
    assert_redacted("Credentials", &debug);
    assert!(
        debug.contains("ci") && debug.contains("redacted"),
        "{debug}"
    );
    assert_redacted("Credentials (pretty)", &format!("{credentials:#?}"));
}

#[test]
fn registry_auth() {
    let auth = RegistryAuth::docker_config().with_credentials("registry.example", "ci", PASSWORD);
    let debug = format!("{auth:?} {auth:#?}");
    assert_redacted("RegistryAuth", &debug);
    assert!(debug.contains("registry.example"), "{debug}");
}

#[test]
fn secrets() {
    let secret = Secret::value("npmrc", BUILD_SECRET);
    let debug = format!("{secret:?} {secret:#?}");
    assert_redacted("Secret", &debug);
    assert!(debug.contains("npmrc"), "the ID is shown: {debug}");
}

#[test]
fn build_options_with_every_kind_of_credential() {
    let options = BuildOptions::remote("https://git.example/org/app.git#main")
        .secret(Secret::value("npmrc", BUILD_SECRET))
        .git_auth_token("git.example", TOKEN)
        .registry_auth(RegistryAuth::anonymous().with_credentials(
            "registry.example",
            "ci",
            PASSWORD,
        ));
    let debug = format!("{options:?} {options:#?}");
    assert_redacted("BuildOptions", &debug);
    assert!(
        debug.contains("git.example") && debug.contains("npmrc"),
        "{debug}"
    );
}

#[test]
fn tls_options_hold_paths_only() {
    let tls = TlsOptions::default()
        .ca_cert("/etc/ca.pem")
        .client_cert("/etc/cert.pem", "/etc/key.pem");
    let debug = format!("{tls:?}");
    assert!(
        debug.contains("/etc/key.pem") && debug.contains("insecure_skip_verify: false"),
        "{debug}"
    );
}
