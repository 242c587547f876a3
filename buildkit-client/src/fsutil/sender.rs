//! The sending side of fsutil's diffcopy protocol, independent of gRPC.
//!
//! [`send`] drives one `DiffCopy` stream for a walked context:
//!
//! 1. It announces every entry with a STAT packet, in stream order, then an
//!    empty STAT to end the listing.
//! 2. Meanwhile it answers each REQ{id} from the receiver with DATA{id}
//!    chunks of the file's content followed by an empty DATA{id} (end of
//!    file). Several files are read at once (bounded), and requests are
//!    accepted while earlier files are still being sent, so the stream
//!    stays busy.
//! 3. When the receiver sends FIN (it has everything it wanted), the
//!    remaining reads are drained and FIN is sent back. That ends the
//!    exchange.
//! 4. An ERR from the receiver aborts with its message. A REQ for an ID
//!    that is unknown, not a regular file, or already requested is a
//!    protocol error; the receiver is told with an ERR packet before the
//!    stream is given up.
//!
//! # What a receiver can get
//!
//! Only what the walk listed: a REQ names a stream ID, never a path, and the
//! IDs are the walked entries (which the request's filters already
//! narrowed). Each file is opened relative to the context directory with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW` (plain
//! `openat` with `O_NOFOLLOW` where the kernel lacks `openat2`), and the
//! opened file must still be the inode the walk saw (device and inode
//! number) and a regular file. A path that was swapped for a symlink, or
//! whose directories were, after the walk is refused, not followed, so
//! nothing outside the context is ever read.
//!
//! Transport is abstracted by [`PacketSink`] and [`PacketSource`]; the gRPC
//! layer converts [`Packet`] to and from `fsutil.types.Packet`. Both traits
//! are implemented for tokio `mpsc` channels.

use std::future::Future;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::walk::{ContextEntry, ContextSnapshot, EntryKind, FileIdentity};

/// Wire values of `fsutil.types.Packet.PacketType`.
pub mod packet_type {
    /// A file's metadata; an empty one ends the listing.
    pub const STAT: i32 = 0;
    /// The receiver asks for a file's content.
    pub const REQ: i32 = 1;
    /// A chunk of content; an empty one ends the file.
    pub const DATA: i32 = 2;
    /// End of the exchange.
    pub const FIN: i32 = 3;
    /// An error, with its message in `data`.
    pub const ERR: i32 = 4;
    /// Content-hash request (unused by the diffcopy sender).
    pub const HASH_REQ: i32 = 5;
    /// Content hash (unused by the diffcopy sender).
    pub const HASH: i32 = 6;
}

/// One diffcopy packet (`fsutil.types.Packet`), in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// STAT with the entry; `None` is the empty STAT ending the listing.
    Stat(Option<ContextEntry>),
    /// REQ: send the content of entry `id`.
    Req(u32),
    /// DATA: a chunk of entry `id`; empty `data` marks the end of the file.
    Data {
        /// Stream ID of the entry.
        id: u32,
        /// The bytes; empty for end of file.
        data: Bytes,
    },
    /// FIN.
    Fin,
    /// ERR with a message.
    Err(String),
    /// Any other packet type (ignored by the sender, like fsutil does).
    Other(i32),
}

impl Packet {
    /// The `PacketType` wire value.
    pub fn type_code(&self) -> i32 {
        match self {
            Packet::Stat(_) => packet_type::STAT,
            Packet::Req(_) => packet_type::REQ,
            Packet::Data { .. } => packet_type::DATA,
            Packet::Fin => packet_type::FIN,
            Packet::Err(_) => packet_type::ERR,
            Packet::Other(code) => *code,
        }
    }
}

/// A failure of the underlying stream.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(Box<dyn std::error::Error + Send + Sync>);

impl TransportError {
    /// Wraps any error (or message).
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TransportError(err.into())
    }
}

/// Where packets to the receiver go.
pub trait PacketSink: Send {
    /// Sends one packet, waiting for room if the stream is congested.
    fn send(&mut self, packet: Packet) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// Where packets from the receiver come from.
pub trait PacketSource: Send {
    /// The next packet; `Ok(None)` once the receiver closed its side.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Packet>, TransportError>> + Send;
}

impl PacketSink for mpsc::Sender<Packet> {
    async fn send(&mut self, packet: Packet) -> Result<(), TransportError> {
        mpsc::Sender::send(self, packet)
            .await
            .map_err(|_| TransportError::new("the receiving side is gone"))
    }
}

impl PacketSource for mpsc::Receiver<Packet> {
    async fn recv(&mut self) -> Result<Option<Packet>, TransportError> {
        Ok(mpsc::Receiver::recv(self).await)
    }
}

/// Smallest and largest allowed DATA chunk.
pub const MIN_CHUNK_SIZE: usize = 4 * 1024;
/// See [`MIN_CHUNK_SIZE`].
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;

/// What to do when a listed file has disappeared by the time it is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingFilePolicy {
    /// Send it as empty and log a warning (fsutil's behaviour: editors and
    /// builds delete temporary files all the time).
    #[default]
    SendEmpty,
    /// Fail the transfer.
    Fail,
}

/// Tuning for [`send`].
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// Bytes per DATA packet, clamped to
    /// [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`]. The default, 256 KiB, is 8×
    /// fsutil's 32 KiB: an eighth of the per-message work (protobuf
    /// encoding, gRPC framing, channel hops, wakeups) on large files, while
    /// a packet stays far below gRPC's 4 MiB default and BuildKit's 16 MiB
    /// message limits and memory stays bounded (see `outbound_capacity`).
    pub chunk_size: usize,
    /// Files read concurrently (fsutil uses 4). Default 8.
    pub max_parallel_reads: usize,
    /// Packets queued for the stream before readers wait. Default 32, so at
    /// most about `(32 + max_parallel_reads) × chunk_size` (10 MiB by
    /// default) is buffered.
    pub outbound_capacity: usize,
    /// See [`MissingFilePolicy`].
    pub missing_files: MissingFilePolicy,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            chunk_size: 256 * 1024,
            max_parallel_reads: 8,
            outbound_capacity: 32,
            missing_files: MissingFilePolicy::SendEmpty,
        }
    }
}

/// What a completed transfer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendSummary {
    /// STAT packets sent (entries, not counting the terminator).
    pub stats: usize,
    /// Files whose content was requested and sent.
    pub files: usize,
    /// Content bytes sent.
    pub bytes: u64,
}

/// Errors from [`send`].
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The stream failed.
    #[error("diffcopy stream failed: {0}")]
    Transport(#[from] TransportError),
    /// The receiver sent ERR.
    #[error("error from receiver: {0}")]
    Receiver(String),
    /// The receiver closed the stream without FIN.
    #[error("receiver closed the stream before FIN")]
    ReceiverClosed,
    /// REQ for an ID that is not in the stream.
    #[error("invalid file id {0}")]
    UnknownId(u32),
    /// REQ for an entry that has no content to send.
    #[error("invalid file id {id}: {path} is not a regular file")]
    NotRegular {
        /// The requested ID.
        id: u32,
        /// Its path.
        path: String,
    },
    /// A second REQ for the same entry.
    #[error("invalid file id {id}: {path} was already requested")]
    DuplicateRequest {
        /// The requested ID.
        id: u32,
        /// Its path.
        path: String,
    },
    /// A requested file is no longer what the walk listed (replaced by
    /// another file, reached through a symlink, or never walked): it is not
    /// sent.
    #[error("refusing to send {path} (file id {id}): {reason}")]
    Refused {
        /// The requested ID.
        id: u32,
        /// The file on disk.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading a requested file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file on disk.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An internal task failed.
    #[error("diffcopy sender failed: {0}")]
    Internal(String),
}

impl SendError {
    /// Whether the receiver should be told about this failure with an ERR
    /// packet (it is our side's fault, and the stream still works).
    fn tell_receiver(&self) -> bool {
        !matches!(
            self,
            SendError::Transport(_) | SendError::Receiver(_) | SendError::ReceiverClosed
        )
    }
}

fn outbound_closed() -> SendError {
    SendError::Internal("outbound packet queue closed".to_string())
}

/// Runs the sending side of one diffcopy exchange for `snapshot`.
///
/// Returns once FIN has been exchanged, or with the first error. On errors
/// caused by this side (bad requests, unreadable files) an ERR packet is
/// sent before returning.
pub async fn send<S, R>(
    snapshot: Arc<ContextSnapshot>,
    mut sink: S,
    mut source: R,
    options: SenderOptions,
) -> Result<SendSummary, SendError>
where
    S: PacketSink,
    R: PacketSource,
{
    let chunk_size = options.chunk_size.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE);
    let parallel = options
        .max_parallel_reads
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let policy = options.missing_files;

    let (out_tx, mut out_rx) = mpsc::channel::<Packet>(options.outbound_capacity.max(1));
    let (fail_tx, mut fail_rx) = mpsc::unbounded_channel::<SendError>();
    let (stats_done_tx, stats_done_rx) = oneshot::channel::<()>();
    let abort = Arc::new(AtomicBool::new(false));
    let readers = Arc::new(Semaphore::new(parallel));
    let files = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    // Every file is opened relative to this descriptor, never by a full path.
    let root_dir = match open_root(&snapshot.root) {
        Ok(fd) => Arc::new(fd),
        Err(source) => {
            let err = SendError::Read {
                path: snapshot.root.clone(),
                source,
            };
            if let Err(send_err) = sink.send(Packet::Err(err.to_string())).await {
                tracing::debug!(error = %send_err, "could not report the error to the receiver");
            }
            return Err(err);
        }
    };

    let result = {
        let sink = &mut sink;
        let writer = async move {
            while let Some(packet) = out_rx.recv().await {
                sink.send(packet).await?;
            }
            Ok::<(), SendError>(())
        };

        let stats_tx = out_tx.clone();
        let stats_snapshot = Arc::clone(&snapshot);
        let stats = async move {
            for entry in &stats_snapshot.entries {
                stats_tx
                    .send(Packet::Stat(Some(entry.clone())))
                    .await
                    .map_err(|_| outbound_closed())?;
            }
            stats_tx
                .send(Packet::Stat(None))
                .await
                .map_err(|_| outbound_closed())?;
            // The request loop may be gone already after an error.
            let _ = stats_done_tx.send(());
            Ok::<usize, SendError>(stats_snapshot.entries.len())
        };

        let requests = {
            let snapshot = Arc::clone(&snapshot);
            let abort = Arc::clone(&abort);
            let readers = Arc::clone(&readers);
            let files = Arc::clone(&files);
            let bytes = Arc::clone(&bytes);
            let source = &mut source;
            async move {
                let mut requested = vec![false; snapshot.entries.len()];
                let mut stats_done = Some(stats_done_rx);
                let mut inline_reads = true;
                let (mut inline_count, mut inline_slow) = (0u32, 0u32);
                loop {
                    let packet = source.recv().await?;
                    match packet {
                        None => return Err(SendError::ReceiverClosed),
                        Some(Packet::Req(id)) => {
                            let entry = snapshot.get(id).ok_or(SendError::UnknownId(id))?;
                            if !entry.can_request_data() {
                                return Err(SendError::NotRegular {
                                    id,
                                    path: entry.path.clone(),
                                });
                            }
                            let seen = &mut requested[id as usize];
                            if *seen {
                                return Err(SendError::DuplicateRequest {
                                    id,
                                    path: entry.path.clone(),
                                });
                            }
                            *seen = true;
                            let job = ReadJob {
                                id,
                                path: snapshot.root.join(&entry.path),
                                root: Arc::clone(&root_dir),
                                relative: entry.path.clone(),
                                identity: snapshot.identity(id),
                                kind: entry.kind,
                                size_hint: entry.size,
                                chunk_size,
                                policy,
                            };
                            if inline_reads && job.is_small() {
                                // Read right here: no thread hand-off, no
                                // wake-ups, for the common case of a small
                                // file in the page cache.
                                let started = Instant::now();
                                let mut packets = Vec::with_capacity(2);
                                let n = job.run(&abort, &mut |packet| {
                                    packets.push(packet);
                                    true
                                })?;
                                inline_count += 1;
                                if started.elapsed() > INLINE_READ_SLOW {
                                    inline_slow += 1;
                                    // Many slow reads (not one preempted
                                    // thread): the data is not cached or the
                                    // file system is slow. Use the reader
                                    // threads from now on, in parallel.
                                    if inline_slow >= INLINE_SLOW_READS
                                        && inline_slow * 4 >= inline_count
                                    {
                                        inline_reads = false;
                                        tracing::debug!(
                                            slow = inline_slow,
                                            of = inline_count,
                                            "slow reads; reading on reader threads from now on"
                                        );
                                    }
                                }
                                for packet in packets {
                                    out_tx.send(packet).await.map_err(|_| outbound_closed())?;
                                }
                                files.fetch_add(1, Ordering::Relaxed);
                                bytes.fetch_add(n, Ordering::Relaxed);
                                continue;
                            }
                            let permit = Arc::clone(&readers)
                                .acquire_owned()
                                .await
                                .map_err(|_| outbound_closed())?;
                            let tx = out_tx.clone();
                            let fail = fail_tx.clone();
                            let abort = Arc::clone(&abort);
                            let files = Arc::clone(&files);
                            let bytes = Arc::clone(&bytes);
                            tokio::task::spawn_blocking(move || {
                                let _permit = permit;
                                match job
                                    .run(&abort, &mut |packet| tx.blocking_send(packet).is_ok())
                                {
                                    Ok(n) => {
                                        files.fetch_add(1, Ordering::Relaxed);
                                        bytes.fetch_add(n, Ordering::Relaxed);
                                    }
                                    Err(err) => {
                                        abort.store(true, Ordering::Relaxed);
                                        let _ = fail.send(err);
                                    }
                                }
                            });
                        }
                        Some(Packet::Fin) => {
                            if let Some(done) = stats_done.take() {
                                // An error here means the STAT task failed;
                                // its own error is reported instead.
                                let _ = done.await;
                            }
                            // Wait for every read in flight to finish.
                            let all = u32::try_from(parallel).unwrap_or(u32::MAX);
                            let _drained = readers
                                .acquire_many(all)
                                .await
                                .map_err(|_| outbound_closed())?;
                            if abort.load(Ordering::Relaxed) {
                                // A reader failed; the monitor reports it.
                                return Ok(());
                            }
                            out_tx
                                .send(Packet::Fin)
                                .await
                                .map_err(|_| outbound_closed())?;
                            return Ok(());
                        }
                        Some(Packet::Err(message)) => return Err(SendError::Receiver(message)),
                        Some(other) => {
                            tracing::debug!(
                                packet_type = other.type_code(),
                                "ignoring unexpected packet from receiver"
                            );
                        }
                    }
                }
            }
        };

        let monitor = async move {
            match fail_rx.recv().await {
                Some(err) => Err(err),
                None => Ok(()),
            }
        };

        tokio::try_join!(writer, stats, requests, monitor)
    };

    match result {
        Ok(((), stats, (), ())) => Ok(SendSummary {
            stats,
            files: files.load(Ordering::Relaxed),
            bytes: bytes.load(Ordering::Relaxed),
        }),
        Err(err) => {
            abort.store(true, Ordering::Relaxed);
            if err.tell_receiver() {
                if let Err(send_err) = sink.send(Packet::Err(err.to_string())).await {
                    tracing::debug!(error = %send_err, "could not report the error to the receiver");
                }
            }
            Err(err)
        }
    }
}

/// Files up to this size are read on the request loop itself instead of a
/// reader thread (see [`INLINE_READ_SLOW`]). Reading 64 KiB from the page
/// cache takes microseconds, less than handing the job to another thread and
/// waking the stream back up, which is what dominated the client's CPU time
/// on contexts of many small files.
const INLINE_READ_MAX: i64 = 64 * 1024;

/// An inline read slower than this is a *slow read*. Once there are
/// [`INLINE_SLOW_READS`] of them and they are a quarter of the inline reads
/// or more, the data is not cached or the file system is slow, and the rest
/// of the transfer reads on reader threads, in parallel, so that the stream
/// is not held up by the disk. (A single slow read says little: on a busy
/// machine the thread is simply preempted now and then.)
const INLINE_READ_SLOW: Duration = Duration::from_millis(1);
/// See [`INLINE_READ_SLOW`].
const INLINE_SLOW_READS: u32 = 16;

/// Reading one requested file into DATA packets.
struct ReadJob {
    id: u32,
    /// For messages only; the file is opened through `root` and `relative`.
    path: PathBuf,
    root: Arc<OwnedFd>,
    relative: String,
    identity: Option<FileIdentity>,
    kind: EntryKind,
    size_hint: i64,
    chunk_size: usize,
    policy: MissingFilePolicy,
}

impl ReadJob {
    /// Whether the file is small enough to read inline ([`INLINE_READ_MAX`]).
    fn is_small(&self) -> bool {
        self.kind == EntryKind::File && (0..=INLINE_READ_MAX).contains(&self.size_hint)
    }

    /// Produces the content and the end-of-file marker through `emit`
    /// (which returns false once the stream is gone); returns the byte
    /// count. Returns early (successfully) if the transfer was aborted
    /// elsewhere or the stream is gone: whoever closed it reports why.
    fn run(
        &self,
        abort: &AtomicBool,
        emit: &mut dyn FnMut(Packet) -> bool,
    ) -> Result<u64, SendError> {
        let eof = || Packet::Data {
            id: self.id,
            data: Bytes::new(),
        };
        if self.kind == EntryKind::Socket {
            // Sent as an empty regular file, like fsutil.
            emit(eof());
            return Ok(0);
        }
        let Some(identity) = self.identity else {
            return Err(self.refused("it was not listed by the walk"));
        };
        let mut file = match open_confined(&self.root, &self.relative) {
            Ok(file) => file,
            Err(err)
                if err.kind() == io::ErrorKind::NotFound
                    && self.policy == MissingFilePolicy::SendEmpty =>
            {
                tracing::warn!(path = %self.path.display(), "file vanished before it was sent; sending it empty");
                emit(eof());
                return Ok(0);
            }
            Err(err) if is_escape(&err) => {
                return Err(self.refused("a symbolic link now stands in its path"));
            }
            Err(source) => {
                return Err(SendError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| SendError::Read {
            path: self.path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(SendError::Read {
                path: self.path.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "no longer a regular file"),
            });
        }
        {
            use std::os::unix::fs::MetadataExt;
            if (meta.dev(), meta.ino()) != (identity.dev, identity.ino) {
                return Err(
                    self.refused("it was replaced by another file after the context was listed")
                );
            }
        }
        let mut sent = 0u64;
        // Size the first read to the file (+1 to see EOF in one go).
        let mut want = usize::try_from(self.size_hint.max(0))
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .min(self.chunk_size);
        if self.size_hint > 0 && self.is_small() && want > self.size_hint as usize {
            // One read(2) for a small file: getting back exactly the listed
            // size from a buffer one byte larger means the file is as listed
            // and at its end (a regular file reads short only at EOF), so
            // the usual second read that returns 0 is skipped. Anything else
            // (grown, shrunk) goes on below, reading to EOF as usual.
            let mut buf = vec![0u8; want];
            let n = loop {
                match file.read(&mut buf) {
                    Ok(n) => break n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(SendError::Read {
                            path: self.path.clone(),
                            source,
                        })
                    }
                }
            };
            if n > 0 {
                buf.truncate(n);
                sent = n as u64;
                if !emit(Packet::Data {
                    id: self.id,
                    data: Bytes::from(buf),
                }) {
                    return Ok(sent);
                }
            }
            if n == 0 || n as i64 == self.size_hint {
                emit(eof());
                return Ok(sent);
            }
            want = self.chunk_size;
        }
        loop {
            if abort.load(Ordering::Relaxed) {
                return Ok(sent);
            }
            let mut buf = Vec::with_capacity(want);
            let n = (&mut file)
                .take(want as u64)
                .read_to_end(&mut buf)
                .map_err(|source| SendError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            sent += n as u64;
            if !emit(Packet::Data {
                id: self.id,
                data: Bytes::from(buf),
            }) {
                return Ok(sent);
            }
            if n < want {
                break;
            }
            want = self.chunk_size;
        }
        emit(eof());
        Ok(sent)
    }
}

impl ReadJob {
    fn refused(&self, reason: &str) -> SendError {
        SendError::Refused {
            id: self.id,
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Opens the context directory that requested files are opened beneath.
fn open_root(root: &std::path::Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `relative` (a walked, `/`-separated path) for reading beneath
/// `root`: no symlink in any component, no `..` out of the root, no
/// blocking on a FIFO that replaced a file, no controlling terminal.
fn open_confined(root: &OwnedFd, relative: &str) -> io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let fd = match rustix::fs::openat2(root, relative, flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        // No openat2 (kernel before 5.6, or a seccomp filter that hides it):
        // O_NOFOLLOW guards the last component, the inode check the rest.
        Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {
            if relative.split('/').any(|part| part == "..") || relative.starts_with('/') {
                return Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::XDEV.raw_os_error(),
                ));
            }
            rustix::fs::openat(root, relative, flags, Mode::empty())?
        }
        Err(err) => return Err(err.into()),
    };
    Ok(std::fs::File::from(fd))
}

/// Whether an open failed because the path would follow a symlink or leave
/// the root (`ELOOP` from `O_NOFOLLOW`/`RESOLVE_NO_SYMLINKS`, `EXDEV` from
/// `RESOLVE_BENEATH`).
fn is_escape(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() || code == rustix::io::Errno::XDEV.raw_os_error()
    )
}

#[cfg(test)]
mod tests {
    use super::super::validator::OrderValidator;
    use super::super::walk::{walk_context, WalkOptions};
    use super::*;
    use std::collections::HashMap;
    use std::fs;
    use std::time::Duration;

    struct Harness {
        _dir: tempfile::TempDir,
        snapshot: Arc<ContextSnapshot>,
    }

    fn harness(files: &[(&str, Vec<u8>)]) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        let snapshot = Arc::new(walk_context(dir.path(), &WalkOptions::default()).unwrap());
        Harness {
            _dir: dir,
            snapshot,
        }
    }

    /// Starts the sender; returns (to_sender, from_sender, task).
    fn start(
        snapshot: Arc<ContextSnapshot>,
        options: SenderOptions,
    ) -> (
        mpsc::Sender<Packet>,
        mpsc::Receiver<Packet>,
        tokio::task::JoinHandle<Result<SendSummary, SendError>>,
    ) {
        let (to_sender, from_receiver) = mpsc::channel(16);
        let (to_receiver, from_sender) = mpsc::channel(16);
        let task = tokio::spawn(send(snapshot, to_receiver, from_receiver, options));
        (to_sender, from_sender, task)
    }

    async fn next(rx: &mut mpsc::Receiver<Packet>) -> Packet {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap()
    }

    /// A fake fsutil receiver: validates the STATs, requests `want(entry)`
    /// files as soon as their STAT arrives, collects DATA, then does the
    /// FIN handshake. Returns the contents by path and the chunk sizes.
    async fn receive(
        to_sender: mpsc::Sender<Packet>,
        mut from_sender: mpsc::Receiver<Packet>,
        want: impl Fn(&ContextEntry) -> bool,
    ) -> (HashMap<String, Vec<u8>>, Vec<usize>, Vec<ContextEntry>) {
        // Like fsutil's receiver, send from a separate task so reading never
        // waits on writing.
        let (out, mut queued) = mpsc::unbounded_channel::<Packet>();
        let forwarder = tokio::spawn(async move {
            while let Some(packet) = queued.recv().await {
                if to_sender.send(packet).await.is_err() {
                    break;
                }
            }
        });
        let mut validator = OrderValidator::default();
        let mut stats = Vec::new();
        let mut pending: HashMap<u32, Vec<u8>> = HashMap::new();
        let mut done: HashMap<String, Vec<u8>> = HashMap::new();
        let mut chunks = Vec::new();
        let mut listing_done = false;
        loop {
            if listing_done && pending.is_empty() {
                break;
            }
            match next(&mut from_sender).await {
                Packet::Stat(Some(entry)) => {
                    assert!(!listing_done, "STAT after the terminator");
                    validator
                        .push(&entry.path, entry.kind == EntryKind::Dir)
                        .unwrap();
                    let id = stats.len() as u32;
                    if entry.can_request_data() && want(&entry) {
                        pending.insert(id, Vec::new());
                        out.send(Packet::Req(id)).unwrap();
                    }
                    stats.push(entry);
                }
                Packet::Stat(None) => listing_done = true,
                Packet::Data { id, data } => {
                    let buf = pending
                        .get_mut(&id)
                        .expect("DATA for an id that was not requested");
                    if data.is_empty() {
                        let content = pending.remove(&id).unwrap();
                        done.insert(stats[id as usize].path.clone(), content);
                    } else {
                        chunks.push(data.len());
                        buf.extend_from_slice(&data);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        out.send(Packet::Fin).unwrap();
        assert_eq!(next(&mut from_sender).await, Packet::Fin);
        drop(out);
        forwarder.await.unwrap();
        (done, chunks, stats)
    }

    fn pseudo_random(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32) as u8)
            .collect()
    }

    #[tokio::test]
    async fn sends_stats_then_requested_files() {
        let big = pseudo_random(1_000_000, 3);
        let h = harness(&[
            ("a.txt", b"alpha".to_vec()),
            ("dir/b.bin", big.clone()),
            ("dir/empty", Vec::new()),
            ("dir/sub/c", b"gamma".to_vec()),
            ("skip.me", b"not requested".to_vec()),
        ]);
        let options = SenderOptions {
            chunk_size: 64 * 1024,
            ..SenderOptions::default()
        };
        let (tx, rx, task) = start(Arc::clone(&h.snapshot), options);
        let (files, chunks, stats) = receive(tx, rx, |e| e.path != "skip.me").await;
        let summary = task.await.unwrap().unwrap();

        assert_eq!(stats, h.snapshot.entries);
        assert_eq!(files.len(), 4);
        assert_eq!(files["a.txt"], b"alpha");
        assert_eq!(files["dir/b.bin"], big);
        assert_eq!(files["dir/empty"], b"");
        assert_eq!(files["dir/sub/c"], b"gamma");
        assert!(chunks.iter().all(|&n| n <= 64 * 1024));
        assert_eq!(
            summary,
            SendSummary {
                stats: h.snapshot.len(),
                files: 4,
                bytes: 1_000_010
            }
        );
    }

    #[tokio::test]
    async fn many_files_in_parallel() {
        let contents: Vec<(String, Vec<u8>)> = (0..300)
            .map(|i| {
                (
                    format!("d{}/f{i:03}", i % 7),
                    pseudo_random(i * 997 % 70_000, i as u8),
                )
            })
            .collect();
        let files: Vec<(&str, Vec<u8>)> = contents
            .iter()
            .map(|(p, c)| (p.as_str(), c.clone()))
            .collect();
        let h = harness(&files);
        let options = SenderOptions {
            chunk_size: MIN_CHUNK_SIZE,
            max_parallel_reads: 5,
            outbound_capacity: 3,
            ..SenderOptions::default()
        };
        let (tx, rx, task) = start(Arc::clone(&h.snapshot), options);
        let (got, _, _) = receive(tx, rx, |_| true).await;
        let summary = task.await.unwrap().unwrap();
        assert_eq!(got.len(), 300);
        for (path, content) in &contents {
            assert_eq!(&got[path], content, "{path}");
        }
        assert_eq!(summary.files, 300);
    }

    #[tokio::test]
    async fn nothing_requested() {
        let h = harness(&[("a", b"x".to_vec())]);
        let (tx, rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        let (got, _, stats) = receive(tx, rx, |_| false).await;
        assert!(got.is_empty());
        assert_eq!(stats.len(), 1);
        assert_eq!(
            task.await.unwrap().unwrap(),
            SendSummary {
                stats: 1,
                files: 0,
                bytes: 0
            }
        );
    }

    #[tokio::test]
    async fn empty_context() {
        let h = harness(&[]);
        let (tx, mut rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        assert_eq!(next(&mut rx).await, Packet::Stat(None));
        tx.send(Packet::Fin).await.unwrap();
        assert_eq!(next(&mut rx).await, Packet::Fin);
        assert_eq!(task.await.unwrap().unwrap().stats, 0);
    }

    /// Reads packets until `pred` matches one (skipping STATs etc.).
    async fn until(rx: &mut mpsc::Receiver<Packet>, pred: impl Fn(&Packet) -> bool) -> Packet {
        loop {
            let p = next(rx).await;
            if pred(&p) {
                return p;
            }
        }
    }

    #[tokio::test]
    async fn bad_requests_are_errors_reported_to_the_receiver() {
        let h = harness(&[("dir/f", b"x".to_vec())]);
        // ID 0 is the directory, ID 1 the file, ID 7 does not exist.
        for (req, check) in [
            (
                vec![7],
                (|e: &SendError| matches!(e, SendError::UnknownId(7))) as fn(&SendError) -> bool,
            ),
            (vec![0], |e| {
                matches!(e, SendError::NotRegular { id: 0, .. })
            }),
            (vec![1, 1], |e| {
                matches!(e, SendError::DuplicateRequest { id: 1, .. })
            }),
        ] {
            let (tx, mut rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
            for id in req {
                tx.send(Packet::Req(id)).await.unwrap();
            }
            let err = task.await.unwrap().unwrap_err();
            assert!(check(&err), "{err}");
            let reported = until(&mut rx, |p| matches!(p, Packet::Err(_))).await;
            assert_eq!(reported, Packet::Err(err.to_string()));
        }
    }

    #[tokio::test]
    async fn receiver_error_aborts() {
        let h = harness(&[("f", b"x".to_vec())]);
        let (tx, _rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        tx.send(Packet::Err("disk full".into())).await.unwrap();
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, SendError::Receiver(m) if m == "disk full"),
            "{err}"
        );
        assert_eq!(err.to_string(), "error from receiver: disk full");
    }

    #[tokio::test]
    async fn receiver_closing_without_fin_is_an_error() {
        let h = harness(&[("f", b"x".to_vec())]);
        let (tx, _rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        drop(tx);
        assert!(matches!(
            task.await.unwrap(),
            Err(SendError::ReceiverClosed)
        ));
    }

    #[tokio::test]
    async fn unknown_packet_types_are_ignored() {
        let h = harness(&[("f", b"x".to_vec())]);
        let (tx, rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        tx.send(Packet::Other(packet_type::HASH_REQ)).await.unwrap();
        let (got, _, _) = receive(tx, rx, |_| true).await;
        assert_eq!(got["f"], b"x");
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn vanished_files() {
        let h = harness(&[("gone", b"data".to_vec()), ("kept", b"k".to_vec())]);
        fs::remove_file(h.snapshot.root.join("gone")).unwrap();
        let (tx, rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        let (got, _, _) = receive(tx, rx, |_| true).await;
        assert_eq!(got["gone"], b"");
        assert_eq!(got["kept"], b"k");
        task.await.unwrap().unwrap();

        let options = SenderOptions {
            missing_files: MissingFilePolicy::Fail,
            ..SenderOptions::default()
        };
        let (tx, mut rx, task) = start(Arc::clone(&h.snapshot), options);
        tx.send(Packet::Req(0)).await.unwrap();
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, SendError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
        until(&mut rx, |p| matches!(p, Packet::Err(_))).await;
    }

    #[tokio::test]
    async fn files_changed_after_the_walk_are_sent_as_they_are_now() {
        // Small files are read in one go when they still have the listed
        // size; grown or shrunk ones are read to their end.
        let h = harness(&[
            ("grown", b"0123".to_vec()),
            ("shrunk", b"0123456789".to_vec()),
            ("same", b"abc".to_vec()),
        ]);
        let root = h.snapshot.root.clone();
        let grown = pseudo_random(300_000, 9);
        fs::write(root.join("grown"), &grown).unwrap();
        fs::write(root.join("shrunk"), b"01").unwrap();
        let options = SenderOptions {
            chunk_size: 64 * 1024,
            ..SenderOptions::default()
        };
        let (tx, rx, task) = start(Arc::clone(&h.snapshot), options);
        let (got, chunks, _) = receive(tx, rx, |_| true).await;
        assert_eq!(got["grown"], grown);
        assert_eq!(got["shrunk"], b"01");
        assert_eq!(got["same"], b"abc");
        assert!(chunks.iter().all(|&n| n <= 64 * 1024), "{chunks:?}");
        assert_eq!(task.await.unwrap().unwrap().bytes, 300_000 + 2 + 3);
    }

    #[test]
    fn small_files_are_read_inline() {
        let root = Arc::new(open_root(std::path::Path::new("/")).unwrap());
        let job = |kind, size_hint| ReadJob {
            id: 0,
            path: PathBuf::new(),
            root: Arc::clone(&root),
            relative: String::new(),
            identity: None,
            kind,
            size_hint,
            chunk_size: 256 * 1024,
            policy: MissingFilePolicy::SendEmpty,
        };
        assert!(job(EntryKind::File, 0).is_small());
        assert!(job(EntryKind::File, INLINE_READ_MAX).is_small());
        assert!(!job(EntryKind::File, INLINE_READ_MAX + 1).is_small());
        assert!(!job(EntryKind::File, -1).is_small());
        assert!(!job(EntryKind::Socket, 0).is_small());
    }

    #[tokio::test]
    async fn replaced_by_a_directory_is_an_error() {
        let h = harness(&[("x", b"data".to_vec())]);
        let root = h.snapshot.root.clone();
        fs::remove_file(root.join("x")).unwrap();
        fs::create_dir(root.join("x")).unwrap();
        let (tx, _rx, task) = start(Arc::clone(&h.snapshot), SenderOptions::default());
        tx.send(Packet::Req(0)).await.unwrap();
        assert!(matches!(task.await.unwrap(), Err(SendError::Read { .. })));
    }

    /// Requests `id` and returns the error the sender fails with.
    async fn request_error(snapshot: Arc<ContextSnapshot>, id: u32) -> SendError {
        let (tx, mut rx, task) = start(snapshot, SenderOptions::default());
        tx.send(Packet::Req(id)).await.unwrap();
        let err = task.await.unwrap().unwrap_err();
        let reported = until(&mut rx, |p| matches!(p, Packet::Err(_))).await;
        assert_eq!(reported, Packet::Err(err.to_string()));
        err
    }

    #[tokio::test]
    async fn a_file_swapped_for_a_symlink_after_the_walk_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"outside").unwrap();
        let h = harness(&[("f", b"inside".to_vec())]);
        let root = h.snapshot.root.clone();
        fs::remove_file(root.join("f")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("f")).unwrap();
        let err = request_error(Arc::clone(&h.snapshot), 0).await;
        assert!(matches!(&err, SendError::Refused { id: 0, .. }), "{err}");
        assert!(!err.to_string().contains("outside"), "{err}");
    }

    #[tokio::test]
    async fn a_directory_swapped_for_a_symlink_after_the_walk_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("f"), b"outside").unwrap();
        let h = harness(&[("d/f", b"inside".to_vec())]);
        let root = h.snapshot.root.clone();
        fs::rename(root.join("d"), root.join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("d")).unwrap();
        // ID 0 is the directory, ID 1 the file below it.
        let err = request_error(Arc::clone(&h.snapshot), 1).await;
        assert!(matches!(&err, SendError::Refused { id: 1, .. }), "{err}");
    }

    #[tokio::test]
    async fn a_file_replaced_by_another_inode_is_refused() {
        let h = harness(&[("f", b"walked".to_vec()), ("other", b"other".to_vec())]);
        let root = h.snapshot.root.clone();
        fs::rename(root.join("other"), root.join("f")).unwrap();
        let err = request_error(Arc::clone(&h.snapshot), 0).await;
        assert!(matches!(&err, SendError::Refused { id: 0, .. }), "{err}");
    }

    #[tokio::test]
    async fn entries_without_a_walked_identity_are_refused() {
        let h = harness(&[("f", b"x".to_vec())]);
        let mut snapshot = (*h.snapshot).clone();
        snapshot.identities.clear();
        let err = request_error(Arc::new(snapshot), 0).await;
        assert!(matches!(&err, SendError::Refused { id: 0, .. }), "{err}");
    }

    #[test]
    fn confined_open_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("ctx")).unwrap();
        fs::write(dir.path().join("secret"), b"s").unwrap();
        fs::write(dir.path().join("ctx/ok"), b"ok").unwrap();
        std::os::unix::fs::symlink("../secret", dir.path().join("ctx/link")).unwrap();
        let root = open_root(&dir.path().join("ctx")).unwrap();
        assert!(open_confined(&root, "ok").is_ok());
        for bad in ["../secret", "link", "/etc/passwd"] {
            let err = open_confined(&root, bad).unwrap_err();
            assert!(is_escape(&err), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn sockets_are_sent_empty() {
        let dir = tempfile::tempdir().unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        let snapshot = Arc::new(walk_context(dir.path(), &WalkOptions::default()).unwrap());
        assert_eq!(snapshot.entries[0].kind, EntryKind::Socket);
        let (tx, rx, task) = start(snapshot, SenderOptions::default());
        let (got, _, _) = receive(tx, rx, |_| true).await;
        assert_eq!(got["s"], b"");
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn transport_failure_is_reported() {
        let h = harness(&[("f", b"x".to_vec())]);
        let (to_sender, from_receiver) = mpsc::channel(4);
        let (to_receiver, from_sender) = mpsc::channel(1);
        drop(from_sender);
        let err = send(
            Arc::clone(&h.snapshot),
            to_receiver,
            from_receiver,
            SenderOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SendError::Transport(_)), "{err}");
        drop(to_sender);
    }

    #[test]
    fn packet_type_codes() {
        assert_eq!(Packet::Stat(None).type_code(), 0);
        assert_eq!(Packet::Req(1).type_code(), 1);
        assert_eq!(
            Packet::Data {
                id: 1,
                data: Bytes::new()
            }
            .type_code(),
            2
        );
        assert_eq!(Packet::Fin.type_code(), 3);
        assert_eq!(Packet::Err(String::new()).type_code(), 4);
        assert_eq!(Packet::Other(6).type_code(), 6);
    }
}
