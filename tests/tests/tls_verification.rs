//! TLS verification against the real BuildKit behind the test environment's
//! mutual-TLS relay: the daemon's certificate is verified by default (a
//! wrong CA or name fails with an error naming the host), and skipping
//! verification takes an explicit option that warns.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cicd_agents_buildkit::{Client, TlsOptions};
use cicd_agents_testenv::{cli, Relay, TestCerts, TestEnv};

/// Connects and makes one call, returning the error text if either fails.
async fn try_daemon(address: &str, tls: TlsOptions) -> Result<(), String> {
    let client = Client::builder()
        .address(address)
        .tls(tls)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    client
        .list_workers()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_with_the_host_named() {
    let env = TestEnv::required();
    let certs = TestCerts::generate().unwrap();
    let relay = Relay::tls(&env.docker_sock, &certs).await.unwrap();
    let host = relay.socket_addr().unwrap().ip().to_string();

    // The right client certificate, but a CA that did not sign the daemon's.
    let other = TestCerts::generate_with_name("someone-else").unwrap();
    let wrong_ca = TlsOptions::default()
        .ca_cert(&other.ca_pem)
        .client_cert(&certs.client_cert, &certs.client_key);
    let err = try_daemon(relay.addr(), wrong_ca)
        .await
        .expect_err("a daemon certificate from an unknown CA was accepted");
    assert!(err.contains(&host), "the error names the host: {err}");
    assert!(err.contains("certificate could not be verified"), "{err}");
    assert!(
        err.contains("CA certificate") && err.contains("skip verification") && !err.contains("--"),
        "the error says the ways out: {err}"
    );

    // The right CA, but a name the certificate does not carry.
    let wrong_name = TlsOptions::default()
        .ca_cert(&certs.ca_pem)
        .client_cert(&certs.client_cert, &certs.client_key)
        .server_name("not-the-daemon.example");
    let err = try_daemon(relay.addr(), wrong_name)
        .await
        .expect_err("a certificate for another name was accepted");
    assert!(
        err.contains("not-the-daemon.example") && err.contains(&host),
        "{err}"
    );

    // The right CA and name: verification passes.
    let right = TlsOptions::default()
        .ca_cert(&certs.ca_pem)
        .client_cert(&certs.client_cert, &certs.client_key);
    try_daemon(relay.addr(), right)
        .await
        .expect("the properly verified daemon");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn skip_verify_connects_to_an_unverifiable_daemon_and_warns() {
    let env = TestEnv::required();
    let certs = TestCerts::generate().unwrap();
    let relay = Relay::tls(&env.docker_sock, &certs).await.unwrap();

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // No CA at all, and a name the certificate does not carry: only
    // skipping verification gets through (the relay still wants our
    // client certificate).
    let skip = TlsOptions::default()
        .client_cert(&certs.client_cert, &certs.client_key)
        .server_name("not-the-daemon.example")
        .insecure_skip_verify(true);
    try_daemon(relay.addr(), skip)
        .await
        .expect("skip-verify connects");
    let logs = captured.text();
    assert!(
        logs.contains("WARN") && logs.contains("verification") && logs.contains("OFF"),
        "{logs}"
    );

    // It is not the default.
    assert!(!TlsOptions::default().insecure_skip_verify);
    let verified = TlsOptions::default()
        .client_cert(&certs.client_cert, &certs.client_key)
        .server_name("not-the-daemon.example");
    try_daemon(relay.addr(), verified)
        .await
        .expect_err("an unverifiable daemon was accepted without skip-verify");
}

#[tokio::test]
async fn cli_tls_skip_verify_warns_on_stderr_and_the_default_verifies() {
    let env = TestEnv::required();
    let certs = TestCerts::generate().unwrap();
    let relay = Relay::tls(&env.docker_sock, &certs).await.unwrap();
    let other = TestCerts::generate_with_name("someone-else").unwrap();
    let client_cert = certs.client_cert.to_str().unwrap();
    let client_key = certs.client_key.to_str().unwrap();
    let addr = relay.addr().to_string();
    let base = [
        "debug",
        "workers",
        "--addr",
        addr.as_str(),
        "--tlscert",
        client_cert,
        "--tlskey",
        client_key,
    ];

    let run = |extra: Vec<String>| {
        let mut command = cli();
        command.args(base).args(extra);
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };
    let out = run(vec![
        "--tlscacert".into(),
        other.ca_pem.to_str().unwrap().into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong CA was accepted: {stderr}");
    assert!(
        stderr.contains("127.0.0.1")
            && stderr.contains("certificate could not be verified")
            && stderr.contains("--tlscacert")
            && stderr.contains("--tls-skip-verify"),
        "{stderr}"
    );

    let out = run(vec!["--tls-skip-verify".into()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "skip-verify failed: {stderr}");
    assert!(
        stderr.contains("WARNING") && stderr.contains("--tls-skip-verify"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).is_empty());
}
