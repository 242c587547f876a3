//! Ephemeral CI runners as Kubernetes Jobs: one Job runs one CI job, then goes away.
//!
//! Each pod has:
//! * the **runner** container: the GitHub Actions runner with a just-in-time (JIT)
//!   configuration (`ACTIONS_RUNNER_INPUT_JITCONFIG`, `./run.sh`), or CircleCI machine runner 3
//!   in `single-task` mode; tokens come from Secrets;
//! * a rootless **builder** as a native sidecar (an init container with
//!   `restartPolicy: Always`, so the Job completes when the runner exits; Kubernetes ≥ 1.30,
//!   which the builder's `securityContext.appArmorProfile` needs):
//!   * [`Builder::Buildkit`]: rootless `buildkitd` listening on `tcp://127.0.0.1:1234`, inside
//!     the pod only; the runner gets `BUILDKIT_HOST` and builds with `cicd-agents build`,
//!     `buildctl` or `docker buildx create --driver remote tcp://127.0.0.1:1234`;
//!   * [`Builder::Buildah`]: Buildah with `BUILDAH_ISOLATION=chroot` and `STORAGE_DRIVER=vfs`
//!     (no `/dev/fuse` in unprivileged pods), building on request: the runner writes a
//!     directory under `$BUILD_REQUESTS` (see [`BUILDAH_SERVER_SCRIPT`]);
//! * a **workspace** shared by both, a generic ephemeral volume
//!   (`volumes[].ephemeral.volumeClaimTemplate`, deleted with the pod).
//!
//! No Docker socket, no `hostPath`, no privileged container; `ttlSecondsAfterFinished` and
//! `activeDeadlineSeconds` bound every Job.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Container, EphemeralVolumeSource, PersistentVolumeClaimTemplate, PodSpec, ResourceRequirements,
    Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::common::{
    builder_security_context, claim_spec, docker_config_volume, empty_dir, env, env_from_field,
    env_from_secret, exec_probe, mount, pod_security_context, restricted_security_context,
    validate_dns_label, validate_dns_subdomain, validate_image, validate_labels, validate_size,
    BuilderSecurity, SecretKeyRef, BUILDKIT_STATE_DIR, BUILDKIT_UID, DEFAULT_BUILDKIT_IMAGE,
    DEFAULT_REGISTRY_SECRET, NO_PROCESS_SANDBOX,
};
use super::error::K8sError;
use super::job::JobShape;

/// The GitHub Actions runner image ARC uses.
pub const DEFAULT_GITHUB_RUNNER_IMAGE: &str = "ghcr.io/actions/actions-runner:latest";
/// CircleCI's machine runner 3 image.
pub const DEFAULT_CIRCLECI_RUNNER_IMAGE: &str = "docker.io/circleci/runner-agent:machine-3";
/// The rootless Buildah image.
pub const DEFAULT_BUILDAH_IMAGE: &str = "quay.io/buildah/stable:latest";
/// Where the builder sidecar of a BuildKit runner listens (inside the pod only).
pub const RUNNER_BUILDKIT_ADDR: &str = "tcp://127.0.0.1:1234";
/// Where the Buildah sidecar looks for build requests (inside its workspace mount).
pub const BUILD_REQUESTS_DIR: &str = "/workspace/.cicd-agents/builds";

/// The fixed script of the Buildah sidecar. A build request is a directory under
/// `$BUILD_REQUESTS` with one value per file: `context` (a path relative to the workspace),
/// `dockerfile` (relative to the context, default `Dockerfile`), `image` (the full reference
/// to tag and push) and, written last, an empty `ready`. The sidecar builds with
/// `buildah build`, pushes, and writes the output to `log` and the exit code to `status`.
/// Values are read from files, never evaluated; paths with `..` and odd image references are
/// refused.
pub const BUILDAH_SERVER_SCRIPT: &str = r#"set -u
root="${BUILD_REQUESTS:-/workspace/.cicd-agents/builds}"
mkdir -p "$root"
echo "buildah: waiting for build requests in $root (storage driver ${STORAGE_DRIVER:-default}, isolation ${BUILDAH_ISOLATION:-default})"
finish() { echo "$2" > "$1/status.tmp" && mv "$1/status.tmp" "$1/status"; }
while :; do
  for dir in "$root"/*; do
    [ -f "$dir/ready" ] || continue
    [ -e "$dir/status" ] && continue
    context=.; dockerfile=Dockerfile; image=""
    [ -f "$dir/context" ] && { IFS= read -r context < "$dir/context" || true; }
    [ -f "$dir/dockerfile" ] && { IFS= read -r dockerfile < "$dir/dockerfile" || true; }
    [ -f "$dir/image" ] && { IFS= read -r image < "$dir/image" || true; }
    case "/$context/$dockerfile/" in
      *'/../'*|//*) echo "refused: context and dockerfile must be relative paths without '..'" > "$dir/log"; finish "$dir" 2; continue ;;
    esac
    case "$image" in
      ''|-*|*[!A-Za-z0-9_.:/@-]*) echo "refused: invalid image reference" > "$dir/log"; finish "$dir" 2; continue ;;
    esac
    echo "buildah: building $image from $context"
    if buildah build --file "/workspace/$context/$dockerfile" --tag "$image" "/workspace/$context" > "$dir/log" 2>&1 \
      && buildah push "$image" >> "$dir/log" 2>&1; then
      finish "$dir" 0
    else
      finish "$dir" 1
    fi
  done
  sleep 1
done
"#;

/// The rootless builder next to the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Builder {
    /// Rootless `buildkitd` on `tcp://127.0.0.1:1234`.
    #[default]
    Buildkit,
    /// Rootless Buildah, `chroot` isolation, building on request.
    Buildah,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Flavor {
    Github { jit_config: SecretKeyRef },
    Circleci { token: SecretKeyRef },
}

/// An ephemeral runner Job for GitHub Actions or CircleCI.
///
/// ```
/// use cicd_agents_k8s::runners::{Builder, RunnerJob};
/// use cicd_agents_k8s::SecretKeyRef;
///
/// // The JIT config comes from POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig,
/// // stored in a Secret by whoever creates the Job.
/// let job = RunnerJob::github("gha-runner", SecretKeyRef::new("gha-jit-1234", "jitconfig"))
///     .namespace("ci")
///     .builder(Builder::Buildah)
///     .workspace_size("20Gi")
///     .build()?;
/// let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
/// assert_eq!(pod.containers[0].name, "runner");
/// assert_eq!(pod.init_containers.as_ref().unwrap()[0].restart_policy.as_deref(), Some("Always"));
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RunnerJob {
    name: String,
    generate_name: bool,
    namespace: Option<String>,
    flavor: Flavor,
    runner_image: String,
    runner_uid: i64,
    builder: Builder,
    builder_image: Option<String>,
    security: BuilderSecurity,
    storage_driver: String,
    registry_secret: Option<String>,
    workspace_size: String,
    storage_class: Option<String>,
    ttl_seconds_after_finished: i32,
    active_deadline_seconds: i64,
    service_account: Option<String>,
    runner_resources: Option<ResourceRequirements>,
    builder_resources: Option<ResourceRequirements>,
    labels: BTreeMap<String, String>,
}

impl RunnerJob {
    fn new(name: String, flavor: Flavor, runner_image: &str, runner_uid: i64) -> Self {
        RunnerJob {
            name,
            generate_name: false,
            namespace: None,
            flavor,
            runner_image: runner_image.into(),
            runner_uid,
            builder: Builder::default(),
            builder_image: None,
            security: BuilderSecurity::default(),
            storage_driver: "vfs".into(),
            registry_secret: Some(DEFAULT_REGISTRY_SECRET.into()),
            workspace_size: "10Gi".into(),
            storage_class: None,
            ttl_seconds_after_finished: 600,
            active_deadline_seconds: 6 * 3600,
            service_account: None,
            runner_resources: None,
            builder_resources: None,
            labels: BTreeMap::new(),
        }
    }

    /// A GitHub Actions runner registered by the JIT configuration in `jit_config` (the
    /// `encoded_jit_config` of the `generate-jitconfig` API); the PAT or App key never reaches
    /// the pod. Runs `./run.sh` of `ghcr.io/actions/actions-runner` as its `runner` user (UID 1001).
    pub fn github(name: impl Into<String>, jit_config: SecretKeyRef) -> Self {
        Self::new(
            name.into(),
            Flavor::Github { jit_config },
            DEFAULT_GITHUB_RUNNER_IMAGE,
            1001,
        )
    }

    /// A CircleCI machine runner 3 in `single-task` mode, authenticated by the resource
    /// class token in `token`. Runs as UID 1000 unless told otherwise ([`RunnerJob::runner_uid`]).
    pub fn circleci(name: impl Into<String>, token: SecretKeyRef) -> Self {
        Self::new(
            name.into(),
            Flavor::Circleci { token },
            DEFAULT_CIRCLECI_RUNNER_IMAGE,
            1000,
        )
    }

    /// Use the name as `generateName` prefix (one manifest, many Jobs).
    pub fn generate_name(mut self, generate: bool) -> Self {
        self.generate_name = generate;
        self
    }

    /// The namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The runner image.
    pub fn runner_image(mut self, image: impl Into<String>) -> Self {
        self.runner_image = image.into();
        self
    }

    /// The (non-root) UID of the runner container.
    pub fn runner_uid(mut self, uid: i64) -> Self {
        self.runner_uid = uid;
        self
    }

    /// BuildKit (default) or Buildah.
    pub fn builder(mut self, builder: Builder) -> Self {
        self.builder = builder;
        self
    }

    /// The builder image (default: rootless BuildKit or `quay.io/buildah/stable`).
    pub fn builder_image(mut self, image: impl Into<String>) -> Self {
        self.builder_image = Some(image.into());
        self
    }

    /// What the builder may do.
    pub fn security(mut self, security: BuilderSecurity) -> Self {
        self.security = security;
        self
    }

    /// Add `CAP_SYS_ADMIN` to the builder (off by default).
    pub fn sys_admin(mut self, sys_admin: bool) -> Self {
        self.security.sys_admin = sys_admin;
        self
    }

    /// Buildah's storage driver (default `vfs`, which needs no `/dev/fuse`; `overlay` works
    /// natively on kernels ≥ 5.13 when user namespaces allow it).
    pub fn storage_driver(mut self, driver: impl Into<String>) -> Self {
        self.storage_driver = driver.into();
        self
    }

    /// The dockerconfigjson Secret for pushes (default `regcred`), or none.
    pub fn registry_secret(mut self, secret: Option<String>) -> Self {
        self.registry_secret = secret;
        self
    }

    /// Size of the workspace volume (default `10Gi`).
    pub fn workspace_size(mut self, size: impl Into<String>) -> Self {
        self.workspace_size = size.into();
        self
    }

    /// Storage class of the workspace volume (default: the cluster's default class).
    pub fn storage_class(mut self, class: impl Into<String>) -> Self {
        self.storage_class = Some(class.into());
        self
    }

    /// Seconds a finished Job is kept (default 600).
    pub fn ttl_seconds_after_finished(mut self, seconds: i32) -> Self {
        self.ttl_seconds_after_finished = seconds;
        self
    }

    /// Seconds the Job may run (default 6 h, GitHub's job limit).
    pub fn active_deadline_seconds(mut self, seconds: i64) -> Self {
        self.active_deadline_seconds = seconds;
        self
    }

    /// Service account of the pod (none is mounted unless this is set).
    pub fn service_account(mut self, account: impl Into<String>) -> Self {
        self.service_account = Some(account.into());
        self
    }

    /// Resources of the runner container.
    pub fn runner_resources(mut self, resources: ResourceRequirements) -> Self {
        self.runner_resources = Some(resources);
        self
    }

    /// Resources of the builder container.
    pub fn builder_resources(mut self, resources: ResourceRequirements) -> Self {
        self.builder_resources = Some(resources);
        self
    }

    /// An extra label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    fn component(&self) -> &'static str {
        match self.flavor {
            Flavor::Github { .. } => "github-runner",
            Flavor::Circleci { .. } => "circleci-runner",
        }
    }

    fn shape(&self) -> JobShape<'_> {
        JobShape {
            name: &self.name,
            generate_name: self.generate_name,
            namespace: self.namespace.as_deref(),
            component: self.component(),
            labels: &self.labels,
            ttl_seconds_after_finished: self.ttl_seconds_after_finished,
            active_deadline_seconds: self.active_deadline_seconds,
            backoff_limit: 0,
        }
    }

    fn validate(&self) -> Result<(), K8sError> {
        self.shape().validate_name()?;
        validate_labels(&self.labels)?;
        if let Some(namespace) = &self.namespace {
            validate_dns_label("namespace", namespace)?;
        }
        match &self.flavor {
            Flavor::Github { jit_config } => jit_config.validate("JIT config secret")?,
            Flavor::Circleci { token } => token.validate("runner token secret")?,
        }
        validate_image("runner image", &self.runner_image)?;
        if self.runner_uid <= 0 {
            return Err(K8sError::option(
                "runner uid",
                "the runner must not run as root",
            ));
        }
        if let Some(image) = &self.builder_image {
            validate_image("builder image", image)?;
        }
        if !["vfs", "overlay"].contains(&self.storage_driver.as_str()) {
            return Err(K8sError::option(
                "storage driver",
                format!("{:?}: use vfs or overlay", self.storage_driver),
            ));
        }
        if let Some(secret) = &self.registry_secret {
            validate_dns_subdomain("registry secret", secret)?;
        }
        validate_size("workspace size", &self.workspace_size)?;
        if let Some(class) = &self.storage_class {
            validate_dns_subdomain("storage class", class)?;
        }
        if let Some(account) = &self.service_account {
            validate_dns_subdomain("service account", account)?;
        }
        self.shape().validate_bounds()
    }

    /// Builds the Job.
    pub fn build(&self) -> Result<Job, K8sError> {
        self.validate()?;
        let mut volumes = vec![self.workspace_volume()];
        let (builder, builder_volumes) = self.builder_container();
        volumes.extend(builder_volumes);
        let (runner, runner_volumes) = self.runner_container();
        volumes.extend(runner_volumes);
        self.shape().job(PodSpec {
            service_account_name: self.service_account.clone(),
            automount_service_account_token: Some(self.service_account.is_some()),
            // Both containers write the workspace: it belongs to the builder's group.
            security_context: Some(pod_security_context(BUILDKIT_UID)),
            init_containers: Some(vec![builder]),
            containers: vec![runner],
            volumes: Some(volumes),
            ..PodSpec::default()
        })
    }

    fn workspace_volume(&self) -> Volume {
        Volume {
            name: "workspace".into(),
            ephemeral: Some(EphemeralVolumeSource {
                volume_claim_template: Some(PersistentVolumeClaimTemplate {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/component".to_string(),
                            format!("{}-workspace", self.component()),
                        )])),
                        ..ObjectMeta::default()
                    }),
                    spec: claim_spec(&self.workspace_size, self.storage_class.clone()),
                }),
            }),
            ..Volume::default()
        }
    }

    fn builder_container(&self) -> (Container, Vec<Volume>) {
        let mut volumes = Vec::new();
        let container = match self.builder {
            Builder::Buildkit => {
                volumes.push(empty_dir("buildkit-state"));
                let probe = [
                    "buildctl",
                    "--addr",
                    RUNNER_BUILDKIT_ADDR,
                    "debug",
                    "workers",
                ];
                Container {
                    name: "buildkitd".into(),
                    image: Some(
                        self.builder_image
                            .clone()
                            .unwrap_or_else(|| DEFAULT_BUILDKIT_IMAGE.into()),
                    ),
                    args: Some(vec![
                        "--addr".into(),
                        RUNNER_BUILDKIT_ADDR.into(),
                        NO_PROCESS_SANDBOX.into(),
                    ]),
                    restart_policy: Some("Always".into()),
                    startup_probe: Some(exec_probe(&probe, 1, 2, 60)),
                    readiness_probe: Some(exec_probe(&probe, 0, 30, 3)),
                    volume_mounts: Some(vec![
                        mount("buildkit-state", BUILDKIT_STATE_DIR, false),
                        mount("workspace", "/workspace", false),
                    ]),
                    security_context: Some(builder_security_context(&self.security)),
                    resources: self.builder_resources.clone(),
                    ..Container::default()
                }
            }
            Builder::Buildah => {
                volumes.push(empty_dir("buildah-storage"));
                let mut env_vars = vec![
                    env("BUILDAH_ISOLATION", "chroot"),
                    env("STORAGE_DRIVER", self.storage_driver.clone()),
                    env("BUILD_REQUESTS", BUILD_REQUESTS_DIR),
                ];
                let mut mounts = vec![
                    mount(
                        "buildah-storage",
                        "/home/build/.local/share/containers",
                        false,
                    ),
                    mount("workspace", "/workspace", false),
                ];
                if let Some(secret) = &self.registry_secret {
                    env_vars.push(env("REGISTRY_AUTH_FILE", "/home/build/.docker/config.json"));
                    mounts.push(mount("builder-docker-config", "/home/build/.docker", true));
                    volumes.push(docker_config_volume("builder-docker-config", secret));
                }
                Container {
                    name: "buildah".into(),
                    image: Some(
                        self.builder_image
                            .clone()
                            .unwrap_or_else(|| DEFAULT_BUILDAH_IMAGE.into()),
                    ),
                    command: Some(vec!["/bin/sh".into(), "-c".into()]),
                    args: Some(vec![BUILDAH_SERVER_SCRIPT.into()]),
                    restart_policy: Some("Always".into()),
                    env: Some(env_vars),
                    volume_mounts: Some(mounts),
                    security_context: Some(builder_security_context(&self.security)),
                    resources: self.builder_resources.clone(),
                    ..Container::default()
                }
            }
        };
        (container, volumes)
    }

    fn runner_container(&self) -> (Container, Vec<Volume>) {
        let mut volumes = vec![empty_dir("tmp")];
        let (home, workdir) = match self.flavor {
            Flavor::Github { .. } => ("/home/runner", "/home/runner/_work"),
            Flavor::Circleci { .. } => ("/home/circleci", "/workspace"),
        };
        let mut env_vars = match &self.flavor {
            Flavor::Github { jit_config } => vec![env_from_secret(
                "ACTIONS_RUNNER_INPUT_JITCONFIG",
                jit_config,
            )],
            Flavor::Circleci { token } => vec![
                env_from_secret("CIRCLECI_RUNNER_API_AUTH_TOKEN", token),
                env_from_field("CIRCLECI_RUNNER_NAME", "metadata.name"),
                env("CIRCLECI_RUNNER_MODE", "single-task"),
                env("CIRCLECI_RUNNER_WORKING_DIRECTORY", "/workspace/work"),
                env("CIRCLECI_RUNNER_CLEANUP_WORKING_DIRECTORY", "true"),
            ],
        };
        let mut mounts = vec![
            mount("workspace", workdir, false),
            mount("tmp", "/tmp", false),
        ];
        match self.builder {
            Builder::Buildkit => {
                env_vars.push(env("BUILDKIT_HOST", RUNNER_BUILDKIT_ADDR));
                // `docker buildx create --driver remote` keeps its state here, not in the
                // read-only DOCKER_CONFIG.
                env_vars.push(env("BUILDX_CONFIG", "/tmp/buildx"));
                if let Some(secret) = &self.registry_secret {
                    // buildkitd asks the client for registry credentials through the session.
                    let dir = format!("{home}/.docker");
                    env_vars.push(env("DOCKER_CONFIG", dir.clone()));
                    mounts.push(mount("docker-config", &dir, true));
                    volumes.push(docker_config_volume("docker-config", secret));
                }
            }
            Builder::Buildah => {
                // The runner sees the workspace at `workdir`, the builder at /workspace.
                let requests = BUILD_REQUESTS_DIR.replacen("/workspace", workdir, 1);
                env_vars.push(env("BUILD_REQUESTS", requests));
                env_vars.push(env("BUILD_WORKSPACE", workdir));
            }
        }
        let container = Container {
            name: "runner".into(),
            image: Some(self.runner_image.clone()),
            command: match self.flavor {
                Flavor::Github { .. } => Some(vec!["/home/runner/run.sh".into()]),
                Flavor::Circleci { .. } => None,
            },
            working_dir: match self.flavor {
                Flavor::Github { .. } => Some("/home/runner".into()),
                Flavor::Circleci { .. } => None,
            },
            env: Some(env_vars),
            volume_mounts: Some(mounts),
            security_context: Some(restricted_security_context(
                self.runner_uid,
                self.runner_uid,
            )),
            resources: self.runner_resources.clone(),
            ..Container::default()
        };
        (container, volumes)
    }
}
