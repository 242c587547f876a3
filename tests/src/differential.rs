//! Fixtures and comparisons for the differential suite (`tests/tests/differential.rs`), which
//! builds the same fixture with `cicd-agents build` and `docker buildx build` and compares what
//! each produced.
//!
//! - [`Entry`] describes a file-system fixture (files with modes and owners, directories,
//!   symlinks, hard links, FIFOs) and [`materialize`] writes it.
//! - [`snapshot_tree`] reads an exported directory back as a map of [`Node`]s: type, mode
//!   (permission and set-ID bits), owner, content digest, link target and hard-link group.
//! - [`read_tar`] lists a tar archive's members ([`TarMember`]); [`oci_layers`] lists the
//!   layers of every image manifest in an OCI layout archive.
//! - [`compare_trees`] and [`compare_members`] report every difference as a [`Difference`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// One item of a file-system fixture, relative to the directory it is written into.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A regular file with its content and permission bits (set-ID bits allowed).
    File {
        /// Relative path.
        path: String,
        /// Content.
        data: Vec<u8>,
        /// Mode bits (`0o7777` range).
        mode: u32,
    },
    /// A directory with its permission bits, applied after everything else is written.
    Dir {
        /// Relative path.
        path: String,
        /// Mode bits.
        mode: u32,
    },
    /// A symbolic link holding `target` as its text (not resolved, may dangle).
    Symlink {
        /// Relative path of the link.
        path: String,
        /// The link's text.
        target: String,
    },
    /// A hard link to an earlier file of the fixture.
    Hardlink {
        /// Relative path of the new name.
        path: String,
        /// Relative path of the existing file.
        target: String,
    },
    /// A named pipe.
    Fifo {
        /// Relative path.
        path: String,
    },
    /// Changes the owner of an earlier entry (without following a link).
    Chown {
        /// Relative path.
        path: String,
        /// User ID.
        uid: u32,
        /// Group ID.
        gid: u32,
    },
}

fn checked_join(root: &Path, rel: &str) -> Result<std::path::PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::InvalidArgument(format!(
            "fixture path {rel:?} must be relative without '..'"
        )));
    }
    Ok(root.join(p))
}

fn make_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

/// Writes `entries` under `root` in order; directory modes are applied last (deepest first) so
/// that a read-only directory can still be filled.
pub fn materialize(root: &Path, entries: &[Entry]) -> Result<()> {
    std::fs::create_dir_all(root).context(|| format!("creating {}", root.display()))?;
    let mut dir_modes = Vec::new();
    for entry in entries {
        match entry {
            Entry::File { path, data, mode } => {
                let full = checked_join(root, path)?;
                make_parent(&full)?;
                std::fs::write(&full, data).context(|| format!("writing {}", full.display()))?;
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode))
                    .context(|| format!("chmod {}", full.display()))?;
            }
            Entry::Dir { path, mode } => {
                let full = checked_join(root, path)?;
                std::fs::create_dir_all(&full)
                    .context(|| format!("creating {}", full.display()))?;
                dir_modes.push((full, *mode));
            }
            Entry::Symlink { path, target } => {
                let full = checked_join(root, path)?;
                make_parent(&full)?;
                std::os::unix::fs::symlink(target, &full)
                    .context(|| format!("symlink {}", full.display()))?;
            }
            Entry::Hardlink { path, target } => {
                let full = checked_join(root, path)?;
                let existing = checked_join(root, target)?;
                make_parent(&full)?;
                std::fs::hard_link(&existing, &full)
                    .context(|| format!("hard link {}", full.display()))?;
            }
            Entry::Fifo { path } => {
                let full = checked_join(root, path)?;
                make_parent(&full)?;
                let status = Command::new("mkfifo")
                    .arg(&full)
                    .status()
                    .context(|| format!("mkfifo {}", full.display()))?;
                if !status.success() {
                    return Err(Error::Command(format!(
                        "mkfifo {} failed ({status})",
                        full.display()
                    )));
                }
            }
            Entry::Chown { path, uid, gid } => {
                let full = checked_join(root, path)?;
                std::os::unix::fs::lchown(&full, Some(*uid), Some(*gid))
                    .context(|| format!("chown {}", full.display()))?;
            }
        }
    }
    dir_modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mode) in dir_modes {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .context(|| format!("chmod {}", dir.display()))?;
    }
    Ok(())
}

/// The type of a file-system object or tar member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Hard link (tar only: a member pointing at an earlier one).
    Hardlink,
    /// Named pipe.
    Fifo,
    /// Character or block device, socket, or an unknown tar type.
    Other,
}

/// One path of an exported tree, as [`snapshot_tree`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Type.
    pub kind: Kind,
    /// Permission and set-ID/sticky bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner user ID.
    pub uid: u32,
    /// Owner group ID.
    pub gid: u32,
    /// Size and SHA-256 of a regular file's content.
    pub content: Option<(u64, String)>,
    /// A symlink's text.
    pub link: Option<String>,
    /// For a regular file with other names in the tree: the smallest of its names.
    pub hardlink_group: Option<String>,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:04o} {}:{}",
            self.kind, self.mode, self.uid, self.gid
        )?;
        if let Some((size, digest)) = &self.content {
            write!(f, " {size}B sha256:{}", &digest[..12.min(digest.len())])?;
        }
        if let Some(link) = &self.link {
            write!(f, " -> {link:?}")?;
        }
        if let Some(group) = &self.hardlink_group {
            write!(f, " (hard link of {group:?})")?;
        }
        Ok(())
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Reads the tree under `root` (the root itself as `"."`), without following links.
pub fn snapshot_tree(root: &Path) -> Result<BTreeMap<String, Node>> {
    let mut nodes = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut stack = vec![(root.to_path_buf(), ".".to_string())];
    while let Some((path, rel)) = stack.pop() {
        let meta =
            std::fs::symlink_metadata(&path).context(|| format!("lstat {}", path.display()))?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_file() {
            Kind::File
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&ft) {
            Kind::Fifo
        } else {
            Kind::Other
        };
        let mut node = Node {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            content: None,
            link: None,
            hardlink_group: None,
        };
        match kind {
            Kind::Dir => {
                let read =
                    std::fs::read_dir(&path).context(|| format!("listing {}", path.display()))?;
                for item in read {
                    let item = item.context(|| format!("listing {}", path.display()))?;
                    let name = item.file_name().to_string_lossy().into_owned();
                    let child = if rel == "." {
                        name
                    } else {
                        format!("{rel}/{name}")
                    };
                    stack.push((item.path(), child));
                }
            }
            Kind::Symlink => {
                let target =
                    std::fs::read_link(&path).context(|| format!("readlink {}", path.display()))?;
                node.link = Some(target.to_string_lossy().into_owned());
            }
            Kind::File => {
                node.content = Some((meta.len(), sha256_file(&path)?));
                if meta.nlink() > 1 {
                    inodes
                        .entry((meta.dev(), meta.ino()))
                        .or_default()
                        .push(rel.clone());
                }
            }
            _ => {}
        }
        nodes.insert(rel, node);
    }
    for names in inodes.values() {
        if names.len() < 2 {
            continue;
        }
        let first = names.iter().min().cloned();
        for name in names {
            if let Some(node) = nodes.get_mut(name) {
                node.hardlink_group = first.clone();
            }
        }
    }
    Ok(nodes)
}

/// One member of a tar archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarMember {
    /// Path as stored (PAX `path` and GNU long names applied).
    pub name: String,
    /// Type.
    pub kind: Kind,
    /// Mode bits (`& 0o7777`).
    pub mode: u32,
    /// Owner user ID.
    pub uid: u64,
    /// Owner group ID.
    pub gid: u64,
    /// Size and SHA-256 of a regular file's content.
    pub content: Option<(u64, String)>,
    /// Link target of a symlink or hard link.
    pub link: Option<String>,
}

impl fmt::Display for TarMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} {:04o} {}:{}",
            self.name, self.kind, self.mode, self.uid, self.gid
        )?;
        if let Some((size, digest)) = &self.content {
            write!(f, " {size}B sha256:{}", &digest[..12.min(digest.len())])?;
        }
        if let Some(link) = &self.link {
            write!(f, " -> {link:?}")?;
        }
        Ok(())
    }
}

fn tar_string(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn tar_number(field: &[u8]) -> Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256 (GNU): big-endian, first byte's high bit is the marker
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            value = value
                .checked_mul(256)
                .ok_or_else(|| Error::InvalidArgument("tar number field overflows".to_string()))?
                + u64::from(*b);
        }
        return Ok(value);
    }
    let text = tar_string(field);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8)
        .map_err(|e| Error::InvalidArgument(format!("bad octal field {text:?} in tar header: {e}")))
}

fn pax_records(data: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Ok(len) = std::str::from_utf8(&rest[..space])
            .unwrap_or("")
            .parse::<usize>()
        else {
            break;
        };
        if len == 0 || len > rest.len() || len <= space + 1 {
            break;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|b| *b == b'=') {
            out.insert(
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            );
        }
        rest = &rest[len..];
    }
    out
}

/// Lists the members of an uncompressed tar archive (ustar, PAX and GNU long names).
pub fn read_tar(data: &[u8]) -> Result<Vec<TarMember>> {
    let mut members = Vec::new();
    let mut offset = 0usize;
    let mut pax: HashMap<String, String> = HashMap::new();
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    while offset + 512 <= data.len() {
        let header = &data[offset..offset + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let size = tar_number(&header[124..136])?;
        let body_start = offset + 512;
        let body_end = usize::try_from(size)
            .ok()
            .and_then(|s| body_start.checked_add(s))
            .filter(|end| *end <= data.len())
            .ok_or_else(|| {
                Error::InvalidArgument(format!("tar member at {offset} runs past the end"))
            })?;
        let body = &data[body_start..body_end];
        offset = body_start + (body.len().div_ceil(512)) * 512;
        let typeflag = header[156];
        match typeflag {
            b'x' => {
                pax.extend(pax_records(body));
                continue;
            }
            b'g' => continue,
            b'L' => {
                long_name = Some(tar_string(body));
                continue;
            }
            b'K' => {
                long_link = Some(tar_string(body));
                continue;
            }
            _ => {}
        }
        let mut name = tar_string(&header[0..100]);
        if &header[257..262] == b"ustar" {
            let prefix = tar_string(&header[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        if let Some(n) = long_name.take() {
            name = n;
        }
        let mut link = tar_string(&header[157..257]);
        if let Some(l) = long_link.take() {
            link = l;
        }
        let mut uid = tar_number(&header[108..116])?;
        let mut gid = tar_number(&header[116..124])?;
        if let Some(p) = pax.remove("path") {
            name = p;
        }
        if let Some(l) = pax.remove("linkpath") {
            link = l;
        }
        if let Some(u) = pax.remove("uid").and_then(|v| v.parse().ok()) {
            uid = u;
        }
        if let Some(g) = pax.remove("gid").and_then(|v| v.parse().ok()) {
            gid = g;
        }
        let real_size = pax
            .remove("size")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(size);
        pax.clear();
        let kind = match typeflag {
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            _ => Kind::Other,
        };
        let content = (kind == Kind::File).then(|| (real_size, hex::encode(Sha256::digest(body))));
        members.push(TarMember {
            name,
            kind,
            mode: (tar_number(&header[100..108])? & 0o7777) as u32,
            uid,
            gid,
            content,
            link: matches!(kind, Kind::Symlink | Kind::Hardlink).then_some(link),
        });
    }
    Ok(members)
}

/// The file at `name` inside a tar archive.
pub fn tar_file<'a>(data: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let mut offset = 0usize;
    while offset + 512 <= data.len() {
        let header = &data[offset..offset + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let size = usize::try_from(tar_number(&header[124..136])?)
            .map_err(|_| Error::InvalidArgument("tar member too large".to_string()))?;
        let start = offset + 512;
        let end = start
            .checked_add(size)
            .filter(|end| *end <= data.len())
            .ok_or_else(|| {
                Error::InvalidArgument(format!("tar member at {offset} runs past the end"))
            })?;
        let member = tar_string(&header[0..100]);
        if member.trim_start_matches("./") == name && matches!(header[156], b'0' | 0) {
            return Ok(Some(&data[start..end]));
        }
        offset = start + size.div_ceil(512) * 512;
    }
    Ok(None)
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(|| "running gzip -dc".to_string())?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::Command("gzip has no stdin".to_string()))?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .context(|| "waiting for gzip".to_string())?;
    let _ = writer.join();
    if !output.status.success() {
        return Err(Error::Command(format!(
            "gzip -dc failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

fn blob<'a>(layout: &'a [u8], digest: &str) -> Result<&'a [u8]> {
    let path = format!("blobs/{}", digest.replacen(':', "/", 1));
    tar_file(layout, &path)?
        .ok_or_else(|| Error::InvalidArgument(format!("OCI layout has no blob {digest}")))
}

fn json(data: &[u8], what: &str) -> Result<serde_json::Value> {
    serde_json::from_slice(data)
        .map_err(|e| Error::InvalidArgument(format!("{what} is not JSON: {e}")))
}

/// The image manifests of an OCI layout archive, each as its platform
/// (`os/architecture`) and the member lists of its layers, in order. Attestation manifests
/// (`vnd.docker.reference.type: attestation-manifest`) are left out; nested indexes are
/// followed.
pub fn oci_layers(layout: &[u8]) -> Result<Vec<(String, Vec<Vec<TarMember>>)>> {
    let index = tar_file(layout, "index.json")?
        .ok_or_else(|| Error::InvalidArgument("OCI layout has no index.json".to_string()))?;
    let mut pending = vec![(json(index, "index.json")?, String::new())];
    let mut out = Vec::new();
    while let Some((doc, platform)) = pending.pop() {
        if let Some(manifests) = doc.get("manifests").and_then(|m| m.as_array()) {
            for desc in manifests {
                let attestation = desc
                    .pointer("/annotations/vnd.docker.reference.type")
                    .and_then(|v| v.as_str())
                    == Some("attestation-manifest");
                if attestation {
                    continue;
                }
                let digest = desc
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| Error::InvalidArgument("descriptor without digest".into()))?;
                let platform = match desc.get("platform") {
                    Some(p) => format!(
                        "{}/{}",
                        p.get("os").and_then(|v| v.as_str()).unwrap_or(""),
                        p.get("architecture").and_then(|v| v.as_str()).unwrap_or("")
                    ),
                    None => platform.clone(),
                };
                pending.push((json(blob(layout, digest)?, digest)?, platform));
            }
            continue;
        }
        let Some(layers) = doc.get("layers").and_then(|l| l.as_array()) else {
            continue;
        };
        let mut lists = Vec::new();
        for layer in layers {
            let digest = layer
                .get("digest")
                .and_then(|d| d.as_str())
                .ok_or_else(|| Error::InvalidArgument("layer without digest".into()))?;
            let media = layer
                .get("mediaType")
                .and_then(|m| m.as_str())
                .unwrap_or("");
            let data = blob(layout, digest)?;
            let tar = if media.ends_with("gzip") {
                gunzip(data)?
            } else {
                data.to_vec()
            };
            lists.push(read_tar(&tar)?);
        }
        out.push((platform, lists));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// One way two results differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A path only one side has (`ours` tells which).
    OnlyOne {
        /// The path.
        path: String,
        /// True when only ours has it.
        ours: bool,
        /// What that side has there.
        what: String,
    },
    /// A path both have, described differently.
    Changed {
        /// The path.
        path: String,
        /// Ours.
        ours: String,
        /// buildx's.
        theirs: String,
    },
    /// Anything else (exit status, error text, member order, archive shape).
    Other(String),
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::OnlyOne { path, ours, what } => {
                let side = if *ours { "only ours" } else { "only buildx" };
                write!(f, "{path:?}: {side} has it ({what})")
            }
            Difference::Changed { path, ours, theirs } => {
                write!(f, "{path:?}: ours {ours} / buildx {theirs}")
            }
            Difference::Other(text) => f.write_str(text),
        }
    }
}

/// Every difference between our exported tree and buildx's.
pub fn compare_trees(
    ours: &BTreeMap<String, Node>,
    theirs: &BTreeMap<String, Node>,
) -> Vec<Difference> {
    let mut out = Vec::new();
    for (path, node) in ours {
        match theirs.get(path) {
            None => out.push(Difference::OnlyOne {
                path: path.clone(),
                ours: true,
                what: node.to_string(),
            }),
            Some(other) if other != node => out.push(Difference::Changed {
                path: path.clone(),
                ours: node.to_string(),
                theirs: other.to_string(),
            }),
            Some(_) => {}
        }
    }
    for (path, node) in theirs {
        if !ours.contains_key(path) {
            out.push(Difference::OnlyOne {
                path: path.clone(),
                ours: false,
                what: node.to_string(),
            });
        }
    }
    out
}

/// Every difference between two member lists, member by member in archive order.
pub fn compare_members(label: &str, ours: &[TarMember], theirs: &[TarMember]) -> Vec<Difference> {
    let mut out = Vec::new();
    for i in 0..ours.len().max(theirs.len()) {
        match (ours.get(i), theirs.get(i)) {
            (Some(a), Some(b)) if a != b => out.push(Difference::Changed {
                path: format!("{label}#{i}"),
                ours: a.to_string(),
                theirs: b.to_string(),
            }),
            (Some(a), None) => out.push(Difference::OnlyOne {
                path: format!("{label}#{i}"),
                ours: true,
                what: a.to_string(),
            }),
            (None, Some(b)) => out.push(Difference::OnlyOne {
                path: format!("{label}#{i}"),
                ours: false,
                what: b.to_string(),
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &str, mode: u32) -> Entry {
        Entry::File {
            path: path.into(),
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn snapshots_see_every_property_that_is_compared() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let base = vec![
            file("f", "x", 0o644),
            file("d/g", "y", 0o600),
            Entry::Hardlink {
                path: "d/h".into(),
                target: "d/g".into(),
            },
            Entry::Symlink {
                path: "l".into(),
                target: "d/g".into(),
            },
            Entry::Fifo { path: "p".into() },
        ];
        materialize(a.path(), &base).unwrap();
        materialize(b.path(), &base).unwrap();
        let sa = snapshot_tree(a.path()).unwrap();
        assert!(compare_trees(&sa, &snapshot_tree(b.path()).unwrap()).is_empty());
        assert_eq!(sa["d/h"].hardlink_group.as_deref(), Some("d/g"));
        assert_eq!(sa["p"].kind, Kind::Fifo);

        // content, mode, owner, link text, hard link, presence: each is seen
        std::fs::write(b.path().join("f"), "z").unwrap();
        std::fs::set_permissions(b.path().join("d/g"), PermissionsExt::from_mode(0o4600)).unwrap();
        std::os::unix::fs::lchown(b.path().join("l"), Some(7), Some(8)).unwrap();
        std::fs::remove_file(b.path().join("d/h")).unwrap();
        std::fs::write(b.path().join("d/h"), "y").unwrap();
        std::fs::remove_file(b.path().join("p")).unwrap();
        let diffs = compare_trees(&sa, &snapshot_tree(b.path()).unwrap());
        let paths: Vec<String> = diffs
            .iter()
            .map(|d| match d {
                Difference::OnlyOne { path, .. } | Difference::Changed { path, .. } => path.clone(),
                Difference::Other(t) => t.clone(),
            })
            .collect();
        assert_eq!(paths, ["d/g", "d/h", "f", "l", "p"], "{diffs:?}");
    }

    #[test]
    fn reads_tar_members_written_by_gnu_tar() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}/name", "d".repeat(120));
        materialize(
            dir.path(),
            &[
                file("src/a", "hello", 0o4755),
                Entry::Hardlink {
                    path: "src/b".into(),
                    target: "src/a".into(),
                },
                Entry::Symlink {
                    path: "src/c".into(),
                    target: "a".into(),
                },
                file(&format!("src/{long}"), "", 0o600),
            ],
        )
        .unwrap();
        let out = Command::new("tar")
            .args([
                "--format=pax",
                "--sort=name",
                "--owner=5",
                "--group=6",
                "-cf",
                "-",
                "src",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let members = read_tar(&out.stdout).unwrap();
        let names: Vec<&str> = members
            .iter()
            .map(|m| m.name.trim_end_matches('/'))
            .collect();
        assert!(names.contains(&format!("src/{long}").as_str()), "{names:?}");
        let a = members.iter().find(|m| m.name == "src/a").unwrap();
        assert_eq!((a.kind, a.mode, a.uid, a.gid), (Kind::File, 0o4755, 5, 6));
        assert_eq!(a.content.as_ref().unwrap().0, 5);
        let b = members.iter().find(|m| m.name == "src/b").unwrap();
        assert_eq!((b.kind, b.link.as_deref()), (Kind::Hardlink, Some("src/a")));
        let c = members.iter().find(|m| m.name == "src/c").unwrap();
        assert_eq!((c.kind, c.link.as_deref()), (Kind::Symlink, Some("a")));
        assert_eq!(compare_members("t", &members, &members), vec![]);
        assert_eq!(
            compare_members("t", &members, &members[1..]).len(),
            members.len()
        );
    }
}
