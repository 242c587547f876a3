//! Git ref names (git's own `check-ref-format` rules) and git remote URLs.

use std::fmt;
use std::str::FromStr;

use crate::redact::{redact_userinfo, REDACTED};

/// A ref name by `git check-ref-format` rules (single-level names allowed): a branch, a tag,
/// a full `refs/…` name or a commit id. Beyond git, a leading `-` is refused (it would read
/// as an option on a command line).
///
/// The rules: not empty; no component starts with `.` or ends with `.lock`; no `..`; no
/// control characters, space, `~`, `^`, `:`, `?`, `*`, `[` or `\`; no `@{`; not `@`; no
/// leading or trailing `/` and no `//`; no trailing `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GitRef(String);

/// A branch name by `git check-ref-format --branch` rules: a [`GitRef`] that is not `HEAD`,
/// does not start with `-`, and (as the write-back pushes to `refs/heads/<name>`) is given
/// without a `refs/` prefix.
///
/// ```
/// use cicd_agents_types::BranchName;
/// assert!("release/1.2".parse::<BranchName>().is_ok());
/// assert!("a#b".parse::<BranchName>().is_ok());
/// for bad in ["deploy.lock", ".hidden/x", "a..b", "a b", "@", "x@{1}", "a/", "refs/heads/main"] {
///     assert!(bad.parse::<BranchName>().is_err(), "{bad}");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BranchName(String);

/// A text that is not a [`GitRef`] or [`BranchName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid git {what} {name:?}: {reason}")]
pub struct GitRefError {
    /// `ref` or `branch name`.
    pub what: &'static str,
    /// The text as given.
    pub name: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

fn ref_rule(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name == "@" {
        return Some("`@` alone is not a ref name");
    }
    if name.starts_with('-') {
        return Some("it must not start with `-`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Some("it must not start or end with `/` or contain `//`");
    }
    if name.ends_with('.') {
        return Some("it must not end with `.`");
    }
    if name.contains("..") {
        return Some("it must not contain `..`");
    }
    if name.contains("@{") {
        return Some("it must not contain `@{`");
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return Some("it contains a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if name.split('/').any(|part| part.starts_with('.')) {
        return Some("a path component must not start with `.`");
    }
    if name.split('/').any(|part| part.ends_with(".lock")) {
        return Some("a path component must not end with `.lock`");
    }
    None
}

impl GitRef {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<GitRef, GitRefError> {
        let name = name.into();
        match ref_rule(&name) {
            None => Ok(GitRef(name)),
            Some(reason) => Err(GitRefError {
                what: "ref",
                name,
                reason,
            }),
        }
    }

    /// The ref name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl BranchName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<BranchName, GitRefError> {
        let name = name.into();
        let reason = ref_rule(&name).or(if name == "HEAD" {
            Some("`HEAD` is not a branch name")
        } else if name.starts_with("refs/") {
            Some("give the branch name without `refs/heads/`")
        } else {
            None
        });
        match reason {
            None => Ok(BranchName(name)),
            Some(reason) => Err(GitRefError {
                what: "branch name",
                name,
                reason,
            }),
        }
    }

    /// The branch name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full ref, `refs/heads/<name>`.
    pub fn to_ref(&self) -> GitRef {
        GitRef(format!("refs/heads/{}", self.0))
    }
}

macro_rules! string_type {
    ($type:ident, $error:ty) => {
        impl FromStr for $type {
            type Err = $error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $type::new(text)
            }
        }

        impl TryFrom<&str> for $type {
            type Error = $error;

            fn try_from(text: &str) -> Result<Self, Self::Error> {
                $type::new(text)
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $type {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        crate::serde_as_string!($type);
    };
}

string_type!(GitRef, GitRefError);
string_type!(BranchName, GitRefError);

/// How a [`GitUrl`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitUrlScheme {
    /// `https://host/path`
    Https,
    /// `http://host/path`
    Http,
    /// `ssh://[user@]host[:port]/path`
    Ssh,
    /// `git://host/path`
    Git,
    /// scp-like `[user@]host:path`
    Scp,
    /// `file:///path`
    File,
}

impl GitUrlScheme {
    /// The scheme as written in a URL (`scp` for the scp-like form).
    pub fn as_str(self) -> &'static str {
        match self {
            GitUrlScheme::Https => "https",
            GitUrlScheme::Http => "http",
            GitUrlScheme::Ssh => "ssh",
            GitUrlScheme::Git => "git",
            GitUrlScheme::Scp => "scp",
            GitUrlScheme::File => "file",
        }
    }
}

/// A git remote URL: `https://`, `http://`, `ssh://`, `git://`, `file://` or scp-like
/// `[user@]host:path` (git reads text as scp-like when a `:` comes before any `/`).
///
/// User information (a user name, password or token) is kept for the clone but never shown:
/// [`Display`](fmt::Display) and [`Debug`] write it as `***`, and errors show the input through
/// [`redact_userinfo`]. Because a password may contain `/` or `@`, the user information is
/// everything up to the last `@` of the text after the scheme. [`AsRef<str>`] and
/// [`GitUrl::as_secret_str`] give the text as written, credentials included.
///
/// ```
/// use cicd_agents_types::{GitUrl, GitUrlScheme};
/// let url: GitUrl = "ssh://git@host.example:2222/org/repo.git".parse().unwrap();
/// assert_eq!(url.scheme(), GitUrlScheme::Ssh);
/// assert_eq!((url.host(), url.port()), (Some("host.example"), Some(2222)));
/// assert_eq!(url.host_port().as_deref(), Some("host.example:2222"));
/// let scp: GitUrl = "git@github.com:org/repo.git".parse().unwrap();
/// assert_eq!(scp.host(), Some("github.com"));
/// assert_eq!(scp.path(), "org/repo.git");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GitUrl {
    text: String,
    scheme: GitUrlScheme,
    has_userinfo: bool,
    host: String,
    port: Option<u16>,
    path: String,
}

/// A text that is not a [`GitUrl`]. The URL it shows has its user information hidden.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid git URL {url:?}: {reason}")]
pub struct GitUrlError {
    /// The URL as given, user information hidden.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl GitUrl {
    /// Parses `text`.
    pub fn new(text: &str) -> Result<GitUrl, GitUrlError> {
        let fail = |reason: &str| GitUrlError {
            url: redact_userinfo(text).into_owned(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(fail("it is empty"));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(fail("it contains spaces or control characters"));
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = match scheme.to_ascii_lowercase().as_str() {
                    "https" => GitUrlScheme::Https,
                    "http" => GitUrlScheme::Http,
                    "ssh" | "git+ssh" | "ssh+git" => GitUrlScheme::Ssh,
                    "git" => GitUrlScheme::Git,
                    "file" => GitUrlScheme::File,
                    _ => return Err(fail("the scheme is not https, http, ssh, git or file")),
                };
                (scheme, rest)
            }
            None => (GitUrlScheme::Scp, text),
        };
        // User information runs to the last `@` (a password may contain `/` and `@`).
        let (has_userinfo, after_userinfo) = match rest.rfind('@') {
            Some(at) => (true, &rest[at + 1..]),
            None => (false, rest),
        };
        if scheme == GitUrlScheme::Scp {
            let Some((host, path)) = after_userinfo.split_once(':') else {
                return Err(fail(
                    "expected scheme://host/path or scp-like user@host:path",
                ));
            };
            if host.is_empty()
                || host.contains('/')
                || rest[..rest.len() - after_userinfo.len()].contains('/')
            {
                return Err(fail(
                    "expected scheme://host/path or scp-like user@host:path",
                ));
            }
            check_host(host).map_err(&fail)?;
            if path.is_empty() {
                return Err(fail("the repository path is empty"));
            }
            return Ok(GitUrl {
                text: text.to_string(),
                scheme,
                has_userinfo,
                host: host.to_string(),
                port: None,
                path: path.to_string(),
            });
        }
        let end = after_userinfo
            .find(['/', '?', '#'])
            .unwrap_or(after_userinfo.len());
        let (authority, path) = after_userinfo.split_at(end);
        let (host, port) = split_port(authority).map_err(&fail)?;
        if scheme == GitUrlScheme::File {
            if has_userinfo || port.is_some() {
                return Err(fail("a file:// URL takes no user, password or port"));
            }
        } else {
            if host.is_empty() {
                return Err(fail("the host is empty"));
            }
            check_host(host).map_err(&fail)?;
        }
        Ok(GitUrl {
            text: text.to_string(),
            scheme,
            has_userinfo,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// How the URL is written.
    pub fn scheme(&self) -> GitUrlScheme {
        self.scheme
    }

    /// The host (an IPv6 literal without brackets); `None` for `file://` URLs.
    pub fn host(&self) -> Option<&str> {
        (!self.host.is_empty()).then_some(self.host.as_str())
    }

    /// The port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host[:port]` as Go's `url.URL.Host` has it (IPv6 in brackets); BuildKit names git
    /// auth secrets `GIT_AUTH_TOKEN.<host_port>`.
    pub fn host_port(&self) -> Option<String> {
        let host = self.host()?;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Some(match self.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }

    /// The path (with query and fragment, if any) after the authority; for scp-like URLs,
    /// the text after the `:`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the URL carries user information (a user name, password or token).
    pub fn has_userinfo(&self) -> bool {
        self.has_userinfo
    }

    /// The URL as written, credentials included: for handing to git only, never for logs.
    pub fn as_secret_str(&self) -> &str {
        &self.text
    }

    /// `scheme://host[:port]` (the origin an HTTP auth header is scoped to); `None` for
    /// scp-like and `file://` URLs.
    pub fn origin(&self) -> Option<String> {
        match self.scheme {
            GitUrlScheme::Scp | GitUrlScheme::File => None,
            scheme => Some(format!("{}://{}", scheme.as_str(), self.host_port()?)),
        }
    }

    /// Whether the host is `localhost` or a loopback IP address.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.to_ascii_lowercase();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `host[:port]` or `[v6]:port`.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or("unclosed `[` in an IPv6 host")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the host in brackets is not an IPv6 address");
        }
        match tail {
            "" => (host, None),
            _ => (
                host,
                Some(tail.strip_prefix(':').ok_or("expected `:port` after `]`")?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or("the port is not a number between 1 and 65535")?,
        ),
    };
    Ok((host, port))
}

fn check_host(host: &str) -> Result<(), &'static str> {
    if host.contains(':') {
        return Ok(()); // an IPv6 literal, checked by `split_port`
    }
    let ok = host.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
    });
    if ok {
        Ok(())
    } else {
        Err("the host is not a host name or IP address")
    }
}

impl FromStr for GitUrl {
    type Err = GitUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        GitUrl::new(text)
    }
}

impl TryFrom<&str> for GitUrl {
    type Error = GitUrlError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        GitUrl::new(text)
    }
}

/// The URL with its user information shown as `***`.
impl fmt::Display for GitUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.has_userinfo {
            return f.write_str(&self.text);
        }
        let host = self.host_port().unwrap_or_default();
        match self.scheme {
            GitUrlScheme::Scp => write!(f, "{REDACTED}@{host}:{}", self.path),
            _ => {
                let scheme = &self.text[..self.text.find("://").unwrap_or(0)];
                write!(f, "{scheme}://{REDACTED}@{host}{}", self.path)
            }
        }
    }
}

impl fmt::Debug for GitUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitUrl({:?})", self.to_string())
    }
}

impl AsRef<str> for GitUrl {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl<'de> serde::Deserialize<'de> for GitUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
