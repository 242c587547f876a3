//! Recognising a registry failure in the daemon's error text: which registry, which operation
//! (push, cache export, cache import, pull), the HTTP status and what kind of failure it is.
//!
//! BuildKit reports registry errors only as text, for example (BuildKit 0.13 in Docker 26):
//!
//! ```text
//! failed to push 127.0.0.1:5099/app:1: unexpected status from HEAD request to http://127.0.0.1:5099/v2/app/manifests/1: 401 Unauthorized
//! error writing layer blob: failed to do request: Head "https://127.0.0.1:5099/v2/app/blobs/sha256:…": dial tcp 127.0.0.1:5099: connect: connection refused
//! 127.0.0.1:5099/base:1: failed to resolve source metadata for 127.0.0.1:5099/base:1: unexpected status from HEAD request to …: 500 Internal Server Error
//! ```
//!
//! The operation comes from the message and the failing step's name (`exporting to image`,
//! `exporting cache to registry`, `importing cache manifest from …`, `[internal] load metadata
//! for …`); the registry from the request URL, the dialled address or the image reference.
//! Credentials never reach the result: any `user:password@` part of a URL is dropped.

use std::fmt;

/// What the daemon was doing with the registry when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryOperation {
    /// Pushing the built image (`push=true`, `type=registry` output).
    Push,
    /// Exporting the build cache (`--cache-to type=registry`).
    CacheExport,
    /// Importing the build cache (`--cache-from type=registry`).
    CacheImport,
    /// Pulling or resolving an image (`FROM`, named contexts).
    Pull,
}

impl RegistryOperation {
    /// `push`, `cache export`, `cache import` or `pull`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryOperation::Push => "push",
            RegistryOperation::CacheExport => "cache export",
            RegistryOperation::CacheImport => "cache import",
            RegistryOperation::Pull => "pull",
        }
    }

    /// The operation as the start of a sentence: `pushing to`, `exporting cache to`, ...
    fn phrase(self) -> &'static str {
        match self {
            RegistryOperation::Push => "pushing to",
            RegistryOperation::CacheExport => "exporting cache to",
            RegistryOperation::CacheImport => "importing cache from",
            RegistryOperation::Pull => "pulling from",
        }
    }
}

impl fmt::Display for RegistryOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryFailureKind {
    /// The registry refused the credentials or wanted some (HTTP 401 or 403).
    Auth,
    /// The registry answered with a server error (HTTP 5xx).
    Server,
    /// The registry could not be reached (connection refused or reset, timeout, unknown host).
    Unreachable,
    /// Anything else (another status, a digest mismatch, ...).
    Other,
}

impl RegistryFailureKind {
    /// `auth`, `server`, `unreachable` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryFailureKind::Auth => "auth",
            RegistryFailureKind::Server => "server",
            RegistryFailureKind::Unreachable => "unreachable",
            RegistryFailureKind::Other => "other",
        }
    }
}

impl fmt::Display for RegistryFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A build that failed talking to a registry (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryFailure {
    /// The registry's `host[:port]` (never with credentials).
    pub registry: String,
    /// What the daemon was doing.
    pub operation: RegistryOperation,
    /// The HTTP status the registry answered, when there was an answer.
    pub status: Option<u16>,
    /// What kind of failure it was.
    pub kind: RegistryFailureKind,
    /// A short cause: `401 Unauthorized`, `connection refused`, ...
    pub reason: String,
}

impl RegistryFailure {
    /// Recognises a registry failure in a daemon error `message`, with the failing step's
    /// name when known. `None` when the message is not about a registry.
    pub fn detect(message: &str, step: Option<&str>) -> Option<RegistryFailure> {
        let step = step.unwrap_or_default();
        let operation = detect_operation(message, step)?;
        let registry = registry_host(message, step)?;
        let status = http_status(message);
        let unreachable = UNREACHABLE
            .iter()
            .find(|(marker, _)| message.contains(marker))
            .map(|(_, r)| *r);
        let kind = match status {
            Some(401 | 403) => RegistryFailureKind::Auth,
            Some(500..=599) => RegistryFailureKind::Server,
            Some(_) => RegistryFailureKind::Other,
            None if AUTH_MARKERS.iter().any(|m| message.contains(m)) => RegistryFailureKind::Auth,
            None if unreachable.is_some() => RegistryFailureKind::Unreachable,
            None => RegistryFailureKind::Other,
        };
        let reason = match (status, kind) {
            (Some(code), _) => status_text(message, code),
            (None, RegistryFailureKind::Unreachable) => {
                unreachable.unwrap_or("unreachable").to_string()
            }
            (None, RegistryFailureKind::Auth) => "credentials refused".to_string(),
            _ => last_clause(message),
        };
        Some(RegistryFailure {
            registry,
            operation,
            status,
            kind,
            reason,
        })
    }

    /// Whether the registry refused the credentials (HTTP 401 or 403).
    pub fn is_auth(&self) -> bool {
        self.kind == RegistryFailureKind::Auth
    }

    /// What to try next, if anything useful can be said.
    fn hint(&self) -> Option<String> {
        match (self.kind, self.operation) {
            (RegistryFailureKind::Auth, _) => Some(format!(
                "check the credentials for {} (registry_auth, or `docker login {}`) and their permissions",
                self.registry, self.registry
            )),
            (_, RegistryOperation::CacheExport) => Some(
                "add ignore-error=true to the cache export to let the build succeed without it".to_string(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for RegistryFailure {
    /// `pushing to registry 127.0.0.1:5099 failed: 401 Unauthorized`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} registry {} failed: ",
            self.operation.phrase(),
            self.registry
        )?;
        match self.kind {
            RegistryFailureKind::Unreachable => write!(f, "cannot reach it ({})", self.reason)?,
            _ => f.write_str(&self.reason)?,
        }
        if let Some(hint) = self.hint() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// Network errors as Go and containerd word them, with the cause shown to the user.
const UNREACHABLE: &[(&str, &str)] = &[
    ("connection refused", "connection refused"),
    ("connection reset by peer", "connection reset"),
    ("no such host", "unknown host"),
    ("i/o timeout", "timeout"),
    ("TLS handshake timeout", "TLS handshake timeout"),
    ("context deadline exceeded", "timeout"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("server closed idle connection", "connection closed"),
    ("unexpected EOF", "connection closed"),
    (": EOF", "connection closed"),
];

/// Texts of authorization failures that carry no status code.
const AUTH_MARKERS: &[&str] = &[
    "failed to authorize",
    "no basic auth credentials",
    "authorization failed",
    "insufficient_scope",
    "pull access denied",
    "denied: requested access to the resource is denied",
];

fn detect_operation(message: &str, step: &str) -> Option<RegistryOperation> {
    let lower_step = step.to_ascii_lowercase();
    if message.contains("failed to push ") {
        return Some(RegistryOperation::Push);
    }
    if lower_step.starts_with("exporting cache")
        || message.starts_with("error writing layer blob")
        || message.starts_with("error writing manifest blob")
        || message.contains("failed to export cache")
    {
        return Some(RegistryOperation::CacheExport);
    }
    if lower_step.starts_with("importing cache") || message.contains("failed to import cache") {
        return Some(RegistryOperation::CacheImport);
    }
    if message.contains("failed to resolve source metadata for")
        || message.contains("failed to pull")
        || message.contains("pull access denied")
        || lower_step.contains("load metadata for")
    {
        return Some(RegistryOperation::Pull);
    }
    if lower_step.starts_with("exporting to image") || lower_step.starts_with("pushing") {
        return Some(RegistryOperation::Push);
    }
    None
}

/// The registry host: from a request URL, the dialled address, or an image reference.
fn registry_host(message: &str, step: &str) -> Option<String> {
    for scheme in ["http://", "https://"] {
        if let Some(start) = message.find(scheme) {
            let rest = &message[start + scheme.len()..];
            let authority = rest.split(['/', '"', ' ', '?']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            if !host.is_empty() {
                return Some(host.to_string());
            }
        }
    }
    if let Some(start) = message.find("dial tcp ") {
        let rest = &message[start + "dial tcp ".len()..];
        let addr = rest
            .split(": ")
            .next()
            .unwrap_or_default()
            .trim_end_matches(':');
        if !addr.is_empty() {
            return Some(addr.to_string());
        }
    }
    for marker in [
        "failed to push ",
        "failed to resolve source metadata for ",
        "load metadata for ",
    ] {
        let text = if marker == "load metadata for " {
            step
        } else {
            message
        };
        if let Some(start) = text.find(marker) {
            let reference = text[start + marker.len()..]
                .split([' ', '"'])
                .next()
                .unwrap_or_default();
            return Some(reference_registry(reference));
        }
    }
    None
}

/// The registry of an image reference (`docker.io` for `app:1` or `org/app:1`).
fn reference_registry(reference: &str) -> String {
    let reference = reference.trim_start_matches("docker-image://");
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.rsplit('@').next().unwrap_or(first).to_string()
        }
        _ => "docker.io".to_string(),
    }
}

/// The HTTP status in `…: 401 Unauthorized`, `unexpected status: 500 …`, `HTTP 403`, ...
fn http_status(message: &str) -> Option<u16> {
    for marker in [
        "unexpected status from ",
        "unexpected status code ",
        "unexpected status: ",
        "status code ",
    ] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            if let Some(code) = first_status_after_colon(rest).or_else(|| leading_status(rest)) {
                return Some(code);
            }
        }
    }
    if let Some(start) = message.find("HTTP ") {
        return leading_status(&message[start + 5..]);
    }
    None
}

/// The first `: NNN` in `text` (a three-digit status after a colon).
fn first_status_after_colon(text: &str) -> Option<u16> {
    text.match_indices(": ")
        .find_map(|(i, _)| leading_status(&text[i + 2..]))
}

/// `text` starts with a three-digit HTTP status.
fn leading_status(text: &str) -> Option<u16> {
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let code: u16 = if digits.len() == 3 {
        digits.parse().ok()?
    } else {
        return None;
    };
    (100..600).contains(&code).then_some(code)
}

/// `401 Unauthorized`: the status with its reason phrase as the daemon wrote it.
fn status_text(message: &str, code: u16) -> String {
    let needle = format!("{code} ");
    if let Some(start) = message.find(&needle) {
        let phrase: String = message[start..]
            .chars()
            .take_while(|c| *c != ':' && *c != '\n' && *c != ';' && *c != '(')
            .collect();
        let phrase = phrase.trim();
        if phrase.len() > needle.len() && phrase.len() < 64 {
            return phrase.to_string();
        }
    }
    code.to_string()
}

/// The last `: `-separated clause, shortened.
fn last_clause(message: &str) -> String {
    let clause = message.rsplit(": ").next().unwrap_or(message).trim();
    clause.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_answered_401() {
        let msg = "failed to push 127.0.0.1:5099/tests/app:1: unexpected status from HEAD request to http://127.0.0.1:5099/v2/tests/app/manifests/1: 401 Unauthorized";
        let f = RegistryFailure::detect(msg, Some("exporting to image")).unwrap();
        assert_eq!(f.registry, "127.0.0.1:5099");
        assert_eq!(f.operation, RegistryOperation::Push);
        assert_eq!(f.status, Some(401));
        assert_eq!(f.kind, RegistryFailureKind::Auth);
        assert!(
            f.to_string()
                .starts_with("pushing to registry 127.0.0.1:5099 failed: 401 Unauthorized"),
            "{f}"
        );
    }

    #[test]
    fn push_manifest_put_401_after_failed_commit() {
        let msg = "failed to push 127.0.0.1:5099/t/a:put401: failed commit on ref \"manifest-sha256:03\": unexpected status from PUT request to http://127.0.0.1:5099/v2/t/a/manifests/put401: 401 Unauthorized";
        let f = RegistryFailure::detect(msg, Some("exporting to image")).unwrap();
        assert_eq!((f.status, f.kind), (Some(401), RegistryFailureKind::Auth));
    }

    #[test]
    fn push_to_a_registry_that_is_down() {
        let msg = "failed to push 127.0.0.1:5099/t/a:down: failed to do request: Head \"https://127.0.0.1:5099/v2/t/a/blobs/sha256:1b\": dial tcp 127.0.0.1:5099: connect: connection refused";
        let f = RegistryFailure::detect(msg, Some("exporting to image")).unwrap();
        assert_eq!(f.registry, "127.0.0.1:5099");
        assert_eq!((f.status, f.kind), (None, RegistryFailureKind::Unreachable));
        assert_eq!(
            f.to_string(),
            "pushing to registry 127.0.0.1:5099 failed: cannot reach it (connection refused)"
        );
    }

    #[test]
    fn cache_export_answered_500() {
        let msg = "error writing layer blob: unexpected status from HEAD request to http://127.0.0.1:5099/v2/t/a/blobs/sha256:1b: 500 Internal Server Error";
        let f = RegistryFailure::detect(msg, Some("exporting cache to registry")).unwrap();
        assert_eq!(f.operation, RegistryOperation::CacheExport);
        assert_eq!((f.status, f.kind), (Some(500), RegistryFailureKind::Server));
        assert!(f.to_string().contains("500 Internal Server Error"), "{f}");
        assert!(f.to_string().contains("ignore-error=true"), "{f}");
    }

    #[test]
    fn pull_of_a_base_image() {
        let msg = "127.0.0.1:5099/base/busybox:1: failed to resolve source metadata for 127.0.0.1:5099/base/busybox:1: unexpected status from HEAD request to http://127.0.0.1:5099/v2/base/busybox/manifests/1: 500 Internal Server Error";
        let f = RegistryFailure::detect(
            msg,
            Some("[internal] load metadata for 127.0.0.1:5099/base/busybox:1"),
        )
        .unwrap();
        assert_eq!(f.operation, RegistryOperation::Pull);
        assert_eq!(f.registry, "127.0.0.1:5099");
        assert_eq!(f.status, Some(500));
    }

    #[test]
    fn credentials_in_urls_are_dropped() {
        let msg = "failed to push r.example/a:1: failed to do request: Head \"https://user:hunter2@r.example/v2/a\": EOF";
        let f = RegistryFailure::detect(msg, None).unwrap();
        assert_eq!(f.registry, "r.example");
        assert!(!format!("{f} {f:?}").contains("hunter2"));
    }

    #[test]
    fn token_errors_and_references() {
        let msg = "failed to push docker.io/org/app:1: failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized";
        let f = RegistryFailure::detect(msg, None).unwrap();
        assert_eq!(f.registry, "docker.io");
        assert_eq!(f.kind, RegistryFailureKind::Auth);
        assert_eq!(reference_registry("app:1"), "docker.io");
        assert_eq!(reference_registry("localhost/app:1"), "localhost");
    }

    #[test]
    fn other_errors_are_not_registry_failures() {
        assert_eq!(
            RegistryFailure::detect(
                "process \"/bin/sh -c false\" did not complete successfully: exit code: 1",
                Some("[2/2] RUN false")
            ),
            None
        );
        assert_eq!(
            RegistryFailure::detect(
                "dockerfile parse error on line 1: unknown instruction: FORM",
                None
            ),
            None
        );
    }
}
