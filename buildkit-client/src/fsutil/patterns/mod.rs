//! `.dockerignore`-style path patterns, with the semantics of
//! `github.com/moby/patternmatcher` (the matcher BuildKit and fsutil use),
//! plus the include/exclude decision logic of fsutil's filtering walker.
//!
//! # Pattern syntax
//!
//! A pattern is cleaned like Go's `filepath.Clean` (duplicate slashes, `.`
//! and resolvable `..` elements and trailing slashes go away). A leading `!`
//! makes it an *exception*. Paths are relative, `/`-separated, and matched
//! whole:
//!
//! * `*` matches any run of characters except `/`; `?` one character except `/`.
//! * `[abc]`, `[a-z]`, `[^a-z]` are character classes.
//! * `\x` matches `x` literally.
//! * `**` matches any number of directories: `**/foo`, `a/**/b`; a trailing
//!   `/**` matches everything below a directory (but not the directory).
//!
//! Patterns are evaluated in order and the *last* pattern that matches
//! decides; a pattern that matches a directory matches everything below it.
//!
//! # Fidelity notes
//!
//! Upstream turns a pattern into a Go regular expression. This module
//! interprets the same translation directly, including its quirks (for
//! example `**foo` used as a plain suffix test, or `^` acting as an anchor
//! in patterns that contain other wildcards). A few constructs whose upstream
//! meaning is an accident of that translation (a `*` or `?` inside `[...]`,
//! POSIX classes like `[[:alpha:]]`, regex escapes such as `\b`, `\x41`,
//! `\p{L}`) are rejected with [`PatternError::Unsupported`] instead of being
//! guessed at. Upstream compiles patterns lazily and reports such errors at
//! the first match; this module reports them when the matcher is built.
//!
//! # Files
//!
//! * `pattern.rs`: one pattern's syntax, compilation and matching.
//! * `matcher.rs`: an ordered list of patterns with exceptions and parent
//!   directories.
//! * `filter.rs`: fsutil's include/exclude evaluation over a tree.
//! * `ignore_file.rs`: the text of an ignore file to patterns.

mod filter;
mod ignore_file;
mod matcher;
mod pattern;

pub use filter::{FilterDecision, FilterState, PathFilter};
pub use ignore_file::parse_ignore_file;
pub use matcher::{matches_or_parent_matches, MatchInfo, PatternMatcher};
pub use pattern::Pattern;

pub use crate::fsutil::go_path::clean_path;

/// Errors from parsing patterns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A pattern consisting of a lone `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// Malformed syntax (what Go reports as `filepath.ErrBadPattern`).
    #[error("syntax error in pattern {pattern:?}")]
    BadPattern {
        /// The offending pattern, as given.
        pattern: String,
    },
    /// Valid upstream, but relying on regular-expression accidents this
    /// implementation does not reproduce.
    #[error("unsupported construct in pattern {pattern:?}: {detail}")]
    Unsupported {
        /// The offending pattern, as given.
        pattern: String,
        /// What is not supported.
        detail: &'static str,
    },
}
