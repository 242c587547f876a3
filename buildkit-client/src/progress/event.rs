//! Typed progress events converted from `StatusResponse`.

use std::time::SystemTime;

use cicd_agents_proto::moby::buildkit::v1::StatusResponse;
use serde::{Serialize, Serializer};

use crate::control::{serialize_time_nanos, system_time};

/// One batch of progress from the daemon.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusUpdate {
    /// Steps that started, finished, were cached or failed.
    pub vertexes: Vec<VertexUpdate>,
    /// Progress counters within steps (bytes transferred, layers pushed).
    pub statuses: Vec<StatusItem>,
    /// Output of steps.
    pub logs: Vec<LogChunk>,
    /// Warnings (e.g. Dockerfile lint findings).
    pub warnings: Vec<Warning>,
}

/// The state of one step (a vertex of the build graph).
#[derive(Debug, Clone, Serialize)]
pub struct VertexUpdate {
    /// The vertex's digest; identifies the step across updates.
    pub digest: String,
    /// The step's name, e.g. `[2/3] RUN make`.
    pub name: String,
    /// Digests of the steps it depends on.
    pub inputs: Vec<String>,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// When it started.
    #[serde(serialize_with = "serialize_time_nanos")]
    pub started: Option<SystemTime>,
    /// When it finished.
    #[serde(serialize_with = "serialize_time_nanos")]
    pub completed: Option<SystemTime>,
    /// Its error, if it failed.
    pub error: String,
}

/// A counter within a step.
#[derive(Debug, Clone, Serialize)]
pub struct StatusItem {
    /// Counter ID, e.g. `transferring context:` or a layer digest.
    pub id: String,
    /// The step it belongs to.
    pub vertex: String,
    /// Human-readable name.
    pub name: String,
    /// Progress so far.
    pub current: i64,
    /// Total, when known.
    pub total: i64,
    /// When it started.
    #[serde(serialize_with = "serialize_time_nanos")]
    pub started: Option<SystemTime>,
    /// When the daemon took this reading.
    #[serde(serialize_with = "serialize_time_nanos")]
    pub timestamp: Option<SystemTime>,
    /// When it finished.
    #[serde(serialize_with = "serialize_time_nanos")]
    pub completed: Option<SystemTime>,
}

/// Output of a step.
#[derive(Debug, Clone, Serialize)]
pub struct LogChunk {
    /// The step.
    pub vertex: String,
    /// 1 = stdout, 2 = stderr.
    pub stream: i64,
    /// The bytes (rendered as text in JSON).
    #[serde(serialize_with = "lossy_text")]
    pub data: Vec<u8>,
    /// When it was printed.
    #[serde(serialize_with = "serialize_time_nanos")]
    pub timestamp: Option<SystemTime>,
}

/// A warning about a step or the Dockerfile.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// The step.
    pub vertex: String,
    /// Severity.
    pub level: i64,
    /// One-line summary.
    #[serde(serialize_with = "lossy_text")]
    pub short: Vec<u8>,
    /// Details.
    pub detail: Vec<String>,
    /// Further reading.
    pub url: String,
}

fn lossy_text<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(data))
}

impl From<StatusResponse> for StatusUpdate {
    fn from(response: StatusResponse) -> Self {
        StatusUpdate {
            vertexes: response
                .vertexes
                .into_iter()
                .map(|v| VertexUpdate {
                    digest: v.digest,
                    name: v.name,
                    inputs: v.inputs,
                    cached: v.cached,
                    started: system_time(v.started.as_ref()),
                    completed: system_time(v.completed.as_ref()),
                    error: v.error,
                })
                .collect(),
            statuses: response
                .statuses
                .into_iter()
                .map(|s| StatusItem {
                    id: s.id,
                    vertex: s.vertex,
                    name: s.name,
                    current: s.current,
                    total: s.total,
                    started: system_time(s.started.as_ref()),
                    timestamp: system_time(s.timestamp.as_ref()),
                    completed: system_time(s.completed.as_ref()),
                })
                .collect(),
            logs: response
                .logs
                .into_iter()
                .map(|l| LogChunk {
                    vertex: l.vertex,
                    stream: l.stream,
                    data: l.msg,
                    timestamp: system_time(l.timestamp.as_ref()),
                })
                .collect(),
            warnings: response
                .warnings
                .into_iter()
                .map(|w| Warning {
                    vertex: w.vertex,
                    level: w.level,
                    short: w.short,
                    detail: w
                        .detail
                        .into_iter()
                        .map(|d| String::from_utf8_lossy(&d).into_owned())
                        .collect(),
                    url: w.url,
                })
                .collect(),
        }
    }
}
