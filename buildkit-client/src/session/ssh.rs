//! `moby.sshforward.v1.SSH`: forwarding an SSH agent into `RUN --mount=type=ssh`
//! steps (`--ssh default` or `--ssh id=/path/to/agent.sock`).
//!
//! The daemon names the agent in the `buildkit.ssh.id` request metadata
//! (`default` when absent) and the stream carries the agent protocol's raw
//! bytes, which we relay to the agent's unix socket.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use cicd_agents_proto::moby::sshforward::v1::ssh_server::{Ssh, SshServer};
use cicd_agents_proto::moby::sshforward::v1::{
    BytesMessage, CheckAgentRequest, CheckAgentResponse,
};
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{Error, Result};
use crate::flags::OptionField;

/// The metadata key naming the agent.
const ID_KEY: &str = "buildkit.ssh.id";
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

#[derive(Debug, Clone)]
pub(crate) struct SshService {
    agents: Arc<BTreeMap<String, PathBuf>>,
}

impl SshService {
    pub(crate) fn server(agents: Vec<SshAgent>) -> SshServer<SshService> {
        SshServer::new(SshService {
            agents: Arc::new(agents.into_iter().map(|a| (a.id, a.socket)).collect()),
        })
    }

    fn socket(&self, id: &str) -> Result<&PathBuf, Status> {
        self.agents.get(id).ok_or_else(|| {
            Status::not_found(format!("no SSH agent with ID {id} was given (--ssh {id})"))
        })
    }
}

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &[
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
];

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        let id = request.into_inner().id;
        let id = if id.is_empty() {
            DEFAULT_ID.to_string()
        } else {
            id
        };
        let socket = self.socket(&id)?;
        UnixStream::connect(socket).await.map_err(|err| {
            Status::unavailable(format!("SSH agent {id} at {}: {err}", socket.display()))
        })?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream =
        Pin<Box<dyn Stream<Item = Result<BytesMessage, Status>> + Send + 'static>>;

    async fn forward_agent(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request
            .metadata()
            .get(ID_KEY)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_ID)
            .to_string();
        let socket = self.socket(&id)?.clone();
        let agent = UnixStream::connect(&socket).await.map_err(|err| {
            Status::unavailable(format!("SSH agent {id} at {}: {err}", socket.display()))
        })?;
        let (mut agent_read, mut agent_write) = agent.into_split();
        let mut inbound = request.into_inner();
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                if agent_write.write_all(&message.data).await.is_err() {
                    break;
                }
            }
            let _ = agent_write.shutdown().await;
        });
        let (sender, receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match agent_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sender
                            .send(Ok(BytesMessage {
                                data: buffer[..n].to_vec(),
                            }))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
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
    }
}
