//! Smoke test of the test environment itself: it loads, and the relay turns the Docker
//! socket into something that speaks HTTP/2 like buildkitd, over unix, tcp and tcp+mTLS.
//! Needs `scripts/testenv.sh up`; fails (does not skip) without it.

use std::time::Duration;

use cicd_agents_testenv::{probe_h2, Relay, TestCerts, TestEnv};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

fn env() -> TestEnv {
    match TestEnv::load() {
        Ok(env) => env,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn env_loads() {
    let env = env();
    assert!(
        env.docker_addr.starts_with("docker://unix://"),
        "{}",
        env.docker_addr
    );
    assert!(
        env.base_image.starts_with(&env.registry),
        "{}",
        env.base_image
    );
    assert!(env.git_url.starts_with("http://"), "{}", env.git_url);
    assert!(!env.git_token.is_empty());
    assert!(env.git_root.is_dir());
}

#[test]
fn bare_repo_is_created_idempotently() {
    let env = env();
    let name = env.unique_name("smoke-repo");
    let url = env.create_bare_repo(&name).unwrap();
    assert_eq!(url, format!("{}/{}.git", env.git_url, name));
    assert_eq!(env.create_bare_repo(&name).unwrap(), url);
    let path = env.repo_path(&name).unwrap();
    assert!(path.join("HEAD").is_file());
    let out = env
        .git_command(&env.git_root)
        .args(["ls-remote", &env.authed_url(&url)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env
        .git_command(&env.git_root)
        .args([
            "ls-remote",
            &url.replace("http://", "http://x:wrong-token@"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "wrong token must be rejected");
    std::fs::remove_dir_all(path).unwrap();
}

#[tokio::test]
async fn unix_relay_speaks_h2() {
    let env = env();
    let relay = Relay::unix(&env.docker_sock).await.unwrap();
    assert!(relay.addr().starts_with("unix:///"), "{}", relay.addr());
    let path = relay.unix_path().unwrap().to_path_buf();
    assert_eq!(relay.addr(), format!("unix://{}", path.display()));

    let mut conn = UnixStream::connect(&path).await.unwrap();
    probe_h2(&mut conn).await.unwrap();
    assert_eq!(relay.connections(), 1);

    // A second connection works independently.
    let mut conn2 = UnixStream::connect(&path).await.unwrap();
    probe_h2(&mut conn2).await.unwrap();
    assert_eq!(relay.connections(), 2);
    assert_eq!(relay.active_connections(), 2);

    // Cutting connections closes them but keeps the listener.
    relay.kill_connections();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break 0,
                Ok(_) => continue, // frames the daemon sent before the cut
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(n, 0);
    let mut conn3 = UnixStream::connect(&path).await.unwrap();
    probe_h2(&mut conn3).await.unwrap();

    // Stopping refuses new connections; a new relay can take the same path.
    relay.stop().await;
    assert!(relay.is_stopped());
    assert!(UnixStream::connect(&path).await.is_err());
    let again = Relay::unix_at(&env.docker_sock, &path).await.unwrap();
    let mut conn4 = UnixStream::connect(&path).await.unwrap();
    probe_h2(&mut conn4).await.unwrap();
    drop(again);
}

#[tokio::test]
async fn tcp_relay_speaks_h2() {
    let env = env();
    let relay = Relay::tcp(&env.docker_sock).await.unwrap();
    let addr = relay.socket_addr().unwrap();
    assert_eq!(relay.addr(), format!("tcp://{addr}"));
    let mut conn = TcpStream::connect(addr).await.unwrap();
    probe_h2(&mut conn).await.unwrap();
    relay.stop().await;
    // The freed port may already belong to a relay of a test running in
    // parallel, so a connect can succeed; what must hold is that the stopped
    // relay accepts nothing more.
    let accepted = relay.connections();
    if let Ok(stream) = TcpStream::connect(addr).await {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(stream);
    }
    assert_eq!(
        relay.connections(),
        accepted,
        "the stopped relay accepted a connection"
    );
}

#[tokio::test]
async fn tls_relay_speaks_h2_with_client_cert() {
    let env = env();
    let certs = TestCerts::generate().unwrap();
    for p in [
        &certs.ca_pem,
        &certs.server_cert,
        &certs.server_key,
        &certs.client_cert,
        &certs.client_key,
    ] {
        assert!(
            std::fs::read_to_string(p)
                .unwrap()
                .starts_with("-----BEGIN "),
            "{}",
            p.display()
        );
    }
    let relay = Relay::tls(&env.docker_sock, &certs).await.unwrap();
    let addr = relay.socket_addr().unwrap();
    assert!(relay.addr().starts_with("tcp://127.0.0.1:"));

    for server_name in ["localhost", "127.0.0.1"] {
        let connector = TlsConnector::from(certs.client_config().unwrap());
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        probe_h2(&mut tls).await.unwrap();
    }

    // Without a client certificate the server must refuse (mTLS).
    let connector = TlsConnector::from(certs.client_config_without_cert().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost".to_string()).unwrap();
    match connector.connect(name, tcp).await {
        Err(_) => {}
        Ok(mut tls) => {
            // TLS 1.3: the client learns about the rejection on its first read.
            assert!(
                probe_h2(&mut tls).await.is_err(),
                "relay accepted a client without certificate"
            );
        }
    }

    // A client certificate from another CA is refused.
    let other = TestCerts::generate_with_name("intruder").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&certs.ca_pem).unwrap())
        .unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from_pem_file(&other.client_cert).unwrap()],
        PrivateKeyDer::from_pem_file(&other.client_key).unwrap(),
    )
    .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(std::sync::Arc::new(cfg));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost".to_string()).unwrap();
    match connector.connect(name, tcp).await {
        Err(_) => {}
        Ok(mut tls) => {
            assert!(
                probe_h2(&mut tls).await.is_err(),
                "relay accepted a client certificate from another CA"
            );
        }
    }

    // And a client trusting another CA does not accept the relay's server certificate.
    let connector = TlsConnector::from(other.client_config().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost".to_string()).unwrap();
    assert!(connector.connect(name, tcp).await.is_err());
}
