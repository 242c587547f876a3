//! Request metadata of `FileSync/DiffCopy` (`session/filesync/filesync.go`).
//!
//! In a session the daemon is the gRPC *client*: when it wants a local
//! directory it opens `DiffCopy` with these metadata keys, and we (the
//! server) read them:
//!
//! | key | values |
//! |---|---|
//! | `dir-name` | the local's name (`context`, `dockerfile`, a named context) |
//! | `include-patterns` | one value per pattern |
//! | `exclude-patterns` | one value per pattern (`.dockerignore` syntax) |
//! | `followpaths` | one value per path |
//!
//! Values with non-ASCII characters cannot travel as gRPC metadata, so
//! BuildKit (v0.12+) URL-encodes them: if *any* value of a key contains a
//! character above U+007F, *all* values of that key are encoded with Go's
//! `url.QueryEscape` and a companion key `<key>-encoded: 1` is added. The
//! reader decodes every value of `<key>` with `url.QueryUnescape` when
//! `<key>-encoded`'s first value parses as true (`strconv.ParseBool`); a
//! value that fails to decode becomes empty, as upstream.

use std::collections::BTreeMap;

use super::walk::WalkOptions;

/// `dir-name`.
pub(crate) const KEY_DIR_NAME: &str = "dir-name";
/// `include-patterns`.
pub(crate) const KEY_INCLUDE_PATTERNS: &str = "include-patterns";
/// `exclude-patterns`.
pub(crate) const KEY_EXCLUDE_PATTERNS: &str = "exclude-patterns";
/// `followpaths`.
pub(crate) const KEY_FOLLOW_PATHS: &str = "followpaths";
/// Suffix of the companion key flagging URL-encoded values.
pub(crate) const ENCODED_SUFFIX: &str = "-encoded";

/// What the daemon asked for in one `DiffCopy` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffCopyRequest {
    /// Which local directory (`""` if the key is missing).
    pub dir_name: String,
    /// `include-patterns`.
    pub include_patterns: Vec<String>,
    /// `exclude-patterns`.
    pub exclude_patterns: Vec<String>,
    /// `followpaths`.
    pub follow_paths: Vec<String>,
}

impl DiffCopyRequest {
    /// Reads the request from metadata pairs (keys are compared
    /// case-insensitively; values in order of appearance).
    pub fn from_metadata<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut md = decode_metadata(pairs);
        let mut take = |key: &str| md.remove(key).unwrap_or_default();
        DiffCopyRequest {
            dir_name: take(KEY_DIR_NAME).into_iter().next().unwrap_or_default(),
            include_patterns: take(KEY_INCLUDE_PATTERNS),
            exclude_patterns: take(KEY_EXCLUDE_PATTERNS),
            follow_paths: take(KEY_FOLLOW_PATHS),
        }
    }

    /// The metadata a Go client would send for this request (keys in a
    /// stable order; empty lists are omitted; `dir-name` is always there).
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut put = |key: &str, values: &[String]| {
            let (values, encoded) = encode_values(values);
            for v in values {
                out.push((key.to_string(), v));
            }
            if encoded {
                out.push((format!("{key}{ENCODED_SUFFIX}"), "1".to_string()));
            }
        };
        put(KEY_DIR_NAME, std::slice::from_ref(&self.dir_name));
        if !self.include_patterns.is_empty() {
            put(KEY_INCLUDE_PATTERNS, &self.include_patterns);
        }
        if !self.exclude_patterns.is_empty() {
            put(KEY_EXCLUDE_PATTERNS, &self.exclude_patterns);
        }
        if !self.follow_paths.is_empty() {
            put(KEY_FOLLOW_PATHS, &self.follow_paths);
        }
        out
    }

    /// Walk options for this request (ownership and threading at defaults).
    pub fn walk_options(&self) -> WalkOptions {
        WalkOptions {
            include_patterns: self.include_patterns.clone(),
            exclude_patterns: self.exclude_patterns.clone(),
            follow_paths: self.follow_paths.clone(),
            ..WalkOptions::default()
        }
    }
}

/// Groups metadata pairs by lowercased key and decodes `-encoded` keys,
/// like `decodeOpts`. Values that are not valid UTF-8 are read lossily.
pub(crate) fn decode_metadata<I, K, V>(pairs: I) -> BTreeMap<String, Vec<String>>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        raw.entry(k.as_ref().to_ascii_lowercase())
            .or_default()
            .push(String::from_utf8_lossy(v.as_ref()).into_owned());
    }
    let mut out = BTreeMap::new();
    for (key, values) in &raw {
        let encoded = raw
            .get(&format!("{key}{ENCODED_SUFFIX}"))
            .and_then(|flag| flag.first())
            .is_some_and(|flag| parse_go_bool(flag) == Some(true));
        let values = if encoded {
            values
                .iter()
                .map(|v| query_unescape(v).unwrap_or_default())
                .collect()
        } else {
            values.clone()
        };
        out.insert(key.clone(), values);
    }
    out
}

/// `encodeStringForHeader`: if any value has a non-ASCII character, all
/// values are query-escaped and `true` is returned.
pub(crate) fn encode_values(values: &[String]) -> (Vec<String>, bool) {
    if values.iter().all(|v| v.is_ascii()) {
        return (values.to_vec(), false);
    }
    (values.iter().map(|v| query_escape(v)).collect(), true)
}

/// Go's `url.QueryEscape`: keeps `A-Z a-z 0-9 - _ . ~`, turns space into
/// `+`, and percent-encodes every other byte (uppercase hex).
pub(crate) fn query_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
    }
    out
}

/// A malformed `%` escape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL escape {0:?}")]
pub(crate) struct UnescapeError(pub(crate) String);

/// Go's `url.QueryUnescape`: `+` becomes space, `%XX` a byte; a `%` not
/// followed by two hex digits is an error. Bytes that do not form UTF-8 are
/// replaced (U+FFFD).
pub(crate) fn query_unescape(s: &str) -> Result<String, UnescapeError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        return Err(UnescapeError(
                            String::from_utf8_lossy(&bytes[i..end]).into_owned(),
                        ));
                    }
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn parses_plain_metadata() {
        let req = DiffCopyRequest::from_metadata(pairs(&[
            ("dir-name", "context"),
            ("exclude-patterns", "node_modules"),
            ("exclude-patterns", "!node_modules/keep"),
            ("followpaths", "Dockerfile"),
            ("followpaths", "src"),
            ("x-unrelated", "1"),
        ]));
        assert_eq!(req.dir_name, "context");
        assert_eq!(
            req.exclude_patterns,
            vec!["node_modules", "!node_modules/keep"]
        );
        assert!(req.include_patterns.is_empty());
        assert_eq!(req.follow_paths, vec!["Dockerfile", "src"]);
        let walk = req.walk_options();
        assert_eq!(walk.follow_paths, req.follow_paths);
        assert!(!walk.keep_ownership);
    }

    #[test]
    fn missing_dir_name_is_empty() {
        assert_eq!(
            DiffCopyRequest::from_metadata(Vec::<(String, String)>::new()),
            DiffCopyRequest::default()
        );
    }

    #[test]
    fn keys_are_case_insensitive() {
        let req = DiffCopyRequest::from_metadata(pairs(&[("Dir-Name", "dockerfile")]));
        assert_eq!(req.dir_name, "dockerfile");
    }

    #[test]
    fn decodes_encoded_values() {
        let req = DiffCopyRequest::from_metadata(pairs(&[
            ("dir-name", "context"),
            ("followpaths", "d%C3%A9j%C3%A0+vu%2Ffile"),
            ("followpaths", "plain"),
            ("followpaths-encoded", "1"),
            ("exclude-patterns", "100%"),
            ("exclude-patterns", "a+b"),
        ]));
        assert_eq!(req.follow_paths, vec!["déjà vu/file", "plain"]);
        // Not flagged: taken verbatim.
        assert_eq!(req.exclude_patterns, vec!["100%", "a+b"]);
        // A bad escape in an encoded key decodes to "".
        let req = DiffCopyRequest::from_metadata(pairs(&[
            ("include-patterns", "%zz"),
            ("include-patterns-encoded", "true"),
        ]));
        assert_eq!(req.include_patterns, vec![""]);
        // Only the first flag value counts, and it must parse as true.
        let req = DiffCopyRequest::from_metadata(pairs(&[
            ("include-patterns", "a%20b"),
            ("include-patterns-encoded", "yes"),
        ]));
        assert_eq!(req.include_patterns, vec!["a%20b"]);
    }

    #[test]
    fn encoding_round_trip() {
        let req = DiffCopyRequest {
            dir_name: "contexte-à".to_string(),
            include_patterns: vec![],
            exclude_patterns: vec!["*.log".to_string(), "tmp dir/".to_string()],
            follow_paths: vec!["ünïcode/😀.txt".to_string(), "ascii 100%+".to_string()],
        };
        let md = req.to_metadata();
        assert!(md.iter().all(|(_, v)| v.is_ascii()));
        assert!(md.contains(&("followpaths-encoded".to_string(), "1".to_string())));
        assert!(md.contains(&("dir-name-encoded".to_string(), "1".to_string())));
        // ASCII-only keys are not encoded, even with spaces or `%`.
        assert!(md.contains(&("exclude-patterns".to_string(), "tmp dir/".to_string())));
        assert!(!md.iter().any(|(k, _)| k == "exclude-patterns-encoded"));
        // All values of an encoded key are escaped.
        assert!(md.contains(&("followpaths".to_string(), "ascii+100%25%2B".to_string())));
        assert!(!md.iter().any(|(k, _)| k == "include-patterns"));
        assert_eq!(DiffCopyRequest::from_metadata(md), req);
    }

    #[test]
    fn go_query_escape() {
        assert_eq!(query_escape("a b/c?d=é~_.-"), "a+b%2Fc%3Fd%3D%C3%A9~_.-");
        assert_eq!(query_unescape("a+b%2Fc%3fd%3D%C3%A9").unwrap(), "a b/c?d=é");
        assert!(query_unescape("%").is_err());
        assert!(query_unescape("%4").is_err());
        assert!(query_unescape("%g0").is_err());
        assert_eq!(query_unescape("%ff").unwrap(), "\u{fffd}");
    }
}
