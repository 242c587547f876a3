//! Reading one requested file into DATA packets: opened confined beneath
//! the context directory, checked against the inode the walk saw, read
//! inline when small and cached, on reader threads otherwise.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{MissingFilePolicy, Packet, SendError};
use crate::fsutil::walk::{EntryKind, FileIdentity};

/// Files up to this size are read on the request loop itself instead of a
/// reader thread (see [`INLINE_READ_SLOW`]). Reading 64 KiB from the page
/// cache takes microseconds, less than handing the job to another thread and
/// waking the stream back up, which is what dominated the client's CPU time
/// on contexts of many small files.
pub(super) const INLINE_READ_MAX: i64 = 64 * 1024;

/// An inline read slower than this is a *slow read*. Once there are
/// [`INLINE_SLOW_READS`] of them and they are a quarter of the inline reads
/// or more, the data is not cached or the file system is slow, and the rest
/// of the transfer reads on reader threads, in parallel, so that the stream
/// is not held up by the disk. (A single slow read says little: on a busy
/// machine the thread is simply preempted now and then.)
pub(super) const INLINE_READ_SLOW: Duration = Duration::from_millis(1);
/// See [`INLINE_READ_SLOW`].
pub(super) const INLINE_SLOW_READS: u32 = 16;

/// Reading one requested file into DATA packets.
pub(super) struct ReadJob {
    pub(super) id: u32,
    /// For messages only; the file is opened through `root` and `relative`.
    pub(super) path: PathBuf,
    pub(super) root: Arc<OwnedFd>,
    pub(super) relative: String,
    pub(super) identity: Option<FileIdentity>,
    pub(super) kind: EntryKind,
    pub(super) size_hint: i64,
    pub(super) chunk_size: usize,
    pub(super) policy: MissingFilePolicy,
}

impl ReadJob {
    /// Whether the file is small enough to read inline ([`INLINE_READ_MAX`]).
    pub(super) fn is_small(&self) -> bool {
        self.kind == EntryKind::File && (0..=INLINE_READ_MAX).contains(&self.size_hint)
    }

    /// Produces the content and the end-of-file marker through `emit`
    /// (which returns false once the stream is gone); returns the byte
    /// count. Returns early (successfully) if the transfer was aborted
    /// elsewhere or the stream is gone: whoever closed it reports why.
    pub(super) fn run(
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
pub(super) fn open_root(root: &std::path::Path) -> io::Result<OwnedFd> {
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
pub(super) fn open_confined(root: &OwnedFd, relative: &str) -> io::Result<std::fs::File> {
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
pub(super) fn is_escape(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() || code == rustix::io::Errno::XDEV.raw_os_error()
    )
}
