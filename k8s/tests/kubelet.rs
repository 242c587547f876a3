//! Runs the rendered containers' commands the way the kubelet and Argo would: Argo substitutes
//! `{{inputs.parameters.…}}`, the kubelet resolves `env` (plain values, `secretKeyRef`,
//! `fieldRef`) and expands `$(VAR)` in `command` and `args`, then runs the command. Stand-ins
//! for `buildctl-daemonless.sh` and `cicd-agents` record the argv they were given, so these
//! tests see exactly what BuildKit and the chart step would receive, and check that no token
//! and no user value ever reaches a command line or shell text.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cicd_agents_k8s::argo::{BuildAndUpdateChart, ChartUpdate, Template};
use cicd_agents_k8s::buildkit::BuildJob;
use cicd_agents_k8s::k8s_openapi::api::core::v1::Container;
use cicd_agents_k8s::SecretKeyRef;

const TOKEN: &str = "tok-3f9a1c-secret";
const CHART_TOKEN: &str = "chart-tok-77e2";

/// The Secrets of the fake cluster: (name, key) → value.
fn secrets() -> BTreeMap<(&'static str, &'static str), &'static str> {
    BTreeMap::from([
        (("git-token", "token"), TOKEN),
        (("github-token", "token"), CHART_TOKEN),
    ])
}

/// Argo's substitution of `{{inputs.parameters.NAME}}` in every string of the container.
fn argo_substitute(container: &Container, inputs: &BTreeMap<&str, &str>) -> Container {
    let text = serde_json::to_string(container).unwrap();
    let mut out = text.clone();
    for (name, value) in inputs {
        let value = serde_json::to_string(value).unwrap();
        out = out.replace(
            &format!("{{{{inputs.parameters.{name}}}}}"),
            value.trim_matches('"'),
        );
    }
    assert!(!out.contains("{{"), "unresolved Argo expression in {out}");
    serde_json::from_str(&out).unwrap()
}

/// The kubelet's env: plain values (with `$(VAR)` of earlier variables expanded), Secret keys
/// and pod fields.
fn kubelet_env(container: &Container) -> Vec<(String, String)> {
    let secrets = secrets();
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container.env.clone().unwrap_or_default() {
        let value = if let Some(value) = &var.value {
            expand(value, &env)
        } else {
            let from = var.value_from.as_ref().expect("env var without a value");
            if let Some(secret) = &from.secret_key_ref {
                secrets
                    .get(&(secret.name.as_str(), secret.key.as_str()))
                    .unwrap_or_else(|| panic!("no Secret {}/{}", secret.name, secret.key))
                    .to_string()
            } else if let Some(field) = &from.field_ref {
                format!("pod-field-{}", field.field_path)
            } else {
                panic!("unsupported valueFrom in {var:?}")
            }
        };
        env.retain(|(name, _)| *name != var.name);
        env.push((var.name.clone(), value));
    }
    env
}

/// The kubelet's `$(VAR)` expansion: `$$` is a literal `$`, unknown variables stay as written.
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("$(") {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(n, _)| n == name) {
                        Some((_, value)) => out.push_str(value),
                        None => out.push_str(&tail[..end + 3]),
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(tail);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A stand-in program that records its argv (one argument per line) in `<dir>/<name>.argv`
/// and, given `--metadata-file F`, writes BuildKit's metadata (with the image digest) to F.
fn stand_in(dir: &Path, name: &str) {
    let script = format!(
        "#!/bin/sh\n: > '{log}'\nfor arg in \"$@\"; do printf '%s\\n' \"$arg\" >> '{log}'; done\n\
         while [ $# -gt 0 ]; do\n  case \"$1\" in --digest-file=*) printf '%s' '{DIGEST}' > \"${{1#--digest-file=}}\" ;; esac\n  if [ \"$1\" = --metadata-file ]; then\n    \
         printf '{{\\n  \"containerimage.config.digest\": \"sha256:%s\",\\n  \"containerimage.digest\": \"{DIGEST}\"\\n}}\\n' 1111 > \"$2\"\n  fi\n  shift\ndone\n",
        log = dir.join(format!("{name}.argv")).display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The commit the stand-in `git ls-remote` reports for `refs/heads/release`.
const COMMIT: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// A stand-in `git` for `git ls-remote URL`: records its argv in `<dir>/git.argv`, what the
/// `GIT_ASKPASS` program answers for a password in `<dir>/git.askpass`, and lists three refs.
fn git_stand_in(dir: &Path) {
    let script = format!(
        "#!/bin/sh\nfor arg in \"$@\"; do printf '%s\\n' \"$arg\" >> '{dir}/git.argv'; done\n\
         if [ -n \"${{GIT_ASKPASS:-}}\" ]; then \"$GIT_ASKPASS\" 'Password for https://x' > '{dir}/git.askpass'; fi\n\
         printf '1111111111111111111111111111111111111111\\tHEAD\\n{COMMIT}\\trefs/heads/release\\n2222222222222222222222222222222222222222\\trefs/tags/v1.4.2\\n3333333333333333333333333333333333333333\\trefs/tags/v1.4.2^{{}}\\n'\n",
        dir = dir.display()
    );
    let path = dir.join("git");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Ran {
    /// What the build script wrote to its `DIGEST_FILE`, if anything.
    digest: Option<String>,
    /// What the build script wrote to its `SOURCE_COMMIT_FILE`, if anything.
    source_commit: Option<String>,
    /// What the stand-in `git` was given, and what `GIT_ASKPASS` answered it.
    git_argv: Vec<String>,
    git_askpass: Option<String>,
    code: i32,
    /// The argv the kubelet started the container with (after `$(VAR)` expansion).
    container_argv: Vec<String>,
    /// What the stand-in `program` was given.
    program_argv: Vec<String>,
    stderr: String,
}

/// Runs `container` as the kubelet would, with stand-ins on `PATH` for `program`.
fn run_container(container: &Container, program: &str) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    stand_in(dir.path(), program);
    git_stand_in(dir.path());
    let mut env = kubelet_env(container);
    // The output files go to this test's own directory.
    let digest_file = dir.path().join("image-digest");
    let commit_file = dir.path().join("source-commit");
    for (name, value) in env.iter_mut() {
        if name == "DIGEST_FILE" {
            *value = digest_file.display().to_string();
        }
        if name == "SOURCE_COMMIT_FILE" {
            *value = commit_file.display().to_string();
        }
    }
    env.push(("TMPDIR".into(), dir.path().display().to_string()));
    let mut argv: Vec<String> = Vec::new();
    for part in container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
    {
        argv.push(expand(part, &env));
    }
    assert!(!argv.is_empty(), "the container has no command");
    let program_path = if argv[0] == program || argv[0].ends_with(&format!("/{program}")) {
        dir.path().join(program).display().to_string()
    } else {
        argv[0].clone()
    };
    let output = std::process::Command::new(&program_path)
        .args(&argv[1..])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"));
    let recorded =
        std::fs::read_to_string(dir.path().join(format!("{program}.argv"))).unwrap_or_default();
    Ran {
        digest: std::fs::read_to_string(&digest_file).ok(),
        source_commit: std::fs::read_to_string(&commit_file).ok(),
        git_argv: std::fs::read_to_string(dir.path().join("git.argv"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
        git_askpass: std::fs::read_to_string(dir.path().join("git.askpass")).ok(),
        code: output.status.code().unwrap_or(-1),
        container_argv: argv,
        program_argv: recorded.lines().map(str::to_string).collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_no_secret(ran: &Ran, user_values: &[&str]) {
    for arg in ran
        .container_argv
        .iter()
        .chain(&ran.program_argv)
        .chain(&ran.git_argv)
    {
        assert!(
            !arg.contains(TOKEN) && !arg.contains(CHART_TOKEN),
            "a token reached a command line: {arg:?}"
        );
    }
    // The shell text (the container's fixed script) never holds a user value.
    for arg in ran.container_argv.iter().skip(1) {
        if arg.contains('\n') {
            for value in user_values {
                assert!(!arg.contains(value), "{value:?} is in the shell text");
            }
        }
    }
}

fn job_container(job: &cicd_agents_k8s::k8s_openapi::api::batch::v1::Job) -> Container {
    job.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .clone()
}

#[test]
fn the_build_job_offers_the_git_token_to_the_git_urls_host_only() {
    let job = BuildJob::new(
        "build-app",
        "https://git.example.com:8443/org/app.git",
        "registry.example.com/org/app",
    )
    .tag("1.4.2")
    .git_ref("refs/tags/v1.4.2")
    .git_token(SecretKeyRef::new("git-token", "token"))
    .build()
    .unwrap();
    let ran = run_container(&job_container(&job), "buildctl-daemonless.sh");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let secret_at = ran
        .program_argv
        .iter()
        .position(|a| a == "--secret")
        .expect("no --secret");
    assert_eq!(
        ran.program_argv[secret_at + 1],
        "id=GIT_AUTH_TOKEN.git.example.com:8443,env=GIT_AUTH_TOKEN"
    );
    assert!(
        !ran.program_argv
            .iter()
            .any(|a| a.contains("id=GIT_AUTH_TOKEN,")),
        "an unscoped token: {:?}",
        ran.program_argv
    );
    assert_no_secret(&ran, &["1.4.2", "refs/tags/v1.4.2", "git.example.com"]);
}

fn chart() -> ChartUpdate {
    ChartUpdate {
        repo: "https://git.example.com/org/charts.git".into(),
        branch: "main".into(),
        file: "charts/app/values.yaml".into(),
        key: "image.tag".into(),
        tool_image: "registry.example.com/cicd-agents:0.1.0".into(),
    }
}

fn template(workflow: &cicd_agents_k8s::argo::WorkflowTemplate, name: &str) -> Template {
    workflow
        .spec
        .templates
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no template {name}"))
        .clone()
}

#[test]
fn the_workflow_template_builds_a_private_repository_with_a_scoped_token() {
    let workflow = BuildAndUpdateChart::new(
        "build-and-deploy",
        "https://git.example.com/org/app.git",
        "registry.example.com/org/app",
        chart(),
    )
    .git_token(SecretKeyRef::new("git-token", "token"))
    .build()
    .unwrap();
    let inputs = BTreeMap::from([
        ("image-tag", "2.0.1"),
        ("git-ref", "refs/heads/release"),
        ("dockerfile", "docker/Dockerfile"),
    ]);
    let build = argo_substitute(
        template(&workflow, "build").container.as_ref().unwrap(),
        &inputs,
    );
    let ran = run_container(&build, "buildctl-daemonless.sh");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.program_argv
            .contains(&"id=GIT_AUTH_TOKEN.git.example.com,env=GIT_AUTH_TOKEN".to_string()),
        "{:?}",
        ran.program_argv
    );
    assert!(ran
        .program_argv
        .contains(&"type=image,name=registry.example.com/org/app:2.0.1,push=true".to_string()));
    // The pushed digest becomes the build step's output parameter.
    assert_eq!(ran.digest.as_deref(), Some(DIGEST));
    let outputs = template(&workflow, "build").outputs.unwrap().parameters;
    assert_eq!(outputs[0].name, "digest");
    let path = outputs[0].value_from.as_ref().and_then(|v| v.path.clone());
    assert_eq!(
        path.as_deref(),
        kubelet_env(template(&workflow, "build").container.as_ref().unwrap())
            .iter()
            .find(|(n, _)| n == "DIGEST_FILE")
            .map(|(_, v)| v.as_str())
    );
    assert_no_secret(&ran, &["2.0.1", "refs/heads/release", "docker/Dockerfile"]);
    // The source commit: resolved with `git ls-remote` (the token through GIT_ASKPASS, not
    // the command line), an output parameter next to the digest.
    assert_eq!(
        ran.git_argv,
        ["ls-remote", "https://git.example.com/org/app.git"]
    );
    assert_eq!(
        ran.git_askpass.as_deref(),
        Some(format!("{TOKEN}\n").as_str())
    );
    assert_eq!(ran.source_commit.as_deref(), Some(COMMIT));
    let outputs: Vec<_> = template(&workflow, "build")
        .outputs
        .unwrap()
        .parameters
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(outputs, ["digest", "source-commit"]);
    // Tags resolve to the commit they point at (the peeled `^{}` entry), full SHAs to themselves.
    for (git_ref, commit) in [
        ("v1.4.2", "3333333333333333333333333333333333333333"),
        (
            "refs/tags/v1.4.2",
            "3333333333333333333333333333333333333333",
        ),
        (
            "0123456789abcdef0123456789abcdef01234567",
            "0123456789abcdef0123456789abcdef01234567",
        ),
    ] {
        let inputs = BTreeMap::from([
            ("image-tag", "2.0.1"),
            ("git-ref", git_ref),
            ("dockerfile", "Dockerfile"),
        ]);
        let build = argo_substitute(
            template(&workflow, "build").container.as_ref().unwrap(),
            &inputs,
        );
        let ran = run_container(&build, "buildctl-daemonless.sh");
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert_eq!(ran.source_commit.as_deref(), Some(commit), "{git_ref}");
    }
    // A ref the repository does not have fails the step before BuildKit runs.
    let inputs = BTreeMap::from([
        ("image-tag", "2.0.1"),
        ("git-ref", "refs/heads/nope"),
        ("dockerfile", "Dockerfile"),
    ]);
    let build = argo_substitute(
        template(&workflow, "build").container.as_ref().unwrap(),
        &inputs,
    );
    let ran = run_container(&build, "buildctl-daemonless.sh");
    assert_eq!(ran.code, 2, "{:?}", ran.program_argv);
    assert!(
        ran.stderr.contains("has no ref 'refs/heads/nope'"),
        "{}",
        ran.stderr
    );
    assert!(ran.program_argv.is_empty());

    // A hostile parameter is refused by the build step before BuildKit runs.
    for tag in ["1.0;id", "$(touch /tmp/x)", "-x", "v1.0.0-rc.1+build"] {
        let inputs = BTreeMap::from([
            ("image-tag", tag),
            ("git-ref", "refs/heads/main"),
            ("dockerfile", "Dockerfile"),
        ]);
        let build = argo_substitute(
            template(&workflow, "build").container.as_ref().unwrap(),
            &inputs,
        );
        let ran = run_container(&build, "buildctl-daemonless.sh");
        assert_eq!(ran.code, 2, "{tag:?} was accepted: {:?}", ran.program_argv);
        assert!(
            ran.program_argv.is_empty(),
            "{tag:?}: {:?}",
            ran.program_argv
        );
    }
}

#[test]
fn the_update_chart_step_passes_the_tag_joined_to_its_flag_and_the_token_by_env() {
    let workflow = BuildAndUpdateChart::new(
        "build-and-deploy",
        "https://git.example.com/org/app.git",
        "registry.example.com/org/app",
        chart(),
    )
    .build()
    .unwrap();
    let main = template(&workflow, "main");
    let update_args = &main.steps.as_ref().unwrap()[1][0]
        .arguments
        .as_ref()
        .unwrap()
        .parameters;
    assert!(update_args.iter().any(|p| p.name == "digest"
        && p.value.as_deref() == Some("{{steps.build.outputs.parameters.digest}}")));
    assert!(update_args.iter().any(|p| p.name == "source-commit"
        && p.value.as_deref() == Some("{{steps.build.outputs.parameters.source-commit}}")));
    for tag in ["2.0.1", "-rf"] {
        let inputs = BTreeMap::from([
            ("image-tag", tag),
            ("digest", DIGEST),
            ("source-commit", COMMIT),
        ]);
        let update = argo_substitute(
            template(&workflow, "update-chart")
                .container
                .as_ref()
                .unwrap(),
            &inputs,
        );
        let ran = run_container(&update, "cicd-agents");
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let value = format!("--value={tag}");
        assert!(
            ran.program_argv.contains(&value),
            "{value} is not one argument: {:?}",
            ran.program_argv
        );
        assert!(!ran.program_argv.contains(&tag.to_string()));
        assert!(ran.program_argv.contains(&format!("--digest={DIGEST}")));
        assert!(ran
            .program_argv
            .contains(&format!("--source-commit={COMMIT}")));
        assert!(ran
            .program_argv
            .windows(2)
            .any(|w| w[0] == "--token-env" && w[1] == "GITHUB_TOKEN"));
        assert_no_secret(&ran, &[tag]);
    }
}

#[test]
fn a_plain_http_registry_gets_the_image_with_registry_insecure() {
    let base = || {
        BuildJob::new(
            "build-app",
            "https://git.example.com/org/app.git",
            "registry.ci.svc:5000/org/app",
        )
        .tag("1.0.0")
    };
    let output = |job: BuildJob| {
        let ran = run_container(
            &job_container(&job.build().unwrap()),
            "buildctl-daemonless.sh",
        );
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let at = ran
            .program_argv
            .iter()
            .position(|a| a == "--output")
            .unwrap();
        ran.program_argv[at + 1].clone()
    };
    assert_eq!(
        output(base().insecure_registry(true)),
        "type=image,name=registry.ci.svc:5000/org/app:1.0.0,push=true,registry.insecure=true"
    );
    assert_eq!(
        output(base()),
        "type=image,name=registry.ci.svc:5000/org/app:1.0.0,push=true"
    );
}

#[test]
fn the_default_buildkit_image_is_a_current_release() {
    let image = cicd_agents_k8s::DEFAULT_BUILDKIT_IMAGE;
    assert!(
        image.starts_with("docker.io/moby/buildkit:v0.26."),
        "{image}"
    );
    assert!(image.ends_with("-rootless"), "{image}");
}

#[test]
fn kaniko_gets_its_values_as_single_arguments_and_the_token_by_env_only() {
    use cicd_agents_k8s::BuildEngine;
    let workflow = BuildAndUpdateChart::new(
        "build-and-deploy",
        "https://git.example.com/org/app.git",
        "registry.example.com/org/app",
        chart(),
    )
    .engine(BuildEngine::Kaniko)
    .git_token(SecretKeyRef::new("git-token", "token"))
    .insecure_registry(true)
    .cache_ref("registry.example.com/org/app:buildcache")
    .build()
    .unwrap();
    for tag in ["2.0.1", "-x", "1.0 --no-push"] {
        let inputs = BTreeMap::from([
            ("image-tag", tag),
            ("git-ref", "refs/heads/release"),
            ("dockerfile", "docker/Dockerfile"),
        ]);
        let build = argo_substitute(
            template(&workflow, "build").container.as_ref().unwrap(),
            &inputs,
        );
        assert_eq!(
            build.command.as_deref(),
            Some(&["/kaniko/executor".to_string()][..])
        );
        let env = kubelet_env(&build);
        assert!(env.contains(&("GIT_PASSWORD".to_string(), TOKEN.to_string())));
        assert!(env.contains(&("GIT_USERNAME".to_string(), "x-access-token".to_string())));
        let ran = run_container(&build, "executor");
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert_eq!(
            ran.program_argv,
            [
                "--context=git://git.example.com/org/app.git#refs/heads/release".to_string(),
                "--dockerfile=docker/Dockerfile".to_string(),
                format!("--destination=registry.example.com/org/app:{tag}"),
                "--insecure".to_string(),
                "--cache=true".to_string(),
                "--cache-repo=registry.example.com/org/app".to_string(),
                format!(
                    "--digest-file={}",
                    ran.container_argv
                        .iter()
                        .find_map(|a| a.strip_prefix("--digest-file="))
                        .unwrap()
                ),
            ]
        );
        assert_eq!(ran.digest.as_deref(), Some(DIGEST));
        assert_no_secret(&ran, &[tag]);
    }
    // Kaniko cannot resolve the commit: the update step is not given one.
    let main = template(&workflow, "main");
    let update_args = &main.steps.as_ref().unwrap()[1][0]
        .arguments
        .as_ref()
        .unwrap()
        .parameters;
    assert!(update_args.iter().all(|p| p.name != "source-commit"));
    // Kaniko clones over https only.
    assert!(BuildJob::new(
        "b",
        "http://git.local/o/r.git",
        "registry.example.com/org/app"
    )
    .engine(BuildEngine::Kaniko)
    .build()
    .is_err());
}
