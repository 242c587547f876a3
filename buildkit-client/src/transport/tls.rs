//! TLS and mutual TLS for `tcp://` daemons, configured like `buildctl`'s
//! `--tlscacert`, `--tlscert`, `--tlskey` and `--tlsservername`.
//!
//! The daemon's certificate is always verified (against `ca_cert`, or the
//! system's roots) and must carry the expected name, unless
//! [`TlsOptions::insecure_skip_verify`] is set explicitly; that logs a
//! warning each time a connection is configured, and the handshake still
//! checks that the daemon holds the key of the certificate it shows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// TLS options for a `tcp://` daemon. TLS is used when any option is set. Serialises as
/// its fields (paths and a name, nothing secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TlsOptions {
    /// PEM file with the certificate authorities that sign the daemon's certificate.
    /// Without it the system's roots are trusted.
    pub ca_cert: Option<PathBuf>,
    /// PEM file with the client certificate (mutual TLS).
    pub cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key (mutual TLS).
    pub key: Option<PathBuf>,
    /// The name the daemon's certificate must carry; defaults to the address's host.
    pub server_name: Option<String>,
    /// Accept any certificate from the daemon, unverified (like buildctl's
    /// `--tlsskipverify`). Anyone on the path can then impersonate the
    /// daemon and read the build's secrets and credentials: for tests and
    /// throw-away set-ups only. Off by default; a warning is logged when on.
    pub insecure_skip_verify: bool,
}

impl TlsOptions {
    /// Whether any option is set, i.e. whether TLS is wanted.
    pub fn is_enabled(&self) -> bool {
        self.ca_cert.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.server_name.is_some()
            || self.insecure_skip_verify
    }

    /// Trusts the certificate authorities in this PEM file.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// Presents this client certificate and key (mutual TLS).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert = Some(cert.into());
        self.key = Some(key.into());
        self
    }

    /// Expects the daemon's certificate to carry this name.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Sets every file and the server name at once, each only if given
    /// (for front ends whose options are all optional).
    pub fn with_paths(
        mut self,
        ca_cert: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        server_name: Option<String>,
    ) -> Self {
        self.ca_cert = ca_cert.or(self.ca_cert);
        self.cert = cert.or(self.cert);
        self.key = key.or(self.key);
        self.server_name = server_name.or(self.server_name);
        self
    }

    /// Skips verifying the daemon's certificate (insecure; see the field).
    pub fn insecure_skip_verify(mut self, skip: bool) -> Self {
        self.insecure_skip_verify = skip;
        self
    }

    /// Checks what can be checked without reading the files, as connecting checks it: a
    /// client certificate comes with its key and a key with its certificate
    /// ([`Error::Tls`] names the one given), and the server name is a DNS name or an IP
    /// address ([`Error::Tls`] with no path).
    pub fn check(&self) -> Result<()> {
        match (&self.cert, &self.key) {
            (Some(cert), None) => Err(tls_error(
                Some(cert),
                "a client certificate was given without its key",
            )),
            (None, Some(key)) => Err(tls_error(
                Some(key),
                "a client key was given without its certificate",
            )),
            _ => match &self.server_name {
                Some(name) => server_name(name).map(drop),
                None => Ok(()),
            },
        }
    }
}

/// `name` as the handshake verifies it.
fn server_name(name: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(name.to_string())
        .map_err(|_| tls_error(None, format!("{name:?} is not a valid TLS server name")))
}

/// Accepts any server certificate, but still checks the handshake
/// signatures (the daemon must hold the key of the certificate it shows).
#[derive(Debug)]
struct UnverifiedServer {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for UnverifiedServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A ready TLS connector plus the name to verify.
#[derive(Clone)]
pub(crate) struct TlsSettings {
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn tls_error(path: Option<&Path>, reason: impl Into<String>) -> Error {
    Error::Tls {
        path: path.map(Path::to_path_buf),
        reason: reason.into(),
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path)
        .map_err(|err| tls_error(Some(path), format!("cannot read certificate file: {err}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| tls_error(Some(path), format!("not a PEM certificate file: {err}")))?;
    if certs.is_empty() {
        return Err(tls_error(Some(path), "no certificate found in the file"));
    }
    Ok(certs)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = std::fs::read(path)
        .map_err(|err| tls_error(Some(path), format!("cannot read key file: {err}")))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| {
        tls_error(
            Some(path),
            format!("no usable PEM private key in the file: {err}"),
        )
    })
}

impl TlsOptions {
    /// Loads the files and builds the connector for a daemon at `host`.
    pub(crate) fn settings(&self, host: &str) -> Result<TlsSettings> {
        self.check()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_cert {
            _ if self.insecure_skip_verify => {
                tracing::warn!(
                    host,
                    "TLS certificate verification of the daemon is OFF (insecure_skip_verify): \
                     anyone on the network path can impersonate it and read secrets and credentials"
                );
            }
            Some(path) => {
                for cert in read_certificates(path)? {
                    roots.add(cert).map_err(|err| {
                        tls_error(Some(path), format!("unusable CA certificate: {err}"))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(tls_error(
                        None,
                        "no CA certificate given and no system certificate authorities found",
                    ));
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| tls_error(None, err.to_string()))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(UnverifiedServer { provider }))
        } else {
            builder.with_root_certificates(roots)
        };
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certificates(cert)?;
                let key_der = read_private_key(key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|err| {
                        tls_error(
                            Some(key),
                            format!("client certificate and key do not fit: {err}"),
                        )
                    })?
            }
            // `check` refused a certificate without its key and a key without its certificate.
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = server_name(self.server_name.as_deref().unwrap_or(host))?;
        Ok(TlsSettings {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_refuses_half_a_client_certificate_and_bad_server_names() {
        assert!(TlsOptions::default().check().is_ok());
        let full = TlsOptions::default()
            .ca_cert("/ca.pem")
            .client_cert("/cert.pem", "/key.pem")
            .server_name("buildkitd-0.buildkitd.ci.svc");
        assert!(full.check().is_ok());
        assert!(full.clone().server_name("10.0.0.1").check().is_ok());
        let cert_only = TlsOptions {
            cert: Some("/cert.pem".into()),
            ..TlsOptions::default()
        };
        let key_only = TlsOptions {
            key: Some("/key.pem".into()),
            ..TlsOptions::default()
        };
        for (options, path) in [(cert_only, "/cert.pem"), (key_only, "/key.pem")] {
            match options.check() {
                Err(Error::Tls { path: Some(p), .. }) => assert_eq!(p, Path::new(path)),
                other => panic!("{options:?}: {other:?}"),
            }
        }
        for bad in ["", "a b", "host_with space", "x..y"] {
            match TlsOptions::default().server_name(bad).check() {
                Err(Error::Tls { path: None, reason }) => {
                    assert!(reason.contains("server name"), "{reason}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
