//! `moby.filesync.v1.FileSend` for the `local` exporter: the packet-typed
//! server that hands each call to the fsutil receiver
//! ([`receive_local_export`]), which writes the daemon's files into the
//! exporter's directory, confined to it.

use std::pin::Pin;

use cicd_agents_proto::fsutil::types::Packet;
use cicd_agents_proto::moby::filesync::v1::packets::file_send_server::{FileSend, FileSendServer};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::exports::{ExportTarget, Shared};
use crate::fsutil::receive_local_export;

/// The packet-typed FileSend server.
#[derive(Clone)]
pub(crate) struct LocalExportServer {
    server: FileSendServer<LocalReceiver>,
    shared: Shared,
}

impl LocalExportServer {
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for LocalExportServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future =
        <FileSendServer<LocalReceiver> as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        <FileSendServer<LocalReceiver> as tower::Service<http::Request<tonic::body::Body>>>::poll_ready(&mut self.server, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        <FileSendServer<LocalReceiver> as tower::Service<http::Request<tonic::body::Body>>>::call(
            &mut self.server,
            request,
        )
    }
}

pub(crate) fn server(shared: Shared) -> LocalExportServer {
    LocalExportServer {
        server: FileSendServer::new(LocalReceiver(shared.clone()))
            .max_decoding_message_size(crate::transport::MAX_MESSAGE_SIZE),
        shared,
    }
}

#[derive(Clone)]
pub(crate) struct LocalReceiver(Shared);

type PacketStream = Pin<Box<dyn Stream<Item = Result<Packet, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FileSend for LocalReceiver {
    type DiffCopyStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<PacketStream>, Status> {
        let (index, target) = self.0.target(request.metadata())?;
        let ExportTarget::Directory(dest) = target else {
            return Err(self
                .0
                .fail(format!("exporter {index} does not write to a directory")));
        };
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(64);
        let shared = self.0.clone();
        tokio::spawn(async move {
            let outcome = receive_local_export(&dest, inbound, sender.clone()).await;
            match outcome {
                Ok(summary) => tracing::debug!(
                    dir = %dest.display(),
                    files = summary.files,
                    bytes = summary.bytes,
                    skipped = summary.skipped,
                    "local export written"
                ),
                Err(err) => {
                    let status = shared.fail(format!("local export to {}: {err}", dest.display()));
                    let _ = sender.send(Err(status)).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
