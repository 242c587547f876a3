//! Errors of reading and resolving a pipeline definition. Every error that comes from the file
//! names the file, the line, the column and the key (as a path such as
//! `chart.values[0].images[1].tag`).

use cicd_agents_types::{ErrorKind, HasKind};
use std::path::PathBuf;

/// A pipeline definition is not valid, or a parameter override is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid YAML.
    #[error("{file}:{line}:{column}: not valid YAML: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A key the format does not know (a typo, or a key in the wrong section).
    #[error(
        "{file}:{line}:{column}: unknown key `{key}`{}",
        expected_list(expected)
    )]
    UnknownKey {
        /// File name.
        file: String,
        /// 1-based line of the key.
        line: usize,
        /// 1-based column of the key.
        column: usize,
        /// The key's full path, e.g. `build.imgaes`.
        key: String,
        /// The keys allowed at that place.
        expected: Vec<&'static str>,
    },
    /// A key occurs twice in one mapping.
    #[error("{file}:{line}:{column}: duplicate key `{key}` (first at line {first_line})")]
    DuplicateKey {
        /// File name.
        file: String,
        /// 1-based line of the second occurrence.
        line: usize,
        /// 1-based column of the second occurrence.
        column: usize,
        /// The key's full path.
        key: String,
        /// Line of the first occurrence.
        first_line: usize,
    },
    /// A value of the wrong type (a mapping where a string belongs, `"yes"` for a boolean, …).
    #[error("{file}:{line}:{column}: `{key}`: expected {expected}, found {found}")]
    WrongType {
        /// File name.
        file: String,
        /// 1-based line of the value.
        line: usize,
        /// 1-based column of the value.
        column: usize,
        /// The key's full path.
        key: String,
        /// What the format wants.
        expected: &'static str,
        /// What the file has.
        found: &'static str,
    },
    /// A required key is missing.
    #[error("{file}:{line}:{column}: missing required key `{key}`")]
    MissingKey {
        /// File name.
        file: String,
        /// 1-based line of the mapping that lacks the key.
        line: usize,
        /// 1-based column of that mapping.
        column: usize,
        /// The missing key's full path.
        key: String,
    },
    /// A value that has the right type but is not acceptable (an inline token, a bad tag, an
    /// unknown parameter in `${…}`, two mutually exclusive keys, …).
    #[error("{file}:{line}:{column}: `{key}`: {reason}")]
    Invalid {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key's full path.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An override names a parameter the definition does not have.
    #[error("unknown parameter `{name}` in the overrides; the pipeline's parameters are: {}", known.join(", "))]
    UnknownParameter {
        /// The name given.
        name: String,
        /// The parameters that exist.
        known: Vec<String>,
    },
    /// An override is malformed (`--set` without `=`) or its value is not acceptable.
    #[error("invalid override `{text}`: {reason}")]
    InvalidOverride {
        /// The override as given (`name=value`).
        text: String,
        /// What is wrong.
        reason: String,
    },
}

fn expected_list(expected: &[&'static str]) -> String {
    if expected.is_empty() {
        String::new()
    } else {
        format!(" (expected one of: {})", expected.join(", "))
    }
}

impl DefinitionError {
    /// Whether the definition (or an override) is at fault rather than the file system: true
    /// for everything but an I/O error other than a missing file.
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }

    /// The 1-based line the error points at, if it comes from the file.
    pub fn line(&self) -> Option<usize> {
        match self {
            DefinitionError::Syntax { line, .. }
            | DefinitionError::UnknownKey { line, .. }
            | DefinitionError::DuplicateKey { line, .. }
            | DefinitionError::WrongType { line, .. }
            | DefinitionError::MissingKey { line, .. }
            | DefinitionError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The key path the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            DefinitionError::UnknownKey { key, .. }
            | DefinitionError::DuplicateKey { key, .. }
            | DefinitionError::WrongType { key, .. }
            | DefinitionError::MissingKey { key, .. }
            | DefinitionError::Invalid { key, .. } => Some(key),
            DefinitionError::UnknownParameter { name, .. } => Some(name),
            _ => None,
        }
    }
}

impl HasKind for DefinitionError {
    /// [`ErrorKind::InvalidInput`], except [`ErrorKind::Io`] for a file that exists but cannot
    /// be read.
    fn kind(&self) -> ErrorKind {
        match self {
            DefinitionError::Io { source, .. }
                if !matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::InvalidData
                ) =>
            {
                ErrorKind::Io
            }
            _ => ErrorKind::InvalidInput,
        }
    }
}
