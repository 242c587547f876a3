//! Attestations (`--attest type=provenance,mode=max`, `--provenance`, `--sbom`),
//! as buildx's `util/buildflags/attests.go` reads them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::{parse_go_bool, split_fields, write_fields, OptionField};
use crate::error::{Error, Result};

closed_set! {
    /// The kinds of attestation BuildKit's Dockerfile frontend produces; the word is the
    /// name in `type=`, also the frontend attribute's suffix (`attest:NAME`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum AttestKind for Attest {
        /// SLSA provenance (`type=provenance`).
        Provenance = "provenance",
        /// A software bill of materials (`type=sbom`), made by a scanner image.
        Sbom = "sbom",
    }
}

/// One attestation request: `type=KIND[,disabled=BOOL][,key=value…]`.
///
/// Provenance takes `mode=min|max` (and BuildKit's other provenance
/// attributes); SBOM takes `generator=IMAGE` (the scanner image) and the like.
/// A disabled provenance turns off the `mode=min` provenance added by default.
///
/// ```
/// use cicd_agents_buildkit::flags::{Attest, AttestKind};
///
/// let max: Attest = "type=provenance,mode=max".parse()?;
/// assert_eq!(max.kind, AttestKind::Provenance);
/// assert_eq!(max.attrs["mode"], "max");
/// assert!(Attest::provenance("false")?.disabled);
/// assert_eq!(Attest::sbom("true")?.to_string(), "type=sbom");
/// # Ok::<(), cicd_agents_buildkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    /// What to attest.
    pub kind: AttestKind,
    /// Whether this attestation is turned off.
    pub disabled: bool,
    /// Every other attribute, as given.
    pub attrs: BTreeMap<String, String>,
}

impl Attest {
    /// An enabled attestation of `kind` with no attributes.
    pub fn new(kind: AttestKind) -> Attest {
        Attest {
            kind,
            disabled: false,
            attrs: BTreeMap::new(),
        }
    }

    /// Reads buildx's `--provenance VALUE`: `true`/`false` (Go's boolean
    /// spellings) or attributes such as `mode=max`.
    pub fn provenance(value: &str) -> Result<Attest> {
        Attest::shorthand(AttestKind::Provenance, value)
    }

    /// Reads buildx's `--sbom VALUE`: `true`/`false` or attributes such as
    /// `generator=IMAGE`.
    pub fn sbom(value: &str) -> Result<Attest> {
        Attest::shorthand(AttestKind::Sbom, value)
    }

    fn shorthand(kind: AttestKind, value: &str) -> Result<Attest> {
        if let Some(enabled) = parse_go_bool(value.trim()) {
            return Ok(Attest {
                disabled: !enabled,
                ..Attest::new(kind)
            });
        }
        if value.trim().is_empty() {
            return Err(Error::invalid(
                OptionField::Attest,
                value,
                "empty value; write true, false or key=value attributes",
            ));
        }
        let attest: Attest = format!("type={kind},{value}").parse()?;
        if attest.kind != kind {
            return Err(Error::invalid(
                OptionField::Attest,
                value,
                format!("type= cannot change the kind of a {kind} attestation"),
            ));
        }
        Ok(attest)
    }

    /// The frontend attribute asking for it (`attest:provenance` = the spec),
    /// or `None` when it is disabled.
    pub(crate) fn frontend_attr(&self) -> Option<(String, String)> {
        (!self.disabled).then(|| (format!("attest:{}", self.kind), self.to_string()))
    }
}

impl FromStr for Attest {
    type Err = Error;
    fn from_str(spec: &str) -> Result<Attest> {
        let invalid = |reason: String| Error::invalid(OptionField::Attest, spec, reason);
        let mut kind = None;
        let mut disabled = false;
        let mut attrs = BTreeMap::new();
        for field in split_fields(spec) {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| invalid(format!("{field:?} is not key=value")))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "type" => kind = Some(value.parse::<AttestKind>()?),
                "disabled" => {
                    disabled = parse_go_bool(value).ok_or_else(|| {
                        invalid(format!("disabled={value:?} is not true or false"))
                    })?
                }
                _ => {
                    if attrs.insert(key.to_string(), value.to_string()).is_some() {
                        return Err(invalid(format!("{key} is given twice")));
                    }
                }
            }
        }
        let kind = kind
            .ok_or_else(|| invalid("no type=; write type=provenance or type=sbom".to_string()))?;
        if kind == AttestKind::Provenance {
            if let Some(mode) = attrs.get("mode") {
                if mode != "min" && mode != "max" {
                    return Err(invalid(format!("mode={mode:?}; expected min or max")));
                }
            }
        }
        Ok(Attest {
            kind,
            disabled,
            attrs,
        })
    }
}

impl fmt::Display for Attest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields: Vec<(&str, &str)> = vec![("type", self.kind.name())];
        if self.disabled {
            fields.push(("disabled", "true"));
        }
        fields.extend(self.attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        write_fields(f, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildx_forms() {
        let a: Attest = "type=provenance,mode=max,builder-id=ci".parse().unwrap();
        assert_eq!(a.kind, AttestKind::Provenance);
        assert!(!a.disabled);
        assert_eq!(a.attrs["builder-id"], "ci");
        let off: Attest = "type=provenance,disabled=true".parse().unwrap();
        assert!(off.disabled);
        assert_eq!(off.frontend_attr(), None);
        assert_eq!(
            a.frontend_attr(),
            Some((
                "attest:provenance".into(),
                "type=provenance,builder-id=ci,mode=max".into()
            ))
        );
        let sbom: Attest = "type=sbom,generator=reg/scanner:1".parse().unwrap();
        assert_eq!(sbom.attrs["generator"], "reg/scanner:1");
    }

    #[test]
    fn shorthands_follow_canonicalize_attest() {
        assert!(Attest::provenance("false").unwrap().disabled);
        assert!(Attest::provenance("0").unwrap().disabled);
        assert!(!Attest::provenance("True").unwrap().disabled);
        let max = Attest::provenance("mode=max").unwrap();
        assert_eq!(max.to_string(), "type=provenance,mode=max");
        assert_eq!(Attest::sbom("true").unwrap().to_string(), "type=sbom");
        assert!(Attest::sbom("type=provenance").is_err());
        assert!(Attest::provenance("").is_err());
    }

    #[test]
    fn refuses_bad_specs_naming_the_value() {
        for bad in [
            "mode=max",
            "type=slsa",
            "type=provenance,mode=huge",
            "type=provenance,disabled=maybe",
            "type=provenance,novalue",
            "type=sbom,a=1,a=2",
        ] {
            let err = bad.parse::<Attest>().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidOption {
                        field: OptionField::Attest,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
            assert!(!err.to_string().contains("--"), "{err}");
        }
    }

    #[test]
    fn display_parses_back() {
        for spec in [
            "type=provenance",
            "type=provenance,disabled=true",
            "type=provenance,mode=max,\"builder-id=a,b\"",
            "type=sbom,generator=r/s:1,scan-stage=true",
        ] {
            let a: Attest = spec.parse().unwrap();
            assert_eq!(a.to_string().parse::<Attest>().unwrap(), a, "{spec}");
        }
    }
}
