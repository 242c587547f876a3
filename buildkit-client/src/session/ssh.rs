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

/// The metadata key naming the agent.
const ID_KEY: &str = "buildkit.ssh.id";
pub use crate::flags::ssh::DEFAULT_ID;
pub use crate::flags::SshAgent;

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
            Status::not_found(format!("no SSH agent with ID {id} was given to the build"))
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
