//! What kind of failure an error is, shared by every crate's error type.

use std::fmt;

/// The kind of a failure. Front ends decide from the kind alone what to do with an error:
/// the command line's exit code (2 for [`ErrorKind::InvalidInput`]), Python's exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input is wrong: a malformed value, a missing file named by the caller,
    /// an invalid definition. Retrying the same input fails the same way.
    InvalidInput,
    /// The daemon, registry or git server could not be reached (refused, timed out, TLS).
    Connection,
    /// A remote answered and refused: the registry, git server or daemon said no
    /// (authentication, permission, push rejected, unsupported request).
    Remote,
    /// The build ran and failed (a failing `RUN`, a missing base image, a frontend error).
    BuildFailed,
    /// The operation was cancelled (Ctrl-C, a dropped future, a deadline set by the caller).
    Cancelled,
    /// A local file system operation failed.
    Io,
    /// A defect or an unexpected state in this program or a protocol peer.
    Internal,
}

impl ErrorKind {
    /// A short lower-case name (`invalid input`, `connection`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Connection => "connection",
            ErrorKind::Remote => "remote",
            ErrorKind::BuildFailed => "build failed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Io => "io",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that knows its [`ErrorKind`]. Every error type of every cicd-agents crate
/// implements it, so a front end asks each error in a chain the same question.
pub trait HasKind {
    /// The kind of this failure.
    fn kind(&self) -> ErrorKind;
}

impl HasKind for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

macro_rules! invalid_input {
    ($($type:ty),*) => {
        $(
            impl HasKind for $type {
                fn kind(&self) -> ErrorKind {
                    ErrorKind::InvalidInput
                }
            }
        )*
    };
}

invalid_input!(
    crate::ImageRefError,
    crate::ImageTagError,
    crate::GitRefError,
    crate::GitUrlError
);
