//! The build step shared by the build Job and the WorkflowTemplate: its options
//! ([`BuildStepOptions`] and their setters), the engine that runs it ([`BuildEngine`]), the
//! fixed script ([`BUILD_SCRIPT`]) and the one renderer of its container ([`BuildContainer`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSecurityContext, ResourceRequirements, Volume, VolumeMount,
};

use super::{DEFAULT_KANIKO_IMAGE, DOCKER_CONFIG_VOLUME, STATE_VOLUME};
use crate::common::{
    builder_security_context, docker_config_volume, empty_dir, env, env_from_secret, git_url_host,
    mount, pod_security_context, validate_dns_label, validate_dns_subdomain, validate_image,
    validate_labels, validate_repo_path, BuilderSecurity, SecretKeyRef, BUILDKIT_DOCKER_CONFIG_DIR,
    BUILDKIT_STATE_DIR, BUILDKIT_UID, DEFAULT_BUILDKIT_IMAGE, DEFAULT_REGISTRY_SECRET,
    NO_PROCESS_SANDBOX,
};
use crate::error::K8sError;

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
/// `build` step ([`BuildAndUpdateChart`](crate::argo::BuildAndUpdateChart)) both get their
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

/// Which builder runs a build step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BuildEngine {
    /// Rootless BuildKit (`buildctl-daemonless.sh`), UID 1000, no capabilities (the default).
    #[default]
    Buildkit,
    /// Kaniko's executor: no daemon, no shell, runs as root in its container with a few
    /// capabilities ([`KANIKO_CAPABILITIES`](super::KANIKO_CAPABILITIES)); builds the git context `git://host/path#ref`.
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

/// The options of a rootless BuildKit build step, one struct shared by [`BuildJob`](super::BuildJob) and
/// [`BuildAndUpdateChart`](crate::argo::BuildAndUpdateChart) (`options()` sets all of them at
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
/// [`BuildAndUpdateChart`](crate::argo::BuildAndUpdateChart): each changes one field of
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
}
