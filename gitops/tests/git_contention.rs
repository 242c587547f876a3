//! Many writers updating one chart repository at the same moment, against the real smart-HTTP
//! git server of the test environment, with the machine kept busy by a CPU-bound background
//! load so that the races really happen. Every writer goes through [`ChartUpdate`], the path
//! the command line, Python and the pipeline runner share, with the default retry policy (a
//! 2-minute deadline).
//!
//! * 8 writers on distinct keys: all land, the file holds all 8 values, the history holds
//!   all 8 commits and no merge.
//! * 8 writers on the same key with different values: all succeed; each either committed (its
//!   commit is in the history with its value) or found its value already there (no-op); the
//!   final value is the one of the writer whose commit is the tip.
//! * `contention_benchmark` (ignored; run by `scripts/bench-writeback.sh`): 32 writers,
//!   attempts per writer, time until the last one landed, and the cost of one retry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cicd_agents_gitops::chart::{ChartOutcome, ChartProgress, ChartUpdate, ValuesUpdate};
use cicd_agents_gitops::git::{
    format_elapsed, Author, CommitVars, GitAuth, RetryPolicy, WriteBackConfig,
};
use cicd_agents_gitops::values::KeyPath;
use cicd_agents_testenv::TestEnv;

const FILE: &str = "chart/values.yaml";

fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    env.git(dir, args).unwrap_or_else(|e| panic!("{e}"))
}

/// `svc0.image.tag` … `svc{n-1}.image.tag` and `shared.image.tag`, all `"0"`.
fn values_text(services: usize) -> String {
    let mut text = String::from("# one chart, many services\nshared:\n  image:\n    tag: \"0\"\n");
    for i in 0..services {
        text.push_str(&format!(
            "svc{i}:\n  image:\n    tag: \"0\"   # set by CI\n"
        ));
    }
    text
}

fn chart_repo(env: &TestEnv, prefix: &str, services: usize) -> String {
    env.seed_repo(prefix, [(FILE, values_text(services))])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A barrier with a timeout, so that a failing writer cannot hang the others.
struct Gate {
    count: Mutex<usize>,
    cv: Condvar,
    parties: usize,
    timeout: Duration,
}

impl Gate {
    fn new(parties: usize, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            count: Mutex::new(0),
            cv: Condvar::new(),
            parties,
            timeout,
        })
    }

    fn wait(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.cv.notify_all();
        let deadline = Instant::now() + self.timeout;
        while *n < self.parties {
            let left = deadline.saturating_duration_since(Instant::now());
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

/// CPU-bound threads that keep the machine busy until dropped (at most `limit`); they touch
/// no file and no network.
struct CpuLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl CpuLoad {
    fn start(threads: usize, limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|seed| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let until = Instant::now() + limit;
                    let mut x = seed as u64 + 1;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        for _ in 0..100_000 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005) ^ 1442695);
                        }
                    }
                    x
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One writer's result: its value, its outcome and when it ended (from the common start).
struct Landed {
    key: String,
    value: String,
    outcome: ChartOutcome,
    at: Duration,
}

/// Starts one writer per `(key, value)` at the same moment; each clones, waits until every
/// writer has its clone (so that all build on the same tip and all but one lose the first
/// race), then edits, commits and pushes through [`ChartUpdate`] under `policy`.
fn race(
    env: &TestEnv,
    url: &str,
    writes: &[(String, String)],
    policy: &RetryPolicy,
) -> Vec<Landed> {
    let gate = Gate::new(writes.len(), Duration::from_secs(120));
    let start = Instant::now();
    let handles: Vec<_> = writes
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let mut config = WriteBackConfig::new(
                url,
                "main",
                Author {
                    name: format!("writer {i}"),
                    email: format!("writer-{i}@cicd-agents.invalid"),
                },
            );
            config.auth = Some(GitAuth::token(env.git_token.clone()));
            config.retry = policy.clone();
            let update = ChartUpdate {
                config,
                updates: vec![ValuesUpdate {
                    file: PathBuf::from(FILE),
                    edits: vec![(
                        KeyPath::parse(key).unwrap_or_else(|e| panic!("{e}")),
                        value.clone(),
                    )],
                }],
                vars: CommitVars {
                    image: format!("writer-{i}"),
                    ..CommitVars::default()
                },
            };
            let gate = Arc::clone(&gate);
            let (key, value) = (key.clone(), value.clone());
            std::thread::spawn(move || {
                let outcome = update.apply(&mut |ChartProgress::Edited { attempt, .. }| {
                    if attempt == 1 {
                        gate.wait();
                    }
                });
                (key, value, outcome, start.elapsed())
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            let (key, value, outcome, at) = h
                .join()
                .unwrap_or_else(|_| panic!("a writer thread panicked"));
            let outcome =
                outcome.unwrap_or_else(|e| panic!("writer {key}={value} did not land: {e}"));
            Landed {
                key,
                value,
                outcome,
                at,
            }
        })
        .collect()
}

fn clone(env: &TestEnv, url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    git(
        env,
        dir.path(),
        &["clone", "-q", "--branch", "main", &env.authed_url(url), "."],
    );
    dir
}

fn attempts_line(landed: &[Landed]) -> String {
    landed
        .iter()
        .map(|l| {
            format!(
                "{}={} {}x/{}",
                l.key,
                l.value,
                l.outcome.attempts,
                format_elapsed(l.outcome.elapsed)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value of `key` (`svcN.image.tag` or `shared.image.tag`) in the values file at `rev`.
fn value_at(env: &TestEnv, repo: &Path, rev: &str, key: &str) -> String {
    let text = git(env, repo, &["show", &format!("{rev}:{FILE}")]);
    let section = key.split('.').next().unwrap_or_default();
    let mut in_section = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_section = line.trim_end_matches(':') == section;
        } else if in_section {
            if let Some(rest) = line.trim().strip_prefix("tag: ") {
                return rest.split('"').nth(1).unwrap_or(rest).to_string();
            }
        }
    }
    panic!("no {key} in {FILE} at {rev}: {text}")
}

const WRITERS: usize = 8;

#[test]
fn eight_concurrent_writers_on_distinct_keys_all_land_under_load() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "contend-keys", WRITERS);
    let run = env.unique_name("v");
    let writes: Vec<(String, String)> = (0..WRITERS)
        .map(|i| (format!("svc{i}.image.tag"), format!("{run}-{i}")))
        .collect();
    let load = CpuLoad::start(2, Duration::from_secs(150));
    let landed = race(&env, &url, &writes, &RetryPolicy::default());
    drop(load);
    eprintln!("attempts: {}", attempts_line(&landed));

    assert!(
        landed.iter().all(|l| l.outcome.commit.is_some()),
        "every writer changes its own key, so every writer commits: {}",
        attempts_line(&landed)
    );
    assert!(
        landed.iter().any(|l| l.outcome.attempts > 1),
        "all writers built on the same tip, so all but one must have retried"
    );
    let repo = clone(&env, &url);
    let mut expected = values_text(WRITERS);
    for (i, (_, value)) in writes.iter().enumerate() {
        expected = expected.replacen(
            &format!("svc{i}:\n  image:\n    tag: \"0\""),
            &format!("svc{i}:\n  image:\n    tag: \"{value}\""),
            1,
        );
    }
    let text = std::fs::read_to_string(repo.path().join(FILE)).unwrap_or_default();
    assert_eq!(text, expected, "every writer's value, nothing else changed");
    let history = git(&env, repo.path(), &["rev-list", "HEAD"]);
    assert_eq!(history.lines().count(), 1 + WRITERS, "{history}");
    for l in &landed {
        let commit = l.outcome.commit.as_deref().unwrap_or_default();
        assert!(history.lines().any(|c| c == commit), "{} lost", l.key);
    }
    assert_eq!(
        git(
            &env,
            repo.path(),
            &["rev-list", "--merges", "--count", "HEAD"]
        )
        .trim(),
        "0"
    );
}

#[test]
fn eight_concurrent_writers_on_the_same_key_all_succeed_and_the_tip_holds_one_value() {
    let env = TestEnv::required();
    let url = chart_repo(&env, "contend-same", 1);
    let run = env.unique_name("v");
    let key = "shared.image.tag".to_string();
    let writes: Vec<(String, String)> = (0..WRITERS)
        .map(|i| (key.clone(), format!("{run}-{i}")))
        .collect();
    let load = CpuLoad::start(2, Duration::from_secs(150));
    let landed = race(&env, &url, &writes, &RetryPolicy::default());
    drop(load);
    eprintln!("attempts: {}", attempts_line(&landed));

    let repo = clone(&env, &url);
    let history: Vec<String> = git(&env, repo.path(), &["rev-list", "HEAD"])
        .lines()
        .map(str::to_string)
        .collect();
    let mut committed = 0;
    for l in &landed {
        match &l.outcome.commit {
            Some(commit) => {
                committed += 1;
                assert!(history.contains(commit), "{}'s commit lost", l.value);
                assert_eq!(value_at(&env, repo.path(), commit, &key), l.value);
                assert_ne!(
                    value_at(&env, repo.path(), &format!("{commit}^"), &key),
                    l.value,
                    "a commit that changes nothing"
                );
            }
            None => {
                // A no-op: the value was already there when this writer looked.
                assert_eq!(
                    value_at(&env, repo.path(), &l.outcome.parent, &key),
                    l.value
                );
            }
        }
    }
    assert_eq!(history.len(), 1 + committed, "{history:?}");
    let tip = &history[0];
    let last = landed
        .iter()
        .find(|l| l.outcome.commit.as_ref() == Some(tip))
        .unwrap_or_else(|| panic!("the tip {tip} is none of the writers' commits"));
    let text = std::fs::read_to_string(repo.path().join(FILE)).unwrap_or_default();
    assert_eq!(
        text,
        values_text(1).replace(
            "shared:\n  image:\n    tag: \"0\"",
            &format!("shared:\n  image:\n    tag: \"{}\"", last.value)
        ),
        "the final value is the last writer's"
    );
    assert!(landed.iter().any(|l| l.outcome.attempts > 1));
}

/// Summary statistics of attempts per writer.
fn attempt_stats(landed: &[Landed]) -> (u32, u32, u32, f64, BTreeMap<u32, usize>) {
    let mut attempts: Vec<u32> = landed.iter().map(|l| l.outcome.attempts).collect();
    attempts.sort_unstable();
    let mut histogram = BTreeMap::new();
    for a in &attempts {
        *histogram.entry(*a).or_insert(0) += 1;
    }
    let mean = attempts.iter().map(|&a| f64::from(a)).sum::<f64>() / attempts.len().max(1) as f64;
    (
        attempts.first().copied().unwrap_or(0),
        attempts[attempts.len() / 2],
        attempts.last().copied().unwrap_or(0),
        mean,
        histogram,
    )
}

/// Runs one write-back of `svc0.image.tag` with no backoff, pushing a competing commit from
/// `other` during each of the first `rejections` attempts; returns the write-back's time
/// without the competing pushes.
fn timed_writeback(
    env: &TestEnv,
    url: &str,
    other: &Path,
    rejections: u32,
    value: &str,
) -> Duration {
    let mut config = WriteBackConfig::new(
        url,
        "main",
        Author {
            name: "bench".into(),
            email: "bench@cicd-agents.invalid".into(),
        },
    );
    config.auth = Some(GitAuth::token(env.git_token.clone()));
    config.retry = RetryPolicy {
        timeout: Duration::from_secs(120),
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };
    let update = ChartUpdate {
        config,
        updates: vec![ValuesUpdate {
            file: PathBuf::from(FILE),
            edits: vec![(
                KeyPath::parse("svc0.image.tag").unwrap_or_else(|e| panic!("{e}")),
                value.to_string(),
            )],
        }],
        vars: CommitVars::default(),
    };
    let mut competing = Duration::ZERO;
    let start = Instant::now();
    let outcome = update
        .apply(&mut |ChartProgress::Edited { attempt, .. }| {
            if attempt <= rejections {
                let t = Instant::now();
                git(env, other, &["pull", "-q", "--rebase", "origin", "main"]);
                let file = format!("other-{value}-{attempt}.txt");
                std::fs::write(other.join(&file), "x\n").unwrap_or_else(|e| panic!("{e}"));
                git(env, other, &["add", &file]);
                git(env, other, &["commit", "-q", "-m", "competing"]);
                git(
                    env,
                    other,
                    &["push", "-q", "origin", "HEAD:refs/heads/main"],
                );
                competing += t.elapsed();
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let total = start.elapsed();
    assert_eq!(outcome.attempts, rejections + 1);
    total.saturating_sub(competing)
}

#[test]
#[ignore = "benchmark: run by scripts/bench-writeback.sh"]
fn contention_benchmark() {
    let env = TestEnv::required();
    let writers: usize = std::env::var("BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let load_threads: usize = std::env::var("BENCH_LOAD_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);

    // The cost of one retry: (time with K forced rejections - time with none) / K, the
    // competing pushes themselves not counted, against the cost of a fresh shallow clone.
    let url = chart_repo(&env, "bench-attempt", 1);
    let other = clone(&env, &url);
    const K: u32 = 5;
    const ROUNDS: usize = 3;
    let mut single = Vec::new();
    let mut per_retry = Vec::new();
    let mut clones = Vec::new();
    for round in 0..ROUNDS {
        single.push(timed_writeback(
            &env,
            &url,
            other.path(),
            0,
            &format!("a{round}"),
        ));
        let with_retries = timed_writeback(&env, &url, other.path(), K, &format!("b{round}"));
        per_retry.push(with_retries.saturating_sub(single[round]) / K);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        git(
            &env,
            dir.path(),
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--single-branch",
                "--no-tags",
                "--branch",
                "main",
                &env.authed_url(&url),
                ".",
            ],
        );
        clones.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (single, per_retry, clone_cost) = (
        median(&mut single),
        median(&mut per_retry),
        median(&mut clones),
    );

    // N writers on distinct keys, all starting from the same tip, under load.
    let url = chart_repo(&env, "bench-contend", writers);
    let run = env.unique_name("v");
    let writes: Vec<(String, String)> = (0..writers)
        .map(|i| (format!("svc{i}.image.tag"), format!("{run}-{i}")))
        .collect();
    let load = CpuLoad::start(load_threads, Duration::from_secs(300));
    let started = Instant::now();
    let landed = race(&env, &url, &writes, &RetryPolicy::default());
    let wall = started.elapsed();
    drop(load);
    assert!(landed.iter().all(|l| l.outcome.commit.is_some()));
    let repo = clone(&env, &url);
    assert_eq!(
        git(&env, repo.path(), &["rev-list", "--count", "HEAD"]).trim(),
        (writers + 1).to_string()
    );
    let last = landed.iter().map(|l| l.at).max().unwrap_or_default();
    let first = landed.iter().map(|l| l.at).min().unwrap_or_default();
    let (min, med, max, mean, histogram) = attempt_stats(&landed);
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    println!("## chart write-back under contention");
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| writers (distinct keys, one values file, same starting tip) | {writers} |");
    println!("| background CPU load threads | {load_threads} |");
    println!("| all landed | {} of {writers} |", landed.len());
    println!("| first landed after | {} |", format_elapsed(first));
    println!("| last landed after | {} |", format_elapsed(last));
    println!("| wall time of the race | {} |", format_elapsed(wall));
    println!(
        "| attempts per writer: min / median / mean / max | {min} / {med} / {mean:.1} / {max} |"
    );
    println!(
        "| attempts histogram (attempts: writers) | {} |",
        histogram
            .iter()
            .map(|(a, n)| format!("{a}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| one uncontended write-back (clone + 1 attempt) | {} |",
        format_elapsed(single)
    );
    println!(
        "| one retry (fetch tip, reset, edit, commit, push) | {} |",
        format_elapsed(per_retry)
    );
    println!(
        "| a fresh shallow clone, for comparison | {} |",
        format_elapsed(clone_cost)
    );
    println!(
        "| load average at the end | {} |",
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!("per writer: {}", attempts_line(&landed));
}
