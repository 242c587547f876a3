//! Kaniko as the build step's engine ([`BuildEngine::Kaniko`](super::BuildEngine::Kaniko)):
//! its image, its capabilities and its container.

use k8s_openapi::api::core::v1::{Capabilities, Container, SeccompProfile, SecurityContext};

use super::build_step::{BuildContainer, BuildPod};
use super::DOCKER_CONFIG_VOLUME;
use crate::common::{docker_config_volume, env, env_from_secret, mount, validate_image};
use crate::error::K8sError;

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
impl BuildContainer<'_> {
    /// The Kaniko container: `/kaniko/executor` with its arguments as a list (no shell); values
    /// that may be workflow parameters reach it through env and Kubernetes' `$(VAR)`
    /// expansion, each inside one argument. The git token goes to Kaniko as `GIT_PASSWORD`
    /// (Kaniko sends it to the context's host only), never on the command line.
    pub(super) fn render_kaniko(&self) -> Result<BuildPod, K8sError> {
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
