//! The resolved `source` section: where the application source comes from.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::git::GitAuth;

/// Where a git token comes from. Never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenSource {
    /// An environment variable (`token-env: VAR`).
    Env(String),
    /// A file (`token-file: PATH`); a trailing newline is removed.
    File(PathBuf),
}

impl TokenSource {
    /// Reads the token, with `username` as basic-auth user (default `x-access-token`).
    pub fn load(&self, username: Option<&str>) -> Result<GitAuth, crate::error::GitError> {
        let mut auth = match self {
            TokenSource::Env(var) => GitAuth::from_env(var)?,
            TokenSource::File(path) => GitAuth::from_file(path)?,
        };
        if let Some(user) = username {
            auth.username = user.to_string();
        }
        Ok(auth)
    }
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "${var}"),
            TokenSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Where the source comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceLocation {
    /// A git repository fetched by BuildKit.
    Git {
        /// The repository URL (no credentials).
        url: String,
        /// The ref to build.
        git_ref: String,
    },
    /// A local directory sent through the session.
    Local {
        /// The directory (absolute, or relative to the working directory).
        dir: PathBuf,
    },
}

/// The application source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Git repository or local directory.
    pub location: SourceLocation,
    /// Subdirectory that is the build context (empty: the root).
    pub context: String,
    /// Token for a private git repository.
    pub token: Option<TokenSource>,
    /// Basic-auth user name for the token (git: default `x-access-token`).
    pub username: Option<String>,
}

impl Source {
    /// The context as BuildKit takes it: `URL#ref[:subdir]` for git, the directory otherwise.
    pub fn buildkit_context(&self) -> String {
        match &self.location {
            SourceLocation::Git { url, git_ref } => {
                if self.context.is_empty() {
                    format!("{url}#{git_ref}")
                } else {
                    format!("{url}#{git_ref}:{}", self.context)
                }
            }
            SourceLocation::Local { dir } => self
                .local_context_dir()
                .unwrap_or_else(|| dir.clone())
                .display()
                .to_string(),
        }
    }

    /// For a local source, the context directory (`dir/context`).
    pub fn local_context_dir(&self) -> Option<PathBuf> {
        match &self.location {
            SourceLocation::Local { dir } if self.context.is_empty() => Some(dir.clone()),
            SourceLocation::Local { dir } => Some(dir.join(&self.context)),
            SourceLocation::Git { .. } => None,
        }
    }
}
