//! Read-only remote operations: resolve a ref to a commit, check that a chart repository is
//! reachable with the configured token, and preview an edit (clone, edit, diff; no commit, no
//! push). Same isolation and redaction as the write-back (see `command.rs`).

use std::path::Path;

use super::command::{GitOutput, GitRunner};
use super::{changed_files, validate_url, CommitVars, GitAuth, Worktree, WriteBack};
use crate::error::{GitError, Result};

/// What an edit would change, from [`WriteBack::preview`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The commit the edit was applied on.
    pub parent: String,
    /// The branch a commit would be pushed to.
    pub branch: String,
    /// Changed files, relative to the repository root.
    pub files: Vec<String>,
    /// `git diff` of the change (unified, `a/` and `b/` prefixes); empty when nothing changed.
    pub diff: String,
    /// The commit message a commit would get (`None` when nothing changed).
    pub message: Option<String>,
}

impl Preview {
    /// Whether the edit changes anything.
    pub fn changed(&self) -> bool {
        !self.files.is_empty()
    }
}

/// A temporary directory for one git job, removed when dropped: an empty `home` for git's
/// isolated environment and the path the clone goes to.
#[derive(Debug)]
pub(super) struct Scratch {
    _dir: tempfile::TempDir,
    pub(super) home: std::path::PathBuf,
    pub(super) repo: std::path::PathBuf,
}

/// A [`Scratch`] whose directory name starts with `prefix`.
pub(super) fn scratch(prefix: &str) -> Result<Scratch, GitError> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| GitError::Io {
            action: "creating a temporary directory".into(),
            source,
        })?;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).map_err(|source| GitError::Io {
        action: "creating a temporary directory".into(),
        source,
    })?;
    let repo = dir.path().join("repo");
    Ok(Scratch {
        _dir: dir,
        home,
        repo,
    })
}

/// `git ls-remote URL PATTERN…`: `(commit, ref)` pairs.
fn ls_remote(
    git: &GitRunner,
    url: &str,
    display_url: &str,
    patterns: &[&str],
    operation: &'static str,
) -> Result<Vec<(String, String)>, GitError> {
    let mut args = vec!["ls-remote", "--", url];
    args.extend_from_slice(patterns);
    let out = git.run(None, &args, &[], None)?;
    if !out.success {
        return Err(remote_failure(display_url, operation, &out));
    }
    Ok(out
        .stdout
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(sha, name)| (sha.trim().to_string(), name.trim().to_string()))
        .collect())
}

fn remote_failure(display_url: &str, operation: &'static str, out: &GitOutput) -> GitError {
    super::command::remote_failure_error(display_url, operation, out)
        .unwrap_or_else(|| super::command::command_error(operation, out))
}

fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves `git_ref` (a branch, `refs/heads/…`, a tag, `refs/tags/…`, any full ref, or a
/// commit id) in the repository at `url` to a commit id, with `git ls-remote`.
///
/// A full ref must exist exactly; a short name is looked up as `refs/heads/NAME`, then
/// `refs/tags/NAME` (annotated tags are peeled to their commit). A commit id is returned as
/// it is (servers do not list commits). An unknown ref gives [`GitError::BranchNotFound`],
/// rejected credentials [`GitError::AuthFailed`]; the token never appears in either.
///
/// Blocking; from async code call it in `spawn_blocking`.
///
/// ```no_run
/// use cicd_agents_gitops::git::{resolve_ref, GitAuth};
///
/// let auth = GitAuth::from_env("GIT_TOKEN")?;
/// let commit = resolve_ref("https://git.example.com/org/app.git", "refs/heads/main", Some(&auth), false)?;
/// println!("main is at {commit}");
/// # Ok::<(), cicd_agents_gitops::error::GitError>(())
/// ```
pub fn resolve_ref(
    url: &str,
    git_ref: &str,
    auth: Option<&GitAuth>,
    allow_insecure_http: bool,
) -> Result<String, GitError> {
    let (origin, display_url) = validate_url(url, auth.is_some(), allow_insecure_http)?;
    if is_object_id(git_ref) {
        return Ok(git_ref.to_ascii_lowercase());
    }
    let tmp = scratch("cicd-git-")?;
    let git = GitRunner::new(Path::new("git"), &tmp.home, &origin, auth);
    let candidates: Vec<String> = if git_ref.starts_with("refs/") {
        vec![git_ref.to_string()]
    } else {
        vec![
            format!("refs/heads/{git_ref}"),
            format!("refs/tags/{git_ref}"),
        ]
    };
    let patterns: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let refs = ls_remote(&git, url, &display_url, &patterns, "ls-remote")?;
    for candidate in &candidates {
        let peeled = format!("{candidate}^{{}}");
        if let Some((sha, _)) = refs.iter().find(|(_, name)| *name == peeled) {
            return Ok(sha.clone());
        }
        if let Some((sha, _)) = refs.iter().find(|(_, name)| name == candidate) {
            return Ok(sha.clone());
        }
    }
    Err(GitError::BranchNotFound {
        url: display_url,
        branch: git_ref.to_string(),
    })
}

impl WriteBack {
    /// Checks that the repository answers with the configured credentials and that the base
    /// branch exists; returns the branch's tip. Nothing is cloned.
    pub fn check_access(&self) -> Result<String, GitError> {
        let cfg = self.config();
        let tmp = scratch("cicd-git-")?;
        let git = GitRunner::new(&cfg.git_program, &tmp.home, &self.origin, cfg.auth.as_ref());
        self.remote_tip(&git)
    }

    /// The commit the base branch points at on the server (one `ls-remote`).
    pub(super) fn remote_tip(&self, git: &GitRunner) -> Result<String, GitError> {
        let cfg = self.config();
        let wanted = format!("refs/heads/{}", cfg.branch);
        let refs = ls_remote(git, &cfg.url, &self.display_url, &[&wanted], "ls-remote")?;
        refs.into_iter()
            .find(|(_, name)| *name == wanted)
            .map(|(sha, _)| sha)
            .ok_or_else(|| GitError::BranchNotFound {
                url: self.display_url.clone(),
                branch: cfg.branch.clone(),
            })
    }

    /// Clones the branch (or the push branch, if it exists), runs `edit` on the work tree and
    /// returns the diff it makes. Nothing is committed or pushed.
    ///
    /// ```no_run
    /// use cicd_agents_gitops::git::{Author, CommitVars, WriteBack, WriteBackConfig};
    ///
    /// let writeback = WriteBack::new(WriteBackConfig::new(
    ///     "file:///srv/git/charts.git",
    ///     "main",
    ///     Author { name: "ci".into(), email: "ci@example.com".into() },
    /// ))?;
    /// let preview = writeback.preview(|tree| {
    ///     let path = tree.resolve("charts/app/values.yaml")?;
    ///     cicd_agents_gitops::values::set_image(&path, &[("image.tag", "1.2.3")])?;
    ///     Ok(CommitVars::default())
    /// })?;
    /// print!("{}", preview.diff);
    /// # Ok::<(), cicd_agents_gitops::Error>(())
    /// ```
    pub fn preview<F>(&self, edit: F) -> Result<Preview>
    where
        F: FnOnce(&Worktree<'_>) -> Result<CommitVars>,
    {
        let cfg = self.config();
        let target = cfg
            .push_branch
            .clone()
            .unwrap_or_else(|| cfg.branch.clone());
        let tmp = scratch("cicd-git-")?;
        let git = GitRunner::new(&cfg.git_program, &tmp.home, &self.origin, cfg.auth.as_ref());
        tracing::info!(url = %self.display_url, branch = %cfg.branch, "cloning (shallow) for a preview");
        let out = git.clone_shallow(&cfg.url, &cfg.branch, &tmp.repo)?;
        if !out.success {
            return Err(self.remote_error("clone", &cfg.branch, &out).into());
        }
        if target != cfg.branch {
            self.sync(&git, &tmp.repo, &target)?;
        }
        let parent = git
            .local(&tmp.repo, ["rev-parse", "HEAD"])?
            .trim()
            .to_string();
        let vars = edit(&Worktree {
            root: &tmp.repo,
            attempt: 1,
        })?;
        let files = changed_files(&git, &tmp.repo)?;
        if files.is_empty() {
            return Ok(Preview {
                parent,
                branch: target,
                files,
                diff: String::new(),
                message: None,
            });
        }
        git.local(&tmp.repo, ["add", "--all"])?;
        let diff = git.local(
            &tmp.repo,
            [
                "diff",
                "--cached",
                "--no-color",
                "--no-ext-diff",
                "--no-renames",
            ],
        )?;
        let message = cfg.message.render(&vars, &files);
        Ok(Preview {
            parent,
            branch: target,
            files,
            diff,
            message: Some(message),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids() {
        assert!(is_object_id(&"a".repeat(40)));
        assert!(!is_object_id("main"));
        assert!(!is_object_id(&"g".repeat(40)));
    }
}
