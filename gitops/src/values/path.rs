//! Key paths: `image.tag`, `sidecars[0].image.tag`, `"a.b".tag`.
//!
//! Syntax:
//!
//! * Segments are separated by `.`: `image.tag`.
//! * `[N]` selects item `N` (0-based) of a sequence and may follow any segment or start the
//!   path: `sidecars[0].image.tag`, `[1].name`, `matrix[0][2]`.
//! * A key that contains `.`, `[`, `]`, quotes or leading/trailing spaces is quoted, like in
//!   YAML: `"a.b".tag` with `\"` and `\\` escapes inside double quotes, or `'a.b'.tag` with
//!   `''` for a single quote inside single quotes. `ingress.annotations."nginx.io/rewrite"`.
//! * Keys are compared with the parsed key text, so `image` matches `image:`, `"image":` and
//!   `'image':` alike. Non-string keys are matched by their text (`"80".name` or `80.name`
//!   matches a key written `80:`).

use std::fmt;
use std::str::FromStr;

use crate::error::ValuesError;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// A parsed key path.
///
/// Syntax:
///
/// * Segments are separated by `.`: `image.tag`.
/// * `[N]` selects item `N` (0-based) of a sequence and may follow any segment or start the
///   path: `sidecars[0].image.tag`, `[1].name`, `matrix[0][2]`.
/// * A key that contains `.`, `[`, `]`, quotes or leading/trailing spaces is quoted, like in
///   YAML: `"a.b".tag` with `\"` and `\\` escapes inside double quotes, or `'a.b'.tag` with
///   `''` for a single quote inside single quotes. `ingress.annotations."nginx.io/rewrite"`.
/// * Keys are compared with the parsed key text, so `image` matches `image:`, `"image":` and
///   `'image':` alike. Non-string keys are matched by their text (`"80".name` or `80.name`
///   matches a key written `80:`).
/// * There is no "literal key" fallback (argocd-image-updater retries `a.b` as one key when
///   `a` → `b` is missing): a path means exactly one thing, so a key with dots must be quoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPath {
    segments: Vec<Segment>,
}

impl KeyPath {
    /// Parses a key path.
    pub fn parse(text: &str) -> Result<Self, ValuesError> {
        parse(text).map_err(|reason| ValuesError::InvalidKeyPath {
            path: text.to_string(),
            reason,
        })
    }

    /// Builds a path from segments (must not be empty).
    pub fn from_segments(segments: Vec<Segment>) -> Result<Self, ValuesError> {
        if segments.is_empty() {
            return Err(ValuesError::InvalidKeyPath {
                path: String::new(),
                reason: "the path is empty".into(),
            });
        }
        Ok(Self { segments })
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The last segment (the key whose value is edited).
    pub fn last(&self) -> Option<&Segment> {
        self.segments.last()
    }

    /// The path made of the first `n` segments, rendered (`<root>` for none).
    pub fn prefix_display(&self, n: usize) -> String {
        if n == 0 {
            return "<root>".to_string();
        }
        render(&self.segments[..n.min(self.segments.len())])
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(&self.segments))
    }
}

impl FromStr for KeyPath {
    type Err = ValuesError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyPath::parse(s)
    }
}

impl TryFrom<&str> for KeyPath {
    type Error = ValuesError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        KeyPath::parse(s)
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Key(k) => f.write_str(&render_key(k)),
            Segment::Index(i) => write!(f, "[{i}]"),
        }
    }
}

fn render(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Key(k) => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(&render_key(k));
            }
            Segment::Index(n) => {
                out.push('[');
                out.push_str(&n.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn render_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key.trim() == key
        && !key
            .chars()
            .any(|c| matches!(c, '.' | '[' | ']' | '"' | '\''));
    if bare {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len() + 2);
    out.push('"');
    for c in key.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn parse(text: &str) -> Result<KeyPath, String> {
    if text.is_empty() {
        return Err("the path is empty".into());
    }
    let chars: Vec<char> = text.chars().collect();
    let mut segments = Vec::new();
    let mut i = 0;
    // Whether a key may start here (start of path or right after a '.').
    let mut expect_key = true;
    let mut after_dot = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i)
                    .ok_or_else(|| format!("unclosed `[` at character {}", i + 1))?;
                let digits: String = chars[i + 1..close].iter().collect();
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "`[{digits}]` at character {} is not a sequence index (use quotes for keys containing brackets)",
                        i + 1
                    ));
                }
                if after_dot {
                    return Err(format!(
                        "`.` followed by `[` at character {}: write `a[0]`, not `a.[0]`",
                        i + 1
                    ));
                }
                let n: usize = digits
                    .parse()
                    .map_err(|_| format!("index `{digits}` is too large"))?;
                segments.push(Segment::Index(n));
                i = close + 1;
                expect_key = false;
                after_dot = false;
            }
            '.' => {
                if expect_key {
                    return Err(format!("empty key at character {}", i + 1));
                }
                expect_key = true;
                after_dot = true;
                i += 1;
            }
            '"' | '\'' => {
                if !expect_key {
                    return Err(format!(
                        "quoted key at character {} must follow `.` or start the path",
                        i + 1
                    ));
                }
                let (key, next) = parse_quoted(&chars, i)?;
                segments.push(Segment::Key(key));
                i = next;
                expect_key = false;
                after_dot = false;
            }
            ']' => return Err(format!("unexpected `]` at character {}", i + 1)),
            _ => {
                if !expect_key {
                    return Err(format!("expected `.` or `[` at character {}", i + 1));
                }
                let start = i;
                while i < chars.len() && !matches!(chars[i], '.' | '[' | ']' | '"' | '\'') {
                    i += 1;
                }
                let key: String = chars[start..i].iter().collect();
                if i < chars.len() && matches!(chars[i], '"' | '\'' | ']') {
                    return Err(format!(
                        "unexpected `{}` at character {} inside key `{key}` (quote the whole key)",
                        chars[i],
                        i + 1
                    ));
                }
                segments.push(Segment::Key(key));
                expect_key = false;
                after_dot = false;
            }
        }
    }
    if after_dot {
        return Err("the path ends with `.`".into());
    }
    Ok(KeyPath { segments })
}

fn parse_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if quote == '"' && c == '\\' {
            match chars.get(i + 1) {
                Some(&e @ ('"' | '\\')) => {
                    out.push(e);
                    i += 2;
                    continue;
                }
                _ => {
                    return Err(format!(
                        "unsupported escape at character {} (only \\\" and \\\\)",
                        i + 1
                    ))
                }
            }
        }
        if c == quote {
            if quote == '\'' && chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            return Ok((out, i + 1));
        }
        out.push(c);
        i += 1;
    }
    Err(format!(
        "unclosed quote starting at character {}",
        start + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<Segment> {
        KeyPath::parse(p).map(|k| k.segments).unwrap_or_default()
    }

    #[test]
    fn parses_paths() {
        use Segment::*;
        assert_eq!(
            segs("image.tag"),
            vec![Key("image".into()), Key("tag".into())]
        );
        assert_eq!(
            segs("sidecars[0].image.tag"),
            vec![
                Key("sidecars".into()),
                Index(0),
                Key("image".into()),
                Key("tag".into())
            ]
        );
        assert_eq!(segs("[1][2]"), vec![Index(1), Index(2)]);
        assert_eq!(
            segs("\"a.b\".tag"),
            vec![Key("a.b".into()), Key("tag".into())]
        );
        assert_eq!(segs("'it''s'.x"), vec![Key("it's".into()), Key("x".into())]);
        assert_eq!(
            segs(r#""q\"\\".x"#),
            vec![Key("q\"\\".into()), Key("x".into())]
        );
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "", ".a", "a.", "a..b", "a[", "a[x]", "a.[0]", "a]", "\"a", "a\"b\"", "a[0]b",
        ] {
            assert!(KeyPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn keys_with_quotes_are_printed_quoted() {
        let path =
            KeyPath::from_segments(vec![Segment::Key("it's".into()), Segment::Key("x'".into())])
                .unwrap();
        assert_eq!(path.to_string(), "\"it's\".\"x'\"");
        assert_eq!(KeyPath::parse(&path.to_string()).unwrap(), path);
    }

    #[test]
    fn display_round_trips() {
        for p in [
            "image.tag",
            "a[0].b",
            "\"a.b\".tag",
            "[0]",
            "\"x[1]\"",
            "\" a\"",
            // A quote inside a key (found by the values_edit fuzz target).
            "\"it's\".tag",
            "a.\"b'\"",
        ] {
            let k = KeyPath::parse(p).ok();
            let shown = k.as_ref().map(|k| k.to_string());
            assert_eq!(shown.as_deref(), Some(p));
        }
    }
}
