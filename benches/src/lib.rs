//! Benchmarks for cicd-agents (see `benches/README.md`).
//!
//! * The `side-by-side` binary runs `cicd-agents build` and
//!   `docker buildx build` on the test environment's daemon, alternating the
//!   two, and prints a markdown table ([`harness`]).
//! * `benches/*.rs` are criterion micro-benchmarks of the client's hot paths.

pub mod contexts;
pub mod harness;
pub mod measure;

use std::path::PathBuf;

/// Default location of the test environment's state (see `scripts/testenv.sh`).
pub const DEFAULT_TESTENV_DIR: &str = "/var/lib/cicd-agents-testenv";

/// Reads `NAME` from the environment, or else from the `export NAME=value`
/// lines of the test environment's file (`$CICD_TESTENV_DIR/env`).
pub fn testenv_var(name: &str) -> Option<String> {
    if let Ok(value) = std::env::var(name) {
        if !value.is_empty() {
            return Some(value);
        }
    }
    let dir = std::env::var("CICD_TESTENV_DIR").unwrap_or_else(|_| DEFAULT_TESTENV_DIR.to_string());
    let text = std::fs::read_to_string(PathBuf::from(dir).join("env")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("export ").unwrap_or(line.trim());
        let (key, value) = rest.split_once('=')?;
        (key == name).then(|| value.trim_matches(|c| c == '\'' || c == '"').to_string())
    })
}

/// The workspace's `target/bench` directory (reports and generated contexts).
pub fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("bench")
}
