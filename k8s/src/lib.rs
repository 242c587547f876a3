//! Running builds at scale on Kubernetes: typed manifests, and a Job launcher (feature `launch`).
//!
//! This crate stands on its own (no BuildKit client, no git); `cicd-agents-pipeline` re-exports it
//! as `cicd_agents_pipeline::k8s` with its features `k8s` and `k8s-launch`.
//!
//! The library does not replace Kubernetes, Argo Workflows or the CI systems' runners: it
//! generates what they run, typed, from [`k8s_openapi`] types (and serde types of our own for
//! Argo's CRDs), and renders them as YAML that `kubectl apply -f -` takes.
//!
//! [`buildkit::BuildStepOptions`] holds the build step's options shared by the build Job and the
//! WorkflowTemplate (and filled by the command line and Python).
//!
//! | builder | output |
//! |---|---|
//! | [`buildkit::BuildJob`] | a one-shot rootless BuildKit build `Job` (git context, push, registry cache) |
//! | [`buildkit::BuildkitDaemon`] | a long-running rootless `buildkitd` `Deployment` + `Service` with mTLS |
//! | [`argo::BuildAndUpdateChart`] | an Argo `WorkflowTemplate`: build, then `cicd-agents chart set-image` |
//! | [`runners::RunnerJob`] | an ephemeral GitHub Actions (JIT) or CircleCI (machine runner 3, single task) runner `Job` with a rootless BuildKit or Buildah sidecar |
//!
//! With the `launch` feature, `launch::JobLauncher` creates a Job, follows it to success *or*
//! failure, streams its pods' logs and deletes it (background propagation).
//!
//! Security defaults, everywhere: builders run as UID/GID 1000 with seccomp and AppArmor
//! `Unconfined` (what rootless BuildKit and Buildah need for user namespaces and mounts), never
//! privileged, `SYS_ADMIN` only when asked for; every other container runs non-root with no
//! capabilities, no privilege escalation and the runtime's default seccomp profile; no Docker
//! socket and no `hostPath`; registry credentials come from a `kubernetes.io/dockerconfigjson`
//! Secret mounted as `config.json`, tokens from Secrets through `secretKeyRef`; parameters reach
//! containers as environment variables, never as shell text. See [`BuilderSecurity`] for the one
//! deliberate exception (`allowPrivilegeEscalation` on the builder, needed by `newuidmap`).
//!
//! ```
//! use cicd_agents_k8s::{buildkit::BuildkitDaemon, buildkit::BuildJob, render_yaml, parse_yaml};
//!
//! let mut manifests = BuildkitDaemon::new("buildkitd").namespace("ci").manifests()?;
//! manifests.push(
//!     BuildJob::new("build-app", "https://github.com/org/app.git", "docker.io/org/app")
//!         .namespace("ci")
//!         .tag("1.4.2")
//!         .build()?
//!         .into(),
//! );
//! let yaml = render_yaml(&manifests)?;      // kubectl apply -f -
//! assert_eq!(parse_yaml(&yaml)?, manifests); // and back
//! # Ok::<(), cicd_agents_k8s::K8sError>(())
//! ```

pub mod argo;
pub mod buildkit;
mod common;
mod error;
mod job;
#[cfg(feature = "launch")]
pub mod launch;
pub mod names;
pub mod quantity;
mod render;
pub mod runners;
mod yaml;

pub use buildkit::{BuildEngine, DEFAULT_KANIKO_IMAGE};
pub use common::{
    BuilderSecurity, SecretKeyRef, BUILDKIT_DOCKER_CONFIG_DIR, BUILDKIT_STATE_DIR, BUILDKIT_UID,
    DEFAULT_BUILDKIT_IMAGE, DEFAULT_REGISTRY_SECRET, NO_PROCESS_SANDBOX,
};
pub use error::K8sError;
pub use render::{parse_yaml, render_yaml, Manifest};

/// The Kubernetes API types the builders return, re-exported so that users need not pin the
/// same `k8s-openapi` version and feature themselves.
pub use k8s_openapi;
