//! Finding and reading the ignore file of a Dockerfile build.
//!
//! The dockerfile frontend (`frontend/dockerui/config.go`) looks for
//! `<Dockerfile path>.dockerignore` in the *dockerfile* local first (it
//! asks for it with followpaths `[<filename>, <filename>.dockerignore]`);
//! only if that file does not exist does it read `.dockerignore` at the
//! root of the *context* local. So with `-f build/app.Dockerfile`, a
//! `build/app.Dockerfile.dockerignore` wins over `<context>/.dockerignore`,
//! even when it is empty. The patterns are parsed with
//! [`parse_ignore_file`] and sent back to us as `exclude-patterns`.
//!
//! The daemon does this itself; these helpers are for client-side uses of
//! the same rules (estimating what a build will send, tar fallbacks,
//! direct LLB builds).

use std::io;
use std::path::{Path, PathBuf};

use super::patterns::parse_ignore_file;

/// `.dockerignore`.
pub(crate) const DOCKERIGNORE_NAME: &str = ".dockerignore";

/// An ignore file that was found and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerIgnore {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its patterns, as [`parse_ignore_file`] returns them.
    pub patterns: Vec<String>,
}

/// Errors reading an ignore file.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub struct DockerIgnoreError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub source: io::Error,
}

/// `<dockerfile>.dockerignore`, next to the Dockerfile.
pub(crate) fn dockerfile_specific_ignore_path(dockerfile: &Path) -> PathBuf {
    let mut name = dockerfile.as_os_str().to_os_string();
    name.push(DOCKERIGNORE_NAME);
    PathBuf::from(name)
}

/// Which ignore file applies: `<dockerfile>.dockerignore` if it exists
/// (and `dockerfile` is given), else `<context_dir>/.dockerignore` if it
/// exists, else none.
pub fn find_dockerignore(
    context_dir: &Path,
    dockerfile: Option<&Path>,
) -> Result<Option<PathBuf>, DockerIgnoreError> {
    let mut candidates = Vec::with_capacity(2);
    if let Some(dockerfile) = dockerfile {
        candidates.push(dockerfile_specific_ignore_path(dockerfile));
    }
    candidates.push(context_dir.join(DOCKERIGNORE_NAME));
    for path in candidates {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => return Ok(Some(path)),
            Ok(_) => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                continue
            }
            Err(source) => return Err(DockerIgnoreError { path, source }),
        }
    }
    Ok(None)
}

/// Finds (see [`find_dockerignore`]) and parses the applicable ignore file.
pub fn load_dockerignore(
    context_dir: &Path,
    dockerfile: Option<&Path>,
) -> Result<Option<DockerIgnore>, DockerIgnoreError> {
    let Some(path) = find_dockerignore(context_dir, dockerfile)? else {
        return Ok(None);
    };
    let bytes = std::fs::read(&path).map_err(|source| DockerIgnoreError {
        path: path.clone(),
        source,
    })?;
    let patterns = parse_ignore_file(&String::from_utf8_lossy(&bytes));
    Ok(Some(DockerIgnore { path, patterns }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn dockerfile_specific_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(ctx.join("build")).unwrap();
        let dockerfile = ctx.join("build/app.Dockerfile");
        fs::write(&dockerfile, "FROM scratch").unwrap();

        assert_eq!(load_dockerignore(&ctx, Some(&dockerfile)).unwrap(), None);

        fs::write(ctx.join(".dockerignore"), "# c\n/target\n!target/keep\n").unwrap();
        let got = load_dockerignore(&ctx, Some(&dockerfile)).unwrap().unwrap();
        assert_eq!(got.path, ctx.join(".dockerignore"));
        assert_eq!(got.patterns, vec!["target", "!target/keep"]);

        // An empty Dockerfile-specific file still wins.
        fs::write(ctx.join("build/app.Dockerfile.dockerignore"), "").unwrap();
        let got = load_dockerignore(&ctx, Some(&dockerfile)).unwrap().unwrap();
        assert_eq!(got.path, ctx.join("build/app.Dockerfile.dockerignore"));
        assert!(got.patterns.is_empty());

        // Without a Dockerfile only the context's file counts.
        let got = load_dockerignore(&ctx, None).unwrap().unwrap();
        assert_eq!(got.path, ctx.join(".dockerignore"));
    }

    #[test]
    fn directories_named_like_ignore_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".dockerignore")).unwrap();
        assert_eq!(find_dockerignore(dir.path(), None).unwrap(), None);
    }

    #[test]
    fn specific_path_is_appended() {
        assert_eq!(
            dockerfile_specific_ignore_path(Path::new("a/Dockerfile")),
            PathBuf::from("a/Dockerfile.dockerignore")
        );
    }
}
