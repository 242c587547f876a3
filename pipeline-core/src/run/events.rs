//! Steps and events of a run, and where events go ([`EventSink`]).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// The steps of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Load the tokens, resolve the source ref to a commit, check that the chart repository
    /// and branch are reachable. Nothing is built or written.
    Prepare,
    /// Build the image; with `push: true` the image exporter pushes it (and the registry
    /// cache is exported) as part of the build.
    Build,
    /// Clone the chart repository and edit the values files.
    UpdateChart,
    /// Commit and push the edit (re-applied on the new tip if the branch moved).
    Commit,
}

impl Step {
    /// The step's name as shown and serialised (`prepare`, `build`, `update-chart`, `commit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Build => "build",
            Step::UpdateChart => "update-chart",
            Step::Commit => "commit",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum StepOutcome {
    /// It did its work.
    Succeeded,
    /// It ran and found nothing to do (the chart already holds the new values).
    NoChange,
    /// Dry run: it showed what it would do.
    DryRun,
    /// It did not run.
    Skipped {
        /// Why.
        reason: String,
    },
    /// It failed.
    Failed {
        /// The error (never contains a token).
        error: String,
    },
}

impl StepOutcome {
    /// A step that failed with `error`.
    pub(crate) fn failed(error: &impl std::fmt::Display) -> Self {
        StepOutcome::Failed {
            error: error.to_string(),
        }
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepOutcome::Succeeded => f.write_str("done"),
            StepOutcome::NoChange => f.write_str("no change"),
            StepOutcome::DryRun => f.write_str("dry run"),
            StepOutcome::Skipped { reason } => write!(f, "skipped ({reason})"),
            StepOutcome::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

pub(crate) use cicd_agents_types::duration::serialize_seconds as seconds;

/// Something that happened during a run. Serialises as JSON with an `event` field
/// (`run-started`, `step-started`, …) and durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    /// The run began.
    RunStarted {
        /// The pipeline's name.
        pipeline: String,
        /// Whether this is a dry run.
        dry_run: bool,
    },
    /// A step began.
    StepStarted {
        /// The step.
        step: Step,
    },
    /// A step reports progress: build steps as BuildKit finishes them, the resolved source
    /// commit, values changed, a push retried, …
    StepProgress {
        /// The step.
        step: Step,
        /// One line of text.
        message: String,
    },
    /// A step ended.
    StepFinished {
        /// The step.
        step: Step,
        /// How long it took.
        #[serde(rename = "duration_seconds", serialize_with = "seconds")]
        duration: Duration,
        /// How it ended.
        outcome: StepOutcome,
    },
    /// The source ref was resolved to a commit.
    SourceResolved {
        /// The ref.
        git_ref: String,
        /// Its commit.
        commit: String,
    },
    /// The daemon that runs the build was chosen: the one daemon given, or the pool's
    /// daemon for the build's routing key (sent when the build ends, with the daemons passed
    /// over first).
    BuilderChosen {
        /// The daemon's address.
        address: String,
        /// Daemons of the pool passed over before it, in order, and why.
        passed_over: Vec<PassedOver>,
    },
    /// The image was built (and pushed).
    ImageBuilt {
        /// The image names.
        images: Vec<String>,
        /// The manifest (or index) digest.
        digest: Option<String>,
        /// Whether it was pushed.
        pushed: bool,
    },
    /// The chart step ended: `commit` is the pushed commit, `None` when nothing changed.
    ChartCommitted {
        /// The commit id.
        commit: Option<String>,
        /// The branch pushed to.
        branch: String,
    },
    /// The run ended.
    RunFinished {
        /// Whether every step succeeded.
        success: bool,
        /// How long the run took.
        #[serde(rename = "duration_seconds", serialize_with = "seconds")]
        duration: Duration,
    },
}

impl RunEvent {
    /// Whether the build step emits this event while it runs (its progress, the daemon
    /// chosen): what a run holds back while its build runs ahead of `prepare`.
    pub(crate) fn is_build_event(&self) -> bool {
        matches!(
            self,
            RunEvent::StepProgress {
                step: Step::Build,
                ..
            } | RunEvent::BuilderChosen { .. }
        )
    }
}

/// A daemon of a builder pool that was passed over, and why (it did not answer its health
/// check, or was lost during the build).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassedOver {
    /// The daemon's address.
    pub address: String,
    /// Why it was passed over (never contains a token).
    pub reason: String,
}

impl fmt::Display for PassedOver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.address, self.reason)
    }
}

/// Receives run events. Called from the run's task and, during the chart step, from a
/// blocking thread: keep it quick.
///
/// Closures, `std::sync::mpsc::Sender<RunEvent>` and
/// `tokio::sync::mpsc::UnboundedSender<RunEvent>` are sinks:
///
/// ```
/// use cicd_agents_pipeline::run::{EventSink, RunEvent, Step};
///
/// let (tx, rx) = std::sync::mpsc::channel::<RunEvent>();
/// tx.event(&RunEvent::StepStarted { step: Step::Build });
/// assert_eq!(rx.recv().ok(), Some(RunEvent::StepStarted { step: Step::Build }));
///
/// let print = |event: &RunEvent| eprintln!("{event:?}");
/// print.event(&RunEvent::StepStarted { step: Step::Commit });
/// ```
pub trait EventSink: Send + Sync {
    /// One event.
    fn event(&self, event: &RunEvent);
}

impl<F: Fn(&RunEvent) + Send + Sync> EventSink for F {
    fn event(&self, event: &RunEvent) {
        self(event)
    }
}

impl EventSink for std::sync::mpsc::Sender<RunEvent> {
    fn event(&self, event: &RunEvent) {
        let _ = self.send(event.clone());
    }
}

impl EventSink for tokio::sync::mpsc::UnboundedSender<RunEvent> {
    fn event(&self, event: &RunEvent) {
        let _ = self.send(event.clone());
    }
}
