//! `--cache-to` and `--cache-from`: where the build cache is exported to and
//! imported from.
//!
//! Cache imports reach the Dockerfile frontend only through its
//! `cache-imports` attribute (the solve request's own import list is used for
//! LLB solves only), so both are filled; clients that forget the attribute
//! silently build without cache.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::flags::{CacheEntry, OptionField};

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
