//! A directory that files from the daemon are written into, confined to it.
//!
//! Every operation takes a relative, `/`-separated path *from the daemon*
//! and works through file descriptors: parent directories are opened one
//! component at a time from the destination's descriptor with `O_NOFOLLOW`,
//! and the last component is created, replaced or changed with the `*at`
//! calls that do not follow symlinks. So whatever the daemon sends, and
//! whatever the destination already holds (symlinks pointing elsewhere,
//! hard links to files elsewhere), nothing is created, written or changed
//! outside the destination:
//!
//! * `..`, `.`, empty and absolute components are refused;
//! * a symlink met as a parent directory is refused, never followed (a link
//!   the daemon just created, or one that was already there);
//! * an existing non-directory at a path being written is unlinked first
//!   and the file created anew with `O_EXCL`, so a pre-existing hard link
//!   or symlink never redirects the write;
//! * what the destination already holds is merged with the export as
//!   fsutil's disk writer does: a directory over a directory keeps both
//!   trees' entries, an entry of another kind replaces what was there (a
//!   directory is removed with everything in it, never through a symlink),
//!   unrelated entries stay;
//! * hard links may only point at regular files received earlier in the
//!   same export (checked by inode), see [`ExportDir::hard_link`];
//! * device nodes, FIFOs and sockets are never created (the caller skips
//!   them);
//! * set-user-ID and set-group-ID bits are dropped: files are owned by the
//!   user running the client, and a set-user-ID file planted by a daemon in
//!   a root-owned export would be a privilege escalation.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

/// Why a path from the daemon was not written.
#[derive(Debug, thiserror::Error)]
pub enum ExportPathError {
    /// The path itself is not acceptable (absolute, `..`, empty, ...).
    #[error("refusing the path {path:?} from the daemon: {reason}")]
    Refused {
        /// The path as the daemon sent it.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// Where, under the destination.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// The permission bits kept from the daemon's modes: permissions and the
/// sticky bit, not set-user-ID or set-group-ID.
pub(crate) const KEPT_MODE_BITS: u32 = 0o1777;

/// The export destination, opened once; see the module docs.
#[derive(Debug)]
pub(crate) struct ExportDir {
    dest: PathBuf,
    root: OwnedFd,
    /// Regular files created in this export, by path: their inode.
    created: HashMap<String, (u64, u64)>,
    /// The last parent directory opened, to spare re-walking siblings.
    last_parent: Option<(String, OwnedFd)>,
}

fn refused(path: &str, reason: impl Into<String>) -> ExportPathError {
    ExportPathError::Refused {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Splits a daemon path into its parent components and last name, refusing
/// anything that is not a plain relative path.
fn split(path: &str) -> Result<(Vec<&str>, &str), ExportPathError> {
    if path.starts_with('/') {
        return Err(refused(path, "it is absolute"));
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err(refused(path, "it has an empty component")),
            "." | ".." => return Err(refused(path, format!("it has a {part:?} component"))),
            _ if part.contains('\0') => return Err(refused(path, "it contains a NUL byte")),
            _ => {}
        }
    }
    let name = parts.pop().ok_or_else(|| refused(path, "it is empty"))?;
    Ok((parts, name))
}

impl ExportDir {
    /// Creates `dest` (and its parents; the caller chose it) if needed and
    /// opens it. Directories created here get mode 0700 (before the umask),
    /// as BuildKit's client creates an export destination.
    pub(crate) fn open(dest: &Path) -> Result<ExportDir, ExportPathError> {
        use std::os::unix::fs::DirBuilderExt;
        let io_err = |source: io::Error| ExportPathError::Io {
            path: dest.to_path_buf(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dest)
            .map_err(io_err)?;
        let root = rustix::fs::open(
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(e.into()))?;
        Ok(ExportDir {
            dest: dest.to_path_buf(),
            root,
            created: HashMap::new(),
            last_parent: None,
        })
    }

    /// The destination directory.
    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }

    fn io(&self, path: &str, source: impl Into<io::Error>) -> ExportPathError {
        ExportPathError::Io {
            path: self.dest.join(path),
            source: source.into(),
        }
    }

    /// Opens the parent directory of `path`, component by component, never
    /// through a symlink. Missing directories are created when `create`.
    fn parent(
        &mut self,
        path: &str,
        parents: &[&str],
        create: bool,
    ) -> Result<OwnedFd, ExportPathError> {
        let key = parents.join("/");
        if let Some((cached, fd)) = &self.last_parent {
            if *cached == key {
                return fd.try_clone().map_err(|e| self.io(path, e));
            }
        }
        let mut current = self.root.try_clone().map_err(|e| self.io(path, e))?;
        for (depth, part) in parents.iter().enumerate() {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let opened = match rustix::fs::openat(&current, *part, flags, Mode::empty()) {
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&current, *part, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.io(path, e)),
                    }
                    rustix::fs::openat(&current, *part, flags, Mode::empty())
                }
                other => other,
            };
            current = match opened {
                Ok(fd) => fd,
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let at = parents[..=depth].join("/");
                    return Err(refused(
                        path,
                        format!("{at} is not a directory (a symlink is never followed)"),
                    ));
                }
                Err(e) => return Err(self.io(path, e)),
            };
        }
        let copy = current.try_clone().map_err(|e| self.io(path, e))?;
        self.last_parent = Some((key, copy));
        Ok(current)
    }

    /// Removes whatever is at `name` (never following it): a directory
    /// with everything in it, as fsutil replaces a directory by a file.
    fn clear(&self, parent: &OwnedFd, path: &str, name: &str) -> Result<(), ExportPathError> {
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.io(path, e)),
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                self.remove_tree(parent, path, name)
            }
            Ok(_) => {
                rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(|e| self.io(path, e))
            }
        }
    }

    /// Removes the directory `name` in `parent` and everything below it,
    /// through descriptors opened with `O_NOFOLLOW` (a symlink inside is
    /// removed, never followed).
    fn remove_tree<P: rustix::path::Arg + Copy>(
        &self,
        parent: &OwnedFd,
        path: &str,
        name: P,
    ) -> Result<(), ExportPathError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir =
            rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(|e| self.io(path, e))?;
        let mut children = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir).map_err(|e| self.io(path, e))? {
            let entry = entry.map_err(|e| self.io(path, e))?;
            let child = entry.file_name();
            if child.to_bytes() != b"." && child.to_bytes() != b".." {
                children.push(child.to_owned());
            }
        }
        for child in &children {
            let child_path = format!("{path}/{}", child.to_string_lossy());
            let st = rustix::fs::statat(&dir, child.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.io(&child_path, e))?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                self.remove_tree(&dir, &child_path, child.as_c_str())?;
            } else {
                rustix::fs::unlinkat(&dir, child.as_c_str(), AtFlags::empty())
                    .map_err(|e| self.io(&child_path, e))?;
            }
        }
        rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(|e| self.io(path, e))
    }

    /// Checks, before anything is written, that `path` can be written: a
    /// plain relative path whose parents are directories, listed as such in
    /// this export (`listed(prefix)` is `Some(true)` for a listed directory,
    /// `Some(false)` for another listed kind, `None` when not listed), or
    /// real directories already in the destination, or missing (created).
    /// A symlink or file in the destination where a parent of `path` must
    /// be is refused unless the export replaces it with a directory.
    pub(crate) fn check_path(
        &self,
        path: &str,
        listed: &dyn Fn(&str) -> Option<bool>,
    ) -> Result<(), ExportPathError> {
        let (parents, _) = split(path)?;
        // The destination's directory at the current prefix, while there is one.
        let mut existing = Some(self.root.try_clone().map_err(|e| self.io(path, e))?);
        for (depth, part) in parents.iter().enumerate() {
            let prefix = parents[..=depth].join("/");
            let listed_as = listed(&prefix);
            if listed_as == Some(false) {
                return Err(refused(
                    path,
                    format!("{prefix} is not a directory in this export"),
                ));
            }
            let Some(current) = existing.take() else {
                continue;
            };
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            existing = match rustix::fs::openat(&current, *part, flags, Mode::empty()) {
                Ok(fd) => Some(fd),
                Err(Errno::NOENT) => None,
                Err(Errno::LOOP) | Err(Errno::NOTDIR) if listed_as == Some(true) => None,
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    return Err(refused(
                        path,
                        format!("{prefix} is not a directory (a symlink is never followed)"),
                    ))
                }
                Err(e) => return Err(self.io(path, e)),
            };
        }
        Ok(())
    }

    /// Makes sure `path` is a directory (replacing a non-directory there).
    pub(crate) fn create_dir(&mut self, path: &str) -> Result<(), ExportPathError> {
        let (parents, name) = split(path)?;
        let parent = self.parent(path, &parents, true)?;
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => return Ok(()),
            Ok(_) => rustix::fs::unlinkat(&parent, name, AtFlags::empty())
                .map_err(|e| self.io(path, e))?,
            Err(Errno::NOENT) => {}
            Err(e) => return Err(self.io(path, e)),
        }
        rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)).map_err(|e| self.io(path, e))
    }

    /// Creates the symlink `path` → `target` (replacing a non-directory).
    /// The target is stored as given and never followed by this type.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> Result<(), ExportPathError> {
        let (parents, name) = split(path)?;
        if target.is_empty() || target.contains('\0') {
            return Err(refused(
                path,
                "the symlink target is empty or contains a NUL byte",
            ));
        }
        let parent = self.parent(path, &parents, true)?;
        self.clear(&parent, path, name)?;
        rustix::fs::symlinkat(target, &parent, name).map_err(|e| self.io(path, e))
    }

    /// Creates the regular file `path` anew (replacing a non-directory) and
    /// returns it open for writing.
    pub(crate) fn create_file(&mut self, path: &str) -> Result<std::fs::File, ExportPathError> {
        let (parents, name) = split(path)?;
        let parent = self.parent(path, &parents, true)?;
        self.clear(&parent, path, name)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.io(path, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io(path, e))?;
        self.created
            .insert(path.to_string(), (st.st_dev as u64, st.st_ino as u64));
        Ok(std::fs::File::from(fd))
    }

    /// Hard-links `path` to `original`, which must be a regular file created
    /// earlier in this export and still be that file.
    pub(crate) fn hard_link(&mut self, path: &str, original: &str) -> Result<(), ExportPathError> {
        let (parents, name) = split(path)?;
        let (original_parents, original_name) = split(original)?;
        let Some(&identity) = self.created.get(original) else {
            return Err(refused(
                path,
                format!("its hard link target {original:?} is not a file of this export"),
            ));
        };
        let source_parent = self.parent(original, &original_parents, false)?;
        let st = rustix::fs::statat(&source_parent, original_name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(original, e))?;
        if (st.st_dev as u64, st.st_ino as u64) != identity {
            return Err(refused(
                path,
                format!("its hard link target {original:?} was replaced"),
            ));
        }
        let parent = self.parent(path, &parents, true)?;
        self.clear(&parent, path, name)?;
        rustix::fs::linkat(
            &source_parent,
            original_name,
            &parent,
            name,
            AtFlags::empty(),
        )
        .map_err(|e| self.io(path, e))?;
        self.created.insert(path.to_string(), identity);
        Ok(())
    }

    /// Sets the permission bits (see [`KEPT_MODE_BITS`]) and modification
    /// time of the file or directory `path`; symlinks are left alone.
    pub(crate) fn finish(
        &mut self,
        path: &str,
        unix_mode: u32,
        mod_time_nanos: i64,
    ) -> Result<(), ExportPathError> {
        let (parents, name) = split(path)?;
        let parent = self.parent(path, &parents, false)?;
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // A symlink (ELOOP) keeps its own times; nothing to do.
            Err(Errno::LOOP) => return Ok(()),
            Err(e) => return Err(self.io(path, e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io(path, e))?;
        if !matches!(
            FileType::from_raw_mode(st.st_mode),
            FileType::RegularFile | FileType::Directory
        ) {
            return Ok(());
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(unix_mode & KEPT_MODE_BITS))
            .map_err(|e| self.io(path, e))?;
        if let Some(time) = timespec(mod_time_nanos) {
            let times = Timestamps {
                last_access: time,
                last_modification: time,
            };
            rustix::fs::futimens(&fd, &times).map_err(|e| self.io(path, e))?;
        }
        Ok(())
    }
}

fn timespec(nanos: i64) -> Option<Timespec> {
    let nanos = u64::try_from(nanos).ok()?;
    let time = UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))?;
    let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some(Timespec {
        tv_sec: i64::try_from(since.as_secs()).ok()?,
        tv_nsec: since.subsec_nanos().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let top = tempfile::tempdir().unwrap();
        let dest = top.path().join("dest");
        let outside = top.path().join("outside");
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("victim"), b"original").unwrap();
        (top, dest, outside)
    }

    #[test]
    fn plain_paths_are_written() {
        let (_top, dest, _) = setup();
        let mut dir = ExportDir::open(&dest).unwrap();
        dir.create_dir("a").unwrap();
        dir.create_file("a/f").unwrap().write_all(b"hi").unwrap();
        dir.hard_link("a/g", "a/f").unwrap();
        dir.symlink("a/l", "/etc/passwd").unwrap();
        dir.finish("a/f", 0o4755, 1_000_000_000).unwrap();
        let meta = fs::metadata(dest.join("a/f")).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o755,
            "set-user-ID is dropped"
        );
        assert_eq!(meta.mtime(), 1);
        assert_eq!(meta.ino(), fs::metadata(dest.join("a/g")).unwrap().ino());
        assert_eq!(
            fs::read_link(dest.join("a/l")).unwrap(),
            Path::new("/etc/passwd")
        );
        dir.finish("a/l", 0o777, 0).unwrap();
    }

    #[test]
    fn bad_paths_are_refused() {
        let (_top, dest, _) = setup();
        let mut dir = ExportDir::open(&dest).unwrap();
        for bad in [
            "../x",
            "/abs",
            "a/../../x",
            "",
            "a//b",
            "./x",
            "..",
            "a/.",
            "x\0y",
        ] {
            assert!(
                matches!(dir.create_file(bad), Err(ExportPathError::Refused { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn symlinked_parents_are_never_followed() {
        let (_top, dest, outside) = setup();
        let mut dir = ExportDir::open(&dest).unwrap();
        dir.symlink("l", outside.to_str().unwrap()).unwrap();
        assert!(matches!(
            dir.create_file("l/victim"),
            Err(ExportPathError::Refused { .. })
        ));
        assert!(matches!(
            dir.create_dir("l/sub"),
            Err(ExportPathError::Refused { .. })
        ));
        // A link that was already in the destination.
        std::os::unix::fs::symlink(&outside, dest.join("pre")).unwrap();
        assert!(matches!(
            dir.create_file("pre/victim"),
            Err(ExportPathError::Refused { .. })
        ));
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"original");
        assert!(!outside.join("sub").exists());
    }

    #[test]
    fn existing_links_are_replaced_not_written_through() {
        let (_top, dest, outside) = setup();
        std::os::unix::fs::symlink(outside.join("victim"), dest.join("s")).unwrap();
        fs::hard_link(outside.join("victim"), dest.join("h")).unwrap();
        let mut dir = ExportDir::open(&dest).unwrap();
        dir.create_file("s").unwrap().write_all(b"new").unwrap();
        dir.create_file("h").unwrap().write_all(b"new").unwrap();
        dir.finish("h", 0o777, 0).unwrap();
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"original");
        assert_eq!(
            fs::metadata(outside.join("victim"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );
        assert_eq!(fs::read(dest.join("s")).unwrap(), b"new");
        assert!(!fs::symlink_metadata(dest.join("s"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn hard_links_only_to_files_of_this_export() {
        let (_top, dest, outside) = setup();
        fs::hard_link(outside.join("victim"), dest.join("pre")).unwrap();
        let mut dir = ExportDir::open(&dest).unwrap();
        for target in ["pre", "../outside/victim", "/etc/passwd", "missing"] {
            assert!(dir.hard_link("x", target).is_err(), "{target}");
        }
        dir.symlink("l", outside.join("victim").to_str().unwrap())
            .unwrap();
        assert!(dir.hard_link("x", "l").is_err());
        assert!(!dest.join("x").exists());
    }
}
