//! Daemon addresses as users write them for `buildctl --addr`, `BUILDKIT_HOST`
//! and `docker buildx`, and the order in which a client looks for a daemon.
//!
//! | written as | means |
//! |---|---|
//! | `unix:///run/buildkit/buildkitd.sock` | a standalone `buildkitd` on a unix socket |
//! | `tcp://host:1234` | a standalone `buildkitd` on TCP (TLS when certificates are given) |
//! | `docker://` | the Docker daemon's embedded BuildKit on the default socket |
//! | `docker://unix:///path/docker.sock` | the same on another socket |
//! | `docker://tcp://host:2375` | the same over TCP |
//!
//! With no address, [`Address::resolve`] tries, in order: `BUILDKIT_HOST`, `DOCKER_HOST`
//! (taken as `docker://…`), `/run/buildkit/buildkitd.sock`,
//! `$XDG_RUNTIME_DIR/buildkit/buildkitd.sock` and `/var/run/docker.sock`.
//!
//! ```
//! use cicd_agents_buildkit::Address;
//! let addr: Address = "docker://unix:///var/run/docker.sock".parse().unwrap();
//! assert!(addr.is_docker());
//! assert_eq!(addr.to_string(), "docker://unix:///var/run/docker.sock");
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cicd_agents_types::redact_userinfo;

use crate::error::Error;

/// The Docker daemon's default socket.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// A rootful standalone `buildkitd`'s default socket.
pub const DEFAULT_BUILDKITD_SOCKET: &str = "/run/buildkit/buildkitd.sock";

/// Where bytes go: a unix socket or a TCP host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A unix domain socket.
    Unix(PathBuf),
    /// A TCP host (name or IP literal, without brackets) and port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port number.
        port: u16,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// A way to reach a daemon, as the scheme of an address says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `unix:///path`: a standalone `buildkitd` on a unix socket.
    Unix,
    /// `tcp://host:port`: a standalone `buildkitd` on TCP.
    Tcp,
    /// `docker://…`: a Docker daemon's embedded BuildKit.
    Docker,
    /// `dns+tcp://<service>.<namespace>.svc:<port>`: the ready replicas of a headless
    /// Service (a builder pool only; see [`crate::discovery`]).
    DnsTcp,
}

impl Scheme {
    /// The scheme as written, e.g. `tcp://`.
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::Unix => "unix://",
            Scheme::Tcp => "tcp://",
            Scheme::Docker => "docker://",
            Scheme::DnsTcp => "dns+tcp://",
        }
    }

    /// A whole address of this scheme, as an error shows it to say what to write.
    pub fn example(self) -> &'static str {
        match self {
            Scheme::Unix => "unix:///path",
            Scheme::Tcp => "tcp://host:port",
            Scheme::Docker => "docker://",
            Scheme::DnsTcp => "dns+tcp://<service>.<namespace>.svc:<port>",
        }
    }
}

/// The schemes one daemon's address takes.
pub const DAEMON_SCHEMES: &[Scheme] = &[Scheme::Unix, Scheme::Tcp, Scheme::Docker];
/// The schemes a builder pool's addresses take: a daemon's, and `dns+tcp://` for discovery.
pub const POOL_SCHEMES: &[Scheme] = &[Scheme::Unix, Scheme::Tcp, Scheme::Docker, Scheme::DnsTcp];

/// What a caller takes, for the problems that say which schemes would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accepted {
    /// One daemon's address ([`DAEMON_SCHEMES`]).
    Daemon,
    /// An address of a builder pool ([`POOL_SCHEMES`]).
    Pool,
}

impl Accepted {
    /// The schemes that would do.
    pub fn schemes(self) -> &'static [Scheme] {
        match self {
            Accepted::Daemon => DAEMON_SCHEMES,
            Accepted::Pool => POOL_SCHEMES,
        }
    }
}

/// `a, b and c` (or `a, b or c`).
fn enumerate<'a>(items: impl Iterator<Item = &'a str>, last_word: &str) -> String {
    let items: Vec<&str> = items.collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} {last_word} {last}", rest.join(", ")),
    }
}

/// Where an address was read from (shown after it in [`Error::InvalidAddress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AddressOrigin {
    /// Given by the caller.
    #[default]
    Given,
    /// The `BUILDKIT_HOST` environment variable.
    BuildkitHost,
    /// The `DOCKER_HOST` environment variable.
    DockerHost,
}

impl fmt::Display for AddressOrigin {
    /// Nothing for a given address, else ` (from $VARIABLE)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressOrigin::Given => Ok(()),
            AddressOrigin::BuildkitHost => f.write_str(" (from $BUILDKIT_HOST)"),
            AddressOrigin::DockerHost => f.write_str(" (from $DOCKER_HOST)"),
        }
    }
}

/// What is wrong with a daemon address: the reason of [`Error::InvalidAddress`].
///
/// A caller decides on the variant, not on the message. The variants that say which schemes
/// would do carry what the caller takes (`accepted`), so a caller that takes more (a builder
/// pool also takes `dns+tcp://`) can widen it with [`AddressProblem::accepting`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressProblem {
    /// No `scheme://` at all.
    MissingScheme {
        /// What the caller takes.
        accepted: Accepted,
    },
    /// A scheme no BuildKit tool knows.
    UnknownScheme {
        /// The scheme as written (lower case).
        scheme: String,
        /// What the caller takes.
        accepted: Accepted,
    },
    /// A transport other tools speak (`ssh://`, `npipe://`, `kube-pod://`, …) and this
    /// client does not.
    UnsupportedTransport {
        /// The scheme as written (lower case).
        scheme: String,
        /// What the caller takes.
        accepted: Accepted,
    },
    /// `docker://` followed by something that is not a Docker endpoint.
    DockerEndpoint,
    /// `unix://` with no socket path.
    UnixPathMissing,
    /// A relative unix socket path.
    UnixPathRelative,
    /// A unix socket path with a NUL byte.
    UnixPathNul,
    /// User information (`user@host`, `user:password@host`).
    UserInfo,
    /// A path, query or fragment after `host:port`.
    TcpPath,
    /// Spaces or control characters.
    ControlCharacters,
    /// An IPv6 literal whose `[` is not closed.
    UnclosedBracket,
    /// No port.
    MissingPort {
        /// What to write instead.
        example: &'static str,
    },
    /// An IPv6 literal without brackets.
    UnbracketedIpv6,
    /// No host.
    MissingHost,
    /// Brackets around something that is not an IPv6 literal.
    InvalidIpv6 {
        /// The text in brackets.
        host: String,
    },
    /// A host that is not a host name or IPv4 literal.
    InvalidHost {
        /// The host as written.
        host: String,
    },
    /// A port that is not a number from 1 to 65535.
    InvalidPort {
        /// The port as written.
        port: String,
    },
    /// A `dns+tcp://` host that is not a DNS name.
    InvalidServiceName,
    /// A `dns+tcp://` host that is an IP address.
    ServiceIp,
    /// Not a `dns+tcp://` address where one is expected.
    NotDns,
    /// An address a builder pool was given twice.
    ListedTwice,
}

impl AddressProblem {
    /// What the caller takes, for the problems that say which schemes would do.
    pub fn accepted(&self) -> Option<Accepted> {
        match self {
            AddressProblem::MissingScheme { accepted }
            | AddressProblem::UnknownScheme { accepted, .. }
            | AddressProblem::UnsupportedTransport { accepted, .. } => Some(*accepted),
            _ => None,
        }
    }

    /// The same problem for a caller that takes `accepted` (a problem that names no schemes
    /// is returned as it is).
    pub fn accepting(self, accepted: Accepted) -> AddressProblem {
        match self {
            AddressProblem::MissingScheme { .. } => AddressProblem::MissingScheme { accepted },
            AddressProblem::UnknownScheme { scheme, .. } => {
                AddressProblem::UnknownScheme { scheme, accepted }
            }
            AddressProblem::UnsupportedTransport { scheme, .. } => {
                AddressProblem::UnsupportedTransport { scheme, accepted }
            }
            other => other,
        }
    }
}

impl fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefixes = |accepted: &Accepted| {
            enumerate(
                accepted.schemes().iter().map(|scheme| scheme.prefix()),
                "and",
            )
        };
        match self {
            AddressProblem::MissingScheme { accepted } => write!(
                f,
                "missing scheme; use {}",
                enumerate(
                    accepted.schemes().iter().map(|scheme| scheme.example()),
                    "or"
                )
            ),
            AddressProblem::UnknownScheme { scheme, accepted } => write!(
                f,
                "unknown scheme {scheme:?}; supported are {}",
                prefixes(accepted)
            ),
            AddressProblem::UnsupportedTransport { scheme, accepted } => write!(
                f,
                "the {scheme}:// transport is not supported; supported are {}",
                prefixes(accepted)
            ),
            AddressProblem::DockerEndpoint => f.write_str(
                "after docker:// write the Docker endpoint, e.g. docker://unix:///var/run/docker.sock or docker://tcp://host:2375",
            ),
            AddressProblem::UnixPathMissing => f.write_str(
                "unix:// needs a socket path, e.g. unix:///run/buildkit/buildkitd.sock",
            ),
            AddressProblem::UnixPathRelative => {
                f.write_str("the unix socket path must be absolute (unix:///path)")
            }
            AddressProblem::UnixPathNul => f.write_str("the unix socket path contains a NUL byte"),
            AddressProblem::UserInfo => f.write_str(
                "a daemon address takes no user name or password (user@host); use TLS client certificates",
            ),
            AddressProblem::TcpPath => f.write_str("a tcp:// address is host:port with no path"),
            AddressProblem::ControlCharacters => {
                f.write_str("the address contains spaces or control characters")
            }
            AddressProblem::UnclosedBracket => f.write_str("unclosed '[' in IPv6 address"),
            AddressProblem::MissingPort { example } => write!(f, "missing port; write {example}"),
            AddressProblem::UnbracketedIpv6 => {
                f.write_str("write IPv6 addresses in brackets, e.g. tcp://[::1]:1234")
            }
            AddressProblem::MissingHost => f.write_str("missing host; write tcp://host:port"),
            AddressProblem::InvalidIpv6 { host } => {
                write!(f, "{host:?} in brackets is not an IPv6 address")
            }
            AddressProblem::InvalidHost { host } => write!(
                f,
                "{host:?} is not a host name or IPv4 address; write tcp://host:port or tcp://[ipv6]:port"
            ),
            AddressProblem::InvalidPort { port } => {
                write!(f, "port {port:?} is not a number between 1 and 65535")
            }
            AddressProblem::InvalidServiceName => f.write_str(
                "the host must be a DNS name (the headless Service's, e.g. buildkitd-pool.ci.svc)",
            ),
            AddressProblem::ServiceIp => {
                f.write_str("the host must be the Service's DNS name, not an IP address")
            }
            AddressProblem::NotDns => f.write_str("a DNS pool address starts with dns+tcp://"),
            AddressProblem::ListedTwice => f.write_str("listed twice in the pool"),
        }
    }
}

/// A BuildKit daemon's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A standalone `buildkitd` speaking gRPC directly on the endpoint.
    Buildkitd(Endpoint),
    /// A Docker daemon whose embedded BuildKit is reached through the
    /// Docker API's `/grpc` and `/session` upgrade endpoints.
    Docker(Endpoint),
}

impl Address {
    /// The endpoint the transport dials.
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            Address::Buildkitd(endpoint) | Address::Docker(endpoint) => endpoint,
        }
    }

    /// Whether this is a Docker daemon's embedded BuildKit.
    pub fn is_docker(&self) -> bool {
        matches!(self, Address::Docker(_))
    }

    /// Finds a daemon the way `buildctl` and `buildx` users expect: the explicit
    /// address if one is given, else `BUILDKIT_HOST`, `DOCKER_HOST` (as `docker://`),
    /// then the well-known sockets that exist on this machine.
    ///
    /// The error names every place that was tried.
    pub fn resolve(explicit: Option<&str>) -> Result<Address, Error> {
        Self::resolve_with(explicit, &|name| std::env::var(name).ok(), &|path| {
            path.exists()
        })
    }

    /// [`Address::resolve`] with the environment and the file system supplied by the caller.
    pub fn resolve_with(
        explicit: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        exists: &dyn Fn(&Path) -> bool,
    ) -> Result<Address, Error> {
        if let Some(text) = explicit.filter(|text| !text.trim().is_empty()) {
            return text.parse();
        }
        if let Some(text) = env("BUILDKIT_HOST").filter(|text| !text.trim().is_empty()) {
            return text
                .parse()
                .map_err(|err| in_variable(err, AddressOrigin::BuildkitHost));
        }
        if let Some(text) = env("DOCKER_HOST").filter(|text| !text.trim().is_empty()) {
            let address = parse_docker_host(text.trim())
                .map_err(|err| in_variable(err, AddressOrigin::DockerHost))?;
            return Ok(address);
        }
        let mut tried = vec![
            "$BUILDKIT_HOST (unset)".to_string(),
            "$DOCKER_HOST (unset)".to_string(),
        ];
        let mut candidates = vec![Address::Buildkitd(Endpoint::Unix(PathBuf::from(
            DEFAULT_BUILDKITD_SOCKET,
        )))];
        match env("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
            Some(dir) => candidates.push(Address::Buildkitd(Endpoint::Unix(
                Path::new(&dir).join("buildkit/buildkitd.sock"),
            ))),
            None => tried.push(
                "$XDG_RUNTIME_DIR/buildkit/buildkitd.sock ($XDG_RUNTIME_DIR unset)".to_string(),
            ),
        }
        candidates.push(Address::Docker(Endpoint::Unix(PathBuf::from(
            DEFAULT_DOCKER_SOCKET,
        ))));
        for candidate in candidates {
            let Endpoint::Unix(path) = candidate.endpoint() else {
                continue;
            };
            if exists(path) {
                return Ok(candidate);
            }
            tried.push(format!("{} (no such socket)", path.display()));
        }
        Err(Error::NoDaemonFound { tried })
    }
}

fn in_variable(err: Error, origin: AddressOrigin) -> Error {
    match err {
        Error::InvalidAddress {
            address, reason, ..
        } => Error::InvalidAddress {
            address,
            reason,
            origin,
        },
        other => other,
    }
}

/// `DOCKER_HOST` holds a plain Docker endpoint (`unix://…`, `tcp://…`); it may
/// also already be written as `docker://…`.
fn parse_docker_host(text: &str) -> Result<Address, Error> {
    if text.starts_with("docker://") {
        return text.parse();
    }
    let endpoint = parse_endpoint(text, text)?;
    Ok(Address::Docker(endpoint))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Buildkitd(endpoint) => write!(f, "{endpoint}"),
            Address::Docker(endpoint) => write!(f, "docker://{endpoint}"),
        }
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if let Some(rest) = trimmed.strip_prefix("docker://") {
            if rest.is_empty() {
                return Ok(Address::Docker(Endpoint::Unix(PathBuf::from(
                    DEFAULT_DOCKER_SOCKET,
                ))));
            }
            if !rest.contains("://") {
                return Err(invalid(text, AddressProblem::DockerEndpoint));
            }
            return Ok(Address::Docker(parse_endpoint(rest, text)?));
        }
        Ok(Address::Buildkitd(parse_endpoint(trimmed, text)?))
    }
}

fn invalid(address: &str, reason: AddressProblem) -> Error {
    Error::InvalidAddress {
        address: redact_userinfo(address).into_owned(),
        reason,
        origin: AddressOrigin::Given,
    }
}

fn parse_endpoint(text: &str, whole: &str) -> Result<Endpoint, Error> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(invalid(
            whole,
            AddressProblem::MissingScheme {
                accepted: Accepted::Daemon,
            },
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "unix" => {
            if rest.is_empty() {
                return Err(invalid(whole, AddressProblem::UnixPathMissing));
            }
            if !rest.starts_with('/') {
                return Err(invalid(whole, AddressProblem::UnixPathRelative));
            }
            if rest.contains('\0') {
                return Err(invalid(whole, AddressProblem::UnixPathNul));
            }
            Ok(Endpoint::Unix(PathBuf::from(rest)))
        }
        "npipe" | "ssh" | "docker-container" | "podman-container" | "nerdctl-container"
        | "kube-pod" => Err(invalid(
            whole,
            AddressProblem::UnsupportedTransport {
                scheme: scheme.clone(),
                accepted: Accepted::Daemon,
            },
        )),
        // Before any reason that quotes a part of the text, which may be user information.
        _ if text.contains('@') => Err(invalid(whole, AddressProblem::UserInfo)),
        "tcp" => parse_host_port(rest, whole),
        other => Err(invalid(
            whole,
            AddressProblem::UnknownScheme {
                scheme: other.to_string(),
                accepted: Accepted::Daemon,
            },
        )),
    }
}

fn parse_host_port(rest: &str, whole: &str) -> Result<Endpoint, Error> {
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') || authority.contains('?') || authority.contains('#') {
        return Err(invalid(whole, AddressProblem::TcpPath));
    }
    if authority
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(whole, AddressProblem::ControlCharacters));
    }
    let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
        let Some((host, tail)) = after_bracket.split_once(']') else {
            return Err(invalid(whole, AddressProblem::UnclosedBracket));
        };
        let Some(port) = tail.strip_prefix(':') else {
            return Err(invalid(
                whole,
                AddressProblem::MissingPort {
                    example: "tcp://[ipv6]:port",
                },
            ));
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(invalid(whole, AddressProblem::UnbracketedIpv6));
            }
            Some((host, port)) => (host, port),
            None => {
                return Err(invalid(
                    whole,
                    AddressProblem::MissingPort {
                        example: Scheme::Tcp.example(),
                    },
                ))
            }
        }
    };
    if host.is_empty() {
        return Err(invalid(whole, AddressProblem::MissingHost));
    }
    check_host(host, authority.starts_with('['), whole)?;
    let Some(port) = port.parse::<u16>().ok().filter(|port| *port > 0) else {
        return Err(invalid(
            whole,
            AddressProblem::InvalidPort {
                port: port.to_string(),
            },
        ));
    };
    Ok(Endpoint::Tcp {
        host: host.to_string(),
        port,
    })
}

/// A host name or IPv4 literal, or (in brackets) an IPv6 literal with an optional `%zone`.
fn check_host(host: &str, bracketed: bool, whole: &str) -> Result<(), Error> {
    if bracketed {
        let (address, zone) = host.split_once('%').unwrap_or((host, "x"));
        let zone_ok = !zone.is_empty()
            && zone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if address.parse::<std::net::Ipv6Addr>().is_err() || !zone_ok {
            return Err(invalid(
                whole,
                AddressProblem::InvalidIpv6 {
                    host: host.to_string(),
                },
            ));
        }
        return Ok(());
    }
    if !is_host_name(host) && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(invalid(
            whole,
            AddressProblem::InvalidHost {
                host: host.to_string(),
            },
        ));
    }
    Ok(())
}

/// A DNS name (or IPv4 literal): labels of ASCII letters, digits, `-` and `_`
/// separated by dots, none empty and none starting or ending with `-`.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(text: &str) -> Address {
        match text.parse() {
            Ok(address) => address,
            Err(err) => panic!("{text}: {err}"),
        }
    }

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(
            parse("unix:///run/buildkit/buildkitd.sock"),
            Address::Buildkitd(Endpoint::Unix("/run/buildkit/buildkitd.sock".into()))
        );
        assert_eq!(
            parse("tcp://127.0.0.1:1234"),
            Address::Buildkitd(Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 1234
            })
        );
        assert_eq!(
            parse("tcp://[::1]:1234"),
            Address::Buildkitd(Endpoint::Tcp {
                host: "::1".into(),
                port: 1234
            })
        );
        assert_eq!(
            parse("docker://"),
            Address::Docker(Endpoint::Unix(DEFAULT_DOCKER_SOCKET.into()))
        );
        assert_eq!(
            parse("docker://unix:///x/docker.sock"),
            Address::Docker(Endpoint::Unix("/x/docker.sock".into()))
        );
        assert_eq!(
            parse("docker://tcp://dockerhost:2375"),
            Address::Docker(Endpoint::Tcp {
                host: "dockerhost".into(),
                port: 2375
            })
        );
        assert_eq!(
            parse("tcp://[fe80::1%eth0]:1234"),
            Address::Buildkitd(Endpoint::Tcp {
                host: "fe80::1%eth0".into(),
                port: 1234
            })
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "unix:///a/b.sock",
            "tcp://h:1",
            "tcp://[::1]:2",
            "docker://unix:///var/run/docker.sock",
            "docker://tcp://h:2375",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
    }

    #[test]
    fn malformed_addresses_are_errors_that_name_the_address() {
        for text in [
            "",
            "unix://",
            "unix://relative.sock",
            "tcp://host",
            "tcp://:12",
            "tcp://h:99999",
            "tcp://h:0",
            "tcp://h:x",
            "tcp://::1:80",
            "tcp://[::1",
            "tcp://h:1/path",
            "http://h:1",
            "docker://docker.sock",
            "ssh://me@host",
            "/var/run/docker.sock",
            "://",
            "docker://tcp://",
            "docker://unix://",
            // Brackets belong around IPv6 literals only (found by the address fuzz target).
            "tcp://[[::1]:80",
            "tcp://x]:1",
            "tcp://a[b:1",
            "tcp://[host]:1",
            "tcp://[]:1",
            "tcp://[::1%]:1",
            "tcp://[::1%a b]:1",
            "tcp://user@host:1",
            "tcp://ho st:1",
            "docker://tcp://h]:2375",
            "tcp://user:pw@host:1234",
            "tcp://user@host:1234",
            "docker://tcp://u:p@h:2375",
            "tcp://ho st:1",
            "tcp://höst:1",
            "tcp://h\n:1",
            "tcp://[zz]:1",
            "tcp://-h:1",
            "tcp://a..b:1",
            "tcp://h_*:1",
        ] {
            let err = match text.parse::<Address>() {
                Ok(address) => panic!("{text:?} parsed as {address:?}"),
                Err(err) => err.to_string(),
            };
            if text.contains('@') {
                assert!(
                    !err.contains("pw@") && !err.contains("u:p") && err.contains("***@"),
                    "{text:?}: {err}"
                );
                continue;
            }
            assert!(
                err.contains(&format!("{text:?}")) || text.is_empty(),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn user_information_is_hidden_up_to_the_last_at_sign() {
        let err = "tcp://ci:p@ss@127.0.0.1:1"
            .parse::<Address>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"tcp://***@127.0.0.1:1\"") && !err.contains("ss@"),
            "{err}"
        );
        // A password may contain `/`: everything up to the last `@` is hidden, a path's `@` too.
        let err = "ssh://me@host/x@y"
            .parse::<Address>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"ssh://***@y\""), "{err}");
        for (text, shown) in [
            ("tcp://user:se/cret@host:1234", "\"tcp://***@host:1234\""),
            ("tcp://user:se://cret@host", "\"tcp://***@host\""),
        ] {
            let err = text.parse::<Address>().unwrap_err().to_string();
            assert!(err.contains(shown) && !err.contains("cret"), "{err}");
        }
    }

    /// No input's error shows its password, whatever the password contains: a seeded random
    /// walk over user information with `/`, `@`, `:`, `://`, `%`, spaces and unicode.
    #[test]
    fn no_error_shows_a_password() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        const RUN: &[char] = &['Q', 'Z', 'J', 'X', 'Ж', 'ü', '€', '7'];
        const SEPARATORS: &[&str] = &[
            "/",
            "@",
            ":",
            "://",
            "%",
            "%40",
            " ",
            "?",
            "#",
            "\u{1F512}",
            "",
        ];
        const PREFIXES: &[&str] = &[
            "tcp://",
            "docker://tcp://",
            "unix://",
            "docker://",
            "ssh://",
            "TCP://",
        ];
        const HOSTS: &[&str] = &["host:1234", "host", "[::1]:1", "h/x", "", "127.0.0.1:1/"];
        let mut rng = StdRng::seed_from_u64(0x0add_7e55);
        for _ in 0..5000 {
            let mut password = String::new();
            let mut runs = Vec::new();
            for _ in 0..rng.random_range(1..5) {
                let run: String = (0..rng.random_range(3..8))
                    .map(|_| RUN[rng.random_range(0..RUN.len())])
                    .collect();
                password.push_str(&run);
                password.push_str(SEPARATORS[rng.random_range(0..SEPARATORS.len())]);
                runs.push(run);
            }
            let prefix = PREFIXES[rng.random_range(0..PREFIXES.len())];
            let host = HOSTS[rng.random_range(0..HOSTS.len())];
            let user = if rng.random_bool(0.5) { "user:" } else { "" };
            let text = format!("{prefix}{user}{password}@{host}");
            let shown = match text.parse::<Address>() {
                Ok(address) => format!("{address} {address:?}"),
                Err(err) => format!("{err} {err:?}"),
            };
            for run in &runs {
                assert!(!shown.contains(run.as_str()), "{text:?} shown as {shown:?}");
            }
        }
    }

    #[test]
    fn resolution_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            let map: HashMap<_, _> = pairs.iter().copied().collect();
            move |name: &str| map.get(name).map(|value| value.to_string())
        };
        let none_exist = |_: &Path| false;
        let all_exist = |_: &Path| true;

        let explicit = Address::resolve_with(
            Some("tcp://a:1"),
            &env(&[("BUILDKIT_HOST", "tcp://b:2")]),
            &none_exist,
        );
        assert_eq!(explicit.unwrap().to_string(), "tcp://a:1");

        let from_buildkit_host = Address::resolve_with(
            None,
            &env(&[
                ("BUILDKIT_HOST", "tcp://b:2"),
                ("DOCKER_HOST", "unix:///d.sock"),
            ]),
            &none_exist,
        );
        assert_eq!(from_buildkit_host.unwrap().to_string(), "tcp://b:2");

        let from_docker_host = Address::resolve_with(
            None,
            &env(&[("DOCKER_HOST", "unix:///d.sock")]),
            &none_exist,
        );
        assert_eq!(
            from_docker_host.unwrap().to_string(),
            "docker://unix:///d.sock"
        );

        let first_socket = Address::resolve_with(None, &env(&[]), &all_exist);
        assert_eq!(
            first_socket.unwrap().to_string(),
            "unix:///run/buildkit/buildkitd.sock"
        );

        let rootless = Address::resolve_with(
            None,
            &env(&[("XDG_RUNTIME_DIR", "/run/user/1000")]),
            &|p: &Path| p.starts_with("/run/user"),
        );
        assert_eq!(
            rootless.unwrap().to_string(),
            "unix:///run/user/1000/buildkit/buildkitd.sock"
        );

        let docker = Address::resolve_with(None, &env(&[]), &|p: &Path| {
            p == Path::new(DEFAULT_DOCKER_SOCKET)
        });
        assert_eq!(
            docker.unwrap().to_string(),
            "docker://unix:///var/run/docker.sock"
        );

        let nothing = Address::resolve_with(
            None,
            &env(&[("XDG_RUNTIME_DIR", "/run/user/7")]),
            &none_exist,
        )
        .unwrap_err()
        .to_string();
        for tried in [
            "BUILDKIT_HOST",
            "DOCKER_HOST",
            DEFAULT_BUILDKITD_SOCKET,
            "/run/user/7/buildkit/buildkitd.sock",
            DEFAULT_DOCKER_SOCKET,
        ] {
            assert!(nothing.contains(tried), "{nothing}");
        }

        let bad_env = Address::resolve_with(None, &env(&[("BUILDKIT_HOST", "bogus")]), &none_exist)
            .unwrap_err()
            .to_string();
        assert!(bad_env.contains("BUILDKIT_HOST"), "{bad_env}");
    }
}
