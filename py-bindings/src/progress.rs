//! Build progress for Python: typed event objects (one per vertex, status,
//! log and warning of the library's `StatusUpdate`), and the progress sinks a
//! build can use (the library's stderr renderers, a Python callable, the
//! channel behind `build_stream`).

use std::sync::{Arc, Mutex};

use cicd_agents_buildkit::progress::{
    LogChunk, ProgressMode, ProgressSink, Quiet, StatusItem, StatusUpdate, VertexUpdate, Warning,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::convert::{datetime, to_dict, type_name};
use crate::errors;

/// A step of the build (a vertex of the build graph) started, finished, was
/// cached or failed.
#[pyclass(module = "cicd_agents", frozen)]
pub struct VertexEvent {
    inner: VertexUpdate,
}

#[pymethods]
impl VertexEvent {
    /// Always ``"vertex"``.
    #[getter]
    fn kind(&self) -> &'static str {
        "vertex"
    }
    /// The vertex digest; identifies the step across events.
    #[getter]
    fn digest(&self) -> &str {
        &self.inner.digest
    }
    /// The step's name, e.g. ``[2/3] RUN make``.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// Digests of the steps it depends on.
    #[getter]
    fn inputs(&self) -> Vec<String> {
        self.inner.inputs.clone()
    }
    /// Whether the result came from the cache.
    #[getter]
    fn cached(&self) -> bool {
        self.inner.cached
    }
    /// When it started (UTC ``datetime``), or None.
    #[getter]
    fn started<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.started)
    }
    /// When it finished (UTC ``datetime``), or None.
    #[getter]
    fn completed<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.completed)
    }
    /// Its error, or None if it did not fail.
    #[getter]
    fn error(&self) -> Option<&str> {
        Some(self.inner.error.as_str()).filter(|e| !e.is_empty())
    }
    /// The event as a JSON-compatible dict (timestamps as RFC 3339 strings).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tagged_dict(py, "vertex", &self.inner)
    }
    fn __repr__(&self) -> String {
        let state = if !self.inner.error.is_empty() {
            "error"
        } else if self.inner.cached {
            "cached"
        } else if self.inner.completed.is_some() {
            "done"
        } else if self.inner.started.is_some() {
            "started"
        } else {
            "pending"
        };
        format!("VertexEvent({:?}, {state})", self.inner.name)
    }
}

/// Progress of a counter within a step (bytes transferred, layers pushed).
#[pyclass(module = "cicd_agents", frozen)]
pub struct StatusEvent {
    inner: StatusItem,
}

#[pymethods]
impl StatusEvent {
    /// Always ``"status"``.
    #[getter]
    fn kind(&self) -> &'static str {
        "status"
    }
    /// Counter ID, e.g. a layer digest.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// Digest of the step it belongs to.
    #[getter]
    fn vertex(&self) -> &str {
        &self.inner.vertex
    }
    /// Human-readable name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// Progress so far.
    #[getter]
    fn current(&self) -> i64 {
        self.inner.current
    }
    /// Total, when known (else 0).
    #[getter]
    fn total(&self) -> i64 {
        self.inner.total
    }
    /// When it started (UTC ``datetime``), or None.
    #[getter]
    fn started<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.started)
    }
    /// When the daemon took this reading (UTC ``datetime``), or None.
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.timestamp)
    }
    /// When it finished (UTC ``datetime``), or None.
    #[getter]
    fn completed<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.completed)
    }
    /// The event as a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tagged_dict(py, "status", &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "StatusEvent({:?}, {}/{})",
            self.inner.id, self.inner.current, self.inner.total
        )
    }
}

/// Output a step printed.
#[pyclass(module = "cicd_agents", frozen)]
pub struct LogEvent {
    inner: LogChunk,
}

#[pymethods]
impl LogEvent {
    /// Always ``"log"``.
    #[getter]
    fn kind(&self) -> &'static str {
        "log"
    }
    /// Digest of the step that printed it.
    #[getter]
    fn vertex(&self) -> &str {
        &self.inner.vertex
    }
    /// 1 for stdout, 2 for stderr.
    #[getter]
    fn stream(&self) -> i64 {
        self.inner.stream
    }
    /// The raw bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.data)
    }
    /// The bytes decoded as UTF-8 (invalid sequences replaced).
    #[getter]
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner.data).into_owned()
    }
    /// When it was printed (UTC ``datetime``), or None.
    #[getter]
    fn timestamp<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.timestamp)
    }
    /// The event as a JSON-compatible dict (``data`` as text).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tagged_dict(py, "log", &self.inner)
    }
    fn __repr__(&self) -> String {
        format!("LogEvent({:?})", String::from_utf8_lossy(&self.inner.data))
    }
}

/// A warning about a step or the Dockerfile (e.g. a lint finding).
#[pyclass(module = "cicd_agents", frozen)]
pub struct WarningEvent {
    inner: Warning,
}

#[pymethods]
impl WarningEvent {
    /// Always ``"warning"``.
    #[getter]
    fn kind(&self) -> &'static str {
        "warning"
    }
    /// Digest of the step it is about.
    #[getter]
    fn vertex(&self) -> &str {
        &self.inner.vertex
    }
    /// Severity.
    #[getter]
    fn level(&self) -> i64 {
        self.inner.level
    }
    /// One-line summary.
    #[getter]
    fn short(&self) -> String {
        String::from_utf8_lossy(&self.inner.short).into_owned()
    }
    /// Details, one item per paragraph.
    #[getter]
    fn detail(&self) -> Vec<String> {
        self.inner.detail.clone()
    }
    /// Further reading, or an empty string.
    #[getter]
    fn url(&self) -> &str {
        &self.inner.url
    }
    /// The event as a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        tagged_dict(py, "warning", &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "WarningEvent({:?})",
            String::from_utf8_lossy(&self.inner.short)
        )
    }
}

/// The library's serde form of an event, with `"kind"` added.
fn tagged_dict<'py, T: serde::Serialize>(
    py: Python<'py>,
    kind: &str,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = to_dict(py, value)?;
    dict.set_item("kind", kind)?;
    Ok(dict)
}

/// One update as event objects, in the update's order: vertexes, statuses,
/// logs, warnings.
pub fn events(py: Python<'_>, update: &StatusUpdate) -> PyResult<Vec<Py<PyAny>>> {
    let mut out = Vec::with_capacity(
        update.vertexes.len() + update.statuses.len() + update.logs.len() + update.warnings.len(),
    );
    for vertex in &update.vertexes {
        out.push(
            Py::new(
                py,
                VertexEvent {
                    inner: vertex.clone(),
                },
            )?
            .into_any(),
        );
    }
    for status in &update.statuses {
        out.push(
            Py::new(
                py,
                StatusEvent {
                    inner: status.clone(),
                },
            )?
            .into_any(),
        );
    }
    for log in &update.logs {
        out.push(Py::new(py, LogEvent { inner: log.clone() })?.into_any());
    }
    for warning in &update.warnings {
        out.push(
            Py::new(
                py,
                WarningEvent {
                    inner: warning.clone(),
                },
            )?
            .into_any(),
        );
    }
    Ok(out)
}

/// An error raised by a progress callback (or a pipeline's events callback); the work is
/// cancelled and the error re-raised with its traceback. One mechanism for every caller:
/// `Client.build*`, `build_stream`, `BuilderPool.build*` and `Pipeline.run*` run their work
/// through [`race`](CallbackFailure::race) and turn what it gives into Python with
/// [`outcome`](CallbackFailure::outcome).
#[derive(Default)]
pub struct CallbackFailure {
    error: Mutex<Option<PyErr>>,
    notify: tokio::sync::Notify,
}

impl CallbackFailure {
    /// Records the first error and wakes `raised()`.
    pub fn set(&self, err: PyErr) {
        if let Ok(mut slot) = self.error.lock() {
            if slot.is_none() {
                *slot = Some(err);
            }
        }
        self.notify.notify_one();
    }

    fn is_set(&self) -> bool {
        self.error.lock().map(|slot| slot.is_some()).unwrap_or(true)
    }

    /// The callback's error, if it raised.
    pub fn take(&self) -> Option<PyErr> {
        self.error.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Resolves once a callback has raised.
    pub async fn raised(&self) {
        self.notify.notified().await
    }

    /// Runs `work` until it ends, or until a callback raises (then `None`: `work` is
    /// dropped, which cancels a build).
    pub async fn race<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            result = work => Some(result),
            _ = self.raised() => None,
        }
    }

    /// What a [`race`](CallbackFailure::race) gives Python, awaited directly (`Ok(raced)`)
    /// or through a blocking wait that can fail itself (Ctrl-C, a panic): the callback's
    /// error if one raised (it wins: the callback's exception is why the work ended), else
    /// the wait's error, else the work's outcome.
    pub fn outcome<T>(&self, waited: PyResult<Option<T>>) -> PyResult<T> {
        if let Some(err) = self.take() {
            return Err(err);
        }
        waited?.ok_or_else(|| {
            crate::errors::internal("the work stopped for a callback error that was lost")
        })
    }
}

/// Calls a Python callable with each event.
struct CallbackSink {
    callback: Py<PyAny>,
    failure: Arc<CallbackFailure>,
}

impl ProgressSink for CallbackSink {
    fn update(&mut self, update: &StatusUpdate) {
        if self.failure.is_set() {
            return;
        }
        let outcome = Python::try_attach(|py| -> PyResult<()> {
            for event in events(py, update)? {
                self.callback.call1(py, (event,))?;
            }
            Ok(())
        });
        if let Some(Err(err)) = outcome {
            self.failure.set(err);
        }
    }
}

/// Feeds several sinks.
pub struct Tee(pub Vec<Box<dyn ProgressSink>>);

impl ProgressSink for Tee {
    fn update(&mut self, update: &StatusUpdate) {
        for sink in &mut self.0 {
            sink.update(update);
        }
    }

    fn timings(&mut self, timings: &cicd_agents_buildkit::build::BuildTimings) {
        for sink in &mut self.0 {
            sink.timings(timings);
        }
    }

    fn finish(&mut self) {
        for sink in &mut self.0 {
            sink.finish();
        }
    }

    fn builder(&mut self, address: &str, passed_over: &[cicd_agents_buildkit::pool::Attempt]) {
        for sink in &mut self.0 {
            sink.builder(address, passed_over);
        }
    }
}

/// What the `progress=` argument asks for.
pub struct Progress {
    /// The sink to hand to the library.
    pub sink: Box<dyn ProgressSink>,
    /// Set when a callback raised.
    pub failure: Arc<CallbackFailure>,
}

impl Progress {
    /// From `progress=`: None (nothing), a mode name (``"auto"``, ``"plain"``,
    /// ``"tty"``, ``"quiet"``, ``"rawjson"``: the library's renderers on stderr, the
    /// ``"tty"`` view naming `daemon` in its header as the command line does; ``"tty"``
    /// is refused when stderr is not a terminal) or a callable receiving event objects.
    pub fn from_arg(value: Option<&Bound<'_, PyAny>>, daemon: &str) -> PyResult<Progress> {
        let failure = Arc::new(CallbackFailure::default());
        let sink: Box<dyn ProgressSink> = match value.filter(|v| !v.is_none()) {
            None => Box::new(Quiet),
            Some(value) if value.is_instance_of::<PyString>() => {
                let text: String = value.extract()?;
                text.parse::<ProgressMode>()
                    .and_then(|mode| mode.stderr_sink_for(daemon))
                    .map_err(errors::from_buildkit)?
            }
            Some(value) if value.is_callable() => Box::new(CallbackSink {
                callback: value.clone().unbind(),
                failure: failure.clone(),
            }),
            Some(value) => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "progress must be None, \"auto\", \"plain\", \"tty\", \"quiet\", \"rawjson\" or a callable, not {}",
                    type_name(value)
                )))
            }
        };
        Ok(Progress { sink, failure })
    }
}
