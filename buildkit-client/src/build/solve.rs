//! Running a build: session up, `Status` and `Solve` side by side, teardown.
//!
//! The session is served before the solve names it (the daemon waits only a
//! few seconds for it). `Status` is read concurrently with the same ref.
//! Dropping the future cancels everything: the solve call is reset (the
//! daemon cancels the build), and the session and status tasks are aborted.

use std::time::Duration;

use cicd_agents_proto::moby::buildkit::v1::StatusRequest;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::build::error::BuildError;
use crate::build::options::BuildOptions;
use crate::build::plan::{PreparedBuild, SolvePlan};
use crate::build::result::BuildResult;
use crate::build::timings::BuildTimings;
use crate::control::info::DaemonInfo;
use crate::error::{Error, Result};
use crate::fsutil::{load_dockerignore, DiffCopyRequest};
use crate::progress::{ProgressSink, Quiet, StatusUpdate, Tracker, IDLE_TICK};
use crate::session::context_sync::LocalDirs;
use crate::Client;

/// How long the status stream may run on after a successful solve returned.
const STATUS_DRAIN: Duration = Duration::from_secs(5);

/// After a failed solve, the status stream is read on only while updates keep
/// coming at most this far apart: the daemon has sent what explains the
/// failure before its answer, and a request it refused at once has no job
/// whose stream would ever end (BuildKit's `Status` waits seconds for it).
/// buildx cancels the stream as soon as the solve fails.
const FAILED_DRAIN_QUIET: Duration = Duration::from_millis(150);

/// How long the status stream may run on after a failed solve, at most.
const FAILED_DRAIN: Duration = Duration::from_secs(1);

/// Reads the status updates left after the solve returned into `tracker` and
/// `progress`, until the stream ends, `limit` has passed, or (when `quiet` is
/// given) no update came for that long.
async fn drain_status(
    updates: &mut mpsc::Receiver<StatusUpdate>,
    tracker: &mut Tracker,
    progress: &mut (dyn ProgressSink + '_),
    limit: Duration,
    quiet: Option<Duration>,
) {
    let drain = async {
        loop {
            let next = match quiet {
                Some(gap) => match tokio::time::timeout(gap, updates.recv()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => updates.recv().await,
            };
            let Some(update) = next else { break };
            tracker.apply(&update);
            progress.update(&update);
        }
    };
    if tokio::time::timeout(limit, drain).await.is_err() {
        tracing::debug!("status stream still open after the solve; closing it");
    }
}

/// The request the Dockerfile frontend makes for the build context once it
/// has read the ignore file: the whole `context` directory without what the
/// ignore file excludes (the Dockerfile's own `<name>.dockerignore` first,
/// then the context's `.dockerignore`). None without a local context, or
/// when the ignore file cannot be read (the daemon's own request says then).
fn expected_context_request(dirs: &LocalDirs, prepared: &PreparedBuild) -> Option<DiffCopyRequest> {
    let context = dirs.dir("context")?;
    let dockerfile = dirs
        .dir("dockerfile")
        .zip(prepared.frontend_attr("filename"))
        .map(|(dir, name)| dir.join(name));
    let patterns = match load_dockerignore(context, dockerfile.as_deref()) {
        Ok(ignore) => ignore.map(|ignore| ignore.patterns).unwrap_or_default(),
        Err(err) => {
            tracing::debug!(error = %err, "no early walk of the context");
            return None;
        }
    };
    Some(DiffCopyRequest {
        dir_name: "context".into(),
        exclude_patterns: patterns,
        ..DiffCopyRequest::default()
    })
}

/// Names of the steps that export (or push) the result.
const EXPORT_STEPS: [&str; 4] = ["exporting", "pushing", "writing image", "naming to"];

/// The span of the export steps, first start to last finish, by the daemon's
/// clock; zero when none finished.
fn export_span(tracker: &Tracker) -> Duration {
    let mut first = None;
    let mut last = None;
    for (_, vertex) in tracker.iter() {
        if !EXPORT_STEPS.iter().any(|p| vertex.name.starts_with(p)) {
            continue;
        }
        if let (Some(started), Some(completed)) = (vertex.started, vertex.completed) {
            first = Some(first.map_or(started, |f: std::time::SystemTime| f.min(started)));
            last = Some(last.map_or(completed, |l: std::time::SystemTime| l.max(completed)));
        }
    }
    match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first).unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// What a build was doing, for an error that interrupts it: the context
/// upload if one is unfinished, the export (or push) if its step has started
/// and not finished, otherwise the solve.
pub(crate) fn build_stage(
    tracker: &Tracker,
    local_dirs: &crate::session::context_sync::LocalDirs,
) -> &'static str {
    if local_dirs.upload_unfinished() {
        return "uploading the build context";
    }
    let exporting = tracker.iter().any(|(_, vertex)| {
        vertex.started.is_some()
            && vertex.completed.is_none()
            && EXPORT_STEPS.iter().any(|p| vertex.name.starts_with(p))
    });
    if exporting {
        "exporting/pushing"
    } else {
        "solving"
    }
}

/// Writes the files a successful build leaves on this machine: the metadata
/// and the image ID ([`BuildResult::image_id`]). Their
/// directories were checked before the build started.
fn write_result_files(options: &BuildOptions, result: &BuildResult) -> Result<()> {
    if let Some(path) = &options.metadata_file {
        result.write_metadata_file(path)?;
    }
    if let (Some(path), Some(image_id)) = (&options.iid_file, result.image_id()) {
        std::fs::write(path, image_id).map_err(|err| Error::io(path, err))?;
    }
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Client {
    /// Runs a Dockerfile build, discarding progress.
    pub async fn build(&self, options: &BuildOptions) -> Result<BuildResult> {
        self.build_with_progress(options, &mut Quiet).await
    }

    /// Runs a Dockerfile build, handing progress to `progress` as it arrives.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), cicd_agents_buildkit::Error> {
    /// use cicd_agents_buildkit::{build::BuildOptions, progress::ProgressMode, Client};
    ///
    /// let client = Client::connect("docker://").await?;
    /// let mut progress = ProgressMode::Plain.stderr_sink()?;
    /// let result = client
    ///     .build_with_progress(&BuildOptions::local(".").tag("app:dev"), progress.as_mut())
    ///     .await?;
    /// println!("{:?}", result.digest);
    /// # Ok(()) }
    /// ```
    pub async fn build_with_progress(
        &self,
        options: &BuildOptions,
        progress: &mut (dyn ProgressSink + '_),
    ) -> Result<BuildResult> {
        self.build_prepared(&options.prepare()?, progress).await
    }

    /// Runs a build already checked and lowered by [`BuildOptions::prepare`]
    /// (front ends that reject bad input before dialling use this so nothing is
    /// checked twice), handing progress to `progress`.
    pub async fn build_prepared(
        &self,
        prepared: &PreparedBuild,
        progress: &mut (dyn ProgressSink + '_),
    ) -> Result<BuildResult> {
        let started = std::time::Instant::now();
        let dialled = self.take_connect_time();
        // The context's walk needs nothing from the daemon: it starts first and
        // runs while the daemon is asked its version, the session opens and the
        // daemon reads the Dockerfile; the daemon's request uses it if it asks
        // for exactly that.
        let local_dirs = prepared.local_dirs();
        if let Some(request) = expected_context_request(&local_dirs, prepared) {
            local_dirs.speculate(request);
        }
        // The daemon is asked about itself only when the request depends on its answer (the
        // round trip, ~5-25 ms, is otherwise on the build's critical path).
        let daemon = if prepared.needs_daemon_info(self.address().is_docker()) {
            self.daemon_info().await?
        } else {
            DaemonInfo::not_asked(self.address().to_string())
        };
        let mut timings = BuildTimings {
            connect: dialled + started.elapsed(),
            ..BuildTimings::default()
        };
        let plan = SolvePlan::from_prepared_with_dirs(
            prepared,
            &daemon,
            self.address().is_docker(),
            local_dirs,
        )?;
        let build_ref = plan.request.r#ref.clone();
        tracing::debug!(build = %build_ref, session = %plan.session.id, "starting build");
        let session_started = std::time::Instant::now();
        let session_start = plan.session.start(self);

        let (updates_tx, mut updates_rx) = mpsc::channel::<StatusUpdate>(256);
        let mut control = self.control();
        let status_ref = build_ref.clone();
        let address = self.address().to_string();
        // A broken connection seen by the status stream: reported if the solve
        // itself ends without saying why.
        let (status_lost_tx, status_lost_rx) = tokio::sync::oneshot::channel::<Error>();
        let status_task = AbortOnDrop(tokio::spawn(async move {
            let mut stream = match control.status(StatusRequest { r#ref: status_ref }).await {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    tracing::debug!(%address, %status, "no build progress");
                    if let Some(lost) =
                        Error::from_connection_status(&address, "reading progress", &status)
                    {
                        let _ = status_lost_tx.send(lost);
                    }
                    return;
                }
            };
            loop {
                match stream.message().await {
                    Ok(Some(response)) => {
                        if updates_tx.send(StatusUpdate::from(response)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%address, %status, "build progress stream failed");
                        if let Some(lost) =
                            Error::from_connection_status(&address, "reading progress", &status)
                        {
                            let _ = status_lost_tx.send(lost);
                        }
                        break;
                    }
                }
            }
        }));

        let mut control = self.control();
        let request = plan.request;
        // The solve request goes out while the session opens, as BuildKit's
        // own client sends it: the daemon waits (seconds) for the session a
        // request names when it first needs it, so the session's dial is off
        // the critical path. A session that fails to open drops the solve,
        // which cancels it on the daemon.
        let solve = control.solve(request);
        tokio::pin!(solve);
        tokio::pin!(session_start);
        let mut answered = None;
        let session = loop {
            tokio::select! {
                session = &mut session_start => break session?,
                outcome = &mut solve, if answered.is_none() => answered = Some(outcome),
            }
        };
        timings.session_start = session_started.elapsed();
        let session_up = std::time::Instant::now();
        let mut tracker = Tracker::default();
        let mut updates_open = true;
        let mut idle = tokio::time::interval(IDLE_TICK);
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outcome = loop {
            if let Some(outcome) = answered.take() {
                break outcome;
            }
            tokio::select! {
                biased;
                update = updates_rx.recv(), if updates_open => match update {
                    Some(update) => {
                        tracker.apply(&update);
                        progress.update(&update);
                        idle.reset();
                    }
                    None => updates_open = false,
                },
                outcome = &mut solve => answered = Some(outcome),
                _ = idle.tick() => progress.idle(),
            }
        };
        timings.solve = session_up.elapsed();
        tracing::debug!(build = %build_ref, ok = outcome.is_ok(), "the daemon answered the solve");
        // Let the status stream deliver its last updates (it ends once the
        // daemon has finished the job), but not forever.
        if updates_open {
            let (limit, quiet) = match outcome {
                Ok(_) => (STATUS_DRAIN, None),
                Err(_) => (FAILED_DRAIN, Some(FAILED_DRAIN_QUIET)),
            };
            drain_status(&mut updates_rx, &mut tracker, progress, limit, quiet).await;
            tracing::debug!(build = %build_ref, "status stream drained");
        }
        drop(status_task);
        (timings.context_walk, timings.context_transfer) = session.local_dirs.times();
        timings.export = export_span(&tracker).min(timings.solve);
        timings.total = dialled + started.elapsed();
        progress.timings(&timings);
        progress.finish();
        let export_errors = session.exports.errors();
        let context_transfer = session.local_dirs.transferred();
        let stage = build_stage(&tracker, &session.local_dirs);
        session.close();
        tracing::debug!(build = %build_ref, ?context_transfer, "build finished");

        let response = match outcome {
            Ok(response) => response.into_inner(),
            Err(status) => {
                if let Some(lost) = Error::from_connection_status(self.address(), stage, &status) {
                    tracing::debug!(build = %build_ref, error = %lost, "connection lost during the build");
                    return Err(lost);
                }
                if status.code() == tonic::Code::Cancelled {
                    return Err(Error::Cancelled);
                }
                if status.code() == tonic::Code::Unavailable {
                    // The daemon gave up on us; a status stream that broke says why.
                    let mut status_lost_rx = status_lost_rx;
                    if let Ok(lost) = status_lost_rx.try_recv() {
                        return Err(lost);
                    }
                    return Err(Error::rpc("Solve", self.address(), status));
                }
                let mut error = BuildError::from_status(&status, &tracker);
                if let Some(export) = export_errors.first() {
                    error.message = format!("{} (writing the export: {export})", error.message);
                }
                return Err(Error::Build(Box::new(error)));
            }
        };
        if let Some(export) = export_errors.first() {
            return Err(Error::Session(format!(
                "the build finished but its export failed: {export}"
            )));
        }
        let mut result =
            BuildResult::new(build_ref, response.exporter_response.into_iter().collect());
        result.context_transfer = context_transfer;
        result.timings = timings;
        write_result_files(prepared.options(), &result)?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::progress::VertexUpdate;
    use crate::session::context_sync::LocalDirs;

    fn vertex(name: &str, done: bool) -> StatusUpdate {
        StatusUpdate {
            vertexes: vec![VertexUpdate {
                digest: name.into(),
                name: name.into(),
                inputs: Vec::new(),
                cached: false,
                started: Some(SystemTime::now()),
                completed: done.then(SystemTime::now),
                error: String::new(),
            }],
            ..Default::default()
        }
    }

    /// A refused request's status stream stays open and silent: the drain
    /// after a failed solve gives up after the quiet gap, not the 5 s drain,
    /// and still delivers what was already sent.
    #[tokio::test]
    async fn a_failed_solve_drains_only_what_keeps_coming() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.send(vertex("[2/2] RUN false", true)).await.unwrap();
        let mut tracker = Tracker::default();
        let mut sink = Quiet;
        let started = std::time::Instant::now();
        drain_status(
            &mut rx,
            &mut tracker,
            &mut sink,
            FAILED_DRAIN,
            Some(FAILED_DRAIN_QUIET),
        )
        .await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(600), "drained for {took:?}");
        assert_eq!(tracker.iter().count(), 1);
        drop(tx);
    }

    #[test]
    fn the_stage_follows_the_steps_under_way() {
        let dirs = LocalDirs::default();
        let mut tracker = Tracker::default();
        assert_eq!(build_stage(&tracker, &dirs), "solving");
        tracker.apply(&vertex("[2/2] RUN make", false));
        assert_eq!(build_stage(&tracker, &dirs), "solving");
        tracker.apply(&vertex("exporting to image", false));
        assert_eq!(build_stage(&tracker, &dirs), "exporting/pushing");
        tracker.apply(&vertex("exporting to image", true));
        assert_eq!(build_stage(&tracker, &dirs), "solving");
    }

    #[test]
    fn the_export_spans_the_export_steps() {
        let at = |ms: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        let step = |name: &str, from: u64, to: u64| StatusUpdate {
            vertexes: vec![VertexUpdate {
                digest: name.into(),
                name: name.into(),
                inputs: Vec::new(),
                cached: false,
                started: at(from),
                completed: at(to),
                error: String::new(),
            }],
            ..Default::default()
        };
        let mut tracker = Tracker::default();
        assert_eq!(export_span(&tracker), Duration::ZERO);
        tracker.apply(&step("[1/2] FROM x", 0, 500));
        tracker.apply(&step("exporting to image", 1000, 1300));
        tracker.apply(&step("pushing layers", 1100, 1700));
        assert_eq!(export_span(&tracker), Duration::from_millis(700));
    }
}
