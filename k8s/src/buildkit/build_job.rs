//! The one-shot build [`Job`] ([`BuildJob`]).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PodSpec;

use super::build_step::{build_step_setters, check_build_target, BuildContainer, BuildStepOptions};
use crate::common::{validate_git_ref, validate_repo_path, validate_tag, SecretKeyRef};
use crate::error::K8sError;
use crate::job::JobShape;

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

    fn shape(&self) -> JobShape<'_> {
        JobShape {
            name: &self.name,
            generate_name: self.generate_name,
            namespace: self.step.namespace.as_deref(),
            component: "build",
            labels: &self.step.labels,
            ttl_seconds_after_finished: self.ttl_seconds_after_finished,
            active_deadline_seconds: self.active_deadline_seconds,
            backoff_limit: self.backoff_limit,
        }
    }

    fn validate(&self) -> Result<(), K8sError> {
        self.shape().validate_name()?;
        self.step.validate()?;
        check_build_target(&self.git_url, &self.image)?;
        validate_git_ref("git ref", &self.git_ref)?;
        validate_repo_path("dockerfile", &self.dockerfile)?;
        validate_tag("tag", &self.tag)?;
        self.shape().validate_bounds()
    }

    /// Builds the Job.
    pub fn build(&self) -> Result<Job, K8sError> {
        self.validate()?;
        tracing::debug!(name = %self.name, image = %self.image, tag = %self.tag, "building a BuildKit Job manifest");
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
        self.shape().job(PodSpec {
            service_account_name: self.step.service_account.clone(),
            automount_service_account_token: Some(false),
            security_context: pod.security_context,
            containers: vec![pod.container],
            volumes: Some(pod.volumes),
            ..PodSpec::default()
        })
    }
}
