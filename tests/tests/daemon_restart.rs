//! The daemon restarted between two builds: a `Client` made before the restart
//! does the next build after it, with no new `Client` and no error, over
//! `docker://` and over `unix://` (a relay in front of the daemon).
//!
//! A test binary of its own with a single test: restarting dockerd cuts every
//! connection to it, other tests' included, so it restarts it exactly once.

use std::time::Duration;

use cicd_agents_buildkit::build::BuildOptions;
use cicd_agents_buildkit::flags::NetworkMode;
use cicd_agents_buildkit::Client;
use cicd_agents_testenv::{context_dir, Relay, TestEnv};

/// Upper bound for each step, so that a hang fails the test.
const BOUND: Duration = Duration::from_secs(180);

async fn build(client: &Client, env: &TestEnv, what: &str) {
    let id = env.unique_name(what);
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN echo {id} > /id\n", env.base_image),
    )]);
    let options = BuildOptions::local(context.path()).network(NetworkMode::Host);
    match tokio::time::timeout(BOUND, client.build(&options)).await {
        Ok(Ok(result)) => assert!(!result.build_ref.is_empty()),
        Ok(Err(err)) => panic!("{what} over {} failed: {err}", client.address()),
        Err(_) => panic!("{what} over {} hung", client.address()),
    }
}

#[tokio::test]
async fn clients_made_before_a_daemon_restart_build_after_it() {
    let env = TestEnv::load().expect("test environment (run scripts/testenv.sh up)");
    let docker = Client::connect(&env.docker_addr)
        .await
        .expect("connect over docker://");
    let relay = Relay::unix(&env.docker_sock).await.expect("relay");
    let unix = Client::connect(relay.addr())
        .await
        .expect("connect over unix://");
    build(&docker, &env, "before-docker").await;
    build(&unix, &env, "before-unix").await;

    let restart = tokio::task::spawn_blocking({
        let env = env.clone();
        move || env.restart_daemon()
    });
    tokio::time::timeout(BOUND, restart)
        .await
        .expect("the daemon restart hung")
        .expect("restart task")
        .expect("scripts/testenv.sh restart-daemon");

    // The old connections are gone; each client dials again on its next call.
    build(&docker, &env, "after-docker").await;
    build(&unix, &env, "after-unix").await;
    assert!(
        relay.connections() >= 2,
        "the unix client never dialled again ({} connections)",
        relay.connections()
    );
}
