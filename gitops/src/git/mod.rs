//! GitOps write-back: clone a branch, apply an edit, commit, push; retry when the branch moved.
//!
//! ```text
//! shallow clone (depth 1, single branch) of the base branch into a temporary directory
//! loop until the edit lands or RetryPolicy::timeout has passed since the start:
//!     from the second attempt on: fetch the branch tip alone (depth 1) into the same clone
//!         and reset the work tree to it (no new clone)
//!     run the edit closure on the work tree            -> error: stop, nothing pushed
//!     nothing changed (`git status`)                   -> success, no commit
//!     commit with the configured author and message
//!     push HEAD:refs/heads/<branch>  (never forced)
//!     read the per-ref status of `git push --porcelain`
//!         ok                                           -> success
//!         rejected as out of date (fetch first, non-fast-forward, stale info,
//!         incorrect old value, cannot lock ref)        -> jittered backoff, next attempt
//!         rejected otherwise (hook, protected branch)  -> error
//!         server error (5xx) or server unreachable     -> jittered backoff, next attempt
//!         credentials refused (401/403)                -> error
//! ```
//!
//! Because the edit is re-applied on the new tip and pushes are never forced, a concurrent
//! writer's commit is never lost: both land, one after the other.
//!
//! # A deadline, not a number of attempts
//!
//! With N writers racing for one branch, the last one can lose N-1 races in a row, so the
//! budget is time: a write-back keeps re-applying its edit on the fetched tip, sleeping a
//! jittered exponential backoff between attempts, until it lands or [`RetryPolicy::timeout`]
//! (default 2 minutes) has passed since it started. The backoff is cut short at the deadline;
//! no attempt starts after it, and one under way finishes. When the deadline passes, the error
//! says how many attempts were made and how long they took ([`GitError::RetriesExhausted`],
//! or the last transient error). A retry costs a shallow fetch of the branch tip, a hard
//! reset, the edit, a commit and a push (see `benches/README.md` for measured figures).
//!
//! # Transient server failures
//!
//! A 5xx answer or a server that cannot be reached ([`GitError::ServerError`],
//! [`GitError::Unreachable`]) is retried, during the clone, the fetch and the push, within the
//! same deadline as a rejected push: these are what a restarting or overloaded git host
//! produces, and a retry is safe because nothing is forced. A push whose answer was lost may
//! still have landed: the next attempt's fetch then finds our commit as the tip and the
//! write-back ends there instead of committing again. Refused credentials
//! ([`GitError::AuthFailed`]) and other errors are not retried.
//!
//! [`GitError::ServerError`]: crate::error::GitError::ServerError
//! [`GitError::Unreachable`]: crate::error::GitError::Unreachable
//! [`GitError::AuthFailed`]: crate::error::GitError::AuthFailed
//! [`GitError::RetriesExhausted`]: crate::error::GitError::RetriesExhausted
//!
//! # Why the system `git` and not `git2`
//!
//! * Shallow clone, fetch of a moved tip and push from a shallow repository are everyday `git`
//!   paths; libgit2's shallow support is recent and pushing from shallow clones is its least
//!   exercised corner.
//! * `git push --porcelain` reports the status of every ref in a stable, documented format,
//!   so a rejected ref is detected per ref (libgit2's `push` returns `Ok` for rejected refs and
//!   needs the `push_update_reference` callback to notice).
//! * No C build of libgit2 and OpenSSL in every build of the workspace; argocd-image-updater
//!   shells out to `git` the same way.
//! * The token still reaches only the transport: it is passed as an `http.extraHeader` through
//!   `GIT_CONFIG_*` environment variables of the git process (never argv, never the remote URL,
//!   never `.git/config`), the environment is otherwise cleared, and all git output is
//!   redacted (see `command.rs`). The one exposure left is the git process's own environment
//!   (`/proc/<pid>/environ`), readable only by the same user or root.
//!
//! The API is blocking (it runs processes and sleeps between attempts); from async code call it
//! in `spawn_blocking`.

mod command;
mod remote;
mod retry;
mod template;

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use cicd_agents_types::{BranchName, GitUrl, GitUrlScheme};
use secrecy::{ExposeSecret as _, SecretString};

pub use remote::{resolve_ref, Preview};
pub use retry::{format_elapsed, RetryPolicy};
pub use template::{CommitVars, MessageTemplate, DEFAULT_TEMPLATE};

use crate::error::{Error, GitError, Result};
use command::{command_error, remote_failure_error, GitOutput, GitRunner};
use retry::Budget;

/// HTTPS credentials: a token used as the basic-auth password.
#[derive(Clone)]
pub struct GitAuth {
    /// Basic-auth user name. GitHub ignores it for tokens (`x-access-token` is customary);
    /// GitLab wants `oauth2` or the token's name.
    pub username: String,
    /// The token. Never logged, never part of a URL, argument, config file or error.
    pub token: SecretString,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("username", &self.username)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl GitAuth {
    /// A token with the user name `x-access-token`.
    pub fn token(token: impl Into<String>) -> Self {
        Self {
            username: "x-access-token".into(),
            token: SecretString::from(token.into()),
        }
    }

    /// Reads the token from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, GitError> {
        let token = std::env::var(var).map_err(|_| GitError::InvalidConfig {
            reason: format!("the token variable `{var}` is not set (or not UTF-8)"),
        })?;
        Ok(Self::token(token.trim_end_matches(['\r', '\n'])))
    }

    /// Reads the token from a file (trailing newline removed).
    pub fn from_file(path: &Path) -> Result<Self, GitError> {
        let token = std::fs::read_to_string(path).map_err(|source| GitError::Io {
            action: format!("reading the token file {}", path.display()),
            source,
        })?;
        Ok(Self::token(token.trim_end_matches(['\r', '\n'])))
    }
}

/// Commit author (also used as committer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// What to write back where.
#[derive(Debug, Clone)]
pub struct WriteBackConfig {
    /// Repository URL: `https://…`; `http://` only for loopback hosts or with
    /// `allow_insecure_http`; `file://` (no credentials) for local repositories. Must not
    /// contain credentials.
    pub url: String,
    /// Branch to clone and build on.
    pub branch: String,
    /// Branch to push to, if not `branch` (pull-request flow). If it exists, the edit is
    /// applied on its tip; otherwise it is created from `branch`. Never force-pushed.
    pub push_branch: Option<String>,
    /// Commit author and committer.
    pub author: Author,
    /// Commit message.
    pub message: MessageTemplate,
    /// Token credentials (`None`: anonymous or `file://`).
    pub auth: Option<GitAuth>,
    /// How long to retry rejected pushes and transient server failures (5xx, unreachable).
    pub retry: RetryPolicy,
    /// The git program (default `git`).
    pub git_program: PathBuf,
    /// Allow `http://` to non-loopback hosts (the token would travel in clear text).
    pub allow_insecure_http: bool,
}

impl WriteBackConfig {
    /// A configuration with the default template, retry policy and `git`.
    pub fn new(url: impl Into<String>, branch: impl Into<String>, author: Author) -> Self {
        Self {
            url: url.into(),
            branch: branch.into(),
            push_branch: None,
            author,
            message: MessageTemplate::default(),
            auth: None,
            retry: RetryPolicy::default(),
            git_program: PathBuf::from("git"),
            allow_insecure_http: false,
        }
    }

    /// Sets how long to keep retrying (see [`RetryPolicy::timeout`]).
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry.timeout = timeout;
        self
    }
}

/// The result of a write-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBackOutcome {
    /// The pushed commit, or `None` when the edit changed nothing (no commit, no push).
    pub commit: Option<String>,
    /// The commit the edit was applied on (the remote tip at that time).
    pub parent: String,
    /// The branch pushed to (or that would have been pushed to).
    pub branch: String,
    /// Attempts made (1 unless pushes were rejected or the server failed).
    pub attempts: u32,
    /// Time from the start of the write-back (clone included) until it ended.
    pub elapsed: Duration,
    /// Changed files, relative to the repository root.
    pub files: Vec<String>,
    /// The commit message, when a commit was made.
    pub message: Option<String>,
}

impl WriteBackOutcome {
    /// Whether a commit was pushed.
    pub fn changed(&self) -> bool {
        self.commit.is_some()
    }
}

/// The checked-out repository handed to the edit closure.
#[derive(Debug)]
pub struct Worktree<'a> {
    root: &'a Path,
    attempt: u32,
}

impl Worktree<'_> {
    /// The work tree's root directory.
    pub fn root(&self) -> &Path {
        self.root
    }

    /// 1 on the first attempt, 2 after the first rejected push, …
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Resolves a repository-relative path, refusing absolute paths, `..`, paths into `.git`
    /// and symlinks that lead out of the repository.
    pub fn resolve(&self, relative: impl AsRef<Path>) -> Result<PathBuf, GitError> {
        let rel = relative.as_ref();
        let outside = || GitError::PathOutsideRepo {
            path: rel.to_path_buf(),
        };
        let mut normal = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(part) => normal.push(part),
                Component::CurDir => {}
                _ => return Err(outside()),
            }
        }
        if normal.as_os_str().is_empty() {
            return Err(outside());
        }
        if normal
            .components()
            .next()
            .is_some_and(|c| c.as_os_str() == ".git")
        {
            return Err(outside());
        }
        let joined = self.root.join(&normal);
        let root = std::fs::canonicalize(self.root).map_err(|source| GitError::Io {
            action: "resolving the work tree".into(),
            source,
        })?;
        // Check the deepest existing ancestor (the file itself if it exists).
        let mut probe = joined.clone();
        loop {
            if let Ok(real) = std::fs::canonicalize(&probe) {
                if !real.starts_with(&root) || real.starts_with(root.join(".git")) {
                    return Err(outside());
                }
                break;
            }
            if !probe.pop() {
                return Err(outside());
            }
        }
        Ok(joined)
    }
}

/// Performs write-backs with one configuration.
#[derive(Debug, Clone)]
pub struct WriteBack {
    config: WriteBackConfig,
    origin: String,
    display_url: String,
}

/// A shallow clone of the chart branch made ahead of its edit ([`WriteBack::checkout`]);
/// [`run`](Checkout::run) edits, commits and pushes on it as [`WriteBack::run`] does. The
/// clone lives in a temporary directory removed when the checkout is dropped.
#[derive(Debug)]
pub struct Checkout {
    writeback: WriteBack,
    scratch: remote::Scratch,
    /// Made ahead of time: "nothing to change" is checked against the branch's tip.
    ahead: bool,
    /// The commit cloned.
    cloned: String,
    /// When a look at the server that found the branch still at the cloned commit began
    /// ([`Checkout::check_unmoved`]).
    unmoved_seen: Option<Instant>,
    /// From when on "nothing to change" must hold ([`Checkout::fresh_as_of`]); `None`: from
    /// [`Checkout::run`] on.
    fresh_as_of: Option<Instant>,
    /// When the clone started (the deadline of a write-back that cloned just now).
    started: Instant,
}

impl Checkout {
    fn git(&self) -> GitRunner {
        let cfg = &self.writeback.config;
        GitRunner::new(
            &cfg.git_program,
            &self.scratch.home,
            &self.writeback.origin,
            cfg.auth.as_ref(),
        )
    }

    /// The commit the branch pointed at when it was cloned.
    pub fn cloned_commit(&self) -> &str {
        &self.cloned
    }

    /// Asks the server whether the branch still points at the cloned commit (one
    /// `ls-remote`). A `true` answer is remembered with the instant the question was asked: if
    /// that is not before [`Checkout::fresh_as_of`], [`Checkout::run`] trusts the clone to say
    /// "nothing to change" without asking again. A caller that waits on something (a build)
    /// asks while it waits, and says afterwards from when on the answer counts.
    pub fn check_unmoved(&mut self) -> Result<bool> {
        let asked = Instant::now();
        let unmoved = self.branch_unmoved(&self.git())?;
        if unmoved {
            self.unmoved_seen = Some(asked);
        }
        tracing::debug!(unmoved, "checked the branch against the clone made ahead");
        Ok(unmoved)
    }

    /// Says that "nothing to change" must hold for the branch as it is at `instant` or later.
    /// Without it, [`Checkout::run`] of a clone made ahead asks the server when it finds nothing
    /// to change; with it, an earlier [`Checkout::check_unmoved`] asked at or after `instant` is
    /// enough.
    pub fn fresh_as_of(&mut self, instant: Instant) {
        self.fresh_as_of = Some(instant);
    }

    /// Whether the branch on the server still points at the cloned commit (one `ls-remote`).
    fn branch_unmoved(&self, git: &GitRunner) -> Result<bool, GitError> {
        Ok(self.writeback.remote_tip(git)? == self.cloned)
    }

    /// Whether a look at the server already shows the clone current enough.
    fn seen_unmoved_in_time(&self) -> bool {
        matches!((self.unmoved_seen, self.fresh_as_of), (Some(seen), Some(needed)) if seen >= needed)
    }

    /// Runs `edit` on the clone, commits and pushes, retrying on rejection: see
    /// [`WriteBack::run`].
    pub fn run<F>(self, mut edit: F) -> Result<WriteBackOutcome>
    where
        F: FnMut(&Worktree<'_>) -> Result<CommitVars>,
    {
        let this = &self.writeback;
        let cfg = &this.config;
        let target = cfg
            .push_branch
            .clone()
            .unwrap_or_else(|| cfg.branch.clone());
        let git = self.git();
        let repo = self.scratch.repo.clone();
        let budget = if self.ahead {
            Budget::start(&cfg.retry)
        } else {
            Budget::since(&cfg.retry, self.started)
        };
        // What the last failed attempt ran into, for the error once the deadline passed.
        let mut last_failure = LastFailure::None;
        // A commit whose push failed in transit (5xx, connection lost): the server may have
        // taken it anyway, which the next attempt's fetch shows.
        let mut in_flight: Option<WriteBackOutcome> = None;
        let mut attempt = 0u32;
        loop {
            if attempt > 0 && !this.pause_after(attempt, &last_failure, &budget) {
                break;
            }
            attempt += 1;
            let attempt_started = Instant::now();
            let synced = attempt > 1 || target != cfg.branch;
            if synced {
                match this.sync(&git, &repo, &target) {
                    Ok(()) => {}
                    Err(err) if err.is_transient() => {
                        last_failure = LastFailure::Transient(err);
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            // Unsynced, the work tree is the clone as it was made.
            let parent = if synced {
                git.local(&repo, ["rev-parse", "HEAD"])?.trim().to_string()
            } else {
                self.cloned.clone()
            };
            if let Some(landed) = in_flight.take() {
                if landed.commit.as_deref() == Some(parent.as_str()) {
                    tracing::info!(commit = %parent, branch = %target, attempt, "the push that failed in transit had landed");
                    return Ok(WriteBackOutcome {
                        attempts: attempt - 1,
                        elapsed: budget.elapsed(),
                        ..landed
                    });
                }
            }
            let worktree = Worktree {
                root: &repo,
                attempt,
            };
            let vars = edit(&worktree)?;
            let files = changed_files(&git, &repo)?;
            if files.is_empty() {
                // A clone made ahead may be stale. A change needs no check (a push onto a moved
                // branch is rejected and retried), but "nothing to change" holds only for the
                // branch's current tip.
                if self.ahead && !synced && !self.seen_unmoved_in_time() {
                    match self.branch_unmoved(&git) {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::debug!(branch = %target, "the branch moved after the clone made ahead; fetching it");
                            last_failure = LastFailure::None;
                            continue;
                        }
                        Err(err) if err.is_transient() => {
                            last_failure = LastFailure::Transient(err);
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
                tracing::info!(branch = %target, parent = %parent, attempt, "nothing changed; no commit");
                return Ok(WriteBackOutcome {
                    commit: None,
                    parent,
                    branch: target,
                    attempts: attempt,
                    elapsed: budget.elapsed(),
                    files,
                    message: None,
                });
            }
            git.local(&repo, ["add", "--all"])?;
            let message = cfg.message.render(&vars, &files);
            let (name, email) = (cfg.author.name.as_str(), cfg.author.email.as_str());
            let out = git.run(
                Some(&repo),
                [
                    "commit",
                    "--quiet",
                    "--no-verify",
                    "--no-gpg-sign",
                    "--cleanup=strip",
                    "-F",
                    "-",
                ],
                &[
                    ("GIT_AUTHOR_NAME", name),
                    ("GIT_AUTHOR_EMAIL", email),
                    ("GIT_COMMITTER_NAME", name),
                    ("GIT_COMMITTER_EMAIL", email),
                ],
                Some(&message),
            )?;
            if !out.success {
                return Err(command_error("commit", &out).into());
            }
            let commit = git.local(&repo, ["rev-parse", "HEAD"])?.trim().to_string();
            tracing::info!(commit = %commit, parent = %parent, branch = %target, attempt, files = ?files, "pushing");
            let pushed = this.push(&git, &repo, &target);
            tracing::debug!(
                attempt,
                attempt_ms = attempt_started.elapsed().as_millis() as u64,
                "attempt finished"
            );
            let outcome = WriteBackOutcome {
                commit: Some(commit.clone()),
                parent: parent.clone(),
                branch: target.clone(),
                attempts: attempt,
                elapsed: budget.elapsed(),
                files,
                message: Some(message),
            };
            match pushed {
                Ok(PushStatus::Pushed) => {
                    tracing::info!(commit = %commit, branch = %target, attempt, elapsed_ms = outcome.elapsed.as_millis() as u64, "pushed");
                    return Ok(outcome);
                }
                Ok(PushStatus::Rejected {
                    reason,
                    retryable: false,
                }) => {
                    return Err(GitError::PushRejected {
                        url: this.display_url.clone(),
                        branch: target,
                        reason,
                    }
                    .into());
                }
                Ok(PushStatus::Rejected {
                    reason,
                    retryable: true,
                }) => last_failure = LastFailure::Rejected(reason),
                Err(err) if err.is_transient() => {
                    in_flight = Some(outcome);
                    last_failure = LastFailure::Transient(err);
                }
                Err(err) => return Err(err.into()),
            }
        }
        let elapsed = budget.elapsed();
        Err(Error::Git(match last_failure {
            LastFailure::Transient(err) => err.with_attempts(attempt, elapsed),
            LastFailure::Rejected(reason) => GitError::RetriesExhausted {
                url: this.display_url.clone(),
                branch: target,
                attempts: attempt,
                elapsed,
                reason,
            },
            LastFailure::None => GitError::RetriesExhausted {
                url: this.display_url.clone(),
                branch: target,
                attempts: attempt,
                elapsed,
                reason: String::new(),
            },
        }))
    }
}

/// What the last failed attempt of a write-back ran into.
enum LastFailure {
    None,
    /// The push was rejected because the branch moved.
    Rejected(String),
    /// The server answered 5xx or could not be reached.
    Transient(GitError),
}

/// How a push ended, from `git push --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushStatus {
    Pushed,
    Rejected { reason: String, retryable: bool },
}

impl WriteBack {
    /// Validates the configuration.
    pub fn new(config: WriteBackConfig) -> Result<Self, GitError> {
        let (origin, display_url) = validate_url(
            &config.url,
            config.auth.is_some(),
            config.allow_insecure_http,
        )?;
        validate_branch(&config.branch)?;
        if let Some(b) = &config.push_branch {
            validate_branch(b)?;
        }
        if config.author.name.trim().is_empty() || config.author.email.trim().is_empty() {
            return Err(GitError::InvalidConfig {
                reason: "the commit author needs a name and an e-mail".into(),
            });
        }
        if [&config.author.name, &config.author.email]
            .iter()
            .any(|s| s.chars().any(|c| c.is_control() || matches!(c, '<' | '>')))
        {
            return Err(GitError::InvalidConfig {
                reason: "the commit author's name and e-mail must not contain `<`, `>` or control characters".into(),
            });
        }
        if let Some(auth) = &config.auth {
            let token = auth.token.expose_secret();
            if token.is_empty() || token.chars().any(|c| c.is_control() || c == ' ') {
                return Err(GitError::InvalidConfig {
                    reason: "the token is empty or contains spaces or control characters".into(),
                });
            }
            if auth.username.is_empty()
                || auth.username.contains(':')
                || auth.username.chars().any(char::is_control)
            {
                return Err(GitError::InvalidConfig {
                    reason: "the basic-auth user name must be non-empty without `:` or control characters".into(),
                });
            }
        }
        if config.retry.timeout.is_zero() {
            return Err(GitError::InvalidConfig {
                reason: "the retry timeout must be longer than zero".into(),
            });
        }
        Ok(Self {
            config,
            origin,
            display_url,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WriteBackConfig {
        &self.config
    }

    /// Clones, runs `edit` on the work tree, commits and pushes, retrying on rejection (the
    /// edit runs again on the new tip each time, so it must be idempotent: set values, don't
    /// append). `edit` returns the variables for the commit message (`{files}` is filled in
    /// here). An error from `edit` stops the write-back before anything is committed.
    pub fn run<F>(&self, edit: F) -> Result<WriteBackOutcome>
    where
        F: FnMut(&Worktree<'_>) -> Result<CommitVars>,
    {
        self.clone_into_checkout(false)?.run(edit)
    }

    /// Makes the shallow clone now, for a [`Checkout::run`] later: a caller that knows it will
    /// write back (a pipeline, while its image builds) takes the clone off the critical path.
    /// If the branch moves in between, a change is pushed onto a moved branch, rejected and
    /// re-applied on the new tip as in any race; "nothing to change" is trusted only after
    /// checking that the branch has not moved (one `ls-remote`). The retry deadline counts
    /// from that run.
    pub fn checkout(&self) -> Result<Checkout, GitError> {
        self.clone_into_checkout(true)
    }

    fn clone_into_checkout(&self, ahead: bool) -> Result<Checkout, GitError> {
        let mut checkout = Checkout {
            writeback: self.clone(),
            scratch: remote::scratch("cicd-writeback-")?,
            ahead,
            cloned: String::new(),
            unmoved_seen: None,
            fresh_as_of: None,
            started: Instant::now(),
        };
        let budget = Budget::since(&self.config.retry, checkout.started);
        let git = checkout.git();
        self.clone_with_retries(&git, &checkout.scratch.repo, &budget)?;
        checkout.cloned = git
            .local(&checkout.scratch.repo, ["rev-parse", "HEAD"])?
            .trim()
            .to_string();
        Ok(checkout)
    }

    /// The shallow clone, retried like a push when the server answers 5xx or cannot be
    /// reached, within the same deadline.
    fn clone_with_retries(
        &self,
        git: &GitRunner,
        repo: &Path,
        budget: &Budget<'_>,
    ) -> Result<(), GitError> {
        let cfg = &self.config;
        let mut attempt = 1;
        loop {
            tracing::info!(url = %self.display_url, branch = %cfg.branch, attempt, "cloning (shallow)");
            if repo.exists() {
                std::fs::remove_dir_all(repo).map_err(|source| GitError::Io {
                    action: "removing a partial clone".into(),
                    source,
                })?;
            }
            let out = git.clone_shallow(&cfg.url, &cfg.branch, repo)?;
            if out.success {
                return Ok(());
            }
            let err = self.remote_error("clone", &cfg.branch, &out);
            if !err.is_transient() {
                return Err(err.with_attempts(attempt, budget.elapsed()));
            }
            let failure = LastFailure::Transient(err);
            let go_on = self.pause_after(attempt, &failure, budget);
            match failure {
                LastFailure::Transient(err) if !go_on => {
                    return Err(err.with_attempts(attempt, budget.elapsed()))
                }
                _ => attempt += 1,
            }
        }
    }

    /// Logs why attempt `attempt` failed and sleeps the policy's backoff (cut short at the
    /// deadline). Returns `false`, without sleeping, once the deadline has passed.
    fn pause_after(&self, attempt: u32, failure: &LastFailure, budget: &Budget<'_>) -> bool {
        let Some(delay) = budget.next_delay(attempt) else {
            tracing::warn!(
                attempt,
                elapsed_ms = budget.elapsed().as_millis() as u64,
                "the retry deadline has passed; giving up"
            );
            return false;
        };
        let delay_ms = delay.as_millis() as u64;
        match failure {
            LastFailure::Rejected(reason) => tracing::warn!(
                attempt, reason = %reason, delay_ms,
                "push rejected because the branch moved; fetching the new tip and re-applying the edit"
            ),
            LastFailure::Transient(err) => tracing::warn!(
                attempt, error = %err, delay_ms,
                "the git server failed or could not be reached; retrying"
            ),
            LastFailure::None => {}
        }
        std::thread::sleep(delay);
        true
    }

    /// Fetches the tip to build on (the push branch if it exists, else the base branch) and
    /// resets the work tree to it, dropping any local commit and change.
    fn sync(&self, git: &GitRunner, repo: &Path, target: &str) -> Result<(), GitError> {
        let mut start = self.config.branch.clone();
        if target != self.config.branch {
            let out = git.run(
                Some(repo),
                [
                    "ls-remote",
                    "--heads",
                    "origin",
                    &format!("refs/heads/{target}"),
                ],
                &[],
                None,
            )?;
            if !out.success {
                return Err(self.remote_error("ls-remote", target, &out));
            }
            if !out.stdout.trim().is_empty() {
                start = target.to_string();
            }
        }
        let tracking = format!("refs/remotes/origin/{start}");
        let out = git.run(
            Some(repo),
            [
                "fetch",
                "--quiet",
                "--depth",
                "1",
                "--no-tags",
                "origin",
                &format!("+refs/heads/{start}:{tracking}"),
            ],
            &[],
            None,
        )?;
        if !out.success {
            return Err(self.remote_error("fetch", &start, &out));
        }
        git.local(repo, ["reset", "--quiet", "--hard", &tracking])?;
        git.local(repo, ["clean", "-ffdxq"])?;
        tracing::debug!(branch = %start, "work tree reset to the remote tip");
        Ok(())
    }

    fn push(&self, git: &GitRunner, repo: &Path, target: &str) -> Result<PushStatus, GitError> {
        let dst = format!("refs/heads/{target}");
        let out = git.run(
            Some(repo),
            [
                "push",
                "--porcelain",
                "--no-verify",
                "origin",
                &format!("HEAD:{dst}"),
            ],
            &[],
            None,
        )?;
        match parse_push_porcelain(&out.stdout, &dst) {
            Some(status) => Ok(status),
            None => {
                if out.success {
                    // git exited 0 but printed no status for our ref: treat as an error rather
                    // than assume success.
                    Err(GitError::Command {
                        operation: "push".into(),
                        status: out.status.clone(),
                        stderr: format!("no status line for {dst} in the push output"),
                    })
                } else {
                    Err(self.remote_error("push", target, &out))
                }
            }
        }
    }

    fn remote_error(&self, operation: &'static str, branch: &str, out: &GitOutput) -> GitError {
        if let Some(err) = remote_failure_error(&self.display_url, operation, out) {
            return err;
        }
        if out.stderr.contains("Remote branch") && out.stderr.contains("not found")
            || out.stderr.contains("couldn't find remote ref")
        {
            return GitError::BranchNotFound {
                url: self.display_url.clone(),
                branch: branch.to_string(),
            };
        }
        command_error(operation, out)
    }
}

/// Paths changed in the work tree (staged, unstaged or untracked), sorted.
fn changed_files(git: &GitRunner, repo: &Path) -> Result<Vec<String>, GitError> {
    let out = git.local(
        repo,
        ["status", "--porcelain=v1", "-z", "--untracked-files=all"],
    )?;
    let mut files = Vec::new();
    let mut entries = out.split('\0');
    while let Some(entry) = entries.next() {
        if entry.len() < 4 {
            continue;
        }
        let (xy, path) = entry.split_at(3);
        files.push(path.to_string());
        // Renames and copies are followed by the source path.
        if xy.starts_with('R') || xy.starts_with('C') {
            entries.next();
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Finds the status line of `dst` in `git push --porcelain` output:
/// `<flag>\t<src>:<dst>\t<summary>`.
pub(crate) fn parse_push_porcelain(stdout: &str, dst: &str) -> Option<PushStatus> {
    for line in stdout.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(flag), Some(refs), summary) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if flag.chars().count() != 1 || refs.rsplit(':').next() != Some(dst) {
            continue;
        }
        let summary = summary.unwrap_or("").trim().to_string();
        return Some(match flag {
            " " | "*" | "+" | "=" | "-" => PushStatus::Pushed,
            _ => {
                const RETRYABLE: &[&str] = &[
                    "fetch first",
                    "non-fast-forward",
                    "stale info",
                    "incorrect old value",
                    "cannot lock ref",
                    "failed to update ref",
                    "failed to lock",
                ];
                let retryable = RETRYABLE.iter().any(|r| summary.contains(r));
                PushStatus::Rejected {
                    reason: summary,
                    retryable,
                }
            }
        });
    }
    None
}

/// Checks the URL; returns the origin used to scope the auth header (`scheme://host[:port]`)
/// and a display form.
fn validate_url(
    url: &str,
    has_auth: bool,
    allow_insecure_http: bool,
) -> Result<(String, String), GitError> {
    let parsed = GitUrl::new(url).map_err(|err| GitError::InvalidUrl {
        url: err.url,
        reason: err.reason,
    })?;
    let invalid = |reason: &str| GitError::InvalidUrl {
        url: parsed.to_string(),
        reason: reason.to_string(),
    };
    if parsed.has_userinfo() {
        return Err(invalid(
            "credentials in the URL are not allowed; configure a token instead",
        ));
    }
    let origin = match parsed.scheme() {
        GitUrlScheme::Https => parsed.origin(),
        GitUrlScheme::Http => {
            if !allow_insecure_http && !parsed.is_loopback() {
                return Err(invalid(
                    "plain http is only allowed for loopback hosts (set allow_insecure_http to override)",
                ));
            }
            parsed.origin()
        }
        GitUrlScheme::File => {
            if has_auth {
                return Err(invalid("file:// repositories take no token"));
            }
            Some("file://".to_string())
        }
        GitUrlScheme::Ssh | GitUrlScheme::Git | GitUrlScheme::Scp => None,
    };
    let origin = origin.ok_or_else(|| {
        invalid("only https://, http:// (loopback) and file:// URLs are supported")
    })?;
    Ok((origin, url.to_string()))
}

/// Checks a branch name by git's own rules ([`BranchName`]).
fn validate_branch(branch: &str) -> Result<BranchName, GitError> {
    BranchName::new(branch).map_err(|err| GitError::InvalidBranch {
        branch: err.name,
        reason: err.reason,
    })
}

#[cfg(test)]
mod tests;
