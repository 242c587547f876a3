//! The Control API against the real BuildKit of the test environment, over
//! every transport: docker:// directly, and unix, tcp and tcp+mTLS through
//! relays that make the Docker daemon's BuildKit look like a standalone one.

use std::time::{Duration, Instant};

use cicd_agents_buildkit::{Client, DiskUsageOptions, TlsOptions};
use cicd_agents_testenv::{cli, Relay, TestCerts, TestEnv};

async fn check_daemon(client: &Client) {
    let info = client.info().await.expect("info");
    assert!(
        info.version.starts_with("v0.13"),
        "expected BuildKit 0.13.x, got {}",
        info.version_display()
    );
    let workers = client.list_workers().await.expect("workers");
    assert!(!workers.is_empty(), "no workers");
    assert!(
        workers[0].platforms.iter().any(|p| p.starts_with("linux/")),
        "{:?}",
        workers[0].platforms
    );
}

#[tokio::test]
async fn info_and_workers_over_docker() {
    let env = TestEnv::required();
    let client = Client::connect(&env.docker_addr).await.expect("connect");
    check_daemon(&client).await;
    let info = client.info().await.unwrap();
    assert!(
        info.docker_engine
            .as_deref()
            .unwrap_or_default()
            .starts_with("26."),
        "{info:?}"
    );
    // The test daemon runs the containerd image store (features.containerd-snapshotter),
    // which the embedded BuildKit's worker labels tell without `GET /info`.
    assert_eq!(
        info.docker_image_store.as_deref(),
        Some("io.containerd.snapshotter.v1"),
        "{info:?}"
    );
    assert!(info.supports_attestations(), "{info:?}");
}

#[tokio::test]
async fn info_and_workers_over_a_unix_socket() {
    let env = TestEnv::required();
    let relay = Relay::unix(&env.docker_sock).await.unwrap();
    assert!(relay.addr().starts_with("unix://"));
    let client = Client::connect(relay.addr()).await.expect("connect");
    // A standalone-looking daemon reporting v0.0.0+unknown has no engine to
    // infer from: the version says what the daemon says.
    let info = client.info().await.unwrap();
    assert_eq!(
        info.reported.as_ref().map(|r| r.version.as_str()),
        Some("v0.0.0+unknown")
    );
    assert!(!client.list_workers().await.unwrap().is_empty());
    assert!(relay.connections() >= 1);
}

#[tokio::test]
async fn info_and_workers_over_tcp() {
    let env = TestEnv::required();
    let relay = Relay::tcp(&env.docker_sock).await.unwrap();
    let client = Client::connect(relay.addr()).await.expect("connect");
    assert!(!client.list_workers().await.unwrap().is_empty());
}

#[tokio::test]
async fn info_and_workers_over_tcp_with_mutual_tls() {
    let env = TestEnv::required();
    let certs = TestCerts::generate().unwrap();
    let relay = Relay::tls(&env.docker_sock, &certs).await.unwrap();
    let tls = TlsOptions::default()
        .ca_cert(&certs.ca_pem)
        .client_cert(&certs.client_cert, &certs.client_key)
        .server_name("localhost");
    let client = Client::builder()
        .address(relay.addr())
        .tls(tls)
        .connect()
        .await
        .expect("connect with mTLS");
    assert!(!client.list_workers().await.unwrap().is_empty());
    assert!(client.info().await.is_ok());

    // Without the client certificate the relay refuses the handshake.
    let no_cert = TlsOptions::default()
        .ca_cert(&certs.ca_pem)
        .server_name("localhost");
    let err = Client::builder()
        .address(relay.addr())
        .tls(no_cert)
        .connect()
        .await;
    let failed = match err {
        Err(err) => err.to_string(),
        Ok(client) => match client.list_workers().await {
            Err(err) => err.to_string(),
            Ok(_) => panic!("a client without certificate was served"),
        },
    };
    assert!(failed.contains(relay.addr()), "{failed}");

    // A CA that did not sign the server certificate is refused.
    let other = TestCerts::generate().unwrap();
    let wrong_ca = TlsOptions::default()
        .ca_cert(&other.ca_pem)
        .client_cert(&other.client_cert, &other.client_key);
    let err = Client::builder()
        .address(relay.addr())
        .tls(wrong_ca)
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS") || err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn disk_usage_and_prune() {
    let env = TestEnv::required();
    let client = Client::connect(&env.docker_addr).await.unwrap();
    let records = client
        .disk_usage(&DiskUsageOptions::default())
        .await
        .unwrap();
    for record in &records {
        assert!(!record.id.is_empty());
    }
    // Pruning only records unused for a very long time frees nothing that
    // other tests need, but exercises the streaming call end to end.
    let freed = client
        .prune_all(
            &cicd_agents_buildkit::PruneOptions::default()
                .keep_duration(Duration::from_secs(365 * 86_400)),
        )
        .await
        .unwrap();
    assert!(freed.iter().all(|r| !r.id.is_empty()));
}

#[tokio::test]
async fn a_dead_address_fails_fast_and_names_the_address() {
    let started = Instant::now();
    let err = Client::connect("unix:///nonexistent.sock")
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.contains("unix:///nonexistent.sock"), "{err}");

    let started = Instant::now();
    let err = Client::connect("tcp://127.0.0.1:1")
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.contains("tcp://127.0.0.1:1"), "{err}");

    // A socket that accepts but never answers the upgrade: the connect gives up.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let _holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let address = format!("docker://unix://{}", path.display());
    let err = Client::builder()
        .address(&address)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.contains(&address), "{err}");
}

#[test]
fn command_line_info_workers_and_json() {
    let env = TestEnv::required();
    let output = cli()
        .args(["debug", "info", "--addr", &env.docker_addr])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("BuildKit: v0.13"), "{text}");

    let output = cli()
        .args([
            "debug",
            "info",
            "--addr",
            &env.docker_addr,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(json["version"].as_str().unwrap().starts_with("v0.13"));

    let output = cli()
        .args([
            "debug",
            "workers",
            "--addr",
            &env.docker_addr,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(json[0]["platforms"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));

    let output = cli()
        .args(["du", "--addr", &env.docker_addr, "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let _: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
}

#[test]
fn command_line_errors_are_clear_and_never_panic() {
    let started = Instant::now();
    let output = cli()
        .args(["debug", "info", "--addr", "unix:///nonexistent.sock"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unix:///nonexistent.sock"), "{stderr}");
    for bad in [
        "",
        "tcp://",
        "tcp://h:99999",
        "bogus://x",
        "docker://nothing",
        "unix://rel",
        "tcp://[::1",
        "\u{1F600}://x",
    ] {
        let output = cli()
            .args(["debug", "info", "--addr", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{bad:?}: {stderr}");
        if !bad.is_empty() {
            assert!(!output.status.success(), "{bad:?} succeeded");
            assert!(stderr.contains("error"), "{bad:?}: {stderr}");
        }
    }
}
