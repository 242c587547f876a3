//! Image tag and digest validation, and the key/value pairs an image update writes.
//!
//! Tags follow the OCI distribution grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; digests are
//! `sha256:` plus 64 lowercase hex digits. Validating before writing keeps arbitrary text (and
//! YAML or shell syntax) out of values files and commit messages.
//!
//! Digest pinning, when a build returned a digest ([`DigestPin`]):
//! * [`DigestPin::Key`]: the digest goes to its own key (`image.digest: sha256:…`), the tag
//!   key keeps the plain tag;
//! * [`DigestPin::InTag`]: the tag key gets `tag@sha256:…` (charts that render
//!   `{{ .Values.image.repository }}:{{ .Values.image.tag }}` then pull by digest).

use std::fmt;

use super::path::KeyPath;
use crate::error::TagError;

/// A validated image tag: the one [`cicd_agents_types::ImageTag`].
pub use cicd_agents_types::ImageTag;

/// A validated `sha256:` digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    /// Validates `digest` against `sha256:[0-9a-f]{64}`.
    pub fn new(digest: impl Into<String>) -> Result<Self, TagError> {
        let digest = digest.into();
        validate_digest(&digest)?;
        Ok(Self(digest))
    }

    /// The digest text (`sha256:…`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` ([`ImageTag`]).
pub fn validate_tag(tag: &str) -> Result<(), TagError> {
    ImageTag::new(tag).map(drop).map_err(TagError::from)
}

/// Checks an image digest: `sha256:[0-9a-f]{64}`.
pub fn validate_digest(digest: &str) -> Result<(), TagError> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(())
    } else {
        Err(TagError::InvalidDigest {
            digest: digest.to_string(),
        })
    }
}

/// Splits `tag@sha256:…` (or a bare tag) and validates both parts.
pub fn parse_tag_ref(text: &str) -> Result<(ImageTag, Option<Digest>), TagError> {
    match text.split_once('@') {
        Some((tag, digest)) => Ok((ImageTag::new(tag)?, Some(Digest::new(digest)?))),
        None => Ok((ImageTag::new(text)?, None)),
    }
}

/// How (and whether) to pin the digest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DigestPin {
    /// Write only the tag.
    #[default]
    None,
    /// Write the digest to this key as well.
    Key(KeyPath),
    /// Write `tag@sha256:…` to the tag key.
    InTag,
}

/// Where one image lives in a values file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKeys {
    /// The tag key, e.g. `image.tag`.
    pub tag: KeyPath,
    /// Optionally the repository key, e.g. `image.repository`.
    pub repository: Option<KeyPath>,
    /// Digest pinning.
    pub digest: DigestPin,
}

impl ImageKeys {
    /// Tag only, at `tag_key`.
    pub fn tag(tag_key: KeyPath) -> Self {
        Self {
            tag: tag_key,
            repository: None,
            digest: DigestPin::None,
        }
    }

    /// The `(key path, value)` pairs that set this image to `tag` (and `repository`, `digest`).
    ///
    /// With digest pinning configured, a missing digest is an error rather than a silent
    /// unpinned write.
    pub fn edits(
        &self,
        repository: Option<&str>,
        tag: &ImageTag,
        digest: Option<&Digest>,
    ) -> Result<Vec<(KeyPath, String)>, TagError> {
        let mut out = Vec::new();
        if let (Some(key), Some(repo)) = (&self.repository, repository) {
            out.push((key.clone(), repo.to_string()));
        }
        match (&self.digest, digest) {
            (DigestPin::None, _) => out.push((self.tag.clone(), tag.to_string())),
            (DigestPin::InTag, Some(d)) => out.push((self.tag.clone(), format!("{tag}@{d}"))),
            (DigestPin::Key(key), Some(d)) => {
                out.push((self.tag.clone(), tag.to_string()));
                out.push((key.clone(), d.to_string()));
            }
            (DigestPin::InTag, None) => {
                return Err(TagError::MissingDigest {
                    key: self.tag.to_string(),
                })
            }
            (DigestPin::Key(key), None) => {
                return Err(TagError::MissingDigest {
                    key: key.to_string(),
                })
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        for ok in ["1.2.3", "v1", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".x",
            "-x",
            "a b",
            "a:b",
            "a/b",
            "ä",
            &"a".repeat(129),
            "a\n",
        ] {
            assert!(validate_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digests() {
        let good = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert!(validate_digest(&good).is_ok());
        assert!(validate_digest(&good.to_uppercase()).is_err());
        assert!(validate_digest("sha256:abc").is_err());
        assert!(validate_digest(&good.replace("sha256", "sha512")).is_err());
        let (t, d) = parse_tag_ref(&format!("1.0@{good}"))
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.as_str(), "1.0");
        assert_eq!(d.map(|d| d.to_string()), Some(good));
    }
}
