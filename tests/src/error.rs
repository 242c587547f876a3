use std::io;

/// Errors of the test-support crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The test environment is not configured or not running.
    #[error(
        "the cicd-agents test environment is not available: {0}\n\
         start it (as root) with:  scripts/testenv.sh up\n\
         tests read the CICD_TESTENV_* variables from the process environment, \
         else from $CICD_TESTENV_DIR/env (default /var/lib/cicd-agents-testenv/env)"
    )]
    EnvMissing(String),

    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// A command (git, ...) failed.
    #[error("{0}")]
    Command(String),

    /// An invalid argument (file name, repository name, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Certs(#[from] rcgen::Error),

    /// Building a TLS configuration failed.
    #[error("TLS configuration failed: {0}")]
    Tls(String),

    /// The Docker daemon refused the upgrade to HTTP/2 or answered something unexpected.
    #[error("docker upgrade failed: {0}")]
    Upgrade(String),

    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e.to_string())
    }
}
