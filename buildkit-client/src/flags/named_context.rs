//! Named contexts (`--build-context name=VALUE`): a directory, an image
//! (`docker-image://REF`) or a git/HTTP URL, as buildx reads them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};

/// Whether a context or named context is fetched by the daemon.
pub(crate) fn is_remote(text: &str) -> bool {
    text.starts_with("https://")
        || text.starts_with("http://")
        || text.starts_with("git://")
        || text.starts_with("ssh://")
        || text.starts_with("git@")
}

/// A named context (`--build-context name=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory.
    Local(PathBuf),
    /// An image (`docker-image://ref`).
    Image(String),
    /// A git or HTTP URL.
    Remote(String),
}

impl NamedContext {
    /// Parses the value of `--build-context name=VALUE`.
    pub fn parse(value: &str) -> Result<NamedContext> {
        if value.is_empty() {
            return Err(Error::option(OptionField::BuildContext, "empty value"));
        }
        if let Some(image) = value.strip_prefix("docker-image://") {
            if image.is_empty() {
                return Err(Error::option(
                    OptionField::BuildContext,
                    "docker-image:// needs an image reference",
                ));
            }
            return Ok(NamedContext::Image(image.to_string()));
        }
        if value.starts_with("oci-layout://") || value.starts_with("target:") {
            return Err(Error::option(
                OptionField::BuildContext,
                format!("{value:?}: oci-layout:// and target: contexts are not supported"),
            ));
        }
        if is_remote(value) {
            return Ok(NamedContext::Remote(value.to_string()));
        }
        Ok(NamedContext::Local(PathBuf::from(value)))
    }
}

impl FromStr for NamedContext {
    type Err = Error;
    fn from_str(value: &str) -> Result<NamedContext> {
        NamedContext::parse(value)
    }
}

impl fmt::Display for NamedContext {
    /// The value as written after `name=`, which parses back to the same context.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamedContext::Local(dir) => write!(f, "{}", dir.display()),
            NamedContext::Image(image) => write!(f, "docker-image://{image}"),
            NamedContext::Remote(url) => f.write_str(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parses_back() {
        for text in ["./dir", "docker-image://r/base:1", "https://h/r.git#main"] {
            let context: NamedContext = text.parse().unwrap();
            assert_eq!(context.to_string(), text);
        }
        assert!("oci-layout://x".parse::<NamedContext>().is_err());
        assert!("docker-image://".parse::<NamedContext>().is_err());
    }
}
