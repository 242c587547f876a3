//! `BuildStream`: a running build whose progress events (or plain lines) are read by
//! iterating it.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};

use cicd_agents_buildkit::progress::{PlainRenderer, ProgressSink, StatusUpdate};
use pyo3::prelude::*;
use pyo3::types::PyString;
use tokio::task::JoinHandle;

use crate::errors;

use crate::progress::{events, CallbackFailure, Tee};
use crate::runtime::{catch_panic, runtime, TICK};

use super::{finish, run, BuildResult, Outcome, Prepared};

/// What the runtime task of a stream sends.
enum Message {
    Update(StatusUpdate),
    /// A line of plain progress output (`stream_logs=True`).
    Line(String),
    Done(Result<Outcome, String>),
}

/// Forwards updates to the stream's channel.
struct ChannelSink(Sender<Message>);

impl ProgressSink for ChannelSink {
    fn update(&mut self, update: &StatusUpdate) {
        let _ = self.0.send(Message::Update(update.clone()));
    }
}

/// Sends what the plain renderer writes to the stream's channel, line by line.
struct LineWriter {
    sender: Sender<Message>,
    partial: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let _ = self.sender.send(Message::Line(text));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a stream is.
enum StreamState {
    Running,
    Done(Py<BuildResult>),
    Failed(PyErr),
    Cancelled,
}

/// A running build whose progress events are read by iterating it.
///
/// Returned by ``Client.build_stream()``. Iterating yields ``VertexEvent``,
/// ``StatusEvent``, ``LogEvent`` and ``WarningEvent`` objects as they arrive
/// (waiting with the GIL released; Ctrl-C cancels the build). When the build
/// ends the iteration stops and ``result`` holds the ``BuildResult``; if it
/// failed, the iteration raises its error (e.g. ``BuildError``), and so does
/// every later ``wait()``.
///
/// ``wait()`` skips the remaining events and returns the result; ``cancel()``
/// cancels the build on the daemon. Used as a context manager, leaving the
/// block cancels a build that is still running; so does dropping the stream.
///
/// ``build(..., stream_logs=True)`` (python-on-whales' keyword) returns one
/// that yields the plain progress output's lines (``str``) instead of events.
#[pyclass(module = "cicd_agents")]
pub struct BuildStream {
    messages: Mutex<Receiver<Message>>,
    handle: JoinHandle<()>,
    pending: VecDeque<Py<PyAny>>,
    state: StreamState,
    failure: Arc<CallbackFailure>,
}

impl Drop for BuildStream {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl BuildStream {
    /// Starts the build; with `lines`, the stream yields plain progress lines.
    pub(crate) fn start(
        client: &cicd_agents_buildkit::Client,
        prepared: Prepared,
        lines: bool,
    ) -> PyResult<BuildStream> {
        let Prepared { options, progress } = prepared;
        let (sender, messages) = mpsc::channel();
        let reader: Box<dyn ProgressSink> = if lines {
            Box::new(PlainRenderer::new(LineWriter {
                sender: sender.clone(),
                partial: Vec::new(),
            }))
        } else {
            Box::new(ChannelSink(sender.clone()))
        };
        let sink = Tee(vec![reader, progress.sink]);
        let failure = progress.failure.clone();
        let client = client.clone();
        let handle = runtime()?.spawn(async move {
            let outcome = catch_panic(run(client, options, Box::new(sink), progress.failure)).await;
            let _ = sender.send(Message::Done(outcome));
        });
        Ok(BuildStream {
            messages: Mutex::new(messages),
            handle,
            pending: VecDeque::new(),
            state: StreamState::Running,
            failure,
        })
    }

    /// The next event, or `None` at the end. `keep_events: false` drops events.
    /// Once the build has failed, raises its error (again).
    fn next_event(&mut self, py: Python<'_>, keep_events: bool) -> PyResult<Option<Py<PyAny>>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            match &self.state {
                StreamState::Running => {}
                StreamState::Done(_) => return Ok(None),
                StreamState::Failed(err) => return Err(err.clone_ref(py)),
                StreamState::Cancelled => {
                    return Err(errors::Cancelled::new_err("the build was cancelled"))
                }
            }
            let messages = self
                .messages
                .get_mut()
                .map_err(|_| errors::internal("the event channel is poisoned"))?;
            match py.detach(move || messages.recv_timeout(TICK)) {
                Ok(Message::Update(update)) => {
                    if keep_events {
                        self.pending.extend(events(py, &update)?);
                    }
                }
                Ok(Message::Line(line)) => {
                    if keep_events {
                        self.pending
                            .push_back(PyString::new(py, &line).into_any().unbind());
                    }
                }
                Ok(Message::Done(outcome)) => {
                    let outcome =
                        outcome.map_err(|panic| errors::internal(format!("panic: {panic}")));
                    let ended =
                        finish(outcome, &self.failure).and_then(|result| Py::new(py, result));
                    match ended {
                        Ok(result) => self.state = StreamState::Done(result),
                        Err(err) => {
                            self.state = StreamState::Failed(err.clone_ref(py));
                            return Err(err);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(err) = py.check_signals() {
                        self.cancel_and_wait(py);
                        return Err(err);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.state = StreamState::Cancelled;
                }
            }
        }
    }

    fn cancel_and_wait(&mut self, py: Python<'_>) {
        self.handle.abort();
        self.state = StreamState::Cancelled;
        self.pending.clear();
        // Wait (briefly) until the task is gone, so its cancellation went out.
        if let Ok(messages) = self.messages.get_mut() {
            py.detach(move || {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                    if messages.recv_timeout(left).is_err() {
                        break;
                    }
                }
            });
        }
    }
}

#[pymethods]
impl BuildStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.next_event(py, true)
    }

    /// The ``BuildResult`` once the build has finished successfully, else None.
    #[getter]
    fn result(&self, py: Python<'_>) -> Option<Py<BuildResult>> {
        match &self.state {
            StreamState::Done(result) => Some(result.clone_ref(py)),
            _ => None,
        }
    }

    /// Whether the build has ended (successfully, failed or cancelled).
    #[getter]
    fn done(&self) -> bool {
        !matches!(self.state, StreamState::Running)
    }

    /// Waits for the build to end, discarding the events not read yet, and
    /// returns its ``BuildResult`` (or raises its error: the ``BuildError`` of
    /// a failed build, ``Cancelled`` after ``cancel()``).
    fn wait(&mut self, py: Python<'_>) -> PyResult<Py<BuildResult>> {
        self.pending.clear();
        while self.next_event(py, false)?.is_some() {}
        match &self.state {
            StreamState::Done(result) => Ok(result.clone_ref(py)),
            StreamState::Failed(err) => Err(err.clone_ref(py)),
            _ => Err(errors::Cancelled::new_err("the build was cancelled")),
        }
    }

    /// Cancels the build on the daemon (no-op once it has ended).
    fn cancel(&mut self, py: Python<'_>) {
        if matches!(self.state, StreamState::Running) {
            self.cancel_and_wait(py);
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.cancel(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = match self.state {
            StreamState::Running => "running",
            StreamState::Done(_) => "done",
            StreamState::Failed(_) => "failed",
            StreamState::Cancelled => "cancelled",
        };
        format!("BuildStream({state})")
    }
}
