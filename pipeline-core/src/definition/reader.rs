//! A typed reader over the spanned tree: every lookup knows the key path, every error carries
//! the file, line, column and key.

use super::error::DefinitionError;
use super::yaml::{Node, Value};

/// A string from the file with its key path and position, kept until parameters are
/// substituted and the value validated, so later errors still point at the right line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str {
    pub value: String,
    pub key: String,
    pub line: usize,
    pub column: usize,
}

impl Str {
    /// An error about this value.
    pub fn invalid(&self, file: &str, reason: impl Into<String>) -> DefinitionError {
        DefinitionError::Invalid {
            file: file.to_string(),
            line: self.line,
            column: self.column,
            key: self.key.clone(),
            reason: reason.into(),
        }
    }
}

/// Joins a key path: `a` + `b` = `a.b`; the root has an empty path.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn wrong_type(
    file: &str,
    key: &str,
    node: &Node,
    expected: &'static str,
) -> DefinitionError {
    DefinitionError::WrongType {
        file: file.to_string(),
        line: node.line,
        column: node.column,
        key: key.to_string(),
        expected,
        found: node.kind(),
    }
}

/// A scalar node as a string (`None` for null); collections are a type error.
pub(crate) fn scalar(file: &str, key: &str, node: &Node) -> Result<Option<Str>, DefinitionError> {
    if node.is_null() {
        return Ok(None);
    }
    match &node.value {
        Value::Scalar { text, .. } => Ok(Some(Str {
            value: text.clone(),
            key: key.to_string(),
            line: node.line,
            column: node.column,
        })),
        _ => Err(wrong_type(file, key, node, "a string")),
    }
}

/// A mapping being read.
pub(crate) struct Map<'a> {
    pub file: &'a str,
    pub path: String,
    pub node: &'a Node,
    entries: Vec<(String, &'a Node, &'a Node)>,
}

impl<'a> Map<'a> {
    /// Reads `node` as a mapping whose keys must be among `known` (an empty `known` allows
    /// any key). Unknown and duplicate keys are errors naming the key and its line.
    pub fn new(
        file: &'a str,
        path: &str,
        node: &'a Node,
        known: &[&'static str],
    ) -> Result<Self, DefinitionError> {
        let Value::Mapping(pairs) = &node.value else {
            return Err(wrong_type(file, path_or_root(path), node, "a mapping"));
        };
        let mut entries: Vec<(String, &'a Node, &'a Node)> = Vec::new();
        for (key, value) in pairs {
            let name = match &key.value {
                Value::Scalar { text, .. } => text.clone(),
                _ => {
                    return Err(DefinitionError::WrongType {
                        file: file.to_string(),
                        line: key.line,
                        column: key.column,
                        key: join(path, "<key>"),
                        expected: "a string key",
                        found: key.kind(),
                    })
                }
            };
            if let Some((_, first, _)) = entries.iter().find(|(n, _, _)| *n == name) {
                return Err(DefinitionError::DuplicateKey {
                    file: file.to_string(),
                    line: key.line,
                    column: key.column,
                    key: join(path, &name),
                    first_line: first.line,
                });
            }
            if !known.is_empty() && !known.contains(&name.as_str()) {
                return Err(DefinitionError::UnknownKey {
                    file: file.to_string(),
                    line: key.line,
                    column: key.column,
                    key: join(path, &name),
                    expected: known.to_vec(),
                });
            }
            entries.push((name, key, value));
        }
        Ok(Self {
            file,
            path: path.to_string(),
            node,
            entries,
        })
    }

    /// The full path of `key` in this mapping.
    pub fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `key`, if present and not null.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(n, _, _)| n == key)
            .map(|(_, _, v)| *v)
            .filter(|v| !v.is_null())
    }

    /// The key node of `key`, if present.
    pub fn key_node(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(n, _, _)| n == key)
            .map(|(_, k, _)| *k)
    }

    /// Whether `key` is present (even with a null value).
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(n, _, _)| n == key)
    }

    /// All entries, in document order: (key, key node, value node).
    pub fn entries(&self) -> impl Iterator<Item = &(String, &'a Node, &'a Node)> {
        self.entries.iter()
    }

    /// An error at this mapping: `key` is required.
    pub fn missing(&self, key: &str) -> DefinitionError {
        DefinitionError::MissingKey {
            file: self.file.to_string(),
            line: self.node.line,
            column: self.node.column,
            key: self.key_path(key),
        }
    }

    /// An error at the key `key` (or at the mapping when the key is absent).
    pub fn invalid(&self, key: &str, reason: impl Into<String>) -> DefinitionError {
        let at = self.key_node(key).unwrap_or(self.node);
        DefinitionError::Invalid {
            file: self.file.to_string(),
            line: at.line,
            column: at.column,
            key: self.key_path(key),
            reason: reason.into(),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<Str>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(node) => scalar(self.file, &self.key_path(key), node),
        }
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<Str, DefinitionError> {
        if let Some(node) = self.entries.iter().find(|(n, _, _)| n == key).map(|e| e.2) {
            if node.is_null() {
                return Err(wrong_type(self.file, &self.key_path(key), node, "a string"));
            }
        }
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional boolean (`true` or `false`, unquoted).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, DefinitionError> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        match &node.value {
            Value::Scalar {
                text, plain: true, ..
            } => match text.as_str() {
                "true" | "True" | "TRUE" => Ok(Some(true)),
                "false" | "False" | "FALSE" => Ok(Some(false)),
                _ => Err(wrong_type(
                    self.file,
                    &self.key_path(key),
                    node,
                    "a boolean (true or false)",
                )),
            },
            _ => Err(wrong_type(
                self.file,
                &self.key_path(key),
                node,
                "a boolean (true or false)",
            )),
        }
    }

    /// An optional nested mapping with the given keys.
    pub fn opt_map(
        &self,
        key: &str,
        known: &[&'static str],
    ) -> Result<Option<Map<'a>>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(node) => Map::new(self.file, &self.key_path(key), node, known).map(Some),
        }
    }

    /// A required nested mapping.
    pub fn map(&self, key: &str, known: &[&'static str]) -> Result<Map<'a>, DefinitionError> {
        self.opt_map(key, known)?.ok_or_else(|| self.missing(key))
    }

    /// An optional sequence: each item with its path (`key[i]`).
    pub fn opt_seq(&self, key: &str) -> Result<Option<Vec<(String, &'a Node)>>, DefinitionError> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        let path = self.key_path(key);
        match &node.value {
            Value::Sequence(items) => Ok(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{path}[{i}]"), item))
                    .collect(),
            )),
            _ => Err(wrong_type(self.file, &path, node, "a list")),
        }
    }

    /// An optional list of strings.
    pub fn opt_str_list(&self, key: &str) -> Result<Option<Vec<Str>>, DefinitionError> {
        let Some(items) = self.opt_seq(key)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (path, item) in items {
            match scalar(self.file, &path, item)? {
                Some(s) => out.push(s),
                None => return Err(wrong_type(self.file, &path, item, "a string")),
            }
        }
        Ok(Some(out))
    }

    /// An optional mapping of strings to strings (`build-args`, `labels`, `parameters`).
    /// Keys keep their position; null values are empty strings.
    pub fn opt_str_map(&self, key: &str) -> Result<Option<Vec<(Str, Str)>>, DefinitionError> {
        let Some(map) = self.opt_map(key, &[])? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for (name, key_node, value) in map.entries() {
            let path = map.key_path(name);
            let key_str = Str {
                value: name.clone(),
                key: path.clone(),
                line: key_node.line,
                column: key_node.column,
            };
            let value_str = scalar(self.file, &path, value)?.unwrap_or(Str {
                value: String::new(),
                key: path.clone(),
                line: value.line,
                column: value.column,
            });
            out.push((key_str, value_str));
        }
        Ok(Some(out))
    }
}

fn path_or_root(path: &str) -> &str {
    if path.is_empty() {
        "<root>"
    } else {
        path
    }
}
