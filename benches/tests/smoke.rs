//! The side-by-side benchmark runs end to end against the real test
//! environment: tiny contexts, one iteration, every case, both tools.
//! Nothing here looks at how long anything took.

use std::path::PathBuf;
use std::process::Command;

/// The `cicd-agents` binary of this build (next to the harness binary).
fn ours() -> PathBuf {
    if let Ok(path) = std::env::var("CICD_BENCH_OURS") {
        return PathBuf::from(path);
    }
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_side-by-side"));
    let candidate = harness.parent().unwrap().join("cicd-agents");
    assert!(
        candidate.is_file(),
        "{} is missing; run `cargo build -p cicd-agents-cli` (or `cargo build --workspace`) first",
        candidate.display()
    );
    candidate
}

#[test]
fn side_by_side_quick_run() {
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("report.md");
    let output = Command::new(env!("CARGO_BIN_EXE_side-by-side"))
        .arg("--quick")
        .arg("--ours")
        .arg(ours())
        .arg("--work-dir")
        .arg(work.path().join("work"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "harness failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(
        text.trim(),
        stdout.trim(),
        "the printed table is the written report"
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Case"))
        .collect();
    assert_eq!(rows.len(), 6, "one row per case:\n{text}");
    for row in &rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 10, "{row}");
        assert!(
            cells[1..].iter().all(|c| *c != "–" && !c.is_empty()),
            "every cell measured: {row}"
        );
    }
    assert!(text.contains("RUN printing 1,000 lines"), "{text}");
    assert!(text.contains("- machine: "), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.with_extension("json")).unwrap())
            .unwrap();
    assert_eq!(json["cases"].as_array().unwrap().len(), 6);
    assert!(
        !work.path().join("work/files-ctx").exists(),
        "generated contexts are removed"
    );
}
