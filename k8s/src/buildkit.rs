//! Rootless BuildKit on Kubernetes: a one-shot build [`Job`] ([`BuildJob`]), a long-running
//! `buildkitd` [`Deployment`] + [`Service`] with mutual TLS ([`BuildkitDaemon`]), and a pool of
//! them as a [`StatefulSet`] + headless [`Service`] for sticky routing ([`BuildkitPool`]).
//!
//! Both follow upstream's `examples/kubernetes/*.rootless.yaml`: UID/GID 1000, seccomp and
//! AppArmor `Unconfined` (as container `securityContext` fields; AppArmor fields need
//! Kubernetes ≥ 1.30), `--oci-worker-no-process-sandbox`, state on an `emptyDir`, never
//! privileged, `SYS_ADMIN` only when asked for ([`BuilderSecurity`]). Because seccomp and
//! AppArmor are `Unconfined`, the namespace must allow it: the `baseline` and `restricted` Pod
//! Security Standards reject such pods, so label the build namespace
//! `pod-security.kubernetes.io/enforce=privileged` (the pods are still unprivileged).
//!
//! The build step's values reach the container as environment variables, never as shell text:
//! the container runs a fixed script ([`BUILD_SCRIPT`]) that validates them and passes each as
//! one argument to `buildctl-daemonless.sh`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::{
    builder_security_context, docker_config_volume, empty_dir, env, env_from_secret, exec_probe,
    git_url_host, labels, metadata, mount, pod_security_context, secret_volume,
    validate_dns1035_label, validate_dns_label, validate_dns_subdomain, validate_git_ref,
    validate_image, validate_job_name, validate_labels, validate_repo_path, validate_size,
    validate_tag, BuilderSecurity, SecretKeyRef, BUILDKIT_DOCKER_CONFIG_DIR, BUILDKIT_STATE_DIR,
    BUILDKIT_UID, DEFAULT_BUILDKIT_IMAGE, DEFAULT_REGISTRY_SECRET, NO_PROCESS_SANDBOX,
};
use super::error::K8sError;

/// The fixed script the build container runs. It reads everything from the environment
/// (`GIT_URL`, `GIT_REF`, `CONTEXT_SUBDIR`, `DOCKERFILE`, `IMAGE`, `IMAGE_TAG`, `PUSH`,
/// `PUSH_INSECURE`, `CACHE_REF`, `CACHE_INSECURE`, `GIT_AUTH_TOKEN`, `GIT_AUTH_HOST`,
/// `DIGEST_FILE`), checks the values that may come from a
/// workflow parameter at run time, and `exec`s `buildctl-daemonless.sh` with each value as a
/// single argument. With `DIGEST_FILE`, it waits for the build and writes the pushed image's
/// digest (from BuildKit's metadata) to that file. With `SOURCE_COMMIT_FILE`, it resolves
/// `GIT_REF` to its commit with `git ls-remote` before the build (the BuildKit image has git;
/// the token reaches git through `GIT_ASKPASS`, never its command line; a ref that is already
/// a full commit SHA is taken as is) and writes it to that file after the build. The git token is offered to BuildKit as the secret
/// `GIT_AUTH_TOKEN.<GIT_AUTH_HOST>`, which BuildKit sends only to the git URL's host (never
/// to another remote the Dockerfile names). It contains neither `$(` nor `$$` (Kubernetes would expand those in
/// arguments) nor `{{` (Argo would).
pub const BUILD_SCRIPT: &str = r#"set -eu
fail() { echo "build: $*" >&2; exit 2; }
case "$IMAGE_TAG" in
  ''|[.-]*|*[!A-Za-z0-9_.-]*) fail "invalid image tag '$IMAGE_TAG': use [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}" ;;
esac
[ "${#IMAGE_TAG}" -le 128 ] || fail "image tag longer than 128 characters"
case "$GIT_REF" in
  ''|-*|*..*|*[!A-Za-z0-9_./-]*) fail "invalid git ref '$GIT_REF'" ;;
esac
case "$DOCKERFILE" in
  ''|/*|*..*|*[!A-Za-z0-9_./+@-]*) fail "invalid Dockerfile path '$DOCKERFILE'" ;;
esac
context="${GIT_URL}#${GIT_REF}"
if [ -n "${CONTEXT_SUBDIR:-}" ]; then context="${context}:${CONTEXT_SUBDIR}"; fi
insecure=""
if [ "${CACHE_INSECURE:-false}" = "true" ]; then insecure=",registry.insecure=true"; fi
push_insecure=""
if [ "${PUSH_INSECURE:-false}" = "true" ]; then push_insecure=",registry.insecure=true"; fi
set -- build --frontend dockerfile.v0 \
  --opt "context=${context}" \
  --opt "filename=${DOCKERFILE}" \
  --output "type=image,name=${IMAGE}:${IMAGE_TAG},push=${PUSH:-true}${push_insecure}"
if [ -n "${CACHE_REF:-}" ]; then
  set -- "$@" \
    --export-cache "type=registry,ref=${CACHE_REF},mode=max${insecure}" \
    --import-cache "type=registry,ref=${CACHE_REF}${insecure}"
fi
if [ -n "${GIT_AUTH_TOKEN:-}" ]; then
  [ -n "${GIT_AUTH_HOST:-}" ] || fail "GIT_AUTH_TOKEN is set but GIT_AUTH_HOST is not"
  set -- "$@" --secret "id=GIT_AUTH_TOKEN.${GIT_AUTH_HOST},env=GIT_AUTH_TOKEN"
fi
if [ -n "${SOURCE_COMMIT_FILE:-}" ]; then
  commit=""
  case "$GIT_REF" in
    *[!0-9a-f]*) ;;
    *) if [ "${#GIT_REF}" -eq 40 ]; then commit="$GIT_REF"; fi ;;
  esac
  if [ -z "$commit" ]; then
    if [ -n "${GIT_AUTH_TOKEN:-}" ]; then
      askpass="${TMPDIR:-/tmp}/cicd-agents-git-askpass"
      printf '%s\n' '#!/bin/sh' 'case "$1" in Username*) echo x-access-token ;; *) printf "%s\n" "$GIT_AUTH_TOKEN" ;; esac' > "$askpass"
      chmod 700 "$askpass"
      export GIT_ASKPASS="$askpass"
    fi
    export GIT_TERMINAL_PROMPT=0
    refs=`git ls-remote "$GIT_URL"` || fail "could not list the refs of ${GIT_URL}"
    for want in "${GIT_REF}^{}" "$GIT_REF" "refs/tags/${GIT_REF}^{}" "refs/tags/${GIT_REF}" "refs/heads/${GIT_REF}"; do
      commit=`printf '%s\n' "$refs" | while read -r sha name; do if [ "$name" = "$want" ]; then echo "$sha"; break; fi; done`
      if [ -n "$commit" ]; then break; fi
    done
    [ -n "$commit" ] || fail "${GIT_URL} has no ref '${GIT_REF}'"
  fi
  echo "build: source commit ${commit}"
fi
echo "build: ${IMAGE}:${IMAGE_TAG} from ${context} (${DOCKERFILE})"
if [ -z "${DIGEST_FILE:-}" ]; then
  exec buildctl-daemonless.sh "$@"
fi
metadata="${DIGEST_FILE}.metadata.json"
buildctl-daemonless.sh "$@" --metadata-file "$metadata"
json=""
if [ -f "$metadata" ]; then json=`tr -d ' \n\t' < "$metadata"`; fi
rest="${json#*\"containerimage.digest\":\"}"
digest="${rest%%\"*}"
case "$digest" in
  sha256:*[!0-9a-f]*|'') fail "the build's metadata has no image digest" ;;
  sha256:*) ;;
  *) fail "the build's metadata has no image digest" ;;
esac
[ "${#digest}" -eq 71 ] || fail "the build's metadata has no image digest"
printf '%s' "$digest" > "$DIGEST_FILE"
if [ -n "${SOURCE_COMMIT_FILE:-}" ]; then printf '%s' "$commit" > "$SOURCE_COMMIT_FILE"; fi
echo "build: pushed ${IMAGE}:${IMAGE_TAG}@${digest}"
"#;

/// The one renderer of a build step: the build [`Job`] ([`BuildJob`]) and the WorkflowTemplate's
/// `build` step ([`BuildAndUpdateChart`](super::argo::BuildAndUpdateChart)) both get their
/// container (script, env, secret references), volumes and pod security context from
/// [`BuildContainer::render`], so the rules (token scoped to the git URL's host, tag and ref
/// checks, insecure registries) live here once. `image_tag`, `git_ref` and `dockerfile` may
/// be Argo placeholders (`{{inputs.parameters.…}}`); the script checks them at run time.
pub(crate) struct BuildContainer<'a> {
    pub name: &'a str,
    pub step: &'a BuildStepOptions,
    pub git_url: &'a str,
    pub git_ref: &'a str,
    pub dockerfile: &'a str,
    /// The repository to push (without tag or digest).
    pub image: &'a str,
    pub image_tag: &'a str,
    pub push: bool,
    /// Where the script writes the pushed image's digest (the WorkflowTemplate's output).
    pub digest_file: Option<&'a str>,
    /// Where the script writes the source commit it built (the WorkflowTemplate's output).
    pub source_commit_file: Option<&'a str>,
}

/// What [`BuildContainer::render`] produces: the container, the volumes it mounts and the
/// pod-level security context its pod needs.
pub(crate) struct BuildPod {
    pub container: Container,
    pub volumes: Vec<Volume>,
    pub security_context: Option<PodSecurityContext>,
}

/// The git URL (its host, returned, is the only remote that gets the git token) and the image
/// repository of a build step, checked the same way for every manifest: the image is a
/// repository without tag or digest (the tag is a value of its own).
pub(crate) fn check_build_target(git_url: &str, image: &str) -> Result<String, K8sError> {
    let host = git_url_host("git url", git_url)?;
    let reference = validate_image("image", image)?;
    if reference.tag().is_some() || reference.digest().is_some() {
        return Err(K8sError::option(
            "image",
            format!("{image:?}: give the repository without tag or digest; set the tag on its own"),
        ));
    }
    Ok(host)
}

/// The Kaniko executor image used unless another is given: the non-debug image, which has no
/// shell (the container runs `/kaniko/executor` with its arguments as a list).
pub const DEFAULT_KANIKO_IMAGE: &str = "gcr.io/kaniko-project/executor:v1.23.2";
/// Where the Kaniko container reads the registry credentials (`config.json`).
pub const KANIKO_DOCKER_CONFIG_DIR: &str = "/kaniko/.docker";
/// The capabilities Kaniko keeps (all others are dropped): it runs as root in its container
/// and unpacks the base image into its own root file system, which needs file ownership and
/// modes (`CHOWN`, `DAC_OVERRIDE`, `FOWNER`, `FSETID`) and `RUN` steps that switch users
/// (`SETUID`, `SETGID`).
pub const KANIKO_CAPABILITIES: [&str; 6] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "SETGID",
    "SETUID",
];

/// Which builder runs a build step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BuildEngine {
    /// Rootless BuildKit (`buildctl-daemonless.sh`), UID 1000, no capabilities (the default).
    #[default]
    Buildkit,
    /// Kaniko's executor: no daemon, no shell, runs as root in its container with a few
    /// capabilities ([`KANIKO_CAPABILITIES`]); builds the git context `git://host/path#ref`.
    Kaniko,
}

impl BuildEngine {
    /// `buildkit` or `kaniko`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildEngine::Buildkit => "buildkit",
            BuildEngine::Kaniko => "kaniko",
        }
    }
}

impl std::str::FromStr for BuildEngine {
    type Err = K8sError;

    fn from_str(text: &str) -> Result<Self, K8sError> {
        match text {
            "buildkit" => Ok(BuildEngine::Buildkit),
            "kaniko" => Ok(BuildEngine::Kaniko),
            other => Err(K8sError::option(
                "builder",
                format!("{other:?} is not buildkit or kaniko"),
            )),
        }
    }
}

/// The options of a rootless BuildKit build step, one struct shared by [`BuildJob`] and
/// [`BuildAndUpdateChart`](super::argo::BuildAndUpdateChart) (`options()` sets all of them at
/// once) and filled by the command line's and Python's front ends. The builders' setters of
/// the same names change one field each.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildStepOptions {
    /// The namespace (otherwise the one `kubectl` or the launcher uses).
    pub namespace: Option<String>,
    /// Build from this sub-directory of the repository.
    pub context_subdir: Option<String>,
    /// Import and export the build cache at this registry ref (`mode=max`).
    pub cache_ref: Option<String>,
    /// The cache registry speaks plain HTTP (`registry.insecure=true` on the cache).
    pub insecure_cache_registry: bool,
    /// The image registry speaks plain HTTP (`registry.insecure=true` on the push).
    pub insecure_registry: bool,
    /// The `kubernetes.io/dockerconfigjson` Secret with the push credentials (default
    /// [`DEFAULT_REGISTRY_SECRET`]); `None` pushes anonymously.
    pub registry_secret: Option<String>,
    /// A token for a private git repository, offered to BuildKit as `GIT_AUTH_TOKEN.<host>`
    /// of the git URL's host only.
    pub git_token: Option<SecretKeyRef>,
    /// The rootless BuildKit image (default [`DEFAULT_BUILDKIT_IMAGE`]).
    pub buildkit_image: String,
    /// Which builder runs the step (default [`BuildEngine::Buildkit`]).
    pub engine: BuildEngine,
    /// The Kaniko executor image (default [`DEFAULT_KANIKO_IMAGE`]), for [`BuildEngine::Kaniko`].
    pub kaniko_image: String,
    /// What the build container may do.
    pub security: BuilderSecurity,
    /// CPU and memory requests and limits of the build container.
    pub resources: Option<ResourceRequirements>,
    /// The service account of the pods.
    pub service_account: Option<String>,
    /// Extra labels on the objects and their pods.
    pub labels: BTreeMap<String, String>,
}

impl Default for BuildStepOptions {
    fn default() -> Self {
        BuildStepOptions {
            namespace: None,
            context_subdir: None,
            cache_ref: None,
            insecure_cache_registry: false,
            insecure_registry: false,
            registry_secret: Some(DEFAULT_REGISTRY_SECRET.into()),
            git_token: None,
            buildkit_image: DEFAULT_BUILDKIT_IMAGE.into(),
            engine: BuildEngine::default(),
            kaniko_image: DEFAULT_KANIKO_IMAGE.into(),
            security: BuilderSecurity::default(),
            resources: None,
            service_account: None,
            labels: BTreeMap::new(),
        }
    }
}

impl BuildStepOptions {
    /// Checks every option with the Kubernetes and image rules.
    pub fn validate(&self) -> Result<(), K8sError> {
        validate_labels(&self.labels)?;
        if let Some(namespace) = &self.namespace {
            validate_dns_label("namespace", namespace)?;
        }
        if let Some(subdir) = &self.context_subdir {
            validate_repo_path("context subdir", subdir)?;
        }
        if let Some(cache) = &self.cache_ref {
            validate_image("cache ref", cache)?;
        }
        if let Some(secret) = &self.registry_secret {
            validate_dns_subdomain("registry secret", secret)?;
        }
        if let Some(token) = &self.git_token {
            token.validate("git token secret")?;
        }
        validate_image("buildkit image", &self.buildkit_image)?;
        validate_image("kaniko image", &self.kaniko_image)?;
        if let Some(account) = &self.service_account {
            validate_dns_subdomain("service account", account)?;
        }
        Ok(())
    }
}

/// The setters of the build step options ([`BuildStepOptions`]), the same on [`BuildJob`] and
/// [`BuildAndUpdateChart`](super::argo::BuildAndUpdateChart): each changes one field of
/// `self.step`.
macro_rules! build_step_setters {
    () => {
        /// Every build step option at once (replacing those set before).
        pub fn options(mut self, options: BuildStepOptions) -> Self {
            self.step = options;
            self
        }

        /// The build step options.
        pub fn step_options(&self) -> &BuildStepOptions {
            &self.step
        }

        /// The namespace (otherwise the one `kubectl` or the launcher uses).
        pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
            self.step.namespace = Some(namespace.into());
            self
        }

        /// Build from a sub-directory of the repository.
        pub fn context_subdir(mut self, subdir: impl Into<String>) -> Self {
            self.step.context_subdir = Some(subdir.into());
            self
        }

        /// Import and export the build cache at this registry ref (`mode=max`).
        pub fn cache_ref(mut self, cache_ref: impl Into<String>) -> Self {
            self.step.cache_ref = Some(cache_ref.into());
            self
        }

        /// The cache registry speaks plain HTTP (`registry.insecure=true` on the cache).
        pub fn insecure_cache_registry(mut self, insecure: bool) -> Self {
            self.step.insecure_cache_registry = insecure;
            self
        }

        /// The image registry speaks plain HTTP: the push gets `registry.insecure=true`.
        pub fn insecure_registry(mut self, insecure: bool) -> Self {
            self.step.insecure_registry = insecure;
            self
        }

        /// The `kubernetes.io/dockerconfigjson` Secret with the push credentials (default
        /// `regcred`); `None` pushes anonymously.
        pub fn registry_secret(mut self, secret: Option<String>) -> Self {
            self.step.registry_secret = secret;
            self
        }

        /// A token for a private git repository, offered to BuildKit as the secret
        /// `GIT_AUTH_TOKEN.<host>` (`<host>` is the git URL's host, with its port), so that
        /// BuildKit sends it to that host only.
        pub fn git_token(mut self, secret: SecretKeyRef) -> Self {
            self.step.git_token = Some(secret);
            self
        }

        /// The rootless BuildKit image (default [`DEFAULT_BUILDKIT_IMAGE`](crate::DEFAULT_BUILDKIT_IMAGE)).
        pub fn buildkit_image(mut self, image: impl Into<String>) -> Self {
            self.step.buildkit_image = image.into();
            self
        }

        /// Which builder runs the step (default BuildKit).
        pub fn engine(mut self, engine: $crate::buildkit::BuildEngine) -> Self {
            self.step.engine = engine;
            self
        }

        /// The Kaniko executor image (default
        /// [`DEFAULT_KANIKO_IMAGE`]($crate::buildkit::DEFAULT_KANIKO_IMAGE)).
        pub fn kaniko_image(mut self, image: impl Into<String>) -> Self {
            self.step.kaniko_image = image.into();
            self
        }

        /// What the build container may do (see [`BuilderSecurity`](crate::BuilderSecurity)).
        pub fn security(mut self, security: crate::BuilderSecurity) -> Self {
            self.step.security = security;
            self
        }

        /// Add `CAP_SYS_ADMIN` to the build container (off by default).
        pub fn sys_admin(mut self, sys_admin: bool) -> Self {
            self.step.security.sys_admin = sys_admin;
            self
        }

        /// CPU and memory requests and limits of the build container.
        pub fn resources(
            mut self,
            resources: k8s_openapi::api::core::v1::ResourceRequirements,
        ) -> Self {
            self.step.resources = Some(resources);
            self
        }

        /// The service account of the pods (for a WorkflowTemplate: Argo's executor needs one
        /// with its usual role).
        pub fn service_account(mut self, account: impl Into<String>) -> Self {
            self.step.service_account = Some(account.into());
            self
        }

        /// An extra label on the objects and their pods.
        pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.step.labels.insert(key.into(), value.into());
            self
        }
    };
}
pub(crate) use build_step_setters;

const STATE_VOLUME: &str = "buildkit-state";
const DOCKER_CONFIG_VOLUME: &str = "docker-config";

impl BuildContainer<'_> {
    /// The container, its volumes and its pod's security context (see [`BuildContainer`]).
    pub(crate) fn render(&self) -> Result<BuildPod, K8sError> {
        let git_host = check_build_target(self.git_url, self.image)?;
        if self.step.engine == BuildEngine::Kaniko {
            return self.render_kaniko();
        }
        let mut env_vars: Vec<EnvVar> = vec![
            env("BUILDKITD_FLAGS", NO_PROCESS_SANDBOX),
            env("GIT_URL", self.git_url),
            env("GIT_REF", self.git_ref),
        ];
        if let Some(subdir) = &self.step.context_subdir {
            env_vars.push(env("CONTEXT_SUBDIR", subdir));
        }
        env_vars.push(env("DOCKERFILE", self.dockerfile));
        env_vars.push(env("IMAGE", self.image));
        env_vars.push(env("IMAGE_TAG", self.image_tag));
        env_vars.push(env("PUSH", if self.push { "true" } else { "false" }));
        if self.step.insecure_registry {
            env_vars.push(env("PUSH_INSECURE", "true"));
        }
        if let Some(path) = self.digest_file {
            env_vars.push(env("DIGEST_FILE", path));
        }
        if let Some(path) = self.source_commit_file {
            env_vars.push(env("SOURCE_COMMIT_FILE", path));
        }
        if let Some(cache) = &self.step.cache_ref {
            env_vars.push(env("CACHE_REF", cache));
            env_vars.push(env(
                "CACHE_INSECURE",
                if self.step.insecure_cache_registry {
                    "true"
                } else {
                    "false"
                },
            ));
        }
        if let Some(token) = &self.step.git_token {
            env_vars.push(env_from_secret("GIT_AUTH_TOKEN", token));
            env_vars.push(env("GIT_AUTH_HOST", git_host));
        }
        let mut mounts: Vec<VolumeMount> = vec![mount(STATE_VOLUME, BUILDKIT_STATE_DIR, false)];
        let mut volumes = vec![empty_dir(STATE_VOLUME)];
        if let Some(secret) = &self.step.registry_secret {
            env_vars.push(env("DOCKER_CONFIG", BUILDKIT_DOCKER_CONFIG_DIR));
            mounts.push(mount(
                DOCKER_CONFIG_VOLUME,
                BUILDKIT_DOCKER_CONFIG_DIR,
                true,
            ));
            volumes.push(docker_config_volume(DOCKER_CONFIG_VOLUME, secret));
        }
        let container = Container {
            name: self.name.to_string(),
            image: Some(self.step.buildkit_image.clone()),
            command: Some(vec!["/bin/sh".into(), "-c".into()]),
            args: Some(vec![BUILD_SCRIPT.to_string()]),
            env: Some(env_vars),
            volume_mounts: Some(mounts),
            security_context: Some(builder_security_context(&self.step.security)),
            resources: self.step.resources.clone(),
            ..Container::default()
        };
        Ok(BuildPod {
            container,
            volumes,
            security_context: Some(pod_security_context(BUILDKIT_UID)),
        })
    }

    /// The Kaniko container: `/kaniko/executor` with its arguments as a list (no shell); values
    /// that may be workflow parameters reach it through env and Kubernetes' `$(VAR)`
    /// expansion, each inside one argument. The git token goes to Kaniko as `GIT_PASSWORD`
    /// (Kaniko sends it to the context's host only), never on the command line.
    fn render_kaniko(&self) -> Result<BuildPod, K8sError> {
        let url = cicd_agents_types::GitUrl::new(self.git_url)
            .map_err(|err| K8sError::option("git url", err.reason))?;
        if !matches!(url.scheme(), cicd_agents_types::GitUrlScheme::Https) {
            return Err(K8sError::option(
                "git url",
                format!(
                    "{:?}: Kaniko clones git contexts over https only",
                    self.git_url
                ),
            ));
        }
        let without_scheme = self.git_url.trim_start_matches("https://");
        let mut env_vars = vec![
            env("GIT_REF", self.git_ref),
            env("DOCKERFILE", self.dockerfile),
            env("IMAGE_TAG", self.image_tag),
        ];
        let mut args = vec![
            format!("--context=git://{without_scheme}#$(GIT_REF)"),
            "--dockerfile=$(DOCKERFILE)".to_string(),
        ];
        if let Some(subdir) = &self.step.context_subdir {
            args.push(format!("--context-sub-path={subdir}"));
        }
        if self.push {
            args.push(format!("--destination={}:$(IMAGE_TAG)", self.image));
        } else {
            args.push("--no-push".into());
        }
        if self.step.insecure_registry {
            args.push("--insecure".into());
        }
        if let Some(cache) = &self.step.cache_ref {
            // Kaniko's cache is a repository: it tags each layer by its cache key.
            let cache = validate_image("cache ref", cache)?;
            args.push("--cache=true".into());
            args.push(format!("--cache-repo={}", cache.name()));
            if self.step.insecure_cache_registry {
                args.push(format!("--insecure-registry={}", cache.registry()));
            }
        }
        if let Some(path) = self.digest_file {
            env_vars.push(env("DIGEST_FILE", path));
            args.push("--digest-file=$(DIGEST_FILE)".into());
        }
        if let Some(token) = &self.step.git_token {
            env_vars.push(env("GIT_USERNAME", "x-access-token"));
            env_vars.push(env_from_secret("GIT_PASSWORD", token));
        }
        let mut mounts = Vec::new();
        let mut volumes = Vec::new();
        if let Some(secret) = &self.step.registry_secret {
            env_vars.push(env("DOCKER_CONFIG", KANIKO_DOCKER_CONFIG_DIR));
            mounts.push(mount(DOCKER_CONFIG_VOLUME, KANIKO_DOCKER_CONFIG_DIR, true));
            volumes.push(docker_config_volume(DOCKER_CONFIG_VOLUME, secret));
        }
        let container = Container {
            name: self.name.to_string(),
            image: Some(self.step.kaniko_image.clone()),
            command: Some(vec!["/kaniko/executor".into()]),
            args: Some(args),
            env: Some(env_vars),
            volume_mounts: (!mounts.is_empty()).then_some(mounts),
            security_context: Some(kaniko_security_context()),
            resources: self.step.resources.clone(),
            ..Container::default()
        };
        Ok(BuildPod {
            container,
            volumes,
            // Kaniko runs as root: no fsGroup to set.
            security_context: None,
        })
    }
}

/// Kaniko's container: root (it unpacks images into its own root file system), never
/// privileged, no privilege escalation, every capability dropped but [`KANIKO_CAPABILITIES`],
/// the runtime's default seccomp profile.
fn kaniko_security_context() -> SecurityContext {
    SecurityContext {
        run_as_user: Some(0),
        run_as_group: Some(0),
        run_as_non_root: Some(false),
        privileged: Some(false),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            add: Some(KANIKO_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
            drop: Some(vec!["ALL".into()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// A one-shot rootless BuildKit build as a Kubernetes [`Job`]: clones `git_url` at `git_ref`
/// inside BuildKit (no `--local` context, no workspace volume), builds `dockerfile` and pushes
/// `image:tag`, with registry cache import/export when a cache ref is given.
///
/// ```
/// use cicd_agents_k8s::buildkit::BuildJob;
///
/// let job = BuildJob::new("build-app", "https://github.com/org/app.git", "docker.io/org/app")
///     .namespace("ci")
///     .git_ref("refs/tags/v1.4.2")
///     .tag("1.4.2")
///     .cache_ref("registry.local:5000/app:buildcache")
///     .insecure_cache_registry(true)
///     .build()?;
/// let container = &job.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
/// let env = container.env.as_ref().unwrap();
/// assert!(env.iter().any(|e| e.name == "IMAGE_TAG" && e.value.as_deref() == Some("1.4.2")));
/// // Values never appear in the script text.
/// assert!(!container.args.as_ref().unwrap()[0].contains("1.4.2"));
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BuildJob {
    name: String,
    generate_name: bool,
    step: BuildStepOptions,
    git_url: String,
    git_ref: String,
    dockerfile: String,
    image: String,
    tag: String,
    push: bool,
    ttl_seconds_after_finished: i32,
    active_deadline_seconds: i64,
    backoff_limit: i32,
}

impl BuildJob {
    /// A build of `git_url` (HTTPS) into `image` (a repository, without tag), with the
    /// defaults of the original design: ref `refs/heads/main`, `Dockerfile`, tag `latest`,
    /// push, registry credentials from the Secret `regcred`, TTL 1 h after finishing, 1 h
    /// deadline, no retries.
    pub fn new(
        name: impl Into<String>,
        git_url: impl Into<String>,
        image: impl Into<String>,
    ) -> Self {
        BuildJob {
            name: name.into(),
            generate_name: false,
            step: BuildStepOptions::default(),
            git_url: git_url.into(),
            git_ref: "refs/heads/main".into(),
            dockerfile: "Dockerfile".into(),
            image: image.into(),
            tag: "latest".into(),
            push: true,
            ttl_seconds_after_finished: 3600,
            active_deadline_seconds: 3600,
            backoff_limit: 0,
        }
    }

    build_step_setters!();

    /// Use the name as `metadata.generateName` prefix (the API server appends a suffix), so
    /// that the same manifest can be created many times.
    pub fn generate_name(mut self, generate: bool) -> Self {
        self.generate_name = generate;
        self
    }

    /// The branch, tag or commit to build (default `refs/heads/main`).
    pub fn git_ref(mut self, git_ref: impl Into<String>) -> Self {
        self.git_ref = git_ref.into();
        self
    }

    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub fn dockerfile(mut self, path: impl Into<String>) -> Self {
        self.dockerfile = path.into();
        self
    }

    /// The image tag (default `latest`).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = tag.into();
        self
    }

    /// Whether to push the image (default yes).
    pub fn push(mut self, push: bool) -> Self {
        self.push = push;
        self
    }

    /// Seconds after which a finished Job is deleted (default 3600).
    pub fn ttl_seconds_after_finished(mut self, seconds: i32) -> Self {
        self.ttl_seconds_after_finished = seconds;
        self
    }

    /// Seconds after which a running Job is stopped (default 3600).
    pub fn active_deadline_seconds(mut self, seconds: i64) -> Self {
        self.active_deadline_seconds = seconds;
        self
    }

    /// Retries before the Job counts as failed (default 0).
    pub fn backoff_limit(mut self, limit: i32) -> Self {
        self.backoff_limit = limit;
        self
    }

    fn validate(&self) -> Result<(), K8sError> {
        validate_job_name("name", &self.name, self.generate_name)?;
        self.step.validate()?;
        check_build_target(&self.git_url, &self.image)?;
        validate_git_ref("git ref", &self.git_ref)?;
        validate_repo_path("dockerfile", &self.dockerfile)?;
        validate_tag("tag", &self.tag)?;
        if self.ttl_seconds_after_finished < 0
            || self.active_deadline_seconds <= 0
            || self.backoff_limit < 0
        {
            return Err(K8sError::option(
                "timing",
                "TTL and backoff limit must be ≥ 0 and the deadline > 0",
            ));
        }
        Ok(())
    }

    /// Builds the Job.
    pub fn build(&self) -> Result<Job, K8sError> {
        self.validate()?;
        tracing::debug!(name = %self.name, image = %self.image, tag = %self.tag, "building a BuildKit Job manifest");
        // With generateName, the labels hold the prefix without its '-'.
        let name = validate_job_name("name", &self.name, self.generate_name)?;
        let labels = labels(&name, "build", &self.step.labels);
        let pod = BuildContainer {
            name: self.step.engine.as_str(),
            step: &self.step,
            git_url: &self.git_url,
            git_ref: &self.git_ref,
            dockerfile: &self.dockerfile,
            image: &self.image,
            image_tag: &self.tag,
            push: self.push,
            digest_file: None,
            source_commit_file: None,
        }
        .render()?;
        let mut meta = metadata(&name, self.step.namespace.as_deref(), labels.clone());
        if self.generate_name {
            meta.name = None;
            meta.generate_name = Some(format!("{name}-"));
        }
        Ok(Job {
            metadata: meta,
            spec: Some(JobSpec {
                backoff_limit: Some(self.backoff_limit),
                active_deadline_seconds: Some(self.active_deadline_seconds),
                ttl_seconds_after_finished: Some(self.ttl_seconds_after_finished),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        service_account_name: self.step.service_account.clone(),
                        automount_service_account_token: Some(false),
                        security_context: pod.security_context,
                        containers: vec![pod.container],
                        volumes: Some(pod.volumes),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        })
    }
}

/// A long-running rootless `buildkitd`: a [`Deployment`] listening on the pod-local unix
/// socket and on TCP with mutual TLS (certificates from a Secret with `ca.pem`, `cert.pem`,
/// `key.pem`, as upstream's `create-certs.sh` makes them), probed with
/// `buildctl debug workers`, and a [`Service`] in front of it. Clients connect with
/// `tcp://<name>.<namespace>.svc:1234` and their own client certificate.
///
/// ```
/// use cicd_agents_k8s::buildkit::BuildkitDaemon;
///
/// let daemon = BuildkitDaemon::new("buildkitd").namespace("ci").replicas(2);
/// let manifests = daemon.manifests()?;
/// assert_eq!(manifests.len(), 2);
/// assert_eq!(daemon.address(), "tcp://buildkitd.ci.svc:1234");
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BuildkitDaemon {
    name: String,
    namespace: Option<String>,
    replicas: i32,
    image: String,
    port: i32,
    tls_secret: String,
    registry_secret: Option<String>,
    security: BuilderSecurity,
    resources: Option<ResourceRequirements>,
    labels: BTreeMap<String, String>,
}

impl BuildkitDaemon {
    /// One replica named `name`, TLS material from the Secret `buildkit-daemon-certs`, port 1234.
    pub fn new(name: impl Into<String>) -> Self {
        BuildkitDaemon {
            name: name.into(),
            namespace: None,
            replicas: 1,
            image: DEFAULT_BUILDKIT_IMAGE.into(),
            port: 1234,
            tls_secret: "buildkit-daemon-certs".into(),
            registry_secret: None,
            security: BuilderSecurity::default(),
            resources: None,
            labels: BTreeMap::new(),
        }
    }

    /// The namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// How many daemons (default 1). Each keeps its own cache: for sticky routing over several,
    /// give each its own address (see the builder pool in `cicd-agents-buildkit`).
    pub fn replicas(mut self, replicas: i32) -> Self {
        self.replicas = replicas;
        self
    }

    /// The rootless BuildKit image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// The TCP port (default 1234).
    pub fn port(mut self, port: i32) -> Self {
        self.port = port;
        self
    }

    /// The Secret with `ca.pem`, `cert.pem` and `key.pem` (default `buildkit-daemon-certs`).
    pub fn tls_secret(mut self, secret: impl Into<String>) -> Self {
        self.tls_secret = secret.into();
        self
    }

    /// Registry credentials the daemon itself uses (for cache export and pulls of private base
    /// images); clients normally send theirs through the build session.
    pub fn registry_secret(mut self, secret: Option<String>) -> Self {
        self.registry_secret = secret;
        self
    }

    /// What the daemon container may do (see [`BuilderSecurity`]).
    pub fn security(mut self, security: BuilderSecurity) -> Self {
        self.security = security;
        self
    }

    /// Add `CAP_SYS_ADMIN` (off by default).
    pub fn sys_admin(mut self, sys_admin: bool) -> Self {
        self.security.sys_admin = sys_admin;
        self
    }

    /// CPU and memory requests and limits.
    pub fn resources(mut self, resources: ResourceRequirements) -> Self {
        self.resources = Some(resources);
        self
    }

    /// An extra label on every object.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The address clients use inside the cluster.
    pub fn address(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("tcp://{}.{namespace}.svc:{}", self.name, self.port),
            None => format!("tcp://{}:{}", self.name, self.port),
        }
    }

    fn validate(&self) -> Result<(), K8sError> {
        // The Service has the same name: a DNS-1035 label.
        validate_dns1035_label("name", &self.name)?;
        validate_labels(&self.labels)?;
        if let Some(namespace) = &self.namespace {
            validate_dns_label("namespace", namespace)?;
        }
        if !(1..=1000).contains(&self.replicas) {
            return Err(K8sError::option(
                "replicas",
                format!("{} is not between 1 and 1000", self.replicas),
            ));
        }
        if !(1..=65535).contains(&self.port) {
            return Err(K8sError::option(
                "port",
                format!("{} is not a port number", self.port),
            ));
        }
        validate_image("image", &self.image)?;
        validate_dns_subdomain("tls secret", &self.tls_secret)?;
        if let Some(secret) = &self.registry_secret {
            validate_dns_subdomain("registry secret", secret)?;
        }
        Ok(())
    }

    fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), self.name.clone()),
            (
                "app.kubernetes.io/component".to_string(),
                "buildkitd".to_string(),
            ),
        ])
    }

    /// The buildkitd pod, shared by the Deployment and the pool's StatefulSet: the daemon on
    /// the pod-local unix socket and on TCP with mutual TLS, probed with `buildctl debug
    /// workers`. With `state_claim`, the state directory comes from the StatefulSet's volume
    /// claim template of that name (a cache that survives restarts); otherwise from an
    /// `emptyDir`.
    fn pod_template(&self, labels: BTreeMap<String, String>, state_claim: bool) -> PodTemplateSpec {
        let probe_command = ["buildctl", "debug", "workers"];
        let mut env_vars = vec![];
        let mut mounts = vec![
            mount(STATE_VOLUME, BUILDKIT_STATE_DIR, false),
            mount("certs", "/certs", true),
        ];
        let mut volumes = Vec::new();
        if !state_claim {
            volumes.push(empty_dir(STATE_VOLUME));
        }
        volumes.push(secret_volume("certs", &self.tls_secret));
        if let Some(secret) = &self.registry_secret {
            env_vars.push(env("DOCKER_CONFIG", BUILDKIT_DOCKER_CONFIG_DIR));
            mounts.push(mount(
                DOCKER_CONFIG_VOLUME,
                BUILDKIT_DOCKER_CONFIG_DIR,
                true,
            ));
            volumes.push(docker_config_volume(DOCKER_CONFIG_VOLUME, secret));
        }
        let container = Container {
            name: "buildkitd".into(),
            image: Some(self.image.clone()),
            args: Some(vec![
                "--addr".into(),
                format!("unix:///run/user/{BUILDKIT_UID}/buildkit/buildkitd.sock"),
                "--addr".into(),
                format!("tcp://0.0.0.0:{}", self.port),
                "--tlscacert".into(),
                "/certs/ca.pem".into(),
                "--tlscert".into(),
                "/certs/cert.pem".into(),
                "--tlskey".into(),
                "/certs/key.pem".into(),
                NO_PROCESS_SANDBOX.into(),
            ]),
            env: (!env_vars.is_empty()).then_some(env_vars),
            ports: Some(vec![ContainerPort {
                name: Some("buildkitd".into()),
                container_port: self.port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(exec_probe(&probe_command, 5, 30, 3)),
            liveness_probe: Some(exec_probe(&probe_command, 5, 30, 3)),
            volume_mounts: Some(mounts),
            security_context: Some(builder_security_context(&self.security)),
            resources: self.resources.clone(),
            ..Container::default()
        };
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                automount_service_account_token: Some(false),
                security_context: Some(pod_security_context(BUILDKIT_UID)),
                containers: vec![container],
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
        }
    }

    /// The Deployment.
    pub fn deployment(&self) -> Result<Deployment, K8sError> {
        self.validate()?;
        let labels = labels(&self.name, "buildkitd", &self.labels);
        Ok(Deployment {
            metadata: metadata(&self.name, self.namespace.as_deref(), labels.clone()),
            spec: Some(DeploymentSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector {
                    match_labels: Some(self.selector()),
                    match_expressions: None,
                },
                template: self.pod_template(labels, false),
                ..DeploymentSpec::default()
            }),
            status: None,
        })
    }

    /// The Service.
    pub fn service(&self) -> Result<Service, K8sError> {
        self.validate()?;
        Ok(Service {
            metadata: metadata(
                &self.name,
                self.namespace.as_deref(),
                labels(&self.name, "buildkitd", &self.labels),
            ),
            spec: Some(ServiceSpec {
                selector: Some(self.selector()),
                ports: Some(vec![ServicePort {
                    name: Some("buildkitd".into()),
                    port: self.port,
                    protocol: Some("TCP".into()),
                    target_port: Some(IntOrString::String("buildkitd".into())),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        })
    }

    /// The Deployment and the Service, in the order to apply them.
    pub fn manifests(&self) -> Result<Vec<super::Manifest>, K8sError> {
        Ok(vec![self.deployment()?.into(), self.service()?.into()])
    }
}

/// The default size of each pool replica's cache volume.
pub const DEFAULT_POOL_CACHE_SIZE: &str = "50Gi";

/// A pool of rootless `buildkitd`s for the builder pool's sticky routing: a [`StatefulSet`] of
/// `replicas` daemons (started in parallel, each with its own cache on a volume from
/// `volumeClaimTemplates` that survives restarts and rescheduling) and a headless [`Service`]
/// (`clusterIP: None`) of the same name that publishes ready pods only.
///
/// Each replica has a stable DNS name, `<name>-<i>.<name>.<namespace>.svc[.cluster.local]`, and
/// the Service name resolves to the addresses of the ready replicas. Clients give the pool as
/// [`address`](Self::address) (`dns+tcp://<name>.<namespace>.svc:1234`): the builder pool
/// learns the members from DNS, routes each project to the same replica while it exists, and
/// verifies each replica's certificate against the replica's DNS name.
///
/// **Certificates.** Every replica mounts the same Secret (`ca.pem`, `cert.pem`, `key.pem`), so
/// the server certificate must cover every replica's name: give it the wildcard SANs of
/// [`certificate_dns_names`](Self::certificate_dns_names) (`*.<name>.<namespace>.svc` and
/// `*.<name>.<namespace>.svc.cluster.local`, plus the Service's own names), e.g. with
/// upstream's `create-certs.sh` or `mkcert` given those names, or a cert-manager
/// `Certificate` with them in `dnsNames`. A wildcard covers exactly one label, which is the
/// replica's pod name.
///
/// ```
/// use cicd_agents_k8s::buildkit::BuildkitPool;
///
/// let pool = BuildkitPool::new("buildkitd-pool").namespace("ci").replicas(3).cache_size("100Gi");
/// let manifests = pool.manifests()?;
/// assert_eq!(manifests.len(), 2);
/// assert_eq!(pool.address(), "dns+tcp://buildkitd-pool.ci.svc:1234");
/// assert_eq!(pool.member_addresses()[2], "tcp://buildkitd-pool-2.buildkitd-pool.ci.svc:1234");
/// assert!(pool.certificate_dns_names().contains(&"*.buildkitd-pool.ci.svc".to_string()));
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BuildkitPool {
    daemon: BuildkitDaemon,
    cache_size: String,
    storage_class: Option<String>,
}

impl BuildkitPool {
    /// Three replicas named `name-0…2`, a Service `name`, TLS material from the Secret
    /// `buildkit-daemon-certs`, port 1234, a [`DEFAULT_POOL_CACHE_SIZE`] cache volume each.
    pub fn new(name: impl Into<String>) -> Self {
        BuildkitPool {
            daemon: BuildkitDaemon::new(name).replicas(3),
            cache_size: DEFAULT_POOL_CACHE_SIZE.into(),
            storage_class: None,
        }
    }

    /// The namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.daemon = self.daemon.namespace(namespace);
        self
    }

    /// How many daemons (default 3).
    pub fn replicas(mut self, replicas: i32) -> Self {
        self.daemon = self.daemon.replicas(replicas);
        self
    }

    /// The rootless BuildKit image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.daemon = self.daemon.image(image);
        self
    }

    /// The TCP port (default 1234).
    pub fn port(mut self, port: i32) -> Self {
        self.daemon = self.daemon.port(port);
        self
    }

    /// The Secret with `ca.pem`, `cert.pem` and `key.pem` (default `buildkit-daemon-certs`);
    /// see the type's documentation for the names the certificate must carry.
    pub fn tls_secret(mut self, secret: impl Into<String>) -> Self {
        self.daemon = self.daemon.tls_secret(secret);
        self
    }

    /// Registry credentials the daemons themselves use.
    pub fn registry_secret(mut self, secret: Option<String>) -> Self {
        self.daemon = self.daemon.registry_secret(secret);
        self
    }

    /// What the daemon containers may do (see [`BuilderSecurity`]).
    pub fn security(mut self, security: BuilderSecurity) -> Self {
        self.daemon = self.daemon.security(security);
        self
    }

    /// Add `CAP_SYS_ADMIN` (off by default).
    pub fn sys_admin(mut self, sys_admin: bool) -> Self {
        self.daemon = self.daemon.sys_admin(sys_admin);
        self
    }

    /// CPU and memory requests and limits of each daemon.
    pub fn resources(mut self, resources: ResourceRequirements) -> Self {
        self.daemon = self.daemon.resources(resources);
        self
    }

    /// An extra label on every object.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.daemon = self.daemon.label(key, value);
        self
    }

    /// The size of each replica's cache volume (a Kubernetes quantity, default
    /// [`DEFAULT_POOL_CACHE_SIZE`]).
    pub fn cache_size(mut self, size: impl Into<String>) -> Self {
        self.cache_size = size.into();
        self
    }

    /// The storage class of the cache volumes (otherwise the cluster's default).
    pub fn storage_class(mut self, class: Option<String>) -> Self {
        self.storage_class = class;
        self
    }

    fn service_host(&self) -> String {
        match &self.daemon.namespace {
            Some(namespace) => format!("{}.{namespace}.svc", self.daemon.name),
            None => self.daemon.name.clone(),
        }
    }

    /// The pool's address for the builder pool: `dns+tcp://<name>.<namespace>.svc:<port>`.
    pub fn address(&self) -> String {
        format!("dns+tcp://{}:{}", self.service_host(), self.daemon.port)
    }

    /// Each replica's own address, `tcp://<name>-<i>.<name>.<namespace>.svc:<port>`.
    pub fn member_addresses(&self) -> Vec<String> {
        let host = self.service_host();
        (0..self.daemon.replicas.max(0))
            .map(|i| format!("tcp://{}-{i}.{host}:{}", self.daemon.name, self.daemon.port))
            .collect()
    }

    /// The DNS names the daemons' server certificate must carry (as SANs) so that every
    /// replica's name, and the Service's, verify: wildcards for the replicas, in the short
    /// and the `cluster.local` form.
    pub fn certificate_dns_names(&self) -> Vec<String> {
        let host = self.service_host();
        let mut names = vec![format!("*.{host}"), host.clone()];
        if self.daemon.namespace.is_some() {
            names.push(format!("*.{host}.cluster.local"));
            names.push(format!("{host}.cluster.local"));
        }
        names
    }

    fn validate(&self) -> Result<(), K8sError> {
        self.daemon.validate()?;
        // `<name>-<i>` is each pod's name and DNS label: it must stay a label.
        let longest = format!("{}-{}", self.daemon.name, self.daemon.replicas - 1);
        validate_dns_label("name", &longest)?;
        validate_size("cache size", &self.cache_size)?;
        if let Some(class) = &self.storage_class {
            validate_dns_subdomain("storage class", class)?;
        }
        Ok(())
    }

    /// The StatefulSet.
    pub fn statefulset(&self) -> Result<StatefulSet, K8sError> {
        self.validate()?;
        let daemon = &self.daemon;
        let labels = labels(&daemon.name, "buildkitd", &daemon.labels);
        Ok(StatefulSet {
            metadata: metadata(&daemon.name, daemon.namespace.as_deref(), labels.clone()),
            spec: Some(StatefulSetSpec {
                replicas: Some(daemon.replicas),
                service_name: Some(daemon.name.clone()),
                pod_management_policy: Some("Parallel".into()),
                selector: LabelSelector {
                    match_labels: Some(daemon.selector()),
                    match_expressions: None,
                },
                template: daemon.pod_template(labels.clone(), true),
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(STATE_VOLUME.into()),
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".into()]),
                        storage_class_name: self.storage_class.clone(),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([(
                                "storage".to_string(),
                                Quantity(self.cache_size.clone()),
                            )])),
                            ..VolumeResourceRequirements::default()
                        }),
                        ..PersistentVolumeClaimSpec::default()
                    }),
                    status: None,
                }]),
                ..StatefulSetSpec::default()
            }),
            status: None,
        })
    }

    /// The headless Service: no cluster IP, one DNS record per *ready* replica.
    pub fn service(&self) -> Result<Service, K8sError> {
        self.validate()?;
        let mut service = self.daemon.service()?;
        if let Some(spec) = service.spec.as_mut() {
            spec.cluster_ip = Some("None".into());
            spec.publish_not_ready_addresses = Some(false);
        }
        Ok(service)
    }

    /// The Service and the StatefulSet, in the order to apply them (the StatefulSet names
    /// its governing Service).
    pub fn manifests(&self) -> Result<Vec<super::Manifest>, K8sError> {
        Ok(vec![self.service()?.into(), self.statefulset()?.into()])
    }
}
