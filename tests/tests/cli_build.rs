//! `cicd-agents build` as users run it: outputs to stdout, machine-readable
//! progress, several platforms, extra hosts, and Ctrl-C.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cicd_agents_testenv::{cli_build, context_dir, TestEnv};

#[test]
fn tar_to_stdout_and_rawjson_progress() {
    let env = TestEnv::required();
    let marker = env.unique_name("stdout");
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY marker /marker\n"),
        ("marker", marker.as_str()),
    ]);
    let output = cli_build(&env)
        .args(["--progress", "rawjson", "-o", "-"])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A tar archive: "ustar" at offset 257 of the first header, and our file inside.
    assert!(
        output.stdout.len() > 512 && &output.stdout[257..262] == b"ustar",
        "not a tar stream"
    );
    assert!(output
        .stdout
        .windows(marker.len())
        .any(|w| w == marker.as_bytes()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut lines = 0;
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line).expect("rawjson lines are JSON");
        // Every update, then one line of the build's timings.
        assert!(value.get("vertexes").is_some() || value.get("timings").is_some());
        lines += 1;
    }
    assert!(lines > 0, "no rawjson progress: {stderr}");
}

#[test]
fn several_platforms_make_an_index() {
    let env = TestEnv::required();
    let context = context_dir([(
        "Dockerfile",
        "FROM scratch\nARG TARGETPLATFORM\nCOPY Dockerfile /\n",
    )]);
    let tarball = context.path().join("multi.tar");
    let output = cli_build(&env)
        .args([
            "--progress",
            "quiet",
            // buildx's aliases and comma lists; each platform is built once.
            "--platform",
            "linux/x86_64,linux/aarch64",
            "--platform",
            "linux/amd64",
            "-t",
            "multi/app:1",
            "-o",
        ])
        .arg(format!("type=oci,dest={}", tarball.display()))
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&tarball).unwrap();
    let layout = cicd_agents_testenv::differential::read_oci_layout(&bytes).unwrap();
    let platforms: Vec<&str> = layout.images.iter().map(|i| i.platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn add_host_reaches_run_steps() {
    let env = TestEnv::required();
    let marker = env.unique_name("hosts");
    let context = context_dir([(
        "Dockerfile",
        format!(
            "FROM {}\nRUN grep -q 'db-{marker}' /etc/hosts && echo found\n",
            env.base_image
        )
        .as_str(),
    )]);
    let output = cli_build(&env)
        .args([
            "--progress",
            "plain",
            "--network",
            "host",
            "--add-host",
            &format!("db-{marker}:10.1.2.3"),
            "-o",
            "type=cacheonly",
        ])
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("found"), "{stderr}");
}

/// `--progress plain` prints a step's counters like buildx (`ID SIZE TIME done`,
/// decimal units) and before the step's `DONE`, even though the daemon often
/// reports the step's end first.
#[test]
fn plain_progress_prints_transfers_before_done_like_buildx() {
    let env = TestEnv::required();
    let payload = env.unique_name("plain").repeat(200);
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY payload /\n"),
        ("payload", payload.as_str()),
    ]);
    let output = cli_build(&env)
        .args(["--progress", "plain", "-o", "type=cacheonly"])
        .arg(context.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let step_of = |needle: &str| {
        let line = lines
            .iter()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?}:\n{stderr}"));
        line.split(' ').next().unwrap_or_default().to_string()
    };
    let step = step_of("[internal] load build context");
    let transfer = lines
        .iter()
        .position(|line| {
            line.starts_with(&format!("{step} transferring context: ")) && line.ends_with(" done")
        })
        .unwrap_or_else(|| panic!("no finished transfer line for {step}:\n{stderr}"));
    let done = lines
        .iter()
        .position(|line| line.starts_with(&format!("{step} DONE ")))
        .unwrap_or_else(|| panic!("no DONE for {step}:\n{stderr}"));
    assert!(
        transfer < done,
        "the transfer is reported before the step is DONE:\n{stderr}"
    );
    assert!(
        lines[transfer].contains("kB"),
        "decimal units as buildx prints them: {}",
        lines[transfer]
    );
    let dockerfile_step = step_of("[internal] load build definition from Dockerfile");
    let dockerfile_lines: Vec<&&str> = lines
        .iter()
        .filter(|line| line.starts_with(&format!("{dockerfile_step} transferring dockerfile: ")))
        .collect();
    assert_eq!(
        dockerfile_lines.len(),
        1,
        "a quick transfer gets one line:\n{stderr}"
    );
    // `#1 transferring dockerfile: 65B done`, with the time (`0.0s`) when it took over 10 ms.
    let words: Vec<&str> = dockerfile_lines[0]
        .rsplit(": ")
        .next()
        .unwrap_or_default()
        .split(' ')
        .collect();
    let size_ok = words
        .first()
        .and_then(|size| size.strip_suffix('B'))
        .is_some_and(|n| n.parse::<u32>().is_ok());
    let time_ok = words.len() == 2 || (words.len() == 3 && words[1].ends_with('s'));
    assert!(
        size_ok && time_ok && words.last() == Some(&"done"),
        "the Dockerfile transfer line as buildx prints it (`NB [T.Ts] done`): {}",
        dockerfile_lines[0]
    );
}

#[test]
fn failing_build_prints_step_line_and_output() {
    let env = TestEnv::required();
    let marker = env.unique_name("fail");
    let context = context_dir([(
        "Dockerfile",
        format!(
            "FROM {}\n\nRUN echo {marker}-out && false\n",
            env.base_image
        )
        .as_str(),
    )]);
    let output = cli_build(&env)
        .args(["--progress", "quiet", "--network", "host"])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Dockerfile:3"), "{stderr}");
    assert!(stderr.contains(&format!("{marker}-out")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ctrl_c_cancels_the_build_on_the_daemon() {
    let env = TestEnv::required();
    let seconds = format!("{}.{}", 91, std::process::id() % 1000);
    let context = context_dir([(
        "Dockerfile",
        format!("FROM {}\nRUN sleep {seconds}\n", env.base_image).as_str(),
    )]);
    let mut child = cli_build(&env)
        .args(["--progress", "plain", "--network", "host", "--no-cache"])
        .arg(context.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleeping = || {
        let output = Command::new("pgrep")
            .args(["-f", &format!("sleep {seconds}")])
            .output()
            .unwrap();
        !output.stdout.is_empty()
    };
    let started = Instant::now();
    while !sleeping() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the RUN step never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("cancelled"), "{stderr}");
    let stopped = Instant::now();
    while sleeping() {
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "the RUN step still runs after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn load_puts_the_image_into_the_docker_daemon() {
    let env = TestEnv::required();
    let marker = env.unique_name("load");
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY marker /marker\n"),
        ("marker", marker.as_str()),
    ]);
    let tag = format!("loaded/{marker}:1");
    let output = cli_build(&env)
        .args(["--progress", "quiet", "--load", "-t", &tag])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inspect = env
        .docker_command()
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "the image is not in the Docker daemon: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert!(String::from_utf8_lossy(&inspect.stdout).starts_with("sha256:"));
    let _ = env.docker_command().args(["image", "rm", &tag]).output();
}

/// `--keepalive INTERVAL,TIMEOUT` reaches the connection: a build with short
/// pings (answered by the daemon all along) succeeds.
#[test]
fn a_build_with_a_short_keepalive_succeeds() {
    let env = TestEnv::required();
    let payload = env.unique_name("keepalive");
    let context = context_dir([
        ("Dockerfile", "FROM scratch\nCOPY payload /\n"),
        ("payload", payload.as_str()),
    ]);
    let output = cli_build(&env)
        .args([
            "--keepalive",
            "200ms,1s",
            "--progress",
            "plain",
            "-o",
            "type=cacheonly",
        ])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
