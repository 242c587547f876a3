//! The builder pool against real daemons: three relays in front of the test environment's
//! BuildKit stand for three `buildkitd`s. Each relay counts the connections it accepts, which
//! shows where the pool really went. Relays are stopped to take "daemons" down, once in the
//! middle of a build.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cicd_agents_buildkit::build::BuildOptions;
use cicd_agents_buildkit::flags::NetworkMode;
use cicd_agents_buildkit::pool::{routing_key, PoolError};
use cicd_agents_buildkit::progress::StatusUpdate;
use cicd_agents_buildkit::{BuilderPool, TlsOptions};
use cicd_agents_testenv::{unique_name, write_context, Relay, TestEnv};

async fn relays(env: &TestEnv) -> Vec<Relay> {
    vec![
        Relay::tcp(&env.docker_sock).await.unwrap(),
        Relay::tcp(&env.docker_sock).await.unwrap(),
        Relay::unix(&env.docker_sock).await.unwrap(),
    ]
}

fn pool(relays: &[Relay]) -> BuilderPool {
    BuilderPool::new(relays.iter().map(|r| r.addr()), TlsOptions::default())
        .unwrap()
        .health_timeout(Duration::from_secs(10))
        .retry_after(Duration::from_secs(60))
}

fn relay_for<'a>(relays: &'a [Relay], address: &str) -> &'a Relay {
    relays
        .iter()
        .find(|r| r.addr() == address)
        .unwrap_or_else(|| panic!("no relay at {address}"))
}

/// A key whose first choice is `first` (searching a few candidate project URLs).
fn key_preferring(pool: &BuilderPool, first: &str) -> String {
    (0..1000)
        .map(|n| format!("https://git.example.com/org/project-{n}.git"))
        .find(|key| pool.rank(key)[0] == first)
        .expect("some key prefers every daemon")
}

#[tokio::test]
async fn the_same_key_sticks_to_one_daemon_and_keys_spread() {
    let env = TestEnv::required();
    let relays = relays(&env).await;
    let pool = pool(&relays);

    // Only keys that prefer the first relay: no other relay may see a connection.
    let first = relays[0].addr().to_string();
    let key = key_preferring(&pool, &first);
    for _ in 0..3 {
        let (client, address) = pool.client_for(&key).await.unwrap();
        assert_eq!(address, first);
        assert!(!client.list_workers().await.unwrap().is_empty());
    }
    assert!(relays[0].connections() >= 1);
    assert_eq!(
        (relays[1].connections(), relays[2].connections()),
        (0, 0),
        "traffic went to a daemon the key does not prefer"
    );

    // Many projects spread over the daemons, each always to its first choice.
    let mut used = BTreeSet::new();
    for n in 0..12 {
        let key = format!("https://git.example.com/org/app-{n}.git");
        let (_, address) = pool.client_for(&key).await.unwrap();
        let (_, again) = pool.client_for(&key).await.unwrap();
        assert_eq!(address, again, "{key} moved between calls");
        assert_eq!(address, pool.rank(&key)[0]);
        used.insert(address);
    }
    assert!(used.len() >= 2, "12 keys all went to {used:?}");
    for relay in &relays {
        if used.contains(relay.addr()) {
            assert!(
                relay.connections() >= 1,
                "{} was chosen but never dialled",
                relay.addr()
            );
        }
    }
}

fn context(env: &TestEnv, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {}\nRUN {body}\n", env.base_image);
    write_context(dir.path(), [("Dockerfile", dockerfile.as_str())]).unwrap();
    dir
}

#[tokio::test]
async fn a_build_fails_over_when_its_daemon_goes_down_mid_run() {
    let env = TestEnv::required();
    let relays = relays(&env).await;
    let pool = pool(&relays);

    // A first build lands on the key's first choice.
    let warm = context(&env, &format!("echo {} > /warm", unique_name("pool")));
    let options = BuildOptions::local(warm.path()).network(NetworkMode::Host);
    let key = routing_key(&options);
    let rank: Vec<String> = pool.rank(&key).into_iter().map(String::from).collect();
    let first = pool
        .build(&key, &options, &mut |_: &StatusUpdate| {})
        .await
        .unwrap();
    assert_eq!(first.address, rank[0]);
    assert!(first.passed_over.is_empty());

    // A slow build on the same key; its daemon goes away while it runs.
    let slow = context(
        &env,
        &format!(
            "echo {} && sleep 4 && echo done > /slow",
            unique_name("pool")
        ),
    );
    let options = BuildOptions::local(slow.path())
        .network(NetworkMode::Host)
        .no_cache(true);
    let primary = relay_for(&relays, &rank[0]);
    let second = relay_for(&relays, &rank[1]);
    let before_second = second.connections();
    let build = async {
        let mut updates = 0usize;
        let outcome = pool
            .build(&key, &options, &mut |_: &StatusUpdate| updates += 1)
            .await;
        (outcome, updates)
    };
    let stop = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        primary.stop().await;
        Instant::now()
    };
    let ((outcome, updates), stopped_at) = tokio::join!(build, stop);
    let pooled = outcome.unwrap_or_else(|err| panic!("the build did not fail over: {err}"));
    assert!(stopped_at.elapsed() < Duration::from_secs(60));
    assert_eq!(
        pooled.address, rank[1],
        "the build must move to the next daemon in the key's ranking"
    );
    // It started on the first daemon and was lost there in the middle of the run.
    assert_eq!(pooled.passed_over.len(), 1, "{:?}", pooled.passed_over);
    assert_eq!(pooled.passed_over[0].address, rank[0]);
    assert!(
        pooled.passed_over[0]
            .reason
            .starts_with("lost during the build"),
        "{:?}",
        pooled.passed_over
    );
    assert!(
        second.connections() > before_second,
        "the second daemon was never dialled"
    );
    assert!(updates > 0, "no progress reached the caller");
    assert!(!pooled.result.build_ref.is_empty());

    // The key now routes to the second daemon, and the stopped one is tried last.
    let (_, address) = pool.client_for(&key).await.unwrap();
    assert_eq!(address, rank[1]);
    assert_eq!(
        pool.candidates(&key).last().map(|s| s.to_string()),
        Some(rank[0].clone())
    );
    let health = pool.health().await;
    let down: Vec<_> = health
        .iter()
        .filter(|h| h.status.is_err())
        .map(|h| h.address.clone())
        .collect();
    assert_eq!(down, [rank[0].clone()], "{health:?}");
}

#[tokio::test]
async fn with_every_daemon_down_the_error_names_each_one() {
    let env = TestEnv::required();
    let relays = relays(&env).await;
    let pool = pool(&relays).connect_timeout(Duration::from_secs(2));
    let key = "https://git.example.com/org/app.git";
    pool.client_for(key).await.unwrap();
    for relay in &relays {
        relay.stop().await;
    }
    let err = pool.client_for(key).await.unwrap_err();
    let PoolError::Unavailable { tried, .. } = &err else {
        panic!("{err:?}")
    };
    let tried: Vec<&str> = tried.iter().map(|t| t.address.as_str()).collect();
    assert_eq!(tried.len(), 3, "{err}");
    let text = err.to_string();
    for relay in &relays {
        assert!(
            text.contains(relay.addr()),
            "{} missing from: {text}",
            relay.addr()
        );
    }
    let build = context(&env, "true");
    let err = pool
        .build(
            key,
            &BuildOptions::local(build.path()),
            &mut |_: &StatusUpdate| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PoolError::Unavailable { .. }), "{err}");
}

#[tokio::test]
async fn a_failing_dockerfile_is_not_retried_elsewhere() {
    let env = TestEnv::required();
    let relays = relays(&env).await;
    let pool = pool(&relays);
    let failing = context(&env, &format!("echo {} && exit 3", unique_name("pool")));
    let options = BuildOptions::local(failing.path()).network(NetworkMode::Host);
    let key = routing_key(&options);
    let rank: Vec<String> = pool.rank(&key).into_iter().map(String::from).collect();
    let err = pool
        .build(&key, &options, &mut |_: &StatusUpdate| {})
        .await
        .unwrap_err();
    let PoolError::Build {
        address,
        passed_over,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(address, &rank[0]);
    assert!(passed_over.is_empty());
    assert!(err.to_string().contains(&rank[0]), "{err}");
    for other in &rank[1..] {
        assert_eq!(
            relay_for(&relays, other).connections(),
            0,
            "the failed build was retried on {other}"
        );
    }
}

#[tokio::test]
async fn daemons_skipped_before_the_build_are_reported_as_passed_over() {
    let env = TestEnv::required();
    let relay = Relay::tcp(&env.docker_sock).await.unwrap();
    let missing = tempfile::tempdir().unwrap();
    let unreachable = format!("unix://{}", missing.path().join("buildkitd.sock").display());
    let pool = BuilderPool::new([unreachable.as_str(), relay.addr()], TlsOptions::default())
        .unwrap()
        .health_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .retry_after(Duration::from_secs(60));
    // A build whose key prefers the unreachable daemon: the pool must skip it before the build
    // starts and say so.
    let unreachable = pool.addresses()[0].to_string();
    let key = key_preferring(&pool, &unreachable);
    let dir = context(&env, &format!("echo {}", unique_name("pool-skip")));
    let options = BuildOptions::local(dir.path()).network(NetworkMode::Host);
    let pooled = pool
        .build(&key, &options, &mut |_: &StatusUpdate| {})
        .await
        .unwrap();
    assert_eq!(pooled.address, relay.addr());
    assert_eq!(pooled.passed_over.len(), 1, "{:?}", pooled.passed_over);
    assert_eq!(pooled.passed_over[0].address, unreachable);
    assert!(
        !pooled.passed_over[0]
            .reason
            .starts_with("lost during the build"),
        "{:?}",
        pooled.passed_over
    );

    // A failing build reports the daemons skipped before it too (a fresh pool, so that the
    // unreachable daemon is first in line again).
    let failing = context(
        &env,
        &format!("echo {} && exit 3", unique_name("pool-skip")),
    );
    let options = BuildOptions::local(failing.path()).network(NetworkMode::Host);
    let fresh = BuilderPool::new([unreachable.as_str(), relay.addr()], TlsOptions::default())
        .unwrap()
        .connect_timeout(Duration::from_secs(2));
    let err = fresh
        .build(&key, &options, &mut |_: &StatusUpdate| {})
        .await
        .unwrap_err();
    let PoolError::Build {
        address,
        passed_over,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(address, relay.addr());
    let skipped: Vec<&str> = passed_over.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(skipped, [unreachable.as_str()], "{err}");
}
