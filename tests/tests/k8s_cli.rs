//! `cicd-agents k8s render …` prints multi-document YAML for `kubectl apply -f -`, refuses
//! values that could inject, and `k8s run` without a cluster configuration says so. (The
//! manifests themselves are checked in detail by pipeline-core's golden tests; the launcher by
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
    let workflow = render(&[
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
    ]);
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
        String::from_utf8_lossy(&out.stderr).contains("invalid tag"),
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
