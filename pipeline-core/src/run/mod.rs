//! Running a pipeline: prepare → build (and push) → update the chart → commit and push.
//!
//! ```text
//! prepare       load the tokens; resolve the source ref to a commit (git ls-remote);
//!               clone the chart branch (shallow), which checks that the chart repository
//!               answers and its branch exists (a dry run asks with git ls-remote)
//! build         BuildKit builds URL#ref[:subdir] (token as GIT_AUTH_TOKEN.<host>), imports
//!               and exports the registry cache, the image exporter pushes (push=true);
//!               BuildKit progress goes to the optional ProgressSink and, per finished build
//!               step, to the events
//! update-chart  format-preserving edit of the values files in that clone
//! commit        commit, push; on a moved branch fetch, re-apply, retry (never forced)
//! ```
//!
//! The steps overlap where nothing is lost by it. The build starts as soon as the tokens are
//! loaded, while `prepare` asks the git servers, and the chart is cloned while the image builds.
//! The build's events are held back until `prepare` passes, so a sink still sees the steps one
//! after the other (the build step's duration counts from its real start). Should a check of
//! `prepare` fail, the build is cancelled and the check's error reported; in the rare case where
//! the build had already finished, the report says what it pushed.
//!
//! A step that fails stops the run: a failed build never touches the chart repository. Every
//! step emits [`RunEvent`]s to an optional [`EventSink`], and the run returns a [`RunReport`]
//! (JSON with `serde`), also when it fails ([`RunFailure::report`]).
//!
//! A dry run ([`Runner::dry_run`]) connects to no daemon, builds and pushes nothing: it
//! resolves the source ref, reports the [`BuildPlan`] it would run, clones the chart, applies
//! the edit in the temporary work tree and reports the unified diff, without committing. With
//! digest pinning the diff shows the placeholder digest `sha256:000…0`.
//!
//! The chart step is blocking git work; it runs in `tokio::task::spawn_blocking`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cicd_agents_buildkit::{progress::ProgressMode, Client};
//! use cicd_agents_pipeline::definition::PipelineDefinition;
//! use cicd_agents_pipeline::run::{RunEvent, Runner};
//!
//! let pipeline = PipelineDefinition::from_file("pipeline.yaml")?.resolve([("image-tag", "1.2.3")])?;
//! let client = Client::connect("docker://").await?;
//! let report = Runner::new(pipeline)
//!     .events(|event: &RunEvent| eprintln!("{}", serde_json::to_string(event).unwrap_or_default()))
//!     .progress(ProgressMode::Plain.stderr_sink()?)
//!     .run(&client)
//!     .await?;
//! println!("digest {:?}, chart commit {:?}", report.digest(), report.chart_commit());
//! # Ok(()) }
//! ```

mod ahead;
mod build;

mod events;
mod report;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cicd_agents_buildkit::pool::{Attempt, PoolError};
use cicd_agents_buildkit::progress::ProgressSink;
use cicd_agents_buildkit::{BuilderPool, Client, TlsOptions};
use secrecy::ExposeSecret as _;

pub use build::{build_options, BuildPlan};
pub use cicd_agents_gitops::chart::{
    set_local, ChartOutcome, ChartProgress, ChartStatus, ChartUpdate, LocalEdit, ValueChange,
    ValuesUpdate,
};
pub use events::{EventSink, PassedOver, RunEvent, Step, StepOutcome};
pub use report::{BuildReport, RunReport, SourceReport, StepReport};

use crate::definition::{ChartSpec, Pipeline, SourceLocation, TokenSource};
use crate::error::{ErrorKind, GitError, HasKind};
use crate::git::{Checkout, CommitVars, GitAuth, RetryPolicy, WriteBack, WriteBackConfig};
use crate::values::Digest;

/// The digest shown in dry-run diffs where a digest is pinned.
pub const PLACEHOLDER_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Why a run failed. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A token could not be read (variable unset, file missing).
    #[error("{which} token: {source}")]
    Token {
        /// `source` or `chart`.
        which: &'static str,
        /// The error.
        #[source]
        source: GitError,
    },
    /// The source repository refused the token, or the ref does not exist.
    #[error("source repository: {0}")]
    Source(#[source] GitError),
    /// The chart repository is not usable (bad URL, rejected token, missing branch).
    #[error("chart repository: {0}")]
    ChartAccess(#[source] GitError),
    /// The build failed (the message is redacted).
    #[error("build failed: {message}")]
    Build {
        /// The build error, with any token removed.
        message: String,
        /// Whether it was cancelled.
        cancelled: bool,
        /// The failing step, its Dockerfile line and its last output, with
        /// any token removed, when the daemon reported them.
        failure: Option<Box<cicd_agents_buildkit::build::BuildError>>,
    },
    /// No daemon of the build's pool could be used; the message names each one tried and
    /// why it was passed over.
    #[error("{message}")]
    NoBuilder {
        /// The pool's error, with any token removed.
        message: String,
        /// The routing key.
        key: String,
        /// Every daemon tried, in order, and why it was passed over (tokens removed).
        tried: Vec<Attempt>,
    },
    /// The build pushed no digest although one is needed (digest pinning).
    #[error("the build returned no image digest")]
    NoDigest,
    /// Editing, committing or pushing the chart failed.
    #[error("chart update: {0}")]
    Chart(#[source] crate::Error),
    /// A blocking task could not be joined (panicked or cancelled).
    #[error("internal error: {0}")]
    Task(String),
}

impl HasKind for RunError {
    /// The kind of the git, chart or build failure inside; a build is
    /// [`ErrorKind::BuildFailed`] (or [`ErrorKind::Cancelled`]).
    fn kind(&self) -> ErrorKind {
        match self {
            RunError::Token { source, .. } => HasKind::kind(source),
            RunError::Source(err) | RunError::ChartAccess(err) => HasKind::kind(err),
            RunError::Build {
                cancelled: true, ..
            } => ErrorKind::Cancelled,
            RunError::Build { .. } => ErrorKind::BuildFailed,
            RunError::NoBuilder { .. } => ErrorKind::Connection,
            RunError::NoDigest => ErrorKind::Remote,
            RunError::Chart(err) => err.kind(),
            RunError::Task(_) => ErrorKind::Internal,
        }
    }
}

impl HasKind for RunFailure {
    fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

/// A failed run: the error and the report of what ran.
#[derive(Debug)]
pub struct RunFailure {
    /// What went wrong.
    pub error: RunError,
    /// The report (`success: false`, the failed step, the steps not run).
    pub report: Box<RunReport>,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for RunFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// Emits events and records step outcomes; shared with the blocking chart task.
pub(crate) struct Recorder {
    sink: Option<Arc<dyn EventSink>>,
    started: Mutex<HashMap<Step, Instant>>,
    steps: Mutex<Vec<StepReport>>,
    /// The build's events while the build runs ahead of the end of `prepare`
    /// (`Some` from [`Recorder::hold_build`] to [`Recorder::release_build`]), so
    /// that a sink sees the steps one after the other.
    held: Mutex<Option<Vec<RunEvent>>>,
}

impl Recorder {
    fn new(sink: Option<Arc<dyn EventSink>>) -> Self {
        Self {
            sink,
            started: Mutex::new(HashMap::new()),
            steps: Mutex::new(Vec::new()),
            held: Mutex::new(None),
        }
    }

    pub(crate) fn emit(&self, event: RunEvent) {
        if event.is_build_event() {
            if let Some(held) = self.held.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                held.push(event);
                return;
            }
        }
        self.send(&event);
    }

    fn send(&self, event: &RunEvent) {
        tracing::debug!(?event, "run event");
        if let Some(sink) = &self.sink {
            sink.event(event);
        }
    }

    /// Holds the build's events back until [`Recorder::release_build`].
    fn hold_build(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// Whether the build's events are held back.
    pub(crate) fn holds_build(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Starts [`Step::Build`] (as of `started`, when the build really began) and sends
    /// the events held back since [`Recorder::hold_build`], in order.
    fn release_build(&self, started: Instant) {
        let held = self.take_held();
        self.start_at(Step::Build, started);
        for event in &held {
            self.send(event);
        }
    }

    /// Drops the events held back since [`Recorder::hold_build`]: the build was cancelled
    /// before it was reported.
    fn discard_build(&self) {
        self.take_held();
    }

    fn take_held(&self) -> Vec<RunEvent> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }

    fn start(&self, step: Step) {
        self.start_at(step, Instant::now());
    }

    fn start_at(&self, step: Step, at: Instant) {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(step, at);
        tracing::info!(%step, "step started");
        self.send(&RunEvent::StepStarted { step });
    }

    fn progress(&self, step: Step, message: impl Into<String>) {
        self.emit(RunEvent::StepProgress {
            step,
            message: message.into(),
        });
    }

    fn finish(&self, step: Step, outcome: StepOutcome) {
        let duration = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&step)
            .map(Instant::elapsed)
            .unwrap_or_default();
        tracing::info!(%step, %outcome, secs = duration.as_secs_f64(), "step finished");
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(StepReport {
                step,
                outcome: outcome.clone(),
                duration,
            });
        self.emit(RunEvent::StepFinished {
            step,
            duration,
            outcome,
        });
    }

    fn is_finished(&self, step: Step) -> bool {
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|s| s.step == step)
    }

    fn steps(&self) -> Vec<StepReport> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Runs one [`Pipeline`].
pub struct Runner {
    pipeline: Pipeline,
    events: Option<Arc<dyn EventSink>>,
    /// In a mutex only so that `Runner` is `Sync` and its run futures are
    /// `Send`; it is reached through `get_mut`, never locked across an await.
    progress: Option<std::sync::Mutex<Box<dyn ProgressSink>>>,
    /// Overrides the definition's `chart.retry-timeout` when set.
    retry: Option<RetryPolicy>,
    allow_insecure_http: bool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("pipeline", &self.pipeline.name)
            .field("events", &self.events.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

fn load_token(
    which: &'static str,
    token: &Option<TokenSource>,
    username: &Option<String>,
) -> Result<Option<GitAuth>, RunError> {
    token
        .as_ref()
        .map(|t| t.load(username.as_deref()))
        .transpose()
        .map_err(|source| RunError::Token { which, source })
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.len() >= 4 && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "[REDACTED]");
        }
    }
    out
}

/// A build error with every secret removed from each of its texts.
fn redact_build_error(
    mut failure: cicd_agents_buildkit::build::BuildError,
    secrets: &[String],
) -> cicd_agents_buildkit::build::BuildError {
    let clean = |text: &mut String| *text = redact(text, secrets);
    clean(&mut failure.message);
    failure.step.as_mut().map(clean);
    failure.file.as_mut().map(clean);
    failure.source_lines.iter_mut().for_each(clean);
    failure.log_tail.iter_mut().for_each(clean);
    if let Some(registry) = failure.registry.as_mut() {
        clean(&mut registry.registry);
        clean(&mut registry.reason);
    }
    failure
}

/// Where a run builds: one daemon, or a pool of them.
#[derive(Clone, Copy)]
enum Builder<'a> {
    Client(&'a Client),
    Pool(&'a BuilderPool),
}

fn passed_over(attempts: &[Attempt], secrets: &[String]) -> Vec<PassedOver> {
    attempts
        .iter()
        .map(|a| PassedOver {
            address: a.address.clone(),
            reason: redact(&a.reason, secrets),
        })
        .collect()
}

async fn blocking<T, F>(f: F) -> Result<T, RunError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RunError::Task(e.to_string()))
}

impl Runner {
    /// A runner for `pipeline`.
    pub fn new(pipeline: Pipeline) -> Self {
        Self {
            pipeline,
            events: None,
            progress: None,
            retry: None,
            allow_insecure_http: false,
        }
    }

    /// Sends events to `sink`.
    pub fn events(mut self, sink: impl EventSink + 'static) -> Self {
        self.events = Some(Arc::new(sink));
        self
    }

    /// Sends events to a shared sink.
    pub fn events_arc(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Hands BuildKit progress to `sink` (e.g. a renderer from
    /// [`ProgressMode::stderr_sink`](cicd_agents_buildkit::progress::ProgressMode::stderr_sink)).
    pub fn progress(mut self, sink: Box<dyn ProgressSink>) -> Self {
        self.progress = Some(std::sync::Mutex::new(sink));
        self
    }

    /// Retry policy for rejected chart pushes, instead of the definition's
    /// (`chart.retry-timeout`, default 2 minutes).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// How long to keep retrying rejected chart pushes, instead of the definition's
    /// `chart.retry-timeout`; the backoff stays the default.
    pub fn retry_timeout(self, timeout: std::time::Duration) -> Self {
        self.retry(RetryPolicy::with_timeout(timeout))
    }

    /// Allows `http://` git URLs to non-loopback hosts (tokens in clear text).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The build this run would do.
    pub fn build_plan(&self) -> BuildPlan {
        BuildPlan::of(&self.pipeline)
    }

    /// Runs the pipeline against `client` (also when the definition names a `build.pool`:
    /// an explicit daemon wins).
    pub async fn run(&mut self, client: &Client) -> Result<RunReport, RunFailure> {
        self.execute(Some(Builder::Client(client))).await
    }

    /// Runs the pipeline, building on `pool` with its sticky routing and failover. The
    /// routing key is the definition's `build.pool-key`, else the pool's
    /// [`routing_key`](cicd_agents_buildkit::pool::routing_key) of the build (the source
    /// repository URL without its `#ref`, or the local context directory), so that a
    /// project keeps landing on the daemon that holds its cache. The report's
    /// [`BuildReport::builder`] and [`BuildReport::passed_over`] say where it ran.
    pub async fn run_on_pool(&mut self, pool: &BuilderPool) -> Result<RunReport, RunFailure> {
        self.execute(Some(Builder::Pool(pool))).await
    }

    /// The pool of the definition's `build.pool`, reaching `tcp://` daemons with `tls`
    /// (`None` without `build.pool`). Nothing is dialled yet; run with
    /// [`Runner::run_on_pool`].
    pub fn builder_pool(&self, tls: TlsOptions) -> Result<Option<BuilderPool>, PoolError> {
        self.pipeline
            .build
            .pool
            .as_ref()
            .map(|pool| pool.builder_pool(tls))
            .transpose()
    }

    /// Builds nothing, pushes nothing, commits nothing: reports the build it would run and the
    /// values diff it would commit.
    pub async fn dry_run(&mut self) -> Result<RunReport, RunFailure> {
        self.execute(None).await
    }

    async fn execute(&mut self, client: Option<Builder<'_>>) -> Result<RunReport, RunFailure> {
        let started = Instant::now();
        let dry_run = client.is_none();
        let recorder = Arc::new(Recorder::new(self.events.clone()));
        let p = &self.pipeline;
        let plan = BuildPlan::of(p);
        let mut report = RunReport {
            pipeline: p.name.clone(),
            dry_run,
            success: false,
            error: None,
            parameters: p.parameters.clone(),
            source: SourceReport {
                context: plan.context.clone(),
                git_ref: match &p.source.location {
                    SourceLocation::Git { git_ref, .. } => Some(git_ref.clone()),
                    SourceLocation::Local { .. } => None,
                },
                commit: None,
            },
            build: BuildReport {
                images: plan.images.clone(),
                plan,
                digest: None,
                pushed: false,
                builder: None,
                passed_over: Vec::new(),
            },
            chart: None,
            steps: Vec::new(),
            duration: Duration::ZERO,
        };
        recorder.emit(RunEvent::RunStarted {
            pipeline: p.name.clone(),
            dry_run,
        });
        let result = self.steps(client, &recorder, &mut report).await;
        let mut all = vec![Step::Prepare, Step::Build];
        if self.pipeline.chart.is_some() {
            all.extend([Step::UpdateChart, Step::Commit]);
        }
        let failed_step = all.iter().copied().find(|s| {
            recorder
                .steps()
                .iter()
                .any(|r| r.step == *s && matches!(r.outcome, StepOutcome::Failed { .. }))
        });
        let mut steps = recorder.steps();
        for step in all {
            if !steps.iter().any(|s| s.step == step) {
                let reason = match failed_step {
                    Some(f) => format!("not run: {f} failed"),
                    None => "not run".into(),
                };
                steps.push(StepReport {
                    step,
                    outcome: StepOutcome::Skipped { reason },
                    duration: Duration::ZERO,
                });
            }
        }
        steps.sort_by_key(|s| s.step);
        report.steps = steps;
        report.duration = started.elapsed();
        report.success = result.is_ok();
        recorder.emit(RunEvent::RunFinished {
            success: report.success,
            duration: report.duration,
        });
        match result {
            Ok(()) => Ok(report),
            Err(error) => {
                report.error = Some(error.to_string());
                Err(RunFailure {
                    error,
                    report: Box::new(report),
                })
            }
        }
    }

    async fn steps(
        &mut self,
        client: Option<Builder<'_>>,
        recorder: &Arc<Recorder>,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        // prepare: what needs no network first (tokens, the chart's settings): an error
        // here stops the run before anything is sent.
        recorder.start(Step::Prepare);
        let (source_auth, writeback) = match self.prepare_local() {
            Ok(v) => v,
            Err(e) => {
                recorder.finish(Step::Prepare, StepOutcome::failed(&e));
                return Err(e);
            }
        };

        // With a daemon, the chart is cloned while the image builds (its clone is off the
        // critical path), and the clone is prepare's check of the chart repository.
        let chart_probe = writeback.clone().map(|writeback| match client {
            Some(_) => ChartProbe::Clone(tokio::task::spawn_blocking(move || writeback.checkout())),
            None => ChartProbe::Tip(Box::new(writeback)),
        });
        let checks = check_remotes(
            &self.pipeline,
            self.allow_insecure_http,
            source_auth.clone(),
            chart_probe,
            Arc::clone(recorder),
            report.source.git_ref.clone().unwrap_or_default(),
        );

        let Some(client) = client else {
            // A dry run: the checks, then the plan.
            match checks.await {
                Ok((commit, _)) => {
                    report.source.commit = commit;
                    recorder.finish(Step::Prepare, StepOutcome::Succeeded);
                }
                Err(e) => {
                    recorder.finish(Step::Prepare, StepOutcome::failed(&e));
                    return Err(e);
                }
            }
            recorder.start(Step::Build);
            for line in report.build.plan.to_string().lines() {
                recorder.progress(Step::Build, format!("would run: {}", line.trim_end()));
            }
            recorder.finish(Step::Build, StepOutcome::DryRun);
            let Some(writeback) = writeback else {
                return Ok(());
            };
            return self.preview_chart(writeback, recorder, report).await;
        };

        // build: it starts now, while the remote checks of `prepare` run. Its events are
        // held back until they pass, so that the steps still come one after the other;
        // should a check fail, the build is cancelled and the check's error reported.
        let build_started = Instant::now();
        recorder.hold_build();
        let inner = self
            .progress
            .as_mut()
            .and_then(|sink| sink.get_mut().ok())
            .map(|sink| sink.as_mut());
        let (tracker, activity) = ahead::ActivityTracker::new();
        let mut forward = build::Forward::new(inner, Arc::clone(recorder), tracker);
        let mut building = Box::pin(run_build(
            &self.pipeline,
            client,
            &mut forward,
            recorder,
            source_auth.as_ref(),
            &mut report.build,
        ));
        let mut checks = std::pin::pin!(checks);
        let mut built = None;
        let checked = loop {
            tokio::select! {
                biased;
                checked = &mut checks => break checked,
                outcome = &mut building, if built.is_none() => built = Some(outcome),
            }
        };
        let checkout = match checked {
            Ok((commit, checkout)) => {
                report.source.commit = commit;
                recorder.finish(Step::Prepare, StepOutcome::Succeeded);
                recorder.release_build(build_started);
                checkout
            }
            Err(e) => {
                drop(building);
                recorder.finish(Step::Prepare, StepOutcome::failed(&e));
                match built {
                    // The build ran ahead and finished before the check failed: what it
                    // pushed is reported.
                    Some(Ok(digest)) => {
                        recorder.release_build(build_started);
                        forward.flush();
                        self.record_image(recorder, report, digest);
                        recorder.finish(Step::Build, StepOutcome::Succeeded);
                    }
                    _ => recorder.discard_build(),
                }
                return Err(e);
            }
        };
        // The chart's clone, looked at while the daemon finishes (see `ahead`).
        let (outcome, checkout) = match (built, checkout) {
            (Some(outcome), mut checkout) => {
                if let Some(checkout) = checkout.as_mut() {
                    checkout.fresh_as_of(ahead::last_activity(&activity));
                }
                (outcome, checkout)
            }
            (None, Some(checkout)) => {
                ahead::build_and_look(building.as_mut(), checkout, activity).await
            }
            (None, None) => (building.as_mut().await, None),
        };
        drop(building);
        forward.flush();
        drop(forward);
        let digest = match outcome {
            Ok(digest) => {
                self.record_image(recorder, report, digest.clone());
                recorder.finish(Step::Build, StepOutcome::Succeeded);
                digest
            }
            Err(e) => {
                recorder.finish(Step::Build, StepOutcome::failed(&e));
                return Err(e);
            }
        };

        // update-chart + commit
        match writeback {
            Some(writeback) => {
                self.update_chart(writeback, checkout, digest, recorder, report)
                    .await
            }
            None => Ok(()),
        }
    }

    /// The chart steps after the build: edit the values in the clone (made ahead, or now),
    /// commit and push.
    async fn update_chart(
        &self,
        writeback: WriteBack,
        checkout: Option<Checkout>,
        digest: Option<String>,
        recorder: &Arc<Recorder>,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let update = self.start_chart_update(writeback, digest.as_deref(), recorder, report)?;
        let rec = Arc::clone(recorder);
        let outcome = blocking(move || {
            update.apply_on(checkout, &mut |ChartProgress::Edited { attempt, changes }| {
                if attempt == 1 {
                    for c in changes {
                        rec.progress(Step::UpdateChart, describe_change(c));
                    }
                    rec.finish(Step::UpdateChart, StepOutcome::Succeeded);
                    rec.start(Step::Commit);
                } else {
                    rec.progress(
                        Step::Commit,
                        format!("push rejected because the branch moved; edit re-applied on the new tip (attempt {attempt})"),
                    );
                }
            })
        })
        .await?;
        let current = if recorder.is_finished(Step::UpdateChart) {
            Step::Commit
        } else {
            Step::UpdateChart
        };
        match outcome {
            Ok(outcome) => {
                recorder.emit(RunEvent::ChartCommitted {
                    commit: outcome.commit.clone(),
                    branch: outcome.branch.clone(),
                });
                let result = if outcome.commit.is_some() {
                    StepOutcome::Succeeded
                } else {
                    StepOutcome::NoChange
                };
                if let Some(c) = &outcome.commit {
                    let tries = if outcome.attempts > 1 {
                        format!(
                            " ({} attempts in {})",
                            outcome.attempts,
                            crate::git::format_elapsed(outcome.elapsed)
                        )
                    } else {
                        String::new()
                    };
                    recorder.progress(
                        Step::Commit,
                        format!("pushed {c} to {}{tries}", outcome.branch),
                    );
                } else {
                    recorder.progress(
                        Step::Commit,
                        "the values already hold these values; no commit",
                    );
                }
                recorder.finish(current, result);
                report.chart = Some(outcome);
                Ok(())
            }
            Err(e) => {
                let e = RunError::Chart(e);
                recorder.finish(current, StepOutcome::failed(&e));
                Err(e)
            }
        }
    }

    /// Starts [`Step::UpdateChart`] with the edit to make ([`Runner::chart_update`]); a
    /// refused edit fails the step.
    fn start_chart_update(
        &self,
        writeback: WriteBack,
        digest: Option<&str>,
        recorder: &Recorder,
        report: &RunReport,
    ) -> Result<ChartUpdate, RunError> {
        recorder.start(Step::UpdateChart);
        self.chart_update(writeback, digest, report)
            .inspect_err(|e| recorder.finish(Step::UpdateChart, StepOutcome::failed(e)))
    }

    /// The image the build made, into the report and the events.
    fn record_image(&self, recorder: &Recorder, report: &mut RunReport, digest: Option<String>) {
        report.build.digest = digest.clone();
        report.build.pushed = self.pipeline.build.push;
        recorder.emit(RunEvent::ImageBuilt {
            images: report.build.images.clone(),
            digest,
            pushed: self.pipeline.build.push,
        });
    }

    /// The chart step of a dry run: clone, edit, diff; no commit.
    async fn preview_chart(
        &self,
        writeback: WriteBack,
        recorder: &Arc<Recorder>,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        let update = self.start_chart_update(writeback, None, recorder, report)?;
        match blocking(move || update.preview()).await? {
            Ok(outcome) => {
                for c in &outcome.changes {
                    recorder.progress(Step::UpdateChart, describe_change(c));
                }
                recorder.finish(Step::UpdateChart, StepOutcome::DryRun);
                report.chart = Some(outcome);
                recorder.start(Step::Commit);
                recorder.finish(
                    Step::Commit,
                    StepOutcome::Skipped {
                        reason: "dry run".into(),
                    },
                );
                Ok(())
            }
            Err(e) => {
                let e = RunError::Chart(e);
                recorder.finish(Step::UpdateChart, StepOutcome::failed(&e));
                Err(e)
            }
        }
    }

    /// The part of `prepare` that needs no network: the tokens, and the chart's
    /// write-back settings.
    fn prepare_local(&self) -> Result<(Option<GitAuth>, Option<WriteBack>), RunError> {
        let p = &self.pipeline;
        let source_auth = load_token("source", &p.source.token, &p.source.username)?;
        let writeback = p
            .chart
            .as_ref()
            .map(|chart| self.chart_writeback(chart))
            .transpose()?;
        Ok((source_auth, writeback))
    }

    /// The write-back of `chart`: its token, branches, author, retry policy
    /// and message template.
    fn chart_writeback(&self, chart: &ChartSpec) -> Result<WriteBack, RunError> {
        let auth = load_token("chart", &chart.token, &chart.username)?;
        let mut config = WriteBackConfig::new(&chart.repo, &chart.branch, chart.author.clone());
        config.push_branch = chart.push_branch.clone();
        config.auth = auth;
        config.retry = self.retry.clone().unwrap_or_else(|| chart.retry_policy());
        config.allow_insecure_http = self.allow_insecure_http;
        config.message = chart.message_template().map_err(RunError::ChartAccess)?;
        WriteBack::new(config).map_err(RunError::ChartAccess)
    }

    fn chart_update(
        &self,
        writeback: WriteBack,
        digest: Option<&str>,
        report: &RunReport,
    ) -> Result<ChartUpdate, RunError> {
        let p = &self.pipeline;
        let Some(chart) = &p.chart else {
            return Err(RunError::Task("no chart".into()));
        };
        let digest = match digest {
            Some(d) => Some(Digest::new(d).map_err(|e| RunError::Chart(e.into()))?),
            None if report.dry_run => Digest::new(PLACEHOLDER_DIGEST).ok(),
            None => None,
        };
        let mut updates = Vec::new();
        let mut first_image = None;
        for target in &chart.values {
            let mut edits = Vec::new();
            for image in &target.images {
                let Some(name) = p.build.images.get(image.image) else {
                    return Err(RunError::Task(format!(
                        "chart image refers to build image #{}",
                        image.image
                    )));
                };
                first_image.get_or_insert_with(|| name.clone());
                let more = image
                    .keys
                    .edits(Some(&name.repository), &name.tag, digest.as_ref())
                    .map_err(|e| match e {
                        crate::error::TagError::MissingDigest { .. } => RunError::NoDigest,
                        other => RunError::Chart(other.into()),
                    })?;
                edits.extend(more);
            }
            updates.push(ValuesUpdate {
                file: target.file.clone(),
                edits,
            });
        }
        let vars = CommitVars {
            image: first_image
                .as_ref()
                .map(|i| i.repository.clone())
                .unwrap_or_default(),
            old_tag: String::new(),
            new_tag: first_image
                .as_ref()
                .map(|i| i.tag.to_string())
                .unwrap_or_default(),
            digest: digest.map(|d| d.to_string()).unwrap_or_default(),
            source_commit: report.source.commit.clone().unwrap_or_default(),
        };
        Ok(ChartUpdate {
            config: writeback.config().clone(),
            updates,
            vars,
        })
    }
}

/// How `prepare` checks the chart repository.
enum ChartProbe {
    /// One `ls-remote` of the branch (a dry run: it clones later, to preview).
    Tip(Box<WriteBack>),
    /// The clone made ahead for the chart step: it is the check.
    Clone(tokio::task::JoinHandle<Result<Checkout, GitError>>),
}

/// The part of `prepare` that asks the git servers: the source's ref is resolved while the
/// chart's access is checked (at once, not one after the other). Returns the source commit,
/// and the chart's clone when the probe made one. A source error is the one reported when both
/// fail.
async fn check_remotes(
    pipeline: &Pipeline,
    allow_insecure_http: bool,
    source_auth: Option<GitAuth>,
    chart_probe: Option<ChartProbe>,
    recorder: Arc<Recorder>,
    git_ref_label: String,
) -> Result<(Option<String>, Option<Checkout>), RunError> {
    let resolving = match &pipeline.source.location {
        SourceLocation::Git { url, git_ref } => {
            let (url, git_ref) = (url.clone(), git_ref.clone());
            Some(tokio::task::spawn_blocking(move || {
                crate::git::resolve_ref(&url, &git_ref, source_auth.as_ref(), allow_insecure_http)
            }))
        }
        _ => None,
    };
    let chart_probe = chart_probe.map(|probe| match probe {
        ChartProbe::Tip(writeback) => {
            tokio::task::spawn_blocking(move || writeback.check_access().map(|tip| (tip, None)))
        }
        ChartProbe::Clone(clone) => tokio::spawn(async move {
            match clone.await {
                Ok(Ok(checkout)) => Ok((checkout.cloned_commit().to_string(), Some(checkout))),
                Ok(Err(err)) => Err(err),
                Err(joined) => Err(GitError::Io {
                    action: "cloning the chart".into(),
                    source: std::io::Error::other(joined.to_string()),
                }),
            }
        }),
    });
    let mut commit = None;
    if let Some(resolving) = resolving {
        let resolved = resolving
            .await
            .map_err(|e| RunError::Task(e.to_string()))?
            .map_err(RunError::Source)?;
        recorder.progress(
            Step::Prepare,
            format!("source {git_ref_label} is at {resolved}"),
        );
        recorder.emit(RunEvent::SourceResolved {
            git_ref: git_ref_label,
            commit: resolved.clone(),
        });
        commit = Some(resolved);
    }
    let mut checkout = None;
    if let (Some(chart), Some(probe)) = (&pipeline.chart, chart_probe) {
        let (tip, cloned) = probe
            .await
            .map_err(|e| RunError::Task(e.to_string()))?
            .map_err(RunError::ChartAccess)?;
        recorder.progress(
            Step::Prepare,
            format!("chart {} branch {} is at {tip}", chart.repo, chart.branch),
        );
        checkout = cloned;
    }
    Ok((commit, checkout))
}

/// The build step on `builder`: progress through `forward`, the daemon used into `built`.
/// Returns the image digest.
async fn run_build(
    pipeline: &Pipeline,
    builder: Builder<'_>,
    forward: &mut build::Forward<'_>,
    recorder: &Arc<Recorder>,
    source_auth: Option<&GitAuth>,
    built: &mut BuildReport,
) -> Result<Option<String>, RunError> {
    let options = build_options(pipeline, source_auth);
    recorder.progress(
        Step::Build,
        format!(
            "building {} from {}",
            pipeline
                .build
                .images
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            pipeline.source.buildkit_context()
        ),
    );
    let secrets: Vec<String> = source_auth
        .map(|a| vec![a.token.expose_secret().to_string()])
        .unwrap_or_default();
    let outcome = match builder {
        Builder::Client(client) => {
            let address = client.address().to_string();
            recorder.emit(RunEvent::BuilderChosen {
                address: address.clone(),
                passed_over: Vec::new(),
            });
            built.builder = Some(address);
            client.build_with_progress(&options, forward).await
        }
        Builder::Pool(pool) => {
            let key = match &pipeline.build.pool {
                Some(spec) => spec.routing_key(&options),
                None => cicd_agents_buildkit::pool::routing_key(&options),
            };
            recorder.progress(Step::Build, format!("pool routing key {key}"));
            let outcome = pool.build(&key, &options, forward).await;
            let (address, tried) = match &outcome {
                Ok(pooled) => (Some(pooled.address.clone()), pooled.passed_over.as_slice()),
                Err(PoolError::Build {
                    address,
                    passed_over,
                    ..
                }) => (Some(address.clone()), passed_over.as_slice()),
                Err(PoolError::Unavailable { tried, .. }) => (None, tried.as_slice()),
                Err(_) => (None, &[][..]),
            };
            let tried = passed_over(tried, &secrets);
            for attempt in &tried {
                recorder.progress(Step::Build, format!("passed over {attempt}"));
            }
            built.passed_over = tried.clone();
            if let Some(address) = &address {
                recorder.progress(Step::Build, format!("built on {address}"));
                recorder.emit(RunEvent::BuilderChosen {
                    address: address.clone(),
                    passed_over: tried.clone(),
                });
                built.builder = Some(address.clone());
            }
            match outcome {
                Ok(pooled) => Ok(pooled.result),
                Err(PoolError::Build { source, .. }) => Err(source),
                Err(other) => {
                    return Err(RunError::NoBuilder {
                        message: redact(&other.to_string(), &secrets),
                        key,
                        tried: tried
                            .into_iter()
                            .map(|p| Attempt {
                                address: p.address,
                                reason: p.reason,
                            })
                            .collect(),
                    })
                }
            }
        }
    };
    match outcome {
        Ok(result) => {
            if let Some(d) = &result.digest {
                recorder.progress(Step::Build, format!("image digest {d}"));
            }
            Ok(result.digest)
        }
        Err(cicd_agents_buildkit::Error::Cancelled) => Err(RunError::Build {
            message: "cancelled".into(),
            cancelled: true,
            failure: None,
        }),
        Err(cicd_agents_buildkit::Error::Build(failure)) => {
            let failure = redact_build_error(*failure, &secrets);
            Err(RunError::Build {
                message: failure.to_string(),
                cancelled: false,
                failure: Some(Box::new(failure)),
            })
        }
        Err(e) => Err(RunError::Build {
            message: redact(&e.to_string(), &secrets),
            cancelled: false,
            failure: None,
        }),
    }
}

fn describe_change(c: &ValueChange) -> String {
    if c.changed {
        format!("{} {}: {} -> {}", c.file, c.key, c.old, c.new)
    } else {
        format!("{} {}: {} (unchanged)", c.file, c.key, c.new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_tokens() {
        assert_eq!(redact("a s3cret b", &["s3cret".into()]), "a [REDACTED] b");
        assert_eq!(redact("abc", &[]), "abc");
    }
}
