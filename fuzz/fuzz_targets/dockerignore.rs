//! `.dockerignore` parsing and matching: patterns from an ignore file (or given directly as
//! include/exclude lists) against arbitrary paths.
//!
//! Input: `ignore file NUL include patterns (one a line) NUL paths (one a line)`.
//!
//! Invariants: nothing panics; `clean_path` is idempotent; matching with no parent information
//! equals `matches_or_parent_matches`; a filter decision for a path does not depend on how
//! often it is asked.
#![no_main]

use cicd_agents_buildkit::fsutil::patterns::{clean_path, FilterDecision, FilterState, MatchInfo};
use cicd_agents_buildkit::fsutil::{parse_ignore_file, PathFilter, PatternMatcher};
use libfuzzer_sys::fuzz_target;

struct Input {
    ignore_file: String,
    includes: Vec<String>,
    paths: Vec<String>,
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let lines = |part: Option<&str>| {
        part.map(|p| p.split('\n').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let input = Input {
        ignore_file: parts.next().unwrap_or_default().to_string(),
        includes: lines(parts.next()),
        paths: lines(parts.next()),
    };
    let patterns = parse_ignore_file(&input.ignore_file);
    for path in &input.paths {
        let cleaned = clean_path(path);
        assert_eq!(
            clean_path(&cleaned),
            cleaned,
            "clean_path is not idempotent for {path:?}"
        );
    }
    let Ok(matcher) = PatternMatcher::new(&patterns) else {
        return;
    };
    for path in &input.paths {
        let path = clean_path(path);
        if path == "." || path.starts_with('/') || path.starts_with("../") || path == ".." {
            continue;
        }
        let direct = matcher.matches_or_parent_matches(&path);
        let (via_info, _) = matcher.matches_using_parent_results(&path, &MatchInfo::default());
        assert_eq!(direct, via_info, "{path:?} against {patterns:?}");
        let _ = matcher.matches_exact(&path);
    }
    let Ok(filter) = PathFilter::new(&input.includes, &patterns) else {
        return;
    };
    for path in &input.paths {
        let path = clean_path(path);
        if path == "." || path.starts_with('/') || path == ".." || path.starts_with("../") {
            continue;
        }
        // Walk down the path's parents, as the directory walker does.
        let mut state = FilterState::default();
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..=parts.len() {
            let prefix = parts[..depth].join("/");
            let is_dir = depth < parts.len();
            let first = filter.evaluate(&prefix, is_dir, &state);
            assert_eq!(first, filter.evaluate(&prefix, is_dir, &state));
            match first {
                FilterDecision::Prune => break,
                FilterDecision::Visit { state: next, .. } => state = next,
            }
        }
        let _ = filter.may_select_below(&path);
    }
});
