//! The receiver's check of a STAT stream (fsutil `validator.go`): clean
//! relative paths, each directory's entries in increasing name order,
//! parents announced first.

use crate::fsutil::go_path::{base_path, clean_path, dir_path, join_path};
use crate::fsutil::walk::{ContextEntry, EntryKind};

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
}
