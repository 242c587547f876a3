//! Git write-back against the real smart-HTTP git server with token auth of the test
//! environment (`scripts/testenv.sh up`; see the `cicd-agents-testenv` crate).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cicd_agents_gitops::chart::{ChartOutcome, ChartUpdate, ValuesUpdate};
use cicd_agents_gitops::error::{Error, GitError, ValuesError};
use cicd_agents_gitops::git::{
    Author, CommitVars, GitAuth, MessageTemplate, RetryPolicy, WriteBack, WriteBackConfig,
};
use cicd_agents_gitops::values::KeyPath;
use cicd_agents_testenv::TestEnv;

const VALUES: &str = "# chart values\nimage:\n  repository: app\n  tag: \"1.0.0\"   # set by CI\n\nworker:\n  image:\n    tag: 1.0.0\n";

fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    env.git(dir, args).unwrap_or_else(|e| panic!("{e}"))
}

/// A new bare repository on the server holding `chart/values.yaml` on `main`.
fn chart_repo(env: &TestEnv, prefix: &str) -> String {
    let url = env
        .create_bare_repo(&env.unique_name(prefix))
        .unwrap_or_else(|e| panic!("{e}"));
    let seed = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = seed.path();
    git(env, dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(dir.join("chart")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("chart/values.yaml"), VALUES).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("README"), "chart repo\n").unwrap_or_else(|e| panic!("{e}"));
    git(env, dir, &["add", "-A"]);
    git(env, dir, &["commit", "-q", "-m", "initial"]);
    git(
        env,
        dir,
        &["push", "-q", &env.authed_url(&url), "HEAD:refs/heads/main"],
    );
    url
}

fn remote_head(env: &TestEnv, url: &str, branch: &str) -> Option<String> {
    env.remote_head(url, branch)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn fresh_clone(env: &TestEnv, url: &str, branch: &str) -> tempfile::TempDir {
    env.fresh_clone(url, branch)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn config(env: &TestEnv, url: &str) -> WriteBackConfig {
    let mut cfg = WriteBackConfig::new(
        url,
        "main",
        Author {
            name: "Deploy Bot".into(),
            email: "deploy-bot@cicd-agents.invalid".into(),
        },
    );
    cfg.auth = Some(GitAuth::token(env.git_token.clone()));
    cfg.retry = RetryPolicy {
        timeout: Duration::from_secs(60),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
    };
    cfg
}

/// The chart update every front end uses, with `wb`'s configuration.
fn update_values(
    wb: &WriteBack,
    updates: &[ValuesUpdate],
    vars: &CommitVars,
) -> Result<ChartOutcome, Error> {
    ChartUpdate {
        config: wb.config().clone(),
        updates: updates.to_vec(),
        vars: vars.clone(),
    }
    .apply(&mut |_| {})
}

fn update(key: &str, value: &str) -> Vec<ValuesUpdate> {
    vec![ValuesUpdate {
        file: PathBuf::from("chart/values.yaml"),
        edits: vec![(
            KeyPath::parse(key).unwrap_or_else(|e| panic!("{e}")),
            value.to_string(),
        )],
    }]
}

fn vars() -> CommitVars {
    CommitVars {
        image: "127.0.0.1:5055/app".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        source_commit: "0123abc".into(),
        ..CommitVars::default()
    }
}

#[test]
fn commit_is_visible_in_a_fresh_clone_and_a_second_run_makes_no_commit() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-basic");
    let before = remote_head(&env, &url, "main");
    let mut cfg = config(&env, &url);
    cfg.message = MessageTemplate::parse(
        "deploy {image}: {old_tag} -> {new_tag}\n\ndigest {digest}\nsource {source_commit}\nfiles {files}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let wb = WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"));

    let outcome =
        update_values(&wb, &update("image.tag", "1.10"), &vars()).unwrap_or_else(|e| panic!("{e}"));
    let commit = outcome
        .commit
        .clone()
        .unwrap_or_else(|| panic!("expected a commit: {outcome:?}"));
    assert_eq!(outcome.attempts, 1);
    assert_eq!(outcome.files, vec!["chart/values.yaml".to_string()]);
    assert_eq!(Some(outcome.parent.clone()), before);
    assert_eq!(
        remote_head(&env, &url, "main").as_deref(),
        Some(commit.as_str())
    );

    let clone = fresh_clone(&env, &url, "main");
    let values =
        std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default();
    assert_eq!(values, VALUES.replace("tag: \"1.0.0\"", "tag: \"1.10\""));
    let log = git(
        &env,
        clone.path(),
        &["log", "-1", "--format=%H%n%an%n%ae%n%cn%n%B"],
    );
    let expected = format!(
        "{commit}\nDeploy Bot\ndeploy-bot@cicd-agents.invalid\nDeploy Bot\ndeploy 127.0.0.1:5055/app: 1.0.0 -> 1.10\n\ndigest sha256:{}\nsource 0123abc\nfiles chart/values.yaml\n",
        "ab".repeat(32)
    );
    assert_eq!(log.trim_end(), expected.trim_end());
    assert_eq!(
        git(&env, clone.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "2"
    );

    // Second run: values already hold the tag, so no commit and success.
    let again =
        update_values(&wb, &update("image.tag", "1.10"), &vars()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.commit, None);
    assert!(again.files.is_empty());
    assert_eq!(again.parent, commit);
    assert_eq!(
        remote_head(&env, &url, "main").as_deref(),
        Some(commit.as_str())
    );
}

/// A barrier with a timeout, so that a failing thread cannot hang the other.
struct Gate {
    count: Mutex<usize>,
    cv: Condvar,
    parties: usize,
}

impl Gate {
    fn new(parties: usize) -> Arc<Self> {
        Arc::new(Self {
            count: Mutex::new(0),
            cv: Condvar::new(),
            parties,
        })
    }

    fn wait(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.cv.notify_all();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while *n < self.parties {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            n = self
                .cv
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[test]
fn two_concurrent_updates_of_different_keys_both_land() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-race");
    let before = remote_head(&env, &url, "main").unwrap_or_default();
    // Both writers clone the same tip and only then edit and push, so one push must be
    // rejected and go through the fetch / re-apply / retry path.
    let gate = Gate::new(2);
    let handles: Vec<_> = [("image.tag", "2.0.0"), ("worker.image.tag", "3.0.0")]
        .into_iter()
        .map(|(key, value)| {
            let gate = Arc::clone(&gate);
            let cfg = config(&env, &url);
            std::thread::spawn(move || {
                let wb = WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"));
                let updates = update(key, value);
                wb.run(|tree| {
                    if tree.attempt() == 1 {
                        gate.wait();
                    }
                    let path = tree.resolve("chart/values.yaml")?;
                    cicd_agents_gitops::values::edit_file(&path, &updates[0].edits)?;
                    Ok(CommitVars {
                        new_tag: value.into(),
                        ..CommitVars::default()
                    })
                })
            })
        })
        .collect();
    let outcomes: Vec<_> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| panic!("writer thread panicked"))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    assert!(outcomes.iter().all(|o| o.commit.is_some()), "{outcomes:?}");
    let attempts: Vec<u32> = outcomes.iter().map(|o| o.attempts).collect();
    assert!(
        attempts.contains(&1) && attempts.iter().any(|&a| a > 1),
        "one writer must have retried: {attempts:?}"
    );
    assert!(outcomes.iter().all(|o| o.parent == before
        || outcomes
            .iter()
            .any(|p| p.commit.as_deref() == Some(o.parent.as_str()))));

    let clone = fresh_clone(&env, &url, "main");
    let values =
        std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default();
    let expected = VALUES
        .replace("tag: \"1.0.0\"", "tag: \"2.0.0\"")
        .replace("    tag: 1.0.0", "    tag: 3.0.0");
    assert_eq!(values, expected, "both edits must be in the final file");
    // Linear history: initial, then the two write-backs.
    assert_eq!(
        git(&env, clone.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "3"
    );
    assert_eq!(
        git(
            &env,
            clone.path(),
            &["rev-list", "--merges", "--count", "HEAD"]
        )
        .trim(),
        "0"
    );
}

/// Pushes a commit touching another file to `main`, as a competing writer would.
fn competing_push(env: &TestEnv, url: &str, n: u32) {
    let clone = fresh_clone(env, url, "main");
    std::fs::write(clone.path().join(format!("other-{n}.txt")), "x\n")
        .unwrap_or_else(|e| panic!("{e}"));
    git(env, clone.path(), &["add", "-A"]);
    git(
        env,
        clone.path(),
        &["commit", "-q", "-m", &format!("competing {n}")],
    );
    git(
        env,
        clone.path(),
        &["push", "-q", "origin", "HEAD:refs/heads/main"],
    );
}

#[test]
fn rejected_push_is_retried_on_the_new_tip_and_keeps_the_other_writers_commits() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-retry");
    let wb = WriteBack::new(config(&env, &url)).unwrap_or_else(|e| panic!("{e}"));
    let edits = update("image.tag", "4.0.0");
    let outcome = wb
        .run(|tree| {
            // On the first two attempts someone else pushes between our clone and our push.
            if tree.attempt() <= 2 {
                competing_push(&env, &url, tree.attempt());
            }
            let path = tree.resolve("chart/values.yaml")?;
            cicd_agents_gitops::values::edit_file(&path, &edits[0].edits)?;
            Ok(CommitVars::default())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.attempts, 3);
    let commit = outcome.commit.unwrap_or_default();
    let clone = fresh_clone(&env, &url, "main");
    assert_eq!(
        git(&env, clone.path(), &["rev-parse", "HEAD"]).trim(),
        commit
    );
    for n in 1..=2 {
        assert!(
            clone.path().join(format!("other-{n}.txt")).is_file(),
            "competing commit {n} lost"
        );
    }
    assert_eq!(
        git(&env, clone.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "4"
    );
    let values =
        std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default();
    assert!(values.contains("tag: \"4.0.0\""), "{values}");
}

/// A clone made ahead (while an image builds) is what the write-back starts from; when the
/// branch moved after it was made, the push is rejected and the edit lands on the new tip,
/// keeping the other commit. A clone made ahead and never used is simply dropped.
#[test]
fn a_clone_made_ahead_is_used_and_a_branch_moved_since_is_handled() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-ahead");
    let wb = WriteBack::new(config(&env, &url)).unwrap_or_else(|e| panic!("{e}"));
    let unused = wb.checkout().unwrap_or_else(|e| panic!("{e}"));
    drop(unused);
    let checkout = wb.checkout().unwrap_or_else(|e| panic!("{e}"));
    let cloned_at = remote_head(&env, &url, "main");
    competing_push(&env, &url, 1);
    let edits = update("image.tag", "5.0.0");
    let mut attempts = Vec::new();
    let outcome = checkout
        .run(|tree| {
            attempts.push(tree.attempt());
            let path = tree.resolve("chart/values.yaml")?;
            cicd_agents_gitops::values::edit_file(&path, &edits[0].edits)?;
            Ok(CommitVars::default())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // Attempt 1 edited the clone made ahead (the old tip), attempt 2 the moved branch.
    assert_eq!(outcome.attempts, 2, "{outcome:?}");
    assert_eq!(attempts, [1, 2]);
    assert_ne!(Some(outcome.parent.clone()), cloned_at);
    let clone = fresh_clone(&env, &url, "main");
    assert_eq!(
        git(&env, clone.path(), &["rev-parse", "HEAD"]).trim(),
        outcome.commit.unwrap_or_default()
    );
    assert!(
        clone.path().join("other-1.txt").is_file(),
        "competing commit lost"
    );
    let values =
        std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default();
    assert!(values.contains("tag: \"5.0.0\""), "{values}");
}

#[test]
fn retries_stop_at_the_deadline_and_say_how_many_attempts_were_made() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-bounded");
    let mut cfg = config(&env, &url);
    cfg.retry.timeout = Duration::from_secs(4);
    let wb = WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let edits = update("image.tag", "5.0.0");
    let mut made = 0;
    let err = wb
        .run(|tree| {
            made = tree.attempt();
            competing_push(&env, &url, tree.attempt());
            let path = tree.resolve("chart/values.yaml")?;
            cicd_agents_gitops::values::edit_file(&path, &edits[0].edits)?;
            Ok(CommitVars::default())
        })
        .map(|o| format!("{o:?}"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Git(GitError::RetriesExhausted { attempts, elapsed, .. })
                if attempts == made && attempts >= 2 && elapsed >= Duration::from_secs(4)
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("still rejected after {made} attempt(s) in ")),
        "{err}"
    );
    // The competing commits are there; ours is not.
    let clone = fresh_clone(&env, &url, "main");
    assert!(clone.path().join(format!("other-{made}.txt")).is_file());
    let values =
        std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default();
    assert_eq!(values, VALUES);
}

#[test]
fn wrong_token_is_an_auth_error_that_does_not_contain_the_token() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-auth");
    let before = remote_head(&env, &url, "main");
    let wrong = "wrong-token-5f0c2d9e7a1b";
    let mut cfg = config(&env, &url);
    cfg.auth = Some(GitAuth::token(wrong));
    let wb = WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let err = update_values(&wb, &update("image.tag", "9.9.9"), &vars())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Git(GitError::AuthFailed {
                operation: "clone",
                ..
            })
        ),
        "{err:?}"
    );
    let shown = format!("{err} / {err:?} / {wb:?}");
    assert!(!shown.contains(wrong), "token leaked: {shown}");
    assert!(!shown.contains(&env.git_token), "token leaked: {shown}");
    assert_eq!(remote_head(&env, &url, "main"), before);

    // No token at all: also an auth error.
    let mut cfg = config(&env, &url);
    cfg.auth = None;
    let wb = WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let err = update_values(&wb, &update("image.tag", "9.9.9"), &vars())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, Error::Git(GitError::AuthFailed { .. })),
        "{err:?}"
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn token_is_never_in_the_remote_url_repo_config_or_logs() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-secret");
    let wb = WriteBack::new(config(&env, &url)).unwrap_or_else(|e| panic!("{e}"));
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let token = env.git_token.clone();
    let edits = update("image.tag", "6.0.0");
    let outcome = tracing::subscriber::with_default(subscriber, || {
        wb.run(|tree| {
            let config =
                std::fs::read_to_string(tree.root().join(".git/config")).unwrap_or_default();
            assert!(
                config.contains(&url),
                "remote URL should be the plain URL: {config}"
            );
            assert!(!config.contains(&token), "token in .git/config: {config}");
            assert!(
                !config.to_lowercase().contains("extraheader"),
                "auth header in .git/config"
            );
            let path = tree.resolve("chart/values.yaml")?;
            cicd_agents_gitops::values::edit_file(&path, &edits[0].edits)?;
            Ok(CommitVars::default())
        })
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(outcome.commit.is_some());
    let logs =
        String::from_utf8_lossy(&capture.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(
        logs.contains("running git"),
        "expected git commands in the logs: {logs}"
    );
    assert!(!logs.contains(&token), "token in logs");
    assert!(!logs.contains("Authorization"), "auth header in logs");
}

#[test]
fn failing_edit_leaves_the_remote_untouched() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-fail");
    let before = remote_head(&env, &url, "main");
    let wb = WriteBack::new(config(&env, &url)).unwrap_or_else(|e| panic!("{e}"));

    // A key path that does not exist, after a valid one in the same file.
    let updates = vec![ValuesUpdate {
        file: PathBuf::from("chart/values.yaml"),
        edits: vec![
            (
                KeyPath::parse("image.tag").unwrap_or_else(|e| panic!("{e}")),
                "7.0.0".into(),
            ),
            (
                KeyPath::parse("image.nope").unwrap_or_else(|e| panic!("{e}")),
                "x".into(),
            ),
        ],
    }];
    let err = update_values(&wb, &updates, &vars())
        .map(|_| ())
        .unwrap_err();
    match &err {
        Error::Values(ValuesError::KeyNotFound { file, segment, .. }) => {
            assert_eq!(
                (file.as_str(), segment.as_str()),
                ("chart/values.yaml", "nope")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(remote_head(&env, &url, "main"), before);

    // A path that leaves the repository.
    let mut outside = update("image.tag", "7.0.0");
    outside[0].file = PathBuf::from("../../etc/values.yaml");
    let err = update_values(&wb, &outside, &vars())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, Error::Git(GitError::PathOutsideRepo { .. })),
        "{err}"
    );

    // A file that is not valid YAML.
    let clone = fresh_clone(&env, &url, "main");
    std::fs::write(clone.path().join("chart/broken.yaml"), "a: [1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    git(&env, clone.path(), &["add", "-A"]);
    git(&env, clone.path(), &["commit", "-q", "-m", "broken"]);
    git(
        &env,
        clone.path(),
        &["push", "-q", "origin", "HEAD:refs/heads/main"],
    );
    let before = remote_head(&env, &url, "main");
    let mut broken = update("image.tag", "7.0.0");
    broken[0].file = PathBuf::from("chart/broken.yaml");
    let err = update_values(&wb, &broken, &vars())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, Error::Values(ValuesError::InvalidYaml { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("chart/broken.yaml: not valid YAML at line 2"),
        "{err}"
    );
    assert_eq!(remote_head(&env, &url, "main"), before);
}

#[test]
fn push_to_a_different_branch_than_the_base() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-branch");
    let main_before = remote_head(&env, &url, "main");
    let mut cfg = config(&env, &url);
    cfg.push_branch = Some("deploy/app".into());
    let wb = WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"));

    let first = update_values(&wb, &update("image.tag", "8.0.0"), &vars())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.branch, "deploy/app");
    assert_eq!(remote_head(&env, &url, "deploy/app"), first.commit);
    assert_eq!(
        remote_head(&env, &url, "main"),
        main_before,
        "the base branch is untouched"
    );

    // The next update builds on the existing push branch (no force push needed).
    let second = update_values(&wb, &update("worker.image.tag", "8.1.0"), &vars())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Some(second.parent.clone()), first.commit);
    let clone = fresh_clone(&env, &url, "deploy/app");
    let values =
        std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default();
    assert!(
        values.contains("tag: \"8.0.0\"") && values.contains("    tag: 8.1.0"),
        "{values}"
    );

    // Idempotent on the push branch too.
    let third = update_values(&wb, &update("worker.image.tag", "8.1.0"), &vars())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(third.commit, None);
}

#[test]
fn missing_branch_is_a_clear_error() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-nobranch");
    let mut cfg = config(&env, &url);
    cfg.branch = "does-not-exist".into();
    let wb = WriteBack::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let err = update_values(&wb, &update("image.tag", "1"), &vars())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, Error::Git(GitError::BranchNotFound { .. })),
        "{err}"
    );
    assert!(!err.to_string().contains(&env.git_token));
}

#[test]
fn configuration_is_validated() {
    let env = TestEnv::required();
    let mut cfg = config(&env, "https://user:pw@example.invalid/x.git");
    assert!(matches!(
        WriteBack::new(cfg.clone()),
        Err(GitError::InvalidUrl { .. })
    ));
    cfg.url = "http://example.invalid/x.git".into();
    assert!(matches!(
        WriteBack::new(cfg.clone()),
        Err(GitError::InvalidUrl { .. })
    ));
    cfg.url = "https://example.invalid/x.git".into();
    cfg.branch = "bad branch".into();
    assert!(matches!(
        WriteBack::new(cfg.clone()),
        Err(GitError::InvalidBranch { .. })
    ));
    cfg.branch = "main".into();
    cfg.author.email = String::new();
    assert!(matches!(
        WriteBack::new(cfg.clone()),
        Err(GitError::InvalidConfig { .. })
    ));
    cfg.author.email = "a@b".into();
    assert!(WriteBack::new(cfg.clone()).is_ok());
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains(&env.git_token),
        "Debug of the config shows the token"
    );
}

/// A clone made ahead that already holds our value, on a branch set to another value in the
/// meantime: "nothing to change" is checked against the branch's tip, so our value is written
/// again instead of being reported as already there.
#[test]
fn a_clone_made_ahead_is_not_trusted_to_say_nothing_changed() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-ahead-same");
    let wb = WriteBack::new(config(&env, &url)).unwrap_or_else(|e| panic!("{e}"));
    update_values(&wb, &update("image.tag", "4.0.0"), &vars()).unwrap_or_else(|e| panic!("{e}"));
    let checkout = wb.checkout().unwrap_or_else(|e| panic!("{e}"));
    let theirs = update_values(&wb, &update("image.tag", "3.9.0"), &vars())
        .unwrap_or_else(|e| panic!("{e}"))
        .commit
        .unwrap_or_else(|| panic!("no commit"));
    let ours = ChartUpdate {
        config: wb.config().clone(),
        updates: update("image.tag", "4.0.0"),
        vars: vars(),
    }
    .apply_on(Some(checkout), &mut |_| {})
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(ours.commit.is_some(), "{ours:?}");
    assert_eq!(ours.parent, theirs);
    let values = values_on_main(&env, &url);
    assert!(values.contains("tag: \"4.0.0\""), "{values}");

    // And with the branch unmoved, a clone made ahead says "no change" in one attempt.
    let checkout = wb.checkout().unwrap_or_else(|e| panic!("{e}"));
    let again = ChartUpdate {
        config: wb.config().clone(),
        updates: update("image.tag", "4.0.0"),
        vars: vars(),
    }
    .apply_on(Some(checkout), &mut |_| {})
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (again.commit.as_deref(), again.attempts),
        (None, 1),
        "{again:?}"
    );
}

/// A look at the server taken while the caller waited counts only if it was taken at or after
/// the instant the caller names: then "no change" needs no second look; a look taken before it
/// is not enough, and a branch moved since is seen and our value written again.
#[test]
fn a_check_of_a_clone_made_ahead_counts_from_the_instant_the_caller_names() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "wb-ahead-checked");
    let wb = WriteBack::new(config(&env, &url)).unwrap_or_else(|e| panic!("{e}"));
    let ours = || ChartUpdate {
        config: wb.config().clone(),
        updates: update("image.tag", "5.0.0"),
        vars: vars(),
    };
    update_values(&wb, &update("image.tag", "5.0.0"), &vars()).unwrap_or_else(|e| panic!("{e}"));

    // Checked after the named instant: trusted, even though the branch moved after the check
    // (what happened after that instant is the caller's to name).
    let mut checkout = wb.checkout().unwrap_or_else(|e| panic!("{e}"));
    let named = std::time::Instant::now();
    assert!(checkout.check_unmoved().unwrap_or_else(|e| panic!("{e}")));
    checkout.fresh_as_of(named);
    update_values(&wb, &update("image.tag", "4.9.0"), &vars()).unwrap_or_else(|e| panic!("{e}"));
    let trusted = ours()
        .apply_on(Some(checkout), &mut |_| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (trusted.commit.as_deref(), trusted.attempts),
        (None, 1),
        "{trusted:?}"
    );

    // Checked before the named instant, branch moved since: asked again, value written again.
    update_values(&wb, &update("image.tag", "5.0.0"), &vars()).unwrap_or_else(|e| panic!("{e}"));
    let mut checkout = wb.checkout().unwrap_or_else(|e| panic!("{e}"));
    assert!(checkout.check_unmoved().unwrap_or_else(|e| panic!("{e}")));
    let theirs = update_values(&wb, &update("image.tag", "4.8.0"), &vars())
        .unwrap_or_else(|e| panic!("{e}"))
        .commit
        .unwrap_or_else(|| panic!("no commit"));
    checkout.fresh_as_of(std::time::Instant::now());
    let written = ours()
        .apply_on(Some(checkout), &mut |_| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(written.commit.is_some(), "{written:?}");
    assert_eq!(written.parent, theirs);
    let values = values_on_main(&env, &url);
    assert!(values.contains("tag: \"5.0.0\""), "{values}");
}

/// The values file on the server's `main`, read from a fresh clone.
fn values_on_main(env: &TestEnv, url: &str) -> String {
    let clone = fresh_clone(env, url, "main");
    std::fs::read_to_string(clone.path().join("chart/values.yaml")).unwrap_or_default()
}
