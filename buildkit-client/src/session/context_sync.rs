//! Serving local directories (the build context, the Dockerfile's directory,
//! named contexts) to the daemon through `moby.filesync.v1.FileSync`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use cicd_agents_proto::fsutil::types::Packet;
use cicd_agents_proto::moby::filesync::v1::file_sync_server::{FileSync, FileSyncServer};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &["/moby.filesync.v1.FileSync/DiffCopy", "/moby.filesync.v1.FileSync/TarStream"];

/// The directories a session offers, by the name the daemon asks for.
#[derive(Debug, Clone, Default)]
pub struct LocalDirs {
    dirs: Arc<BTreeMap<String, PathBuf>>,
}

impl LocalDirs {
    /// Offers `dir` under `name`.
    pub fn insert(&mut self, name: impl Into<String>, dir: impl Into<PathBuf>) {
        Arc::make_mut(&mut self.dirs).insert(name.into(), dir.into());
    }

    /// Whether no directory is offered.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    pub(crate) fn server(&self) -> FileSyncServer<LocalDirs> {
        FileSyncServer::new(self.clone())
    }
}

type PacketStream = Pin<Box<dyn Stream<Item = Result<Packet, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FileSync for LocalDirs {
    type DiffCopyStream = PacketStream;
    type TarStreamStream = PacketStream;

    async fn diff_copy(&self, _request: Request<Streaming<Packet>>) -> Result<Response<PacketStream>, Status> {
        Err(Status::unimplemented("not yet"))
    }

    async fn tar_stream(&self, _request: Request<Streaming<Packet>>) -> Result<Response<PacketStream>, Status> {
        Err(Status::unimplemented("tar streams are not offered; use DiffCopy"))
    }
}
