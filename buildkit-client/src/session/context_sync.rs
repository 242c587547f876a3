//! Serving local directories (the build context, the Dockerfile's directory,
//! named contexts) to the daemon through `moby.filesync.v1.FileSync`.
//!
//! This is the gRPC side only: each `DiffCopy` call names a directory in its
//! metadata; we look it up and hand the call to
//! [`serve_diffcopy`](crate::fsutil::serve_diffcopy), converting
//! packets to and from the wire as they pass.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cicd_agents_proto::fsutil::types::{packet::PacketType, Packet as WirePacket, Stat};
use cicd_agents_proto::moby::filesync::v1::file_sync_server::{FileSync, FileSyncServer};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::fsutil::{
    serve_walked, walk_context, walk_context_async, walk_options, ContextEntry, ContextSnapshot,
    DiffCopyRequest, Packet, PacketSink, PacketSource, ServeOptions, TransportError, WalkError,
};

/// Methods advertised in the session headers.
pub(crate) const METHODS: &[&str] = &[
    "/moby.filesync.v1.FileSync/DiffCopy",
    "/moby.filesync.v1.FileSync/TarStream",
];

/// Hand-offs (one packet, or a batch the sender passes together) buffered
/// towards the daemon before the sender waits.
const OUTBOUND_BUFFER: usize = 64;

/// What goes to the response stream in one channel message: the packets of
/// one hand-off, in order.
type WireBatch = Vec<Result<WirePacket, Status>>;

/// The directories a session offers, by the name the daemon asks for.
#[derive(Debug, Clone, Default)]
pub struct LocalDirs {
    dirs: Arc<BTreeMap<String, PathBuf>>,
    sent: Arc<TransferCounters>,
    /// Walks started before the daemon asked (see [`LocalDirs::speculate`]).
    speculations: Arc<std::sync::Mutex<Vec<Speculation>>>,
}

/// A walk's result and how long it took.
type Walked = (Result<ContextSnapshot, WalkError>, std::time::Duration);

/// A walk started before the daemon asked for it, for the request it expects.
#[derive(Debug)]
struct Speculation {
    request: DiffCopyRequest,
    walk: tokio::task::JoinHandle<Walked>,
}

/// What a session sent of its local directories.
#[derive(Debug, Default)]
pub(crate) struct TransferCounters {
    /// `DiffCopy` calls the daemon made.
    started: AtomicU64,
    /// `DiffCopy` calls that sent everything asked for.
    finished: AtomicU64,
    entries: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
    /// Requests served from a walk started before they came.
    prewalked: AtomicU64,
    /// Time spent listing directories, in nanoseconds.
    walk_nanos: AtomicU64,
    /// Time spent sending after the listings, in nanoseconds.
    transfer_nanos: AtomicU64,
}

/// Totals of what was sent from local directories during a build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContextTransfer {
    /// Entries listed (files, directories, links), over every request.
    pub entries: u64,
    /// Files whose content the daemon asked for.
    pub files: u64,
    /// Content bytes sent.
    pub bytes: u64,
    /// Requests served from a walk started with the session, before the
    /// daemon asked (the build context, when the daemon's filters were the
    /// ones expected).
    pub prewalked: u64,
}

impl LocalDirs {
    /// Offers `dir` under `name`.
    pub fn insert(&mut self, name: impl Into<String>, dir: impl Into<PathBuf>) {
        Arc::make_mut(&mut self.dirs).insert(name.into(), dir.into());
    }

    /// Starts walking the directory `request` names, as that request would,
    /// before the daemon asks: when a `DiffCopy` call later asks for exactly
    /// that (same directory, includes, excludes and follow paths), it is
    /// served from this walk instead of walking then. A walk never asked for
    /// is discarded with the session. Nothing happens for a name not offered.
    pub(crate) fn speculate(&self, request: DiffCopyRequest) {
        let Some(root) = self.dirs.get(&request.dir_name).cloned() else {
            return;
        };
        let options = walk_options(&request, &ServeOptions::default());
        let walk = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let walked = walk_context(&root, &options);
            (walked, started.elapsed())
        });
        if let Ok(mut speculations) = self.speculations.lock() {
            speculations.push(Speculation { request, walk });
        }
    }

    /// The walk started for exactly `request`, if any (taken: used once).
    fn take_speculation(
        &self,
        request: &DiffCopyRequest,
    ) -> Option<tokio::task::JoinHandle<Walked>> {
        let mut speculations = self.speculations.lock().ok()?;
        let index = speculations.iter().position(|s| s.request == *request)?;
        Some(speculations.swap_remove(index).walk)
    }

    /// The directory offered under `name`.
    pub(crate) fn dir(&self, name: &str) -> Option<&std::path::Path> {
        self.dirs.get(name).map(PathBuf::as_path)
    }

    /// Whether no directory is offered.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// Whether a transfer was started and has not (or not successfully)
    /// finished: the daemon was reading a local directory.
    pub(crate) fn upload_unfinished(&self) -> bool {
        self.sent.started.load(Ordering::SeqCst) > self.sent.finished.load(Ordering::SeqCst)
    }

    /// What was sent so far.
    pub(crate) fn transferred(&self) -> ContextTransfer {
        ContextTransfer {
            entries: self.sent.entries.load(Ordering::Relaxed),
            files: self.sent.files.load(Ordering::Relaxed),
            bytes: self.sent.bytes.load(Ordering::Relaxed),
            prewalked: self.sent.prewalked.load(Ordering::Relaxed),
        }
    }

    /// How long listing the directories and sending them took so far,
    /// summed over the daemon's requests.
    pub(crate) fn times(&self) -> (std::time::Duration, std::time::Duration) {
        (
            std::time::Duration::from_nanos(self.sent.walk_nanos.load(Ordering::Relaxed)),
            std::time::Duration::from_nanos(self.sent.transfer_nanos.load(Ordering::Relaxed)),
        )
    }

    pub(crate) fn server(&self) -> FileSyncServer<LocalDirs> {
        FileSyncServer::new(self.clone())
            .max_decoding_message_size(crate::transport::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(crate::transport::MAX_MESSAGE_SIZE)
    }
}

type PacketStream = Pin<Box<dyn Stream<Item = Result<WirePacket, Status>> + Send + 'static>>;

/// Packets to the daemon, converted to the wire form on the way. A batch is
/// one channel message, which the response stream hands to the encoder
/// packet by packet without waiting in between.
struct WireSink(mpsc::Sender<WireBatch>);

impl WireSink {
    async fn pass(&mut self, batch: WireBatch) -> Result<(), TransportError> {
        self.0
            .send(batch)
            .await
            .map_err(|_| TransportError::new("the daemon closed the stream"))
    }
}

impl PacketSink for WireSink {
    async fn send(&mut self, packet: Packet) -> Result<(), TransportError> {
        self.pass(vec![Ok(to_wire(packet))]).await
    }

    async fn send_all(&mut self, packets: Vec<Packet>) -> Result<(), TransportError> {
        self.pass(packets.into_iter().map(|p| Ok(to_wire(p))).collect())
            .await
    }
}

/// The response stream of a `DiffCopy` call: the batches of `receiver`,
/// one packet at a time.
fn wire_stream(receiver: mpsc::Receiver<WireBatch>) -> PacketStream {
    use futures::StreamExt;
    Box::pin(ReceiverStream::new(receiver).flat_map(futures::stream::iter))
}

/// Packets from the daemon, converted from the wire form.
struct WireSource(Streaming<WirePacket>);

impl PacketSource for WireSource {
    async fn recv(&mut self) -> Result<Option<Packet>, TransportError> {
        match self.0.message().await {
            Ok(Some(packet)) => Ok(Some(from_wire(packet))),
            Ok(None) => Ok(None),
            Err(status) => Err(TransportError::new(status.message().to_string())),
        }
    }
}

fn stat_of(entry: ContextEntry) -> Stat {
    Stat {
        path: entry.path,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        size: entry.size,
        mod_time: entry.mod_time,
        linkname: entry.linkname,
        devmajor: entry.devmajor,
        devminor: entry.devminor,
        xattrs: entry.xattrs.into_iter().collect(),
    }
}

fn to_wire(packet: Packet) -> WirePacket {
    let r#type = packet.type_code();
    match packet {
        Packet::Stat(entry) => WirePacket {
            r#type,
            stat: entry.map(stat_of),
            ..WirePacket::default()
        },
        Packet::Req(id) => WirePacket {
            r#type,
            id,
            ..WirePacket::default()
        },
        Packet::Data { id, data } => WirePacket {
            r#type,
            id,
            data,
            ..WirePacket::default()
        },
        Packet::Err(message) => WirePacket {
            r#type,
            data: message.into_bytes().into(),
            ..WirePacket::default()
        },
        Packet::Fin | Packet::Other(_) => WirePacket {
            r#type,
            ..WirePacket::default()
        },
    }
}

fn from_wire(packet: WirePacket) -> Packet {
    match PacketType::try_from(packet.r#type) {
        Ok(PacketType::PacketReq) => Packet::Req(packet.id),
        Ok(PacketType::PacketData) => Packet::Data {
            id: packet.id,
            data: packet.data,
        },
        Ok(PacketType::PacketFin) => Packet::Fin,
        Ok(PacketType::PacketErr) => {
            Packet::Err(String::from_utf8_lossy(&packet.data).into_owned())
        }
        _ => Packet::Other(packet.r#type),
    }
}

#[tonic::async_trait]
impl FileSync for LocalDirs {
    type DiffCopyStream = PacketStream;
    type TarStreamStream = PacketStream;

    async fn diff_copy(
        &self,
        request: Request<Streaming<WirePacket>>,
    ) -> Result<Response<PacketStream>, Status> {
        let pairs: Vec<(String, String)> = request
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(key, value) => value
                    .to_str()
                    .ok()
                    .map(|v| (key.as_str().to_string(), v.to_string())),
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let wanted = DiffCopyRequest::from_metadata(pairs);
        tracing::debug!(request = ?wanted, "the daemon asks for a local directory");
        let Some(root) = self.dirs.get(&wanted.dir_name).cloned() else {
            return Err(Status::not_found(format!(
                "no access allowed to dir {:?}",
                wanted.dir_name
            )));
        };
        let (sender, receiver) = mpsc::channel(OUTBOUND_BUFFER);
        let source = WireSource(request.into_inner());
        let counters = self.sent.clone();
        counters.started.fetch_add(1, Ordering::SeqCst);
        let speculation = self.take_speculation(&wanted);
        tokio::spawn(async move {
            let options = ServeOptions::default();
            let (walked, walk_time) = match speculation {
                Some(walk) => {
                    tracing::debug!(dir = %wanted.dir_name, "serving the walk started with the session");
                    counters.prewalked.fetch_add(1, Ordering::Relaxed);
                    walk.await.unwrap_or_else(|err| {
                        (
                            Err(WalkError::Internal(err.to_string())),
                            Default::default(),
                        )
                    })
                }
                None => {
                    let started = std::time::Instant::now();
                    let walked =
                        walk_context_async(root.clone(), walk_options(&wanted, &options)).await;
                    (walked, started.elapsed())
                }
            };
            let result = serve_walked(
                &wanted,
                walked,
                walk_time,
                WireSink(sender.clone()),
                source,
                &options,
            )
            .await;
            if let Ok(served) = &result {
                let nanos =
                    |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                counters
                    .walk_nanos
                    .fetch_add(nanos(served.walk), Ordering::Relaxed);
                counters
                    .transfer_nanos
                    .fetch_add(nanos(served.transfer), Ordering::Relaxed);
                let summary = &served.sent;
                counters
                    .entries
                    .fetch_add(summary.stats as u64, Ordering::Relaxed);
                counters
                    .files
                    .fetch_add(summary.files as u64, Ordering::Relaxed);
                counters.bytes.fetch_add(summary.bytes, Ordering::Relaxed);
                counters.finished.fetch_add(1, Ordering::SeqCst);
            }
            if let Err(err) = result {
                tracing::warn!(dir = %wanted.dir_name, path = %root.display(), error = %err, "sending a local directory failed");
                let _ = sender
                    .send(vec![Err(Status::internal(err.to_string()))])
                    .await;
            }
        });
        Ok(Response::new(wire_stream(receiver)))
    }

    async fn tar_stream(
        &self,
        _request: Request<Streaming<WirePacket>>,
    ) -> Result<Response<PacketStream>, Status> {
        Err(Status::unimplemented(
            "tar streams are not offered; use DiffCopy",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches reach the response stream one packet at a time, in order,
    /// an error included.
    #[tokio::test]
    async fn the_response_stream_flattens_the_batches() {
        use futures::StreamExt;
        let (sender, receiver) = mpsc::channel(4);
        let mut sink = WireSink(sender.clone());
        sink.send_all(vec![Packet::Req(1), Packet::Req(2)])
            .await
            .unwrap();
        sink.send(Packet::Fin).await.unwrap();
        sender
            .send(vec![Err(Status::internal("broken"))])
            .await
            .unwrap();
        drop((sink, sender));
        let got: Vec<_> = wire_stream(receiver).collect().await;
        let codes: Vec<_> = got
            .iter()
            .map(|item| match item {
                Ok(packet) => Ok((packet.r#type, packet.id)),
                Err(status) => Err(status.message().to_string()),
            })
            .collect();
        assert_eq!(
            codes,
            [
                Ok((1, 1)),
                Ok((1, 2)),
                Ok((3, 0)),
                Err("broken".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn an_early_walk_serves_only_the_request_it_was_made_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        std::fs::write(dir.path().join("b"), "b").unwrap();
        let mut dirs = LocalDirs::default();
        dirs.insert("context", dir.path());
        let expected = DiffCopyRequest {
            dir_name: "context".into(),
            exclude_patterns: vec!["b".into()],
            ..DiffCopyRequest::default()
        };
        dirs.speculate(expected.clone());
        dirs.speculate(DiffCopyRequest {
            dir_name: "not-offered".into(),
            ..DiffCopyRequest::default()
        });
        let ignore_file_only = DiffCopyRequest {
            dir_name: "context".into(),
            follow_paths: vec![".dockerignore".into()],
            ..DiffCopyRequest::default()
        };
        assert!(dirs.take_speculation(&ignore_file_only).is_none());
        let walk = dirs.take_speculation(&expected).expect("the early walk");
        let (snapshot, _) = walk.await.unwrap();
        let paths: Vec<String> = snapshot
            .unwrap()
            .entries
            .iter()
            .map(|e| e.path.clone())
            .collect();
        assert_eq!(paths, ["a"]);
        assert!(dirs.take_speculation(&expected).is_none(), "used once");
        assert!(dirs.speculations.lock().unwrap().is_empty());
    }
}
