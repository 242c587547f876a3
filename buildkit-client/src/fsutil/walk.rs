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
//!   [`OrderValidator`].
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::patterns::{
    base_path, clean_path, dir_path, go_match, join_path, FilterDecision, FilterState, PathFilter,
    PatternError, PatternMatcher,
};

/// Go `os.FileMode` bits, as carried in `fsutil.types.Stat.mode`.
pub mod go_mode {
    /// `d`: a directory.
    pub const DIR: u32 = 1 << 31;
    /// `a`: append-only.
    pub const APPEND: u32 = 1 << 30;
    /// `l`: exclusive use.
    pub const EXCLUSIVE: u32 = 1 << 29;
    /// `T`: temporary file (Plan 9).
    pub const TEMPORARY: u32 = 1 << 28;
    /// `L`: a symbolic link.
    pub const SYMLINK: u32 = 1 << 27;
    /// `D`: a device file.
    pub const DEVICE: u32 = 1 << 26;
    /// `p`: a named pipe.
    pub const NAMED_PIPE: u32 = 1 << 25;
    /// `S`: a Unix domain socket.
    pub const SOCKET: u32 = 1 << 24;
    /// `u`: setuid.
    pub const SETUID: u32 = 1 << 23;
    /// `g`: setgid.
    pub const SETGID: u32 = 1 << 22;
    /// `c`: a character device (with [`DEVICE`]).
    pub const CHAR_DEVICE: u32 = 1 << 21;
    /// `t`: sticky.
    pub const STICKY: u32 = 1 << 20;
    /// `?`: a non-regular file of unknown kind.
    pub const IRREGULAR: u32 = 1 << 19;
    /// The permission bits.
    pub const PERM: u32 = 0o777;
    /// Go's `os.ModeType`: every type bit. A regular file has none.
    pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | IRREGULAR;

    const S_IFMT: u32 = 0o170000;
    const S_IFSOCK: u32 = 0o140000;
    const S_IFLNK: u32 = 0o120000;
    const S_IFREG: u32 = 0o100000;
    const S_IFBLK: u32 = 0o060000;
    const S_IFDIR: u32 = 0o040000;
    const S_IFCHR: u32 = 0o020000;
    const S_IFIFO: u32 = 0o010000;
    const S_ISUID: u32 = 0o4000;
    const S_ISGID: u32 = 0o2000;
    const S_ISVTX: u32 = 0o1000;

    /// Converts a Unix `st_mode` to a Go `os.FileMode`, as Go's
    /// `os.Lstat` does on Linux (`fillFileStatFromSys`).
    pub fn from_unix(st_mode: u32) -> u32 {
        let mut mode = st_mode & PERM;
        match st_mode & S_IFMT {
            S_IFBLK => mode |= DEVICE,
            S_IFCHR => mode |= DEVICE | CHAR_DEVICE,
            S_IFDIR => mode |= DIR,
            S_IFIFO => mode |= NAMED_PIPE,
            S_IFLNK => mode |= SYMLINK,
            S_IFREG => {}
            S_IFSOCK => mode |= SOCKET,
            _ => {}
        }
        if st_mode & S_ISGID != 0 {
            mode |= SETGID;
        }
        if st_mode & S_ISUID != 0 {
            mode |= SETUID;
        }
        if st_mode & S_ISVTX != 0 {
            mode |= STICKY;
        }
        mode
    }

    /// Converts a Go `os.FileMode` back to a Unix `st_mode` (type and
    /// permission bits, setuid/setgid/sticky).
    pub fn to_unix(mode: u32) -> u32 {
        let kind = if mode & DIR != 0 {
            S_IFDIR
        } else if mode & SYMLINK != 0 {
            S_IFLNK
        } else if mode & NAMED_PIPE != 0 {
            S_IFIFO
        } else if mode & SOCKET != 0 {
            S_IFSOCK
        } else if mode & DEVICE != 0 {
            if mode & CHAR_DEVICE != 0 {
                S_IFCHR
            } else {
                S_IFBLK
            }
        } else {
            S_IFREG
        };
        let mut out = kind | (mode & PERM);
        if mode & SETUID != 0 {
            out |= S_ISUID;
        }
        if mode & SETGID != 0 {
            out |= S_ISGID;
        }
        if mode & STICKY != 0 {
            out |= S_ISVTX;
        }
        out
    }

    pub(super) fn unix_kind(st_mode: u32) -> u32 {
        st_mode & S_IFMT
    }
    pub(super) const UNIX_DIR: u32 = S_IFDIR;
    pub(super) const UNIX_LNK: u32 = S_IFLNK;
    pub(super) const UNIX_REG: u32 = S_IFREG;
    pub(super) const UNIX_FIFO: u32 = S_IFIFO;
    pub(super) const UNIX_SOCK: u32 = S_IFSOCK;
    pub(super) const UNIX_BLK: u32 = S_IFBLK;
    pub(super) const UNIX_CHR: u32 = S_IFCHR;
}

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

// ---------------------------------------------------------------------------
// Phase 1: read the tree (parallel)
// ---------------------------------------------------------------------------

/// Raw `lstat` fields we keep.
#[derive(Debug, Clone, Copy)]
struct RawMeta {
    st_mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    rdev: u64,
    dev: u64,
    ino: u64,
    nlink: u64,
}

impl RawMeta {
    fn from_metadata(m: &fs::Metadata) -> Self {
        RawMeta {
            st_mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            rdev: m.rdev(),
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
        }
    }

    fn is_dir(&self) -> bool {
        go_mode::unix_kind(self.st_mode) == go_mode::UNIX_DIR
    }
}

/// A recorded child: something to send, or a directory to enter.
#[derive(Debug)]
struct Child {
    /// Path relative to the root (lossy if not UTF-8).
    rel: String,
    /// Whether `rel` is exact (every component valid UTF-8).
    utf8: bool,
    /// Selected by the filter by itself.
    selected: bool,
    meta: RawMeta,
    /// Symlink target, for selected symlinks.
    link: Option<OsString>,
    /// Node of the directory's contents, when it is entered.
    subdir: Option<usize>,
}

#[derive(Debug, Default)]
struct Node {
    children: Vec<Child>,
}

struct DirJob {
    id: usize,
    rel: String,
    utf8: bool,
    abs: PathBuf,
    state: FilterState,
    selected: bool,
}

#[derive(Default)]
struct PoolState {
    queue: Vec<DirJob>,
    active: usize,
    results: Vec<(usize, Node)>,
    error: Option<WalkError>,
}

struct Pool<'a> {
    state: Mutex<PoolState>,
    wake: Condvar,
    filter: &'a PathFilter,
    next_id: AtomicUsize,
}

impl Pool<'_> {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn work(&self) {
        loop {
            let job = {
                let mut state = self.lock();
                loop {
                    if state.error.is_some() {
                        self.wake.notify_all();
                        return;
                    }
                    if let Some(job) = state.queue.pop() {
                        state.active += 1;
                        break job;
                    }
                    if state.active == 0 {
                        self.wake.notify_all();
                        return;
                    }
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            };
            let id = job.id;
            let result = read_one_dir(job, self.filter, &self.next_id);
            let mut state = self.lock();
            state.active -= 1;
            match result {
                Ok((node, jobs)) => {
                    state.results.push((id, node));
                    state.queue.extend(jobs);
                }
                Err(err) => {
                    if state.error.is_none() {
                        state.error = Some(err);
                    }
                }
            }
            self.wake.notify_all();
        }
    }
}

fn read_tree(root: &Path, filter: &PathFilter, threads: usize) -> Result<Vec<Node>, WalkError> {
    let pool = Pool {
        state: Mutex::new(PoolState {
            queue: vec![DirJob {
                id: 0,
                rel: String::new(),
                utf8: true,
                abs: root.to_path_buf(),
                state: FilterState::default(),
                selected: true,
            }],
            ..PoolState::default()
        }),
        wake: Condvar::new(),
        filter,
        next_id: AtomicUsize::new(1),
    };
    let mut panicked = false;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads.max(1))
            .map(|_| scope.spawn(|| pool.work()))
            .collect();
        pool.work();
        for handle in handles {
            if handle.join().is_err() {
                panicked = true;
            }
        }
    });
    if panicked {
        return Err(WalkError::Internal("a walker thread panicked".to_string()));
    }
    let state = pool
        .state
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(err) = state.error {
        return Err(err);
    }
    let count = pool.next_id.load(Ordering::Relaxed);
    let mut nodes: Vec<Node> = (0..count).map(|_| Node::default()).collect();
    for (id, node) in state.results {
        if let Some(slot) = nodes.get_mut(id) {
            *slot = node;
        }
    }
    Ok(nodes)
}

fn read_one_dir(
    job: DirJob,
    filter: &PathFilter,
    next_id: &AtomicUsize,
) -> Result<(Node, Vec<DirJob>), WalkError> {
    let listing = match fs::read_dir(&job.abs) {
        Ok(listing) => listing,
        Err(err) if is_vanished(&err) => return Ok((Node::default(), Vec::new())),
        // fsutil tolerates unreadable directories it would not send.
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied && !job.selected => {
            return Ok((Node::default(), Vec::new()))
        }
        Err(source) => {
            return Err(WalkError::ReadDir {
                path: job.abs,
                source,
            })
        }
    };
    let mut names: Vec<(OsString, bool, fs::DirEntry)> = Vec::new();
    for item in listing {
        let item = match item {
            Ok(item) => item,
            Err(err) if is_vanished(&err) => continue,
            Err(source) => {
                return Err(WalkError::ReadDir {
                    path: job.abs.clone(),
                    source,
                })
            }
        };
        let is_dir = match item.file_type() {
            Ok(t) => t.is_dir(),
            Err(err) if is_vanished(&err) => continue,
            Err(source) => {
                return Err(WalkError::Stat {
                    path: item.path(),
                    source,
                })
            }
        };
        names.push((item.file_name(), is_dir, item));
    }
    names.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    let mut node = Node {
        children: Vec::with_capacity(names.len()),
    };
    let mut jobs = Vec::new();
    for (name, is_dir, item) in names {
        let (name_str, name_utf8) = match name.to_str() {
            Some(s) => (s.to_string(), true),
            None => (String::from_utf8_lossy(name.as_bytes()).into_owned(), false),
        };
        let rel = if job.rel.is_empty() {
            name_str
        } else {
            format!("{}/{}", job.rel, name_str)
        };
        let utf8 = job.utf8 && name_utf8;
        let (selected, state) = match filter.evaluate(&rel, is_dir, &job.state) {
            FilterDecision::Prune => continue,
            FilterDecision::Visit { selected, state } => (selected, state),
        };
        if !selected && !is_dir {
            continue;
        }
        let abs = job.abs.join(&name);
        // lstat relative to the open directory (`DirEntry::metadata` does
        // not follow symlinks): no lookup of the whole path per entry.
        let meta = match item.metadata() {
            Ok(m) => RawMeta::from_metadata(&m),
            Err(err) if is_vanished(&err) => continue,
            Err(_) if !selected => continue,
            Err(source) => return Err(WalkError::Stat { path: abs, source }),
        };
        let is_dir = meta.is_dir();
        if !selected && !is_dir {
            continue;
        }
        let mut link = None;
        if selected && go_mode::unix_kind(meta.st_mode) == go_mode::UNIX_LNK {
            match fs::read_link(&abs) {
                Ok(target) => link = Some(target.into_os_string()),
                Err(err) if is_vanished(&err) => continue,
                Err(source) => return Err(WalkError::ReadLink { path: abs, source }),
            }
        }
        let mut subdir = None;
        if is_dir {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            subdir = Some(id);
            jobs.push(DirJob {
                id,
                rel: rel.clone(),
                utf8,
                abs,
                state,
                selected,
            });
        }
        node.children.push(Child {
            rel,
            utf8,
            selected,
            meta,
            link,
            subdir,
        });
    }
    Ok((node, jobs))
}

fn is_vanished(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

// ---------------------------------------------------------------------------
// Phase 2: assemble the stream (sequential, deterministic)
// ---------------------------------------------------------------------------

struct Assembler<'a> {
    root: &'a Path,
    keep_ownership: bool,
    entries: Vec<ContextEntry>,
    identities: Vec<FileIdentity>,
    first_link: HashMap<(u64, u64), String>,
}

impl Assembler<'_> {
    fn emit(&mut self, child: &Child) -> Result<(), WalkError> {
        if self.entries.len() >= u32::MAX as usize {
            return Err(WalkError::TooManyEntries);
        }
        if !child.utf8 {
            return Err(WalkError::NonUtf8 {
                path: self.root.join(&child.rel),
            });
        }
        let m = &child.meta;
        let unix_kind = go_mode::unix_kind(m.st_mode);
        let kind = match unix_kind {
            go_mode::UNIX_DIR => EntryKind::Dir,
            go_mode::UNIX_LNK => EntryKind::Symlink,
            go_mode::UNIX_FIFO => EntryKind::NamedPipe,
            go_mode::UNIX_SOCK => EntryKind::Socket,
            go_mode::UNIX_BLK => EntryKind::BlockDevice,
            go_mode::UNIX_CHR => EntryKind::CharDevice,
            go_mode::UNIX_REG => EntryKind::File,
            _ => EntryKind::File,
        };
        let mut entry = ContextEntry {
            path: child.rel.clone(),
            mode: go_mode::from_unix(m.st_mode) & !go_mode::SOCKET,
            uid: if self.keep_ownership { m.uid } else { 0 },
            gid: if self.keep_ownership { m.gid } else { 0 },
            size: if kind == EntryKind::Dir {
                0
            } else {
                m.size as i64
            },
            mod_time: m
                .mtime
                .wrapping_mul(1_000_000_000)
                .wrapping_add(m.mtime_nsec),
            linkname: String::new(),
            devmajor: 0,
            devminor: 0,
            xattrs: BTreeMap::new(),
            kind,
        };
        if matches!(kind, EntryKind::BlockDevice | EntryKind::CharDevice) {
            // fsutil's decoding (the old 8:8 / 12:20 Linux layout).
            entry.devmajor = ((m.rdev >> 8) & 0xfff) as i64;
            entry.devminor = ((m.rdev & 0xff) | ((m.rdev >> 12) & 0xfff00)) as i64;
        }
        match kind {
            EntryKind::Dir => {}
            EntryKind::Symlink => {
                let target = child.link.as_ref().map(|t| t.to_str()).unwrap_or(Some(""));
                match target {
                    Some(t) => entry.linkname = t.to_string(),
                    None => {
                        return Err(WalkError::NonUtf8 {
                            path: self.root.join(&child.rel),
                        })
                    }
                }
            }
            _ => {
                if m.nlink > 1 {
                    match self.first_link.get(&(m.dev, m.ino)) {
                        Some(first) => entry.linkname = first.clone(),
                        None => {
                            self.first_link.insert((m.dev, m.ino), child.rel.clone());
                        }
                    }
                }
            }
        }
        self.entries.push(entry);
        self.identities.push(FileIdentity {
            dev: m.dev,
            ino: m.ino,
        });
        Ok(())
    }
}

fn assemble(
    root: &Path,
    nodes: &[Node],
    options: &WalkOptions,
) -> Result<(Vec<ContextEntry>, Vec<FileIdentity>), WalkError> {
    let mut out = Assembler {
        root,
        keep_ownership: options.keep_ownership,
        entries: Vec::new(),
        identities: Vec::new(),
        first_link: HashMap::new(),
    };
    struct Ancestor {
        node: usize,
        child: usize,
        emitted: bool,
    }
    // (node, next child index); ancestors[i] is the directory whose
    // contents are stack[i + 1].
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    let mut ancestors: Vec<Ancestor> = Vec::new();
    while let Some(top) = stack.last_mut() {
        let (node_id, index) = *top;
        let Some(child) = nodes.get(node_id).and_then(|n| n.children.get(index)) else {
            stack.pop();
            if !stack.is_empty() {
                ancestors.pop();
            }
            continue;
        };
        top.1 += 1;
        if child.selected {
            // Send directories that were held back until something below
            // them turned out to be selected.
            for ancestor in ancestors.iter_mut().filter(|a| !a.emitted) {
                if let Some(dir) = nodes
                    .get(ancestor.node)
                    .and_then(|n| n.children.get(ancestor.child))
                {
                    out.emit(dir)?;
                }
                ancestor.emitted = true;
            }
            out.emit(child)?;
        }
        if let Some(sub) = child.subdir {
            ancestors.push(Ancestor {
                node: node_id,
                child: index,
                emitted: child.selected,
            });
            stack.push((sub, 0));
        }
    }
    Ok((out.entries, out.identities))
}

// ---------------------------------------------------------------------------
// Follow paths (fsutil followlinks.go)
// ---------------------------------------------------------------------------

/// Resolves `followpaths` into include patterns: the paths themselves plus,
/// for every symlink met in any component (wildcards in a component are
/// expanded), the link's target taken relative to the context root,
/// recursively. Returns `None` when the result covers the whole context
/// (`"."` is among the paths), as fsutil does.
pub fn resolve_follow_paths(
    root: &Path,
    paths: &[String],
) -> Result<Option<Vec<String>>, WalkError> {
    let mut resolver = SymlinkResolver {
        root,
        resolved: HashSet::new(),
        cache: HashMap::new(),
    };
    for p in paths {
        resolver.append(p)?;
    }
    let mut out: Vec<String> = resolver.resolved.into_iter().collect();
    out.sort();
    Ok(dedupe_paths(&out))
}

/// fsutil's `dedupePaths`: drops a path that lies below the *previous* kept
/// path (the input is meant to be sorted); `None` if any path is `"."`.
pub fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    let mut last = String::new();
    for p in paths {
        if p == "." {
            return None;
        }
        if p.starts_with(&format!("{last}/")) {
            continue;
        }
        out.push(p.clone());
        last = p.clone();
    }
    Some(out)
}

#[derive(Debug, Clone)]
struct Listed {
    name: String,
    is_symlink: bool,
}

struct SymlinkResolver<'a> {
    root: &'a Path,
    resolved: HashSet<String>,
    cache: HashMap<String, Vec<Listed>>,
}

impl SymlinkResolver<'_> {
    fn append(&mut self, p: &str) -> Result<(), WalkError> {
        let mut rest = join_path(".", p);
        let mut current = ".".to_string();
        loop {
            let (first, remainder) = match rest.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (rest.clone(), String::new()),
            };
            current = join_path(&current, &first);
            let targets = self.read_symlink(&current, true)?;
            rest = remainder;
            if (rest.is_empty() || !targets.is_empty()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if !targets.is_empty() {
                self.resolved.insert(current.clone());
                for target in targets {
                    self.append(&join_path(&target, &rest))?;
                }
                return Ok(());
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
        }
    }

    fn read_symlink(&mut self, p: &str, allow_wildcard: bool) -> Result<Vec<String>, WalkError> {
        let base = base_path(p);
        let dir = dir_path(p);
        if allow_wildcard && contains_wildcards(&base) {
            let listing = self.read_dir(&dir)?;
            let mut out = Vec::new();
            for entry in listing {
                if go_match(&base, &entry.name) == Ok(true) {
                    out.extend(self.read_symlink(&join_path(&dir, &entry.name), false)?);
                }
            }
            return Ok(out);
        }
        let listing = self.read_dir(&dir)?;
        let Some(entry) = listing.iter().find(|e| e.name == base) else {
            return Ok(Vec::new());
        };
        if !entry.is_symlink {
            return Ok(Vec::new());
        }
        let link = match fs::read_link(self.root.join(p)) {
            Ok(link) => link,
            Err(err) if is_vanished(&err) => return Ok(Vec::new()),
            Err(source) => {
                return Err(WalkError::FollowPath {
                    path: p.to_string(),
                    source,
                })
            }
        };
        let link = clean_path(&String::from_utf8_lossy(link.as_os_str().as_bytes()));
        if link.starts_with('/') {
            return Ok(vec![link]);
        }
        Ok(vec![join_path("/", &join_path(&dir, &link))])
    }

    /// Direct children of `dir` (relative), without following a symlinked
    /// `dir` (as `filepath.WalkDir` on a symlink root lists nothing).
    fn read_dir(&mut self, dir: &str) -> Result<Vec<Listed>, WalkError> {
        if let Some(listing) = self.cache.get(dir) {
            return Ok(listing.clone());
        }
        // Deliberately never look outside the context (fsutil would list a
        // parent directory for a follow path starting with `..`).
        let listing = if dir == ".." || dir.starts_with("../") || dir.starts_with('/') {
            Vec::new()
        } else {
            self.list(dir)?
        };
        self.cache.insert(dir.to_string(), listing.clone());
        Ok(listing)
    }

    fn list(&self, dir: &str) -> Result<Vec<Listed>, WalkError> {
        let abs = if dir == "." {
            self.root.to_path_buf()
        } else {
            self.root.join(dir)
        };
        match fs::symlink_metadata(&abs) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => return Ok(Vec::new()),
            Err(err) if is_vanished(&err) => return Ok(Vec::new()),
            Err(source) => {
                return Err(WalkError::FollowPath {
                    path: dir.to_string(),
                    source,
                })
            }
        }
        let listing = match fs::read_dir(&abs) {
            Ok(listing) => listing,
            Err(err) if is_vanished(&err) => return Ok(Vec::new()),
            Err(source) => {
                return Err(WalkError::FollowPath {
                    path: dir.to_string(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for item in listing {
            let item = match item {
                Ok(item) => item,
                Err(err) if is_vanished(&err) => continue,
                Err(source) => {
                    return Err(WalkError::FollowPath {
                        path: dir.to_string(),
                        source,
                    })
                }
            };
            let is_symlink = match item.file_type() {
                Ok(t) => t.is_symlink(),
                Err(err) if is_vanished(&err) => continue,
                Err(source) => {
                    return Err(WalkError::FollowPath {
                        path: dir.to_string(),
                        source,
                    })
                }
            };
            out.push(Listed {
                name: String::from_utf8_lossy(item.file_name().as_bytes()).into_owned(),
                is_symlink,
            });
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }
}

/// fsutil's `containsWildcards`: `*`, `?` or `[` not escaped by `\`.
fn contains_wildcards(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

// ---------------------------------------------------------------------------
// Order validation (fsutil validator.go)
// ---------------------------------------------------------------------------

/// Checks a STAT stream the way fsutil's receiver does (`validator.go`):
/// paths must be clean and relative, each directory's entries must come in
/// strictly increasing bytewise name order, and an entry's parent directory
/// must have been announced before it.
#[derive(Debug, Default)]
pub struct OrderValidator {
    /// (directory, last name seen in it)
    parents: Vec<(String, String)>,
}

/// A stream the receiver would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The path is not in `filepath.Clean` form.
    #[error("invalid unclean path {0}")]
    Unclean(String),
    /// The path is absolute.
    #[error("absolute path {0} not allowed")]
    Absolute(String),
    /// The path escapes the root.
    #[error("invalid path: {0}")]
    Escapes(String),
    /// The entry is out of order (or its parent was never announced).
    #[error("changes out of order: {path:?} {previous:?}")]
    OutOfOrder {
        /// The offending path.
        path: String,
        /// The entry it should have followed.
        previous: String,
    },
}

impl OrderValidator {
    /// Validates the next entry.
    pub fn push(&mut self, path: &str, is_dir: bool) -> Result<(), OrderError> {
        if self.parents.is_empty() {
            self.parents.push((String::new(), String::new()));
        }
        if path != clean_path(path) {
            return Err(OrderError::Unclean(path.to_string()));
        }
        if path.starts_with('/') {
            return Err(OrderError::Absolute(path.to_string()));
        }
        let mut dir = dir_path(path);
        let base = base_path(path);
        if dir == "." {
            dir = String::new();
        }
        if dir == ".." || path.starts_with("../") {
            return Err(OrderError::Escapes(path.to_string()));
        }
        // The deepest recorded directory that sorts at or before `dir`.
        let i = self
            .parents
            .iter()
            .rposition(|(d, _)| d.as_str() <= dir.as_str())
            .unwrap_or(0);
        self.parents.truncate(i + 1);
        let (parent_dir, last) = &self.parents[i];
        if (i == 0 && !dir.is_empty()) || last.as_str() >= base.as_str() {
            return Err(OrderError::OutOfOrder {
                path: path.to_string(),
                previous: join_path(parent_dir, last),
            });
        }
        self.parents[i].1 = base.clone();
        if is_dir {
            self.parents.push((join_path(&dir, &base), String::new()));
        }
        Ok(())
    }

    /// Validates a whole list of entries.
    pub fn check(entries: &[ContextEntry]) -> Result<(), OrderError> {
        let mut v = OrderValidator::default();
        for e in entries {
            v.push(&e.path, e.kind == EntryKind::Dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(p, content).unwrap();
    }

    fn paths(s: &ContextSnapshot) -> Vec<&str> {
        s.entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn walk(root: &Path, f: impl FnOnce(&mut WalkOptions)) -> ContextSnapshot {
        let mut o = WalkOptions::default();
        f(&mut o);
        let s = walk_context(root, &o).unwrap();
        OrderValidator::check(&s.entries).unwrap();
        s
    }

    #[test]
    fn mode_conversion_matches_go() {
        assert_eq!(go_mode::from_unix(0o100644), 0o644);
        assert_eq!(go_mode::from_unix(0o040755), go_mode::DIR | 0o755);
        assert_eq!(go_mode::from_unix(0o120777), go_mode::SYMLINK | 0o777);
        assert_eq!(go_mode::from_unix(0o010644), go_mode::NAMED_PIPE | 0o644);
        assert_eq!(go_mode::from_unix(0o140755), go_mode::SOCKET | 0o755);
        assert_eq!(go_mode::from_unix(0o060660), go_mode::DEVICE | 0o660);
        assert_eq!(
            go_mode::from_unix(0o020666),
            go_mode::DEVICE | go_mode::CHAR_DEVICE | 0o666
        );
        assert_eq!(go_mode::from_unix(0o104755), go_mode::SETUID | 0o755);
        assert_eq!(go_mode::from_unix(0o102755), go_mode::SETGID | 0o755);
        assert_eq!(
            go_mode::from_unix(0o041777),
            go_mode::DIR | go_mode::STICKY | 0o777
        );
        assert_eq!(go_mode::DIR, 2147483648);
        assert_eq!(go_mode::TYPE, 2401763328);
        for st in [
            0o100644, 0o040755, 0o120777, 0o010600, 0o140700, 0o060660, 0o020666, 0o107755,
            0o041777,
        ] {
            assert_eq!(go_mode::to_unix(go_mode::from_unix(st)), st, "{st:o}");
        }
    }

    #[test]
    fn order_is_depth_first_by_name_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in [
            "a/b", "a/c/d", "a.txt", "a-b", "B", "b", "_x", "z/y/x", "ä", "a0",
        ] {
            write(r, f, f);
        }
        fs::create_dir(r.join("empty")).unwrap();
        let s = walk(r, |_| {});
        assert_eq!(
            paths(&s),
            vec![
                "B", "_x", "a", "a/b", "a/c", "a/c/d", "a-b", "a.txt", "a0", "b", "empty", "z",
                "z/y", "z/y/x", "ä"
            ]
        );
        // A full-path sort would be rejected by the receiver.
        let mut sorted: Vec<ContextEntry> = s.entries.clone();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        assert!(matches!(
            OrderValidator::check(&sorted),
            Err(OrderError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn validator_rules() {
        let mut v = OrderValidator::default();
        v.push("a", true).unwrap();
        v.push("a/b", false).unwrap();
        v.push("a.txt", false).unwrap();
        assert!(v.push("a.txt", false).is_err());
        let mut v = OrderValidator::default();
        assert!(matches!(
            v.push("x/y", false),
            Err(OrderError::OutOfOrder { .. })
        ));
        let mut v = OrderValidator::default();
        assert!(matches!(v.push("./x", false), Err(OrderError::Unclean(_))));
        assert!(matches!(v.push("/x", false), Err(OrderError::Absolute(_))));
        assert!(matches!(v.push("../x", false), Err(OrderError::Escapes(_))));
        let mut v = OrderValidator::default();
        v.push("b", false).unwrap();
        assert!(v.push("a", false).is_err());
    }

    #[test]
    fn stat_fields() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "file.txt", "hello");
        fs::set_permissions(r.join("file.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        write(r, "suid", "x");
        fs::set_permissions(r.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::create_dir(r.join("sticky")).unwrap();
        fs::set_permissions(r.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
        symlink("file.txt", r.join("link")).unwrap();
        symlink("/etc/passwd", r.join("abs-link")).unwrap();
        let when = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        fs::File::options()
            .write(true)
            .open(r.join("file.txt"))
            .unwrap()
            .set_modified(when)
            .unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(r.join("sock")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(r.join("fifo"))
            .status();

        let s = walk(r, |_| {});
        let get = |p: &str| s.entries.iter().find(|e| e.path == p).unwrap().clone();

        let f = get("file.txt");
        assert_eq!(f.kind, EntryKind::File);
        assert_eq!(f.mode, 0o640);
        assert_eq!(f.size, 5);
        assert_eq!(f.mod_time, 1_700_000_000_123_456_789);
        assert_eq!((f.uid, f.gid), (0, 0));
        assert!(f.linkname.is_empty());
        assert!(f.can_request_data());

        assert_eq!(get("suid").mode, go_mode::SETUID | 0o755);
        let st = get("sticky");
        assert_eq!(st.mode, go_mode::DIR | go_mode::STICKY | 0o777);
        assert_eq!(st.size, 0);
        assert!(!st.can_request_data());

        let l = get("link");
        assert_eq!(l.kind, EntryKind::Symlink);
        assert_eq!(l.mode & go_mode::SYMLINK, go_mode::SYMLINK);
        assert_eq!(l.linkname, "file.txt");
        assert_eq!(l.size, 8);
        assert_eq!(get("abs-link").linkname, "/etc/passwd");

        let sock = get("sock");
        assert_eq!(sock.kind, EntryKind::Socket);
        assert_eq!(
            sock.mode & go_mode::TYPE,
            0,
            "socket bit is cleared like fsutil"
        );

        if matches!(fifo, Ok(status) if status.success()) {
            let p = get("fifo");
            assert_eq!(p.kind, EntryKind::NamedPipe);
            assert_eq!(p.mode & go_mode::NAMED_PIPE, go_mode::NAMED_PIPE);
            assert!(!p.can_request_data());
        }

        let owned = walk(r, |o| o.keep_ownership = true);
        let meta = fs::symlink_metadata(r.join("file.txt")).unwrap();
        let e = owned.entries.iter().find(|e| e.path == "file.txt").unwrap();
        assert_eq!((e.uid, e.gid), (meta.uid(), meta.gid()));
    }

    #[test]
    fn hardlinks_point_at_the_first_sent_path() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a/orig", "data!");
        fs::hard_link(r.join("a/orig"), r.join("b")).unwrap();
        fs::hard_link(r.join("a/orig"), r.join("c")).unwrap();
        let s = walk(r, |_| {});
        let get = |p: &str| s.entries.iter().find(|e| e.path == p).unwrap().clone();
        assert!(get("a/orig").linkname.is_empty());
        assert_eq!(get("b").linkname, "a/orig");
        assert_eq!(get("c").linkname, "a/orig");
        assert_eq!(get("b").size, 5);
        assert!(get("b").is_hardlink());
        // With the first path excluded, the next sent path becomes the target.
        let s = walk(r, |o| o.exclude_patterns = vec!["a".into()]);
        assert_eq!(paths(&s), vec!["b", "c"]);
        assert!(s.entries[0].linkname.is_empty());
        assert_eq!(s.entries[1].linkname, "b");
        assert_eq!(s.total_file_bytes(), 5);
    }

    fn sample_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in [
            "Dockerfile",
            "README.md",
            "src/main.rs",
            "src/lib/a.rs",
            "src/lib/b.txt",
            "node_modules/x/index.js",
            "node_modules/keep/k.js",
            "docs/a.md",
            "docs/public/p.html",
            "target/debug/out",
        ] {
            write(r, f, f);
        }
        dir
    }

    #[test]
    fn excludes_with_exceptions_send_needed_parents() {
        let dir = sample_tree();
        let s = walk(dir.path(), |o| {
            o.exclude_patterns = vec![
                "node_modules".into(),
                "!node_modules/keep".into(),
                "docs".into(),
                "!docs/public/**".into(),
                "target".into(),
                "*.md".into(),
            ]
        });
        assert_eq!(
            paths(&s),
            vec![
                "Dockerfile",
                "docs",
                "docs/public",
                "docs/public/p.html",
                "node_modules",
                "node_modules/keep",
                "node_modules/keep/k.js",
                "src",
                "src/lib",
                "src/lib/a.rs",
                "src/lib/b.txt",
                "src/main.rs",
            ]
        );
    }

    #[test]
    fn includes_select_paths_and_their_parents() {
        let dir = sample_tree();
        let s = walk(dir.path(), |o| {
            o.include_patterns = vec!["src/lib/*.rs".into(), "Dockerfile".into()]
        });
        assert_eq!(
            paths(&s),
            vec!["Dockerfile", "src", "src/lib", "src/lib/a.rs"]
        );
        let s = walk(dir.path(), |o| {
            o.include_patterns = vec!["src".into()];
            o.exclude_patterns = vec!["**/*.txt".into()];
        });
        assert_eq!(
            paths(&s),
            vec!["src", "src/lib", "src/lib/a.rs", "src/main.rs"]
        );
        // Include "." without follow paths matches nothing, as upstream.
        let s = walk(dir.path(), |o| o.include_patterns = vec![".".into()]);
        assert!(s.is_empty());
        // Missing includes send nothing, not even parents.
        let s = walk(dir.path(), |o| {
            o.include_patterns = vec!["src/nope/x".into()]
        });
        assert!(s.is_empty());
    }

    #[test]
    fn follow_paths_resolve_symlinks_inside_the_context() {
        let dir = sample_tree();
        let r = dir.path();
        write(r, "build/Dockerfile.real", "FROM scratch");
        symlink("build/Dockerfile.real", r.join("Dockerfile.link")).unwrap();
        // An absolute target is taken relative to the context root.
        symlink("/src/lib", r.join("abs")).unwrap();
        // A directory symlink in the middle of a path.
        symlink("docs", r.join("d")).unwrap();
        // A link pointing outside is clamped to the root.
        symlink("../../../../etc/passwd", r.join("escape")).unwrap();

        let s = walk(r, |o| {
            o.follow_paths = vec![
                "Dockerfile.link".into(),
                "Dockerfile.link.dockerignore".into(),
            ]
        });
        assert_eq!(
            paths(&s),
            vec!["Dockerfile.link", "build", "build/Dockerfile.real"]
        );

        let s = walk(r, |o| o.follow_paths = vec!["abs/a.rs".into()]);
        assert_eq!(paths(&s), vec!["abs", "src", "src/lib", "src/lib/a.rs"]);

        let s = walk(r, |o| o.follow_paths = vec!["d/public".into()]);
        assert_eq!(
            paths(&s),
            vec!["d", "docs", "docs/public", "docs/public/p.html"]
        );

        let s = walk(r, |o| o.follow_paths = vec!["escape".into()]);
        assert_eq!(paths(&s), vec!["escape"]);
        assert_eq!(
            resolve_follow_paths(&fs::canonicalize(r).unwrap(), &["escape".into()]).unwrap(),
            Some(vec!["escape".to_string(), "etc/passwd".to_string()])
        );

        // Wildcards in follow paths expand symlinks too.
        let s = walk(r, |o| o.follow_paths = vec!["Dockerfile*".into()]);
        assert_eq!(
            paths(&s),
            vec![
                "Dockerfile",
                "Dockerfile.link",
                "build",
                "build/Dockerfile.real"
            ]
        );

        // "." means everything.
        let all = walk(r, |_| {});
        let s = walk(r, |o| o.follow_paths = vec!["src".into(), ".".into()]);
        assert_eq!(paths(&s), paths(&all));

        // Follow paths combine with excludes.
        let s = walk(r, |o| {
            o.follow_paths = vec!["src".into()];
            o.exclude_patterns = vec!["src/lib".into()];
        });
        assert_eq!(paths(&s), vec!["src", "src/main.rs"]);
    }

    #[test]
    fn symlink_cycles_terminate() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        symlink("b", r.join("a")).unwrap();
        symlink("a", r.join("b")).unwrap();
        symlink("self/x", r.join("self")).unwrap();
        let s = walk(r, |o| o.follow_paths = vec!["a".into(), "self/y".into()]);
        assert_eq!(paths(&s), vec!["a", "b", "self"]);
    }

    #[test]
    fn dedupe_matches_fsutil() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedupe_paths(&v(&["a", "a/b", "a.b", "a/c"])),
            Some(v(&["a", "a.b", "a/c"]))
        );
        assert_eq!(dedupe_paths(&v(&["a", "."])), None);
        assert_eq!(dedupe_paths(&v(&[])), Some(vec![]));
    }

    #[test]
    fn non_utf8_names() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let bad = std::ffi::OsStr::from_bytes(b"bad\xff");
        fs::write(r.join(bad), "x").unwrap();
        write(r, "good", "y");
        let err = walk_context(r, &WalkOptions::default()).unwrap_err();
        assert!(matches!(err, WalkError::NonUtf8 { .. }), "{err}");
        let s = walk(r, |o| o.exclude_patterns = vec!["bad*".into()]);
        assert_eq!(paths(&s), vec!["good"]);
    }

    #[test]
    fn parallel_and_serial_walks_agree() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for i in 0..40 {
            for j in 0..15 {
                write(r, &format!("d{i}/s{}/f{j}", j % 3), "x");
            }
        }
        let serial = walk(r, |o| o.threads = 1);
        let parallel = walk(r, |o| o.threads = 4);
        assert_eq!(serial.entries, parallel.entries);
        assert_eq!(serial.len(), 40 + 40 * 3 + 40 * 15);
    }

    #[test]
    fn root_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "f", "x");
        assert!(matches!(
            walk_context(&dir.path().join("f"), &WalkOptions::default()),
            Err(WalkError::NotADirectory { .. })
        ));
        assert!(matches!(
            walk_context(&dir.path().join("missing"), &WalkOptions::default()),
            Err(WalkError::Root { .. })
        ));
        let bad = WalkOptions {
            exclude_patterns: vec!["[".into()],
            ..WalkOptions::default()
        };
        assert!(matches!(
            walk_context(dir.path(), &bad),
            Err(WalkError::Patterns {
                which: "exclude",
                ..
            })
        ));
    }

    #[test]
    fn unreadable_excluded_dirs_are_tolerated() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "locked/secret", "x");
        write(r, "ok", "y");
        fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let readable = fs::read_dir(r.join("locked")).is_ok(); // root can read anyway
        let s = walk(r, |o| {
            o.exclude_patterns = vec!["locked".into(), "!locked/secret".into()]
        });
        if !readable {
            assert_eq!(paths(&s), vec!["ok"]);
        }
        fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn async_walk() {
        let dir = sample_tree();
        let s = walk_context_async(dir.path().to_path_buf(), WalkOptions::default())
            .await
            .unwrap();
        assert_eq!(s.len(), 19);
        assert!(s.root.is_absolute());
        assert_eq!(s.disk_path(0).unwrap(), s.root.join("Dockerfile"));
    }

    /// `cargo test -- --ignored --nocapture walk_20k_files` prints timings.
    #[test]
    #[ignore]
    fn walk_20k_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let mut n = 0;
        for a in 0..20 {
            for b in 0..20 {
                let d = r.join(format!("pkg{a:02}/mod{b:02}"));
                fs::create_dir_all(&d).unwrap();
                for c in 0..50 {
                    fs::write(d.join(format!("file{c:03}.rs")), b"fn main() {}\n").unwrap();
                    n += 1;
                }
            }
        }
        let excludes = vec![
            "**/file00*.rs".to_string(),
            "pkg19".to_string(),
            "!pkg19/mod00/**".to_string(),
        ];
        for (label, threads, patterns) in [
            ("1 thread, no patterns", 1, vec![]),
            ("auto threads, no patterns", 0, vec![]),
            ("1 thread, 3 excludes", 1, excludes.clone()),
            ("auto threads, 3 excludes", 0, excludes.clone()),
        ] {
            let opts = WalkOptions {
                threads,
                exclude_patterns: patterns,
                ..WalkOptions::default()
            };
            let _warm = walk_context(r, &opts).unwrap();
            let runs = 5;
            let start = std::time::Instant::now();
            let mut len = 0;
            for _ in 0..runs {
                len = walk_context(r, &opts).unwrap().len();
            }
            let per = start.elapsed() / runs;
            println!("{n} files: {label}: {len} entries in {per:?} per walk");
        }
        let _ = SystemTime::now();
    }
}
