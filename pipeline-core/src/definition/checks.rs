//! Checks of single values: relative paths, git refs, branches and URLs, image references, and
//! the buildx-syntax values the library parses, each refused at its line.

use std::path::{Component, Path, PathBuf};

use cicd_agents_types::{BranchName, GitRef, GitUrl, GitUrlScheme, ImageRef};

use super::error::DefinitionError;
use super::reader::Str;

/// Parses a buildx-syntax value of the definition, reporting a refusal at its line.
pub(super) fn buildx_value<T>(file: &str, at: &Str, value: &str) -> Result<T, DefinitionError>
where
    T: std::str::FromStr<Err = cicd_agents_buildkit::Error>,
{
    value
        .parse::<T>()
        .map_err(|err| refused(file, at, value, err))
}

/// A value of the definition the library refused, reported at its line.
pub(super) fn refused(
    file: &str,
    at: &Str,
    value: &str,
    err: cicd_agents_buildkit::Error,
) -> DefinitionError {
    match err {
        cicd_agents_buildkit::Error::InvalidOption {
            value: bad, reason, ..
        } => {
            let shown = if bad.is_empty() {
                value.to_string()
            } else {
                bad
            };
            at.invalid(file, format!("`{shown}`: {reason}"))
        }
        other => at.invalid(file, other.to_string()),
    }
}

pub(super) fn expand_home(text: &str) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(text)
}

pub(super) fn check_relative(path: &str, what: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let p = Path::new(path);
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{what} `{path}` must be relative, without `..`"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// A git ref by git's own rules ([`GitRef`]) that BuildKit's `#ref:subdir` fragment can carry
/// (no `#`).
pub(super) fn check_git_ref(r: &str) -> Result<(), String> {
    if r.contains('#') {
        return Err(format!(
            "`{r}`: a git ref in a BuildKit context cannot contain `#`"
        ));
    }
    GitRef::new(r)
        .map(drop)
        .map_err(|err| format!("`{}`: {}", err.name, err.reason))
}

/// A branch by git's own rules: the one [`BranchName`] the write-back uses too.
pub(super) fn check_branch(b: &str) -> Result<(), String> {
    BranchName::new(b)
        .map(drop)
        .map_err(|err| format!("`{}`: {}", err.name, err.reason))
}

pub(super) fn check_git_url(url: &str) -> Result<(), String> {
    let parsed = GitUrl::new(url).map_err(|err| {
        format!(
            "`{}` is not a URL ({}); expected https://host/org/repo.git",
            err.url, err.reason
        )
    })?;
    if !matches!(parsed.scheme(), GitUrlScheme::Https | GitUrlScheme::Http) {
        return Err(format!(
            "`{parsed}`: only https:// (or http:// on loopback) git URLs are supported"
        ));
    }
    if parsed.has_userinfo() {
        return Err("credentials in the URL are not allowed; use token-env or token-file".into());
    }
    if url.contains('#') {
        return Err(format!(
            "`{url}`: a git URL cannot contain `#` or spaces (use `ref` and `context`)"
        ));
    }
    if !url.trim_end_matches('/').ends_with(".git") {
        return Err(format!(
            "`{url}`: a git repository URL must end in `.git` (BuildKit reads other URLs as tarballs)"
        ));
    }
    Ok(())
}

/// An image reference of the definition (the one [`ImageRef`] parser), refused at its line.
pub(super) fn image_ref(file: &str, at: &Str, text: &str) -> Result<ImageRef, DefinitionError> {
    text.parse::<ImageRef>().map_err(|err| {
        at.invalid(
            file,
            format!("`{text}` is not an image reference: {}", err.reason),
        )
    })
}
