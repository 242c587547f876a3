//! Registry faults against the real BuildKit: a [`FaultProxy`] in front of the test registry
//! (or the registry that needs a login) is taken down or answers 500/401, and the build's
//! push or cache export must fail with an error that names the registry and the operation,
//! never shows a password, and, for a cache export with `ignore-error=true`, not fail at all.

use cicd_agents_buildkit::build::{
    BuildError, BuildOptions, CacheEntry, Output, RegistryFailureKind, RegistryOperation,
};
use cicd_agents_buildkit::{Client, Error, RegistryAuth};
use cicd_agents_testenv::{manifest_digest, write_context, FaultProxy, TestEnv};

/// A context with unique content (`FROM scratch`, one file): no cached result of another run
/// can stand in for this build.
fn context(env: &TestEnv) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let marker = env.unique_name("fault");
    write_context(
        dir.path(),
        [
            (
                "Dockerfile",
                "FROM scratch\nCOPY marker.txt /\n".to_string(),
            ),
            ("marker.txt", marker.clone()),
        ],
    )
    .unwrap();
    (dir, marker)
}

async fn build(env: &TestEnv, options: &BuildOptions) -> Result<(), Error> {
    let client = Client::connect(&env.docker_addr).await.expect("connect");
    client.build(options).await.map(|_| ())
}

fn build_error(err: Error) -> BuildError {
    match err {
        Error::Build(build) => *build,
        other => panic!("expected a build error, got {other:?}"),
    }
}

fn first_line(err: &BuildError) -> String {
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_proxy_forwards_fails_and_goes_down() {
    let env = TestEnv::required();
    let proxy = FaultProxy::start(&env.registry).unwrap();
    let (repo, tag) = env
        .base_image
        .split_once('/')
        .unwrap()
        .1
        .rsplit_once(':')
        .unwrap();
    assert!(
        manifest_digest(&proxy.addr(), repo, tag).unwrap().is_some(),
        "forwarded HEAD of {repo}:{tag}"
    );
    proxy.set_fault_for("/manifests/", 503);
    let err = manifest_digest(&proxy.addr(), repo, tag)
        .unwrap_err()
        .to_string();
    assert!(err.contains("503"), "{err}");
    assert_eq!(proxy.faults_served(), 1);
    proxy.go_down().unwrap();
    assert!(
        std::net::TcpStream::connect(proxy.socket_addr()).is_err(),
        "a proxy that is down refuses connections"
    );
    proxy.clear().unwrap();
    assert!(
        manifest_digest(&proxy.addr(), repo, tag).unwrap().is_some(),
        "back up without faults"
    );
}

#[tokio::test]
async fn push_to_a_registry_that_is_down_names_the_registry() {
    let env = TestEnv::required();
    let proxy = FaultProxy::start(&env.registry).unwrap();
    proxy.go_down().unwrap();
    let (dir, marker) = context(&env);
    let options = BuildOptions::local(dir.path())
        .tag(format!("{}/tests/{marker}:1", proxy.addr()))
        .push(true);
    let err = build_error(build(&env, &options).await.unwrap_err());
    let registry = err
        .registry
        .clone()
        .unwrap_or_else(|| panic!("no registry failure in {err:?}"));
    assert_eq!(registry.registry, proxy.addr());
    assert_eq!(registry.operation, RegistryOperation::Push);
    assert_eq!(registry.kind, RegistryFailureKind::Unreachable);
    assert_eq!(registry.status, None);
    assert!(!err.is_registry_auth_failure());
    assert_eq!(
        first_line(&err),
        format!(
            "pushing to registry {} failed: cannot reach it (connection refused)",
            proxy.addr()
        )
    );
}

#[tokio::test]
async fn push_answered_500_fails_with_the_status_and_pushes_nothing() {
    let env = TestEnv::required();
    let proxy = FaultProxy::start(&env.registry).unwrap();
    proxy.set_fault_for("/manifests/", 500);
    let (dir, marker) = context(&env);
    let repo = format!("tests/{marker}");
    let options = BuildOptions::local(dir.path())
        .tag(format!("{}/{repo}:1", proxy.addr()))
        .push(true);
    let err = build_error(build(&env, &options).await.unwrap_err());
    let registry = err
        .registry
        .clone()
        .unwrap_or_else(|| panic!("no registry failure in {err:?}"));
    assert_eq!(registry.registry, proxy.addr());
    assert_eq!(registry.operation, RegistryOperation::Push);
    assert_eq!(registry.status, Some(500));
    assert_eq!(registry.kind, RegistryFailureKind::Server);
    assert!(proxy.faults_served() > 0);
    assert_eq!(
        first_line(&err),
        format!(
            "pushing to registry {} failed: 500 Internal Server Error",
            proxy.addr()
        )
    );
    assert_eq!(
        manifest_digest(&env.registry, &repo, "1").unwrap(),
        None,
        "no manifest was pushed"
    );
}

#[tokio::test]
async fn push_answered_401_is_an_auth_failure_without_the_password() {
    let env = TestEnv::required();
    // The registry that needs a login, with the right credentials, behind a proxy that
    // refuses the manifest upload: the credentials are sent, and must not come back.
    let proxy = FaultProxy::start(&env.auth_registry).unwrap();
    proxy.set_fault_for("/manifests/", 401);
    let (dir, marker) = context(&env);
    let options = BuildOptions::local(dir.path())
        .tag(format!("{}/tests/{marker}:1", proxy.addr()))
        .push(true)
        .registry_auth(RegistryAuth::anonymous().with_credentials(
            &proxy.addr(),
            &env.auth_user,
            &env.auth_password,
        ));
    let error = build(&env, &options).await.unwrap_err();
    assert!(error.is_registry_auth_failure(), "{error:?}");
    let shown = format!("{error}\n{error:?}");
    assert!(
        !shown.contains(&env.auth_password),
        "the password leaked: {shown}"
    );
    let err = build_error(error);
    let registry = err.registry.clone().unwrap();
    assert_eq!(
        (registry.operation, registry.status, registry.kind),
        (
            RegistryOperation::Push,
            Some(401),
            RegistryFailureKind::Auth
        )
    );
    assert!(
        first_line(&err).starts_with(&format!(
            "pushing to registry {} failed: 401 Unauthorized",
            proxy.addr()
        )),
        "{err}"
    );

    // A wrong password straight to the registry that needs a login: also an auth failure,
    // and neither password is shown.
    let wrong = "wrong-password-7c1e9a";
    let options = BuildOptions::local(dir.path())
        .tag(format!("{}/tests/{marker}:2", env.auth_registry))
        .push(true)
        .registry_auth(RegistryAuth::anonymous().with_credentials(
            &env.auth_registry,
            &env.auth_user,
            wrong,
        ));
    let error = build(&env, &options).await.unwrap_err();
    assert!(error.is_registry_auth_failure(), "{error:?}");
    let shown = format!("{error}\n{error:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(&env.auth_password),
        "a password leaked: {shown}"
    );
    assert!(
        shown.starts_with(&format!(
            "pushing to registry {} failed: 401",
            env.auth_registry
        )),
        "{shown}"
    );
}

#[tokio::test]
async fn cache_export_to_a_failing_registry_fails_clearly_unless_errors_are_ignored() {
    let env = TestEnv::required();
    let proxy = FaultProxy::start(&env.registry).unwrap();
    proxy.set_fault_for("/v2/", 500);
    let (dir, marker) = context(&env);
    let cache = format!("{}/tests/{marker}:cache", proxy.addr());
    let cacheonly = || Output::new("cacheonly", Vec::<(String, String)>::new());

    let failing = BuildOptions::local(dir.path())
        .output(cacheonly())
        .cache_to(CacheEntry::registry(&cache).attr("mode", "max"));
    let err = build_error(build(&env, &failing).await.unwrap_err());
    let registry = err
        .registry
        .clone()
        .unwrap_or_else(|| panic!("no registry failure in {err:?}"));
    assert_eq!(registry.registry, proxy.addr());
    assert_eq!(registry.operation, RegistryOperation::CacheExport);
    assert_eq!(
        (registry.status, registry.kind),
        (Some(500), RegistryFailureKind::Server)
    );
    let line = first_line(&err);
    assert!(
        line.starts_with(&format!(
            "exporting cache to registry {} failed: 500 Internal Server Error",
            proxy.addr()
        )),
        "{line}"
    );
    assert!(line.contains("ignore-error=true"), "{line}");

    // `ignore-error=true`: the same failing export does not fail the build.
    let served = proxy.faults_served();
    let ignoring = BuildOptions::local(dir.path())
        .output(cacheonly())
        .cache_to(
            CacheEntry::registry(&cache)
                .attr("mode", "max")
                .attr("ignore-error", "true"),
        );
    build(&env, &ignoring)
        .await
        .expect("a cache export with ignore-error=true does not fail the build");
    assert!(
        proxy.faults_served() > served,
        "the export was attempted (and failed) again"
    );

    // The registry down: unreachable, named.
    proxy.go_down().unwrap();
    let err = build_error(build(&env, &failing).await.unwrap_err());
    let registry = err.registry.clone().unwrap();
    assert_eq!(
        (registry.operation, registry.kind),
        (
            RegistryOperation::CacheExport,
            RegistryFailureKind::Unreachable
        )
    );
    assert!(
        first_line(&err).starts_with(&format!(
            "exporting cache to registry {} failed: cannot reach it",
            proxy.addr()
        )),
        "{err}"
    );
    build(&env, &ignoring)
        .await
        .expect("ignore-error=true with the registry down");
}
