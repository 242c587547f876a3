//! Validated Kubernetes names and label parts, one type and one parser each, following the API
//! server's own rules (`k8s.io/apimachinery/pkg/util/validation`):
//!
//! | type | rule | used for |
//! |---|---|---|
//! | [`Dns1123Label`] | ≤ 63 of `[a-z0-9-]`, alphanumeric at both ends | namespaces, Job names (they become label values) |
//! | [`Dns1123Subdomain`] | ≤ 253, dot-separated DNS-1123 labels | Secrets, service accounts, storage classes |
//! | [`Dns1035Label`] | a DNS-1123 label that starts with a letter | Services (and the Deployment named like its Service) |
//! | [`LabelValue`] | ≤ 63 of `[A-Za-z0-9-_.]`, alphanumeric at both ends, or empty | label values |
//! | [`LabelKey`] | optional DNS-1123 subdomain prefix and `/`, then a name like a label value (not empty) | label keys |
//! | [`GenerateNamePrefix`] | a DNS-1123 label of ≤ 58 characters, written with or without the trailing `-` | `metadata.generateName` |
//!
//! Each parses with [`FromStr`] (or `parse`), shows itself with [`Display`](fmt::Display) and
//! refuses bad input with an [`InvalidValue`] that says what is wrong.

use std::fmt;
use std::str::FromStr;

use super::error::K8sError;

/// A value that does not follow a Kubernetes rule: what it is and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}: {reason}")]
pub struct InvalidValue {
    /// The refused text.
    pub value: String,
    /// What it should have been (`DNS-1123 label`, `label value`, …).
    pub what: &'static str,
    /// The rule it breaks.
    pub reason: String,
}

impl InvalidValue {
    fn new(value: &str, what: &'static str, reason: impl Into<String>) -> Self {
        InvalidValue {
            value: value.to_string(),
            what,
            reason: reason.into(),
        }
    }

    /// This error as the builders' [`K8sError::InvalidOption`] for `option`.
    pub(crate) fn for_option(self, option: &str) -> K8sError {
        K8sError::option(
            option,
            format!(
                "{:?} is not a valid {}: {}",
                self.value, self.what, self.reason
            ),
        )
    }
}

/// Checks the DNS-1123 label rule and says what is wrong.
fn dns1123_label_problem(text: &str, max: usize) -> Option<String> {
    if text.is_empty() {
        return Some("it is empty".into());
    }
    if text.len() > max {
        return Some(format!(
            "it has {} characters, at most {max} are allowed",
            text.len()
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "{bad:?} is not allowed (lower-case letters, digits and '-' only)"
        ));
    }
    if text.starts_with('-') || text.ends_with('-') {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses `text`, refusing what the API server would refuse.
            pub fn parse(text: &str) -> Result<Self, InvalidValue> {
                let check: fn(&str) -> Option<String> = $check;
                match check(text) {
                    None => Ok($name(text.to_string())),
                    Some(reason) => Err(InvalidValue::new(text, $what, reason)),
                }
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(text: &str) -> Result<Self, InvalidValue> {
                Self::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A DNS-1123 label (RFC 1123): at most 63 lower-case letters, digits and `-`, starting and
    /// ending with a letter or digit.
    Dns1123Label,
    "DNS-1123 label",
    |text| dns1123_label_problem(text, 63)
);

name_type!(
    /// A DNS-1123 subdomain: at most 253 characters, DNS-1123 labels joined by `.`.
    Dns1123Subdomain,
    "DNS-1123 subdomain",
    |text| {
        if text.len() > 253 {
            return Some(format!(
                "it has {} characters, at most 253 are allowed",
                text.len()
            ));
        }
        text.split('.').find_map(|part| {
            dns1123_label_problem(part, 63).map(|reason| {
                if part.is_empty() {
                    "it has an empty part between dots".to_string()
                } else {
                    reason
                }
            })
        })
    }
);

name_type!(
    /// A DNS-1035 label (RFC 1035), what Service names must be: a DNS-1123 label that starts
    /// with a letter.
    Dns1035Label,
    "DNS-1035 label",
    |text| {
        dns1123_label_problem(text, 63).or_else(|| {
            (!text.starts_with(|c: char| c.is_ascii_lowercase()))
                .then(|| "it must start with a lower-case letter".to_string())
        })
    }
);

/// Checks a label value (also the name part of a label key when `allow_empty` is false).
fn label_value_problem(text: &str, allow_empty: bool) -> Option<String> {
    if text.is_empty() {
        return (!allow_empty).then(|| "it is empty".to_string());
    }
    if text.len() > 63 {
        return Some(format!(
            "it has {} characters, at most 63 are allowed",
            text.len()
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "{bad:?} is not allowed (letters, digits, '-', '_' and '.' only)"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(text.chars().next()) || !alnum(text.chars().last()) {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

name_type!(
    /// A label value: empty, or at most 63 letters, digits, `-`, `_` and `.`, starting and
    /// ending with a letter or digit.
    LabelValue,
    "label value",
    |text| label_value_problem(text, true)
);

name_type!(
    /// A label key: an optional prefix (a DNS-1123 subdomain) and `/`, then a name of at most
    /// 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
    LabelKey,
    "label key",
    |text| {
        let (prefix, name) = match text.rsplit_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, text),
        };
        if let Some(prefix) = prefix {
            if let Err(err) = Dns1123Subdomain::parse(prefix) {
                return Some(format!("its prefix {:?}: {}", prefix, err.reason));
            }
        }
        label_value_problem(name, false)
    }
);

/// A `metadata.generateName` prefix: the API server appends 5 random characters, so the name
/// before the `-` is a DNS-1123 label of at most 57 characters. Written with or without the
/// trailing `-` (`build-` or `build`, the kubectl convention is the former);
/// [`GenerateNamePrefix::base`] is the name without it (for labels), [`Display`](fmt::Display)
/// the prefix with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GenerateNamePrefix(String);

impl GenerateNamePrefix {
    /// Parses `text` (`build` or `build-`).
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let base = text.strip_suffix('-').unwrap_or(text);
        match dns1123_label_problem(base, 57) {
            None => Ok(GenerateNamePrefix(base.to_string())),
            Some(reason) => Err(InvalidValue::new(text, "generateName prefix", reason)),
        }
    }

    /// The name without the trailing `-`, a valid label value.
    pub fn base(&self) -> &str {
        &self.0
    }
}

impl FromStr for GenerateNamePrefix {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        Self::parse(text)
    }
}

impl fmt::Display for GenerateNamePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_follow_the_api_servers_rules() {
        assert!(Dns1123Label::parse("build-app-1").is_ok());
        assert!(Dns1123Label::parse(&"a".repeat(63)).is_ok());
        for bad in ["", "Build", "-a", "a-", "a.b", "a_b", &"a".repeat(64)] {
            assert!(Dns1123Label::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Dns1123Subdomain::parse("regcred.v1").is_ok());
        assert!(Dns1123Subdomain::parse(&["a".repeat(63), "b".repeat(63)].join(".")).is_ok());
        for bad in ["", "a..b", ".a", "a.", "A", &"a.".repeat(127)] {
            assert!(Dns1123Subdomain::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Dns1035Label::parse("buildkitd").is_ok());
        let err = Dns1035Label::parse("1buildkitd").unwrap_err();
        assert!(
            err.to_string().contains("start with a lower-case letter"),
            "{err}"
        );
    }

    #[test]
    fn labels_and_generate_names() {
        for ok in ["", "v1.2.3", "A_b-c", &"x".repeat(63)] {
            assert!(LabelValue::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["build-", "-x", "a b", "{{x}}", &"x".repeat(64)] {
            assert!(LabelValue::parse(bad).is_err(), "{bad:?}");
        }
        for ok in ["team", "example.com/team", "app.kubernetes.io/part-of"] {
            assert!(LabelKey::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "/x", "Example.com/x", "a/b/c", "x/"] {
            assert!(LabelKey::parse(bad).is_err(), "{bad:?}");
        }
        let prefix = GenerateNamePrefix::parse("build-").unwrap();
        assert_eq!(prefix.base(), "build");
        assert_eq!(prefix.to_string(), "build-");
        assert_eq!(GenerateNamePrefix::parse("build").unwrap(), prefix);
        assert!(GenerateNamePrefix::parse(&"a".repeat(57)).is_ok());
        assert!(GenerateNamePrefix::parse(&"a".repeat(58)).is_err());
        assert!(GenerateNamePrefix::parse("build--").is_err());
    }
}
