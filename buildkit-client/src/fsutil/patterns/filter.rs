//! fsutil's include/exclude evaluation (`filter.go`): which paths of a tree
//! the include and exclude pattern lists select, and which directories the
//! walker need not enter.

use super::matcher::{MatchInfo, PatternMatcher};
use super::pattern::Pattern;
use super::PatternError;

/// Characters whose presence (after stripping a trailing `/**` or `/*`)
/// means a pattern is not a plain path prefix (fsutil `filter.go`).
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// Include and exclude patterns combined the way fsutil's `filterFS` walks
/// a tree (`filter.go`).
///
/// * A path is *included* when it, or a parent directory, matches the
///   include patterns (if there are any); *excluded* when it, or a parent,
///   matches the exclude patterns. Exceptions (`!`) work within each list.
/// * A directory that is not itself included, or is excluded, is still
///   entered when something below it could be included; it is then sent
///   only if something below it is (the walker handles that).
/// * A directory is skipped outright (not entered) when no pattern could
///   select anything below it. fsutil only attempts this when the relevant
///   patterns are plain paths (no wildcards once a trailing `/**` or `/*` is
///   removed); otherwise every directory is entered.
#[derive(Debug, Clone)]
pub struct PathFilter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    only_prefix_includes: bool,
    only_prefix_exclude_exceptions: bool,
}

/// Per-directory matcher state, passed from a directory to its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterState {
    include: MatchInfo,
    exclude: MatchInfo,
}

/// What to do with one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDecision {
    /// Do not send it; if it is a directory, do not enter it.
    Prune,
    /// Visit it.
    Visit {
        /// Whether the path is selected by itself. Directories that are not
        /// are still entered and sent once a descendant is.
        selected: bool,
        /// State to pass to the children (meaningful for directories).
        state: FilterState,
    },
}

impl PathFilter {
    /// Builds a filter. An empty `includes` list means "everything"; an
    /// empty `excludes` list means "nothing excluded". (A non-empty list of
    /// blank patterns gives a matcher with no patterns, which for includes
    /// selects nothing, as upstream.)
    pub fn new<S: AsRef<str>>(includes: &[S], excludes: &[S]) -> Result<Self, PatternError> {
        let include = if includes.is_empty() {
            None
        } else {
            Some(PatternMatcher::new(includes)?)
        };
        let exclude = if excludes.is_empty() {
            None
        } else {
            Some(PatternMatcher::new(excludes)?)
        };
        let plain = |p: &Pattern| !p.without_trailing_glob().contains(PATTERN_CHARS);
        let only_prefix_includes = include
            .as_ref()
            .is_none_or(|m| m.patterns.iter().filter(|p| !p.exclusion).all(plain));
        let only_prefix_exclude_exceptions = exclude
            .as_ref()
            .is_none_or(|m| m.patterns.iter().filter(|p| p.exclusion).all(plain));
        Ok(PathFilter {
            include,
            exclude,
            only_prefix_includes,
            only_prefix_exclude_exceptions,
        })
    }

    /// A filter that selects everything.
    pub fn everything() -> Self {
        PathFilter {
            include: None,
            exclude: None,
            only_prefix_includes: true,
            only_prefix_exclude_exceptions: true,
        }
    }

    /// Whether the filter can reject anything.
    pub fn is_noop(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// The include matcher, if any.
    pub fn include_matcher(&self) -> Option<&PatternMatcher> {
        self.include.as_ref()
    }

    /// The exclude matcher, if any.
    pub fn exclude_matcher(&self) -> Option<&PatternMatcher> {
        self.exclude.as_ref()
    }

    /// Decides about `path` (relative, cleaned), given its parent's state
    /// (`FilterState::default()` for top-level entries).
    pub fn evaluate(&self, path: &str, is_dir: bool, parent: &FilterState) -> FilterDecision {
        let mut state = FilterState::default();
        let mut selected = true;

        if let Some(include) = &self.include {
            let (matched, info) = include.matches_using_parent_results(path, &parent.include);
            state.include = info;
            if !matched {
                if is_dir
                    && self.only_prefix_includes
                    && !prefix_may_match_below(include, path, false)
                {
                    return FilterDecision::Prune;
                }
                selected = false;
            }
        }

        if let Some(exclude) = &self.exclude {
            let (matched, info) = exclude.matches_using_parent_results(path, &parent.exclude);
            state.exclude = info;
            if matched {
                if is_dir
                    && self.only_prefix_exclude_exceptions
                    && !prefix_may_match_below(exclude, path, true)
                {
                    return FilterDecision::Prune;
                }
                selected = false;
            }
        }

        FilterDecision::Visit { selected, state }
    }

    /// Whether a directory the filter rejects may still contain paths it
    /// selects ("could a child still be re-included?"). Always true when the
    /// relevant patterns contain wildcards, since fsutil then enters every
    /// directory.
    pub fn may_select_below(&self, dir: &str) -> bool {
        match self.evaluate(dir, true, &FilterState::default()) {
            FilterDecision::Prune => false,
            FilterDecision::Visit { .. } => true,
        }
    }
}

/// Whether some pattern of the given polarity (inclusions when
/// `exceptions` is false, exceptions when true), with its trailing glob
/// removed, lies strictly below `dir`.
fn prefix_may_match_below(matcher: &PatternMatcher, dir: &str, exceptions: bool) -> bool {
    if exceptions && !matcher.exclusions {
        return false;
    }
    let dir_slash = format!("{dir}/");
    matcher
        .patterns
        .iter()
        .filter(|p| p.exclusion == exceptions)
        .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::patterns::parse_ignore_file;

    fn m(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap()
    }

    fn decide(filter: &PathFilter, path: &str, is_dir: bool) -> FilterDecision {
        // Thread the state down from the top, treating ancestors as dirs.
        let mut state = FilterState::default();
        let parts: Vec<&str> = path.split('/').collect();
        let mut prefix = String::new();
        for (i, part) in parts.iter().enumerate() {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let last = i + 1 == parts.len();
            match filter.evaluate(&prefix, if last { is_dir } else { true }, &state) {
                FilterDecision::Prune => return FilterDecision::Prune,
                FilterDecision::Visit {
                    selected,
                    state: next,
                } => {
                    if last {
                        return FilterDecision::Visit {
                            selected,
                            state: next,
                        };
                    }
                    state = next;
                }
            }
        }
        FilterDecision::Prune
    }

    fn selected(d: &FilterDecision) -> Option<bool> {
        match d {
            FilterDecision::Prune => None,
            FilterDecision::Visit { selected, .. } => Some(*selected),
        }
    }

    #[test]
    fn filter_excludes_and_prunes() {
        let filter = PathFilter::new::<&str>(&[], &["node_modules", "*.log"]).unwrap();
        assert_eq!(selected(&decide(&filter, "node_modules", true)), None);
        assert_eq!(selected(&decide(&filter, "app.log", false)), Some(false));
        assert_eq!(selected(&decide(&filter, "src", true)), Some(true));
        assert_eq!(selected(&decide(&filter, "src/main.rs", false)), Some(true));
        assert!(!filter.may_select_below("node_modules"));
        assert!(filter.may_select_below("src"));
    }

    #[test]
    fn filter_descends_when_an_exception_lies_below() {
        let filter = PathFilter::new::<&str>(&[], &["vendor", "!vendor/keep"]).unwrap();
        // "vendor" is excluded but entered, because "vendor/keep" lies below.
        assert_eq!(selected(&decide(&filter, "vendor", true)), Some(false));
        assert_eq!(selected(&decide(&filter, "vendor/keep", false)), Some(true));
        assert_eq!(
            selected(&decide(&filter, "vendor/other", false)),
            Some(false)
        );
        // Sibling dirs that are excluded with no exception below are pruned.
        assert_eq!(selected(&decide(&filter, "vendor/sub", true)), None);
        let filter = PathFilter::new::<&str>(&[], &["vendor", "!vendor/a/**"]).unwrap();
        assert_eq!(selected(&decide(&filter, "vendor/a", true)), Some(false));
        assert_eq!(selected(&decide(&filter, "vendor/a/x", false)), Some(true));
        // Wildcard exceptions: every excluded directory is entered.
        let filter = PathFilter::new::<&str>(&[], &["vendor", "!**/*.keep"]).unwrap();
        assert_eq!(selected(&decide(&filter, "vendor/deep", true)), Some(false));
        assert_eq!(
            selected(&decide(&filter, "vendor/deep/x.keep", false)),
            Some(true)
        );
        // No exceptions at all: prune.
        let filter = PathFilter::new::<&str>(&[], &["vendor"]).unwrap();
        assert_eq!(selected(&decide(&filter, "vendor", true)), None);
    }

    #[test]
    fn filter_includes() {
        let filter = PathFilter::new::<&str>(&["src/lib", "Dockerfile"], &[]).unwrap();
        assert_eq!(selected(&decide(&filter, "Dockerfile", false)), Some(true));
        assert_eq!(selected(&decide(&filter, "README", false)), Some(false));
        // Parents of an include are entered but not selected by themselves.
        assert_eq!(selected(&decide(&filter, "src", true)), Some(false));
        // Everything below an included directory is included.
        assert_eq!(selected(&decide(&filter, "src/lib", true)), Some(true));
        assert_eq!(
            selected(&decide(&filter, "src/lib/a/b.rs", false)),
            Some(true)
        );
        // Unrelated directories are pruned (plain include patterns).
        assert_eq!(selected(&decide(&filter, "docs", true)), None);
        assert_eq!(selected(&decide(&filter, "src/bin", true)), None);
        // Wildcard includes: directories are entered.
        let filter = PathFilter::new::<&str>(&["**/*.rs"], &[]).unwrap();
        assert_eq!(selected(&decide(&filter, "docs", true)), Some(false));
        assert_eq!(selected(&decide(&filter, "docs/x.rs", false)), Some(true));
        // Include exceptions.
        let filter = PathFilter::new::<&str>(&["src", "!src/gen"], &[]).unwrap();
        // "src/gen" is not included and no inclusion lies below it: pruned.
        assert_eq!(selected(&decide(&filter, "src/gen", true)), None);
        assert_eq!(selected(&decide(&filter, "src/gen.rs", false)), Some(true));
        assert_eq!(selected(&decide(&filter, "src/main.rs", false)), Some(true));
        // Blank include patterns select nothing.
        let filter = PathFilter::new(&["  "], &[]).unwrap();
        assert_eq!(selected(&decide(&filter, "a", false)), Some(false));
    }

    #[test]
    fn filter_include_and_exclude_combined() {
        let filter = PathFilter::new(&["app"], &["app/tmp"]).unwrap();
        assert_eq!(selected(&decide(&filter, "app/main", false)), Some(true));
        assert_eq!(selected(&decide(&filter, "app/tmp", true)), None);
        assert_eq!(selected(&decide(&filter, "other", true)), None);
    }

    #[test]
    fn trailing_glob_stripping() {
        let p = m(&["a/b/**"]);
        assert_eq!(p.patterns()[0].without_trailing_glob(), "a/b");
        let p = m(&["a/*/**"]);
        assert_eq!(p.patterns()[0].without_trailing_glob(), "a");
        let p = m(&["a/*"]);
        assert_eq!(p.patterns()[0].without_trailing_glob(), "a");
        let p = m(&["*"]);
        assert_eq!(p.patterns()[0].without_trailing_glob(), "*");
    }

    #[test]
    fn dockerignore_end_to_end() {
        let patterns = parse_ignore_file(
            "# build outputs\n/target\n**/*.tmp\nnode_modules\n*.md\n!README.md\ndocs/**\n!docs/public/**\n",
        );
        let filter = PathFilter::new::<String>(&[], &patterns).unwrap();
        let cases = [
            ("target", true, None),
            ("src/target", true, Some(true)),
            ("src/a.tmp", false, Some(false)),
            ("a.tmp", false, Some(false)),
            ("node_modules", true, None),
            ("CHANGELOG.md", false, Some(false)),
            ("README.md", false, Some(true)),
            ("sub/README.md", false, Some(true)),
            ("docs", true, Some(true)),
            ("docs/internal", true, None),
            ("docs/public", true, Some(false)),
            ("docs/public/index.html", false, Some(true)),
        ];
        for (path, is_dir, want) in cases {
            assert_eq!(selected(&decide(&filter, path, is_dir)), want, "{path}");
        }
    }
}
