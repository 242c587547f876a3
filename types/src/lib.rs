//! Validated values that cross module and crate boundaries in cicd-agents, each with
//! exactly one parser, and the [`ErrorKind`] every crate's error answers.
//!
//! | type | rule |
//! |---|---|
//! | [`ImageRef`] | a docker image reference as buildx and `distribution/reference` parse it |
//! | [`ImageTag`] | distribution's tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` |
//! | [`BranchName`] | a branch name by `git check-ref-format --branch` rules |
//! | [`GitRef`] | a ref name (branch, tag, `refs/…` or commit) by `git check-ref-format` rules |
//! | [`GitUrl`] | an http(s), ssh, scp-like (`git@host:path`) or file git URL |
//! | [`redact_userinfo`] | the one place that hides credentials in URL-like text |
//! | [`duration`] | durations as people write them (`90`, `500ms`, `30s`, `90m`, `24h`, `7d`) |
//! | [`units`] | the one split of a number from its unit (`1.5s`, `10GB`) |
//! | [`ErrorKind`] / [`HasKind`] | what kind of failure an error is (exit codes, Python exception classes) |
//!
//! ```
//! use cicd_agents_types::{BranchName, ImageRef, ImageTag, GitUrl};
//!
//! let image: ImageRef = "registry.example:5000/team/app:1.2".parse().unwrap();
//! assert_eq!(image.registry(), "registry.example:5000");
//! assert_eq!(image.repository(), "team/app");
//! assert_eq!(image.tag().map(ImageTag::as_str), Some("1.2"));
//! assert!("Bad Tag!!".parse::<ImageTag>().is_err());
//! assert!("deploy.lock".parse::<BranchName>().is_err());
//!
//! let url: GitUrl = "https://user:secret@git.example/org/repo.git".parse().unwrap();
//! assert_eq!(url.host(), Some("git.example"));
//! assert_eq!(url.to_string(), "https://***@git.example/org/repo.git");
//! ```

#![deny(missing_docs)]

pub mod duration;
mod git;
mod image;
mod kind;
mod redact;
pub mod units;

pub use git::{BranchName, GitRef, GitRefError, GitUrl, GitUrlError, GitUrlScheme};
pub use image::{ImageRef, ImageRefError, ImageTag, ImageTagError};
pub use kind::{ErrorKind, HasKind};
pub use redact::{redact_userinfo, REDACTED};

/// `Serialize` as the text and `Deserialize` through the one parser.
macro_rules! serde_as_string {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_ref())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_string;
