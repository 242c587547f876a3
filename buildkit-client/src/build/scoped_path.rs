//! Following a path's symlinks inside a directory, as BuildKit does when it
//! reads a file from a synced local directory (fsutil's `followlinks.go`):
//! an absolute link target is taken from the directory's root, and `..`
//! never climbs above that root.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Most links followed for one path (Linux's `MAXSYMLINKS` is 40; fsutil
/// follows 255 before it gives up).
const MAX_LINKS: usize = 255;

/// Where `path` (relative to `root`) leads when every symlink on the way is
/// followed inside `root`: the host path of what it names, or `None` if
/// nothing is there (a missing name, or a file where a directory must be).
/// Fails on a link loop and on errors other than "not found".
pub(crate) fn resolve_in_root(root: &Path, path: &Path) -> io::Result<Option<PathBuf>> {
    // Components still to walk, the next one last.
    let mut pending: Vec<String> = Vec::new();
    push_components(&mut pending, path);
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&name);
        let meta = match std::fs::symlink_metadata(&candidate) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::other(format!(
                    "{}: too many levels of symbolic links",
                    path.display()
                )));
            }
            let target = std::fs::read_link(&candidate)?;
            if target.is_absolute() {
                resolved.clear();
            }
            push_components(&mut pending, &target);
            continue;
        }
        if !pending.is_empty() && !meta.is_dir() {
            return Ok(None);
        }
        resolved.push(name);
    }
    Ok(Some(
        resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c)),
    ))
}

/// Puts `path`'s components on `pending` so that its first is popped next.
fn push_components(pending: &mut Vec<String>, path: &Path) {
    let names: Vec<String> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(names.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// fsutil's `TestFollowLinksAbsolute`: `dir/l1 -> /foo/bar/baz` with
    /// `foo/bar -> ../../../` leads to `baz` at the root.
    #[test]
    fn absolute_targets_start_at_the_root_and_dotdot_stops_there() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir(r.join("dir")).unwrap();
        std::fs::create_dir(r.join("foo")).unwrap();
        symlink("/foo/bar/baz", r.join("dir/l1")).unwrap();
        symlink("../../../", r.join("foo/bar")).unwrap();
        std::fs::write(r.join("baz"), "FROM scratch\n").unwrap();
        symlink("dir/l1", r.join("Dockerfile")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("Dockerfile")).unwrap(),
            Some(r.join("baz"))
        );
    }

    /// fsutil's `TestFollowLinks`: relative links, through a directory.
    #[test]
    fn relative_targets_start_at_the_link() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir(r.join("dir")).unwrap();
        std::fs::write(r.join("dir/foo"), "x").unwrap();
        symlink("foo", r.join("dir/l1")).unwrap();
        symlink("dir/l1", r.join("l2")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("l2")).unwrap(),
            Some(r.join("dir/foo"))
        );
    }

    /// A link out of the root is followed inside it, as the daemon does:
    /// `../other/Dockerfile` is `other/Dockerfile` under the root.
    #[test]
    fn links_never_leave_the_root() {
        let top = tempfile::tempdir().unwrap();
        let r = top.path().join("ctx");
        std::fs::create_dir_all(top.path().join("other")).unwrap();
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(top.path().join("other/Dockerfile"), "x").unwrap();
        symlink("../other/Dockerfile", r.join("Dockerfile")).unwrap();
        assert_eq!(resolve_in_root(&r, Path::new("Dockerfile")).unwrap(), None);
        symlink(top.path().join("other/Dockerfile"), r.join("abs")).unwrap();
        assert_eq!(resolve_in_root(&r, Path::new("abs")).unwrap(), None);
        std::fs::create_dir_all(r.join("other")).unwrap();
        std::fs::write(r.join("other/Dockerfile"), "y").unwrap();
        assert_eq!(
            resolve_in_root(&r, Path::new("Dockerfile")).unwrap(),
            Some(r.join("other/Dockerfile"))
        );
    }

    #[test]
    fn a_loop_is_an_error_and_a_file_is_no_directory() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        symlink("b", r.join("a")).unwrap();
        symlink("a", r.join("b")).unwrap();
        assert!(resolve_in_root(r, Path::new("a")).is_err());
        std::fs::write(r.join("f"), "x").unwrap();
        assert_eq!(resolve_in_root(r, Path::new("f/x")).unwrap(), None);
    }
}
