//! The one place manifests become YAML text: a block-style emitter that quotes every string
//! a YAML 1.1 reader (kubectl, PyYAML) or a YAML 1.2 reader (the API server, Argo) could take
//! for anything but a string.
//!
//! The layout is the usual one (`kubectl get -o yaml`, libyaml's defaults): two-space indents,
//! sequences not indented under their key, multi-line strings as literal blocks (`|`). Scalars
//! are written plain only when no reader can misread them; otherwise single-quoted, or
//! double-quoted when they hold characters a single-quoted scalar cannot.

use std::fmt::Write as _;

use yaml_serde::Value;

/// Words that YAML 1.1 reads as booleans or null (YAML 1.2's core schema is a subset).
const RESERVED_WORDS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~", "=",
    "<<",
];

/// Whether a reader could take `text`, written plain, for a boolean, null, number, timestamp
/// or YAML 1.1's special keys. Deliberately broad: anything that starts like a number and is
/// made only of characters some number syntax uses (`0o17`, `0x1F`, `1_000`, `1e3`, `1:30`,
/// `1.2.3`) is quoted, as is anything that starts like a date.
pub(crate) fn is_ambiguous(text: &str) -> bool {
    if text.is_empty() || RESERVED_WORDS.contains(&text) {
        return true;
    }
    let unsigned = text
        .strip_prefix(['+', '-'])
        .unwrap_or(text)
        .to_ascii_lowercase();
    if matches!(unsigned.as_str(), ".inf" | ".nan") {
        return true;
    }
    let bytes = unsigned.as_bytes();
    let starts_numeric = bytes.first().is_some_and(u8::is_ascii_digit)
        || (bytes.first() == Some(&b'.') && bytes.get(1).is_some_and(u8::is_ascii_digit));
    if starts_numeric
        && bytes.iter().all(|b| {
            b.is_ascii_hexdigit()
                || matches!(
                    b,
                    b'x' | b'o' | b'b' | b'.' | b'_' | b':' | b'+' | b'-' | b'e'
                )
        })
    {
        return true;
    }
    // YAML 1.1 timestamps: 2001-12-14, 2001-12-14t21:59:43.10-05:00, …
    bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
}

/// Whether `text` can be written as a plain scalar in block context and read back as the
/// same string by every reader.
fn is_plain_safe(text: &str) -> bool {
    if is_ambiguous(text) {
        return false;
    }
    let Some(first) = text.chars().next() else {
        return false;
    };
    let second = text.chars().nth(1);
    let indicator_ok = match first {
        '-' | '?' | ':' => second.is_some_and(|c| !c.is_whitespace()),
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' => false,
        _ => true,
    };
    indicator_ok
        && !text.starts_with("---")
        && !text.starts_with("...")
        && !text.starts_with(char::is_whitespace)
        && !text.ends_with(char::is_whitespace)
        && !text.ends_with(':')
        && !text.contains(": ")
        && !text.contains(" #")
        && text.chars().all(|c| is_printable(c) && c != '\t')
}

/// Characters YAML allows unescaped (libyaml's printable set, without line breaks).
fn is_printable(c: char) -> bool {
    matches!(c, ' '..='~')
        || (c >= '\u{A0}' && c != '\u{FEFF}' && !matches!(c, '\u{2028}' | '\u{2029}'))
}

/// Whether a multi-line string can be a literal block: printable lines, no trailing blanks
/// (a reader would keep them but they are invisible), no leading blank on the first line.
fn is_literal_safe(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\n'])
        && text.split('\n').all(|line| {
            !line.ends_with([' ', '\t']) && line.chars().all(|c| is_printable(c) || c == '\t')
        })
}

fn double_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// A one-line scalar: plain, single-quoted or double-quoted.
fn inline_scalar(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_string()
    } else if !text.contains('\n') && text.chars().all(is_printable) {
        format!("'{}'", text.replace('\'', "''"))
    } else {
        double_quoted(text)
    }
}

fn is_empty_collection(value: &Value) -> bool {
    match value {
        Value::Sequence(items) => items.is_empty(),
        Value::Mapping(map) => map.is_empty(),
        _ => false,
    }
}

/// Writes a scalar (or an empty collection) after `key: ` or `- `; `indent` is the indent
/// of the line that holds it, used by literal blocks.
fn write_scalar(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Null => out.push_str("null\n"),
        Value::Bool(b) => {
            out.push_str(if *b { "true" } else { "false" });
            out.push('\n');
        }
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push('\n');
        }
        Value::String(text) if is_literal_safe(text) => {
            let body = text.trim_end_matches('\n');
            let trailing = text.len() - body.len();
            out.push_str(match trailing {
                0 => "|-\n",
                1 => "|\n",
                _ => "|+\n",
            });
            let pad = " ".repeat(indent + 2);
            for line in text[..body.len()].split('\n') {
                if !line.is_empty() {
                    out.push_str(&pad);
                    out.push_str(line);
                }
                out.push('\n');
            }
            for _ in 1..trailing {
                out.push('\n');
            }
        }
        Value::String(text) => {
            out.push_str(&inline_scalar(text));
            out.push('\n');
        }
        Value::Sequence(_) => out.push_str("[]\n"),
        Value::Mapping(_) => out.push_str("{}\n"),
        Value::Tagged(tagged) => write_scalar(out, &tagged.value, indent),
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(text) => inline_scalar(text),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => "null".to_string(),
    }
}

/// Writes a mapping's entries at `indent`; the first entry continues the current line when
/// `inline_first` (after `- `).
fn write_mapping(out: &mut String, map: &yaml_serde::Mapping, indent: usize, inline_first: bool) {
    for (index, (key, value)) in map.iter().enumerate() {
        if index > 0 || !inline_first {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&key_text(key));
        out.push(':');
        match value {
            Value::Mapping(inner) if !inner.is_empty() => {
                out.push('\n');
                write_mapping(out, inner, indent + 2, false);
            }
            Value::Sequence(items) if !items.is_empty() => {
                out.push('\n');
                write_sequence(out, items, indent, false);
            }
            Value::Tagged(tagged) => {
                out.push(' ');
                write_scalar(out, &tagged.value, indent);
            }
            scalar => {
                out.push(' ');
                write_scalar(out, scalar, indent);
            }
        }
    }
}

fn write_sequence(out: &mut String, items: &[Value], indent: usize, inline_first: bool) {
    for (index, item) in items.iter().enumerate() {
        if index > 0 || !inline_first {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match item {
            Value::Mapping(inner) if !is_empty_collection(item) => {
                write_mapping(out, inner, indent + 2, true);
            }
            Value::Sequence(inner) if !is_empty_collection(item) => {
                write_sequence(out, inner, indent + 2, true);
            }
            scalar => write_scalar(out, scalar, indent),
        }
    }
}

/// `value` as one YAML document (no leading `---`).
pub(crate) fn emit(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Mapping(map) if !map.is_empty() => write_mapping(&mut out, map, 0, false),
        Value::Sequence(items) if !items.is_empty() => write_sequence(&mut out, items, 0, false),
        scalar => write_scalar(&mut out, scalar, 0),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_a_yaml_1_1_or_1_2_reader_could_misread_is_quoted() {
        for text in [
            "y",
            "n",
            "yes",
            "No",
            "ON",
            "off",
            "true",
            "False",
            "null",
            "~",
            "",
            "1_000",
            "0o17",
            "0x1F",
            "0b101",
            "1e3",
            "1E3",
            "-1",
            "+1",
            ".5",
            "1.10",
            "1.2.3",
            "1:30",
            ".inf",
            "-.Inf",
            ".NaN",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "=",
            "<<",
            "0",
        ] {
            assert!(!is_plain_safe(text), "{text:?} would be written plain");
            let emitted = emit(&Value::String(text.to_string()));
            let read: Value = yaml_serde::from_str(&emitted).unwrap();
            assert_eq!(read, Value::String(text.to_string()), "{emitted}");
        }
        for text in [
            "build-app",
            "--addr",
            "10Gi",
            "app.kubernetes.io/name",
            "docker.io/moby/buildkit:v0.26.2-rootless",
            "tcp://127.0.0.1:1234",
            "1Gi",
            "v1.2.3",
            "yesterday",
            "nobody",
        ] {
            assert!(is_plain_safe(text), "{text:?} would be quoted");
        }
    }

    #[test]
    fn odd_strings_are_quoted_so_they_read_back_unchanged() {
        for text in [
            "a: b",
            "a #b",
            "x:",
            "- x",
            "{{inputs.parameters.image-tag}}",
            "it's",
            "tab\there",
            "bell\u{7}",
            " lead",
            "trail ",
            "---",
            "line1\nline2",
            "two\n\n",
            " indented\nblock\n",
            "trailing space \nx\n",
            "ünïcode",
        ] {
            let emitted = emit(&Value::String(text.to_string()));
            let read: Value = yaml_serde::from_str(&emitted).unwrap();
            assert_eq!(read, Value::String(text.to_string()), "{emitted}");
        }
    }

    #[test]
    fn nested_collections_use_the_kubectl_layout() {
        let value: Value = yaml_serde::from_str(
            "a:\n  b: 1\n  c:\n  - d: x\n    e: |\n      one\n      two\n  - - 1\n    - 2\n  f: {}\n  g: []\n",
        )
        .unwrap();
        assert_eq!(
            emit(&value),
            "a:\n  b: 1\n  c:\n  - d: x\n    e: |\n      one\n      two\n  - - 1\n    - 2\n  f: {}\n  g: []\n"
        );
    }
}
