//! Opening a session's byte stream to the daemon, whichever way this daemon
//! is reached: the session code serves its gRPC routes over what
//! [`Transport::open_session`] returns and never asks which it is.
//!
//! * `docker://`: the Docker API's `/session` door, upgraded to HTTP/2 with
//!   the session headers (the stream itself).
//! * `unix://`, `tcp://`: the Control API's `Session` call, with the headers
//!   as lowercase gRPC metadata: a bidirectional stream of `BytesMessage`s
//!   carrying raw HTTP/2 bytes, one message per write, pumped to and from an
//!   in-process pipe whose other end is the stream handed out.

use bytes::Bytes;
use cicd_agents_proto::moby::buildkit::v1::control_client::ControlClient;
use cicd_agents_proto::moby::buildkit::v1::BytesMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::Channel;

use super::io::BoxedStream;
use super::Transport;
use crate::error::{Error, Result};

/// Size of the in-process pipe between the tunnel pump and the HTTP/2 server.
const PIPE_BUFFER: usize = 4 * 1024 * 1024;
/// Largest chunk put into one `BytesMessage`.
const MESSAGE_CHUNK: usize = 1024 * 1024;

/// A session's byte stream: HTTP/2 with the daemon as the client.
pub(crate) struct SessionStream {
    /// The stream to serve the session on.
    pub(crate) stream: BoxedStream,
    /// Tasks that carry the stream (none for Docker's door); aborting them
    /// ends the session.
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Transport {
    /// Opens the byte stream of a session announced with `headers` (name,
    /// value; `X-Docker-Expose-Session-*`): Docker's `/session` door for
    /// `docker://`, otherwise a `Control.Session` call on `control`.
    pub(crate) async fn open_session(
        &self,
        control: &ControlClient<Channel>,
        headers: &[(String, String)],
    ) -> Result<SessionStream> {
        if self.address().is_docker() {
            let stream = self.dial_docker_session(headers).await?;
            return Ok(SessionStream {
                stream,
                tasks: Vec::new(),
            });
        }
        let pipe = MessagePipe::new();
        let mut request = tonic::Request::new(ReceiverStream::new(pipe.outbound));
        for (name, value) in headers {
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| Error::Session(format!("bad session header name {name}")))?;
            let value = MetadataValue::try_from(value.as_str()).map_err(|_| {
                Error::Session(format!(
                    "session header {name} has a value that cannot be sent"
                ))
            })?;
            request.metadata_mut().append(key, value);
        }
        let mut control = control.clone();
        let inbound = pipe.inbound;
        let address = self.address().to_string();
        let call = tokio::spawn(async move {
            match control.session(request).await {
                Ok(response) => {
                    if let Err(status) = inbound.run(response.into_inner()).await {
                        tracing::debug!(%status, "session tunnel closed");
                    }
                }
                Err(status) => {
                    tracing::warn!(%address, %status, "the daemon refused the session")
                }
            }
        });
        Ok(SessionStream {
            stream: pipe.server_side,
            tasks: vec![call],
        })
    }
}

/// The two ends of a `Control.Session` tunnel: what we send the daemon and a
/// byte stream for the HTTP/2 server.
struct MessagePipe {
    /// Messages to send to the daemon (the request stream of `Control.Session`).
    outbound: mpsc::Receiver<BytesMessage>,
    /// The server's side of the pipe.
    server_side: BoxedStream,
    /// Feeds messages received from the daemon into the pipe.
    inbound: InboundPump,
}

/// Writes what the daemon sends into the pipe.
struct InboundPump {
    writer: tokio::io::WriteHalf<tokio::io::DuplexStream>,
}

impl InboundPump {
    /// Copies every message of `inbound` into the pipe until it ends.
    async fn run(
        mut self,
        mut inbound: tonic::Streaming<BytesMessage>,
    ) -> Result<(), tonic::Status> {
        while let Some(message) = inbound.message().await? {
            if self.writer.write_all(&message.data).await.is_err() {
                break;
            }
        }
        let _ = self.writer.shutdown().await;
        Ok(())
    }
}

impl MessagePipe {
    /// Creates the pipe and starts the task that turns what the server writes
    /// into messages.
    fn new() -> MessagePipe {
        let (server_side, pump_side) = tokio::io::duplex(PIPE_BUFFER);
        let (mut reader, writer) = tokio::io::split(pump_side);
        let (sender, outbound) = mpsc::channel::<BytesMessage>(64);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; MESSAGE_CHUNK];
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let message = BytesMessage {
                            data: Bytes::copy_from_slice(&buffer[..n]),
                        };
                        if sender.send(message).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        MessagePipe {
            outbound,
            server_side: Box::new(server_side),
            inbound: InboundPump { writer },
        }
    }
}
