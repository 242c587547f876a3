//! The resolved `chart` section: the chart repository, commit and values files to update.

use std::path::PathBuf;

use serde::Serialize;

use super::source::TokenSource;
use crate::git::{Author, MessageTemplate};
use crate::values::{DigestPin, ImageKeys};

/// One image in a values file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartImage {
    /// Where the tag (and repository, digest) go.
    pub keys: ImageKeys,
    /// Index into [`BuildSpec::images`](super::BuildSpec::images) of the image written here.
    pub image: usize,
}

impl Serialize for ChartImage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ChartImage", 4)?;
        st.serialize_field("tag", &self.keys.tag.to_string())?;
        st.serialize_field(
            "repository",
            &self.keys.repository.as_ref().map(|k| k.to_string()),
        )?;
        let digest = match &self.keys.digest {
            DigestPin::None => None,
            DigestPin::InTag => Some("in-tag".to_string()),
            DigestPin::Key(k) => Some(k.to_string()),
        };
        st.serialize_field("digest", &digest)?;
        st.serialize_field("image", &self.image)?;
        st.end()
    }
}

/// One values file and the images in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValuesTarget {
    /// Path relative to the chart repository's root.
    pub file: PathBuf,
    /// The images to set.
    pub images: Vec<ChartImage>,
}

/// The chart update.
#[derive(Debug, Clone, Serialize)]
pub struct ChartSpec {
    /// Repository URL.
    pub repo: String,
    /// Branch to update.
    pub branch: String,
    /// Branch to push to instead (pull-request flow).
    pub push_branch: Option<String>,
    /// Where the token comes from.
    pub token: Option<TokenSource>,
    /// Basic-auth user name for the token.
    pub username: Option<String>,
    /// Commit author.
    #[serde(serialize_with = "serialize_author")]
    pub author: Author,
    /// Commit message template, as written (parsed when resolving, so it is known to be valid).
    pub message: Option<String>,
    /// How long to keep retrying a push that lost a race (`None`: the default, 2 minutes).
    #[serde(
        rename = "retry_timeout_seconds",
        serialize_with = "serialize_opt_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_timeout: Option<std::time::Duration>,
    /// Values files.
    pub values: Vec<ValuesTarget>,
}

fn serialize_opt_seconds<S: serde::Serializer>(
    d: &Option<std::time::Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn serialize_author<S: serde::Serializer>(a: &Author, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{} <{}>", a.name, a.email))
}

impl ChartSpec {
    /// The retry policy of the chart's write-back: `retry-timeout` with the default backoff.
    pub fn retry_policy(&self) -> crate::git::RetryPolicy {
        self.retry_timeout
            .map(crate::git::RetryPolicy::with_timeout)
            .unwrap_or_default()
    }

    /// The parsed message template (the default when none is given).
    pub fn message_template(&self) -> Result<MessageTemplate, crate::error::GitError> {
        match &self.message {
            Some(m) => MessageTemplate::parse(m),
            None => Ok(MessageTemplate::default()),
        }
    }
}
