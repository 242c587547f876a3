//! Phase 2 of the walk: assemble the STAT stream from the tree read in
//! phase 1, sequentially and deterministically (order, IDs, stat fields,
//! hard links).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::read::{Child, Node};
use super::{ContextEntry, EntryKind, FileIdentity, WalkError, WalkOptions};
use crate::fsutil::go_mode;

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

pub(super) fn assemble(
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
