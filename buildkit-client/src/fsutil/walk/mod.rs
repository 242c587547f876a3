//! Walking a local context directory into the fsutil STAT stream.
//!
//! [`walk_context`] produces the exact list of entries fsutil's sender
//! (`fsutil.Send` over a `NewFilterFS`) would announce for the same
//! directory and options:
//!
//! * **Order.** Depth-first, a directory immediately followed by its
//!   contents, and the entries of each directory sorted by *name*, bytewise
//!   (what Go's `filepath.WalkDir` does). This is not a sort by full path:
//!   `a`, `a/b`, `a.txt` is the right order although `"a.txt" < "a/b"`. The
//!   receiver checks it (`validator.go`, "changes out of order"); see
//!   [`OrderValidator`](crate::fsutil::OrderValidator).
//! * **IDs.** An entry's ID is its index in the list, directories included;
//!   the receiver counts the same way.
//! * **Stat fields.** `mode` is a Go `os.FileMode` (see [`go_mode`]), with
//!   the socket bit cleared as fsutil does; `mod_time` is Unix
//!   nanoseconds; directories have size 0, symlinks the length of their
//!   target and `linkname` = the raw target (never followed); block and
//!   character devices carry `devmajor`/`devminor` decoded the way fsutil
//!   does. The second and later paths of a hard-linked inode carry
//!   `linkname` = the first path sent (their size stays the file size, which
//!   is what current fsutil sends in effect).
//! * **Ownership.** The Go client zeroes uid/gid of every local directory it
//!   serves (`client/solve.go`, `resetUIDAndGID`); so does this walker unless
//!   [`WalkOptions::keep_ownership`] is set.
//! * **Extended attributes** are not read: `xattrs` is always empty. fsutil
//!   sends them (minus `com.apple.*`); leaving them out keeps SELinux labels
//!   and the like out of the build context.
//! * **Filtering.** Include/exclude patterns and follow paths behave as in
//!   [`PathFilter`] and fsutil's `followlinks.go`: follow paths become extra
//!   include patterns, and symlinks met while resolving them (in any path
//!   component) add their targets, taken relative to the context root, so a
//!   followed link never leads outside the context.
//!
//! Directory reads and `lstat` calls run on a small pool of threads; the
//! output is assembled afterwards in a single deterministic pass.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::go_mode;
use crate::fsutil::patterns::{PathFilter, PatternError, PatternMatcher};

use assemble::assemble;
use read::read_tree;

use follow::{dedupe_paths, resolve_follow_paths};

mod assemble;
mod follow;
mod read;
#[cfg(test)]
mod tests;

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file (including the later paths of a hard-linked file).
    File,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    NamedPipe,
    /// A Unix socket. Sent like fsutil does: socket bit cleared, so the
    /// receiver sees an empty regular file.
    Socket,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
}

/// One entry of the STAT stream (`fsutil.types.Stat` plus its kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative, `/`-separated, cleaned path.
    pub path: String,
    /// Go `os.FileMode` bits (see [`go_mode`]).
    pub mode: u32,
    /// Owner; 0 unless [`WalkOptions::keep_ownership`].
    pub uid: u32,
    /// Group; 0 unless [`WalkOptions::keep_ownership`].
    pub gid: u32,
    /// Size in bytes: 0 for directories, the target length for symlinks.
    pub size: i64,
    /// Modification time in Unix nanoseconds.
    pub mod_time: i64,
    /// Symlink target as stored, or the first path of a hard-linked inode.
    pub linkname: String,
    /// Device major number (devices only).
    pub devmajor: i64,
    /// Device minor number (devices only).
    pub devminor: i64,
    /// Extended attributes; always empty (see the module docs).
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// The kind of file.
    pub kind: EntryKind,
}

impl ContextEntry {
    /// Whether the receiver may request this entry's content
    /// (fsutil `fileCanRequestData`: no type bits set).
    pub fn can_request_data(&self) -> bool {
        self.mode & go_mode::TYPE == 0
    }

    /// Whether this entry is a later path of a hard-linked inode.
    pub fn is_hardlink(&self) -> bool {
        !matches!(self.kind, EntryKind::Dir | EntryKind::Symlink) && !self.linkname.is_empty()
    }
}

/// Which inode an entry was when it was walked (`st_dev`, `st_ino` from
/// `lstat`). The sender only sends the content of a file that is still this
/// inode, so a path swapped for a link to something else after the walk is
/// refused rather than followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// Device.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

/// The result of a walk: the canonical root and the entries, in stream
/// order. An entry's ID is its index.
#[derive(Debug, Clone, Default)]
pub struct ContextSnapshot {
    /// The context directory, with symlinks resolved.
    pub root: PathBuf,
    /// The entries in STAT-stream order.
    pub entries: Vec<ContextEntry>,
    /// The inode of each entry, by ID (same length as `entries` when the
    /// snapshot comes from [`walk_context`]). An entry without one cannot be
    /// requested.
    pub identities: Vec<FileIdentity>,
}

impl ContextSnapshot {
    /// The entry with stream ID `id`.
    pub fn get(&self, id: u32) -> Option<&ContextEntry> {
        self.entries.get(id as usize)
    }

    /// The inode the entry with stream ID `id` was when walked.
    pub fn identity(&self, id: u32) -> Option<FileIdentity> {
        self.identities.get(id as usize).copied()
    }

    /// Where the entry with stream ID `id` lives on disk.
    pub fn disk_path(&self, id: u32) -> Option<PathBuf> {
        self.get(id).map(|e| self.root.join(&e.path))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total size of the regular files that could be requested.
    pub fn total_file_bytes(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File && !e.is_hardlink())
            .map(|e| e.size.max(0) as u64)
            .sum()
    }
}

/// What to walk and how.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// `include-patterns`: only matching paths (and everything below
    /// matching directories) are sent. Empty means everything.
    pub include_patterns: Vec<String>,
    /// `exclude-patterns` (`.dockerignore` syntax, exceptions allowed).
    pub exclude_patterns: Vec<String>,
    /// `followpaths`: only these paths and the targets of symlinks met on
    /// the way are sent. Empty means no restriction.
    pub follow_paths: Vec<String>,
    /// Send real uid/gid instead of zeroes (the Go client zeroes them).
    pub keep_ownership: bool,
    /// Threads reading directories; 0 picks a default (the CPU count, at
    /// most 8). Capped at 64.
    pub threads: usize,
}

/// Errors from walking a context.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The context directory cannot be resolved or read.
    #[error("context directory {path}: {source}")]
    Root {
        /// The directory given.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The context path is not a directory.
    #[error("context path {path} is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// Invalid include or exclude patterns.
    #[error("invalid {which} patterns: {source}")]
    Patterns {
        /// `include` or `exclude`.
        which: &'static str,
        /// The cause.
        source: PatternError,
    },
    /// A directory that must be sent cannot be listed.
    #[error("reading directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An entry that must be sent cannot be stat'ed.
    #[error("stat {path}: {source}")]
    Stat {
        /// The entry.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A symlink that must be sent cannot be read.
    #[error("readlink {path}: {source}")]
    ReadLink {
        /// The symlink.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A path (or symlink target) that must be sent is not valid UTF-8,
    /// which the protocol's string fields cannot carry.
    #[error("{path:?} is not valid UTF-8 and cannot be sent")]
    NonUtf8 {
        /// The entry.
        path: PathBuf,
    },
    /// Resolving a follow path failed.
    #[error("resolving follow path {path:?}: {source}")]
    FollowPath {
        /// The path being resolved.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// More entries than 32-bit stream IDs can number.
    #[error("the context has more than {} entries", u32::MAX)]
    TooManyEntries,
    /// A walker thread panicked or the blocking task failed.
    #[error("context walker failed: {0}")]
    Internal(String),
}

/// Walks `root` on a blocking thread (see [`walk_context`]).
pub async fn walk_context_async(
    root: PathBuf,
    options: WalkOptions,
) -> Result<ContextSnapshot, WalkError> {
    tokio::task::spawn_blocking(move || walk_context(&root, &options))
        .await
        .map_err(|e| WalkError::Internal(e.to_string()))?
}

/// Walks `root` and returns the STAT stream fsutil would send for it.
pub fn walk_context(root: &Path, options: &WalkOptions) -> Result<ContextSnapshot, WalkError> {
    let root = fs::canonicalize(root).map_err(|source| WalkError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let meta = fs::metadata(&root).map_err(|source| WalkError::Root {
        path: root.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(WalkError::NotADirectory { path: root });
    }

    let mut includes = options.include_patterns.clone();
    if !options.follow_paths.is_empty() {
        if let Some(targets) = resolve_follow_paths(&root, &options.follow_paths)? {
            includes.extend(targets);
            includes = dedupe_paths(&includes).unwrap_or_default();
        }
    }
    // Parse each list alone first so errors say which one is wrong.
    PatternMatcher::new(&includes).map_err(|source| WalkError::Patterns {
        which: "include",
        source,
    })?;
    PatternMatcher::new(&options.exclude_patterns).map_err(|source| WalkError::Patterns {
        which: "exclude",
        source,
    })?;
    let filter = PathFilter::new(&includes, &options.exclude_patterns).map_err(|source| {
        WalkError::Patterns {
            which: "include or exclude",
            source,
        }
    })?;

    let threads = match options.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8),
        n => n.min(64),
    };
    let nodes = read_tree(&root, &filter, threads)?;
    let (entries, identities) = assemble(&root, &nodes, options)?;
    Ok(ContextSnapshot {
        root,
        entries,
        identities,
    })
}
