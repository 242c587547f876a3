//! Soak: many builds over one `Client`, one after another and eight at a time,
//! against the real daemon. After every round the client must be back where it
//! started: no session tasks left running, no file descriptors left open
//! (every session is its own `/session` connection to dockerd), and no memory
//! growth beyond allocator noise.
//!
//! `.ci/run` runs a reduced soak. The full one (200 consecutive builds, 8
//! concurrent builds for 5 rounds) is
//!
//! ```text
//! CICD_SOAK_BUILDS=200 CICD_SOAK_ROUNDS=5 cargo test -p cicd-agents-testenv --test soak -- --nocapture
//! ```
//!
//! and prints a report like the one in the README's "Reliability" section.

use std::path::Path;
use std::time::{Duration, Instant};

use cicd_agents_buildkit::build::{BuildOptions, Output};
use cicd_agents_buildkit::Client;
use cicd_agents_testenv::{write_context, Relay, TestEnv};

/// Builds per consecutive run in CI; `CICD_SOAK_BUILDS` overrides.
const DEFAULT_CONSECUTIVE: usize = 30;
/// Rounds of eight concurrent builds in CI; `CICD_SOAK_ROUNDS` overrides.
const DEFAULT_ROUNDS: usize = 2;
const CONCURRENCY: usize = 8;
/// Resident-set growth tolerated between the warmed-up client and the end of a run.
/// Allocator arenas and tonic's buffers settle within a few MiB; a leaked session
/// (its HTTP/2 connection windows alone are 8 MiB + 32 MiB) would exceed this quickly.
const RSS_GROWTH_LIMIT_KIB: u64 = 48 * 1024;

/// File descriptors and resident memory are per process and the two tests share
/// one: they take turns so neither sees the other's builds.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// What the process holds right now.
#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    rss_kib: u64,
    tasks: usize,
}

impl Usage {
    fn now() -> Usage {
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|dir| dir.count())
            .unwrap_or(0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        Usage {
            fds,
            rss_kib,
            tasks,
        }
    }

    /// Waits (briefly) for the session tasks and sockets of finished builds to wind
    /// down, then reads the usage. Teardown is asynchronous: the daemon closes its end
    /// of a session connection a moment after `Solve` returns.
    async fn settled(baseline: Usage) -> Usage {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let usage = Usage::now();
            if (usage.fds <= baseline.fds && usage.tasks <= baseline.tasks)
                || Instant::now() > deadline
            {
                return usage;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A tiny context whose content differs per build, so every build transfers a file
/// and runs a real (cheap) solve instead of hitting a fully cached result.
fn small_context(dir: &Path, marker: &str) {
    write_context(
        dir,
        [
            ("Dockerfile", "FROM scratch\nCOPY payload.txt /\n"),
            ("payload.txt", marker),
        ],
    )
    .expect("write context");
}

async fn build_once(client: &Client, env: &TestEnv, label: &str) -> Duration {
    let context = tempfile::tempdir().expect("tempdir");
    small_context(context.path(), &env.unique_name(label));
    let options = BuildOptions::local(context.path()).output(Output::new("cacheonly", []));
    let started = Instant::now();
    let result = client
        .build(&options)
        .await
        .unwrap_or_else(|err| panic!("{label}: {err}"));
    assert_eq!(
        result.context_transfer.files, 2,
        "{label}: Dockerfile and payload sent"
    );
    started.elapsed()
}

fn report(name: &str, builds: usize, elapsed: Duration, before: Usage, after: Usage) {
    println!(
        "soak {name}: {builds} builds in {:.1}s ({:.0} ms/build); fds {} -> {}; session tasks {} -> {}; \
         RSS {} -> {} KiB ({:+} KiB)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / builds.max(1) as f64,
        before.fds,
        after.fds,
        before.tasks,
        after.tasks,
        before.rss_kib,
        after.rss_kib,
        after.rss_kib as i64 - before.rss_kib as i64,
    );
}

fn assert_nothing_leaked(name: &str, baseline: Usage, after: Usage) {
    assert!(
        after.fds <= baseline.fds,
        "{name}: file descriptors leaked: {} before, {} after",
        baseline.fds,
        after.fds
    );
    assert!(
        after.tasks <= baseline.tasks,
        "{name}: tasks left running (session not torn down?): {} before, {} after",
        baseline.tasks,
        after.tasks
    );
    let growth = after.rss_kib.saturating_sub(baseline.rss_kib);
    assert!(
        growth <= RSS_GROWTH_LIMIT_KIB,
        "{name}: resident memory grew by {growth} KiB ({} -> {} KiB)",
        baseline.rss_kib,
        after.rss_kib
    );
}

/// `builds` consecutive builds over one client connected to `address`.
async fn consecutive_builds(env: &TestEnv, address: &str, name: &str, builds: usize) {
    let client = Client::connect(address).await.expect("connect");
    // Warm up: the first builds pull in lazily created state (connection pool,
    // cached daemon info, allocator arenas) that is not a leak.
    for warmup in 0..3 {
        build_once(&client, env, &format!("soak-warmup-{warmup}")).await;
    }
    let baseline = Usage::settled(Usage::now()).await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for index in 0..builds {
        slowest = slowest.max(build_once(&client, env, &format!("soak-{index}")).await);
    }
    let elapsed = started.elapsed();
    let after = Usage::settled(baseline).await;
    report(name, builds, elapsed, baseline, after);
    println!(
        "soak {name}: slowest build {:.0} ms",
        slowest.as_secs_f64() * 1000.0
    );
    assert_nothing_leaked(name, baseline, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_builds_over_one_client_leak_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::required();
    let builds = count_from_env("CICD_SOAK_BUILDS", DEFAULT_CONSECUTIVE);
    consecutive_builds(
        &env,
        &env.docker_addr,
        "consecutive (docker://, /session connections)",
        builds,
    )
    .await;
}

/// The same over a unix socket, where every session is a `Control.Session` call
/// multiplexed on the client's one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_builds_through_control_session_leak_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::required();
    let relay = Relay::unix(&env.docker_sock).await.expect("relay");
    let builds = count_from_env("CICD_SOAK_BUILDS", DEFAULT_CONSECUTIVE) / 2;
    consecutive_builds(
        &env,
        relay.addr(),
        "consecutive (unix, Control.Session tunnels)",
        builds,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_builds_sharing_one_client_leak_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::required();
    let rounds = count_from_env("CICD_SOAK_ROUNDS", DEFAULT_ROUNDS);
    let client = Client::connect(&env.docker_addr).await.expect("connect");
    // One warm-up round at full concurrency, for the same reason as above.
    let warmups = (0..CONCURRENCY).map(|slot| {
        let (client, env) = (&client, &env);
        async move { build_once(client, env, &format!("soak-par-warmup-{slot}")).await }
    });
    futures::future::join_all(warmups).await;
    let baseline = Usage::settled(Usage::now()).await;
    let started = Instant::now();
    for round in 0..rounds {
        let builds = (0..CONCURRENCY).map(|slot| {
            let (client, env) = (&client, &env);
            async move { build_once(client, env, &format!("soak-par-{round}-{slot}")).await }
        });
        let took = futures::future::join_all(builds).await;
        assert_eq!(took.len(), CONCURRENCY);
    }
    let elapsed = started.elapsed();
    let after = Usage::settled(baseline).await;
    report("concurrent", rounds * CONCURRENCY, elapsed, baseline, after);
    assert_nothing_leaked("concurrent", baseline, after);
}
