//! Launching a Job and following it to the end (feature `k8s-launch`, kube-rs).
//!
//! [`JobLauncher::run`] creates a Job, watches it until it has **succeeded or failed**
//! ([`job_finished`]: kube-runtime's stock `is_job_completed` only looks at `Complete` and so
//! never returns for a failed Job), streams the logs of its pods' containers as they start
//! (pods found by the `batch.kubernetes.io/job-name` label, or `job-name` on older clusters),
//! and deletes the Job with background propagation so that its pods go too. A timeout or a
//! cancellation also deletes it.
//!
//! ```no_run
//! use cicd_agents_k8s::buildkit::BuildJob;
//! use cicd_agents_k8s::launch::{JobLauncher, JobResult, LaunchOptions};
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let job = BuildJob::new("build-app", "https://github.com/org/app.git", "docker.io/org/app")
//!     .generate_name(true)
//!     .tag("1.4.2")
//!     .build()?;
//! let launcher = JobLauncher::try_default().await?
//!     .options(LaunchOptions { timeout: Duration::from_secs(1800), ..LaunchOptions::default() });
//! let outcome = launcher
//!     .run(&job, |line| println!("[{}/{}] {}", line.pod, line.container, line.line))
//!     .await?;
//! match &outcome.result {
//!     JobResult::Succeeded => println!("built in {:?}", outcome.elapsed),
//!     JobResult::Failed { reason, message } => eprintln!("failed: {reason}: {message}"),
//! }
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kube::runtime::wait::Condition;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// The label the Job controller puts on its pods (Kubernetes ≥ 1.27).
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The same label on older clusters.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// When to delete the Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cleanup {
    /// Always (default): after success, failure, timeout or cancellation.
    #[default]
    Always,
    /// Only after success; a failed Job stays for inspection (its TTL still applies).
    OnSuccess,
    /// Never.
    Never,
}

/// How [`JobLauncher::run`] behaves.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// How long the Job may take, from creation to its final condition (default 1 h).
    pub timeout: Duration,
    /// When to delete the Job (default [`Cleanup::Always`]).
    pub cleanup: Cleanup,
    /// Stream the containers' logs (default yes).
    pub follow_logs: bool,
    /// How often to look for new pods and containers to stream (default 2 s).
    pub pod_poll_interval: Duration,
    /// How long to wait for log streams to end after the Job finished (default 10 s).
    pub log_drain: Duration,
    /// Consecutive watch errors after which the launcher gives up (default 6, with kube's
    /// exponential backoff in between).
    pub max_watch_errors: u32,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            timeout: Duration::from_secs(3600),
            cleanup: Cleanup::Always,
            follow_logs: true,
            pod_poll_interval: Duration::from_secs(2),
            log_drain: Duration::from_secs(10),
            max_watch_errors: 6,
        }
    }
}

/// One line a container printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// The line, without its line break.
    pub line: String,
}

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// Its `Complete` condition is `True`.
    Succeeded,
    /// Its `Failed` condition is `True`.
    Failed {
        /// The condition's reason, e.g. `BackoffLimitExceeded` or `DeadlineExceeded`.
        reason: String,
        /// The condition's message.
        message: String,
    },
}

/// Whether a Job has finished, and how: `Some` once its `Complete` or `Failed` condition is
/// `True` (not on the interim `SuccessCriteriaMet` / `FailureTarget`, while pods may still be
/// terminating).
pub fn job_finished(job: &Job) -> Option<JobResult> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    for condition in conditions {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" => return Some(JobResult::Succeeded),
            "Failed" => {
                return Some(JobResult::Failed {
                    reason: condition.reason.clone().unwrap_or_default(),
                    message: condition.message.clone().unwrap_or_default(),
                })
            }
            _ => {}
        }
    }
    None
}

/// A kube-runtime [`Condition`] that holds once a Job has succeeded **or failed**, for use
/// with `kube::runtime::wait::await_condition`.
pub fn is_job_finished() -> impl Condition<Job> {
    |job: Option<&Job>| job.and_then(job_finished).is_some()
}

/// The state of one container at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerReport {
    /// The container's name.
    pub name: String,
    /// `running`, `waiting: <reason>: <message>` or `exited <code> (<reason>)`.
    pub state: String,
}

/// The state of one pod of the Job at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodReport {
    /// The pod's name.
    pub name: String,
    /// Its phase (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: String,
    /// Its init (sidecar) and regular containers.
    pub containers: Vec<ContainerReport>,
}

impl fmt::Display for PodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.phase)?;
        if !self.containers.is_empty() {
            let states: Vec<String> = self
                .containers
                .iter()
                .map(|c| format!("{}: {}", c.name, c.state))
                .collect();
            write!(f, " [{}]", states.join("; "))?;
        }
        Ok(())
    }
}

/// What happened to the Job after it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanupReport {
    /// Deleted with background propagation.
    Deleted,
    /// Kept, as [`Cleanup`] asked.
    Kept,
    /// The delete call failed (the Job's TTL will still remove it).
    Failed(String),
}

/// What [`JobLauncher::run`] returns when the Job finished.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The Job's name (as the API server assigned it, for `generateName`).
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Succeeded or failed.
    pub result: JobResult,
    /// Its pods at the end.
    pub pods: Vec<PodReport>,
    /// From creation to the final condition.
    pub elapsed: Duration,
    /// Whether it was deleted.
    pub cleanup: CleanupReport,
}

impl JobOutcome {
    /// Whether the Job succeeded.
    pub fn succeeded(&self) -> bool {
        self.result == JobResult::Succeeded
    }
}

/// What can go wrong while launching (a Job that *fails* is an `Ok` [`JobOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// No kubeconfig or in-cluster configuration.
    #[error("no usable Kubernetes configuration (kubeconfig or in-cluster)")]
    Config(#[source] Box<kube::Error>),
    /// The Job has neither `metadata.name` nor `metadata.generateName`.
    #[error("the Job has neither metadata.name nor metadata.generateName")]
    Unnamed,
    /// The API server refused the Job.
    #[error("creating Job {name:?} in namespace {namespace}: {source}")]
    Create {
        /// The namespace.
        namespace: String,
        /// The name or generateName prefix.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Watching the Job failed repeatedly (it was deleted unless [`Cleanup::Never`]).
    #[error("watching Job {namespace}/{name}: {source}")]
    Watch {
        /// The namespace.
        namespace: String,
        /// The Job.
        name: String,
        /// The last watch error.
        #[source]
        source: Box<watcher::Error>,
    },
    /// The Job was deleted before it finished.
    #[error("Job {namespace}/{name} was deleted before it finished")]
    Vanished {
        /// The namespace.
        namespace: String,
        /// The Job.
        name: String,
    },
    /// The Job did not finish in time (it was deleted unless [`Cleanup::Never`]).
    #[error("Job {namespace}/{name} did not finish within {}s{}", timeout.as_secs(), describe_pods(pods))]
    Timeout {
        /// The namespace.
        namespace: String,
        /// The Job.
        name: String,
        /// The timeout.
        timeout: Duration,
        /// Its pods when time ran out.
        pods: Vec<PodReport>,
    },
    /// The caller cancelled (the Job was deleted unless [`Cleanup::Never`]).
    #[error("cancelled; Job {namespace}/{name} {}", if *deleted { "deleted" } else { "left running" })]
    Cancelled {
        /// The namespace.
        namespace: String,
        /// The Job.
        name: String,
        /// Whether it was deleted.
        deleted: bool,
    },
}

impl cicd_agents_types::HasKind for LaunchError {
    /// No configuration or a broken watch is a [`ErrorKind::Connection`](cicd_agents_types::ErrorKind::Connection)
    /// failure; a Job without a name is invalid input; the API server refusing, losing or
    /// timing out the Job is [`ErrorKind::Remote`](cicd_agents_types::ErrorKind::Remote).
    fn kind(&self) -> cicd_agents_types::ErrorKind {
        use cicd_agents_types::ErrorKind;
        match self {
            LaunchError::Config(_) | LaunchError::Watch { .. } => ErrorKind::Connection,
            LaunchError::Unnamed => ErrorKind::InvalidInput,
            LaunchError::Create { .. }
            | LaunchError::Vanished { .. }
            | LaunchError::Timeout { .. } => ErrorKind::Remote,
            LaunchError::Cancelled { .. } => ErrorKind::Cancelled,
        }
    }
}

fn describe_pods(pods: &[PodReport]) -> String {
    if pods.is_empty() {
        "; no pods were created".to_string()
    } else {
        let pods: Vec<String> = pods.iter().map(ToString::to_string).collect();
        format!("; pods: {}", pods.join(", "))
    }
}

/// Creates Jobs and follows them; see the [module documentation](self).
#[derive(Clone)]
pub struct JobLauncher {
    client: Client,
    namespace: String,
    options: LaunchOptions,
}

impl fmt::Debug for JobLauncher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobLauncher")
            .field("namespace", &self.namespace)
            .field("options", &self.options)
            .finish()
    }
}

enum Ending {
    Finished(Box<Job>),
    TimedOut,
    Cancelled,
    /// Watching failed, or the Job vanished.
    Lost(LaunchError),
}

impl JobLauncher {
    /// A launcher using `client`, creating Jobs in `namespace` unless a Job names its own.
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        JobLauncher {
            client,
            namespace: namespace.into(),
            options: LaunchOptions::default(),
        }
    }

    /// A launcher with the client and namespace of the current kubeconfig context (or the
    /// in-cluster service account).
    pub async fn try_default() -> Result<Self, LaunchError> {
        let client = Client::try_default()
            .await
            .map_err(|err| LaunchError::Config(Box::new(err)))?;
        let namespace = client.default_namespace().to_string();
        Ok(JobLauncher::new(client, namespace))
    }

    /// Replaces the options.
    pub fn options(mut self, options: LaunchOptions) -> Self {
        self.options = options;
        self
    }

    /// Uses another default namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The default namespace.
    pub fn default_namespace(&self) -> &str {
        &self.namespace
    }

    /// Creates `job`, follows it to success or failure, hands every log line to `on_log`, and
    /// cleans up. A failed Job is `Ok` with [`JobResult::Failed`].
    pub async fn run(
        &self,
        job: &Job,
        on_log: impl FnMut(&LogLine),
    ) -> Result<JobOutcome, LaunchError> {
        self.run_until(job, on_log, std::future::pending()).await
    }

    /// Like [`run`](Self::run), but stops (and cleans up) when `cancel` completes, e.g. on
    /// Ctrl-C.
    pub async fn run_until(
        &self,
        job: &Job,
        mut on_log: impl FnMut(&LogLine),
        cancel: impl Future<Output = ()>,
    ) -> Result<JobOutcome, LaunchError> {
        let namespace = job
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace.clone());
        let requested = job
            .metadata
            .name
            .clone()
            .or_else(|| job.metadata.generate_name.clone())
            .ok_or(LaunchError::Unnamed)?;
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);

        let created = jobs
            .create(&PostParams::default(), job)
            .await
            .map_err(|source| LaunchError::Create {
                namespace: namespace.clone(),
                name: requested.clone(),
                source: Box::new(source),
            })?;
        let started = Instant::now();
        let name = created.metadata.name.clone().unwrap_or(requested);
        tracing::info!(%namespace, job = %name, "created Job");

        let (log_tx, mut log_rx) = mpsc::channel::<LogLine>(1024);
        let (stop_tx, stop_rx) = watch::channel(false);
        let follower = self.options.follow_logs.then(|| {
            tokio::spawn(follow_logs(
                pods.clone(),
                name.clone(),
                log_tx.clone(),
                stop_rx,
                self.options.pod_poll_interval,
            ))
        });
        drop(log_tx);

        let finished = wait_for_finish(
            jobs.clone(),
            name.clone(),
            namespace.clone(),
            self.options.max_watch_errors,
        );
        tokio::pin!(finished);
        let deadline = tokio::time::sleep(self.options.timeout);
        tokio::pin!(deadline);
        tokio::pin!(cancel);
        let mut logs_open = follower.is_some();
        let ending = loop {
            tokio::select! {
                biased;
                line = log_rx.recv(), if logs_open => match line {
                    Some(line) => on_log(&line),
                    None => logs_open = false,
                },
                result = &mut finished => match result {
                    Ok(job) => break Ending::Finished(Box::new(job)),
                    Err(err) => break Ending::Lost(err),
                },
                () = &mut deadline => break Ending::TimedOut,
                () = &mut cancel => break Ending::Cancelled,
            }
        };
        let elapsed = started.elapsed();

        // Let the streams deliver what the containers printed last, but not forever.
        let _ = stop_tx.send(true);
        if let Some(follower) = follower {
            let drain = async {
                while let Some(line) = log_rx.recv().await {
                    on_log(&line);
                }
            };
            let drain_time = match ending {
                Ending::Finished(_) => self.options.log_drain,
                Ending::TimedOut | Ending::Cancelled | Ending::Lost(_) => {
                    self.options.log_drain.min(Duration::from_secs(2))
                }
            };
            if tokio::time::timeout(drain_time, drain).await.is_err() {
                tracing::debug!(job = %name, "log streams still open; closing them");
            }
            follower.abort();
        }

        let reports = pod_reports(&pods, &name).await;
        let keep = match (&ending, self.options.cleanup) {
            (_, Cleanup::Never) => true,
            (Ending::Lost(LaunchError::Vanished { .. }), _) => true,
            (Ending::Finished(job), Cleanup::OnSuccess) => {
                job_finished(job) != Some(JobResult::Succeeded)
            }
            (_, Cleanup::OnSuccess) => false,
            (_, Cleanup::Always) => false,
        };
        let cleanup = if keep {
            CleanupReport::Kept
        } else {
            delete_job(&jobs, &name).await
        };

        match ending {
            Ending::Finished(job) => {
                let result = job_finished(&job).unwrap_or(JobResult::Failed {
                    reason: "Unknown".into(),
                    message: "the watch ended without a final condition".into(),
                });
                tracing::info!(%namespace, job = %name, ?result, ?elapsed, "Job finished");
                Ok(JobOutcome {
                    name,
                    namespace,
                    result,
                    pods: reports,
                    elapsed,
                    cleanup,
                })
            }
            Ending::TimedOut => Err(LaunchError::Timeout {
                namespace,
                name,
                timeout: self.options.timeout,
                pods: reports,
            }),
            Ending::Cancelled => Err(LaunchError::Cancelled {
                namespace,
                name,
                deleted: cleanup == CleanupReport::Deleted,
            }),
            Ending::Lost(err) => Err(err),
        }
    }
}

async fn wait_for_finish(
    api: Api<Job>,
    name: String,
    namespace: String,
    max_errors: u32,
) -> Result<Job, LaunchError> {
    let stream = watcher::watch_object(api, &name).default_backoff();
    futures::pin_mut!(stream);
    let mut errors = 0u32;
    let mut last_error = None;
    let mut seen = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Some(job)) => {
                errors = 0;
                seen = true;
                if job_finished(&job).is_some() {
                    return Ok(job);
                }
                tracing::debug!(job = %name, status = ?job.status.as_ref().map(|s| (s.active, s.succeeded, s.failed)), "Job running");
            }
            // Not listed yet right after the create (a lagging API server): keep waiting.
            Ok(None) if !seen => tracing::debug!(job = %name, "Job not visible yet"),
            Ok(None) => return Err(LaunchError::Vanished { namespace, name }),
            Err(err) => {
                errors += 1;
                tracing::warn!(job = %name, error = %err, attempt = errors, "watching the Job failed");
                if errors >= max_errors.max(1) {
                    return Err(LaunchError::Watch {
                        namespace,
                        name,
                        source: Box::new(err),
                    });
                }
                last_error = Some(err);
            }
        }
    }
    Err(LaunchError::Watch {
        namespace,
        name,
        source: Box::new(last_error.unwrap_or(watcher::Error::NoResourceVersion)),
    })
}

/// The Job's pods, by the current label or, if none carry it, the legacy one.
async fn list_job_pods(pods: &Api<Pod>, job: &str) -> Result<Vec<Pod>, kube::Error> {
    let list = pods
        .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={job}")))
        .await?;
    if !list.items.is_empty() {
        return Ok(list.items);
    }
    Ok(pods
        .list(&ListParams::default().labels(&format!("{LEGACY_JOB_NAME_LABEL}={job}")))
        .await?
        .items)
}

fn statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten();
    let main = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten();
    init.chain(main)
}

/// Containers whose logs can be read: running or terminated.
fn started_containers(pod: &Pod) -> Vec<String> {
    statuses(pod)
        .filter(|status| {
            status
                .state
                .as_ref()
                .is_some_and(|state| state.running.is_some() || state.terminated.is_some())
        })
        .map(|status| status.name.clone())
        .collect()
}

async fn follow_logs(
    pods: Api<Pod>,
    job: String,
    tx: mpsc::Sender<LogLine>,
    mut stop: watch::Receiver<bool>,
    interval: Duration,
) {
    let mut started: HashSet<(String, String)> = HashSet::new();
    let mut streams = JoinSet::new();
    loop {
        let stopping = *stop.borrow_and_update();
        match list_job_pods(&pods, &job).await {
            Ok(list) => {
                for pod in list {
                    let Some(pod_name) = pod.metadata.name.clone() else {
                        continue;
                    };
                    for container in started_containers(&pod) {
                        if started.insert((pod_name.clone(), container.clone())) {
                            tracing::debug!(pod = %pod_name, %container, "streaming logs");
                            streams.spawn(stream_container(
                                pods.clone(),
                                pod_name.clone(),
                                container,
                                tx.clone(),
                            ));
                        }
                    }
                }
            }
            Err(err) => tracing::debug!(%job, error = %err, "listing the Job's pods failed"),
        }
        if stopping {
            break;
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(interval) => {}
        }
    }
    while streams.join_next().await.is_some() {}
}

async fn stream_container(
    pods: Api<Pod>,
    pod: String,
    container: String,
    tx: mpsc::Sender<LogLine>,
) {
    let params = LogParams {
        container: Some(container.clone()),
        follow: true,
        ..LogParams::default()
    };
    let reader = match pods.log_stream(&pod, &params).await {
        Ok(reader) => reader,
        Err(err) => {
            tracing::warn!(%pod, %container, error = %err, "cannot read the container's logs");
            return;
        }
    };
    let mut lines = reader.lines();
    loop {
        match lines.try_next().await {
            Ok(Some(line)) => {
                let line = LogLine {
                    pod: pod.clone(),
                    container: container.clone(),
                    line,
                };
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(err) => {
                tracing::debug!(%pod, %container, error = %err, "log stream ended");
                return;
            }
        }
    }
}

async fn pod_reports(pods: &Api<Pod>, job: &str) -> Vec<PodReport> {
    match list_job_pods(pods, job).await {
        Ok(list) => list.iter().map(pod_report).collect(),
        Err(err) => {
            tracing::debug!(%job, error = %err, "listing the Job's pods failed");
            Vec::new()
        }
    }
}

fn pod_report(pod: &Pod) -> PodReport {
    PodReport {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase: pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        containers: statuses(pod)
            .map(|status| {
                let state = status.state.as_ref();
                let text = if let Some(terminated) = state.and_then(|s| s.terminated.as_ref()) {
                    format!(
                        "exited {} ({})",
                        terminated.exit_code,
                        terminated.reason.as_deref().unwrap_or("-")
                    )
                } else if let Some(waiting) = state.and_then(|s| s.waiting.as_ref()) {
                    let mut text = format!("waiting: {}", waiting.reason.as_deref().unwrap_or("-"));
                    if let Some(message) = waiting.message.as_deref().filter(|m| !m.is_empty()) {
                        text.push_str(": ");
                        text.push_str(message);
                    }
                    text
                } else if state.is_some_and(|s| s.running.is_some()) {
                    "running".to_string()
                } else {
                    "unknown".to_string()
                };
                ContainerReport {
                    name: status.name.clone(),
                    state: text,
                }
            })
            .collect(),
    }
}

async fn delete_job(jobs: &Api<Job>, name: &str) -> CleanupReport {
    match jobs.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            tracing::info!(job = %name, "deleted Job (background propagation)");
            CleanupReport::Deleted
        }
        Err(kube::Error::Api(status)) if status.code == 404 => CleanupReport::Deleted,
        Err(err) => {
            tracing::warn!(job = %name, error = %err, "deleting the Job failed");
            CleanupReport::Failed(err.to_string())
        }
    }
}
