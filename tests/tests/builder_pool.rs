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
    let rank: Vec<String> = pool.rank(&key);
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
    let rank: Vec<String> = pool.rank(&key);
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

/// A stand-in for the cluster DNS: the headless Service's name and each replica's name map to
/// the relays (replica `i` is relay `i`); the test edits the table as pods come and go.
#[derive(Debug, Default)]
struct FakeDns(std::sync::Mutex<std::collections::BTreeMap<String, Vec<std::net::SocketAddr>>>);

impl cicd_agents_buildkit::discovery::Resolver for FakeDns {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> futures::future::BoxFuture<'a, std::io::Result<Vec<std::net::SocketAddr>>> {
        let found = self
            .0
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }
}

const SERVICE: &str = "pool.ci.svc";

fn replica(i: usize) -> String {
    format!("tcp://pool-{i}.{SERVICE}:1234")
}

impl FakeDns {
    fn ready(&self, relays: &[Relay], indexes: &[usize]) {
        let mut table = self.0.lock().unwrap();
        table.clear();
        for (i, relay) in relays.iter().enumerate() {
            table.insert(
                format!("pool-{i}.{SERVICE}"),
                vec![relay.socket_addr().unwrap()],
            );
        }
        table.insert(
            SERVICE.to_string(),
            indexes
                .iter()
                .map(|i| relays[*i].socket_addr().unwrap())
                .collect(),
        );
    }
}

#[tokio::test]
async fn members_discovered_from_dns_get_sticky_routing_and_failover() {
    let env = TestEnv::required();
    let relays = vec![
        Relay::tcp(&env.docker_sock).await.unwrap(),
        Relay::tcp(&env.docker_sock).await.unwrap(),
        Relay::tcp(&env.docker_sock).await.unwrap(),
    ];
    let dns = std::sync::Arc::new(FakeDns::default());
    dns.ready(&relays, &[0, 1, 2]);
    let pool = BuilderPool::new([format!("dns+tcp://{SERVICE}:1234")], TlsOptions::default())
        .unwrap()
        .resolver(dns.clone())
        .refresh_interval(Duration::ZERO)
        .health_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .retry_after(Duration::from_secs(60));
    assert_eq!(pool.discover().await, [replica(0), replica(1), replica(2)]);

    // A key that prefers replica 1 lands there, by name, and only replica 1's relay is dialled.
    let key = key_preferring(&pool, &replica(1));
    for _ in 0..2 {
        let (_, address) = pool.client_for(&key).await.unwrap();
        assert_eq!(address, replica(1));
    }
    assert!(relays[1].connections() >= 1);
    assert_eq!((relays[0].connections(), relays[2].connections()), (0, 0));

    // Replica 1 stops being ready: the key moves to its second choice.
    let rank = pool.rank(&key);
    dns.ready(&relays, &[0, 2]);
    let (_, address) = pool.client_for(&key).await.unwrap();
    assert_eq!(address, rank[1]);
    assert!(!pool.addresses().contains(&replica(1)));

    // It is ready again: the key returns to it.
    dns.ready(&relays, &[0, 1, 2]);
    let (_, address) = pool.client_for(&key).await.unwrap();
    assert_eq!(address, replica(1));

    // Its daemon dies while DNS still lists it: failover to the next, which is reported.
    relays[1].stop().await;
    let (_, address) = pool.client_for(&key).await.unwrap();
    assert_eq!(address, rank[1]);
    assert_eq!(pool.candidates(&key).last(), Some(&replica(1)));

    // A real build over a discovered member.
    let dir = context(&env, &format!("echo {} > /x", unique_name("dnspool")));
    let options = BuildOptions::local(dir.path()).network(NetworkMode::Host);
    let build = pool
        .build(&key, &options, &mut |_: &StatusUpdate| {})
        .await
        .unwrap();
    assert_eq!(build.address, rank[1]);
}

fn run_cli(args: &[String]) -> (i32, String) {
    // The relays run on the test's runtime: call this from a blocking thread.
    let out = cicd_agents_testenv::cli().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_builds_on_a_pool_with_sticky_routing_and_failover() {
    let env = TestEnv::required();
    let relays = relays(&env).await;
    let addresses: Vec<String> = relays.iter().map(|r| r.addr().to_string()).collect();
    let pool = pool(&relays);
    let dir = context(&env, &format!("echo {} > /x", unique_name("clipool")));
    let key = "https://git.example.com/org/sticky.git";
    let rank = pool.rank(key);
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec![
            "build".into(),
            "--pool".into(),
            addresses.join(","),
            "--pool-key".into(),
            key.into(),
            "--network".into(),
            "host".into(),
            "--progress".into(),
            "plain".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(dir.path().display().to_string());
        args
    };
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || run_cli(&args))
            .await
            .unwrap()
    };
    let (code, stderr) = run(args(&[])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("builder: {}", rank[0])),
        "{stderr}"
    );
    // The progress names the daemon that builds, before its steps.
    let building = stderr
        .find(&format!("#0 building on {}\n", rank[0]))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(stderr[..building].find("#1 ").is_none(), "{stderr}");
    assert!(!stderr.contains("passed over"), "{stderr}");
    let first = relay_for(&relays, &rank[0]);
    assert!(first.connections() >= 1);
    let others: u64 = relays
        .iter()
        .filter(|r| r.addr() != rank[0])
        .map(|r| r.connections())
        .sum();
    assert_eq!(others, 0, "the key's daemon is {}: {stderr}", rank[0]);

    // Its daemon goes down: the CLI passes it over and says so.
    first.stop().await;
    let (code, stderr) = run(args(&[])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!("builder: {}", rank[1])),
        "{stderr}"
    );
    // Said once, by the progress, before the daemon that builds.
    let passed = format!("#0 passed over {}: ", rank[0]);
    assert_eq!(stderr.matches("passed over").count(), 1, "{stderr}");
    let passed_at = stderr.find(&passed).unwrap_or_else(|| panic!("{stderr}"));
    let building = stderr
        .find(&format!("#0 building on {}\n", rank[1]))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(passed_at < building, "{stderr}");

    // No progress (`--quiet`): the summary says it.
    let (code, stderr) = run(args(&["--quiet"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("#0 "), "{stderr}");
    assert!(
        stderr.contains(&format!("passed over {}: ", rank[0])),
        "{stderr}"
    );
}

#[test]
fn the_cli_refuses_bad_pools_with_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_context(dir.path(), [("Dockerfile", "FROM scratch\n")]).unwrap();
    let ctx = dir.path().display().to_string();
    for (args, wanted) in [
        (
            vec!["build", "--pool", "tcp://a:1", "--addr", "tcp://b:1", &ctx],
            "--pool",
        ),
        (vec!["build", "--pool", "bogus", &ctx], "bogus"),
        (
            vec!["build", "--pool", "dns+tcp://pool.ci.svc", &ctx],
            "dns+tcp://pool.ci.svc",
        ),
        (
            vec!["build", "--pool", "tcp://a:1,tcp://a:1", &ctx],
            "twice",
        ),
        (vec!["build", "--pool-key", "k", &ctx], "--pool"),
        // Where the error lists the schemes that would do, it lists the discovery form too.
        (
            vec!["build", "--pool", "tcp://a:1,ftp://h:1", &ctx],
            "invalid --pool address \"ftp://h:1\": unknown scheme \"ftp\"; supported are unix://, tcp://, docker:// and dns+tcp://",
        ),
        (
            vec!["build", "--pool", "ssh://h", &ctx],
            "invalid --pool address \"ssh://h\": the ssh:// transport is not supported; supported are unix://, tcp://, docker:// and dns+tcp://",
        ),
        (
            vec!["build", "--pool", "h:1234", &ctx],
            "or dns+tcp://<service>.<namespace>.svc:<port>",
        ),
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (code, stderr) = run_cli(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
}
