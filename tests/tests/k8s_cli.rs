//! `cicd-agents k8s render …` prints multi-document YAML for `kubectl apply -f -`, refuses
//! values that could inject, and `k8s run` without a cluster configuration says so. (The
//! manifests themselves are checked in detail by the k8s crate's golden tests; the launcher by
//! its scripted-API-server tests: there is no cluster here.)

use cicd_agents_testenv::cli;

fn render(args: &[&str]) -> String {
    let out = cli()
        .args(["k8s", "render"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kinds(yaml: &str) -> Vec<&str> {
    yaml.lines()
        .filter_map(|line| line.strip_prefix("kind: "))
        .collect()
}

#[test]
fn every_kind_renders_as_yaml_documents() {
    let job = render(&[
        "job",
        "-n",
        "ci",
        "--git-url",
        "https://github.com/org/app.git",
        "--image",
        "docker.io/org/app",
        "--tag",
        "1.10",
    ]);
    assert!(
        job.starts_with("---\napiVersion: batch/v1\nkind: Job\n"),
        "{job}"
    );
    assert!(
        job.contains("value: '1.10'") || job.contains("value: \"1.10\""),
        "a numeric-looking tag must stay a string:\n{job}"
    );
    assert!(job.contains("type: Unconfined"));
    assert!(!job.contains("SYS_ADMIN"));
    let sys_admin = render(&[
        "job",
        "--git-url",
        "https://github.com/org/app.git",
        "--image",
        "docker.io/org/app",
        "--sys-admin",
    ]);
    assert!(sys_admin.contains("SYS_ADMIN"));

    assert_eq!(
        kinds(&render(&["deployment", "--replicas", "2"])),
        ["Deployment", "Service"]
    );
    let pool = render(&[
        "pool",
        "-n",
        "ci",
        "--replicas",
        "4",
        "--cache-size",
        "20Gi",
    ]);
    assert_eq!(kinds(&pool), ["Service", "StatefulSet"]);
    for line in [
        "clusterIP: None",
        "publishNotReadyAddresses: false",
        "podManagementPolicy: Parallel",
        "serviceName: buildkitd-pool",
        "replicas: 4",
        "storage: 20Gi",
    ] {
        assert!(pool.contains(line), "{line} missing:\n{pool}");
    }
    let workflow = render(WORKFLOW);
    assert_eq!(kinds(&workflow), ["WorkflowTemplate"]);
    assert!(workflow.contains("apiVersion: argoproj.io/v1alpha1"));
    assert!(
        workflow.contains("value: '{{inputs.parameters.image-tag}}'"),
        "{workflow}"
    );
    let github = render(&[
        "github-runner",
        "--jit-config-secret",
        "gha-jit:jitconfig",
        "--generate-name",
    ]);
    assert!(
        github.contains("ACTIONS_RUNNER_INPUT_JITCONFIG")
            && github.contains("generateName: gha-runner-")
    );
    let circleci = render(&[
        "circleci-runner",
        "--token-secret",
        "circleci:token",
        "--builder",
        "buildah",
    ]);
    assert!(circleci.contains("single-task") && circleci.contains("BUILDAH_ISOLATION"));
}

#[test]
fn bad_values_and_missing_clusters_are_clear_errors() {
    let out = cli()
        .args([
            "k8s",
            "render",
            "job",
            "--git-url",
            "https://x/y.git",
            "--image",
            "app",
            "--tag",
            "1,push=false",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid --tag"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli()
        .args([
            "k8s",
            "run",
            "--git-url",
            "https://github.com/org/app.git",
            "--image",
            "docker.io/org/app",
        ])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no usable Kubernetes configuration"),
        "{stderr}"
    );
}

#[test]
fn the_workflow_template_takes_a_git_token_scoped_to_the_git_host() {
    let workflow = render(&[
        "workflow-template",
        "--git-url",
        "https://git.example.com:8443/org/app.git",
        "--image",
        "docker.io/org/app",
        "--chart-repo",
        "https://github.com/org/charts.git",
        "--chart-file",
        "charts/app/values.yaml",
        "--tool-image",
        "registry.example/cicd-agents:0.1.0",
        "--git-token-secret",
        "app-repo:token",
    ]);
    assert!(workflow.contains("name: app-repo"), "{workflow}");
    let lines: Vec<&str> = workflow.lines().map(str::trim).collect();
    assert!(
        lines
            .windows(2)
            .any(|w| w == ["- name: GIT_AUTH_HOST", "value: git.example.com:8443"]),
        "{workflow}"
    );
    assert!(workflow.contains("--value=$(IMAGE_TAG)"), "{workflow}");
}

#[test]
fn chart_set_image_refuses_what_is_not_an_image_tag() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let values = dir.path().join("values.yaml");
    let original = "image:\n  repository: app\n  tag: 1.0.0\n";
    std::fs::write(&values, original).unwrap_or_else(|e| panic!("{e}"));
    for bad in ["1.0;id", "$(touch x)", "v1.0.0-rc.1+build", "-x"] {
        let out = cli()
            .args(["chart", "set-image", "--file"])
            .arg(&values)
            .args(["--key", "image.tag", &format!("--value={bad}")])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("image.tag"), "{bad:?}: {stderr}");
        let set = cli()
            .args(["chart", "set-image", "--file"])
            .arg(&values)
            .args(["--set", &format!("image.tag={bad}")])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.status.code(), Some(2), "--set {bad:?}");
    }
    assert_eq!(
        std::fs::read_to_string(&values).unwrap_or_default(),
        original
    );
    // The WorkflowTemplate passes the build's digest and source commit; a malformed one is
    // refused before any clone.
    for (bad, flag) in [
        ("--digest=sha256:xyz", "--digest"),
        ("--source-commit=main", "--source-commit"),
    ] {
        let out = cli()
            .args([
                "chart",
                "set-image",
                "--repo",
                "https://127.0.0.1:1/charts.git",
                "--file",
                "values.yaml",
                "--key",
                "image.tag",
                "--value=1.0.0",
                bad,
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains(flag), "{bad}: {stderr}");
    }
    let ok = cli()
        .args(["chart", "set-image", "--file"])
        .arg(&values)
        .args(["--key", "image.tag", "--value=1.2.3-rc.1"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(std::fs::read_to_string(&values)
        .unwrap_or_default()
        .contains("tag: 1.2.3-rc.1"));
}

#[test]
fn yaml_1_1_words_and_number_like_strings_are_quoted() {
    let job = render(&[
        "job",
        "-n",
        "no",
        "--git-url",
        "https://github.com/org/app.git",
        "--image",
        "docker.io/org/app",
        "--tag",
        "yes",
    ]);
    let lines: Vec<&str> = job.lines().map(str::trim).collect();
    assert!(lines.contains(&"namespace: 'no'"), "{job}");
    assert!(
        lines
            .windows(2)
            .any(|w| w == ["- name: IMAGE_TAG", "value: 'yes'"]),
        "{job}"
    );
    let workflow = render(&with(WORKFLOW, &["--default-tag", "on"]));
    assert!(
        workflow.lines().any(|l| l.trim() == "value: 'on'"),
        "{workflow}"
    );
    assert!(!workflow.lines().any(|l| l.trim() == "value: on"));
}

const WORKFLOW: &[&str] = &[
    "workflow-template",
    "--git-url",
    "https://github.com/org/app.git",
    "--image",
    "docker.io/org/app",
    "--chart-repo",
    "https://github.com/org/charts.git",
    "--chart-file",
    "charts/app/values.yaml",
    "--tool-image",
    "registry.example/cicd-agents:0.1.0",
];
const JOB: &[&str] = &[
    "job",
    "--git-url",
    "https://github.com/org/app.git",
    "--image",
    "docker.io/org/app",
];
const RUNNER: &[&str] = &["github-runner", "--jit-config-secret", "gha-jit:jitconfig"];

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn every_refused_kubernetes_value_exits_2_naming_the_flag() {
    let long = "a".repeat(64);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (with(&["deployment"], &["--name", "1buildkitd"]), "--name"),
        (with(&["deployment"], &["--replicas", "0"]), "--replicas"),
        (with(&["pool"], &["--name", "1pool"]), "--name"),
        (with(&["pool"], &["--replicas", "0"]), "--replicas"),
        (
            with(&["pool"], &["--cache-size", "1.2.3Gi"]),
            "--cache-size",
        ),
        (with(&["pool"], &["--cache-size", "0"]), "--cache-size"),
        (
            with(&["pool"], &["--storage-class", "Fast SSD"]),
            "--storage-class",
        ),
        (with(&["pool"], &["-n", "No"]), "--namespace"),
        (
            with(&["deployment"], &["--tls-secret", "Bad_Secret"]),
            "--tls-secret",
        ),
        (with(JOB, &["--tag", "$(id)"]), "--tag"),
        (with(JOB, &["--name", &long]), "--name"),
        (
            with(JOB, &["--name", "build--", "--generate-name"]),
            "--name",
        ),
        (with(JOB, &["-n", "No"]), "--namespace"),
        (
            with(JOB, &["--git-token-secret", "token"]),
            "--git-token-secret",
        ),
        (
            with(
                &[
                    "job",
                    "--git-url",
                    "https://u:pw@host/r.git",
                    "--image",
                    "app",
                ],
                &[],
            ),
            "--git-url",
        ),
        (with(WORKFLOW, &["--name", &long]), "--name"),
        (with(WORKFLOW, &["--default-tag=-x"]), "--default-tag"),
        (
            with(
                &[
                    "workflow-template",
                    "--git-url",
                    "https://github.com/org/{{workflow.name}}.git",
                    "--image",
                    "app",
                    "--chart-repo",
                    "https://github.com/org/charts.git",
                    "--chart-file",
                    "values.yaml",
                    "--tool-image",
                    "tool",
                ],
                &[],
            ),
            "--git-url",
        ),
        (
            with(RUNNER, &["--workspace-size", "1.2.3Gi"]),
            "--workspace-size",
        ),
        (with(RUNNER, &["--workspace-size", "0"]), "--workspace-size"),
        (
            with(RUNNER, &["--storage-driver", "fuse"]),
            "--storage-driver",
        ),
        (
            with(&["circleci-runner", "--token-secret", "Bad:token"], &[]),
            "--token-secret",
        ),
        (with(JOB, &["--builder", "podman"]), "--builder"),
        (with(WORKFLOW, &["--builder", "docker"]), "--builder"),
        (
            with(JOB, &["--builder", "kaniko", "--kaniko-image", "Bad Image"]),
            "--kaniko-image",
        ),
    ];
    for (args, flag) in cases {
        let out = cli()
            .args(["k8s", "render"])
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stderr.contains("pw@"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = cli()
        .args(["k8s", "run", "-f", "/nonexistent/job.yaml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubernetes_values_the_old_checks_got_wrong_are_accepted() {
    // The kubectl convention for generateName ends in '-'; the label drops it.
    let job = render(&with(JOB, &["--name", "build-", "--generate-name"]));
    let lines: Vec<&str> = job.lines().map(str::trim).collect();
    assert!(lines.contains(&"generateName: build-"), "{job}");
    assert!(lines.contains(&"app.kubernetes.io/name: build"), "{job}");
    // 1e3 is a valid quantity (and quoted so that it stays one).
    let runner = render(&with(RUNNER, &["--workspace-size", "1e3"]));
    assert!(
        runner.lines().any(|l| l.trim() == "storage: '1e3'"),
        "{runner}"
    );
}

#[test]
fn insecure_registry_reaches_the_build_step() {
    let job = render(&with(JOB, &["--insecure-registry"]));
    assert!(
        job.lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w == ["- name: PUSH_INSECURE", "value: 'true'"]),
        "{job}"
    );
    let workflow = render(&with(WORKFLOW, &["--insecure-registry"]));
    assert!(workflow.contains("PUSH_INSECURE"), "{workflow}");
}

#[test]
fn the_build_step_options_are_the_same_for_job_workflow_template_and_run() {
    // One set of flags (the library's BuildStepOptions): what `render job` takes, the
    // WorkflowTemplate takes too, e.g. an anonymous push and a service account.
    for base in [JOB, WORKFLOW] {
        let args = with(
            base,
            &[
                "--no-registry-secret",
                "--service-account",
                "builder",
                "--context-subdir",
                "services/api",
            ],
        );
        let yaml = render(&args);
        assert!(!yaml.contains("docker-config"), "{yaml}");
        assert!(yaml.contains("serviceAccountName: builder"), "{yaml}");
        assert!(yaml.contains("value: services/api"), "{yaml}");
    }
    let help = cli()
        .args(["k8s", "run", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--no-registry-secret",
        "--git-token-secret",
        "--insecure-registry",
        "--context-subdir",
    ] {
        assert!(help.contains(flag), "k8s run lacks {flag}");
    }
}

#[test]
fn kaniko_renders_an_executor_with_the_token_only_in_its_environment() {
    let job = render(&with(
        JOB,
        &[
            "--builder",
            "kaniko",
            "--git-token-secret",
            "git-token:token",
            "--tag",
            "1.2.3",
        ],
    ));
    assert_eq!(kinds(&job), ["Job"]);
    assert!(job.contains("/kaniko/executor"), "{job}");
    assert!(job.contains("GIT_PASSWORD"), "{job}");
    assert!(!job.contains("buildctl"), "{job}");
    assert!(!job.contains("privileged: true"), "{job}");
    let workflow = render(&with(WORKFLOW, &["--builder", "kaniko"]));
    assert_eq!(kinds(&workflow), ["WorkflowTemplate"]);
    assert!(workflow.contains("/kaniko/executor"), "{workflow}");
}
