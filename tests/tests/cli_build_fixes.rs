//! `cicd-agents build` where it differed from `docker buildx build` (issue 13)
//! and where it reported late (issue 14): each test failed before its fix.

use std::process::Command;
use std::time::{Duration, Instant};

use cicd_agents_testenv::{cli, write_context, TestEnv};

fn env() -> TestEnv {
    TestEnv::load().expect("test environment (run scripts/testenv.sh up)")
}

fn build(env: &TestEnv) -> Command {
    let mut command = cli();
    command.args(["build", "--addr", &env.docker_addr]);
    command
}

/// The `#N` of the step whose header line contains `name`.
fn step_number(stderr: &str, name: &str) -> String {
    stderr
        .lines()
        .find(|line| line.starts_with('#') && line.contains(name))
        .and_then(|line| line.split(' ').next())
        .unwrap_or_else(|| panic!("no step {name:?}:\n{stderr}"))
        .to_string()
}

/// A build the daemon refuses before it starts a job (an exporter attribute
/// it cannot parse) is reported as soon as the daemon answers, not after the
/// status stream's 5 s drain.
#[test]
fn a_build_the_daemon_refuses_at_once_is_reported_at_once() {
    let env = env();
    let context = tempfile::tempdir().unwrap();
    let marker = env.unique_name("refused");
    write_context(
        context.path(),
        [
            ("Dockerfile", "FROM scratch\nCOPY marker /\n"),
            ("marker", marker.as_str()),
        ],
    )
    .unwrap();
    let name = env.image_ref("buildfix/refused", &marker);
    let started = Instant::now();
    let output = build(&env)
        .args(["--progress", "plain", "-o"])
        .arg(format!("type=image,name={name},compression=bogus"))
        .arg(context.path())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("compression"), "{stderr}");
    assert!(
        took < Duration::from_secs(2),
        "the refusal took {took:?}:\n{stderr}"
    );
}

/// Reporting a failed solve at once keeps the progress that explains it:
/// the failing step's output and its `ERROR` line.
#[test]
fn a_failing_run_still_prints_its_output_in_plain_progress() {
    let env = env();
    let context = tempfile::tempdir().unwrap();
    let marker = env.unique_name("failrun");
    write_context(
        context.path(),
        [(
            "Dockerfile",
            format!(
                "FROM {}\nRUN echo {marker}-a && echo {marker}-b && exit 3\n",
                env.base_image
            )
            .as_str(),
        )],
    )
    .unwrap();
    let output = build(&env)
        .args(["--progress", "plain", "--network", "host"])
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let step = step_number(&stderr, "RUN echo");
    for text in [format!("{marker}-a"), format!("{marker}-b")] {
        assert!(
            stderr
                .lines()
                .any(|line| line.starts_with(&format!("{step} ")) && line.ends_with(&text)),
            "no output line {text:?} of {step}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!("{step} ERROR: ")),
        "no ERROR line for {step}:\n{stderr}"
    );
}

/// A context transfer that fails on our side (an invalid `.dockerignore`)
/// is an `ERROR` step in plain progress, as in buildx, not `DONE`; the
/// warning logged about it carries no colour codes on a pipe.
#[test]
fn a_failed_context_transfer_is_an_error_step_and_logs_without_colour() {
    let env = env();
    let context = tempfile::tempdir().unwrap();
    let marker = env.unique_name("badignore");
    write_context(
        context.path(),
        [
            ("Dockerfile", "FROM scratch\nCOPY . /x\n"),
            (".dockerignore", "[\n"),
            ("marker", marker.as_str()),
        ],
    )
    .unwrap();
    let output = build(&env)
        .args(["--progress", "plain", "-o", "type=cacheonly"])
        .arg(context.path())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let step = step_number(&stderr, "[internal] load build context");
    assert!(
        stderr.contains(&format!("{step} ERROR: ")),
        "no ERROR for {step}:\n{stderr}"
    );
    assert!(
        !stderr.contains(&format!("{step} DONE")),
        "the failed transfer is not DONE:\n{stderr}"
    );
    assert!(stderr.contains(" WARN "), "no warning logged:\n{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes on a pipe:\n{stderr:?}"
    );
}
