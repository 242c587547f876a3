//! Follow paths (fsutil `followlinks.go`): the paths the daemon asked for
//! plus the targets of symlinks met on the way, as include patterns.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::read::is_vanished;
use super::WalkError;
use crate::fsutil::go_path::{base_path, clean_path, dir_path, go_match, join_path};

/// Resolves `followpaths` into include patterns: the paths themselves plus,
/// for every symlink met in any component (wildcards in a component are
/// expanded), the link's target taken relative to the context root,
/// recursively. Returns `None` when the result covers the whole context
/// (`"."` is among the paths), as fsutil does.
pub(crate) fn resolve_follow_paths(
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
pub(crate) fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
