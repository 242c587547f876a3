//! Phase 1 of the walk: read the tree on a pool of threads (directory
//! reads and `lstat` calls), pruning what the filter rejects.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::WalkError;
use crate::fsutil::go_mode;
use crate::fsutil::patterns::{FilterDecision, FilterState, PathFilter};

/// Raw `lstat` fields we keep.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawMeta {
    pub(super) st_mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) size: u64,
    pub(super) mtime: i64,
    pub(super) mtime_nsec: i64,
    pub(super) rdev: u64,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) nlink: u64,
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
pub(super) struct Child {
    /// Path relative to the root (lossy if not UTF-8).
    pub(super) rel: String,
    /// Whether `rel` is exact (every component valid UTF-8).
    pub(super) utf8: bool,
    /// Selected by the filter by itself.
    pub(super) selected: bool,
    pub(super) meta: RawMeta,
    /// Symlink target, for selected symlinks.
    pub(super) link: Option<OsString>,
    /// Node of the directory's contents, when it is entered.
    pub(super) subdir: Option<usize>,
}

#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) children: Vec<Child>,
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

pub(super) fn read_tree(
    root: &Path,
    filter: &PathFilter,
    threads: usize,
) -> Result<Vec<Node>, WalkError> {
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

pub(super) fn is_vanished(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}
