//! Typed errors of the chart-update and git write-back steps.
//!
//! Three families, each its own enum so callers can match on what happened:
//!
//! * [`ValuesError`]: a values file could not be edited (not YAML, key path not found, target
//!   not a scalar, shared anchor, ...). Every variant names the file (or `<input>` for text
//!   without a file), the key path and, where there is one, the 1-based line.
//! * [`TagError`]: an image tag or digest is not well formed.
//! * [`GitError`]: clone, commit or push failed. No variant ever holds the token; git's output
//!   is redacted before it is stored.
//!
//! [`Error`] wraps all three; it is what [`crate::git::WriteBack::run`] and its edit closure
//! return.

use std::path::PathBuf;

pub use cicd_agents_types::{ErrorKind, HasKind};

/// The crate-wide error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Editing a values file failed.
    #[error(transparent)]
    Values(#[from] ValuesError),
    /// An image tag or digest is invalid.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// The git write-back failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

impl Error {
    /// Whether the caller's input is the cause (a malformed key path, values file, tag, URL,
    /// branch or template; a values file that lacks the key) rather than the network, git or
    /// the file system. The command line exits with 2 (bad usage) for these, 1 otherwise.
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Values(err) => err.kind(),
            Error::Tag(err) => err.kind(),
            Error::Git(err) => HasKind::kind(err),
        }
    }
}

impl ValuesError {
    /// Whether the input (the file's content, the key path or the new value) is the cause;
    /// false for I/O failures other than a missing file and for the re-parse guard.
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }
}

impl HasKind for ValuesError {
    fn kind(&self) -> ErrorKind {
        match self {
            ValuesError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::InvalidInput
            }
            ValuesError::Io { .. } => ErrorKind::Io,
            ValuesError::VerificationFailed { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}

impl HasKind for TagError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl From<cicd_agents_types::ImageTagError> for TagError {
    fn from(err: cicd_agents_types::ImageTagError) -> Self {
        TagError::InvalidTag { tag: err.tag }
    }
}

impl GitError {
    /// Whether the configuration given is the cause (URL, branch, token settings, template,
    /// a path outside the repository), as opposed to the server or git itself.
    pub fn is_invalid_input(&self) -> bool {
        HasKind::kind(self) == ErrorKind::InvalidInput
    }
}

impl HasKind for GitError {
    fn kind(&self) -> ErrorKind {
        match self.git_kind() {
            GitErrorKind::Config => ErrorKind::InvalidInput,
            GitErrorKind::Auth
            | GitErrorKind::Server
            | GitErrorKind::NotFound
            | GitErrorKind::Rejected => ErrorKind::Remote,
            GitErrorKind::Unreachable => ErrorKind::Connection,
            GitErrorKind::Other => match self {
                GitError::Io { .. } | GitError::Spawn { .. } => ErrorKind::Io,
                _ => ErrorKind::Remote,
            },
        }
    }
}

/// Result alias with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of YAML node something is, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A scalar (string, number, bool, null).
    Scalar,
    /// A mapping (block or flow).
    Mapping,
    /// A sequence (block or flow).
    Sequence,
    /// An alias (`*name`).
    Alias,
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeKind::Scalar => "scalar",
            NodeKind::Mapping => "mapping",
            NodeKind::Sequence => "sequence",
            NodeKind::Alias => "alias",
        })
    }
}

/// Editing a values file failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// The file is not valid YAML.
    #[error("{file}: not valid YAML at line {line}, column {column}: {message}")]
    InvalidYaml {
        /// File name, or `<input>`.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The file is not UTF-8 text.
    #[error("{file}: not UTF-8 text: {message}")]
    NotUtf8 {
        /// File name.
        file: String,
        /// Detail.
        message: String,
    },
    /// The key path itself is malformed.
    #[error("invalid key path `{path}`: {reason}")]
    InvalidKeyPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The document to edit does not exist (or is empty).
    #[error("{file}: key path `{path}`: document {document} {reason}")]
    NoDocument {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// 0-based document index.
        document: usize,
        /// "does not exist" / "is empty".
        reason: &'static str,
    },
    /// A key of the path does not exist.
    #[error("{file}: key path `{path}`: key `{segment}` not found in the mapping at line {line} (after `{prefix}`)")]
    KeyNotFound {
        /// File name, or `<input>`.
        file: String,
        /// The whole key path.
        path: String,
        /// The missing key.
        segment: String,
        /// The part of the path that did resolve (`<root>` for none).
        prefix: String,
        /// Line of the mapping that lacks the key.
        line: usize,
    },
    /// A sequence index of the path is past the end.
    #[error("{file}: key path `{path}`: index [{index}] out of range, the sequence at line {line} has {len} item(s)")]
    IndexOutOfRange {
        /// File name, or `<input>`.
        file: String,
        /// The whole key path.
        path: String,
        /// The index asked for.
        index: usize,
        /// Items in the sequence.
        len: usize,
        /// Line of the sequence.
        line: usize,
    },
    /// The path expects a mapping (or sequence) where the file has something else.
    #[error("{file}: key path `{path}`: `{prefix}` is a {found} at line {line}, but the path needs a {expected} there to look up `{segment}`")]
    NotAContainer {
        /// File name, or `<input>`.
        file: String,
        /// The whole key path.
        path: String,
        /// The path up to the node in question.
        prefix: String,
        /// The next segment that could not be looked up.
        segment: String,
        /// What the path needed.
        expected: NodeKind,
        /// What the file has.
        found: NodeKind,
        /// Line of the node.
        line: usize,
    },
    /// The target of the path is a mapping or sequence, not a scalar.
    #[error("{file}: key path `{path}`: the value at line {line} is a {found}, not a scalar")]
    NotAScalar {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// What the value is.
        found: NodeKind,
        /// Line of the value.
        line: usize,
    },
    /// The same key occurs twice in one mapping, so the path is ambiguous.
    #[error("{file}: key path `{path}`: key `{segment}` occurs more than once in the mapping (lines {first_line} and {second_line})")]
    DuplicateKey {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// The duplicated key.
        segment: String,
        /// Line of the first occurrence.
        first_line: usize,
        /// Line of the second occurrence.
        second_line: usize,
    },
    /// Editing the target would also change other keys: it (or a mapping/sequence around it)
    /// carries an anchor that aliases elsewhere refer to, or the path runs through an alias.
    #[error("{file}: key path `{path}`: refusing to edit, {detail}; editing it would change every place that uses the anchor `&{anchor}` (defined at line {line})")]
    SharedAnchor {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// The anchor name.
        anchor: String,
        /// Line of the anchor definition.
        line: usize,
        /// What exactly is shared.
        detail: String,
    },
    /// The key exists only through a merge key (`<<: *base`), i.e. in a shared anchor.
    #[error("{file}: key path `{path}`: key `{segment}` is not in the mapping at line {line} itself but comes from the merge key `<<` (anchor `&{anchor}`); refusing to edit the shared anchor, add an explicit `{segment}:` key to override it")]
    MergedKey {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// The key.
        segment: String,
        /// Line of the mapping.
        line: usize,
        /// The merged anchor.
        anchor: String,
    },
    /// The target scalar is written in a form this editor does not splice (block scalar,
    /// multi-line scalar, non-string tag, empty sequence item, ...).
    #[error("{file}: key path `{path}`: cannot edit the value at line {line} in place: {reason}")]
    UnsupportedScalar {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// Line of the value.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The new value cannot be written (control characters, line breaks).
    #[error("{file}: key path `{path}`: invalid new value {value:?}: {reason}")]
    InvalidValue {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// The value (never a secret).
        value: String,
        /// Why.
        reason: String,
    },
    /// The edited text did not re-parse to the intended tree. This is a bug guard: the edit is
    /// discarded.
    #[error("{file}: key path `{path}`: edit discarded, re-parsing the result did not give exactly the intended change: {detail}")]
    VerificationFailed {
        /// File name, or `<input>`.
        file: String,
        /// The key path.
        path: String,
        /// What differed.
        detail: String,
    },
    /// Reading or writing the file failed.
    #[error("{file}: {action}: {source}")]
    Io {
        /// File name.
        file: String,
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// An image tag or digest is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// Not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid image tag {tag:?}: a tag is 1 to 128 characters of [A-Za-z0-9_.-] and does not start with `.` or `-`")]
    InvalidTag {
        /// The tag as given.
        tag: String,
    },
    /// Not `sha256:` followed by 64 lowercase hex digits.
    #[error(
        "invalid image digest {digest:?}: expected `sha256:` followed by 64 lowercase hex digits"
    )]
    InvalidDigest {
        /// The digest as given.
        digest: String,
    },
    /// Digest pinning is configured but the build returned no digest.
    #[error("digest pinning is configured for key `{key}` but no digest was given")]
    MissingDigest {
        /// The key path the digest was meant for.
        key: String,
    },
}

/// The git write-back failed. Never contains the token: git's output is redacted before it is
/// kept, and the token is never part of a URL or an argument.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The repository URL is not acceptable.
    #[error("invalid repository URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (with any user info removed).
        url: String,
        /// Why.
        reason: String,
    },
    /// A branch name is not a valid git ref name.
    #[error("invalid branch name {branch:?}: {reason}")]
    InvalidBranch {
        /// The branch.
        branch: String,
        /// Why.
        reason: &'static str,
    },
    /// The token or author settings are unusable.
    #[error("invalid write-back configuration: {reason}")]
    InvalidConfig {
        /// Why.
        reason: String,
    },
    /// The commit message template is malformed.
    #[error("invalid commit message template at byte {position}: {reason}")]
    InvalidTemplate {
        /// Byte offset in the template.
        position: usize,
        /// Why.
        reason: String,
    },
    /// The git server refused the credentials (HTTP 401/403), or asked for credentials when
    /// none were configured. Not retried.
    #[error("authentication failed for {url} during {operation}{}: the server rejected the credentials (check the token and its permissions)", http_status_suffix(*.status))]
    AuthFailed {
        /// The repository URL (without credentials).
        url: String,
        /// clone, fetch, ls-remote or push.
        operation: &'static str,
        /// 401 or 403 when git reported it.
        status: Option<u16>,
    },
    /// The git server answered with a server error (HTTP 5xx). Retried with backoff during a
    /// write-back (see [`crate::git`]); this is the error once its deadline has passed.
    #[error(
        "the git server {url} answered HTTP {status} during {operation} ({attempts} attempt(s) in {})",
        crate::git::format_elapsed(*.elapsed)
    )]
    ServerError {
        /// The repository URL (without credentials).
        url: String,
        /// clone, fetch, ls-remote or push.
        operation: &'static str,
        /// The HTTP status (500-599).
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// Time from the start of the write-back until it gave up.
        elapsed: std::time::Duration,
    },
    /// The git server could not be reached (connection refused or reset, timeout, unknown
    /// host). Retried with backoff during a write-back; this is the error once its deadline
    /// has passed.
    #[error(
        "cannot reach the git server {url} during {operation}: {reason} ({attempts} attempt(s) in {})",
        crate::git::format_elapsed(*.elapsed)
    )]
    Unreachable {
        /// The repository URL (without credentials).
        url: String,
        /// clone, fetch, ls-remote or push.
        operation: &'static str,
        /// git's words for it (redacted), e.g. `Failed to connect to 127.0.0.1 port 8418`.
        reason: String,
        /// Attempts made.
        attempts: u32,
        /// Time from the start of the write-back until it gave up.
        elapsed: std::time::Duration,
    },
    /// The base branch does not exist on the remote.
    #[error("branch `{branch}` not found in {url}")]
    BranchNotFound {
        /// The repository URL.
        url: String,
        /// The branch.
        branch: String,
    },
    /// A path given to the edit leaves the repository (absolute, `..`, symlink out, `.git`).
    #[error("path {path:?} leaves the repository or points into .git")]
    PathOutsideRepo {
        /// The path as given.
        path: PathBuf,
    },
    /// The push was rejected for a reason that retrying will not fix (hook declined,
    /// protected branch, ...).
    #[error("push of {branch} to {url} rejected: {reason}")]
    PushRejected {
        /// The repository URL.
        url: String,
        /// The branch pushed to.
        branch: String,
        /// The server's reason (redacted).
        reason: String,
    },
    /// The branch kept moving: every attempt until the retry deadline was rejected as out of
    /// date.
    #[error(
        "push of {branch} to {url} still rejected after {attempts} attempt(s) in {} (the retry deadline passed; last reason: {reason}); the branch keeps moving",
        crate::git::format_elapsed(*.elapsed)
    )]
    RetriesExhausted {
        /// The repository URL.
        url: String,
        /// The branch pushed to.
        branch: String,
        /// Attempts made.
        attempts: u32,
        /// Time from the start of the write-back until it gave up (at least the retry
        /// timeout).
        elapsed: std::time::Duration,
        /// The last rejection reason.
        reason: String,
    },
    /// The git program could not be started.
    #[error("could not run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A git command failed.
    #[error("`git {operation}` failed ({status}): {stderr}")]
    Command {
        /// The git subcommand.
        operation: String,
        /// Exit status.
        status: String,
        /// Its standard error, redacted and shortened.
        stderr: String,
    },
    /// A local file operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn http_status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

/// The class of a [`GitError`], for callers that only need to know what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitErrorKind {
    /// The configuration (URL, branch, token, author, template) is unusable.
    Config,
    /// Credentials refused (HTTP 401/403).
    Auth,
    /// The server answered 5xx.
    Server,
    /// The server could not be reached.
    Unreachable,
    /// The branch does not exist.
    NotFound,
    /// The push was rejected (hook, protected branch, or the branch kept moving).
    Rejected,
    /// A git command or a local file operation failed.
    Other,
}

impl GitErrorKind {
    /// `config`, `auth`, `server`, `unreachable`, `not_found`, `rejected` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            GitErrorKind::Config => "config",
            GitErrorKind::Auth => "auth",
            GitErrorKind::Server => "server",
            GitErrorKind::Unreachable => "unreachable",
            GitErrorKind::NotFound => "not_found",
            GitErrorKind::Rejected => "rejected",
            GitErrorKind::Other => "other",
        }
    }
}

impl std::fmt::Display for GitErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl GitError {
    /// What class of git failure this is (finer than [`HasKind::kind`]).
    pub fn git_kind(&self) -> GitErrorKind {
        match self {
            GitError::InvalidUrl { .. }
            | GitError::InvalidBranch { .. }
            | GitError::InvalidConfig { .. }
            | GitError::InvalidTemplate { .. }
            | GitError::PathOutsideRepo { .. } => GitErrorKind::Config,
            GitError::AuthFailed { .. } => GitErrorKind::Auth,
            GitError::ServerError { .. } => GitErrorKind::Server,
            GitError::Unreachable { .. } => GitErrorKind::Unreachable,
            GitError::BranchNotFound { .. } => GitErrorKind::NotFound,
            GitError::PushRejected { .. } | GitError::RetriesExhausted { .. } => {
                GitErrorKind::Rejected
            }
            GitError::Spawn { .. } | GitError::Command { .. } | GitError::Io { .. } => {
                GitErrorKind::Other
            }
        }
    }

    /// Whether retrying may help: a server error (5xx) or an unreachable server.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.git_kind(),
            GitErrorKind::Server | GitErrorKind::Unreachable
        )
    }

    /// The repository URL (without credentials), when the error is about the remote.
    pub fn url(&self) -> Option<&str> {
        match self {
            GitError::InvalidUrl { url, .. }
            | GitError::AuthFailed { url, .. }
            | GitError::ServerError { url, .. }
            | GitError::Unreachable { url, .. }
            | GitError::BranchNotFound { url, .. }
            | GitError::PushRejected { url, .. }
            | GitError::RetriesExhausted { url, .. } => Some(url),
            _ => None,
        }
    }

    /// The remote operation that failed: `clone`, `fetch`, `ls-remote` or `push`.
    pub fn operation(&self) -> Option<&str> {
        match self {
            GitError::AuthFailed { operation, .. }
            | GitError::ServerError { operation, .. }
            | GitError::Unreachable { operation, .. } => Some(operation),
            GitError::PushRejected { .. } | GitError::RetriesExhausted { .. } => Some("push"),
            GitError::Command { operation, .. } => Some(operation),
            _ => None,
        }
    }

    /// The HTTP status the server answered, when known.
    pub fn status(&self) -> Option<u16> {
        match self {
            GitError::AuthFailed { status, .. } => *status,
            GitError::ServerError { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The same error with the attempt count and the time taken set (for
    /// [`GitError::ServerError`] and [`GitError::Unreachable`]).
    pub(crate) fn with_attempts(mut self, made: u32, took: std::time::Duration) -> Self {
        if let GitError::ServerError {
            attempts, elapsed, ..
        }
        | GitError::Unreachable {
            attempts, elapsed, ..
        } = &mut self
        {
            *attempts = made;
            *elapsed = took;
        }
        self
    }
}
