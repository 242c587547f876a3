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
//!
//! [`Job`]: k8s_openapi::api::batch::v1::Job
//! [`Deployment`]: k8s_openapi::api::apps::v1::Deployment
//! [`Service`]: k8s_openapi::api::core::v1::Service
//! [`StatefulSet`]: k8s_openapi::api::apps::v1::StatefulSet
//! [`BuilderSecurity`]: crate::BuilderSecurity

mod build_job;
mod build_step;
mod daemon;
mod kaniko;
mod pool;

pub use build_job::BuildJob;
pub(crate) use build_step::{build_step_setters, check_build_target, BuildContainer};
pub use build_step::{BuildEngine, BuildStepOptions, BUILD_SCRIPT};
pub use daemon::{BuildkitDaemon, BuildkitDaemonOptions, DEFAULT_DAEMON_PORT, DEFAULT_TLS_SECRET};
pub use kaniko::{DEFAULT_KANIKO_IMAGE, KANIKO_CAPABILITIES, KANIKO_DOCKER_CONFIG_DIR};
pub use pool::{BuildkitPool, DEFAULT_POOL_CACHE_SIZE};

const STATE_VOLUME: &str = "buildkit-state";
const DOCKER_CONFIG_VOLUME: &str = "docker-config";
