//! Errors of the manifest builders and the YAML rendering.

use cicd_agents_types::{ErrorKind, HasKind};

/// What building or rendering a manifest can fail with.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// An option that cannot go into a manifest.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option, as the builder method or CLI flag names it.
        option: String,
        /// What is wrong with its value.
        reason: String,
    },

    /// A manifest could not be rendered as YAML.
    #[error("rendering {kind} {name:?} as YAML: {source}")]
    Render {
        /// The manifest's kind.
        kind: &'static str,
        /// The manifest's name.
        name: String,
        /// The serializer's error.
        #[source]
        source: yaml_serde::Error,
    },

    /// A YAML document could not be read back as a manifest.
    #[error("YAML document {index}: {reason}")]
    Parse {
        /// The document's position in the stream, counting from 1.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl K8sError {
    /// Whether the caller's input is the cause: an option that cannot go into a manifest, or
    /// a YAML document that is not a manifest this module reads. Rendering failures are not
    /// (they are bugs). Front ends report invalid input as bad usage (exit code 2).
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == ErrorKind::InvalidInput
    }

    pub(crate) fn option(option: impl Into<String>, reason: impl Into<String>) -> Self {
        K8sError::InvalidOption {
            option: option.into(),
            reason: reason.into(),
        }
    }
}

impl HasKind for K8sError {
    /// [`ErrorKind::InvalidInput`] for an option or a YAML document that cannot be used,
    /// [`ErrorKind::Internal`] when a built manifest cannot be rendered.
    fn kind(&self) -> ErrorKind {
        match self {
            K8sError::InvalidOption { .. } | K8sError::Parse { .. } => ErrorKind::InvalidInput,
            K8sError::Render { .. } => ErrorKind::Internal,
        }
    }
}
