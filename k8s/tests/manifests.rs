//! Golden YAML for every manifest the `k8s` module generates, plus checks that the YAML parses
//! back into the Kubernetes types (and our Argo types) and carries the security settings.
//!
//! Regenerate the golden files with `UPDATE_GOLDEN=1 cargo test -p cicd-agents-k8s --test manifests`.

use std::path::{Path, PathBuf};

use cicd_agents_k8s::argo::{BuildAndUpdateChart, ChartUpdate, WorkflowTemplate};
use cicd_agents_k8s::buildkit::{
    BuildEngine, BuildJob, BuildkitDaemon, BuildkitDaemonOptions, BuildkitPool, BUILD_SCRIPT,
};
use cicd_agents_k8s::k8s_openapi::api::core::v1::{Container, PodSpec, Volume};
use cicd_agents_k8s::runners::{Builder, RunnerJob, BUILDAH_SERVER_SCRIPT};
use cicd_agents_k8s::{parse_yaml, render_yaml, Manifest, SecretKeyRef};

fn chart() -> ChartUpdate {
    ChartUpdate {
        repo: "https://github.com/example-org/charts.git".into(),
        branch: "main".into(),
        file: "charts/app/values.yaml".into(),
        key: "image.tag".into(),
        tool_image: "registry.example.com/cicd-agents:0.1.0".into(),
    }
}

/// Every golden file and the manifests it holds.
fn cases() -> Vec<(&'static str, Vec<Manifest>)> {
    let build_job = BuildJob::new(
        "build-app",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
    )
    .namespace("ci")
    .git_ref("refs/heads/main")
    .tag("1.4.2")
    .cache_ref("local-registry:5000/app:buildcache")
    .insecure_cache_registry(true)
    .build()
    .unwrap();
    let build_job_sys_admin = BuildJob::new(
        "build-app",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
    )
    .namespace("ci")
    .generate_name(true)
    .dockerfile("docker/Dockerfile")
    .context_subdir("services/api")
    .git_token(SecretKeyRef::new("github-token", "token"))
    .sys_admin(true)
    .build()
    .unwrap();
    let daemon = BuildkitDaemon::new("buildkitd")
        .namespace("ci")
        .replicas(2)
        .manifests()
        .unwrap();
    let pool = BuildkitPool::new("buildkitd-pool")
        .namespace("ci")
        .replicas(3)
        .cache_size("100Gi")
        .manifests()
        .unwrap();
    let workflow = BuildAndUpdateChart::new(
        "build-and-deploy",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
        chart(),
    )
    .namespace("argo")
    .cache_ref("local-registry:5000/app:buildcache")
    .insecure_cache_registry(true)
    .build()
    .unwrap();
    let kaniko_job = BuildJob::new(
        "build-app",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
    )
    .namespace("ci")
    .engine(BuildEngine::Kaniko)
    .tag("1.4.2")
    .context_subdir("services/api")
    .git_token(SecretKeyRef::new("github-token", "token"))
    .cache_ref("local-registry:5000/app:buildcache")
    .insecure_cache_registry(true)
    .insecure_registry(true)
    .build()
    .unwrap();
    let kaniko_workflow = BuildAndUpdateChart::new(
        "build-and-deploy",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
        chart(),
    )
    .namespace("argo")
    .engine(BuildEngine::Kaniko)
    .git_token(SecretKeyRef::new("git-token", "token"))
    .cache_ref("local-registry:5000/app:buildcache")
    .build()
    .unwrap();
    let github = RunnerJob::github(
        "gha-runner",
        SecretKeyRef::new("gha-jit-config", "jitconfig"),
    )
    .namespace("ci")
    .generate_name(true)
    .build()
    .unwrap();
    let github_buildah = RunnerJob::github(
        "gha-runner",
        SecretKeyRef::new("gha-jit-config", "jitconfig"),
    )
    .namespace("ci")
    .builder(Builder::Buildah)
    .workspace_size("20Gi")
    .storage_class("fast-ssd")
    .build()
    .unwrap();
    let circleci = RunnerJob::circleci(
        "circleci-runner",
        SecretKeyRef::new("circleci-runner-token", "token"),
    )
    .namespace("ci")
    .generate_name(true)
    .builder(Builder::Buildah)
    .build()
    .unwrap();
    let circleci_buildkit = RunnerJob::circleci(
        "circleci-runner",
        SecretKeyRef::new("circleci-runner-token", "token"),
    )
    .namespace("ci")
    .build()
    .unwrap();
    vec![
        ("buildkit-job.yaml", vec![build_job.into()]),
        (
            "buildkit-job-sys-admin.yaml",
            vec![build_job_sys_admin.into()],
        ),
        ("buildkitd-deployment.yaml", daemon),
        ("buildkitd-pool.yaml", pool),
        ("workflow-template.yaml", vec![workflow.into()]),
        ("kaniko-job.yaml", vec![kaniko_job.into()]),
        (
            "workflow-template-kaniko.yaml",
            vec![kaniko_workflow.into()],
        ),
        ("github-runner.yaml", vec![github.into()]),
        ("github-runner-buildah.yaml", vec![github_buildah.into()]),
        ("circleci-runner.yaml", vec![circleci.into()]),
        (
            "circleci-runner-buildkit.yaml",
            vec![circleci_buildkit.into()],
        ),
    ]
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Reads a golden file; with `UPDATE_GOLDEN=1`, (re)writes all of them first, once.
fn golden(file: &str) -> String {
    static WRITTEN: std::sync::Once = std::sync::Once::new();
    if updating() {
        WRITTEN.call_once(|| {
            std::fs::create_dir_all(golden_dir()).unwrap();
            for (file, manifests) in cases() {
                std::fs::write(golden_dir().join(file), render_yaml(&manifests).unwrap()).unwrap();
            }
        });
    }
    let path = golden_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    })
}

#[test]
fn manifests_match_the_golden_files() {
    let mut mismatched = Vec::new();
    for (file, manifests) in cases() {
        let rendered = render_yaml(&manifests).unwrap();
        if golden(file) != rendered {
            mismatched.push(file);
            eprintln!("--- {file} differs; rendered:\n{rendered}");
        }
    }
    assert!(
        mismatched.is_empty(),
        "golden files differ: {mismatched:?} (UPDATE_GOLDEN=1 regenerates them)"
    );
}

#[test]
fn golden_files_parse_back_into_the_typed_objects() {
    for (file, manifests) in cases() {
        let text = golden(file);
        assert!(text.starts_with("---\napiVersion: "), "{file}");
        let parsed = parse_yaml(&text).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(
            parsed, manifests,
            "{file} does not read back as what was rendered"
        );
        // Straight into the k8s-openapi / Argo types too, without our dispatcher.
        for (index, document) in text.split("\n---\n").enumerate() {
            let document = document.trim_start_matches("---\n");
            let kind = document
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .unwrap_or_default();
            let ok = match kind {
                "Job" => yaml_serde::from_str::<cicd_agents_k8s::k8s_openapi::api::batch::v1::Job>(
                    document,
                )
                .is_ok(),
                "Deployment" => yaml_serde::from_str::<
                    cicd_agents_k8s::k8s_openapi::api::apps::v1::Deployment,
                >(document)
                .is_ok(),
                "StatefulSet" => yaml_serde::from_str::<
                    cicd_agents_k8s::k8s_openapi::api::apps::v1::StatefulSet,
                >(document)
                .is_ok(),
                "Service" => yaml_serde::from_str::<
                    cicd_agents_k8s::k8s_openapi::api::core::v1::Service,
                >(document)
                .is_ok(),
                "WorkflowTemplate" => yaml_serde::from_str::<WorkflowTemplate>(document).is_ok(),
                other => panic!("{file} document {index}: unexpected kind {other:?}"),
            };
            assert!(ok, "{file} document {index} ({kind}) does not deserialize");
        }
    }
}

/// Every pod spec in a manifest, with where it is.
fn pod_specs(manifest: &Manifest) -> Vec<(String, PodSpec)> {
    match manifest {
        Manifest::Job(job) => vec![(
            "Job".into(),
            job.spec.clone().unwrap().template.spec.unwrap(),
        )],
        Manifest::Deployment(d) => vec![(
            "Deployment".into(),
            d.spec.clone().unwrap().template.spec.unwrap(),
        )],
        Manifest::StatefulSet(set) => vec![(
            "StatefulSet".into(),
            set.spec.clone().unwrap().template.spec.unwrap(),
        )],
        Manifest::Service(_) => vec![],
        Manifest::WorkflowTemplate(t) => t
            .spec
            .templates
            .iter()
            .filter_map(|template| {
                template.container.clone().map(|container| {
                    (
                        format!("template {}", template.name),
                        PodSpec {
                            containers: vec![container],
                            volumes: Some(template.volumes.clone()),
                            ..PodSpec::default()
                        },
                    )
                })
            })
            .collect(),
    }
}

fn all_containers(spec: &PodSpec) -> Vec<Container> {
    spec.init_containers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .chain(spec.containers.clone())
        .collect()
}

fn is_builder(container: &Container) -> bool {
    let image = container.image.as_deref().unwrap_or_default();
    image.contains("moby/buildkit") || image.contains("buildah")
}

fn has_sys_admin(container: &Container) -> bool {
    container
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.as_ref())
        .is_some_and(|add| {
            add.iter()
                .any(|cap| cap == "SYS_ADMIN" || cap == "CAP_SYS_ADMIN")
        })
}

fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .as_deref()
}

#[test]
fn every_pod_carries_the_security_settings() {
    for (file, manifests) in cases() {
        let text = golden(file);
        assert!(!text.contains("docker.sock"), "{file} mentions docker.sock");
        assert!(!text.contains("hostPath"), "{file} has a hostPath volume");
        for manifest in &manifests {
            for (place, spec) in pod_specs(manifest) {
                let at = format!("{file} {place}");
                assert!(
                    spec.host_network != Some(true) && spec.host_pid != Some(true),
                    "{at}: host namespaces"
                );
                for volume in spec.volumes.clone().unwrap_or_default() {
                    assert!(
                        volume.host_path.is_none(),
                        "{at}: hostPath volume {}",
                        volume.name
                    );
                }
                let builders: Vec<_> = all_containers(&spec)
                    .into_iter()
                    .filter(is_builder)
                    .collect();
                let others: Vec<_> = all_containers(&spec)
                    .into_iter()
                    .filter(|c| !is_builder(c))
                    .collect();
                for container in all_containers(&spec) {
                    let security = container.security_context.clone().unwrap_or_else(|| {
                        panic!("{at}: {} has no securityContext", container.name)
                    });
                    assert_eq!(
                        security.privileged,
                        Some(false),
                        "{at}: {} privileged",
                        container.name
                    );
                    if container
                        .image
                        .as_deref()
                        .is_some_and(|i| i.contains("kaniko-project/executor"))
                    {
                        // Kaniko runs as root in its container, with as little as it needs.
                        assert!(matches!(container.name.as_str(), "kaniko" | "main"), "{at}");
                        assert_eq!(security.run_as_user, Some(0), "{at}");
                        assert_eq!(security.allow_privilege_escalation, Some(false), "{at}");
                        let caps = security.capabilities.clone().unwrap();
                        assert_eq!(caps.drop, Some(vec!["ALL".to_string()]), "{at}");
                        assert_eq!(
                            caps.add.unwrap(),
                            cicd_agents_k8s::buildkit::KANIKO_CAPABILITIES.map(String::from),
                            "{at}"
                        );
                        assert_eq!(
                            security.seccomp_profile.unwrap().type_,
                            "RuntimeDefault",
                            "{at}"
                        );
                        let args = container.args.clone().unwrap_or_default();
                        assert!(
                            args.iter()
                                .all(|a| !a.contains("token") && !a.contains("GIT_PASSWORD")),
                            "{at}: {args:?}"
                        );
                        continue;
                    }
                    assert_eq!(
                        security.run_as_non_root,
                        Some(true),
                        "{at}: {} may run as root",
                        container.name
                    );
                    assert!(
                        security.run_as_user.unwrap_or(0) > 0,
                        "{at}: {} runs as root",
                        container.name
                    );
                }
                for container in &builders {
                    let security = container.security_context.clone().unwrap();
                    assert_eq!(security.run_as_user, Some(1000), "{at}: builder UID");
                    assert_eq!(security.run_as_group, Some(1000), "{at}: builder GID");
                    assert_eq!(
                        security.seccomp_profile.map(|p| p.type_).as_deref(),
                        Some("Unconfined"),
                        "{at}: seccomp"
                    );
                    assert_eq!(
                        security.app_armor_profile.map(|p| p.type_).as_deref(),
                        Some("Unconfined"),
                        "{at}: AppArmor"
                    );
                    assert_eq!(
                        has_sys_admin(container),
                        file.contains("sys-admin"),
                        "{at}: SYS_ADMIN only when asked for"
                    );
                    let state = container.volume_mounts.clone().unwrap_or_default();
                    if container
                        .image
                        .as_deref()
                        .unwrap_or_default()
                        .contains("buildkit")
                    {
                        assert!(
                            state
                                .iter()
                                .any(|m| m.mount_path == "/home/user/.local/share/buildkit"),
                            "{at}: BuildKit state mount"
                        );
                    }
                }
                for container in &others {
                    let security = container.security_context.clone().unwrap();
                    assert_eq!(
                        security.allow_privilege_escalation,
                        Some(false),
                        "{at}: {} may escalate",
                        container.name
                    );
                    assert_eq!(
                        security.capabilities.and_then(|c| c.drop),
                        Some(vec!["ALL".to_string()]),
                        "{at}: {} keeps capabilities",
                        container.name
                    );
                    assert!(
                        !has_sys_admin(container),
                        "{at}: {} has SYS_ADMIN",
                        container.name
                    );
                }
                // Anything with registry credentials mounts the dockerconfigjson key as config.json.
                for volume in spec.volumes.clone().unwrap_or_default() {
                    if let Some(secret) = &volume.secret {
                        if let Some(items) = &secret.items {
                            assert_eq!(items.len(), 1, "{at}");
                            assert_eq!(
                                (items[0].key.as_str(), items[0].path.as_str()),
                                (".dockerconfigjson", "config.json"),
                                "{at}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_build_job_passes_values_as_env_and_mounts_the_docker_config() {
    let job = BuildJob::new(
        "build-app",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
    )
    .tag("1.4.2")
    .cache_ref("local-registry:5000/app:buildcache")
    .build()
    .unwrap();
    let spec = job.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert!(spec.ttl_seconds_after_finished.is_some() && spec.active_deadline_seconds.is_some());
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let container = &pod.containers[0];
    assert_eq!(
        env_value(container, "BUILDKITD_FLAGS"),
        Some("--oci-worker-no-process-sandbox")
    );
    assert_eq!(
        env_value(container, "DOCKER_CONFIG"),
        Some("/home/user/.docker")
    );
    assert_eq!(env_value(container, "IMAGE_TAG"), Some("1.4.2"));
    assert_eq!(env_value(container, "GIT_REF"), Some("refs/heads/main"));
    assert_eq!(env_value(container, "DOCKERFILE"), Some("Dockerfile"));
    assert_eq!(
        container.command.as_deref(),
        Some(&["/bin/sh".to_string(), "-c".to_string()][..])
    );
    assert_eq!(
        container.args.as_deref(),
        Some(&[BUILD_SCRIPT.to_string()][..])
    );
    let volumes: Vec<Volume> = pod.volumes.unwrap();
    let docker = volumes.iter().find(|v| v.name == "docker-config").unwrap();
    assert_eq!(
        docker.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("regcred")
    );
    let state = volumes.iter().find(|v| v.name == "buildkit-state").unwrap();
    assert!(state.empty_dir.is_some());
}

#[test]
fn the_workflow_template_is_the_original_design_with_parameters_in_env_only() {
    let template = BuildAndUpdateChart::new(
        "build-and-deploy",
        "https://github.com/example-org/app.git",
        "docker.io/example/app",
        chart(),
    )
    .build()
    .unwrap();
    assert_eq!(template.api_version, "argoproj.io/v1alpha1");
    assert_eq!(template.kind, "WorkflowTemplate");
    let params: Vec<(String, String)> = template
        .spec
        .arguments
        .clone()
        .unwrap()
        .parameters
        .into_iter()
        .map(|p| (p.name, p.value.unwrap()))
        .collect();
    assert_eq!(
        params,
        [
            ("image-tag", "latest"),
            ("git-ref", "refs/heads/main"),
            ("dockerfile", "Dockerfile")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let main = template
        .spec
        .templates
        .iter()
        .find(|t| t.name == template.spec.entrypoint)
        .unwrap();
    let steps: Vec<Vec<&str>> = main
        .steps
        .as_ref()
        .unwrap()
        .iter()
        .map(|group| group.iter().map(|s| s.template.as_str()).collect())
        .collect();
    assert_eq!(steps, [vec!["build"], vec!["update-chart"]]);

    let build = template
        .spec
        .templates
        .iter()
        .find(|t| t.name == "build")
        .unwrap()
        .container
        .clone()
        .unwrap();
    assert_eq!(
        env_value(&build, "IMAGE_TAG"),
        Some("{{inputs.parameters.image-tag}}")
    );
    assert_eq!(
        env_value(&build, "GIT_REF"),
        Some("{{inputs.parameters.git-ref}}")
    );
    assert_eq!(
        env_value(&build, "DOCKERFILE"),
        Some("{{inputs.parameters.dockerfile}}")
    );
    let update = template
        .spec
        .templates
        .iter()
        .find(|t| t.name == "update-chart")
        .unwrap()
        .container
        .clone()
        .unwrap();
    assert_eq!(
        env_value(&update, "IMAGE_TAG"),
        Some("{{inputs.parameters.image-tag}}")
    );
    let token = update
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "GITHUB_TOKEN")
        .unwrap();
    let selector = token
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(selector.name, "github-token");
    assert_eq!(
        update.command.as_deref(),
        Some(&["cicd-agents".to_string()][..])
    );
    let args = update.args.clone().unwrap();
    assert_eq!(&args[..2], ["chart", "set-image"]);
    for flag in ["--repo", "--branch", "--file", "--key", "--token-env"] {
        assert!(args.iter().any(|a| a == flag), "{flag} missing in {args:?}");
    }
    // One argument: a tag starting with '-' cannot pass for a flag.
    assert!(args.iter().any(|a| a == "--value=$(IMAGE_TAG)"), "{args:?}");
    // No parameter placeholder anywhere in a command line or script: only in env values.
    for template in &template.spec.templates {
        if let Some(container) = &template.container {
            for text in container
                .command
                .iter()
                .flatten()
                .chain(container.args.iter().flatten())
            {
                assert!(
                    !text.contains("{{"),
                    "template {}: placeholder in command/args: {text}",
                    template.name
                );
                assert!(!text.contains("sed "), "template {}: sed", template.name);
            }
        }
    }
    // Secrets regcred and github-token.
    let yaml = render_yaml(&[template.into()]).unwrap();
    assert!(yaml.contains("secretName: regcred"));
    assert!(yaml.contains("name: github-token"));
}

#[test]
fn runner_jobs_are_ephemeral_and_share_a_workspace() {
    for (file, manifests) in cases() {
        if !file.contains("runner") {
            continue;
        }
        let Manifest::Job(job) = &manifests[0] else {
            panic!("{file}")
        };
        let spec = job.spec.clone().unwrap();
        assert!(spec.ttl_seconds_after_finished.is_some(), "{file}");
        assert!(spec.active_deadline_seconds.is_some(), "{file}");
        let pod = spec.template.spec.unwrap();
        let workspace = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "workspace")
            .unwrap();
        let claim = workspace
            .ephemeral
            .as_ref()
            .unwrap()
            .volume_claim_template
            .as_ref()
            .unwrap();
        assert_eq!(
            claim.spec.access_modes.as_deref(),
            Some(&["ReadWriteOnce".to_string()][..]),
            "{file}"
        );
        let builder = &pod.init_containers.as_ref().unwrap()[0];
        assert_eq!(
            builder.restart_policy.as_deref(),
            Some("Always"),
            "{file}: builder is a native sidecar"
        );
        let runner = &pod.containers[0];
        for container in [builder, runner] {
            assert!(
                container
                    .volume_mounts
                    .as_ref()
                    .unwrap()
                    .iter()
                    .any(|m| m.name == "workspace"),
                "{file}: {} lacks the workspace",
                container.name
            );
        }
        let env_names: Vec<&str> = runner
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        if file.starts_with("github") {
            assert_eq!(
                runner.command.as_deref(),
                Some(&["/home/runner/run.sh".to_string()][..])
            );
            let jit = runner
                .env
                .as_ref()
                .unwrap()
                .iter()
                .find(|e| e.name == "ACTIONS_RUNNER_INPUT_JITCONFIG")
                .unwrap();
            assert!(
                jit.value.is_none() && jit.value_from.as_ref().unwrap().secret_key_ref.is_some(),
                "{file}: JIT config from a Secret"
            );
        } else {
            assert_eq!(
                env_value(runner, "CIRCLECI_RUNNER_MODE"),
                Some("single-task")
            );
            let token = runner
                .env
                .as_ref()
                .unwrap()
                .iter()
                .find(|e| e.name == "CIRCLECI_RUNNER_API_AUTH_TOKEN")
                .unwrap();
            assert!(
                token.value.is_none()
                    && token.value_from.as_ref().unwrap().secret_key_ref.is_some(),
                "{file}: token from a Secret"
            );
        }
        if file.contains("buildah") || file == "circleci-runner.yaml" {
            assert_eq!(
                env_value(builder, "BUILDAH_ISOLATION"),
                Some("chroot"),
                "{file}"
            );
            assert_eq!(env_value(builder, "STORAGE_DRIVER"), Some("vfs"), "{file}");
            assert!(env_names.contains(&"BUILD_REQUESTS"), "{file}");
        } else {
            assert_eq!(
                env_value(runner, "BUILDKIT_HOST"),
                Some("tcp://127.0.0.1:1234"),
                "{file}"
            );
        }
    }
}

#[test]
fn values_that_could_inject_are_refused() {
    let base = || {
        BuildJob::new(
            "build-app",
            "https://github.com/example-org/app.git",
            "docker.io/example/app",
        )
    };
    for (what, job) in [
        ("tag with comma", base().tag("1.0,push=false")),
        ("tag with $()", base().tag("$(id)")),
        ("ref with space", base().git_ref("main; rm -rf /")),
        ("dockerfile escaping", base().dockerfile("../../etc/passwd")),
        (
            "cache ref with comma",
            base().cache_ref("reg/app:cache,mode=min"),
        ),
        (
            "upper-case name",
            BuildJob::new("Build", "https://x/y.git", "app"),
        ),
        (
            "git url with $",
            BuildJob::new("b", "https://x/$(id).git", "app"),
        ),
    ] {
        let err = job.build().expect_err(what).to_string();
        assert!(err.starts_with("invalid "), "{what}: {err}");
    }
    let err = BuildJob::new("b", "https://x/y.git", "docker.io/app:1.0")
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("without tag"), "{err}");
    // The WorkflowTemplate's build step is rendered by the same code: the same rule holds
    // (it used to render `docker.io/app:1.0:{{inputs.parameters.image-tag}}`).
    for image in ["docker.io/app:1.0", "registry.local:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"] {
        let err = BuildAndUpdateChart::new("w", "https://x/y.git", image, chart())
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("without tag"), "{image}: {err}");
    }
    assert!(RunnerJob::github("r", SecretKeyRef::new("s", "k"))
        .storage_driver("overlayfs-fuse")
        .build()
        .is_err());
    assert!(RunnerJob::github("r", SecretKeyRef::new("s", "k"))
        .runner_uid(0)
        .build()
        .is_err());
}

/// Runs the build script with a stub `buildctl-daemonless.sh` that prints its arguments.
fn run_build_script(env: &[(&str, &str)]) -> (i32, Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let stub = dir.path().join("buildctl-daemonless.sh");
    std::fs::write(
        &stub,
        "#!/bin/sh\nfor arg in \"$@\"; do printf '%s\\n' \"$arg\"; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(BUILD_SCRIPT)
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let args = stdout.lines().skip(1).map(str::to_string).collect();
    (
        output.status.code().unwrap_or(-1),
        args,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_build_script_passes_each_value_as_one_argument() {
    let base = [
        ("GIT_URL", "https://github.com/example-org/app.git"),
        ("GIT_REF", "refs/heads/main"),
        ("DOCKERFILE", "Dockerfile"),
        ("IMAGE", "docker.io/example/app"),
        ("IMAGE_TAG", "1.4.2"),
        ("PUSH", "true"),
        ("CACHE_REF", "local-registry:5000/app:buildcache"),
        ("CACHE_INSECURE", "true"),
    ];
    let (code, args, stderr) = run_build_script(&base);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        args,
        [
            "build",
            "--frontend",
            "dockerfile.v0",
            "--opt",
            "context=https://github.com/example-org/app.git#refs/heads/main",
            "--opt",
            "filename=Dockerfile",
            "--output",
            "type=image,name=docker.io/example/app:1.4.2,push=true",
            "--export-cache",
            "type=registry,ref=local-registry:5000/app:buildcache,mode=max,registry.insecure=true",
            "--import-cache",
            "type=registry,ref=local-registry:5000/app:buildcache,registry.insecure=true",
        ]
    );

    // Workflow parameters arrive at run time: the script refuses what could inject.
    for (name, value) in [
        ("IMAGE_TAG", "1.0,push=false"),
        ("IMAGE_TAG", "x\"; touch /tmp/pwned; \""),
        ("IMAGE_TAG", "$(id)"),
        ("IMAGE_TAG", ""),
        ("GIT_REF", "main --secret id=x"),
        ("GIT_REF", "-x"),
        ("DOCKERFILE", "../../../etc/passwd"),
    ] {
        let mut env = base.to_vec();
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
        let (code, args, stderr) = run_build_script(&env);
        assert_eq!(code, 2, "{name}={value:?} was accepted: {args:?}");
        assert!(stderr.contains("build: invalid"), "{stderr}");
    }
}

#[test]
fn the_scripts_contain_nothing_kubernetes_or_argo_would_expand() {
    for script in [BUILD_SCRIPT, BUILDAH_SERVER_SCRIPT] {
        assert!(!script.contains("$("), "Kubernetes expands $(VAR) in args");
        assert!(!script.contains("$$"), "Kubernetes reduces $$ to $");
        assert!(!script.contains("{{"), "Argo substitutes {{...}}");
    }
}

#[test]
fn the_buildah_sidecar_builds_on_request_and_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.path().join("calls");
    // A stub buildah that records its arguments.
    std::fs::write(
        bin.join("buildah"),
        format!(
            "#!/bin/sh\nfor arg in \"$@\"; do printf '%s|' \"$arg\" >> {}; done\necho >> {}\n",
            calls.display(),
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("buildah"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let requests = dir.path().join("requests");
    let good = requests.join("1");
    let bad = requests.join("2");
    for (request, image, context) in [
        (&good, "registry.local:5000/app:1.0", "src"),
        (&bad, "app; rm -rf /", "../x"),
    ] {
        std::fs::create_dir_all(request).unwrap();
        std::fs::write(request.join("image"), format!("{image}\n")).unwrap();
        std::fs::write(request.join("context"), format!("{context}\n")).unwrap();
        std::fs::write(request.join("ready"), "").unwrap();
    }
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(BUILDAH_SERVER_SCRIPT)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("BUILD_REQUESTS", &requests)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(good.join("status").exists() && bad.join("status").exists())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        std::fs::read_to_string(good.join("status")).unwrap().trim(),
        "0"
    );
    assert_eq!(
        std::fs::read_to_string(bad.join("status")).unwrap().trim(),
        "2"
    );
    assert!(std::fs::read_to_string(bad.join("log"))
        .unwrap()
        .contains("refused"));
    let calls = std::fs::read_to_string(calls).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "build|--file|/workspace/src/Dockerfile|--tag|registry.local:5000/app:1.0|/workspace/src|",
            "push|registry.local:5000/app:1.0|",
        ]
    );
}

/// Tags, images and refs: the manifests accept what `cicd-agents build -t` accepts (an
/// `ImageRef`, as `buildkit-client`'s plan checks every tag) and refs by git's rules
/// (`GitRef`), narrowed to what fits a build context (`[A-Za-z0-9_./-]`).
#[test]
fn tags_images_and_refs_are_accepted_as_the_build_command_accepts_them() {
    use cicd_agents_types::{GitRef, ImageRef};
    let job = |image: &str, tag: &str, git_ref: &str| {
        BuildJob::new("b", "https://git.example.com/o/r.git", image)
            .tag(tag)
            .git_ref(git_ref)
            .build()
    };
    // (image, tag, accepted by both)
    for (image, tag, ok) in [
        ("docker.io/example/app", "1.4.2", true),
        ("registry.local:5000/team/app", "v1.2.3-rc.1_x", true),
        ("app", "latest", true),
        ("localhost/app", "_x", true),
        ("docker.io/example/app", "v1.0.0-rc.1+build", false),
        ("docker.io/example/app", "-x", false),
        ("docker.io/example/app", ".x", false),
        ("docker.io/example/app", "1.0;id", false),
        ("docker.io/example/app", &"a".repeat(129), false),
        // Refused by `build -t` and now here too (the old second parser took them).
        ("docker.io/Example/App", "1.0", false),
        ("docker.io/example//app", "1.0", false),
        ("docker.io/example/app-", "1.0", false),
        ("reg:port/app", "1.0", false),
    ] {
        let cli = format!("{image}:{tag}").parse::<ImageRef>().is_ok();
        assert_eq!(cli, ok, "build -t {image}:{tag}");
        let manifest = job(image, tag, "refs/heads/main");
        assert_eq!(manifest.is_ok(), ok, "{image} {tag}: {manifest:?}");
        if let Err(err) = manifest {
            assert!(err.is_invalid_input(), "{err}");
            let option = option_of(&err);
            assert!(option == "image" || option == "tag", "{err}: {option}");
        }
        let workflow = BuildAndUpdateChart::new("w", "https://x/y.git", image, chart())
            .default_tag(tag)
            .build();
        assert_eq!(workflow.is_ok(), ok, "{image} {tag}: {workflow:?}");
    }
    // (ref, accepted by the manifests); whatever they accept, git accepts.
    for (git_ref, ok) in [
        ("refs/heads/main", true),
        ("refs/tags/v1.4.2", true),
        ("release/1.2", true),
        ("0123456789abcdef0123456789abcdef01234567", true),
        ("--upload-pack=x", false),
        ("a..b", false),
        ("a:b", false),
        ("main; rm -rf /", false),
        // Refused by git (GitRef), which the old second parser let through.
        ("refs/heads/deploy.lock", false),
        ("refs/heads/.hidden", false),
        ("main.", false),
        ("refs//heads", false),
        // Valid for git, but not in a build context (`<url>#<ref>:<subdir>`).
        ("a#b", false),
        ("a,b", false),
    ] {
        let manifest = job("docker.io/example/app", "1.0", git_ref);
        assert_eq!(manifest.is_ok(), ok, "{git_ref}: {manifest:?}");
        if ok {
            assert!(GitRef::new(git_ref).is_ok(), "{git_ref}");
        } else if let Err(err) = manifest {
            assert!(err.is_invalid_input(), "{err}");
            assert_eq!(option_of(&err), "git ref", "{err}");
        }
    }
}

fn option_of(err: &cicd_agents_k8s::K8sError) -> String {
    match err {
        cicd_agents_k8s::K8sError::InvalidOption { option, .. } => option.clone(),
        other => panic!("not an option error: {other}"),
    }
}

#[test]
fn the_pool_is_a_statefulset_behind_a_headless_service_with_one_pod_template() {
    let pool = BuildkitPool::new("buildkitd-pool")
        .namespace("ci")
        .replicas(4)
        .cache_size("1e3")
        .storage_class(Some("fast-ssd".into()));
    let service = pool.service().unwrap();
    let spec = service.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"), "headless");
    assert_eq!(spec.publish_not_ready_addresses, Some(false));
    let set = pool.statefulset().unwrap();
    let set_spec = set.spec.unwrap();
    assert_eq!(set_spec.replicas, Some(4));
    assert_eq!(set_spec.service_name.as_deref(), Some("buildkitd-pool"));
    assert_eq!(set_spec.pod_management_policy.as_deref(), Some("Parallel"));
    // The Service selects exactly the StatefulSet's pods.
    let pod_labels = set_spec.template.metadata.clone().unwrap().labels.unwrap();
    for (key, value) in spec.selector.unwrap() {
        assert_eq!(pod_labels.get(&key), Some(&value), "{key}");
    }
    let claims = set_spec.volume_claim_templates.unwrap();
    assert_eq!(claims.len(), 1);
    let claim = claims[0].spec.clone().unwrap();
    assert_eq!(claim.storage_class_name.as_deref(), Some("fast-ssd"));
    assert_eq!(
        claim.resources.unwrap().requests.unwrap()["storage"].0,
        "1e3"
    );
    // The same pod as the Deployment's, except that the state comes from the claim.
    let pod = set_spec.template.spec.unwrap();
    let deployment = BuildkitDaemon::new("buildkitd-pool")
        .namespace("ci")
        .deployment()
        .unwrap();
    let deployment_pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.containers, deployment_pod.containers);
    let container = &pod.containers[0];
    assert!(container.readiness_probe.is_some());
    let state_mount = container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == cicd_agents_k8s::BUILDKIT_STATE_DIR)
        .unwrap();
    assert_eq!(state_mount.name, claims[0].metadata.name.clone().unwrap());
    assert!(
        !pod.volumes
            .unwrap()
            .iter()
            .any(|v| v.name == state_mount.name),
        "the state volume must come from the claim template, not an emptyDir"
    );
    // Every replica's name is covered by the certificate's wildcard.
    let names = pool.certificate_dns_names();
    for address in pool.member_addresses() {
        let host = address
            .trim_start_matches("tcp://")
            .rsplit_once(':')
            .unwrap()
            .0;
        let (_, parent) = host.split_once('.').unwrap();
        assert!(names.contains(&format!("*.{parent}")), "{host}: {names:?}");
        assert!(names.contains(&format!("*.{parent}.cluster.local")));
    }
    assert_eq!(pool.address(), "dns+tcp://buildkitd-pool.ci.svc:1234");
}

#[test]
fn bad_pool_values_are_refused_naming_the_option() {
    let cases: Vec<(BuildkitPool, &str)> = vec![
        (BuildkitPool::new("1pool"), "name"),
        (BuildkitPool::new("p".repeat(62)).replicas(10), "name"),
        (BuildkitPool::new("pool").replicas(0), "replicas"),
        (
            BuildkitPool::new("pool").cache_size("1.2.3Gi"),
            "cache size",
        ),
        (BuildkitPool::new("pool").cache_size("0"), "cache size"),
        (
            BuildkitPool::new("pool").storage_class(Some("Fast SSD".into())),
            "storage class",
        ),
        (BuildkitPool::new("pool").namespace("CI"), "namespace"),
        (BuildkitPool::new("pool").port(0), "port"),
    ];
    for (pool, option) in cases {
        match pool.manifests() {
            Err(cicd_agents_k8s::K8sError::InvalidOption { option: got, .. }) => {
                assert_eq!(got, option, "{pool:?}")
            }
            other => panic!("{pool:?}: expected a refusal of {option}, got {other:?}"),
        }
    }
}

#[test]
fn the_daemon_and_the_pool_take_the_same_options_at_once_or_one_by_one() {
    let options = BuildkitDaemonOptions {
        namespace: Some("ci".into()),
        replicas: 2,
        image: "registry.example.com/buildkit:rootless".into(),
        port: 4321,
        tls_secret: "daemon-certs".into(),
        registry_secret: Some("regcred".into()),
        ..BuildkitDaemonOptions::default()
    };
    let daemon = BuildkitDaemon::new("buildkitd").options(options.clone());
    let pool = BuildkitPool::new("buildkitd-pool").options(options.clone());
    assert_eq!(daemon.daemon_options(), &options);
    assert_eq!(pool.daemon_options(), &options);
    assert_eq!(
        daemon.manifests().unwrap(),
        BuildkitDaemon::new("buildkitd")
            .namespace("ci")
            .replicas(2)
            .image("registry.example.com/buildkit:rootless")
            .port(4321)
            .tls_secret("daemon-certs")
            .registry_secret(Some("regcred".into()))
            .manifests()
            .unwrap()
    );
    assert_eq!(
        pool.manifests().unwrap(),
        BuildkitPool::new("buildkitd-pool")
            .namespace("ci")
            .replicas(2)
            .image("registry.example.com/buildkit:rootless")
            .port(4321)
            .tls_secret("daemon-certs")
            .registry_secret(Some("regcred".into()))
            .manifests()
            .unwrap()
    );
    assert_eq!(pool.address(), "dns+tcp://buildkitd-pool.ci.svc:4321");
    // The pool keeps its own default of three replicas; the options' default is one.
    assert_eq!(BuildkitPool::new("p").daemon_options().replicas, 3);
    assert_eq!(BuildkitDaemon::new("d").daemon_options().replicas, 1);
}

#[test]
fn the_build_job_and_the_runner_jobs_refuse_bad_bounds_alike() {
    let build = |job: BuildJob| job.build().unwrap_err().to_string();
    let runner = |job: RunnerJob| job.build().unwrap_err().to_string();
    let build_job = || {
        BuildJob::new(
            "build-app",
            "https://github.com/example-org/app.git",
            "docker.io/example/app",
        )
    };
    let runner_job = || RunnerJob::github("gha-runner", SecretKeyRef::new("gha-jit", "jitconfig"));
    let reason = build(build_job().active_deadline_seconds(0));
    assert!(reason.contains("timing"), "{reason}");
    assert_eq!(reason, runner(runner_job().active_deadline_seconds(0)));
    assert_eq!(
        build(build_job().ttl_seconds_after_finished(-1)),
        runner(runner_job().ttl_seconds_after_finished(-1))
    );
}
