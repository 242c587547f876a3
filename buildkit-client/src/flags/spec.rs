//! The `key=value,key=value` specs users write for `--output`, `--cache-to`,
//! `--cache-from` and friends.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::flags::split_fields;
use crate::flags::OptionField;

/// A parsed `type=…,k=v` spec: its type and the remaining attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypedSpec {
    /// The `type=` value.
    pub kind: String,
    /// Every other `key=value`.
    pub attrs: BTreeMap<String, String>,
}

impl TypedSpec {
    /// Parses `spec`; `option` names the flag in errors. A spec without `=`
    /// is handed to `shorthand` (e.g. a bare registry ref for `--cache-from`).
    pub fn parse(
        option: OptionField,
        spec: &str,
        shorthand: impl Fn(&str) -> Option<TypedSpec>,
    ) -> Result<TypedSpec> {
        let trimmed = spec.trim();
        if trimmed.is_empty() {
            return Err(Error::option(option, "empty value"));
        }
        if !trimmed.contains('=') {
            return shorthand(trimmed).ok_or_else(|| {
                Error::option(
                    option,
                    format!("{spec:?} is not of the form type=…,key=value"),
                )
            });
        }
        let mut kind = None;
        let mut attrs = BTreeMap::new();
        for field in split_fields(trimmed) {
            let (key, value) = field.split_once('=').ok_or_else(|| {
                Error::option(option, format!("{field:?} in {spec:?} is not key=value"))
            })?;
            let key = key.trim().to_ascii_lowercase();
            if key.is_empty() {
                return Err(Error::option(option, format!("empty key in {spec:?}")));
            }
            if key == "type" {
                kind = Some(value.trim().to_ascii_lowercase());
            } else if attrs.insert(key.clone(), value.to_string()).is_some() {
                return Err(Error::option(
                    option,
                    format!("{key} is given twice in {spec:?}"),
                ));
            }
        }
        let kind = kind.ok_or_else(|| Error::option(option, format!("{spec:?} has no type=")))?;
        if kind.is_empty() {
            return Err(Error::option(
                option,
                format!("{spec:?} has an empty type="),
            ));
        }
        Ok(TypedSpec { kind, attrs })
    }

    /// Builds a spec from a type and attributes, as the API and Python accept them.
    pub fn from_parts(kind: &str, attrs: impl IntoIterator<Item = (String, String)>) -> TypedSpec {
        TypedSpec {
            kind: kind.to_ascii_lowercase(),
            attrs: attrs.into_iter().collect(),
        }
    }

    /// Takes an attribute out.
    pub(crate) fn take(&mut self, key: &str) -> Option<String> {
        self.attrs.remove(key)
    }

    /// A boolean attribute (`true`, `1`, or present without value means true).
    pub(crate) fn flag(&self, option: OptionField, key: &str) -> Result<Option<bool>> {
        match self.attrs.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) if v.is_empty() || v == "true" || v == "1" => Ok(Some(true)),
            Some(v) if v == "false" || v == "0" => Ok(Some(false)),
            Some(v) => Err(Error::option(
                option,
                format!("{key}={v:?} is not true or false"),
            )),
        }
    }
}

impl std::fmt::Display for TypedSpec {
    /// `type=KIND,key=value,…`, which [`TypedSpec::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut fields = vec![("type", self.kind.as_str())];
        fields.extend(self.attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        crate::flags::write_fields(f, fields)
    }
}

/// Parses `KEY=VALUE` pairs (`--build-arg`, `--label`); a bare `KEY` takes
/// its value from the environment, as docker does, or is skipped if unset.
pub fn parse_key_values(option: OptionField, items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((key, value)) => {
                if key.trim().is_empty() {
                    return Err(Error::option(option, format!("{item:?} has an empty name")));
                }
                map.insert(key.trim().to_string(), value.to_string());
            }
            None => {
                if item.trim().is_empty() {
                    return Err(Error::option(option, "empty value"));
                }
                if let Ok(value) = std::env::var(item.trim()) {
                    map.insert(item.trim().to_string(), value);
                }
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typed_specs() {
        let spec = TypedSpec::parse(
            OptionField::Output,
            "type=image,name=a/b:1,push=true",
            |_| None,
        )
        .unwrap();
        assert_eq!(spec.kind, "image");
        assert_eq!(spec.attrs["name"], "a/b:1");
        let quoted = TypedSpec::parse(
            OptionField::Output,
            "type=image,\"name=a:1,b:2\",push=true",
            |_| None,
        )
        .unwrap();
        assert_eq!(quoted.attrs["name"], "a:1,b:2");
        assert!(TypedSpec::parse(OptionField::Output, "name=x", |_| None)
            .unwrap_err()
            .to_string()
            .contains("type="));
        assert!(TypedSpec::parse(OptionField::Output, "type=a,k=1,k=2", |_| None).is_err());
        let short = TypedSpec::parse(OptionField::CacheFrom, "reg/app:cache", |s| {
            Some(TypedSpec::from_parts(
                "registry",
                [("ref".to_string(), s.to_string())],
            ))
        })
        .unwrap();
        assert_eq!(short.attrs["ref"], "reg/app:cache");
        for text in ["type=image,name=a/b:1,push=true", "type=local,\"dest=a,b\""] {
            let spec = TypedSpec::parse(OptionField::Output, text, |_| None).unwrap();
            assert_eq!(spec.to_string(), text);
            let again = TypedSpec::parse(OptionField::Output, &spec.to_string(), |_| None);
            assert_eq!(again.unwrap(), spec);
        }
    }

    #[test]
    fn parses_key_values() {
        let map = parse_key_values(OptionField::BuildArg, &["A=1".into(), "B=x=y".into()]).unwrap();
        assert_eq!(map["A"], "1");
        assert_eq!(map["B"], "x=y");
        assert!(parse_key_values(OptionField::BuildArg, &["=1".into()]).is_err());
    }
}
