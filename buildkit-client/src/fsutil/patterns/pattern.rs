//! One pattern: the `.dockerignore` syntax compiled to patternmatcher's
//! regular-expression form and matched against a path by itself (no parent
//! directories, no exceptions; see [`super::matcher`] for those).

use std::fmt;

use super::PatternError;

/// One element of a pattern compiled to "regular expression" form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A literal character.
    Lit(char),
    /// `?`: one character other than `/` (regex `[^/]`).
    One,
    /// `*`: any run of characters other than `/` (regex `[^/]*`).
    Star,
    /// `**` followed by more pattern: regex `(.*/)?` (`.` excludes `\n`).
    Dirs,
    /// `**` at the end of a pattern that is already a regex: regex `.*`.
    Rest,
    /// A character class; `negated` classes also match `\n`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `^` (outside a class) or `\A`: only at the start of the path.
    Begin,
    /// `\z`: only at the end of the path.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The path equals the cleaned pattern.
    Exact,
    /// The path starts with the cleaned pattern minus its trailing `**`.
    Prefix(String),
    /// The path ends with the cleaned pattern minus its leading `**`.
    Suffix(String),
    /// Full match against the token sequence.
    Regex(Vec<Tok>),
}

/// A single cleaned pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    cleaned: String,
    pub(super) exclusion: bool,
    kind: Kind,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("pattern", &self.cleaned)
            .field("exclusion", &self.exclusion)
            .finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.cleaned)
    }
}

impl Pattern {
    /// The cleaned pattern, without the `!` of an exception.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is an exception (`!pattern`).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether the (already cleaned, `/`-separated) `path` matches this
    /// pattern by itself, ignoring the exception flag and parents.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Regex(toks) => regex_full_match(toks, path),
        }
    }

    /// The pattern with a trailing `/**` and then a trailing `/*` removed
    /// (fsutil's `patternWithoutTrailingGlob`).
    pub(super) fn without_trailing_glob(&self) -> &str {
        let p = self.cleaned.strip_suffix("/**").unwrap_or(&self.cleaned);
        p.strip_suffix("/*").unwrap_or(p)
    }

    pub(super) fn compile(
        pattern_text: &str,
        cleaned: String,
        exclusion: bool,
    ) -> Result<Pattern, PatternError> {
        let unsupported = |detail: &'static str| PatternError::Unsupported {
            pattern: pattern_text.to_string(),
            detail,
        };
        let bad = || PatternError::BadPattern {
            pattern: pattern_text.to_string(),
        };

        #[derive(PartialEq)]
        enum Detected {
            Exact,
            Prefix,
            Suffix,
            Regex,
        }
        let chars: Vec<char> = cleaned.chars().collect();
        let mut toks = Vec::new();
        let mut detected = Detected::Exact;
        let mut idx = 0;
        let mut iteration = 0;
        while idx < chars.len() {
            let ch = chars[idx];
            idx += 1;
            match ch {
                '*' => {
                    if chars.get(idx) == Some(&'*') {
                        idx += 1;
                        if chars.get(idx) == Some(&'/') {
                            idx += 1;
                        }
                        if idx >= chars.len() {
                            if detected == Detected::Exact {
                                detected = Detected::Prefix;
                            } else {
                                toks.push(Tok::Rest);
                                detected = Detected::Regex;
                            }
                        } else {
                            toks.push(Tok::Dirs);
                            detected = Detected::Regex;
                        }
                        if iteration == 0 {
                            detected = Detected::Suffix;
                        }
                    } else {
                        toks.push(Tok::Star);
                        detected = Detected::Regex;
                    }
                }
                '?' => {
                    toks.push(Tok::One);
                    detected = Detected::Regex;
                }
                '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => toks.push(Tok::Lit(ch)),
                '\\' => match chars.get(idx) {
                    Some(&next) => {
                        idx += 1;
                        toks.push(escape_tok(next).map_err(|e| match e {
                            EscapeError::Bad => bad(),
                            EscapeError::Unsupported(d) => unsupported(d),
                        })?);
                        detected = Detected::Regex;
                    }
                    // `filepath.Match` already rejects a trailing backslash.
                    None => return Err(bad()),
                },
                '[' => {
                    let (tok, next) = parse_class(&chars, idx).map_err(|e| match e {
                        EscapeError::Bad => bad(),
                        EscapeError::Unsupported(d) => unsupported(d),
                    })?;
                    toks.push(tok);
                    idx = next;
                    detected = Detected::Regex;
                }
                ']' => {
                    toks.push(Tok::Lit(']'));
                    detected = Detected::Regex;
                }
                '^' => toks.push(Tok::Begin),
                c => toks.push(Tok::Lit(c)),
            }
            iteration += 1;
        }
        let kind = match detected {
            Detected::Exact => Kind::Exact,
            // The cleaned pattern ends with `**`.
            Detected::Prefix => Kind::Prefix(cleaned[..cleaned.len() - 2].to_string()),
            // The cleaned pattern starts with `**`.
            Detected::Suffix => Kind::Suffix(cleaned[2..].to_string()),
            Detected::Regex => Kind::Regex(toks),
        };
        Ok(Pattern {
            cleaned,
            exclusion,
            kind,
        })
    }
}

enum EscapeError {
    Bad,
    Unsupported(&'static str),
}

/// The meaning of `\c` outside a character class, as Go's regexp reads it.
fn escape_tok(c: char) -> Result<Tok, EscapeError> {
    let digit = vec![('0', '9')];
    let space = vec![('\t', '\n'), ('\x0c', '\r'), (' ', ' ')];
    let word = vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
    Ok(match c {
        'd' => Tok::Class {
            negated: false,
            ranges: digit,
        },
        'D' => Tok::Class {
            negated: true,
            ranges: digit,
        },
        's' => Tok::Class {
            negated: false,
            ranges: space,
        },
        'S' => Tok::Class {
            negated: true,
            ranges: space,
        },
        'w' => Tok::Class {
            negated: false,
            ranges: word,
        },
        'W' => Tok::Class {
            negated: true,
            ranges: word,
        },
        'A' => Tok::Begin,
        'z' => Tok::End,
        c => Tok::Lit(escape_char(c)?),
    })
}

/// `\c` as a single character (valid inside and outside classes).
fn escape_char(c: char) -> Result<char, EscapeError> {
    match c {
        'a' => Ok('\x07'),
        'f' => Ok('\x0c'),
        't' => Ok('\t'),
        'n' => Ok('\n'),
        'r' => Ok('\r'),
        'v' => Ok('\x0b'),
        c if c.is_ascii_alphanumeric() => Err(EscapeError::Unsupported(
            "regular-expression escape sequences (\\b, \\x.., \\p{..}, octal, ...)",
        )),
        // Go's regexp accepts only ASCII punctuation after a backslash.
        c if !c.is_ascii() => Err(EscapeError::Bad),
        c => Ok(c),
    }
}

/// Parses a class whose `[` was just consumed; returns the token and the
/// index after the closing `]`.
fn parse_class(chars: &[char], mut idx: usize) -> Result<(Tok, usize), EscapeError> {
    let mut negated = false;
    if chars.get(idx) == Some(&'^') {
        negated = true;
        idx += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(idx) else {
            return Err(EscapeError::Bad);
        };
        if c == ']' && !first {
            idx += 1;
            break;
        }
        let (lo, next) = class_atom(chars, idx)?;
        idx = next;
        let mut hi = lo;
        if chars.get(idx) == Some(&'-') && chars.get(idx + 1).is_some_and(|&n| n != ']') {
            let (h, next) = class_atom(chars, idx + 1)?;
            idx = next;
            hi = h;
            if hi < lo {
                return Err(EscapeError::Bad);
            }
        }
        ranges.push((lo, hi));
        first = false;
    }
    Ok((Tok::Class { negated, ranges }, idx))
}

fn class_atom(chars: &[char], idx: usize) -> Result<(char, usize), EscapeError> {
    let Some(&c) = chars.get(idx) else {
        return Err(EscapeError::Bad);
    };
    match c {
        '\\' => match chars.get(idx + 1) {
            Some(&next) => {
                if matches!(next, 'd' | 'D' | 's' | 'S' | 'w' | 'W') {
                    return Err(EscapeError::Unsupported(
                        "Perl classes (\\d, \\s, \\w) inside [...]",
                    ));
                }
                Ok((escape_char(next)?, idx + 2))
            }
            None => Err(EscapeError::Bad),
        },
        '*' | '?' => Err(EscapeError::Unsupported("'*' or '?' inside [...]")),
        '[' if chars.get(idx + 1) == Some(&':') => {
            Err(EscapeError::Unsupported("POSIX classes like [[:alpha:]]"))
        }
        c => Ok((c, idx + 1)),
    }
}

/// Whole-string match of `toks` against `path` (regex `^...$`).
fn regex_full_match(toks: &[Tok], path: &str) -> bool {
    let chars: Vec<char> = path.chars().collect();
    let width = chars.len() + 1;
    // 0 = unknown, 1 = matches, 2 = fails; indexed by (token, position).
    let mut memo = vec![0u8; (toks.len() + 1) * width];
    match_from(toks, &chars, 0, 0, &mut memo, width)
}

fn match_from(
    toks: &[Tok],
    s: &[char],
    ti: usize,
    pi: usize,
    memo: &mut [u8],
    width: usize,
) -> bool {
    let key = ti * width + pi;
    match memo[key] {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let result = match toks.get(ti) {
        None => pi == s.len(),
        Some(tok) => match tok {
            Tok::Lit(c) => s.get(pi) == Some(c) && match_from(toks, s, ti + 1, pi + 1, memo, width),
            Tok::One => {
                s.get(pi).is_some_and(|&c| c != '/')
                    && match_from(toks, s, ti + 1, pi + 1, memo, width)
            }
            Tok::Class { negated, ranges } => {
                s.get(pi)
                    .is_some_and(|&c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
                    && match_from(toks, s, ti + 1, pi + 1, memo, width)
            }
            Tok::Star => {
                let mut end = pi;
                let mut found = match_from(toks, s, ti + 1, pi, memo, width);
                while !found && end < s.len() && s[end] != '/' {
                    end += 1;
                    found = match_from(toks, s, ti + 1, end, memo, width);
                }
                found
            }
            Tok::Dirs => {
                // Either nothing, or `.*/`: a run without `\n` ending in `/`.
                let mut found = match_from(toks, s, ti + 1, pi, memo, width);
                let mut end = pi;
                while !found && end < s.len() && s[end] != '\n' {
                    end += 1;
                    if s[end - 1] == '/' {
                        found = match_from(toks, s, ti + 1, end, memo, width);
                    }
                }
                found
            }
            Tok::Rest => {
                let mut end = pi;
                let mut found = match_from(toks, s, ti + 1, pi, memo, width);
                while !found && end < s.len() && s[end] != '\n' {
                    end += 1;
                    found = match_from(toks, s, ti + 1, end, memo, width);
                }
                found
            }
            Tok::Begin => pi == 0 && match_from(toks, s, ti + 1, pi, memo, width),
            Tok::End => pi == s.len() && match_from(toks, s, ti + 1, pi, memo, width),
        },
    };
    memo[key] = if result { 1 } else { 2 };
    result
}

#[cfg(test)]
mod tests {
    use super::super::{PatternError, PatternMatcher};

    fn m(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap()
    }

    /// One pattern, matched directly.
    fn pm(pattern: &str, path: &str) -> bool {
        m(&[pattern]).patterns()[0].matches(path)
    }

    #[test]
    fn unsupported_regex_accidents_are_rejected() {
        for p in [
            "[*]",
            "a[?]",
            "[[:alpha:]]",
            "\\bfoo",
            "\\x41",
            "[\\d]",
            "\\p",
        ] {
            assert!(
                matches!(
                    PatternMatcher::new([p]),
                    Err(PatternError::Unsupported { .. })
                ),
                "{p}"
            );
        }
        // Non-ASCII escapes are regexp errors upstream.
        assert!(matches!(
            PatternMatcher::new(["\\é"]),
            Err(PatternError::BadPattern { .. })
        ));
        // Reversed ranges pass filepath.Match but not the regexp compiler.
        assert!(matches!(
            PatternMatcher::new(["[z-a]x"]),
            Err(PatternError::BadPattern { .. })
        ));
    }

    #[test]
    fn literal_and_single_star() {
        assert!(pm("foo", "foo"));
        assert!(!pm("foo", "foo/bar"));
        assert!(!pm("foo", "afoo"));
        assert!(pm("*.go", "main.go"));
        assert!(!pm("*.go", "cmd/main.go"));
        assert!(pm("*/*.go", "cmd/main.go"));
        assert!(pm("a*", "a"));
        assert!(pm("*", "anything"));
        assert!(!pm("*", "a/b"));
        assert!(pm("foo.txt", "foo.txt"));
        assert!(!pm("foo.txt", "fooxtxt"));
        assert!(!pm("a+b", "aab"));
        assert!(pm("a+b", "a+b"));
        assert!(pm("(x)|{y}$", "(x)|{y}$"));
        assert!(pm("dir/*/file", "dir/x/file"));
        assert!(!pm("dir/*/file", "dir/x/y/file"));
    }

    #[test]
    fn question_mark_and_classes() {
        assert!(pm("?", "a"));
        assert!(!pm("?", "ab"));
        assert!(!pm("a?c", "a/c"));
        assert!(pm("a?c", "a☺c"));
        assert!(pm("[abc].txt", "b.txt"));
        assert!(!pm("[abc].txt", "d.txt"));
        assert!(pm("[a-c]x", "bx"));
        assert!(pm("[^a-c]x", "dx"));
        assert!(!pm("[^a-c]x", "ax"));
        // `[!...]` is not negation (neither in filepath.Match nor in the regexp).
        assert!(pm("[!a]x", "!x"));
        assert!(pm("[!a]x", "ax"));
        assert!(!pm("[!a]x", "bx"));
        assert!(pm("file[0-9][0-9]", "file42"));
        assert!(pm("[\\]]", "]"));
        assert!(pm("[.]", "."));
        assert!(!pm("[.]", "x"));
        // A class can match `/` (only `?` and `*` exclude it).
        assert!(pm("a[/]b", "a/b"));
        // A stray `]` is literal.
        assert!(pm("a]", "a]"));
    }

    #[test]
    fn escapes() {
        assert!(pm("\\*", "*"));
        assert!(!pm("\\*", "a"));
        assert!(pm("a\\?b", "a?b"));
        assert!(!pm("a\\?b", "axb"));
        assert!(pm("\\[x\\]", "[x]"));
        assert!(pm("a\\.b", "a.b"));
        assert!(!pm("a\\.b", "axb"));
        // Regexp escape semantics upstream: `\d` is a digit, `\n` a newline.
        assert!(pm("v\\d", "v7"));
        assert!(!pm("v\\d", "vd"));
        assert!(pm("a\\nb", "a\nb"));
        assert!(pm("\\w\\W", "a-"));
    }

    #[test]
    fn double_star() {
        // Leading `**/`: suffix match, or the bare rest.
        assert!(pm("**/foo", "foo"));
        assert!(pm("**/foo", "a/foo"));
        assert!(pm("**/foo", "a/b/foo"));
        assert!(!pm("**/foo", "afoo"));
        assert!(!pm("**/foo", "foo/bar"));
        // Upstream quirk: `**foo` is a plain suffix test.
        assert!(pm("**foo", "afoo"));
        assert!(pm("**foo", "x/foo"));
        // `**` alone and `**/**` match everything.
        assert!(pm("**", "a"));
        assert!(pm("**", "a/b/c"));
        assert!(pm("**/**", "a/b/c"));
        // Trailing `/**`: a prefix test, not matching the directory itself.
        assert!(pm("a/**", "a/b"));
        assert!(pm("a/**", "a/b/c"));
        assert!(!pm("a/**", "a"));
        assert!(!pm("a/**", "ab/c"));
        assert!(pm("a.b/**", "a.b/c"));
        // In the middle: any number of directories, including none.
        assert!(pm("a/**/b", "a/b"));
        assert!(pm("a/**/b", "a/x/b"));
        assert!(pm("a/**/b", "a/x/y/b"));
        assert!(!pm("a/**/b", "a/xb"));
        assert!(!pm("a/**/b", "ab"));
        assert!(pm("**/*.go", "main.go"));
        assert!(pm("**/*.go", "a/b/main.go"));
        assert!(!pm("**/*.go", "a/b/main.gox"));
        assert!(pm("a/**/*.txt", "a/b/c/d.txt"));
        // `**` not followed by `/` still expands to `(.*/)?`.
        assert!(pm("a**b", "ab"));
        assert!(pm("a**b", "ax/b"));
        assert!(!pm("a**b", "axb"));
        // Trailing `**` once the pattern is already a regexp.
        assert!(pm("a*/**", "abc/x/y"));
        assert!(!pm("a*/**", "abc"));
        assert!(pm("*/**", "a/b"));
        // `.` in the regexp does not match a newline.
        assert!(!pm("x/**/y*", "x/a\nb/y"));
        assert!(pm("x/**/y*", "x/ab/y"));
        // `/**` can never match a relative path.
        assert!(!pm("/**", "a"));
    }

    #[test]
    fn caret_is_literal_or_anchor() {
        // Exact patterns compare literally.
        assert!(pm("^foo", "^foo"));
        assert!(!pm("^foo", "foo"));
        // Once the pattern is a regexp, `^` anchors.
        assert!(pm("^foo*", "foobar"));
        assert!(!pm("^foo*", "^foobar"));
        assert!(!pm("a^*", "a"));
    }
}
