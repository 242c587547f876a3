//! SSH agents forwarded to the build (`--ssh default` or
//! `--ssh id=/path/to/agent.sock`), as buildx reads them. The session relays
//! the agent protocol (`session::ssh`); this is the value users write.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};

/// The ID used when none is named.
pub const DEFAULT_ID: &str = "default";

/// An SSH agent offered to the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAgent {
    /// The ID `RUN --mount=type=ssh,id=…` refers to.
    pub id: String,
    /// The agent's unix socket.
    pub socket: PathBuf,
}

impl SshAgent {
    /// Parses buildx's `--ssh` syntax: `default`, `default=/path/agent.sock`,
    /// `id=/path/agent.sock`. Without a path, `$SSH_AUTH_SOCK` is used.
    pub fn parse(spec: &str) -> Result<Self> {
        let (id, path) = match spec.split_once('=') {
            Some((id, path)) => (id.trim(), Some(path.trim())),
            None => (spec.trim(), None),
        };
        if id.is_empty() {
            return Err(Error::option(
                OptionField::Ssh,
                format!("{spec:?} has no ID; write default or id=socket"),
            ));
        }
        if path.is_some_and(|p| p.contains(',')) {
            return Err(Error::option(
                OptionField::Ssh,
                format!("{spec:?}: only one agent socket per ID is supported"),
            ));
        }
        let socket = match path.filter(|p| !p.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::option(
                        OptionField::Ssh,
                        format!("{spec:?} names no socket and SSH_AUTH_SOCK is not set"),
                    )
                })?,
        };
        if socket.is_file() {
            return Err(Error::option(
                OptionField::Ssh,
                format!(
                    "{} is a file; key files are not supported, give an ssh-agent socket",
                    socket.display()
                ),
            ));
        }
        Ok(SshAgent {
            id: id.to_string(),
            socket,
        })
    }
}

impl FromStr for SshAgent {
    type Err = Error;
    fn from_str(spec: &str) -> Result<SshAgent> {
        SshAgent::parse(spec)
    }
}

impl fmt::Display for SshAgent {
    /// `ID=SOCKET`, which parses back to the same agent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.id, self.socket.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ssh_specs() {
        let agent = SshAgent::parse("default=/tmp/agent.sock").unwrap();
        assert_eq!(
            agent,
            SshAgent {
                id: "default".into(),
                socket: "/tmp/agent.sock".into()
            }
        );
        assert!(SshAgent::parse("=x").is_err());
        assert_eq!(agent.to_string().parse::<SshAgent>().unwrap(), agent);
    }
}
