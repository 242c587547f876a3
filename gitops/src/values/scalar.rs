//! Scalar text: where a scalar's bytes are, what they decode to, how to write a new value, and
//! when a plain scalar would not be read back as a string.

use super::tree::{Node, Style};

/// Where the new text goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// Byte range of the scalar's text (quotes included). Empty for an empty implicit value.
    pub start: usize,
    pub end: usize,
    /// An empty implicit value (`key:`): the new text is inserted with a leading space.
    pub insert: bool,
}

/// Finds the exact bytes of a scalar node and checks that they decode to the parsed value
/// (the "verify raw text at the position" step of argocd-image-updater).
pub(crate) fn locate(
    text: &str,
    node: &Node,
    value: &str,
    style: Style,
) -> Result<Location, String> {
    let bytes = text.as_bytes();
    let start = node.content_start;
    match style {
        Style::Literal | Style::Folded => Err(format!(
            "it is a block scalar (`{}`); only single-line plain or quoted scalars are edited",
            if style == Style::Literal { "|" } else { ">" }
        )),
        Style::Plain if value.is_empty() => {
            // `key:` (optionally `key: &a` / `key: !!str`): insert after the properties or the
            // `:` indicator.
            if node.properties_end > node.start {
                return Ok(Location {
                    start: node.properties_end,
                    end: node.properties_end,
                    insert: true,
                });
            }
            if bytes.get(node.start) == Some(&b':') {
                return Ok(Location {
                    start: node.start + 1,
                    end: node.start + 1,
                    insert: true,
                });
            }
            Err(
                "it is an empty value without a `key:` indicator (e.g. an empty sequence item)"
                    .into(),
            )
        }
        Style::Plain => {
            if value.contains(['\n', '\r']) {
                return Err("it is a multi-line plain scalar".into());
            }
            let end = start + value.len();
            if text.get(start..end) == Some(value) {
                Ok(Location {
                    start,
                    end,
                    insert: false,
                })
            } else {
                Err("it is a multi-line plain scalar (the text at its position differs from its value)".into())
            }
        }
        Style::SingleQuoted => {
            let end = scan_single(bytes, start)?;
            let decoded = text
                .get(start + 1..end - 1)
                .map(|raw| raw.replace("''", "'"))
                .ok_or("the quoted text is not valid UTF-8 at its position")?;
            if decoded == value {
                Ok(Location {
                    start,
                    end,
                    insert: false,
                })
            } else {
                Err("the single-quoted text at its position does not decode to its value".into())
            }
        }
        Style::DoubleQuoted => {
            let end = scan_double(bytes, start)?;
            let raw = text
                .get(start + 1..end - 1)
                .ok_or("the quoted text is not valid UTF-8 at its position")?;
            match decode_double(raw) {
                Some(decoded) if decoded == value => Ok(Location {
                    start,
                    end,
                    insert: false,
                }),
                _ => Err(
                    "the double-quoted text at its position does not decode to its value".into(),
                ),
            }
        }
    }
}

fn scan_single(bytes: &[u8], start: usize) -> Result<usize, String> {
    if bytes.get(start) != Some(&b'\'') {
        return Err("no opening single quote at its position".into());
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Ok(i + 1),
            b'\n' | b'\r' => return Err("it is a multi-line quoted scalar".into()),
            _ => i += 1,
        }
    }
    Err("no closing single quote".into())
}

fn scan_double(bytes: &[u8], start: usize) -> Result<usize, String> {
    if bytes.get(start) != Some(&b'"') {
        return Err("no opening double quote at its position".into());
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                if matches!(bytes.get(i + 1), Some(b'\n' | b'\r') | None) {
                    return Err("it is a multi-line quoted scalar".into());
                }
                i += 2;
            }
            b'"' => return Ok(i + 1),
            b'\n' | b'\r' => return Err("it is a multi-line quoted scalar".into()),
            _ => i += 1,
        }
    }
    Err("no closing double quote".into())
}

/// Decodes the inside of a single-line double-quoted scalar. `None` on an invalid escape.
pub(crate) fn decode_double(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<char> {
            let s: String = chars.by_ref().take(n).collect();
            if s.len() != n {
                return None;
            }
            u32::from_str_radix(&s, 16).ok().and_then(char::from_u32)
        };
        out.push(match e {
            '0' => '\0',
            'a' => '\x07',
            'b' => '\x08',
            't' | '\t' => '\t',
            'n' => '\n',
            'v' => '\x0b',
            'f' => '\x0c',
            'r' => '\r',
            'e' => '\x1b',
            ' ' => ' ',
            '"' => '"',
            '/' => '/',
            '\\' => '\\',
            'N' => '\u{85}',
            '_' => '\u{a0}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            'U' => hex(&mut chars, 8)?,
            _ => return None,
        });
    }
    Some(out)
}

/// Why a value cannot be written at all (in any style), if it cannot.
pub(crate) fn invalid_value_reason(value: &str) -> Option<&'static str> {
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'))
    {
        return Some("it contains a line break or another control character");
    }
    None
}

/// Renders `value` for a scalar that was written in `style`: quoted styles are kept; a plain
/// scalar stays plain when the value is a safe plain string, otherwise it becomes
/// single-quoted. Returns the text and its style.
pub(crate) fn render(value: &str, style: Style, in_flow: bool) -> (String, Style) {
    match style {
        Style::DoubleQuoted => (double_quote(value), Style::DoubleQuoted),
        Style::SingleQuoted => (single_quote(value), Style::SingleQuoted),
        _ => {
            if is_safe_plain(value, in_flow) {
                (value.to_string(), Style::Plain)
            } else {
                (single_quote(value), Style::SingleQuoted)
            }
        }
    }
}

pub(crate) fn single_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

pub(crate) fn double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `value` written as a plain scalar is read back as exactly this *string* by YAML 1.2
/// (core schema), YAML 1.1 (PyYAML, libyaml) and go-yaml (Helm). Conservative: anything that
/// any of them could read as null, bool, int, float, timestamp or merge key, or that could
/// change the structure, is unsafe.
pub fn is_safe_plain(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false; // empty = null
    };
    if value.trim() != value {
        return false;
    }
    // Indicators that start something else (or need a following space we do not check).
    if matches!(
        first,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) {
        return false;
    }
    if value.contains(": ") || value.contains(":\t") || value.ends_with(':') {
        return false;
    }
    if value.contains(" #") || value.contains("\t#") {
        return false;
    }
    if value
        .chars()
        .any(|c| matches!(c, ',' | '[' | ']' | '{' | '}'))
    {
        return false;
    }
    if in_flow && value.contains(':') {
        return false;
    }
    if invalid_value_reason(value).is_some() {
        return false;
    }
    !is_non_string(value)
}

/// Whether some YAML reader resolves this plain scalar to a non-string type.
fn is_non_string(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n", "<<", "=",
    ];
    let lower = v.to_ascii_lowercase();
    if WORDS.contains(&lower.as_str()) {
        return true;
    }
    // .inf, -.inf, +.Inf, .nan, .NaN ...
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    let first = v.as_bytes()[0];
    let numeric_start = first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.');
    if !numeric_start {
        return false;
    }
    is_yaml_int(v)
        || is_yaml_float(v)
        || is_sexagesimal(v)
        || is_timestamp(v)
        || go_parses_number(v)
}

fn digits(s: &str, radix: u32, underscores: bool) -> bool {
    !s.is_empty()
        && s.chars().any(|c| c.is_digit(radix))
        && s.chars()
            .all(|c| c.is_digit(radix) || (underscores && c == '_'))
}

/// YAML 1.1 and 1.2 integers: decimal, 0x hex, 0o / 0 octal, 0b binary, `_` separators (1.1).
fn is_yaml_int(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return digits(h, 16, true);
    }
    if let Some(o) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        return digits(o, 8, true);
    }
    if let Some(b) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        return digits(b, 2, true);
    }
    digits(s, 10, true)
}

/// YAML 1.1 (`[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?`) and 1.2
/// (`[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`) floats.
fn is_yaml_float(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if let Some(exp) = exponent {
        let e = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if !digits(e, 10, false) {
            return false;
        }
    }
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let int_ok = int.is_empty() || digits(int, 10, true);
    match frac {
        Some(f) => {
            let frac_ok = f.is_empty() || digits(f, 10, true);
            int_ok && frac_ok && !(int.is_empty() && f.is_empty())
        }
        None => exponent.is_some() && !int.is_empty() && digits(int, 10, true),
    }
}

/// YAML 1.1 base 60: `190:20:30`, `1:20.5`.
fn is_sexagesimal(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    let mut parts = s.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() || !digits(head, 10, true) {
        return false;
    }
    let last = rest.len() - 1;
    rest.iter().enumerate().all(|(i, p)| {
        let p = if i == last {
            p.split_once('.').map(|(a, _)| a).unwrap_or(p)
        } else {
            p
        };
        !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit())
    })
}

/// YAML 1.1 timestamps start with `YYYY-M`.
fn is_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 6 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5].is_ascii_digit()
}

/// go-yaml (v2/v3, used by Helm) resolves plain scalars that start with a digit, sign or dot by
/// trying `strconv.ParseInt(s, 0, 64)` and `strconv.ParseFloat(s, 64)` after removing `_`.
/// Rust's parsers accept a close superset of the decimal forms; hex and binary ints are covered
/// by [`is_yaml_int`].
fn go_parses_number(v: &str) -> bool {
    let plain: String = v.chars().filter(|&c| c != '_').collect();
    if plain.parse::<f64>().is_ok() {
        return true;
    }
    // Hex floats: 0x1p-2.
    let s = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if let Some((m, e)) = h.split_once(['p', 'P']) {
            let m_ok = m
                .split('.')
                .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
                && m.chars().any(|c| c.is_ascii_hexdigit());
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            return m_ok && digits(e, 10, false);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_plain_values() {
        for v in [
            "",
            "1.10",
            "20240101",
            "yes",
            "Yes",
            "on",
            "off",
            "no",
            "y",
            "n",
            "N",
            "true",
            "False",
            "null",
            "~",
            "1e3",
            "1E3",
            "0x1F",
            "0o17",
            "017",
            "0b101",
            ".inf",
            "-.inf",
            "+.INF",
            ".nan",
            "-.nan",
            "1_000",
            "1.0",
            ".5",
            "5.",
            "+1",
            "-1",
            "1:20",
            "190:20:30.15",
            "2024-01-01",
            "a: b",
            "a #b",
            "-x",
            "#x",
            "&x",
            "*x",
            "!x",
            "|",
            ">",
            "'x",
            "\"x",
            "%x",
            "@x",
            "`x",
            " x",
            "x ",
            "[x]",
            "{x}",
            "a,b",
            "<<",
            "=",
            "?x",
            ":x",
            "x:",
            "0x1p-2",
            "1e+3",
            "+inf",
            "-Infinity",
            "1.5e-3",
        ] {
            assert!(!is_safe_plain(v, false), "{v:?} must be quoted");
        }
    }

    #[test]
    fn safe_plain_values() {
        for v in [
            "1.2.3",
            "v1.2.3",
            "latest",
            "sha-abc123",
            "main-1a2b3c",
            "123abc",
            "1e10abc",
            "my_tag",
            "v1.10",
            "registry.local:5000/app",
            "v1@sha256:abc",
            "a#b",
            "yes-please",
            "nullable",
            "0xZZ",
            "1.2.3-rc.1",
            "2024.01.01",
            "inf",
            "nan",
        ] {
            assert!(is_safe_plain(v, false), "{v:?} should stay plain");
        }
        assert!(!is_safe_plain("registry.local:5000/app", true));
    }

    #[test]
    fn decodes_double_quoted() {
        assert_eq!(
            decode_double(r#"a\x41\u00e9\\\""#).as_deref(),
            Some("aAé\\\"")
        );
        assert_eq!(decode_double(r"\q"), None);
    }
}
