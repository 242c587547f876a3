//! Faults between the client and the real daemon, injected by a [`Relay`] in
//! front of the test environment's BuildKit: the connection cut in the middle
//! of a large context upload, of a `RUN` step and of the export and push; a
//! black-holed connection that only the keepalive notices; and build futures
//! dropped at each of those stages.
//!
//! Every build fails promptly with [`Error::ConnectionLost`] naming the stage,
//! and afterwards the daemon runs nothing left over from it: its active builds
//! (`Control.ListenBuildHistory` with `ActiveOnly`) no longer include the build,
//! which each test recognises by a unique label. Every test is bounded by a
//! timeout, so a hang fails it.
//!
//! Over a `unix://` relay the session travels inside `Control.Session` on the
//! same connection as the control calls, so one cut takes down both.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cicd_agents_buildkit::build::BuildOptions;
use cicd_agents_buildkit::flags::NetworkMode;
use cicd_agents_buildkit::progress::StatusUpdate;
use cicd_agents_buildkit::{Client, Error};
use cicd_agents_testenv::{context_dir, write_context, Relay, TestEnv};

/// Upper bound for any one test step: a hang fails the test instead of blocking it.
const BOUND: Duration = Duration::from_secs(120);
/// How long the daemon may take to wind a cancelled build down.
const DAEMON_SETTLE: Duration = Duration::from_secs(60);
/// The label that marks a test's build in the daemon's history.
const LABEL: &str = "cicd-agents.fault-test";

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {BOUND:?} (hang)"),
    }
}

/// A unix relay in front of the daemon and a client on it.
async fn relay_and_client(
    env: &TestEnv,
    keepalive: Option<(Duration, Duration)>,
) -> (Arc<Relay>, Client) {
    let relay = Arc::new(Relay::unix(&env.docker_sock).await.expect("relay"));
    let mut builder = Client::builder().address(relay.addr());
    if let Some((interval, timeout)) = keepalive {
        builder = builder.keepalive(interval, timeout);
    }
    let client = builder.connect().await.expect("connect through the relay");
    // Warm up: the daemon's info is asked once per client, before the first build.
    client.info().await.expect("info through the relay");
    (relay, client)
}

/// Bytes that do not compress and are new to the daemon's cache.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = rand::random::<u64>() | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A context whose Dockerfile is `dockerfile` plus a `big` file of `size` random bytes.
fn context_with(dir: &Path, dockerfile: &str, size: usize) {
    write_context(
        dir,
        [
            ("Dockerfile", dockerfile.as_bytes().to_vec()),
            ("big", random_bytes(size)),
        ],
    )
    .unwrap();
}

/// Whether an update shows a step whose name starts with `prefix` as started.
fn step_started(update: &StatusUpdate, prefix: &str) -> bool {
    update
        .vertexes
        .iter()
        .any(|v| v.started.is_some() && v.completed.is_none() && v.name.contains(prefix))
}

/// Waits until the daemon runs no build carrying our label `id`; fails the test
/// with the leftover builds otherwise.
async fn assert_daemon_runs_nothing_of(env: &TestEnv, id: &str) {
    let client = Client::connect(&env.docker_addr)
        .await
        .expect("connect directly");
    let deadline = Instant::now() + DAEMON_SETTLE;
    loop {
        let active = bounded("ListenBuildHistory", client.active_builds())
            .await
            .expect("active builds");
        let ours: Vec<_> = active
            .iter()
            .filter(|b| {
                b.frontend_attrs
                    .get(&format!("label:{LABEL}"))
                    .map(String::as_str)
                    == Some(id)
            })
            .collect();
        if ours.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("the daemon still runs the test's build {DAEMON_SETTLE:?} after it was abandoned: {ours:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks the error of an interrupted build: connection lost, the relay's
/// address, the stage, in the message too.
fn assert_lost(err: &Error, relay: &Relay, stage: &str) {
    eprintln!("interrupted build: {err}");
    match err {
        Error::ConnectionLost {
            address,
            during,
            reason,
        } => {
            assert_eq!(during, stage, "wrong stage in {err}");
            assert_eq!(address, relay.addr(), "{err}");
            assert!(!reason.is_empty(), "{err}");
        }
        other => panic!("expected ConnectionLost while {stage}, got {other:?} ({other})"),
    }
    assert!(err.is_connection(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(stage) && message.contains(relay.addr()),
        "{message}"
    );
}

#[tokio::test]
async fn active_builds_lists_a_running_build_by_its_label() {
    let env = TestEnv::required();
    let id = env.unique_name("active");
    let client = Client::connect(&env.docker_addr).await.unwrap();
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN echo {id} && sleep 60\n", env.base_image),
    )]);
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .label(LABEL, &id);
    let (started_tx, mut started_rx) = tokio::sync::watch::channel(false);
    let mut sink = move |update: &StatusUpdate| {
        if step_started(update, "RUN echo") {
            let _ = started_tx.send(true);
        }
    };
    // Boxed so that it can be dropped below, mid-build.
    let mut build = Box::pin(client.build_with_progress(&options, &mut sink));
    let seen = bounded("a running build in the history", async {
        tokio::select! {
            result = &mut build => panic!("the build ended before it was seen running: {result:?}"),
            _ = started_rx.wait_for(|s| *s) => {}
        }
        loop {
            let active = client.active_builds().await.expect("active builds");
            if let Some(build) = active
                .into_iter()
                .find(|b| b.frontend_attrs.get(&format!("label:{LABEL}")) == Some(&id))
            {
                return build;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(!seen.build_ref.is_empty());
    assert_eq!(seen.frontend, "dockerfile.v0");
    // Dropping the running build's future cancels it on the daemon (the RUN sleeps 60 s).
    drop(build);
    assert_daemon_runs_nothing_of(&env, &id).await;
}

#[tokio::test]
async fn cut_mid_upload_of_a_large_context_fails_naming_the_upload() {
    let env = TestEnv::required();
    let id = env.unique_name("cut-upload");
    let context = tempfile::tempdir().unwrap();
    context_with(
        context.path(),
        "FROM scratch\nCOPY big /big\n",
        64 * 1024 * 1024,
    );
    let (relay, client) = relay_and_client(&env, None).await;
    let options = BuildOptions::local(context.path()).label(LABEL, &id);
    relay.cut_after_client_bytes(16 * 1024 * 1024);
    let err = bounded("the build cut mid-upload", client.build(&options))
        .await
        .expect_err("build through a cut");
    assert_lost(&err, &relay, "uploading the build context");
    assert!(
        relay.client_bytes() < 64 * 1024 * 1024,
        "the whole context went through: {}",
        relay.client_bytes()
    );
    assert_daemon_runs_nothing_of(&env, &id).await;
}

#[tokio::test]
async fn cut_mid_build_fails_naming_the_solve() {
    let env = TestEnv::required();
    let id = env.unique_name("cut-run");
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN echo {id} && sleep 60\n", env.base_image),
    )]);
    let (relay, client) = relay_and_client(&env, None).await;
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .label(LABEL, &id);
    let cutter = relay.clone();
    let mut sink = move |update: &StatusUpdate| {
        if step_started(update, "RUN echo") {
            cutter.cut_now();
        }
    };
    let err = bounded(
        "the build cut mid-RUN",
        client.build_with_progress(&options, &mut sink),
    )
    .await
    .expect_err("build through a cut");
    assert_lost(&err, &relay, "solving");
    assert_daemon_runs_nothing_of(&env, &id).await;
}

#[tokio::test]
async fn cut_mid_push_fails_naming_the_export() {
    let env = TestEnv::required();
    let id = env.unique_name("cut-push");
    let context = tempfile::tempdir().unwrap();
    context_with(
        context.path(),
        &format!(
            "FROM {}\nCOPY big /big\nRUN echo {id} > /id\n",
            env.base_image
        ),
        48 * 1024 * 1024,
    );
    let (relay, client) = relay_and_client(&env, None).await;
    let image = env.image_ref(&format!("tests/{id}"), "1");
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .label(LABEL, &id)
        .tag(&image)
        .push(true);
    let cutter = relay.clone();
    let mut sink = move |update: &StatusUpdate| {
        let pushing = update.statuses.iter().any(|s| s.id.starts_with("pushing"));
        if pushing || step_started(update, "exporting to image") {
            cutter.cut_now();
        }
    };
    let err = bounded(
        "the build cut mid-push",
        client.build_with_progress(&options, &mut sink),
    )
    .await
    .expect_err("build through a cut");
    assert_lost(&err, &relay, "exporting/pushing");
    assert_daemon_runs_nothing_of(&env, &id).await;
}

#[tokio::test]
async fn black_holed_connection_fails_within_the_keepalive() {
    let env = TestEnv::required();
    let id = env.unique_name("black-hole");
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN echo {id} && sleep 60\n", env.base_image),
    )]);
    let (relay, client) =
        relay_and_client(&env, Some((Duration::from_secs(1), Duration::from_secs(2)))).await;
    let options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .label(LABEL, &id);
    let holder = relay.clone();
    let mut sink = move |update: &StatusUpdate| {
        if step_started(update, "RUN echo") {
            holder.black_hole();
        }
    };
    // The RUN sleeps 60 s: only the keepalive (1 s + 2 s) can end the build before that.
    let err = match tokio::time::timeout(
        Duration::from_secs(40),
        client.build_with_progress(&options, &mut sink),
    )
    .await
    {
        Ok(result) => result.expect_err("build through a black hole"),
        Err(_) => panic!("the black-holed build hung past 40 s with a 1 s + 2 s keepalive"),
    };
    assert_lost(&err, &relay, "solving");
    // Our side gave up and closed its socket; the relay passes that on to the daemon.
    assert_daemon_runs_nothing_of(&env, &id).await;
}

/// Where a dropped build was when it was dropped.
#[derive(Debug, Clone, Copy)]
enum DropAt {
    Upload,
    Run,
    Export,
}

async fn dropped_build_leaves_nothing(at: DropAt) {
    let env = TestEnv::required();
    let id = env.unique_name("dropped");
    let context = tempfile::tempdir().unwrap();
    let dockerfile = match at {
        DropAt::Upload => "FROM scratch\nCOPY big /big\n".to_string(),
        DropAt::Run => format!("FROM {}\nRUN echo {id} && sleep 60\n", env.base_image),
        DropAt::Export => format!(
            "FROM {}\nCOPY big /big\nRUN echo {id} > /id\n",
            env.base_image
        ),
    };
    let size = match at {
        DropAt::Upload => 48 * 1024 * 1024,
        DropAt::Run => 16,
        DropAt::Export => 32 * 1024 * 1024,
    };
    context_with(context.path(), &dockerfile, size);
    let (relay, client) = relay_and_client(&env, None).await;
    let mut options = BuildOptions::local(context.path())
        .network(NetworkMode::Host)
        .label(LABEL, &id);
    if let DropAt::Export = at {
        options = options
            .tag(env.image_ref(&format!("tests/{id}"), "1"))
            .push(true);
    }
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let (reached_tx, mut reached_rx) = tokio::sync::watch::channel(false);
    let mut sink = move |update: &StatusUpdate| {
        let reached = match at {
            DropAt::Upload => false,
            DropAt::Run => step_started(update, "RUN echo"),
            DropAt::Export => step_started(update, "exporting to image"),
        };
        if reached {
            let _ = reached_tx.send(true);
        }
    };
    let start_bytes = relay.client_bytes();
    let watcher = relay.clone();
    let reached = async move {
        match at {
            DropAt::Upload => {
                while watcher.client_bytes() < start_bytes + 8 * 1024 * 1024 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            DropAt::Run | DropAt::Export => {
                let _ = reached_rx.wait_for(|r| *r).await;
            }
        }
    };
    bounded(&format!("the build up to {at:?}"), async {
        tokio::select! {
            result = client.build_with_progress(&options, &mut sink) => {
                panic!("the build ended before it reached {at:?}: {result:?}")
            }
            _ = reached => {}
        }
    })
    .await;
    // The build future is dropped here, mid-stage. Nothing of it may keep running:
    // not on the daemon, and not as tasks of ours.
    assert_daemon_runs_nothing_of(&env, &id).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if tasks <= tasks_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{tasks} tasks alive after dropping the build at {at:?}, {tasks_before} before"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The client is still usable on the same connection.
    bounded("info after the drop", client.info())
        .await
        .expect("info after a dropped build");
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while relay.active_connections() > 0 {
        assert!(
            Instant::now() < deadline,
            "the relay still carries {} connections after the client was dropped",
            relay.active_connections()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn build_dropped_during_the_upload_leaves_nothing_running() {
    dropped_build_leaves_nothing(DropAt::Upload).await;
}

#[tokio::test]
async fn build_dropped_during_a_run_step_leaves_nothing_running() {
    dropped_build_leaves_nothing(DropAt::Run).await;
}

#[tokio::test]
async fn build_dropped_during_the_export_leaves_nothing_running() {
    dropped_build_leaves_nothing(DropAt::Export).await;
}

#[tokio::test]
async fn a_call_on_a_cut_connection_reconnects() {
    let env = TestEnv::required();
    let (relay, client) = relay_and_client(&env, None).await;
    relay.cut_now();
    // The first call after the cut works: a read-only call that finds the
    // connection broken is made once more, on a new connection.
    for call in 0..3 {
        if let Err(err) = bounded("info after a cut", client.info()).await {
            panic!("call {call} after a cut failed: {err}");
        }
        if let Err(err) = bounded("workers after a cut", client.list_workers()).await {
            panic!("call {call} after a cut failed: {err}");
        }
        relay.cut_now();
    }
    assert!(relay.connections() >= 2, "the client did not dial again");
}
