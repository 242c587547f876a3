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

use std::fmt;

/// Characters whose presence (after stripping a trailing `/**` or `/*`)
/// means a pattern is not a plain path prefix (fsutil `filter.go`).
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

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

// ---------------------------------------------------------------------------
// Go path helpers
// ---------------------------------------------------------------------------

/// Go's `path/filepath.Clean` for `/`-separated paths.
///
/// Returns the shortest equivalent path: repeated slashes collapse, `.`
/// elements vanish, `..` removes the preceding element where there is one
/// (and is dropped right after a leading `/`), trailing slashes go. An empty
/// result becomes `"."`.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let bytes = path.as_bytes();
    let n = bytes.len();
    let rooted = bytes[0] == b'/';
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut r = 0;
    // `dotdot` is the length of `out` below which `..` may not backtrack.
    let mut dotdot = 0;
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        let at_sep = |i: usize| i == n || bytes[i] == b'/';
        if bytes[r] == b'/' || (bytes[r] == b'.' && at_sep(r + 1)) {
            // Empty or `.` element.
            r += 1;
        } else if bytes[r] == b'.' && r + 1 < n && bytes[r + 1] == b'.' && at_sep(r + 2) {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && bytes[r] != b'/' {
                out.push(bytes[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return ".".to_string();
    }
    // Only ASCII bytes were inserted or removed at element boundaries, so the
    // result is still valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Go's `filepath.Join(a, b)` for `/`-separated paths (empty elements ignored).
pub(crate) fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean_path(b),
        (false, true) => clean_path(a),
        (false, false) => clean_path(&format!("{a}/{b}")),
    }
}

/// Go's `filepath.Dir` for `/`-separated paths.
pub(crate) fn dir_path(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean_path(&p[..=i]),
        None => clean_path(""),
    }
}

/// Go's `filepath.Base` for `/`-separated paths.
pub(crate) fn base_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    match trimmed.rfind('/') {
        Some(i) => trimmed[i + 1..].to_string(),
        None => trimmed.to_string(),
    }
}

/// Go's `utf8.DecodeRune`: `(U+FFFD, 1)` on invalid input, `(U+FFFD, 0)` on empty.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let Some(&first) = b.first() else {
        return (char::REPLACEMENT_CHARACTER, 0);
    };
    let len = match first {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return (char::REPLACEMENT_CHARACTER, 1),
    };
    if b.len() < len {
        return (char::REPLACEMENT_CHARACTER, 1);
    }
    match std::str::from_utf8(&b[..len])
        .ok()
        .and_then(|s| s.chars().next())
    {
        Some(c) => (c, len),
        None => (char::REPLACEMENT_CHARACTER, 1),
    }
}

/// Go's `filepath.ErrBadPattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern;

/// Go's `path/filepath.Match` (Unix flavour: `\` escapes).
///
/// Used to validate patterns the way `patternmatcher.New` does and to expand
/// wildcards while resolving follow paths.
pub(crate) fn go_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'outer: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest unless it holds a separator.
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'outer;
                }
                i += 1;
            }
        }
        // No match: still report a malformed remainder.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let Some(b'*') = pattern.first() {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Matches one star-free chunk at the start of `s`; returns the rest of `s`.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<(&'a [u8], bool), BadPattern> {
    // After a mismatch keep walking the chunk to validate its syntax.
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (c, n) = decode_rune(s);
                    r = c;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if let Some(b'^') = chunk.first() {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if nrange > 0 && chunk.first() == Some(&b']') {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            c => {
                let literal = if c == b'\\' {
                    chunk = &chunk[1..];
                    match chunk.first() {
                        Some(&b) => b,
                        None => return Err(BadPattern),
                    }
                } else {
                    c
                };
                if !failed {
                    if literal != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        return Ok((b"", false));
    }
    Ok((s, true))
}

fn get_esc(chunk: &[u8]) -> Result<(char, &[u8]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        _ => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == char::REPLACEMENT_CHARACTER && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

// ---------------------------------------------------------------------------
// Compiled patterns
// ---------------------------------------------------------------------------

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
    exclusion: bool,
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
    fn without_trailing_glob(&self) -> &str {
        let p = self.cleaned.strip_suffix("/**").unwrap_or(&self.cleaned);
        p.strip_suffix("/*").unwrap_or(p)
    }

    fn compile(
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

// ---------------------------------------------------------------------------
// The matcher
// ---------------------------------------------------------------------------

/// Per-pattern results for a directory, reused when matching its children
/// (patternmatcher's `MatchInfo`). The default value means "no information".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of patterns (patternmatcher's `PatternMatcher`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Parses `patterns` the way `patternmatcher.New` does: each is trimmed,
    /// blank ones are skipped, the rest cleaned; a leading `!` (after
    /// cleaning) marks an exception. Note that, unlike
    /// [`parse_ignore_file`], this does **not** strip a leading `/`.
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

// ---------------------------------------------------------------------------
// fsutil include/exclude filtering
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Ignore files
// ---------------------------------------------------------------------------

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
/// A lone `!` is kept as `"!"`; [`PatternMatcher::new`] rejects it.
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

    fn m(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap()
    }

    /// One pattern, matched directly.
    fn pm(pattern: &str, path: &str) -> bool {
        m(&[pattern]).patterns()[0].matches(path)
    }

    #[test]
    fn clean_matches_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a", "a"),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("./a/./b/.", "a/b"),
            ("a/../b", "b"),
            ("a/b/../../c", "c"),
            ("a/../..", ".."),
            ("../a", "../a"),
            ("../../a/../b", "../../b"),
            ("/", "/"),
            ("//", "/"),
            ("/..", "/"),
            ("/../a", "/a"),
            ("/a/b/", "/a/b"),
            ("abc/def/../../..", ".."),
            ("!foo/", "!foo"),
            ("!./foo", "!./foo"),
            ("!foo/..", "."),
            ("**/", "**"),
            ("a/**/", "a/**"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_base_join() {
        assert_eq!(dir_path("a/b/c"), "a/b");
        assert_eq!(dir_path("a"), ".");
        assert_eq!(dir_path("/a"), "/");
        assert_eq!(base_path("a/b/c"), "c");
        assert_eq!(base_path("a/"), "a");
        assert_eq!(base_path("/"), "/");
        assert_eq!(join_path(".", "/a/b"), "a/b");
        assert_eq!(join_path("/", "../x"), "/x");
        assert_eq!(join_path("a", ""), "a");
    }

    #[test]
    fn go_filepath_match() {
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[x-]", "-", Err(BadPattern)),
            ("[x-]", "z", Err(BadPattern)),
            ("[-x]", "x", Err(BadPattern)),
            ("[-x]", "-", Err(BadPattern)),
            ("[-x]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                go_match(pattern, name),
                *want,
                "Match({pattern:?}, {name:?})"
            );
        }
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
