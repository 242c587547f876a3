//! `moby.filesync.v1.FileSend`: files the daemon exports *to* the client.
//!
//! One gRPC method carries two payload shapes:
//! * the `tar`, `oci` and `docker` exporters stream raw tar bytes as
//!   `BytesMessage`s, which we write to a file or to standard output;
//! * the `local` exporter runs an fsutil diffcopy with the daemon as sender,
//!   which we receive into a directory.
//!
//! The daemon names the exporter in the `buildkit-attachable-exporter-id`
//! metadata (its index in the solve request, v0.13+); older daemons export to
//! one target only. A small dispatcher routes each call to the server typed
//! for that exporter's shape.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use cicd_agents_proto::moby::filesync::v1::file_send_server::{FileSend, FileSendServer};
use cicd_agents_proto::moby::filesync::v1::BytesMessage;
use futures::Stream;
use tokio::io::AsyncWriteExt;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Request, Response, Status, Streaming};

use super::exports::{ExportTarget, Exports, ExportsDone, Shared};
use super::local_export;

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &["/moby.filesync.v1.FileSend/DiffCopy"];

#[derive(Debug, Clone)]
struct TarReceiver(Shared);

type EmptyStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FileSend for TarReceiver {
    type DiffCopyStream = EmptyStream<BytesMessage>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let (index, target) = self.0.target(request.metadata())?;
        let mut inbound = request.into_inner();
        let mut sink: Pin<Box<dyn tokio::io::AsyncWrite + Send>> = match &target {
            ExportTarget::File(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(parent)
                        .await
                        .map_err(|err| self.0.fail(format!("{}: {err}", parent.display())))?;
                }
                let file = tokio::fs::File::create(path)
                    .await
                    .map_err(|err| self.0.fail(format!("{}: {err}", path.display())))?;
                Box::pin(tokio::io::BufWriter::with_capacity(1024 * 1024, file))
            }
            ExportTarget::Stdout => Box::pin(tokio::io::stdout()),
            ExportTarget::Directory(path) => {
                return Err(self.0.fail(format!(
                    "exporter {index} writes to the directory {} but the daemon sent a tar stream",
                    path.display()
                )))
            }
        };
        let describe = match &target {
            ExportTarget::File(path) => path.display().to_string(),
            _ => "standard output".to_string(),
        };
        let mut written: u64 = 0;
        while let Some(message) = inbound.message().await? {
            sink.write_all(&message.data)
                .await
                .map_err(|err| self.0.fail(format!("{describe}: {err}")))?;
            written += message.data.len() as u64;
        }
        sink.flush()
            .await
            .map_err(|err| self.0.fail(format!("{describe}: {err}")))?;
        sink.shutdown()
            .await
            .map_err(|err| self.0.fail(format!("{describe}: {err}")))?;
        tracing::debug!(exporter = index, bytes = written, target = %describe, "export written");
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }
}

/// The `FileSend` service for `exports`, `None` when the build exports no
/// files, and the handle that reads the failures after the solve.
pub(crate) fn server(exports: Exports) -> (ExportsDone, Option<FileSendDispatch>) {
    let (done, shared) = exports.into_shared();
    let dispatch = shared.map(|shared| FileSendDispatch {
        bytes: FileSendServer::new(TarReceiver(shared.clone()))
            .max_decoding_message_size(crate::transport::MAX_MESSAGE_SIZE),
        packets: local_export::server(shared),
    });
    (done, dispatch)
}

/// Routes `FileSend/DiffCopy` calls to the bytes-typed or the packet-typed
/// server by the target of the exporter they belong to.
#[derive(Clone)]
pub(crate) struct FileSendDispatch {
    bytes: FileSendServer<TarReceiver>,
    packets: local_export::LocalExportServer,
}

impl NamedService for FileSendDispatch {
    const NAME: &'static str = "moby.filesync.v1.FileSend";
}

impl tower::Service<http::Request<Body>> for FileSendDispatch {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let headers = tonic::metadata::MetadataMap::from_headers(request.headers().clone());
        let wants_directory = matches!(
            self.packets.shared().target(&headers),
            Ok((_, ExportTarget::Directory(_)))
        );
        if wants_directory {
            let mut server = self.packets.clone();
            Box::pin(async move { tower::Service::call(&mut server, request).await })
        } else {
            let mut server = self.bytes.clone();
            Box::pin(async move { tower::Service::call(&mut server, request).await })
        }
    }
}
