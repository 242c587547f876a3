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
//! Either way a `tonic` server serves exactly one connection on it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cicd_agents_proto::moby::buildkit::v1::BytesMessage;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tonic::transport::server::{Connected, Router};

use crate::transport::io::BoxedStream;

/// Size of the in-process pipe between the tunnel pump and the HTTP/2 server.
const PIPE_BUFFER: usize = 4 * 1024 * 1024;
/// Largest chunk put into one `BytesMessage`.
const MESSAGE_CHUNK: usize = 1024 * 1024;

/// A boxed stream that tonic accepts as a connection.
pub(crate) struct TunnelIo(pub(crate) BoxedStream);

impl Connected for TunnelIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TunnelIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Serves `router` on the one connection `stream` until the peer hangs up
/// or the task is aborted.
pub(crate) async fn serve(router: Router, stream: BoxedStream) -> Result<(), tonic::transport::Error> {
    // An incoming stream that never ends: tonic would otherwise begin shutting
    // down as soon as the single connection has been handed over.
    let incoming = futures::stream::iter([Ok::<_, io::Error>(TunnelIo(stream))]).chain(futures::stream::pending());
    router.serve_with_incoming(incoming).await
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
    pub(crate) async fn run(mut self, mut inbound: tonic::Streaming<BytesMessage>) -> Result<(), tonic::Status> {
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
                        let message = BytesMessage { data: Bytes::copy_from_slice(&buffer[..n]) };
                        if sender.send(message).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        MessagePipe { outbound, server_side: Box::new(server_side), inbound: InboundPump { writer } }
    }
}
