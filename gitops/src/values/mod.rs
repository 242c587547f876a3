//! Format-preserving edits of Helm `values.yaml` files.
//!
//! An edit replaces the bytes of exactly one scalar and nothing else: comments, blank lines,
//! key order, indentation, anchors, aliases, merge keys, flow collections, document markers,
//! a BOM and CRLF line endings stay byte for byte. The text is never re-serialised.
//!
//! How an edit works ([`ValuesDocument::set`]):
//!
//! 1. The text is parsed with `saphyr-parser` (YAML 1.2) into a node tree with byte spans.
//! 2. The [key path](KeyPath) is resolved in the document; every failure says which segment
//!    and which line ([`ValuesError`]).
//! 3. The scalar's exact bytes are located and checked: the text at that position must decode
//!    to the parsed value (plain: equal; single-quoted: `''` unescaped; double-quoted: escapes
//!    decoded).
//! 4. The new value is rendered in the original quote style. A plain scalar stays plain if the
//!    new value is a *safe plain string* ([`is_safe_plain`]); otherwise it is single-quoted
//!    (YAML 1.1/1.2/go-yaml would read `1.10`, `20240101`, `yes`, `on`, `null`, `1e3`, `0x1F`,
//!    `.inf`, … as numbers, booleans or null). Single quotes need no escapes for tags and are
//!    what Helm charts use most.
//! 5. The bytes are spliced, the result is parsed again, and the whole tree is compared with
//!    the original: every node (structure, keys, values, quote styles, anchors, tags, document
//!    boundaries) must be identical except the target, which must hold exactly the new value.
//!    Otherwise the edit is discarded with [`ValuesError::VerificationFailed`].
//!
//! Decisions:
//!
//! * **Multiple documents**: [`ValuesDocument::set`] edits the *first* document, the one Helm
//!   reads; later documents are kept byte for byte. [`ValuesDocument::set_in`] addresses
//!   another document by index.
//! * **Shared values are refused**: if the target (or a mapping/sequence on the way to it)
//!   carries an anchor that an alias uses, or the path runs through an alias, editing would
//!   change every user of the anchor, so [`ValuesError::SharedAnchor`] is returned. A key that
//!   exists only through a merge key (`<<: *base`) gives [`ValuesError::MergedKey`]. An anchor
//!   nobody refers to is fine (the anchor text stays).
//! * **Same value**: setting the value already there is a no-op ([`Change::changed`] is
//!   false), except that a plain scalar that YAML would not read as a string (`tag: 1.10`) is
//!   re-quoted (`tag: '1.10'`), since the chart is then wrong as it stands.
//! * **Empty values** (`tag:` or `tag: # comment`) are filled in after the `:`.
//! * **Not edited**: block scalars (`|`, `>`), multi-line scalars, scalars with a non-string
//!   tag (`!!int 5`), empty sequence items ([`ValuesError::UnsupportedScalar`]).
//! * Values containing line breaks or control characters are refused
//!   ([`ValuesError::InvalidValue`]).

mod image;
mod path;
mod scalar;
mod tree;

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::Path;

pub use image::{
    parse_tag_ref, validate_digest, validate_tag, Digest, DigestPin, ImageKeys, ImageTag,
};
pub use path::{KeyPath, Segment};
pub use scalar::is_safe_plain;
pub use tree::Style as ScalarStyle;

use crate::error::{NodeKind, ValuesError};
use scalar::Location;
use tree::{Kind, Style, Tree};

const STR_TAG: &str = "tag:yaml.org,2002:str";
const NO_FILE: &str = "<input>";

/// The outcome of one [`ValuesDocument::set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key path.
    pub path: KeyPath,
    /// 0-based document index.
    pub document: usize,
    /// 1-based line of the value.
    pub line: usize,
    /// The value before (empty for an empty `key:`).
    pub old_value: String,
    /// The value after.
    pub new_value: String,
    /// Quote style before.
    pub old_style: ScalarStyle,
    /// Quote style after.
    pub new_style: ScalarStyle,
    /// Whether the text changed.
    pub changed: bool,
}

/// A values file held as text, edited in place. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ValuesDocument {
    origin: String,
    text: String,
    tree: Tree,
}

enum Mode {
    Read,
    Write,
}

impl ValuesDocument {
    /// Parses `text`. Errors name the file as `<input>`; see [`ValuesDocument::parse_named`].
    pub fn parse(text: impl Into<String>) -> Result<Self, ValuesError> {
        Self::parse_named(text, NO_FILE)
    }

    /// Parses `text`, naming it `origin` (usually the file path) in errors.
    pub fn parse_named(
        text: impl Into<String>,
        origin: impl Into<String>,
    ) -> Result<Self, ValuesError> {
        let text = text.into();
        let origin = origin.into();
        let tree = Tree::parse(&text).map_err(|e| ValuesError::InvalidYaml {
            file: origin.clone(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        Ok(Self { origin, text, tree })
    }

    /// The current text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Consumes the document, returning the text.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The name used in errors.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of YAML documents in the text.
    pub fn document_count(&self) -> usize {
        self.tree.docs.len()
    }

    /// The scalar value at `path` in the first document (aliases are followed).
    pub fn get(&self, path: &str) -> Result<String, ValuesError> {
        let path = KeyPath::parse(path)?;
        self.get_in(0, &path)
    }

    /// The scalar value at `path` in document `document` (aliases are followed).
    pub fn get_in(&self, document: usize, path: &KeyPath) -> Result<String, ValuesError> {
        let id = self.resolve(document, path, Mode::Read)?;
        match &self.tree.nodes[id].kind {
            Kind::Scalar { value, .. } => Ok(value.clone()),
            _ => Err(ValuesError::NotAScalar {
                file: self.origin.clone(),
                path: path.to_string(),
                found: self.tree.nodes[id].kind_name(),
                line: self.tree.nodes[id].line,
            }),
        }
    }

    /// Sets the scalar at `path` (see [`KeyPath`] for the syntax) in the first document.
    pub fn set(&mut self, path: &str, value: &str) -> Result<Change, ValuesError> {
        let path = KeyPath::parse(path)?;
        self.set_in(0, &path, value)
    }

    /// Sets the scalar at `path` in the first document.
    pub fn set_path(&mut self, path: &KeyPath, value: &str) -> Result<Change, ValuesError> {
        self.set_in(0, path, value)
    }

    /// Applies several edits to the first document, all or nothing.
    pub fn set_all<P: AsRef<str>, V: AsRef<str>>(
        &mut self,
        edits: &[(P, V)],
    ) -> Result<Vec<Change>, ValuesError> {
        let parsed = edits
            .iter()
            .map(|(p, v)| Ok((KeyPath::parse(p.as_ref())?, v.as_ref().to_string())))
            .collect::<Result<Vec<_>, ValuesError>>()?;
        self.set_all_paths(&parsed)
    }

    /// Applies several edits (parsed paths) to the first document, all or nothing.
    pub fn set_all_paths(
        &mut self,
        edits: &[(KeyPath, String)],
    ) -> Result<Vec<Change>, ValuesError> {
        let mut work = self.clone();
        let mut changes = Vec::with_capacity(edits.len());
        for (path, value) in edits {
            changes.push(work.set_in(0, path, value)?);
        }
        *self = work;
        Ok(changes)
    }

    /// Sets the scalar at `path` in document `document` (0-based).
    pub fn set_in(
        &mut self,
        document: usize,
        path: &KeyPath,
        value: &str,
    ) -> Result<Change, ValuesError> {
        let file = self.origin.clone();
        if let Some(reason) = scalar::invalid_value_reason(value) {
            return Err(ValuesError::InvalidValue {
                file,
                path: path.to_string(),
                value: value.to_string(),
                reason: reason.into(),
            });
        }
        let id = self.resolve(document, path, Mode::Write)?;
        let node = &self.tree.nodes[id];
        let unsupported = |reason: String| ValuesError::UnsupportedScalar {
            file: file.clone(),
            path: path.to_string(),
            line: node.line,
            reason,
        };
        let (old_value, old_style) = match &node.kind {
            Kind::Scalar { value, style } => (value.clone(), *style),
            _ => {
                return Err(ValuesError::NotAScalar {
                    file,
                    path: path.to_string(),
                    found: node.kind_name(),
                    line: node.line,
                })
            }
        };
        if let Some(tag) = &node.tag {
            if tag != STR_TAG {
                return Err(unsupported(format!(
                    "it has the explicit tag `{}`; only untagged or `!!str` scalars are edited",
                    short_tag(tag)
                )));
            }
        }
        let loc: Location =
            scalar::locate(&self.text, node, &old_value, old_style).map_err(&unsupported)?;
        if !(loc.start <= loc.end
            && self.text.is_char_boundary(loc.start)
            && self.text.is_char_boundary(loc.end))
        {
            return Err(unsupported(
                "its position could not be determined exactly".into(),
            ));
        }
        let (mut raw, new_style) = scalar::render(value, old_style, node.in_flow);
        let line = self.text[..loc.start].matches('\n').count() + 1;
        let change = Change {
            path: path.clone(),
            document,
            line,
            old_value: old_value.clone(),
            new_value: value.to_string(),
            old_style,
            new_style,
            changed: !(old_value == value && old_style == new_style),
        };
        if !change.changed {
            tracing::debug!(file = %self.origin, path = %path, "value already set; no change");
            return Ok(change);
        }
        if loc.insert {
            raw.insert(0, ' ');
        }
        let mut text = String::with_capacity(self.text.len() + raw.len());
        text.push_str(&self.text[..loc.start]);
        text.push_str(&raw);
        text.push_str(&self.text[loc.end..]);

        let verification = |detail: String| ValuesError::VerificationFailed {
            file: file.clone(),
            path: path.to_string(),
            detail,
        };
        let new_tree = Tree::parse(&text).map_err(|e| {
            verification(format!(
                "the result is not valid YAML at line {}, column {}: {}",
                e.line, e.column, e.message
            ))
        })?;
        let mut expected = HashMap::new();
        expected.insert(id, (value.to_string(), new_style));
        compare_trees(&self.tree, &new_tree, &expected).map_err(verification)?;
        tracing::debug!(
            file = %self.origin, path = %path, line = change.line,
            old = %old_value, new = %value, "values edit applied"
        );
        self.text = text;
        self.tree = new_tree;
        Ok(change)
    }

    fn node_line(&self, id: usize) -> usize {
        self.tree.nodes[id].line
    }

    fn anchor_name(&self, id: usize) -> String {
        self.tree.nodes[id].anchor_name.clone().unwrap_or_default()
    }

    /// Resolves `path` to a node id. In write mode, refuses aliases and shared anchors.
    fn resolve(&self, document: usize, path: &KeyPath, mode: Mode) -> Result<usize, ValuesError> {
        let file = &self.origin;
        let doc = self
            .tree
            .docs
            .get(document)
            .ok_or_else(|| ValuesError::NoDocument {
                file: file.clone(),
                path: path.to_string(),
                document,
                reason: "does not exist",
            })?;
        let mut current = doc.root.ok_or_else(|| ValuesError::NoDocument {
            file: file.clone(),
            path: path.to_string(),
            document,
            reason: "is empty",
        })?;
        let mut chain = vec![];
        let segments = path.segments();
        for (i, seg) in segments.iter().enumerate() {
            current = self.deref_alias(current, path, i, &mode)?;
            chain.push((current, i));
            let node = &self.tree.nodes[current];
            match seg {
                Segment::Key(key) => {
                    let Kind::Mapping { entries, .. } = &node.kind else {
                        return Err(ValuesError::NotAContainer {
                            file: file.clone(),
                            path: path.to_string(),
                            prefix: path.prefix_display(i),
                            segment: seg.to_string(),
                            expected: NodeKind::Mapping,
                            found: node.kind_name(),
                            line: node.line,
                        });
                    };
                    let matches: Vec<&(usize, usize)> = entries
                        .iter()
                        .filter(|(k, _)| self.key_text(*k).as_deref() == Some(key.as_str()))
                        .collect();
                    match matches.as_slice() {
                        [(_, v)] => current = *v,
                        [] => {
                            if let Some(anchor) = self.merged_anchor_with_key(entries, key, 0) {
                                return Err(ValuesError::MergedKey {
                                    file: file.clone(),
                                    path: path.to_string(),
                                    segment: key.clone(),
                                    line: node.line,
                                    anchor,
                                });
                            }
                            return Err(ValuesError::KeyNotFound {
                                file: file.clone(),
                                path: path.to_string(),
                                segment: key.clone(),
                                prefix: path.prefix_display(i),
                                line: node.line,
                            });
                        }
                        [(k1, _), (k2, _), ..] => {
                            return Err(ValuesError::DuplicateKey {
                                file: file.clone(),
                                path: path.to_string(),
                                segment: key.clone(),
                                first_line: self.node_line(*k1),
                                second_line: self.node_line(*k2),
                            })
                        }
                    }
                }
                Segment::Index(index) => {
                    let Kind::Sequence { items, .. } = &node.kind else {
                        return Err(ValuesError::NotAContainer {
                            file: file.clone(),
                            path: path.to_string(),
                            prefix: path.prefix_display(i),
                            segment: seg.to_string(),
                            expected: NodeKind::Sequence,
                            found: node.kind_name(),
                            line: node.line,
                        });
                    };
                    current = *items
                        .get(*index)
                        .ok_or_else(|| ValuesError::IndexOutOfRange {
                            file: file.clone(),
                            path: path.to_string(),
                            index: *index,
                            len: items.len(),
                            line: node.line,
                        })?;
                }
            }
        }
        current = self.deref_alias(current, path, segments.len(), &mode)?;
        chain.push((current, segments.len()));
        if let Mode::Write = mode {
            for &(id, depth) in &chain {
                let node = &self.tree.nodes[id];
                if node.anchor == 0 {
                    continue;
                }
                let Some(lines) = self.tree.alias_lines.get(&node.anchor) else {
                    continue;
                };
                let what = if depth == segments.len() {
                    "the value".to_string()
                } else {
                    format!(
                        "the value sits inside `{}`, which",
                        path.prefix_display(depth)
                    )
                };
                let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                return Err(ValuesError::SharedAnchor {
                    file: file.clone(),
                    path: path.to_string(),
                    anchor: self.anchor_name(id),
                    line: node.line,
                    detail: format!(
                        "{what} is anchored and referenced by {} alias(es) (line(s) {})",
                        lines.len(),
                        lines.join(", ")
                    ),
                });
            }
        }
        Ok(current)
    }

    /// In read mode, follows an alias to its anchor; in write mode an alias is an error.
    fn deref_alias(
        &self,
        id: usize,
        path: &KeyPath,
        depth: usize,
        mode: &Mode,
    ) -> Result<usize, ValuesError> {
        let node = &self.tree.nodes[id];
        let Kind::Alias { anchor } = node.kind else {
            return Ok(id);
        };
        let target = self.tree.anchors.get(&anchor).copied();
        match (mode, target) {
            (Mode::Read, Some(t)) => Ok(t),
            (_, target) => {
                let name = node.anchor_name.clone().unwrap_or_default();
                let line = target.map(|t| self.node_line(t)).unwrap_or(node.line);
                let detail = if depth == path.segments().len() {
                    format!("the value is the alias `*{name}` at line {}", node.line)
                } else {
                    format!(
                        "the path runs through the alias `*{name}` at line {} (`{}`)",
                        node.line,
                        path.prefix_display(depth)
                    )
                };
                Err(ValuesError::SharedAnchor {
                    file: self.origin.clone(),
                    path: path.to_string(),
                    anchor: name,
                    line,
                    detail,
                })
            }
        }
    }

    /// The text of a key node if it is a scalar.
    fn key_text(&self, id: usize) -> Option<String> {
        match &self.tree.nodes[id].kind {
            Kind::Scalar { value, .. } => Some(value.clone()),
            _ => None,
        }
    }

    fn is_merge_key(&self, id: usize) -> bool {
        matches!(&self.tree.nodes[id].kind, Kind::Scalar { value, style: Style::Plain } if value == "<<")
    }

    /// If `key` is provided by a merge key of this mapping, the merged anchor's name.
    fn merged_anchor_with_key(
        &self,
        entries: &[(usize, usize)],
        key: &str,
        depth: usize,
    ) -> Option<String> {
        if depth > 16 {
            return None;
        }
        for (k, v) in entries {
            if !self.is_merge_key(*k) {
                continue;
            }
            let sources: Vec<usize> = match &self.tree.nodes[*v].kind {
                Kind::Sequence { items, .. } => items.clone(),
                _ => vec![*v],
            };
            for src in sources {
                let (target, name) = match &self.tree.nodes[src].kind {
                    Kind::Alias { anchor } => (
                        self.tree.anchors.get(anchor).copied(),
                        self.tree.nodes[src].anchor_name.clone().unwrap_or_default(),
                    ),
                    _ => (Some(src), "(inline)".to_string()),
                };
                let Some(target) = target else { continue };
                if let Kind::Mapping { entries: inner, .. } = &self.tree.nodes[target].kind {
                    if inner
                        .iter()
                        .any(|(ik, _)| self.key_text(*ik).as_deref() == Some(key))
                    {
                        return Some(name);
                    }
                    if let Some(n) = self.merged_anchor_with_key(inner, key, depth + 1) {
                        return Some(n);
                    }
                }
            }
        }
        None
    }
}

impl fmt::Display for ValuesDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(s) => format!("!!{s}"),
        None => tag.to_string(),
    }
}

/// Compares two parses node by node. `expected` maps node ids whose scalar value and style are
/// meant to differ to their new value and style.
fn compare_trees(
    old: &Tree,
    new: &Tree,
    expected: &HashMap<usize, (String, Style)>,
) -> Result<(), String> {
    if old.docs != new.docs {
        return Err(format!(
            "document structure changed ({} document(s) before, {} after)",
            old.docs.len(),
            new.docs.len()
        ));
    }
    if old.nodes.len() != new.nodes.len() {
        return Err(format!(
            "node count changed ({} before, {} after)",
            old.nodes.len(),
            new.nodes.len()
        ));
    }
    for (i, (a, b)) in old.nodes.iter().zip(&new.nodes).enumerate() {
        let at = || format!("node at line {} (was line {})", b.line, a.line);
        if a.anchor != b.anchor || a.anchor_name != b.anchor_name {
            return Err(format!("anchor changed at {}", at()));
        }
        if a.tag != b.tag {
            return Err(format!("tag changed at {}", at()));
        }
        match (&a.kind, &b.kind) {
            (
                Kind::Scalar {
                    value: va,
                    style: sa,
                },
                Kind::Scalar {
                    value: vb,
                    style: sb,
                },
            ) => match expected.get(&i) {
                Some((want, want_style)) => {
                    if vb != want || sb != want_style {
                        return Err(format!(
                                "target at line {} reads back as {vb:?} ({sb:?}), expected {want:?} ({want_style:?})",
                                b.line
                            ));
                    }
                }
                None => {
                    if va != vb || sa != sb {
                        return Err(format!("value {va:?} became {vb:?} at {}", at()));
                    }
                }
            },
            (Kind::Scalar { .. }, _) | (_, Kind::Scalar { .. }) => {
                return Err(format!("node kind changed at {}", at()));
            }
            (ka, kb) => {
                if ka != kb {
                    return Err(format!("structure changed at {}", at()));
                }
            }
        }
    }
    Ok(())
}

/// The result of [`edit_file`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// One entry per requested edit, in order.
    pub changes: Vec<Change>,
    /// Whether the file was rewritten.
    pub changed: bool,
}

/// Applies `edits` to the values file at `path` (first document), all or nothing, and writes
/// the file (atomically, via a temporary file in the same directory, keeping permissions) only
/// if something changed. A symlink is followed and its target rewritten.
pub fn edit_file(path: &Path, edits: &[(KeyPath, String)]) -> Result<FileEdit, ValuesError> {
    edit_file_as(path, &path.display().to_string(), edits)
}

/// [`edit_file`], naming the file `name` in errors (e.g. its repository-relative path).
pub fn edit_file_as(
    path: &Path,
    name: &str,
    edits: &[(KeyPath, String)],
) -> Result<FileEdit, ValuesError> {
    let name = name.to_string();
    let io = |action: &'static str| {
        let name = name.clone();
        move |source: std::io::Error| ValuesError::Io {
            file: name,
            action,
            source,
        }
    };
    let real = std::fs::canonicalize(path).map_err(io("resolving the path"))?;
    let bytes = std::fs::read(&real).map_err(io("reading"))?;
    let text = String::from_utf8(bytes).map_err(|e| ValuesError::NotUtf8 {
        file: name.clone(),
        message: e.utf8_error().to_string(),
    })?;
    let mut doc = ValuesDocument::parse_named(text, name.clone())?;
    let changes = doc.set_all_paths(edits)?;
    let changed = changes.iter().any(|c| c.changed);
    if changed {
        let dir = real.parent().unwrap_or_else(|| Path::new("."));
        let permissions = std::fs::metadata(&real)
            .map_err(io("reading metadata"))?
            .permissions();
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(io("creating a temporary file"))?;
        tmp.write_all(doc.as_str().as_bytes())
            .map_err(io("writing"))?;
        tmp.as_file().sync_all().map_err(io("syncing"))?;
        std::fs::set_permissions(tmp.path(), permissions).map_err(io("setting permissions"))?;
        tmp.persist(&real).map_err(|e| ValuesError::Io {
            file: name.clone(),
            action: "replacing the file",
            source: e.error,
        })?;
        tracing::info!(file = %name, edits = changes.iter().filter(|c| c.changed).count(), "values file updated");
    }
    Ok(FileEdit { changes, changed })
}

/// Sets `(key path, value)` pairs in the values file at `path`; returns whether the file
/// changed. See [`edit_file`].
pub fn set_image<K: AsRef<str>, V: AsRef<str>>(
    path: &Path,
    edits: &[(K, V)],
) -> Result<bool, ValuesError> {
    let parsed = edits
        .iter()
        .map(|(k, v)| Ok((KeyPath::parse(k.as_ref())?, v.as_ref().to_string())))
        .collect::<Result<Vec<_>, ValuesError>>()?;
    Ok(edit_file(path, &parsed)?.changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Tree {
        Tree::parse(text).unwrap_or_else(|e| panic!("{}", e.message))
    }

    #[test]
    fn compare_trees_catches_unintended_changes() {
        let old = tree("a: 1\nb: x\n");
        // Identical: fine.
        assert!(compare_trees(&old, &tree("a: 1\nb: x\n"), &HashMap::new()).is_ok());
        // An unexpected value change.
        assert!(compare_trees(&old, &tree("a: 2\nb: x\n"), &HashMap::new()).is_err());
        // A quote style change is a change too (type may differ).
        assert!(compare_trees(&old, &tree("a: '1'\nb: x\n"), &HashMap::new()).is_err());
        // The intended change (node 2 is the value of `a`).
        let mut expected = HashMap::new();
        expected.insert(2, ("2".to_string(), Style::Plain));
        assert!(compare_trees(&old, &tree("a: 2\nb: x\n"), &expected).is_ok());
        // Intended value but also something else.
        assert!(compare_trees(&old, &tree("a: 2\nb: y\n"), &expected).is_err());
        // Structure changes.
        assert!(compare_trees(&old, &tree("a: 2\nb: [x]\n"), &expected).is_err());
        assert!(compare_trees(&old, &tree("a: 2\nb: x\n---\nc: 1\n"), &expected).is_err());
        assert!(compare_trees(&old, &tree("a: &n 2\nb: x\n"), &expected).is_err());
    }
}
