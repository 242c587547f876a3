//! Git server faults during the write-back, against the real smart-HTTP git server of the
//! test environment behind a [`FaultProxy`]: the server down, answering 401, 403 or 500, a
//! transient 503, and another writer that keeps moving the branch. Each ends with a typed,
//! clear error (after retrying until the deadline where retrying makes sense) that never shows the
//! token, the remote branch exactly as it was (or as the other writer left it), and the
//! temporary work tree removed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use cicd_agents_gitops::error::{Error, GitError, GitErrorKind};
use cicd_agents_gitops::git::{
    Author, CommitVars, GitAuth, RetryPolicy, WriteBack, WriteBackConfig, WriteBackOutcome,
};
use cicd_agents_gitops::values::KeyPath;
use cicd_agents_testenv::{FaultProxy, TestEnv};

const VALUES: &str = "image:\n  repository: app\n  tag: \"1.0.0\"\n";

fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    env.git(dir, args).unwrap_or_else(|e| panic!("{e}"))
}

/// A chart repository on the real server; returns its name (`NAME.git`) and direct URL.
fn chart_repo(env: &TestEnv, prefix: &str) -> (String, String) {
    let url = env
        .seed_repo(prefix, [("chart/values.yaml", VALUES)])
        .unwrap_or_else(|e| panic!("{e}"));
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    (name, url)
}

/// The commit `main` points at on the server (empty when there is none).
fn remote_head(env: &TestEnv, url: &str) -> String {
    env.remote_head(url, "main")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default()
}

fn remote_values(env: &TestEnv, url: &str) -> String {
    let clone = env
        .fresh_clone(url, "main")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default()
}

/// A fault test's setup: a chart repository (`NAME.git` and its direct URL), the commit its
/// `main` points at, and a fault proxy in front of the server.
fn scene(env: &TestEnv, prefix: &str) -> (String, String, String, FaultProxy) {
    let (repo, url) = chart_repo(env, prefix);
    let before = remote_head(env, &url);
    let proxy = FaultProxy::start(&env.git_url).unwrap_or_else(|e| panic!("{e}"));
    (repo, url, before, proxy)
}

/// A retry deadline that passes during the test: several quick attempts, then the error.
const SHORT: Duration = Duration::from_millis(800);
/// A deadline no test reaches.
const LONG: Duration = Duration::from_secs(60);

/// A write-back of `main` through `proxy`, with quick retries until `timeout`.
fn writeback(env: &TestEnv, proxy: &FaultProxy, repo: &str, timeout: Duration) -> WriteBack {
    let mut cfg = WriteBackConfig::new(
        format!("{}/{repo}", proxy.url()),
        "main",
        Author {
            name: "Deploy Bot".into(),
            email: "deploy-bot@cicd-agents.invalid".into(),
        },
    );
    cfg.auth = Some(GitAuth::token(env.git_token.clone()));
    cfg.retry = RetryPolicy {
        timeout,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the write-back setting `image.tag`, calling `hook(attempt)` first in each attempt;
/// returns the outcome and the work trees the edit saw.
fn run_edit(
    wb: &WriteBack,
    tag: &str,
    mut hook: impl FnMut(u32),
) -> (Result<WriteBackOutcome, Error>, Vec<PathBuf>) {
    let roots = Mutex::new(Vec::new());
    let edits = vec![(
        KeyPath::parse("image.tag").unwrap_or_else(|e| panic!("{e}")),
        tag.to_string(),
    )];
    let result = wb.run(|tree| {
        roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tree.root().to_path_buf());
        hook(tree.attempt());
        let path = tree.resolve("chart/values.yaml")?;
        cicd_agents_gitops::values::edit_file(&path, &edits)?;
        Ok(CommitVars::default())
    });
    (
        result,
        roots.into_inner().unwrap_or_else(|e| e.into_inner()),
    )
}

fn git_error(result: Result<WriteBackOutcome, Error>) -> GitError {
    match result {
        Err(Error::Git(err)) => err,
        other => panic!("expected a git error, got {other:?}"),
    }
}

/// The attempts an error reports.
fn attempts(err: &GitError) -> u32 {
    match err {
        GitError::ServerError { attempts, .. }
        | GitError::Unreachable { attempts, .. }
        | GitError::RetriesExhausted { attempts, .. } => *attempts,
        other => panic!("no attempt count in {other:?}"),
    }
}

fn assert_clean(env: &TestEnv, err: &GitError, roots: &[PathBuf]) {
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(&env.git_token), "token leaked: {shown}");
    for root in roots {
        assert!(
            !root.exists(),
            "the work tree {} was left behind",
            root.display()
        );
    }
}

#[test]
fn server_down_is_unreachable_after_bounded_retries() {
    let env = TestEnv::required();
    let (repo, url, before, proxy) = scene(&env, "fault-down");
    proxy.go_down().unwrap_or_else(|e| panic!("{e}"));
    let (result, roots) = run_edit(&writeback(&env, &proxy, &repo, SHORT), "2.0.0", |_| {});
    let err = git_error(result);
    assert!(
        matches!(
            &err,
            GitError::Unreachable {
                operation: "clone",
                attempts: 2..,
                elapsed,
                ..
            } if *elapsed >= SHORT
        ),
        "{err:?}"
    );
    assert_eq!(err.git_kind(), GitErrorKind::Unreachable);
    let text = err.to_string();
    assert!(
        text.contains(&format!("{}/{repo}", proxy.url()))
            && text.contains(&format!("{} attempt(s) in ", attempts(&err))),
        "{text}"
    );
    assert!(roots.is_empty(), "the edit ran without a clone");
    assert_clean(&env, &err, &roots);
    assert_eq!(remote_head(&env, &url), before);
}

#[test]
fn answers_401_and_403_are_auth_failures_and_not_retried() {
    let env = TestEnv::required();
    let (repo, url) = chart_repo(&env, "fault-auth");
    let before = remote_head(&env, &url);
    for status in [401u16, 403] {
        let proxy = FaultProxy::start(&env.git_url).unwrap_or_else(|e| panic!("{e}"));
        proxy.set_fault_for("*", status);
        let (result, roots) = run_edit(&writeback(&env, &proxy, &repo, LONG), "2.0.0", |_| {});
        let err = git_error(result);
        assert!(
            matches!(&err, GitError::AuthFailed { operation: "clone", status: Some(s), .. } if *s == status),
            "{status}: {err:?}"
        );
        assert_eq!(
            (err.git_kind(), err.status(), err.operation()),
            (GitErrorKind::Auth, Some(status), Some("clone"))
        );
        assert!(err.to_string().contains(&format!("HTTP {status}")), "{err}");
        assert_eq!(
            proxy.faults_served(),
            1,
            "an auth failure is not retried: {:?}",
            proxy.requests()
        );
        assert_clean(&env, &err, &roots);
    }
    assert_eq!(remote_head(&env, &url), before);
}

#[test]
fn answer_500_on_clone_is_a_server_error_after_bounded_retries() {
    let env = TestEnv::required();
    let (repo, url, before, proxy) = scene(&env, "fault-500");
    proxy.set_fault_for("*", 500);
    let (result, roots) = run_edit(&writeback(&env, &proxy, &repo, SHORT), "2.0.0", |_| {});
    let err = git_error(result);
    assert!(
        matches!(
            &err,
            GitError::ServerError {
                operation: "clone",
                status: 500,
                attempts: 2..,
                elapsed,
                ..
            } if *elapsed >= SHORT
        ),
        "{err:?}"
    );
    assert_eq!(
        proxy.faults_served(),
        u64::from(attempts(&err)),
        "one request per attempt: {:?}",
        proxy.requests()
    );
    assert!(
        err.to_string().contains("answered HTTP 500 during clone"),
        "{err}"
    );
    assert_clean(&env, &err, &roots);
    assert_eq!(remote_head(&env, &url), before);
}

#[test]
fn answer_500_on_every_push_fails_after_bounded_retries_and_pushes_nothing() {
    let env = TestEnv::required();
    let (repo, url, before, proxy) = scene(&env, "fault-push500");
    proxy.set_fault_for("git-receive-pack", 500);
    let (result, roots) = run_edit(&writeback(&env, &proxy, &repo, SHORT), "2.0.0", |_| {});
    let err = git_error(result);
    assert!(
        matches!(
            &err,
            GitError::ServerError {
                operation: "push",
                status: 500,
                attempts: 2..,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        roots.len(),
        attempts(&err) as usize,
        "the edit is re-applied on each attempt"
    );
    assert_clean(&env, &err, &roots);
    assert_eq!(remote_head(&env, &url), before);
    assert_eq!(remote_values(&env, &url), VALUES);
}

#[test]
fn a_transient_503_on_push_is_retried_and_the_commit_lands_once() {
    let env = TestEnv::required();
    let (repo, url, before, proxy) = scene(&env, "fault-503");
    proxy.set_fault_times("git-receive-pack", 503, 1);
    let (result, _) = run_edit(&writeback(&env, &proxy, &repo, LONG), "3.0.0", |_| {});
    let outcome = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.attempts, 2);
    assert_eq!(outcome.parent, before);
    assert_eq!(proxy.faults_served(), 1);
    assert_eq!(Some(remote_head(&env, &url)), outcome.commit);
    assert!(remote_values(&env, &url).contains("tag: \"3.0.0\""));
}

#[test]
fn server_going_down_during_the_push_leaves_the_branch_untouched() {
    let env = TestEnv::required();
    let (repo, url, before, proxy) = scene(&env, "fault-gone");
    let (result, roots) = run_edit(&writeback(&env, &proxy, &repo, SHORT), "4.0.0", |attempt| {
        if attempt == 1 {
            proxy.go_down().unwrap_or_else(|e| panic!("{e}"));
        }
    });
    let err = git_error(result);
    assert!(
        matches!(&err, GitError::Unreachable { attempts: 2.., elapsed, .. } if *elapsed >= SHORT),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_clean(&env, &err, &roots);
    assert_eq!(remote_head(&env, &url), before);
}

#[test]
fn another_writer_moving_the_branch_ends_after_bounded_retries_with_its_commits_intact() {
    let env = TestEnv::required();
    let (repo, url) = chart_repo(&env, "fault-race");
    let proxy = FaultProxy::start(&env.git_url).unwrap_or_else(|e| panic!("{e}"));
    // The other writer works straight against the server and pushes a commit every time our
    // edit runs, so every push of ours is rejected as out of date.
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    git(
        &env,
        other.path(),
        &[
            "clone",
            "-q",
            "--branch",
            "main",
            &env.authed_url(&url),
            ".",
        ],
    );
    let mut last_other = String::new();
    // Each attempt here includes the other writer's commit and push: give it time for several.
    let timeout = Duration::from_secs(4);
    let (result, roots) = run_edit(
        &writeback(&env, &proxy, &repo, timeout),
        "5.0.0",
        |attempt| {
            let file = format!("other-{attempt}.txt");
            std::fs::write(other.path().join(&file), "x\n").unwrap_or_else(|e| panic!("{e}"));
            git(&env, other.path(), &["add", &file]);
            git(
                &env,
                other.path(),
                &["commit", "-q", "-m", &format!("other writer {attempt}")],
            );
            git(
                &env,
                other.path(),
                &["push", "-q", "origin", "HEAD:refs/heads/main"],
            );
            last_other = git(&env, other.path(), &["rev-parse", "HEAD"])
                .trim()
                .to_string();
        },
    );
    let err = git_error(result);
    assert!(
        matches!(
            &err,
            GitError::RetriesExhausted { attempts: 2.., elapsed, .. } if *elapsed >= timeout
        ),
        "{err:?}"
    );
    assert_eq!(roots.len(), attempts(&err) as usize);
    assert_eq!(
        (err.git_kind(), err.operation()),
        (GitErrorKind::Rejected, Some("push"))
    );
    assert!(
        err.to_string().contains(&format!(
            "still rejected after {} attempt(s) in ",
            attempts(&err)
        )) && err.to_string().contains("(the retry deadline passed;"),
        "{err}"
    );
    assert_clean(&env, &err, &roots);
    assert_eq!(
        remote_head(&env, &url),
        last_other,
        "the branch is exactly as the other writer left it"
    );
    assert_eq!(
        remote_values(&env, &url),
        VALUES,
        "our edit is not on the branch"
    );
}
