//! Cache imports and exports (`--cache-from`, `--cache-to`: `type=…,key=value`
//! or a bare registry reference), as buildx reads them. `build::cache` turns
//! them into the solve request's cache options.

use cicd_agents_proto::moby::buildkit::v1::CacheOptionsEntry;

use super::{OptionField, TypedSpec};
use crate::error::{Error, Result};

/// Cache backends the daemon can reach by itself.
const BACKENDS: &[&str] = &["registry", "inline", "gha", "s3", "azblob"];

/// One cache import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub(crate) spec: TypedSpec,
}

impl CacheEntry {
    /// Parses a `--cache-to` value (`type=registry,ref=…,mode=max`, `type=inline`).
    pub fn parse_export(spec: &str) -> Result<CacheEntry> {
        Self::parse(OptionField::CacheTo, spec)
    }

    /// Parses a `--cache-from` value; a bare reference means `type=registry,ref=…`.
    pub fn parse_import(spec: &str) -> Result<CacheEntry> {
        Self::parse(OptionField::CacheFrom, spec)
    }

    fn parse(option: OptionField, spec: &str) -> Result<CacheEntry> {
        let parsed = TypedSpec::parse(option, spec, |short| {
            Some(TypedSpec::from_parts(
                "registry",
                [("ref".to_string(), short.to_string())],
            ))
        })?;
        let entry = CacheEntry { spec: parsed };
        entry.validate(option)?;
        Ok(entry)
    }

    /// A registry cache at `reference` (for export: `mode=max`).
    pub fn registry(reference: impl Into<String>) -> CacheEntry {
        CacheEntry {
            spec: TypedSpec::from_parts("registry", [("ref".to_string(), reference.into())]),
        }
    }

    /// A cache entry from a type and attributes.
    pub fn new(
        kind: &str,
        attrs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<CacheEntry> {
        let entry = CacheEntry {
            spec: TypedSpec::from_parts(kind, attrs),
        };
        entry.validate(OptionField::CacheTo)?;
        Ok(entry)
    }

    /// Sets an attribute (`mode`, `image-manifest`, `oci-mediatypes`, …).
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<String>) -> CacheEntry {
        self.spec.attrs.insert(key.into(), value.into());
        self
    }

    fn validate(&self, option: OptionField) -> Result<()> {
        let kind = self.spec.kind.as_str();
        if kind == "local" {
            return Err(Error::option(
                option,
                "type=local needs the session content store, which this client does not serve yet; use type=registry",
            ));
        }
        if !BACKENDS.contains(&kind) {
            return Err(Error::option(
                option,
                format!(
                    "unknown cache type {kind:?}; expected one of {}",
                    BACKENDS.join(", ")
                ),
            ));
        }
        if kind == "registry" && !self.spec.attrs.contains_key("ref") {
            return Err(Error::option(option, "type=registry needs ref=…"));
        }
        if let Some(mode) = self.spec.attrs.get("mode") {
            if mode != "min" && mode != "max" {
                return Err(Error::option(
                    option,
                    format!("mode={mode:?}; expected min or max"),
                ));
            }
        }
        Ok(())
    }

    /// The cache type.
    pub fn kind(&self) -> &str {
        &self.spec.kind
    }

    pub(crate) fn to_proto(&self) -> CacheOptionsEntry {
        CacheOptionsEntry {
            r#type: self.spec.kind.clone(),
            attrs: self.spec.attrs.clone().into_iter().collect(),
        }
    }

    pub(crate) fn registry_ref(&self) -> Option<&str> {
        (self.spec.kind == "registry")
            .then(|| self.spec.attrs.get("ref").map(String::as_str))
            .flatten()
    }
}

impl std::fmt::Display for CacheEntry {
    /// `type=KIND,key=value,…`, which the parsers read back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.spec.fmt(f)
    }
}
