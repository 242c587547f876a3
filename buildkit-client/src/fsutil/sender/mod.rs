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

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::walk::ContextSnapshot;

mod packet;
mod read;

use read::{open_root, ReadJob, INLINE_READ_SLOW, INLINE_SLOW_READS};
#[cfg(test)]
mod tests;

pub use packet::{packet_type, Packet, PacketSink, PacketSource, TransportError};

/// STAT packets passed on together: the listing goes to the transport in
/// batches ([`PacketSink::send_all`]), one hand-off per batch instead of one
/// per entry (a no-change rebuild of 20,000 files is nothing but STATs).
/// 256 STATs of a typical context are 8–16 KiB on the wire.
const STAT_BATCH: usize = 256;

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
    /// Hand-offs queued for the stream before readers wait (a hand-off is
    /// one DATA chunk, one small file's packets or a batch of STATs).
    /// Default 32, so at most about `(32 + max_parallel_reads) × chunk_size`
    /// (10 MiB by default) is buffered.
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

    // Each message is one hand-off: a DATA chunk, one small file's packets,
    // or a batch of STATs.
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<Packet>>(options.outbound_capacity.max(1));
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
            while let Some(packets) = out_rx.recv().await {
                sink.send_all(packets).await?;
            }
            Ok::<(), SendError>(())
        };

        let stats_tx = out_tx.clone();
        let stats_snapshot = Arc::clone(&snapshot);
        let stats = async move {
            let entries = &stats_snapshot.entries;
            let mut batches = entries.chunks(STAT_BATCH).peekable();
            if batches.peek().is_none() {
                stats_tx
                    .send(vec![Packet::Stat(None)])
                    .await
                    .map_err(|_| outbound_closed())?;
            }
            while let Some(batch) = batches.next() {
                let last = batches.peek().is_none();
                let mut packets = Vec::with_capacity(batch.len() + usize::from(last));
                packets.extend(batch.iter().map(|entry| Packet::Stat(Some(entry.clone()))));
                if last {
                    // The empty STAT ending the listing rides with the last batch.
                    packets.push(Packet::Stat(None));
                }
                stats_tx
                    .send(packets)
                    .await
                    .map_err(|_| outbound_closed())?;
            }
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
                                out_tx.send(packets).await.map_err(|_| outbound_closed())?;
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
                                match job.run(&abort, &mut |packet| {
                                    tx.blocking_send(vec![packet]).is_ok()
                                }) {
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
                                .send(vec![Packet::Fin])
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
