//! The final report of a run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::build::BuildPlan;
use super::events::{seconds, PassedOver, Step, StepOutcome};
use cicd_agents_gitops::chart::{ChartOutcome, ChartStatus};

/// The source that was (or would be) built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// The context as BuildKit got it (`URL#ref[:subdir]` or a directory).
    pub context: String,
    /// The git ref, for git sources.
    pub git_ref: Option<String>,
    /// The commit the ref pointed at when the run checked it (git sources).
    pub commit: Option<String>,
}

/// The build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    /// What was (or would be) built.
    pub plan: BuildPlan,
    /// Image names.
    pub images: Vec<String>,
    /// The image manifest (or index) digest, when built.
    pub digest: Option<String>,
    /// Whether the image was pushed.
    pub pushed: bool,
    /// The daemon that ran the build (with `build.pool`, the pool's choice).
    pub builder: Option<String>,
    /// Daemons of the pool passed over before `builder`, in order, and why.
    pub passed_over: Vec<PassedOver>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// How it ended.
    pub outcome: StepOutcome,
    /// How long it took.
    #[serde(rename = "duration_seconds", serialize_with = "seconds")]
    pub duration: Duration,
}

/// The report of a run, also for failed runs (see [`super::RunFailure`]). Serialises to JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The pipeline's name.
    pub pipeline: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Whether every step succeeded.
    pub success: bool,
    /// The error of a failed run.
    pub error: Option<String>,
    /// Parameter values used.
    pub parameters: BTreeMap<String, String>,
    /// The source.
    pub source: SourceReport,
    /// The build.
    pub build: BuildReport,
    /// The chart update (`None` without a chart, or when it did not run).
    pub chart: Option<ChartOutcome>,
    /// Every step, in order, including those that did not run.
    pub steps: Vec<StepReport>,
    /// How long the run took.
    #[serde(rename = "duration_seconds", serialize_with = "seconds")]
    pub duration: Duration,
}

impl RunReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The pushed image digest.
    pub fn digest(&self) -> Option<&str> {
        self.build.digest.as_deref()
    }

    /// The chart commit, if one was pushed.
    pub fn chart_commit(&self) -> Option<&str> {
        self.chart.as_ref().and_then(|c| c.commit.as_deref())
    }
}

/// A summary for people: images, digest, chart commit (or "no change"), durations; for dry
/// runs the build plan and the values diff.
impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.success, self.dry_run) {
            (true, true) => "dry run",
            (true, false) => "succeeded",
            (false, _) => "FAILED",
        };
        writeln!(
            f,
            "pipeline {}: {status} in {:.1}s",
            self.pipeline,
            self.duration.as_secs_f64()
        )?;
        match (&self.source.git_ref, &self.source.commit) {
            (Some(r), Some(c)) => writeln!(f, "source:  {} ({r} = {c})", self.source.context)?,
            _ => writeln!(f, "source:  {}", self.source.context)?,
        }
        if self.dry_run {
            writeln!(f, "\nbuild it would run:")?;
            for line in self.build.plan.to_string().lines() {
                writeln!(f, "  {line}")?;
            }
        } else {
            for image in &self.build.images {
                writeln!(
                    f,
                    "image:   {image}{}",
                    if self.build.pushed { " (pushed)" } else { "" }
                )?;
            }
            if let Some(d) = &self.build.digest {
                writeln!(f, "digest:  {d}")?;
            }
            if let Some(builder) = &self.build.builder {
                writeln!(f, "builder: {builder}")?;
            }
            for p in &self.build.passed_over {
                writeln!(f, "  passed over {p}")?;
            }
        }
        if let Some(chart) = &self.chart {
            let what = match chart.status {
                ChartStatus::Committed => format!(
                    "commit {} on {}",
                    chart.commit.as_deref().unwrap_or(""),
                    chart.branch
                ),
                ChartStatus::NoChange => format!("no change on {}", chart.branch),
                ChartStatus::DryRun => format!("would commit to {}", chart.branch),
            };
            writeln!(f, "chart:   {} {what}", chart.repo)?;
            for c in &chart.changes {
                if c.changed {
                    writeln!(f, "  {} {}: {} -> {}", c.file, c.key, c.old, c.new)?;
                } else {
                    writeln!(f, "  {} {}: {} (unchanged)", c.file, c.key, c.new)?;
                }
            }
            if let Some(diff) = &chart.diff {
                if diff.is_empty() {
                    writeln!(
                        f,
                        "\nvalues diff: none (the chart already holds these values)"
                    )?;
                } else {
                    writeln!(f, "\nvalues diff it would commit:")?;
                    f.write_str(diff)?;
                    if !diff.ends_with('\n') {
                        writeln!(f)?;
                    }
                }
            }
        }
        writeln!(f, "steps:")?;
        for s in &self.steps {
            writeln!(
                f,
                "  {:<13}{:>7.1}s  {}",
                s.step.as_str(),
                s.duration.as_secs_f64(),
                s.outcome
            )?;
        }
        if let Some(e) = &self.error {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}
