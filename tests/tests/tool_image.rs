//! The tool image (`images/tool/Dockerfile`), in which the WorkflowTemplate's update-chart
//! step runs `cicd-agents chart set-image`: built with `cicd-agents build` on the test daemon
//! from the seeded git base image (`scripts/testenv.sh`, the offline stand-in for
//! `debian:trixie-slim`) and this build's binary, loaded into dockerd, then run against the
//! token-protected git server the way the WorkflowTemplate runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cicd_agents_testenv::{cli, cli_binary, TestEnv};

const VALUES: &str = "# values\nimage:\n  repository: example/app\n  tag: \"1.0\"   # set by CI\n";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const TOOL_UID: &str = "65532";

fn dockerfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/tool/Dockerfile")
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `command` to its end, killing it after `limit` (a failure, not a hang).
fn run_within(mut command: Command, limit: Duration) -> Ran {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = std::fs::File::create(&out_path).unwrap_or_else(|e| panic!("{e}"));
    let err = std::fs::File::create(&err_path).unwrap_or_else(|e| panic!("{e}"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let ran = Ran {
        ok: status.is_some_and(|s| s.success()),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    assert!(
        status.is_some(),
        "{command:?} did not finish within {limit:?}\n{}{}",
        ran.stdout,
        ran.stderr
    );
    ran
}

/// Removes the image and the containers a test made, however it ends.
struct Cleanup<'a> {
    env: &'a TestEnv,
    image: String,
    containers: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = self.env.docker_command().args(["rm", "-f", name]).output();
        }
        let _ = self
            .env
            .docker_command()
            .args(["image", "rm", "-f", &self.image])
            .output();
    }
}

/// `cicd-agents build -f images/tool/Dockerfile --load` with the directory holding this
/// build's binary as the context, as the README says (the Dockerfile's own
/// `Dockerfile.dockerignore` keeps the rest of the target directory out).
fn build_tool_image(env: &TestEnv, base: &str, tag: &str) -> Ran {
    let binary = cli_binary();
    let context = binary
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent directory", binary.display()));
    let mut command = cli();
    command
        .args(["build", "--addr", &env.docker_addr, "-f"])
        .arg(dockerfile())
        .args(["--build-arg", &format!("BASE_IMAGE={base}")])
        // RUN steps need a network on this daemon (started with --bridge=none).
        .args([
            "--network",
            "host",
            "--load",
            "-t",
            tag,
            "--progress",
            "plain",
        ])
        .arg(context);
    run_within(command, Duration::from_secs(180))
}

fn docker(env: &TestEnv, args: &[&str]) -> Ran {
    let mut command = env.docker_command();
    command.args(args);
    run_within(command, Duration::from_secs(60))
}

fn inspect(env: &TestEnv, what: &str, name: &str) -> serde_json::Value {
    let ran = docker(env, &[what, "inspect", name]);
    assert!(ran.ok, "docker {what} inspect {name}: {}", ran.stderr);
    let list: serde_json::Value =
        serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.stdout));
    list[0].clone()
}

/// A fresh clone's values file and last commit message.
fn show(env: &TestEnv, url: &str, file: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = dir.path().join("r");
    let target_text = target.to_string_lossy().into_owned();
    env.git(
        dir.path(),
        &["clone", "-q", &env.authed_url(url), &target_text],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let values = std::fs::read_to_string(target.join(file)).unwrap_or_default();
    let log = env
        .git(&target, &["log", "-1", "--format=%an%n%B"])
        .unwrap_or_else(|e| panic!("{e}"));
    (values, log)
}

/// `docker run` arguments of the update-chart step for `tag`: the WorkflowTemplate's
/// command and arguments with `$(IMAGE_TAG)` and `$(IMAGE_DIGEST)` expanded as the kubelet
/// does; the token only in the environment (`-e GITHUB_TOKEN` takes it from the docker
/// client's environment, so it is on no command line either).
fn chart_step_args(url: &str, tag: &str) -> Vec<String> {
    [
        "chart",
        "set-image",
        "--repo",
        url,
        "--branch",
        "main",
        "--file",
        "charts/app/values.yaml",
        "--key",
        "image.tag",
        &format!("--value={tag}"),
        &format!("--digest={DIGEST}"),
        "--token-env",
        "GITHUB_TOKEN",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn the_tool_image_builds_offline_and_updates_a_chart_as_a_non_root_user() {
    let env = TestEnv::required();
    let name = env.unique_name("tool");
    let image = format!("cicd-agents-tool/{name}:1");
    let mut cleanup = Cleanup {
        env: &env,
        image: image.clone(),
        containers: Vec::new(),
    };

    let built = build_tool_image(&env, &env.git_base_image, &image);
    assert!(
        built.ok,
        "building the tool image from {} failed (`scripts/testenv.sh seed-images` seeds it):\n{}",
        env.git_base_image, built.stderr
    );

    // The image's own configuration: non-root, the binary as entrypoint, a writable HOME.
    let config = inspect(&env, "image", &image)["Config"].clone();
    assert_eq!(config["User"], format!("{TOOL_UID}:{TOOL_UID}"), "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["cicd-agents"]),
        "{config}"
    );
    assert_eq!(config["WorkingDir"], "/home/nonroot", "{config}");
    assert!(
        config["Env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|v| v == "HOME=/home/nonroot")),
        "{config}"
    );
    let id = docker(&env, &["run", "--rm", "--entrypoint", "id", &image]);
    assert!(id.ok, "{}", id.stderr);
    assert_eq!(
        id.stdout.trim(),
        format!("uid={TOOL_UID}(nonroot) gid={TOOL_UID}(nonroot) groups={TOOL_UID}(nonroot)")
    );
    let writable = docker(
        &env,
        &[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            &image,
            "-c",
            "touch \"$HOME/x\" && git --version",
        ],
    );
    assert!(
        writable.ok,
        "HOME is not writable or git is missing: {}",
        writable.stderr
    );

    let url = env
        .seed_repo("tool-chart", [("charts/app/values.yaml", VALUES)])
        .unwrap_or_else(|e| panic!("{e}"));

    // 1. As the WorkflowTemplate runs the step: its command, runAsUser/runAsGroup 65532, a
    //    read-only root file system with an emptyDir on /tmp (HOME and TMPDIR there), no
    //    capabilities, no privilege escalation.
    let step = format!("{name}-step");
    cleanup.containers.push(step.clone());
    let mut run = env.docker_command();
    run.args(["run", "--name", &step, "--network", "host"])
        .args(["--user", &format!("{TOOL_UID}:{TOOL_UID}"), "--read-only"])
        .args(["--tmpfs", "/tmp", "--cap-drop", "ALL"])
        .args(["--security-opt", "no-new-privileges"])
        .args(["-e", "HOME=/tmp", "-e", "TMPDIR=/tmp", "-e", "GITHUB_TOKEN"])
        .args(["--entrypoint", "cicd-agents", &image])
        .args(chart_step_args(&url, "1.2.3"))
        .env("GITHUB_TOKEN", &env.git_token);
    let ran = run_within(run, Duration::from_secs(60));
    assert!(
        ran.ok,
        "chart set-image in the tool image failed:\n{}{}",
        ran.stdout, ran.stderr
    );
    assert!(
        !ran.stdout.contains(&env.git_token) && !ran.stderr.contains(&env.git_token),
        "the token was printed"
    );
    let (values, log) = show(&env, &url, "charts/app/values.yaml");
    assert_eq!(values, VALUES.replace("\"1.0\"", "\"1.2.3\""));
    assert!(
        log.contains(DIGEST),
        "the commit message lacks the digest: {log}"
    );

    let container = inspect(&env, "container", &step);
    assert_eq!(
        container["Config"]["User"],
        format!("{TOOL_UID}:{TOOL_UID}")
    );
    let command_line = format!(
        "{} {} {}",
        container["Path"], container["Args"], container["Config"]["Cmd"]
    );
    assert!(command_line.contains("set-image"), "{command_line}");
    assert!(
        !command_line.contains(&env.git_token),
        "the token is on the container's command line: {command_line}"
    );
    let container_env = container["Config"]["Env"].to_string();
    assert!(container_env.contains("GITHUB_TOKEN="), "{container_env}");

    // 2. With nothing but the image's own defaults (user, HOME, entrypoint).
    let plain = format!("{name}-plain");
    cleanup.containers.push(plain.clone());
    let mut run = env.docker_command();
    run.args([
        "run",
        "--name",
        &plain,
        "--network",
        "host",
        "-e",
        "GITHUB_TOKEN",
        &image,
    ])
    .args(chart_step_args(&url, "1.2.4"))
    .env("GITHUB_TOKEN", &env.git_token);
    let ran = run_within(run, Duration::from_secs(60));
    assert!(
        ran.ok,
        "chart set-image with the image's defaults failed:\n{}{}",
        ran.stdout, ran.stderr
    );
    let (values, _) = show(&env, &url, "charts/app/values.yaml");
    assert_eq!(values, VALUES.replace("\"1.0\"", "\"1.2.4\""));
    let container = inspect(&env, "container", &plain);
    assert_eq!(
        container["Config"]["User"],
        format!("{TOOL_UID}:{TOOL_UID}")
    );
}

/// A base without git and without apt-get to install it (the busybox base) fails the build
/// and says why, rather than producing an image whose update step fails later with
/// ``could not run `git` ``.
#[test]
fn a_base_image_without_git_or_apt_get_is_refused_with_the_reason() {
    let env = TestEnv::required();
    let image = format!("cicd-agents-tool/{}:1", env.unique_name("nogit"));
    let _cleanup = Cleanup {
        env: &env,
        image: image.clone(),
        containers: Vec::new(),
    };
    let built = build_tool_image(&env, &env.base_image, &image);
    assert!(
        !built.ok,
        "the build succeeded without git:\n{}",
        built.stderr
    );
    assert!(
        built
            .stderr
            .contains("the base image lacks git or CA certificates and has no apt-get"),
        "{}",
        built.stderr
    );
}
