//! Secrets never leak: a build secret, a registry password and a git token
//! (and wrong ones, for the failures) are used in real builds against the
//! test environment's BuildKit, with every diagnostic captured:
//!
//! * the library's `tracing` output at TRACE level (all crates);
//! * progress rendered as plain text and as rawjson;
//! * error messages and `Debug` output of errors, options and results;
//! * the command line's stdout and stderr at `--log-level trace`, plain and
//!   rawjson progress;
//! * the pushed image as the registry holds it: index, manifests, config
//!   (history), uncompressed layers and the max-mode provenance attestation.
//!
//! Each secret value is then looked for in all of it.

use std::io::Write;
use std::path::Path;
use std::process::Output as ProcessOutput;
use std::sync::{Arc, Mutex};

use cicd_agents_buildkit::build::Output;
use cicd_agents_buildkit::flags::NetworkMode;
use cicd_agents_buildkit::progress::{PlainRenderer, ProgressSink, RawJsonRenderer, StatusUpdate};
use cicd_agents_buildkit::{BuildOptions, Client, RegistryAuth, Secret};
use cicd_agents_testenv::{cli, unique_name, write_context, RegistryReader, TestEnv};

/// A shared, growable text buffer usable as an `io::Write`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn push_str(&self, text: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(text.as_bytes());
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(b'\n');
    }
}

/// Renders every update both as plain text and as rawjson.
struct BothRenderers {
    plain: PlainRenderer<Captured>,
    raw: RawJsonRenderer<Captured>,
}

impl BothRenderers {
    fn new(out: &Captured) -> Self {
        BothRenderers {
            plain: PlainRenderer::new(out.clone()),
            raw: RawJsonRenderer::new(out.clone()),
        }
    }
}

impl ProgressSink for BothRenderers {
    fn update(&mut self, update: &StatusUpdate) {
        self.plain.update(update);
        self.raw.update(update);
    }
    fn idle(&mut self) {
        self.plain.idle();
    }
    fn finish(&mut self) {
        self.plain.finish();
        self.raw.finish();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Fails naming the secret's role and where it was found, with the line
/// around it (the value itself is masked in the message).
fn assert_absent(what: &str, haystack: &[u8], secrets: &[(&str, String)]) {
    for (role, value) in secrets {
        if let Some(at) = haystack
            .windows(value.len())
            .position(|w| w == value.as_bytes())
        {
            let start = at.saturating_sub(120);
            let end = (at + value.len() + 120).min(haystack.len());
            let context =
                String::from_utf8_lossy(&haystack[start..end]).replace(value.as_str(), "<SECRET>");
            panic!("the {role} appears in {what}: …{context}…");
        }
    }
}

fn git_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_progress_errors_debug_output_or_the_image() {
    let env = TestEnv::required();
    // Everything every crate logs, at TRACE, into a buffer.
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only tracing subscriber of this test binary");

    let marker = env.unique_name("leak");
    let build_secret = format!("build-secret-{marker}");
    let wrong_password = format!("wrong-password-{marker}");
    let wrong_token = format!("wrong-token-{marker}");
    let secrets = [
        ("build secret", build_secret.clone()),
        ("registry password", env.auth_password.clone()),
        ("git token", env.git_token.clone()),
        ("wrong registry password", wrong_password.clone()),
        ("wrong git token", wrong_token.clone()),
    ];
    let progress = Captured::default();
    let text = Captured::default(); // errors, Debug output
    let client = Client::connect(&env.docker_addr).await.expect("connect");

    // 1. A build that uses the secret, pushed to the registry that needs a
    //    login, with uncompressed layers and a max-mode provenance.
    let context = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {base}\n\
         RUN --mount=type=secret,id=token,required=true test -s /run/secrets/token && echo built-{marker} > /built\n\
         RUN --mount=type=secret,id=token test -n \"$(cat /run/secrets/token)\" && echo second > /second\n",
        base = env.base_image
    );
    write_context(context.path(), [("Dockerfile", dockerfile.as_str())]).unwrap();
    let repo = format!("leaks/{}", marker.to_lowercase());
    let image = format!("{}/{repo}:1", env.auth_registry);
    let auth = RegistryAuth::anonymous().with_credentials(
        &env.auth_registry,
        &env.auth_user,
        &env.auth_password,
    );
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .secret(Secret::value("token", build_secret.clone()))
        .frontend_attr("attest:provenance", "mode=max")
        .registry_auth(auth.clone())
        .output(Output::new(
            "image",
            [
                ("name".to_string(), image.clone()),
                ("push".to_string(), "true".to_string()),
                ("compression".to_string(), "uncompressed".to_string()),
                ("force-compression".to_string(), "true".to_string()),
            ],
        ));
    text.push_str(&format!("{options:?}"));
    let mut sink = BothRenderers::new(&progress);
    let result = client
        .build_with_progress(&options, &mut sink)
        .await
        .expect("the build with a secret and a push");
    text.push_str(&format!("{result:?}"));

    // 2. A private git context, with the token.
    let git_dockerfile = format!("FROM {}\nRUN echo git-{marker}\n", env.base_image);
    let url = env
        .seed_repo("leaks", [("Dockerfile", git_dockerfile.as_str())])
        .unwrap();
    let host = git_host(&url);
    let git = BuildOptions::remote(format!("{url}#main"))
        .git_auth_token(&host, env.git_token.clone())
        .network(NetworkMode::Host);
    text.push_str(&format!("{git:?}"));
    let mut sink = BothRenderers::new(&progress);
    client
        .build_with_progress(&git, &mut sink)
        .await
        .expect("the git context build with a token");

    // 3. Failures: a wrong registry password, a step that fails on the
    //    secret, a wrong git token.
    let wrong_auth = RegistryAuth::anonymous().with_credentials(
        &env.auth_registry,
        &env.auth_user,
        &wrong_password,
    );
    let failures = [
        (
            "wrong registry password",
            BuildOptions::local(context.path())
                .network(NetworkMode::Host)
                .secret(Secret::value("token", build_secret.clone()))
                .registry_auth(wrong_auth)
                .tag(format!("{}/{repo}:wrong", env.auth_registry))
                .push(true),
        ),
        ("failing secret use", {
            let failing = tempfile::tempdir().unwrap().keep();
            let body = format!(
                "FROM {}\nRUN --mount=type=secret,id=token test \"$(cat /run/secrets/token)\" = not-it-{marker}\n",
                env.base_image
            );
            write_context(&failing, [("Dockerfile", body.as_str())]).unwrap();
            BuildOptions::local(&failing)
                .network(NetworkMode::Host)
                .secret(Secret::value("token", build_secret.clone()))
        }),
        (
            "wrong git token",
            BuildOptions::remote(format!("{url}#main"))
                .git_auth_token(&host, wrong_token.clone())
                .network(NetworkMode::Host),
        ),
    ];
    for (what, options) in failures {
        let mut sink = BothRenderers::new(&progress);
        let err = match client.build_with_progress(&options, &mut sink).await {
            Err(err) => err,
            Ok(_) => panic!("{what}: the build succeeded"),
        };
        text.push_str(&format!("{what}: {err}\n{err:?}"));
    }

    // 4. The image as the registry holds it.
    let reader =
        RegistryReader::new(&env.auth_registry).basic_auth(&env.auth_user, &env.auth_password);
    let contents = reader.image(&repo, "1").expect("read the pushed image");
    assert!(
        contents
            .find(format!("built-{marker}").as_bytes())
            .is_some(),
        "the layers were read uncompressed"
    );
    assert!(
        contents
            .blobs
            .iter()
            .any(|(_, media, body)| media.contains("in-toto") && contains(body, b"provenance")),
        "the provenance attestation was read: {:?}",
        contents
            .blobs
            .iter()
            .map(|(d, m, _)| (d, m))
            .collect::<Vec<_>>()
    );
    for (role, value) in &secrets {
        assert_eq!(
            contents.find(value.as_bytes()),
            None,
            "the {role} is in the pushed image"
        );
    }

    // 5. Everything said along the way.
    let logs = logs.bytes();
    assert!(
        contains(&logs, b"TRACE"),
        "TRACE-level logging was captured"
    );
    assert!(
        contains(&logs, b"Credentials") || contains(&logs, b"auth"),
        "the registry login was exercised"
    );
    assert_absent("the TRACE logs", &logs, &secrets);
    let progress = progress.bytes();
    assert!(
        contains(&progress, format!("git-{marker}").as_bytes()),
        "plain progress was captured"
    );
    assert!(
        contains(&progress, b"\"vertexes\"") || contains(&progress, b"\"digest\""),
        "rawjson was captured"
    );
    assert_absent("the progress output", &progress, &secrets);
    let text = text.bytes();
    assert!(
        contains(&text, b"401")
            || contains(&text, b"unauthorized")
            || contains(&text, b"Unauthorized")
    );
    assert_absent("errors and Debug output", &text, &secrets);
}

/// Runs the command line with `env` and returns its output.
fn run_cli(args: &[&str], env: &[(&str, &str)]) -> ProcessOutput {
    let mut command = cli();
    command.args(args).env_remove("CICD_AGENTS_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run cicd-agents")
}

fn docker_config(dir: &Path, registry: &str, user: &str, password: &str) -> String {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    auth
}

#[tokio::test]
async fn the_command_line_never_prints_a_secret() {
    let env = TestEnv::required();
    let marker = unique_name("cli-leak");
    let build_secret = format!("cli-build-secret-{marker}");
    let wrong_password = format!("cli-wrong-password-{marker}");
    let context = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nRUN --mount=type=secret,id=token,required=true test -s /run/secrets/token && echo cli-{marker} > /m\n",
        env.base_image
    );
    write_context(context.path(), [("Dockerfile", dockerfile.as_str())]).unwrap();
    let good_config = tempfile::tempdir().unwrap();
    let good_auth = docker_config(
        good_config.path(),
        &env.auth_registry,
        &env.auth_user,
        &env.auth_password,
    );
    let bad_config = tempfile::tempdir().unwrap();
    let bad_auth = docker_config(
        bad_config.path(),
        &env.auth_registry,
        &env.auth_user,
        &wrong_password,
    );
    let url = env
        .seed_repo(
            "cli-leaks",
            [(
                "Dockerfile",
                format!("FROM {}\nRUN echo git-{marker}\n", env.base_image).as_str(),
            )],
        )
        .unwrap();
    // BuildKit looks the token up as GIT_AUTH_TOKEN.<host:port>.
    let authority = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(&url)
        .split('/')
        .next()
        .unwrap_or_default();
    let secret_id = format!("id=GIT_AUTH_TOKEN.{authority},env=GIT_TOKEN");
    let secrets = [
        ("build secret", build_secret.clone()),
        ("registry password", env.auth_password.clone()),
        ("registry auth (base64)", good_auth),
        ("git token", env.git_token.clone()),
        ("wrong registry password", wrong_password.clone()),
        ("wrong registry auth (base64)", bad_auth),
    ];
    let image = format!("{}/leaks/{}:cli", env.auth_registry, marker.to_lowercase());
    let ctx = context.path().to_str().unwrap();
    let addr = env.docker_addr.as_str();
    let build_env = [
        ("BUILD_SECRET", build_secret.as_str()),
        ("GIT_TOKEN", env.git_token.as_str()),
        ("DOCKER_CONFIG", good_config.path().to_str().unwrap()),
    ];
    let mut runs: Vec<(String, ProcessOutput, bool)> = Vec::new();
    for progress in ["plain", "rawjson"] {
        let args = [
            "--log-level",
            "trace",
            "build",
            "--addr",
            addr,
            "--progress",
            progress,
            "--network",
            "host",
            "--secret",
            "id=token,env=BUILD_SECRET",
            "-t",
            &image,
            "--push",
            ctx,
        ];
        runs.push((
            format!("push, {progress}"),
            run_cli(&args, &build_env),
            true,
        ));
        let git_context = format!("{url}#main");
        let args = [
            "--log-level",
            "trace",
            "build",
            "--addr",
            addr,
            "--progress",
            progress,
            "--network",
            "host",
            "--secret",
            &secret_id,
            &git_context,
        ];
        runs.push((
            format!("git context, {progress}"),
            run_cli(&args, &build_env),
            true,
        ));
    }
    // A wrong password, and a wrong git token.
    let bad_env = [
        ("BUILD_SECRET", build_secret.as_str()),
        ("GIT_TOKEN", wrong_password.as_str()),
        ("DOCKER_CONFIG", bad_config.path().to_str().unwrap()),
    ];
    let args = [
        "--log-level",
        "trace",
        "build",
        "--addr",
        addr,
        "--progress",
        "plain",
        "--network",
        "host",
        "--secret",
        "id=token,env=BUILD_SECRET",
        "-t",
        &image,
        "--push",
        ctx,
    ];
    runs.push(("wrong password".into(), run_cli(&args, &bad_env), false));
    let git_context = format!("{url}#main");
    let args = [
        "--log-level",
        "trace",
        "build",
        "--addr",
        addr,
        "--progress",
        "rawjson",
        "--network",
        "host",
        "--secret",
        &secret_id,
        &git_context,
    ];
    runs.push(("wrong git token".into(), run_cli(&args, &bad_env), false));

    for (what, output, should_succeed) in &runs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.success(), *should_succeed, "{what}: {stderr}");
        assert!(stderr.contains("TRACE"), "{what}: trace logging is on");
        assert_absent(&format!("the stderr of `{what}`"), &output.stderr, &secrets);
        assert_absent(&format!("the stdout of `{what}`"), &output.stdout, &secrets);
    }
}
