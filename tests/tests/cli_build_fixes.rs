//! `cicd-agents build` where it differed from `docker buildx build` (issue 13)
//! and where it reported late (issue 14): each test failed before its fix.

use std::time::{Duration, Instant};

use cicd_agents_testenv::{cli, cli_build, context_dir, TestEnv};

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
    let env = TestEnv::required();
    let marker = env.unique_name("refused");
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY marker /\n"),
        ("marker", marker.as_str()),
    ]);
    let name = env.image_ref("buildfix/refused", &marker);
    let started = Instant::now();
    let output = cli_build(&env)
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
    let env = TestEnv::required();
    let marker = env.unique_name("failrun");
    let context = context_dir([(
        "Dockerfile",
        format!(
            "FROM {}\nRUN echo {marker}-a && echo {marker}-b && exit 3\n",
            env.base_image
        )
        .as_str(),
    )]);
    let output = cli_build(&env)
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
    let env = TestEnv::required();
    let marker = env.unique_name("badignore");
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY . /x\n"),
        (".dockerignore", "[\n"),
        ("marker", marker.as_str()),
    ]);
    let output = cli_build(&env)
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

/// The Docker socket given as `unix://` (the Docker API answers HTTP/1.1):
/// the error says so and names the `docker://` address to use.
#[test]
fn the_docker_socket_as_unix_says_to_use_docker() {
    let env = TestEnv::required();
    let address = format!("unix://{}", env.docker_sock.display());
    let output = cli().args(["du", "--addr", &address]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HTTP/1.1"), "{stderr}");
    assert!(stderr.contains(&format!("docker://{address}")), "{stderr}");
}

/// A listener that accepts and never answers: the command gives up after
/// the connect timeout (5 s by default), saying the daemon did not answer,
/// instead of waiting for HTTP/2 keepalive (25 s and more).
#[test]
fn a_silent_daemon_fails_within_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok(stream) = listener.accept() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let output = cli()
        .args(["du", "--addr"])
        .arg(format!("unix://{}", path.display()))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no answer within 5s"), "{stderr}");
    assert!(took < Duration::from_secs(9), "gave up after {took:?}");
}

/// An output destination that cannot be written is refused before anything
/// is sent (exit 2), not after the build (and its push) succeeded.
#[test]
fn a_metadata_file_in_a_missing_directory_is_refused_before_the_build() {
    let env = TestEnv::required();
    let marker = env.unique_name("metadata");
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY marker /\n"),
        ("marker", marker.as_str()),
    ]);
    let missing = context.path().join("nonexistent/dir/m.json");
    let output = cli_build(&env)
        .args([
            "--progress",
            "plain",
            "-o",
            "type=cacheonly",
            "--metadata-file",
        ])
        .arg(&missing)
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--metadata-file"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(
        !stderr.contains("[internal]"),
        "the build was started:\n{stderr}"
    );

    // The files are still written after a successful build.
    let metadata = context.path().join("m.json");
    let iid = context.path().join("iid");
    let output = cli_build(&env)
        .args([
            "--progress",
            "quiet",
            "-o",
            "type=cacheonly",
            "--metadata-file",
        ])
        .arg(&metadata)
        .arg("--iidfile")
        .arg(&iid)
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&metadata).unwrap();
    assert!(text.contains("buildx.build.ref"), "{text}");
}
