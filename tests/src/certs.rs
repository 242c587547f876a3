use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tempfile::TempDir;

use crate::error::{Error, IoContext, Result};

/// A throw-away PKI for TLS tests: a CA, a server certificate for `localhost` and
/// `127.0.0.1`, and a client certificate, all signed by the CA. The PEM files live in a
/// temporary directory removed when this value is dropped.
pub struct TestCerts {
    dir: TempDir,
    /// CA certificate (PEM).
    pub ca_pem: PathBuf,
    /// Server certificate (PEM), SANs `localhost` and `127.0.0.1`.
    pub server_cert: PathBuf,
    /// Server private key (PKCS#8 PEM).
    pub server_key: PathBuf,
    /// Client certificate (PEM), extended key usage clientAuth.
    pub client_cert: PathBuf,
    /// Client private key (PKCS#8 PEM).
    pub client_key: PathBuf,
    ca_der: CertificateDer<'static>,
    server_cert_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    client_cert_der: CertificateDer<'static>,
    client_key_der: Vec<u8>,
    ca_pem_text: String,
    client_cert_pem_text: String,
    client_key_pem_text: String,
}

impl std::fmt::Debug for TestCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCerts")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestCerts {
    /// Generates the CA and both certificates and writes them as PEM files into a new
    /// temporary directory.
    pub fn generate() -> Result<TestCerts> {
        Self::generate_with_name("cicd-agents-test")
    }

    /// Like [`TestCerts::generate`], with `name` used in the subjects' common names.
    pub fn generate_with_name(name: &str) -> Result<TestCerts> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} server"));
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(vec![format!("{name}-client")])?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} client"));
        client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client_params.use_authority_key_identifier_extension = true;
        let client_cert = client_params.signed_by(&client_key, &issuer)?;

        let dir = tempfile::Builder::new()
            .prefix("cicd-testcerts-")
            .tempdir()
            .context(|| "creating a temporary directory for certificates".to_string())?;
        let write = |file: &str, text: &str| -> Result<PathBuf> {
            let path = dir.path().join(file);
            std::fs::write(&path, text).context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let ca_pem_text = ca_cert.pem();
        let client_cert_pem_text = client_cert.pem();
        let client_key_pem_text = client_key.serialize_pem();
        let ca_pem = write("ca.pem", &ca_pem_text)?;
        let server_cert_path = write("server-cert.pem", &server_cert.pem())?;
        let server_key_path = write("server-key.pem", &server_key.serialize_pem())?;
        let client_cert_path = write("client-cert.pem", &client_cert_pem_text)?;
        let client_key_path = write("client-key.pem", &client_key_pem_text)?;

        Ok(TestCerts {
            ca_pem,
            server_cert: server_cert_path,
            server_key: server_key_path,
            client_cert: client_cert_path,
            client_key: client_key_path,
            ca_der: ca_cert.der().clone(),
            server_cert_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
            client_cert_der: client_cert.der().clone(),
            client_key_der: client_key.serialize_der(),
            ca_pem_text,
            client_cert_pem_text,
            client_key_pem_text,
            dir,
        })
    }

    /// The directory holding the PEM files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem_text(&self) -> &str {
        &self.ca_pem_text
    }

    /// The client certificate as PEM text.
    pub fn client_cert_pem_text(&self) -> &str {
        &self.client_cert_pem_text
    }

    /// The client key as PEM text.
    pub fn client_key_pem_text(&self) -> &str {
        &self.client_key_pem_text
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        Ok(roots)
    }

    /// A server configuration presenting the server certificate and requiring a client
    /// certificate signed by the CA (mTLS); ALPN `h2`.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>> {
        let provider = crypto_provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()?), provider.clone())
                .build()
                .map_err(|e| Error::Tls(format!("client verifier: {e}")))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_cert_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A client configuration trusting the CA and presenting the client certificate;
    /// ALPN `h2`.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key_der.clone()));
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(vec![self.client_cert_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A client configuration trusting the CA but presenting no client certificate (for
    /// negative mTLS tests); ALPN `h2`.
    pub fn client_config_without_cert(&self) -> Result<Arc<ClientConfig>> {
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots()?)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}
