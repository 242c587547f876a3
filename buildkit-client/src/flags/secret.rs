//! Build secrets (`--secret id=…,src=…` or `env=…`), as buildx's
//! `util/buildflags/secrets.go` reads them. The session serves their values
//! (`session::secrets`); this is the value users write.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use secrecy::SecretString;

use super::{split_fields, write_fields, OptionField};
use crate::error::{Error, Result};

/// Where a secret's value comes from.
#[derive(Clone)]
pub enum SecretSource {
    /// A file read when the daemon asks.
    File(PathBuf),
    /// An environment variable read when the daemon asks.
    Env(String),
    /// A value given directly.
    Value(SecretString),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
            SecretSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
            SecretSource::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// A build secret: an ID and where its value comes from.
#[derive(Debug, Clone)]
pub struct Secret {
    /// The ID a `RUN --mount=type=secret,id=…` refers to.
    pub id: String,
    /// Its source.
    pub source: SecretSource,
}

impl Secret {
    /// A secret read from a file.
    pub fn file(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Secret {
            id: id.into(),
            source: SecretSource::File(path.into()),
        }
    }

    /// A secret read from an environment variable.
    pub fn env(id: impl Into<String>, variable: impl Into<String>) -> Self {
        Secret {
            id: id.into(),
            source: SecretSource::Env(variable.into()),
        }
    }

    /// A secret with its value.
    pub fn value(id: impl Into<String>, value: impl Into<String>) -> Self {
        Secret {
            id: id.into(),
            source: SecretSource::Value(SecretString::from(value.into())),
        }
    }

    /// Parses the `--secret` syntax of buildx: `id=NAME[,src=FILE|,env=VAR]`,
    /// also `type=file|env`, `source=`, `required=`. With neither `src` nor
    /// `env`, the variable or file named like the ID is used, as buildx does.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut id = None;
        let mut kind = None;
        let mut src = None;
        let mut env = None;
        for field in split_fields(spec) {
            let (key, value) = field.split_once('=').ok_or_else(|| {
                Error::option(
                    OptionField::Secret,
                    format!("{field:?} in {spec:?} is not key=value"),
                )
            })?;
            match key.trim().to_ascii_lowercase().as_str() {
                "id" => id = Some(value.to_string()),
                "type" => kind = Some(value.to_string()),
                "src" | "source" => src = Some(value.to_string()),
                "env" => env = Some(value.to_string()),
                "required" => {}
                other => {
                    return Err(Error::option(
                        OptionField::Secret,
                        format!("unknown key {other:?} in {spec:?}; expected id, src, env or type"),
                    ));
                }
            }
        }
        let id = id
            .or_else(|| {
                src.as_deref()
                    .and_then(|s| std::path::Path::new(s).file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .or_else(|| env.clone())
            .ok_or_else(|| Error::option(OptionField::Secret, format!("{spec:?} has no id=")))?;
        if id.trim().is_empty() {
            return Err(Error::option(
                OptionField::Secret,
                format!("{spec:?} has an empty id"),
            ));
        }
        let source = match (kind.as_deref(), src, env) {
            (_, Some(_), Some(_)) => {
                return Err(Error::option(
                    OptionField::Secret,
                    format!("{spec:?} has both src= and env="),
                ));
            }
            (Some("env"), Some(name), None) | (_, None, Some(name)) => SecretSource::Env(name),
            (Some("file") | None, Some(path), None) => SecretSource::File(PathBuf::from(path)),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
            (None, None, None) => {
                if std::env::var_os(&id).is_some() {
                    SecretSource::Env(id.clone())
                } else {
                    SecretSource::File(PathBuf::from(&id))
                }
            }
            (Some(other), _, _) => {
                return Err(Error::option(
                    OptionField::Secret,
                    format!("type={other:?} in {spec:?}; expected file or env"),
                ));
            }
        };
        Ok(Secret { id, source })
    }
}

impl FromStr for Secret {
    type Err = Error;
    fn from_str(spec: &str) -> Result<Secret> {
        Secret::parse(spec)
    }
}

impl fmt::Display for Secret {
    /// `id=ID,src=PATH` or `id=ID,env=VAR`; a secret given by value shows only
    /// `id=ID` (its value is never written).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path;
        let mut fields = vec![("id", self.id.as_str())];
        match &self.source {
            SecretSource::File(p) => {
                path = p.to_string_lossy();
                fields.push(("src", &path));
            }
            SecretSource::Env(name) => fields.push(("env", name)),
            SecretSource::Value(_) => {}
        }
        write_fields(f, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildx_secret_specs() {
        let s = Secret::parse("id=npmrc,src=/home/me/.npmrc").unwrap();
        assert_eq!(s.id, "npmrc");
        assert!(
            matches!(s.source, SecretSource::File(ref p) if p == std::path::Path::new("/home/me/.npmrc"))
        );
        let s = Secret::parse("id=token,env=GITHUB_TOKEN").unwrap();
        assert!(matches!(s.source, SecretSource::Env(ref v) if v == "GITHUB_TOKEN"));
        let s = Secret::parse("type=env,id=X").unwrap();
        assert!(matches!(s.source, SecretSource::Env(ref v) if v == "X"));
        let s = Secret::parse("src=/run/secrets/aws").unwrap();
        assert_eq!(s.id, "aws");
        assert!(Secret::parse("id=a,src=b,env=c").is_err());
        assert!(Secret::parse("id=a,bogus=1")
            .unwrap_err()
            .to_string()
            .contains("bogus"));
        assert!(Secret::parse("novalue").is_err());
        // An empty ID, as buildx refuses it (found by the options fuzz target; input kept in
        // fuzz/regressions/options/secret-empty-id).
        for spec in ["iD=,,,,,\x0b\x0b", "id=", "id= ,src=/x", "env=", "src=/"] {
            let err = Secret::parse(spec).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid secret") && !err.contains("--secret"),
                "{spec:?}: {err}"
            );
        }
    }

    #[test]
    fn debug_and_display_never_show_values() {
        let s = Secret::value("tok", "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.to_string(), "id=tok");
    }

    #[test]
    fn display_parses_back() {
        for spec in [
            "id=npmrc,src=/home/me/.npmrc",
            "id=t,env=GITHUB_TOKEN",
            "id=a,\"src=/x,y\"",
        ] {
            let s: Secret = spec.parse().unwrap();
            let again: Secret = s.to_string().parse().unwrap();
            assert_eq!(again.to_string(), s.to_string(), "{spec}");
            assert_eq!(again.id, s.id);
        }
    }
}
