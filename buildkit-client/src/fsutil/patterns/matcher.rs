//! An ordered list of patterns with exceptions (patternmatcher's
//! `PatternMatcher`): the last matching pattern decides, and a pattern that
//! matches a directory matches everything below it.

use super::pattern::Pattern;
use super::PatternError;
use crate::fsutil::go_path::{clean_path, dir_path, go_match};

/// Per-pattern results for a directory, reused when matching its children
/// (patternmatcher's `MatchInfo`). The default value means "no information".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns (patternmatcher's `PatternMatcher`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternMatcher {
    pub(super) patterns: Vec<Pattern>,
    pub(super) exclusions: bool,
}

impl PatternMatcher {
    /// Parses `patterns` the way `patternmatcher.New` does: each is trimmed,
    /// blank ones are skipped, the rest cleaned; a leading `!` (after
    /// cleaning) marks an exception. Note that, unlike
    /// [`parse_ignore_file`](super::parse_ignore_file), this does **not** strip a leading `/`.
    pub fn new<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        let mut exclusions = false;
        for original in patterns {
            let original = original.as_ref();
            let trimmed = original.trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean_path(trimmed);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(PatternError::IllegalExclusion),
                Some(rest) => (true, rest.to_string()),
                None => (false, cleaned),
            };
            if exclusion {
                exclusions = true;
            }
            if go_match(&body, ".").is_err() {
                return Err(PatternError::BadPattern {
                    pattern: original.to_string(),
                });
            }
            out.push(Pattern::compile(original, body, exclusion)?);
        }
        Ok(PatternMatcher {
            patterns: out,
            exclusions,
        })
    }

    /// The parsed patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Matches `path` against each pattern directly, without parent matching
    /// (patternmatcher's `MatchesExact`).
    pub fn matches_exact(&self, path: &str) -> bool {
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches(path) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether `path` or one of its parent directories matches, with later
    /// patterns overriding earlier ones (patternmatcher's
    /// `MatchesOrParentMatches`). `path` must be cleaned and relative.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let parent = dir_path(path);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(path);
            if !hit && parent != "." {
                hit = parent_prefixes(&parent).any(|p| pattern.matches(p));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Matches `path` using the per-pattern results of its parent directory
    /// (patternmatcher's `MatchesUsingParentResults`, what fsutil's walker
    /// uses). Returns the decision and the results to pass to `path`'s
    /// children if it is a directory.
    ///
    /// A pattern that matched the parent counts as matching the child. Note
    /// the upstream subtlety, reproduced here: a pattern skipped at the
    /// parent level (an exception while nothing was matched, or an inclusion
    /// while already matched) is not remembered as matching, even if it
    /// would have. With an empty `parent` (the top level, or no
    /// information) parents are checked directly, as in
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches).
    pub fn matches_using_parent_results(
        &self,
        path: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let inherited = if parent.parent_matched.len() == self.patterns.len() {
            &parent.parent_matched[..]
        } else {
            &[]
        };
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        let mut parent_dir: Option<String> = None;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = inherited.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && inherited.is_empty() {
                    let parent = parent_dir.get_or_insert_with(|| dir_path(path));
                    if parent != "." {
                        hit = parent_prefixes(parent).any(|p| pattern.matches(p));
                    }
                }
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (
            matched,
            MatchInfo {
                parent_matched: info,
            },
        )
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`.
fn parent_prefixes(dir: &str) -> impl Iterator<Item = &str> {
    dir.match_indices('/')
        .map(move |(i, _)| &dir[..i])
        .chain(std::iter::once(dir))
}

/// Go's `patternmatcher.MatchesOrParentMatches(file, patterns)`: parses the
/// patterns, cleans `path`, and never matches `"."`.
pub fn matches_or_parent_matches<S: AsRef<str>>(
    path: &str,
    patterns: &[S],
) -> Result<bool, PatternError> {
    let matcher = PatternMatcher::new(patterns)?;
    let path = clean_path(path);
    if path == "." {
        return Ok(false);
    }
    Ok(matcher.matches_or_parent_matches(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap()
    }

    #[test]
    fn new_cleans_and_validates() {
        let matcher = m(&["  ./a//b/  ", "!c/", "", "   "]);
        let got: Vec<String> = matcher.patterns().iter().map(|p| p.to_string()).collect();
        assert_eq!(got, vec!["a/b", "!c"]);
        assert!(matcher.has_exclusions());
        assert!(!m(&["a"]).has_exclusions());
        assert_eq!(
            PatternMatcher::new(["!"]),
            Err(PatternError::IllegalExclusion)
        );
        assert_eq!(
            PatternMatcher::new(["  !  "]),
            Err(PatternError::IllegalExclusion)
        );
        assert!(matches!(
            PatternMatcher::new(["[-]"]),
            Err(PatternError::BadPattern { .. })
        ));
        assert!(matches!(
            PatternMatcher::new(["a["]),
            Err(PatternError::BadPattern { .. })
        ));
        assert!(matches!(
            PatternMatcher::new(["a\\"]),
            Err(PatternError::BadPattern { .. })
        ));
        // The leading slash is not stripped by the matcher itself.
        assert!(!m(&["/foo"]).matches_or_parent_matches("foo"));
        // `!` is split off after cleaning: `!./foo` is the exception `./foo`.
        assert_eq!(m(&["!./foo"]).patterns()[0].as_str(), "./foo");
    }

    #[test]
    fn exact_matching_with_exceptions() {
        let matcher = m(&["*.md", "!README.md"]);
        assert!(matcher.matches_exact("notes.md"));
        assert!(!matcher.matches_exact("README.md"));
        assert!(!matcher.matches_exact("main.go"));
        // Last match wins.
        let matcher = m(&["!README.md", "*.md"]);
        assert!(matcher.matches_exact("README.md"));
        let matcher = m(&["*.md", "!README.md", "README*"]);
        assert!(matcher.matches_exact("README.md"));
    }

    #[test]
    fn parent_matching() {
        let matcher = m(&["node_modules"]);
        assert!(matcher.matches_or_parent_matches("node_modules"));
        assert!(matcher.matches_or_parent_matches("node_modules/a/b.js"));
        assert!(!matcher.matches_or_parent_matches("src/node_modules/a.js"));
        let matcher = m(&["**/node_modules"]);
        assert!(matcher.matches_or_parent_matches("src/node_modules/a.js"));
        let matcher = m(&["docs", "!docs/keep"]);
        assert!(matcher.matches_or_parent_matches("docs/other.md"));
        assert!(!matcher.matches_or_parent_matches("docs/keep"));
        assert!(!matcher.matches_or_parent_matches("docs/keep/inner.md"));
        let matcher = m(&["a/*/c"]);
        assert!(matcher.matches_or_parent_matches("a/b/c/d/e"));
        assert!(!matcher.matches_or_parent_matches("a/b"));
        assert_eq!(matches_or_parent_matches("./x/y", &["x"]), Ok(true));
        assert_eq!(matches_or_parent_matches(".", &["*"]), Ok(false));
    }

    /// Walks `path`'s components threading MatchInfo, like fsutil does.
    fn via_parents(matcher: &PatternMatcher, path: &str) -> bool {
        let mut info = MatchInfo::default();
        let mut result = false;
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let (m, next) = matcher.matches_using_parent_results(&prefix, &info);
            result = m;
            info = next;
        }
        result
    }

    #[test]
    fn parent_results_agree_in_ordinary_cases() {
        let sets: &[&[&str]] = &[
            &["node_modules"],
            &["docs", "!docs/keep"],
            &["*.md", "!README.md"],
            &["a/**", "!a/b/**"],
            &["**/target", "!**/target/keep"],
            &["build", "!build/out", "build/out/tmp"],
        ];
        let paths = [
            "node_modules/x",
            "docs/keep/a",
            "docs/other",
            "x/README.md",
            "README.md",
            "a/b/c",
            "a/c",
            "crate/target/keep/x",
            "crate/target/y",
            "build/out/tmp/z",
            "build/out/z",
            "build/q",
        ];
        for set in sets {
            let matcher = m(set);
            for path in paths {
                assert_eq!(
                    via_parents(&matcher, path),
                    matcher.matches_or_parent_matches(path),
                    "{set:?} {path}"
                );
            }
        }
    }

    #[test]
    fn parent_results_reproduce_upstream_skip_quirk() {
        // At "a" the exception is skipped (nothing matched yet), so it is not
        // remembered; at "a/b" it is tested against "a/b" only.
        let matcher = m(&["*/b", "!a"]);
        assert!(via_parents(&matcher, "a/b"));
        assert!(!matcher.matches_or_parent_matches("a/b"));
        // Without parent information the parents are checked directly.
        assert!(
            !matcher
                .matches_using_parent_results("a/b", &MatchInfo::default())
                .0
        );
        // Mismatched info is treated as absent.
        let other = m(&["x", "y", "z"]);
        let (_, foreign) = other.matches_using_parent_results("x", &MatchInfo::default());
        assert!(!matcher.matches_using_parent_results("a/b", &foreign).0);
    }

    #[test]
    fn exception_reincludes_below_excluded_dir() {
        let matcher = m(&["vendor", "!vendor/keep.txt"]);
        assert!(via_parents(&matcher, "vendor"));
        assert!(via_parents(&matcher, "vendor/other"));
        assert!(!via_parents(&matcher, "vendor/keep.txt"));
    }
}
