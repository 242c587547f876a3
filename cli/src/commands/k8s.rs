//! `cicd-agents k8s`: Kubernetes manifests for builds at scale, and launching a build Job.
//!
//! * `k8s render job|deployment|pool|workflow-template|github-runner|circleci-runner` prints
//!   manifests for `kubectl apply -f -`.
//! * `k8s run` creates a build Job (from the same options as `render job`, or from a YAML
//!   file), streams its logs, waits for success or failure, and deletes it.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cicd_agents_pipeline::k8s::argo::{BuildAndUpdateChart, ChartUpdate};
use cicd_agents_pipeline::k8s::buildkit::{
    BuildEngine, BuildJob, BuildStepOptions, BuildkitDaemon, BuildkitDaemonOptions, BuildkitPool,
    DEFAULT_DAEMON_PORT, DEFAULT_POOL_CACHE_SIZE, DEFAULT_TLS_SECRET,
};
use cicd_agents_pipeline::k8s::launch::{
    Cleanup, CleanupReport, JobLauncher, JobResult, LaunchOptions,
};
use cicd_agents_pipeline::k8s::runners::{Builder, RunnerJob};
use cicd_agents_pipeline::k8s::{
    parse_yaml, render_yaml, BuilderSecurity, K8sError, Manifest, SecretKeyRef,
    DEFAULT_REGISTRY_SECRET,
};
use clap::{Args, Subcommand, ValueEnum};

/// `cicd-agents k8s …`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(subcommand)]
    command: K8sCommand,
}

#[derive(Debug, Subcommand)]
enum K8sCommand {
    /// Print manifests as YAML (for `kubectl apply -f -`).
    #[command(subcommand)]
    Render(RenderCommand),
    /// Create a build Job, stream its logs, wait for success or failure, delete it.
    Run(Box<RunArgs>),
}

#[derive(Debug, Subcommand)]
enum RenderCommand {
    /// A one-shot rootless BuildKit build Job (git context, push, registry cache).
    Job(Box<JobArgs>),
    /// A long-running rootless buildkitd Deployment + Service with mutual TLS.
    Deployment(Box<DeploymentArgs>),
    /// A pool of rootless buildkitd replicas for `build --pool`: a StatefulSet (one cache
    /// volume each) + a headless Service, mutual TLS. Clients use
    /// `--pool dns+tcp://NAME.NAMESPACE.svc:PORT`; the server certificate needs the SANs
    /// `*.NAME.NAMESPACE.svc` and `*.NAME.NAMESPACE.svc.cluster.local`.
    Pool(Box<PoolArgs>),
    /// An Argo WorkflowTemplate: build, then `cicd-agents chart set-image`.
    WorkflowTemplate(Box<WorkflowArgs>),
    /// An ephemeral GitHub Actions runner Job (JIT config) with a rootless builder sidecar.
    GithubRunner(Box<GithubRunnerArgs>),
    /// An ephemeral CircleCI machine runner 3 Job (single task) with a rootless builder sidecar.
    CircleciRunner(Box<CircleciRunnerArgs>),
}

/// What every builder container may do.
#[derive(Debug, Args)]
struct SecurityArgs {
    /// Add CAP_SYS_ADMIN to the builder (off by default; only for nodes whose AppArmor
    /// restricts unprivileged user namespaces).
    #[arg(long = "sys-admin")]
    sys_admin: bool,
    /// Set allowPrivilegeEscalation: false on the builder too (breaks rootlesskit's
    /// newuidmap unless the builder runs without a sub-UID mapping).
    #[arg(long = "no-privilege-escalation")]
    no_privilege_escalation: bool,
}

impl SecurityArgs {
    fn security(&self) -> BuilderSecurity {
        BuilderSecurity {
            sys_admin: self.sys_admin,
            allow_privilege_escalation: !self.no_privilege_escalation,
        }
    }
}

/// The builder of a build step (`--builder`).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StepBuilder {
    Buildkit,
    Kaniko,
}

/// The build step's options, shared by `render job`, `render workflow-template` and `run`:
/// they fill the library's one [`BuildStepOptions`].
#[derive(Debug, Args)]
struct BuildStepArgs {
    /// Sub-directory of the repository to use as the context.
    #[arg(long = "context-subdir")]
    context_subdir: Option<String>,
    /// Registry cache ref for --export-cache/--import-cache (mode=max).
    #[arg(long = "cache-ref")]
    cache_ref: Option<String>,
    /// The cache registry speaks plain HTTP.
    #[arg(long = "insecure-cache")]
    insecure_cache: bool,
    /// The image registry speaks plain HTTP (the push gets registry.insecure=true).
    #[arg(long = "insecure-registry")]
    insecure_registry: bool,
    /// dockerconfigjson Secret with push credentials.
    #[arg(long = "registry-secret", default_value = DEFAULT_REGISTRY_SECRET)]
    registry_secret: String,
    /// Push anonymously (no registry Secret).
    #[arg(long = "no-registry-secret", conflicts_with = "registry_secret")]
    no_registry_secret: bool,
    /// Secret key (NAME:KEY) with a token for a private git repository (offered to the git
    /// URL's host only).
    #[arg(long = "git-token-secret", value_name = "NAME:KEY")]
    git_token_secret: Option<String>,
    /// Rootless BuildKit image.
    #[arg(long = "buildkit-image")]
    buildkit_image: Option<String>,
    /// Which builder runs the build step: buildkit (rootless, default) or kaniko (runs as
    /// root in its container, no daemon, no shell).
    #[arg(long = "builder", value_enum, default_value_t = StepBuilder::Buildkit)]
    builder: StepBuilder,
    /// Kaniko executor image (with --builder kaniko).
    #[arg(long = "kaniko-image")]
    kaniko_image: Option<String>,
    /// Service account of the pods.
    #[arg(long = "service-account")]
    service_account: Option<String>,
    #[command(flatten)]
    security: SecurityArgs,
}

impl BuildStepArgs {
    fn options(&self, namespace: Option<&String>) -> anyhow::Result<BuildStepOptions> {
        let defaults = BuildStepOptions::default();
        Ok(BuildStepOptions {
            namespace: namespace.cloned(),
            context_subdir: self.context_subdir.clone(),
            cache_ref: self.cache_ref.clone(),
            insecure_cache_registry: self.insecure_cache,
            insecure_registry: self.insecure_registry,
            registry_secret: (!self.no_registry_secret).then(|| self.registry_secret.clone()),
            git_token: self
                .git_token_secret
                .as_deref()
                .map(|text| secret_ref("--git-token-secret", text))
                .transpose()?,
            buildkit_image: self
                .buildkit_image
                .clone()
                .unwrap_or(defaults.buildkit_image),
            engine: match self.builder {
                StepBuilder::Buildkit => BuildEngine::Buildkit,
                StepBuilder::Kaniko => BuildEngine::Kaniko,
            },
            kaniko_image: self.kaniko_image.clone().unwrap_or(defaults.kaniko_image),
            security: self.security.security(),
            resources: None,
            service_account: self.service_account.clone(),
            labels: defaults.labels,
        })
    }
}

#[derive(Debug, Args)]
struct JobArgs {
    /// Job name (with --generate-name: the prefix).
    #[arg(long, default_value = "build")]
    name: String,
    /// Let the API server append a random suffix (metadata.generateName).
    #[arg(long = "generate-name")]
    generate_name: bool,
    /// Namespace.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Git repository (HTTPS) to build.
    #[arg(long = "git-url")]
    git_url: String,
    /// Branch, tag or commit.
    #[arg(long = "git-ref", default_value = "refs/heads/main")]
    git_ref: String,
    /// Dockerfile, relative to the context.
    #[arg(long, default_value = "Dockerfile")]
    dockerfile: String,
    /// Image repository to push (without tag).
    #[arg(long)]
    image: String,
    /// Image tag.
    #[arg(long, default_value = "latest")]
    tag: String,
    /// Build without pushing.
    #[arg(long = "no-push")]
    no_push: bool,
    #[command(flatten)]
    step: BuildStepArgs,
    /// Seconds a finished Job is kept.
    #[arg(long, default_value_t = 3600)]
    ttl: i32,
    /// Seconds the Job may run.
    #[arg(long, default_value_t = 3600)]
    deadline: i64,
}

impl JobArgs {
    fn build(&self) -> anyhow::Result<BuildJob> {
        Ok(BuildJob::new(&self.name, &self.git_url, &self.image)
            .options(self.step.options(self.namespace.as_ref())?)
            .generate_name(self.generate_name)
            .git_ref(&self.git_ref)
            .dockerfile(&self.dockerfile)
            .tag(&self.tag)
            .push(!self.no_push)
            .ttl_seconds_after_finished(self.ttl)
            .active_deadline_seconds(self.deadline))
    }
}

#[derive(Debug, Args)]
struct DeploymentArgs {
    /// Deployment and Service name.
    #[arg(long, default_value = "buildkitd")]
    name: String,
    /// Number of daemons.
    #[arg(long, default_value_t = 1)]
    replicas: i32,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Debug, Args)]
struct PoolArgs {
    /// StatefulSet and headless Service name (replicas are NAME-0, NAME-1, …).
    #[arg(long, default_value = "buildkitd-pool")]
    name: String,
    /// Number of daemons.
    #[arg(long, default_value_t = 3)]
    replicas: i32,
    /// Size of each replica's cache volume (a Kubernetes quantity).
    #[arg(long = "cache-size", default_value = DEFAULT_POOL_CACHE_SIZE)]
    cache_size: String,
    /// Storage class of the cache volumes (otherwise the cluster's default).
    #[arg(long = "storage-class")]
    storage_class: Option<String>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// The options of `render deployment` and `render pool` but their names and replica counts.
#[derive(Debug, Args)]
struct DaemonArgs {
    /// Namespace.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// TCP port.
    #[arg(long, default_value_t = DEFAULT_DAEMON_PORT)]
    port: i32,
    /// Secret with ca.pem, cert.pem and key.pem (for a pool, one server certificate for every
    /// replica: give it the wildcard SANs above).
    #[arg(long = "tls-secret", default_value = DEFAULT_TLS_SECRET)]
    tls_secret: String,
    /// dockerconfigjson Secret the daemons themselves use (cache export, private base images).
    #[arg(long = "registry-secret")]
    registry_secret: Option<String>,
    /// Rootless BuildKit image.
    #[arg(long)]
    image: Option<String>,
    #[command(flatten)]
    security: SecurityArgs,
}

impl DaemonArgs {
    fn options(&self, replicas: i32) -> BuildkitDaemonOptions {
        let defaults = BuildkitDaemonOptions::default();
        BuildkitDaemonOptions {
            namespace: self.namespace.clone(),
            replicas,
            image: self.image.clone().unwrap_or(defaults.image),
            port: self.port,
            tls_secret: self.tls_secret.clone(),
            registry_secret: self.registry_secret.clone(),
            security: self.security.security(),
            ..defaults
        }
    }
}

#[derive(Debug, Args)]
struct WorkflowArgs {
    /// WorkflowTemplate name.
    #[arg(long, default_value = "build-and-deploy")]
    name: String,
    /// Namespace.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Git repository (HTTPS) to build.
    #[arg(long = "git-url")]
    git_url: String,
    /// Image repository to push (without tag).
    #[arg(long)]
    image: String,
    /// Chart repository (HTTPS).
    #[arg(long = "chart-repo")]
    chart_repo: String,
    /// Chart repository branch.
    #[arg(long = "chart-branch", default_value = "main")]
    chart_branch: String,
    /// Values file inside the chart repository.
    #[arg(long = "chart-file")]
    chart_file: String,
    /// Key path of the image tag.
    #[arg(long = "chart-key", default_value = "image.tag")]
    chart_key: String,
    /// Image with the cicd-agents binary and git that runs the update-chart step as UID 65532
    /// (build it from images/tool/Dockerfile).
    #[arg(long = "tool-image")]
    tool_image: String,
    /// Default of the image-tag parameter.
    #[arg(long = "default-tag", default_value = "latest")]
    default_tag: String,
    /// Default of the git-ref parameter.
    #[arg(long = "default-git-ref", default_value = "refs/heads/main")]
    default_git_ref: String,
    /// Default of the dockerfile parameter.
    #[arg(long = "default-dockerfile", default_value = "Dockerfile")]
    default_dockerfile: String,
    /// Secret key (NAME:KEY) with the chart repository token.
    #[arg(
        long = "github-token-secret",
        value_name = "NAME:KEY",
        default_value = "github-token:token"
    )]
    github_token_secret: String,
    #[command(flatten)]
    step: BuildStepArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BuilderArg {
    /// Rootless buildkitd on tcp://127.0.0.1:1234 inside the pod.
    Buildkit,
    /// Rootless Buildah (chroot isolation), building on request.
    Buildah,
}

#[derive(Debug, Args)]
struct RunnerArgs {
    /// Namespace.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Let the API server append a random suffix (metadata.generateName).
    #[arg(long = "generate-name")]
    generate_name: bool,
    /// The builder next to the runner.
    #[arg(long, value_enum, default_value = "buildkit")]
    builder: BuilderArg,
    /// Builder image.
    #[arg(long = "builder-image")]
    builder_image: Option<String>,
    /// Runner image.
    #[arg(long = "runner-image")]
    runner_image: Option<String>,
    /// Runner UID (non-root).
    #[arg(long = "runner-uid")]
    runner_uid: Option<i64>,
    /// Buildah storage driver (vfs or overlay).
    #[arg(long = "storage-driver", default_value = "vfs")]
    storage_driver: String,
    /// dockerconfigjson Secret for pushes.
    #[arg(long = "registry-secret", default_value = "regcred")]
    registry_secret: String,
    /// Workspace volume size.
    #[arg(long = "workspace-size", default_value = "10Gi")]
    workspace_size: String,
    /// Workspace storage class.
    #[arg(long = "storage-class")]
    storage_class: Option<String>,
    /// Seconds a finished Job is kept.
    #[arg(long, default_value_t = 600)]
    ttl: i32,
    /// Seconds the Job may run.
    #[arg(long, default_value_t = 21600)]
    deadline: i64,
    #[command(flatten)]
    security: SecurityArgs,
}

impl RunnerArgs {
    fn apply(&self, mut job: RunnerJob) -> RunnerJob {
        job = job
            .generate_name(self.generate_name)
            .builder(match self.builder {
                BuilderArg::Buildkit => Builder::Buildkit,
                BuilderArg::Buildah => Builder::Buildah,
            })
            .storage_driver(&self.storage_driver)
            .registry_secret(Some(self.registry_secret.clone()))
            .workspace_size(&self.workspace_size)
            .ttl_seconds_after_finished(self.ttl)
            .active_deadline_seconds(self.deadline)
            .security(self.security.security());
        if let Some(namespace) = &self.namespace {
            job = job.namespace(namespace);
        }
        if let Some(image) = &self.builder_image {
            job = job.builder_image(image);
        }
        if let Some(image) = &self.runner_image {
            job = job.runner_image(image);
        }
        if let Some(uid) = self.runner_uid {
            job = job.runner_uid(uid);
        }
        if let Some(class) = &self.storage_class {
            job = job.storage_class(class);
        }
        job
    }
}

#[derive(Debug, Args)]
struct GithubRunnerArgs {
    /// Job name (with --generate-name: the prefix).
    #[arg(long, default_value = "gha-runner")]
    name: String,
    /// Secret key (NAME:KEY) holding the runner's encoded JIT config.
    #[arg(long = "jit-config-secret", value_name = "NAME:KEY")]
    jit_config_secret: String,
    #[command(flatten)]
    runner: RunnerArgs,
}

#[derive(Debug, Args)]
struct CircleciRunnerArgs {
    /// Job name (with --generate-name: the prefix).
    #[arg(long, default_value = "circleci-runner")]
    name: String,
    /// Secret key (NAME:KEY) holding the resource class token.
    #[arg(long = "token-secret", value_name = "NAME:KEY")]
    token_secret: String,
    #[command(flatten)]
    runner: RunnerArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CleanupArg {
    /// Delete the Job whatever happened.
    Always,
    /// Keep a failed Job for inspection.
    OnSuccess,
    /// Never delete it (its TTL still applies).
    Never,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A Job manifest to create (`-` for stdin) instead of building one from the options.
    #[arg(long = "file", short = 'f', conflicts_with_all = ["git_url", "image"])]
    file: Option<PathBuf>,
    /// How long the Job may take (e.g. 90s, 30m, 2h).
    #[arg(long, default_value = "1h", value_parser = crate::duration::parse_positive_duration)]
    timeout: Duration,
    /// When to delete the Job.
    #[arg(long, value_enum, default_value = "always")]
    cleanup: CleanupArg,
    /// Do not stream the containers' logs.
    #[arg(long = "no-logs")]
    no_logs: bool,
    /// Namespace, unless the Job names one (default: the kubeconfig context's).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Job options, as for `render job` (ignored with --file).
    #[arg(long = "git-url")]
    git_url: Option<String>,
    /// Image repository to push (without tag).
    #[arg(long)]
    image: Option<String>,
    /// Image tag.
    #[arg(long, default_value = "latest")]
    tag: String,
    /// Branch, tag or commit.
    #[arg(long = "git-ref", default_value = "refs/heads/main")]
    git_ref: String,
    /// Dockerfile, relative to the context.
    #[arg(long, default_value = "Dockerfile")]
    dockerfile: String,
    /// Job name prefix (a random suffix is appended).
    #[arg(long, default_value = "build")]
    name: String,
    /// Build step options, as for `render job` (ignored with --file).
    #[command(flatten)]
    step: BuildStepArgs,
}

/// Runs `cicd-agents k8s …`.
pub async fn run(args: K8sArgs) -> anyhow::Result<ExitCode> {
    run_command(args).await.map_err(in_flag_words)
}

/// A value the manifest builders refused, said in command-line words: the builders name
/// their options (`git url`), the command line its flags (`--git-url`).
fn in_flag_words(err: anyhow::Error) -> anyhow::Error {
    match err.downcast::<K8sError>() {
        Ok(K8sError::InvalidOption { option, reason }) => crate::exit::usage(format!(
            "invalid --{}: {reason}",
            option.replace([' ', '_'], "-")
        )),
        Ok(other) => other.into(),
        Err(err) => err,
    }
}

async fn run_command(args: K8sArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        K8sCommand::Render(command) => {
            let manifests = render(command)?;
            print!("{}", render_yaml(&manifests)?);
            Ok(ExitCode::SUCCESS)
        }
        K8sCommand::Run(args) => launch(*args).await,
    }
}

/// The command-line flag for a builder option the library names (`git url` → `--git-url`).
fn option_flag(option: &str) -> String {
    match option {
        "timing" => "--ttl/--deadline".to_string(),
        "runner token secret" => "--token-secret".to_string(),
        "label" => "label".to_string(),
        other => format!("--{}", other.to_ascii_lowercase().replace(' ', "-")),
    }
}

/// A library error in the command line's words: refused values are bad usage (exit code 2)
/// and name the flag.
fn k8s_error(err: K8sError) -> anyhow::Error {
    match err {
        K8sError::InvalidOption { option, reason } => {
            crate::exit::usage(format!("invalid {}: {reason}", option_flag(&option)))
        }
        err if err.is_invalid_input() => crate::exit::usage(err.to_string()),
        err => err.into(),
    }
}

fn secret_ref(flag: &str, text: &str) -> anyhow::Result<SecretKeyRef> {
    match text.split_once(':') {
        Some((name, key)) if !name.is_empty() && !key.is_empty() => {
            Ok(SecretKeyRef::new(name, key))
        }
        _ => Err(crate::exit::usage(format!(
            "{flag}: write the Secret as NAME:KEY, e.g. github-token:token (got {text:?})"
        ))),
    }
}

fn render(command: RenderCommand) -> anyhow::Result<Vec<Manifest>> {
    Ok(match command {
        RenderCommand::Job(args) => vec![args.build()?.build().map_err(k8s_error)?.into()],
        RenderCommand::Deployment(args) => BuildkitDaemon::new(&args.name)
            .options(args.daemon.options(args.replicas))
            .manifests()
            .map_err(k8s_error)?,
        RenderCommand::Pool(args) => BuildkitPool::new(&args.name)
            .options(args.daemon.options(args.replicas))
            .cache_size(&args.cache_size)
            .storage_class(args.storage_class.clone())
            .manifests()
            .map_err(k8s_error)?,
        RenderCommand::WorkflowTemplate(args) => {
            let chart = ChartUpdate {
                repo: args.chart_repo.clone(),
                branch: args.chart_branch.clone(),
                file: args.chart_file.clone(),
                key: args.chart_key.clone(),
                tool_image: args.tool_image.clone(),
            };
            let template = BuildAndUpdateChart::new(&args.name, &args.git_url, &args.image, chart)
                .options(args.step.options(args.namespace.as_ref())?)
                .default_tag(&args.default_tag)
                .default_git_ref(&args.default_git_ref)
                .default_dockerfile(&args.default_dockerfile)
                .github_token(secret_ref(
                    "--github-token-secret",
                    &args.github_token_secret,
                )?);
            vec![template.build().map_err(k8s_error)?.into()]
        }
        RenderCommand::GithubRunner(args) => {
            let job = RunnerJob::github(
                &args.name,
                secret_ref("--jit-config-secret", &args.jit_config_secret)?,
            );
            vec![args.runner.apply(job).build().map_err(k8s_error)?.into()]
        }
        RenderCommand::CircleciRunner(args) => {
            let job = RunnerJob::circleci(
                &args.name,
                secret_ref("--token-secret", &args.token_secret)?,
            );
            vec![args.runner.apply(job).build().map_err(k8s_error)?.into()]
        }
    })
}

fn read_job(
    path: &PathBuf,
) -> anyhow::Result<cicd_agents_pipeline::k8s::k8s_openapi::api::batch::v1::Job> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the Job from stdin")?;
        text
    } else {
        match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                ) =>
            {
                return Err(crate::exit::usage(format!(
                    "--file {}: {err}",
                    path.display()
                )));
            }
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        }
    };
    let mut jobs = parse_yaml(&text)
        .map_err(k8s_error)
        .with_context(|| path.display().to_string())?
        .into_iter()
        .filter_map(|manifest| match manifest {
            Manifest::Job(job) => Some(job),
            _ => None,
        });
    let Some(job) = jobs.next() else {
        return Err(crate::exit::usage(format!(
            "{}: no batch/v1 Job in the file",
            path.display()
        )));
    };
    if jobs.next().is_some() {
        return Err(crate::exit::usage(format!(
            "{}: more than one Job; `k8s run` launches one",
            path.display()
        )));
    }
    Ok(job)
}

async fn launch(args: RunArgs) -> anyhow::Result<ExitCode> {
    let job = match &args.file {
        Some(path) => read_job(path)?,
        None => {
            let (Some(git_url), Some(image)) = (&args.git_url, &args.image) else {
                return Err(crate::exit::usage(
                    "give --file, or --git-url and --image to build a Job",
                ));
            };
            let job = BuildJob::new(&args.name, git_url, image)
                .options(args.step.options(args.namespace.as_ref())?)
                .generate_name(true)
                .git_ref(&args.git_ref)
                .dockerfile(&args.dockerfile)
                .tag(&args.tag);
            job.build().map_err(k8s_error)?
        }
    };
    let mut launcher = JobLauncher::try_default().await?.options(LaunchOptions {
        timeout: args.timeout,
        cleanup: match args.cleanup {
            CleanupArg::Always => Cleanup::Always,
            CleanupArg::OnSuccess => Cleanup::OnSuccess,
            CleanupArg::Never => Cleanup::Never,
        },
        follow_logs: !args.no_logs,
        ..LaunchOptions::default()
    });
    if let Some(namespace) = &args.namespace {
        launcher = launcher.namespace(namespace);
    }
    let cancel = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = launcher
        .run_until(
            &job,
            |line| println!("[{}/{}] {}", line.pod, line.container, line.line),
            cancel,
        )
        .await?;
    let cleanup = match &outcome.cleanup {
        CleanupReport::Deleted => "deleted".to_string(),
        CleanupReport::Kept => "kept".to_string(),
        CleanupReport::Failed(reason) => format!("not deleted: {reason}"),
    };
    match &outcome.result {
        JobResult::Succeeded => {
            eprintln!(
                "Job {}/{} succeeded in {}s ({cleanup})",
                outcome.namespace,
                outcome.name,
                outcome.elapsed.as_secs()
            );
            Ok(ExitCode::SUCCESS)
        }
        JobResult::Failed { reason, message } => {
            eprintln!(
                "Job {}/{} failed: {reason}: {message} ({cleanup})",
                outcome.namespace, outcome.name
            );
            for pod in &outcome.pods {
                eprintln!("  {pod}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs() {
        assert_eq!(
            secret_ref("--x", "github-token:token").ok(),
            Some(SecretKeyRef::new("github-token", "token"))
        );
        assert!(secret_ref("--x", "github-token").is_err());
        assert!(secret_ref("--x", ":token").is_err());
    }
}
