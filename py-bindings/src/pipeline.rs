//! `Pipeline` binds the pipeline definition (`definition::PipelineDefinition`) and its
//! runner (`run::Runner`) for Python: `Pipeline.from_file(path).run(...)`, and its
//! `RunReport`.

use std::path::PathBuf;

use std::sync::Arc;

use cicd_agents_pipeline::definition::{parse_override, PipelineDefinition};
use cicd_agents_pipeline::run::{
    EventSink, RunEvent, RunFailure, RunReport as RustRunReport, Runner,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyString};

use crate::client::Client;
use crate::convert::{duration, str_list, str_map, to_dict, type_name};
use crate::errors;
use crate::progress::{CallbackFailure, Progress};
use crate::runtime::{awaitable, catch_panic, runtime, Task};
use tokio::sync::oneshot;

/// A pipeline run's report (``Pipeline.run()``); ``to_dict()`` / ``to_json()``
/// give the full JSON report the command line writes.
#[pyclass(module = "cicd_agents", frozen)]
pub struct RunReport {
    inner: RustRunReport,
}

#[pymethods]
impl RunReport {
    /// The pipeline's name.
    #[getter]
    fn pipeline(&self) -> &str {
        &self.inner.pipeline
    }
    /// Whether this was a dry run.
    #[getter]
    fn dry_run(&self) -> bool {
        self.inner.dry_run
    }
    /// Whether every step succeeded.
    #[getter]
    fn success(&self) -> bool {
        self.inner.success
    }
    /// The error of a failed run, else None.
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.error.as_deref()
    }
    /// The parameter values used.
    #[getter]
    fn parameters(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.parameters.clone()
    }
    /// The pushed image digest, or None.
    #[getter]
    fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }
    /// The image names built.
    #[getter]
    fn images(&self) -> Vec<String> {
        self.inner.build.images.clone()
    }
    /// The daemon that ran the build (on a pool, the pool's choice), or None.
    #[getter]
    fn builder(&self) -> Option<&str> {
        self.inner.build.builder.as_deref()
    }
    /// The pool daemons passed over before ``builder``, as ``(address, reason)`` pairs.
    #[getter]
    fn passed_over(&self) -> Vec<(String, String)> {
        self.inner
            .build
            .passed_over
            .iter()
            .map(|p| (p.address.clone(), p.reason.clone()))
            .collect()
    }
    /// The resolved source commit, or None.
    #[getter]
    fn source_commit(&self) -> Option<&str> {
        self.inner.source.commit.as_deref()
    }
    /// The chart commit pushed, or None (no change, dry run, no chart).
    #[getter]
    fn chart_commit(&self) -> Option<&str> {
        self.inner.chart_commit()
    }
    /// The values diff of a dry run, or None.
    #[getter]
    fn diff(&self) -> Option<&str> {
        self.inner.chart.as_ref().and_then(|c| c.diff.as_deref())
    }
    /// The report as a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    /// The report as pretty-printed JSON.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }
    /// The summary the command line prints.
    fn __str__(&self) -> String {
        self.inner.to_string()
    }
    fn __repr__(&self) -> String {
        format!(
            "RunReport(pipeline={:?}, success={}, digest={}, chart_commit={})",
            self.inner.pipeline,
            if self.inner.success { "True" } else { "False" },
            crate::convert::repr_opt(self.inner.digest()),
            crate::convert::repr_opt(self.inner.chart_commit())
        )
    }
}

/// Sends run events to a Python callable as dicts (the JSON events of the CLI).
struct EventCallback {
    callback: Py<PyAny>,
    failure: Arc<CallbackFailure>,
}

impl EventSink for EventCallback {
    fn event(&self, event: &RunEvent) {
        let outcome = Python::try_attach(|py| -> PyResult<()> {
            self.callback.call1(py, (to_dict(py, event)?,))?;
            Ok(())
        });
        if let Some(Err(err)) = outcome {
            self.failure.set(err);
        }
    }
}

/// Parameter overrides: a mapping ``{name: value}`` or ``"name=value"`` strings.
fn overrides(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if value.cast::<PyMapping>().is_ok() {
        return Ok(str_map(Some(value), "overrides")?.into_iter().collect());
    }
    str_list(Some(value), "overrides")?
        .iter()
        .map(|text| parse_override(text).map_err(errors::from_definition))
        .collect()
}

/// Where a run gets its daemon: an existing `Client`, an address, or the default resolution.
enum Daemon {
    Client(Box<cicd_agents_buildkit::Client>),
    Address(Option<String>),
    /// A `BuilderPool` given as `client`, or the definition's `build.pool`.
    Pool(Arc<cicd_agents_buildkit::BuilderPool>),
}

impl Daemon {
    fn from_arg(value: Option<&Bound<'_, PyAny>>) -> PyResult<Daemon> {
        match value.filter(|v| !v.is_none()) {
            None => Ok(Daemon::Address(None)),
            Some(v) => {
                if let Ok(client) = v.cast::<Client>() {
                    return Ok(Daemon::Client(Box::new(client.get().inner.clone())));
                }
                if v.is_instance_of::<PyString>() {
                    return Ok(Daemon::Address(Some(v.extract()?)));
                }
                if let Ok(pool) = v.cast::<crate::pool::BuilderPool>() {
                    return Ok(Daemon::Pool(pool.get().shared()));
                }
                Err(PyTypeError::new_err(format!(
                    "client must be a cicd_agents.Client, a BuilderPool, an address str or None, not {}",
                    type_name(v)
                )))
            }
        }
    }

    /// The daemon's address as the `"tty"` progress view names it (the command line names the
    /// connected client's address; a text address is resolved the same way).
    fn name(&self) -> String {
        match self {
            Daemon::Client(client) => client.address().to_string(),
            Daemon::Address(address) => cicd_agents_buildkit::Address::resolve(address.as_deref())
                .map(|a| a.to_string())
                .unwrap_or_default(),
            Daemon::Pool(pool) => {
                let mut addresses = pool.dns_addresses();
                addresses.extend(pool.addresses());
                format!("pool {}", addresses.join(","))
            }
        }
    }
}

/// How a run ended, before conversion to Python.
enum RunOutcome {
    Report(Box<RustRunReport>),
    Failed(RunFailure),
    Connect(cicd_agents_buildkit::Error),
}

/// A run's outcome, or `None` when a progress or events callback raised (its error is in
/// the `CallbackFailure`), as for builds.
type Outcome = Option<RunOutcome>;

/// A prepared run: the runner and how to reach the daemon.
struct PreparedRun {
    runner: Runner,
    daemon: Option<Daemon>,
    failure: Arc<CallbackFailure>,
}

impl PreparedRun {
    async fn execute(self) -> Outcome {
        let PreparedRun {
            mut runner,
            daemon,
            failure,
        } = self;
        let run = async {
            let result = match daemon {
                None => runner.dry_run().await,
                Some(Daemon::Pool(pool)) => runner.run_on_pool(&pool).await,
                Some(Daemon::Client(client)) => runner.run(&client).await,
                Some(Daemon::Address(address)) => {
                    let connected = cicd_agents_buildkit::Client::builder()
                        .address_opt(address)
                        .connect()
                        .await;
                    match connected {
                        Ok(client) => runner.run(&client).await,
                        Err(err) => return RunOutcome::Connect(err),
                    }
                }
            };
            match result {
                Ok(report) => RunOutcome::Report(Box::new(report)),
                Err(failure) => RunOutcome::Failed(failure),
            }
        };
        failure.race(run).await
    }
}

/// Starts a run on its own thread, driven by the shared runtime's handle, and
/// returns the receiver of its outcome. Dropping the receiver cancels the run
/// (the run future is dropped: a build is cancelled on the daemon).
///
/// `Runner::run`'s future is not `Send` (the runner's `Box<dyn ProgressSink>`
/// is borrowed across awaits), so it cannot be `tokio::spawn`ed; it is created
/// and polled on this thread instead.
fn spawn_run(prepared: PreparedRun) -> PyResult<oneshot::Receiver<Result<Outcome, String>>> {
    let handle = runtime()?.handle().clone();
    let (sender, receiver) = oneshot::channel();
    std::thread::Builder::new()
        .name("cicd-agents-pipeline".into())
        .spawn(move || {
            handle.block_on(async move {
                let mut sender = sender;
                let outcome = {
                    let run = catch_panic(prepared.execute());
                    tokio::pin!(run);
                    tokio::select! {
                        outcome = &mut run => Some(outcome),
                        _ = sender.closed() => None,
                    }
                };
                if let Some(outcome) = outcome {
                    let _ = sender.send(outcome);
                }
            })
        })
        .map_err(|err| errors::internal(format!("cannot start the pipeline thread: {err}")))?;
    Ok(receiver)
}

/// The outcome the run thread sent.
fn received(
    outcome: Result<Result<Outcome, String>, oneshot::error::RecvError>,
) -> PyResult<Outcome> {
    match outcome {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(panic)) => Err(errors::internal(format!("panic: {panic}"))),
        Err(_) => Err(errors::Cancelled::new_err("the pipeline run was stopped")),
    }
}

/// Turns a finished (or waited-for) run into the Python result: a callback's error wins, as
/// for builds (`CallbackFailure::outcome`).
fn finish_run(outcome: PyResult<Outcome>, failure: &CallbackFailure) -> PyResult<RunReport> {
    match failure.outcome(outcome)? {
        RunOutcome::Report(report) => Ok(RunReport { inner: *report }),
        RunOutcome::Failed(RunFailure { error, report }) => {
            let err = errors::from_run(error);
            Python::attach(|py| -> PyResult<()> {
                let report = Py::new(py, RunReport { inner: *report })?;
                err.value(py).setattr("report", report)?;
                Ok(())
            })?;
            Err(err)
        }
        RunOutcome::Connect(err) => Err(errors::from_buildkit(err)),
    }
}

/// A pipeline definition: build an image from a source and update a chart.
///
/// ``Pipeline.from_file("pipeline.yaml")`` (relative paths in it are relative
/// to the file), ``Pipeline.from_yaml(text)`` or ``Pipeline.from_dict({...})``
/// (the same structure as the YAML file). ``run()`` runs it and returns a
/// ``RunReport``. Invalid definitions raise ``InvalidPipeline`` naming the
/// file, line, column and key (``err.line``, ``err.key``).
#[pyclass(module = "cicd_agents", frozen)]
pub struct Pipeline {
    definition: PipelineDefinition,
}

#[pymethods]
impl Pipeline {
    /// Reads a definition file (YAML); relative paths in it are relative to the file.
    ///
    /// The format (``examples/pipeline.yaml`` in the repository is a commented one;
    /// ``${name}`` is a parameter, overridden by ``run(overrides={name: value})``)::
    ///
    ///     name: app                          # required
    ///     description: ...                   # optional
    ///     parameters: {tag: latest}          # defaults of ${tag} etc.
    ///     source:                            # git: (BuildKit fetches it) or local: DIR
    ///       git: https://git.example/app.git
    ///       ref: refs/heads/main             # git only
    ///       context: .                       # subdirectory of the source
    ///       token-env: GIT_TOKEN             # or token-file: PATH; never an inline token
    ///       username: x-access-token
    ///     build:
    ///       images: [registry.example/app:${tag}]   # at least one
    ///       dockerfile: Dockerfile
    ///       push: true
    ///       cache: registry.example/app:cache       # or {ref, mode, import, export}
    ///       network: host
    ///       build-args: {K: V}
    ///       labels: {K: V}
    ///       target: final
    ///       platforms: [linux/amd64]
    ///       no-cache: false
    ///       docker-config: ~/.docker               # registry credentials
    ///     chart:                             # optional: write the new tag back via git
    ///       repo: https://git.example/chart.git
    ///       branch: main
    ///       push-branch: deploy               # default: branch
    ///       token-env: GIT_TOKEN              # or token-file
    ///       username: x-access-token
    ///       author: {name: CI, email: ci@example.com}
    ///       message: "deploy {image}:{new_tag}"  # also {old_tag} {digest} {source_commit}
    ///       values:
    ///         - file: charts/app/values.yaml
    ///           images:
    ///             - {repository: image.repository, tag: image.tag}  # key paths; also digest:, image:
    ///
    /// Unknown keys, a missing required key or a wrong type raise ``InvalidPipeline``
    /// with the file, line and key.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Pipeline> {
        let definition = py
            .detach(|| PipelineDefinition::from_file(&path))
            .map_err(errors::from_definition)?;
        Ok(Pipeline { definition })
    }

    /// Parses a definition from YAML text; ``origin`` names it in errors,
    /// ``base_dir`` is what relative paths are relative to (default: the
    /// working directory).
    #[staticmethod]
    #[pyo3(signature = (text, origin="<input>", *, base_dir=None))]
    fn from_yaml(text: &str, origin: &str, base_dir: Option<PathBuf>) -> PyResult<Pipeline> {
        let mut definition =
            PipelineDefinition::parse(text, origin).map_err(errors::from_definition)?;
        if let Some(dir) = base_dir {
            definition = definition.with_base_dir(dir);
        }
        Ok(Pipeline { definition })
    }

    /// A definition from a dict with the structure of the YAML file (written
    /// as JSON, which is YAML, and parsed like a file; error lines refer to
    /// that JSON, one key per line).
    #[staticmethod]
    #[pyo3(signature = (data, origin="<dict>", *, base_dir=None))]
    fn from_dict(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        origin: &str,
        base_dir: Option<PathBuf>,
    ) -> PyResult<Pipeline> {
        if data.cast::<PyMapping>().is_err() {
            return Err(PyTypeError::new_err(format!(
                "data must be a dict, not {}",
                type_name(data)
            )));
        }
        let json = py.import("json")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("indent", 2)?;
        let text: String = json
            .call_method("dumps", (data,), Some(&kwargs))?
            .extract()?;
        Self::from_yaml(&text, origin, base_dir)
    }

    /// The name used in errors (the file path).
    #[getter]
    fn origin(&self) -> &str {
        self.definition.origin()
    }

    /// The parameters and their defaults.
    #[getter]
    fn parameters(&self) -> std::collections::BTreeMap<String, String> {
        self.definition.parameters()
    }

    /// The pipeline resolved with ``overrides`` (``{name: value}`` or
    /// ``["name=value"]``), as a dict: every ``${...}`` substituted and every
    /// value validated.
    #[pyo3(signature = (overrides=None))]
    fn resolve<'py>(
        &self,
        py: Python<'py>,
        overrides: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let resolved = self
            .definition
            .resolve(self::overrides(overrides)?)
            .map_err(errors::from_definition)?;
        to_dict(py, &resolved)
    }

    /// Runs the pipeline: prepare, build (and push), update the chart, commit
    /// and push; returns the ``RunReport``.
    ///
    /// ``client``: a ``Client``, an address, a ``BuilderPool``, or None: the
    /// definition's ``build.pool`` if it has one (with its ``build.pool-tls``),
    /// else the default address resolution (not used by dry runs). On a pool,
    /// ``report.builder`` is the daemon that built and ``report.passed_over``
    /// those skipped; no daemon usable raises
    /// ``PoolUnavailable``. ``overrides``: parameter values.
    /// ``dry_run``: build and push nothing, commit nothing; the report has the
    /// build plan and the values ``diff``. ``progress``: BuildKit progress as
    /// for ``Client.build`` (a mode name or a callable receiving events).
    /// ``events``: a callable receiving each run event as a dict (``{"event":
    /// "step-started", ...}``). ``retry_timeout``: how long the chart commit keeps
    /// retrying when the branch moved (seconds or a ``timedelta``; default the
    /// definition's ``chart.retry-timeout``, else 2 minutes).
    ///
    /// Blocks with the GIL released; Ctrl-C cancels the run (a build is
    /// cancelled on the daemon; a chart push already under way finishes). A
    /// failed run raises the error of its cause (``BuildError``, ``AuthError``,
    /// ``GitPushRejected``, ``ValuesError``, ...) with the run's report as
    /// ``err.report``; an invalid override raises ``InvalidPipeline``.
    #[pyo3(signature = (client=None, *, overrides=None, dry_run=false, progress=None, events=None, retry_timeout=None, allow_insecure_http=false))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        client: Option<&Bound<'_, PyAny>>,
        overrides: Option<&Bound<'_, PyAny>>,
        dry_run: bool,
        progress: Option<&Bound<'_, PyAny>>,
        events: Option<&Bound<'_, PyAny>>,
        retry_timeout: Option<&Bound<'_, PyAny>>,
        allow_insecure_http: bool,
    ) -> PyResult<RunReport> {
        let prepared = self.prepare(
            client,
            overrides,
            dry_run,
            progress,
            events,
            retry_timeout,
            allow_insecure_http,
        )?;
        let failure = prepared.failure.clone();
        let outcome = spawn_run(prepared)?;
        // Dropping the receiver (Ctrl-C aborts this task) cancels the run.
        let waited = Task::spawn(outcome)?.wait(py).and_then(received);
        finish_run(waited, &failure)
    }

    /// ``await``-able ``run()`` with the same arguments; cancelling the task cancels the run.
    #[pyo3(signature = (client=None, *, overrides=None, dry_run=false, progress=None, events=None, retry_timeout=None, allow_insecure_http=false))]
    #[allow(clippy::too_many_arguments)]
    fn run_async<'py>(
        &self,
        py: Python<'py>,
        client: Option<&Bound<'py, PyAny>>,
        overrides: Option<&Bound<'py, PyAny>>,
        dry_run: bool,
        progress: Option<&Bound<'py, PyAny>>,
        events: Option<&Bound<'py, PyAny>>,
        retry_timeout: Option<&Bound<'py, PyAny>>,
        allow_insecure_http: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let prepared = self.prepare(
            client,
            overrides,
            dry_run,
            progress,
            events,
            retry_timeout,
            allow_insecure_http,
        )?;
        let failure = prepared.failure.clone();
        let outcome = spawn_run(prepared)?;
        awaitable(
            py,
            async move { finish_run(received(outcome.await), &failure) },
        )
    }

    fn __repr__(&self) -> String {
        format!("Pipeline(origin={:?})", self.definition.origin())
    }
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        client: Option<&Bound<'_, PyAny>>,
        overrides: Option<&Bound<'_, PyAny>>,
        dry_run: bool,
        progress: Option<&Bound<'_, PyAny>>,
        events: Option<&Bound<'_, PyAny>>,
        retry_timeout: Option<&Bound<'_, PyAny>>,
        allow_insecure_http: bool,
    ) -> PyResult<PreparedRun> {
        let resolved = self
            .definition
            .resolve(self::overrides(overrides)?)
            .map_err(errors::from_definition)?;
        // The definition's `build.pool` is used when no client is given, with its
        // `build.pool-tls`; a given client (a `BuilderPool` with its own TLS) wins.
        let daemon = if dry_run {
            None
        } else {
            match (Daemon::from_arg(client)?, &resolved.build.pool) {
                (Daemon::Address(None), Some(spec)) => Some(Daemon::Pool(Arc::new(
                    spec.builder_pool(spec.tls_options())
                        .map_err(crate::pool::from_pool)?,
                ))),
                (daemon, _) => Some(daemon),
            }
        };
        let progress = Progress::from_arg(
            progress,
            &daemon.as_ref().map(Daemon::name).unwrap_or_default(),
        )?;
        let failure = progress.failure.clone();
        let mut runner = Runner::new(resolved)
            .progress(progress.sink)
            .allow_insecure_http(allow_insecure_http);
        if let Some(callback) = events.filter(|e| !e.is_none()) {
            if !callback.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "events must be a callable, not {}",
                    type_name(callback)
                )));
            }
            runner = runner.events(EventCallback {
                callback: callback.clone().unbind(),
                failure: failure.clone(),
            });
        }
        if let Some(timeout) = retry_timeout.filter(|t| !t.is_none()) {
            runner = runner.retry_timeout(duration(timeout, "retry_timeout")?);
        }
        Ok(PreparedRun {
            runner,
            daemon,
            failure,
        })
    }
}
