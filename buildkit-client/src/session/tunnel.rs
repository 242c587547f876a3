//! Serving gRPC *inside* a byte pipe to the daemon.
//!
//! In a BuildKit session the roles are inverted: the daemon is the HTTP/2
//! client and we are the server. The pipe is either
//!
//! * the Docker API's `/session` door, upgraded to HTTP/2 (the stream itself), or
//! * the Control API's `Session` call, a bidirectional stream of
//!   `BytesMessage`s carrying raw HTTP/2 bytes: one message per write, the
//!   reader buffering what it has not consumed.
//!
//! Either way an HTTP/2 server serves exactly one connection on it, with
//! tonic's generated services routed by [`Routes`].

use std::time::Duration;

use bytes::Bytes;
use cicd_agents_proto::moby::buildkit::v1::BytesMessage;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tonic::service::Routes;

use crate::transport::io::BoxedStream;

/// Size of the in-process pipe between the tunnel pump and the HTTP/2 server.
const PIPE_BUFFER: usize = 4 * 1024 * 1024;
/// Largest chunk put into one `BytesMessage`.
const MESSAGE_CHUNK: usize = 1024 * 1024;

/// How the session's HTTP/2 server is tuned: BuildKit's own values (large
/// windows for context uploads, keepalive pings so a vanished daemon is noticed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerTuning {
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_timeout: Duration,
}

/// Serves `routes` on the one connection `stream` until the peer hangs up
/// or the future is dropped.
///
/// The connection is driven by this future itself, not by a task of its own
/// (which is what `tonic::transport::Server` would spawn): dropping it (the
/// session being torn down) closes the socket at once, so the daemon sees
/// the session end and nothing is left running on our side.
pub(crate) async fn serve(
    routes: Routes,
    stream: BoxedStream,
    tuning: ServerTuning,
) -> Result<(), hyper::Error> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(tuning.stream_window)
        .initial_connection_window_size(tuning.connection_window)
        .max_frame_size(tuning.max_frame_size)
        .keep_alive_interval(tuning.keepalive_interval)
        .keep_alive_timeout(tuning.keepalive_timeout);
    builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(routes))
        .await
}

/// The two ends of a `Control.Session` tunnel: what we send the daemon and a
/// byte stream for the HTTP/2 server.
pub(crate) struct MessagePipe {
    /// Messages to send to the daemon (the request stream of `Control.Session`).
    pub(crate) outbound: mpsc::Receiver<BytesMessage>,
    /// The server's side of the pipe.
    pub(crate) server_side: BoxedStream,
    /// Feeds messages received from the daemon into the pipe.
    pub(crate) inbound: InboundPump,
}

/// Writes what the daemon sends into the pipe.
pub(crate) struct InboundPump {
    writer: tokio::io::WriteHalf<tokio::io::DuplexStream>,
}

impl InboundPump {
    /// Copies every message of `inbound` into the pipe until it ends.
    pub(crate) async fn run(
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
    pub(crate) fn new() -> MessagePipe {
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
