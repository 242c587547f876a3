//! Errors of the BuildKit client. Every variant names what went wrong and where:
//! the address, the file, the option or the call.

use std::path::PathBuf;
use std::time::Duration;

pub use cicd_agents_types::{ErrorKind, HasKind};

/// ` "value"` for a message, or nothing for an empty value.
fn quoted_value(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!(" {value:?}")
    }
}

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address that cannot be parsed.
    #[error("invalid BuildKit address {address:?}{origin}: {reason}")]
    InvalidAddress {
        /// The address as written (user information hidden).
        address: String,
        /// What is wrong with it.
        reason: crate::address::AddressProblem,
        /// Where it was read from: given, or an environment variable.
        origin: crate::address::AddressOrigin,
    },

    /// No address was given and none of the usual places has a daemon.
    #[error("no BuildKit daemon found; tried {}. Give the daemon's address or set BUILDKIT_HOST", tried.join(", "))]
    NoDaemonFound {
        /// Every place that was looked at, with why it did not do.
        tried: Vec<String>,
    },

    /// The daemon could not be reached.
    #[error("cannot connect to BuildKit at {address}: {reason}")]
    Connect {
        /// The address that was dialled.
        address: String,
        /// Why: refused, no such socket, TLS handshake, …
        reason: String,
    },

    /// The daemon did not answer in time.
    #[error("cannot connect to BuildKit at {address}: no answer within {}s", timeout.as_secs_f32())]
    ConnectTimeout {
        /// The address that was dialled.
        address: String,
        /// How long we waited.
        timeout: Duration,
    },

    /// A TLS option that cannot be used.
    #[error("TLS configuration: {reason}{}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Tls {
        /// The file involved, if any.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },

    /// The connection to the daemon broke while something was under way: reset,
    /// closed, or silent past the keepalive timeout. The operation did not finish.
    #[error("lost the connection to BuildKit at {address} while {during}: {reason}")]
    ConnectionLost {
        /// The daemon's address.
        address: String,
        /// What was happening: `uploading the build context`, `solving`,
        /// `exporting/pushing`, `reading progress`, `calling Info`, …
        during: String,
        /// What the transport reported (reset, end of stream, keepalive timeout, …).
        reason: String,
    },

    /// A Control API call failed.
    #[error("{call} on {address} failed: {}", describe_status(status))]
    Rpc {
        /// The call, e.g. `Info`.
        call: &'static str,
        /// The daemon's address.
        address: String,
        /// The gRPC status returned.
        #[source]
        status: tonic::Status,
    },

    /// A build or connection option that cannot be used, e.g. a malformed
    /// output spec. Front ends word it in their own vocabulary from `field`.
    #[error("invalid {field}{}: {reason}", quoted_value(value))]
    InvalidOption {
        /// Which option the value belongs to.
        field: crate::flags::OptionField,
        /// The value as given (empty when the problem is not one value).
        value: String,
        /// What is wrong.
        reason: String,
    },

    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The session the daemon calls back into failed.
    #[error("build session: {0}")]
    Session(String),

    /// The build itself failed.
    #[error(transparent)]
    Build(Box<crate::build::BuildError>),

    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// The error for a failed Control API call: a broken connection becomes
    /// [`Error::ConnectionLost`] (or the reconnect's [`Error::Connect`]), anything
    /// the daemon answered stays [`Error::Rpc`].
    pub(crate) fn rpc(
        call: &'static str,
        address: &impl std::fmt::Display,
        status: tonic::Status,
    ) -> Self {
        match Error::from_connection_status(address, &format!("calling {call}"), &status) {
            Some(error) => error,
            None => Error::Rpc {
                call,
                address: address.to_string(),
                status,
            },
        }
    }

    /// If `status` stands for a broken connection (made on our side from a
    /// transport error, not sent by the daemon), the error saying so: a failed
    /// reconnect as [`Error::Connect`]/[`Error::ConnectTimeout`], otherwise
    /// [`Error::ConnectionLost`] with `during`.
    pub(crate) fn from_connection_status(
        address: &impl std::fmt::Display,
        during: &str,
        status: &tonic::Status,
    ) -> Option<Error> {
        use std::error::Error as _;
        let reason = connection_failure(status)?;
        if let Some(source) = status.source() {
            if let Some(connect) = take_connect_error(source) {
                return Some(connect);
            }
        }
        Some(Error::ConnectionLost {
            address: address.to_string(),
            during: during.to_string(),
            reason,
        })
    }

    /// A value of `field` that cannot be used.
    pub(crate) fn invalid(
        field: crate::flags::OptionField,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidOption {
            field,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// An option of `field` that cannot be used, where no single value is at fault.
    pub(crate) fn option(field: crate::flags::OptionField, reason: impl Into<String>) -> Self {
        Error::invalid(field, "", reason)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The registry failure of a build that failed talking to a registry (push, cache
    /// export or import, pull).
    pub fn registry_failure(&self) -> Option<&crate::build::RegistryFailure> {
        match self {
            Error::Build(build) => build.registry.as_ref(),
            _ => None,
        }
    }

    /// Whether a registry refused the build's credentials (HTTP 401/403).
    pub fn is_registry_auth_failure(&self) -> bool {
        self.registry_failure()
            .is_some_and(crate::build::RegistryFailure::is_auth)
    }

    /// Whether the caller's input is the cause: a malformed address, option,
    /// spec or TLS setting, a missing context, Dockerfile, secret file or SSH
    /// socket. Such errors are found before anything is sent to the daemon;
    /// the command line exits with 2 for them (bad usage), 1 for the rest.
    /// The same as `self.kind() == ErrorKind::InvalidInput`.
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }

    /// Whether the daemon or the connection to it is the cause (as opposed to
    /// the request or the build).
    pub fn is_connection(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::NoDaemonFound { .. }
            | Error::ConnectionLost { .. } => true,
            Error::Rpc { status, .. } => status.code() == tonic::Code::Unavailable,
            _ => false,
        }
    }
}

impl HasKind for Error {
    /// * [`ErrorKind::InvalidInput`]: a malformed address, option or TLS setting;
    /// * [`ErrorKind::Connection`]: no daemon, a refused, timed-out or lost connection, an
    ///   `Unavailable` call;
    /// * [`ErrorKind::Remote`]: the daemon refused a call, or a registry refused the build;
    /// * [`ErrorKind::BuildFailed`]: the build ran and failed;
    /// * [`ErrorKind::Cancelled`], [`ErrorKind::Io`]; the build session's own failures are
    ///   [`ErrorKind::Internal`].
    fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidAddress { .. } | Error::InvalidOption { .. } | Error::Tls { .. } => {
                ErrorKind::InvalidInput
            }
            Error::NoDaemonFound { .. }
            | Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::ConnectionLost { .. } => ErrorKind::Connection,
            Error::Rpc { status, .. } => match status.code() {
                tonic::Code::Unavailable => ErrorKind::Connection,
                tonic::Code::Cancelled => ErrorKind::Cancelled,
                _ => ErrorKind::Remote,
            },
            Error::Io { .. } => ErrorKind::Io,
            Error::Session(_) => ErrorKind::Internal,
            Error::Build(build) if build.registry.is_some() => ErrorKind::Remote,
            Error::Build(_) => ErrorKind::BuildFailed,
            Error::Cancelled => ErrorKind::Cancelled,
        }
    }
}

/// A gRPC status the way a person wants to read it: the code and the message,
/// without tonic's metadata dump.
pub(crate) fn describe_status(status: &tonic::Status) -> String {
    let message = status.message().trim();
    if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{message} ({:?})", status.code())
    }
}

/// Why a call failed, if it failed because the connection broke rather than
/// because the daemon answered with an error.
///
/// A status the daemon sends arrives in trailers and carries no source error;
/// tonic makes a status *on our side* from a transport failure (a reset or
/// closed HTTP/2 connection, an end of stream, a keepalive timeout, a GOAWAY)
/// and keeps that failure as its source. A body that ends in the middle of a
/// message is the other local sign of a cut.
pub(crate) fn connection_failure(status: &tonic::Status) -> Option<String> {
    use std::error::Error as _;
    match status.source() {
        Some(source) => {
            let chain = error_chain(source);
            let message = status.message().trim();
            Some(if message.is_empty() || chain.contains(message) {
                chain
            } else if message.contains(&chain) {
                message.to_string()
            } else {
                format!("{message}: {chain}")
            })
        }
        None if status.code() == tonic::Code::Internal
            && status.message().contains("Unexpected EOF") =>
        {
            Some(status.message().to_string())
        }
        None => None,
    }
}

/// A failed (re)connect found in a source chain, as this crate's error.
pub(crate) fn take_connect_error(err: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(candidate) = current {
        if let Some(ours) = candidate.downcast_ref::<Error>() {
            return match ours {
                Error::Connect { address, reason } => Some(Error::Connect {
                    address: address.clone(),
                    reason: reason.clone(),
                }),
                Error::ConnectTimeout { address, timeout } => Some(Error::ConnectTimeout {
                    address: address.clone(),
                    timeout: *timeout,
                }),
                _ => None,
            };
        }
        current = candidate.source();
    }
    None
}

/// Joins an error and its sources into one line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_sent_by_the_daemon_is_not_a_lost_connection() {
        let status = tonic::Status::unavailable("no active session for abc");
        assert!(connection_failure(&status).is_none());
        assert!(matches!(
            Error::rpc("Solve", &"unix:///s", status),
            Error::Rpc { .. }
        ));
    }

    #[test]
    fn a_status_made_from_a_transport_failure_is_a_lost_connection_naming_the_stage() {
        let io = std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "stream closed because of a broken pipe",
        );
        let status = tonic::Status::from_error(Box::new(io));
        let err = Error::from_connection_status(&"unix:///run/buildkit.sock", "solving", &status)
            .expect("lost");
        assert!(err.is_connection());
        let text = err.to_string();
        assert!(
            text.contains("unix:///run/buildkit.sock") && text.contains("while solving"),
            "{text}"
        );
        assert!(text.contains("broken pipe"), "{text}");
        let err = Error::rpc(
            "Info",
            &"unix:///s",
            tonic::Status::from_error(Box::new(std::io::Error::other("eof"))),
        );
        assert!(
            matches!(&err, Error::ConnectionLost { during, .. } if during == "calling Info"),
            "{err:?}"
        );
    }

    #[test]
    fn a_cut_mid_message_is_a_lost_connection() {
        let status = tonic::Status::internal("Unexpected EOF decoding stream.");
        assert!(connection_failure(&status).is_some());
        assert!(connection_failure(&tonic::Status::internal("bad digest")).is_none());
    }
}
