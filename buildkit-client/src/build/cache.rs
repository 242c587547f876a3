//! `--cache-to` and `--cache-from`: where the build cache is exported to and
//! imported from.
//!
//! Cache imports reach the Dockerfile frontend only through its
//! `cache-imports` attribute (the solve request's own import list is used for
//! LLB solves only), so both are filled; clients that forget the attribute
//! silently build without cache.

use cicd_agents_proto::moby::buildkit::v1::CacheOptionsEntry;
use serde::Serialize;

use crate::build::spec::TypedSpec;
use crate::error::{Error, Result};
use crate::flags::OptionField;

/// Cache backends the daemon can reach by itself.
const BACKENDS: &[&str] = &["registry", "inline", "gha", "s3", "azblob"];

/// One cache import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    spec: TypedSpec,
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

#[derive(Serialize)]
struct FrontendImport<'a> {
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "Attrs")]
    attrs: &'a std::collections::BTreeMap<String, String>,
}

/// The frontend attributes that make cache imports take effect:
/// `cache-imports` (JSON) and the older `cache-from` (registry refs).
pub(crate) fn frontend_import_attrs(imports: &[CacheEntry]) -> Vec<(String, String)> {
    if imports.is_empty() {
        return Vec::new();
    }
    let entries: Vec<FrontendImport<'_>> = imports
        .iter()
        .map(|e| FrontendImport {
            kind: &e.spec.kind,
            attrs: &e.spec.attrs,
        })
        .collect();
    let mut attrs = Vec::new();
    if let Ok(json) = serde_json::to_string(&entries) {
        attrs.push(("cache-imports".to_string(), json));
    }
    let refs: Vec<&str> = imports
        .iter()
        .filter_map(CacheEntry::registry_ref)
        .collect();
    if refs.len() == imports.len() {
        attrs.push(("cache-from".to_string(), refs.join(",")));
    }
    attrs
}

/// Checks that no two exports share a type (the daemon rejects that).
pub(crate) fn check_exports(exports: &[CacheEntry]) -> Result<()> {
    for (index, entry) in exports.iter().enumerate() {
        if exports[..index]
            .iter()
            .any(|other| other.kind() == entry.kind())
        {
            return Err(Error::option(
                OptionField::CacheTo,
                format!(
                    "two cache exports of type {}; the daemon allows one per type",
                    entry.kind()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cache_specs() {
        let export =
            CacheEntry::parse_export("type=registry,ref=r/app:cache,mode=max,image-manifest=true")
                .unwrap();
        assert_eq!(export.to_proto().attrs["mode"], "max");
        let import = CacheEntry::parse_import("r/app:cache").unwrap();
        assert_eq!(import.registry_ref(), Some("r/app:cache"));
        assert!(CacheEntry::parse_export("type=registry").is_err());
        assert!(CacheEntry::parse_export("type=registry,ref=x,mode=huge").is_err());
        assert!(CacheEntry::parse_export("type=floppy")
            .unwrap_err()
            .to_string()
            .contains("floppy"));
        assert!(CacheEntry::parse_export("type=local,dest=/tmp/c")
            .unwrap_err()
            .to_string()
            .contains("local"));
        assert!(CacheEntry::parse_export("type=inline").is_ok());
        assert_eq!(
            CacheEntry::parse_import(&export.to_string()).unwrap(),
            export
        );
    }

    #[test]
    fn imports_reach_the_frontend() {
        let attrs = frontend_import_attrs(&[CacheEntry::registry("r/app:cache")]);
        assert_eq!(
            attrs[0],
            (
                "cache-imports".to_string(),
                r#"[{"Type":"registry","Attrs":{"ref":"r/app:cache"}}]"#.to_string()
            )
        );
        assert_eq!(
            attrs[1],
            ("cache-from".to_string(), "r/app:cache".to_string())
        );
    }

    #[test]
    fn one_export_per_type() {
        assert!(check_exports(&[CacheEntry::registry("a"), CacheEntry::registry("b")]).is_err());
    }
}
