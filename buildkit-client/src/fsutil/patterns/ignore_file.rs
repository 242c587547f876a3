//! Ignore files (`.dockerignore`): their text to a list of patterns, with
//! patternmatcher's `ignorefile.ReadAll` rules.

use crate::fsutil::go_path::clean_path;

/// Parses the text of a `.dockerignore` file into patterns, with the rules
/// of `patternmatcher/ignorefile.ReadAll`:
///
/// * a UTF-8 byte-order mark at the start is dropped;
/// * lines are split on `\n` (a trailing `\r` is dropped);
/// * a line whose *first character* is `#` is a comment (`  #x` is not);
/// * surrounding whitespace is trimmed and blank lines are skipped;
/// * a leading `!` marks an exception (whitespace after it is trimmed too);
/// * the rest is cleaned (`filepath.Clean`) and one leading `/` removed
///   (so `/foo` and `foo` are the same pattern).
///
/// A lone `!` is kept as `"!"`; [`PatternMatcher::new`](super::PatternMatcher::new) rejects it.
pub fn parse_ignore_file(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push(cleaned);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_file_rules() {
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            parse_ignore_file(text),
            vec![
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
        assert_eq!(
            parse_ignore_file("\u{feff}# c\r\nfoo/\r\n  bar//baz/.. \r\n"),
            vec!["foo", "bar"]
        );
        // Only a `#` in the first column starts a comment.
        assert_eq!(parse_ignore_file("  #notcomment"), vec!["#notcomment"]);
        // A BOM only counts at the very start.
        assert_eq!(parse_ignore_file("a\n\u{feff}b"), vec!["a", "\u{feff}b"]);
        assert_eq!(parse_ignore_file("/"), vec!["/"]);
        assert_eq!(parse_ignore_file("./"), vec!["."]);
        assert_eq!(parse_ignore_file("!./x/../y"), vec!["!y"]);
        assert_eq!(parse_ignore_file("\t*.log\t"), vec!["*.log"]);
        assert!(parse_ignore_file("").is_empty());
        assert!(parse_ignore_file("\n\n# only comments\n").is_empty());
    }
}
