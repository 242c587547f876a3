//! The options every command that talks to a daemon shares, named like buildctl's.

use std::path::PathBuf;
use std::time::Duration;

use cicd_agents_buildkit::{Client, TlsOptions};
use clap::Args;

/// How to reach the daemon.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Daemon address: unix:///path, tcp://host:port, docker://[unix:///path|tcp://host:port].
    /// Default: $BUILDKIT_HOST, $DOCKER_HOST, then the usual sockets.
    #[arg(long, global = true)]
    pub addr: Option<String>,
    /// CA certificate (PEM) to verify a tcp:// daemon.
    #[arg(long = "tlscacert", global = true)]
    pub tls_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long = "tlscert", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long = "tlskey", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Server name expected in the daemon's certificate.
    #[arg(long = "tlsservername", global = true)]
    pub tls_server_name: Option<String>,
    /// Do not verify the daemon's TLS certificate (insecure: prints a warning).
    #[arg(long = "tls-skip-verify", global = true)]
    pub tls_skip_verify: bool,
    /// HTTP/2 keepalive as INTERVAL,TIMEOUT (default 15s,10s): a daemon that stops answering
    /// pings for INTERVAL+TIMEOUT fails the command instead of leaving it waiting.
    #[arg(long, global = true, value_name = "INTERVAL,TIMEOUT", value_parser = crate::duration::parse_keepalive)]
    pub keepalive: Option<(Duration, Duration)>,
}

impl ConnectionArgs {
    /// Whether any TLS flag was given.
    pub fn has_tls(&self) -> bool {
        self.tls().is_enabled()
    }

    /// The TLS options of the flags (also for every daemon of a `--pool`).
    pub fn tls(&self) -> TlsOptions {
        TlsOptions {
            ca_cert: self.tls_ca_cert.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
            insecure_skip_verify: self.tls_skip_verify,
        }
    }

    pub async fn connect(&self) -> Result<Client, cicd_agents_buildkit::Error> {
        let tls = TlsOptions {
            ca_cert: self.tls_ca_cert.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
            insecure_skip_verify: self.tls_skip_verify,
        };
        if self.tls_skip_verify {
            eprintln!(
                "WARNING: --tls-skip-verify: the daemon's TLS certificate is NOT verified; anyone on the network \
                 path can impersonate it and read build secrets and registry credentials"
            );
        }
        let mut builder = Client::builder().address_opt(self.addr.clone()).tls(tls);
        if let Some((interval, timeout)) = self.keepalive {
            builder = builder.keepalive(interval, timeout);
        }
        builder.connect().await
    }
}
