//! `cicd_agents.BuilderPool`: the library's builder pool (`cicd_agents_buildkit::pool`) for
//! Python. One client over several BuildKit daemons with sticky routing (rendezvous hashing
//! on a routing key), health checks and failover; `routing_key`, `PooledBuild`,
//! `EndpointHealth`, `Attempt` and the `PoolError` / `PoolUnavailable` exceptions mirror the
//! Rust names.

use std::sync::Arc;

use cicd_agents_buildkit::build::BuildOptions;
use cicd_agents_buildkit::pool::{
    routing_key as rust_routing_key, Attempt as RustAttempt, BuilderPool as RustPool,
    EndpointHealth as RustHealth, PoolError as RustPoolError, PooledBuild as RustPooledBuild,
};
use cicd_agents_buildkit::progress::ProgressSink;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::build::{build_context, BuildArgs, BuildResult, Keywords, Prepared};
use crate::client::Client;
use crate::convert::duration;
use crate::errors::{self, obj, with_attrs};
use crate::progress::CallbackFailure;
use crate::runtime::{awaitable, block_on, Task};

/// A daemon the pool passed over, and why.
#[pyclass(module = "cicd_agents", frozen)]
#[derive(Clone)]
pub struct Attempt {
    inner: RustAttempt,
}

#[pymethods]
impl Attempt {
    /// The daemon's address.
    #[getter]
    fn address(&self) -> &str {
        &self.inner.address
    }
    /// What went wrong (``"lost during the build: ..."`` for a daemon lost mid-build).
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }
    /// As a dict ``{"address": ..., "reason": ...}``.
    fn to_dict(&self) -> std::collections::BTreeMap<&'static str, String> {
        std::collections::BTreeMap::from([
            ("address", self.inner.address.clone()),
            ("reason", self.inner.reason.clone()),
        ])
    }
    fn __str__(&self) -> String {
        self.inner.to_string()
    }
    fn __repr__(&self) -> String {
        format!(
            "Attempt(address={:?}, reason={:?})",
            self.inner.address, self.inner.reason
        )
    }
}

pub(crate) fn attempts(tried: Vec<RustAttempt>) -> Vec<Attempt> {
    tried.into_iter().map(|inner| Attempt { inner }).collect()
}

/// A build the pool ran: its ``BuildResult``, the daemon that ran it and those passed over.
#[pyclass(module = "cicd_agents", frozen)]
pub struct PooledBuild {
    result: Py<BuildResult>,
    address: String,
    passed_over: Vec<RustAttempt>,
}

#[pymethods]
impl PooledBuild {
    /// The build's ``BuildResult``.
    #[getter]
    fn result(&self, py: Python<'_>) -> Py<BuildResult> {
        self.result.clone_ref(py)
    }
    /// The daemon that ran it.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }
    /// The daemons tried before, in order (``Attempt`` objects): those that failed their
    /// health check before the build started and those lost in the middle of it.
    #[getter]
    fn passed_over(&self) -> Vec<Attempt> {
        attempts(self.passed_over.clone())
    }
    fn __repr__(&self) -> String {
        let digest = self.result.get().inner.digest.clone();
        format!(
            "PooledBuild(address={:?}, digest={}, passed_over={})",
            self.address,
            crate::convert::repr_opt(digest.as_deref()),
            self.passed_over.len()
        )
    }
}

/// The health of one daemon of a pool (``BuilderPool.health()``).
#[pyclass(module = "cicd_agents", frozen)]
pub struct EndpointHealth {
    inner: RustHealth,
}

#[pymethods]
impl EndpointHealth {
    /// The daemon's address.
    #[getter]
    fn address(&self) -> &str {
        &self.inner.address
    }
    /// Whether it answered in time with at least one worker.
    #[getter]
    fn healthy(&self) -> bool {
        self.inner.status.is_ok()
    }
    /// Its number of workers, or None when it is not usable.
    #[getter]
    fn workers(&self) -> Option<usize> {
        self.inner.status.as_ref().ok().copied()
    }
    /// Why it is not usable, or None when it is.
    #[getter]
    fn error(&self) -> Option<&str> {
        self.inner.status.as_ref().err().map(String::as_str)
    }
    /// How long the check took, in seconds.
    #[getter]
    fn latency(&self) -> f64 {
        self.inner.latency.as_secs_f64()
    }
    fn __repr__(&self) -> String {
        match &self.inner.status {
            Ok(workers) => format!(
                "EndpointHealth({:?}, workers={workers})",
                self.inner.address
            ),
            Err(reason) => format!("EndpointHealth({:?}, error={reason:?})", self.inner.address),
        }
    }
}

fn healths(checks: Vec<RustHealth>) -> Vec<EndpointHealth> {
    checks
        .into_iter()
        .map(|inner| EndpointHealth { inner })
        .collect()
}

/// Converts a pool error: `InvalidOption` for a bad address list, `PoolUnavailable` when no
/// daemon could be used, and for a build that failed on a daemon the build's own class
/// (`BuildError`, ...) with `address` and `passed_over` added.
pub(crate) fn from_pool(err: RustPoolError) -> PyErr {
    let message = err.to_string();
    match err {
        RustPoolError::Empty => errors::invalid_option(
            "addresses",
            "a builder pool needs at least one BuildKit address",
        ),
        // An address of the list: the keyword is `addresses` (the command line's `--pool`).
        RustPoolError::Address(source) => Python::attach(|py| {
            with_attrs(
                errors::from_buildkit_with_message(source, message),
                &[
                    ("option", obj(py, "addresses")),
                    ("flag", obj(py, "--pool")),
                ],
            )
        }),
        RustPoolError::Unavailable { key, tried } => Python::attach(|py| {
            with_attrs(
                errors::PoolUnavailable::new_err(message),
                &[("key", obj(py, key)), ("tried", obj(py, attempts(tried)))],
            )
        }),
        RustPoolError::Build {
            address,
            source,
            passed_over,
        } => {
            let err = errors::from_buildkit_with_message(source, message);
            Python::attach(|py| {
                with_attrs(
                    err,
                    &[
                        ("address", obj(py, address)),
                        ("passed_over", obj(py, attempts(passed_over))),
                    ],
                )
            })
        }
    }
}

/// How a pool build ended: `None` when a progress callback raised.
type Outcome = Option<Result<RustPooledBuild, RustPoolError>>;

async fn run(
    pool: Arc<RustPool>,
    key: String,
    options: BuildOptions,
    mut sink: Box<dyn ProgressSink>,
    failure: Arc<CallbackFailure>,
) -> Outcome {
    failure
        .race(pool.build(&key, &options, sink.as_mut()))
        .await
}

/// Turns a finished (or waited-for) pool build into the Python result.
fn finish(outcome: PyResult<Outcome>, failure: &CallbackFailure) -> PyResult<PooledBuild> {
    let pooled = failure.outcome(outcome)?.map_err(from_pool)?;
    let result = Python::attach(|py| {
        Py::new(
            py,
            BuildResult {
                inner: pooled.result,
            },
        )
    })?;
    Ok(PooledBuild {
        result,
        address: pooled.address,
        passed_over: pooled.passed_over,
    })
}

/// A client over several BuildKit daemons with sticky routing, health checks and failover.
///
/// ``BuilderPool(addresses, *, tls_ca=None, tls_cert=None, tls_key=None,
/// tls_server_name=None, health_timeout=2, connect_timeout=3, retry_after=15)``: nothing is
/// dialled yet. ``addresses`` are ``tcp://``, ``unix://`` or ``docker://`` addresses, or
/// ``dns+tcp://SERVICE.NAMESPACE.svc:PORT`` for the ready replicas of a headless Service
/// (``cicd_agents.k8s.BuildkitPool``): members are the replicas' DNS names, resolved again
/// every ``refresh_interval`` seconds (default 30) and when every member failed; each is
/// dialled at its IP and its certificate verified against its name. The TLS files apply to
/// every ``tcp://`` daemon. Timeouts are seconds or ``timedelta``.
///
/// Each build has a routing key (``routing_key(context)``: the repository URL without its
/// ``#ref:subdir``, or the local context's absolute path). The daemons are ranked for the key
/// by rendezvous hashing, so a project keeps landing on the same daemon and its warm cache. A
/// daemon must answer ``ListWorkers`` within ``health_timeout`` to be used; one that cannot be
/// reached is tried last for ``retry_after`` seconds and the next one in the ranking takes
/// over, also for a build that loses its daemon midway. A build that *fails* is not retried.
///
/// Raises ``InvalidOption`` for an empty list, a malformed address or one given twice.
#[pyclass(module = "cicd_agents", frozen)]
pub struct BuilderPool {
    inner: Arc<RustPool>,
}

impl BuilderPool {
    /// The pool itself, shared (a pipeline run builds on it).
    pub(crate) fn shared(&self) -> Arc<RustPool> {
        Arc::clone(&self.inner)
    }

    /// The routing key and the build keywords of a call, parsed (see `BuildArgs`).
    fn prepare(
        &self,
        function: &str,
        context: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(String, Prepared)> {
        let mut keywords = Keywords::new(options)?;
        let key = keywords.take_str("key")?;
        // The daemon is chosen when the build starts: the tty view names none.
        let args = BuildArgs::parse(function, context, keywords, "")?;
        if args.builder.is_some() {
            return Err(errors::invalid_option(
                "builder",
                "a BuilderPool chooses the daemon by the routing key; pass key= instead",
            ));
        }
        if args.stream_logs {
            return Err(errors::invalid_option(
                "stream_logs",
                "a BuilderPool build returns the result; use progress= to follow it",
            ));
        }
        let prepared = args.prepared;
        let key = key.unwrap_or_else(|| rust_routing_key(&prepared.options));
        Ok((key, prepared))
    }
}

#[pymethods]
impl BuilderPool {
    #[new]
    #[pyo3(signature = (addresses, *, tls_ca=None, tls_cert=None, tls_key=None, tls_server_name=None, tls_skip_verify=false, health_timeout=None, connect_timeout=None, retry_after=None, refresh_interval=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        addresses: Vec<String>,
        tls_ca: Option<std::path::PathBuf>,
        tls_cert: Option<std::path::PathBuf>,
        tls_key: Option<std::path::PathBuf>,
        tls_server_name: Option<String>,
        tls_skip_verify: bool,
        health_timeout: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        retry_after: Option<&Bound<'_, PyAny>>,
        refresh_interval: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let tls = crate::client::TlsArgs {
            ca: tls_ca,
            cert: tls_cert,
            key: tls_key,
            server_name: tls_server_name,
            skip_verify: tls_skip_verify,
        }
        .options(py)?;
        let mut pool = RustPool::new(&addresses, tls).map_err(from_pool)?;
        if let Some(value) = health_timeout.filter(|v| !v.is_none()) {
            pool = pool.health_timeout(duration(value, "health_timeout")?);
        }
        if let Some(value) = connect_timeout.filter(|v| !v.is_none()) {
            pool = pool.connect_timeout(duration(value, "connect_timeout")?);
        }
        if let Some(value) = retry_after.filter(|v| !v.is_none()) {
            pool = pool.retry_after(duration(value, "retry_after")?);
        }
        if let Some(value) = refresh_interval.filter(|v| !v.is_none()) {
            pool = pool.refresh_interval(duration(value, "refresh_interval")?);
        }
        Ok(BuilderPool {
            inner: Arc::new(pool),
        })
    }

    /// The daemons' addresses in the order given (normalized, e.g. ``docker://`` becomes
    /// ``docker://unix:///var/run/docker.sock``).
    #[getter]
    fn addresses(&self) -> Vec<String> {
        self.inner.addresses()
    }

    /// The daemons in the order ``key`` prefers them (rendezvous hashing), ignoring health.
    fn rank(&self, key: &str) -> Vec<String> {
        self.inner.rank(key)
    }

    /// The order in which daemons are tried for ``key``: its ranking, with daemons recently
    /// found unreachable moved to the end.
    fn candidates(&self, key: &str) -> Vec<String> {
        self.inner.candidates(key)
    }

    /// The ``dns+tcp://`` addresses members are discovered from.
    #[getter]
    fn dns_addresses(&self) -> Vec<String> {
        self.inner.dns_addresses()
    }

    /// Resolves every ``dns+tcp://`` address now; returns the members afterwards.
    fn discover(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let pool = self.inner.clone();
        block_on(py, async move { pool.discover().await })
    }

    /// Checks every daemon now, concurrently: a list of ``EndpointHealth`` in the order given.
    fn health(&self, py: Python<'_>) -> PyResult<Vec<EndpointHealth>> {
        let pool = self.inner.clone();
        Ok(healths(block_on(py, async move { pool.health().await })?))
    }

    /// ``await``-able ``health()``.
    fn health_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pool = self.inner.clone();
        awaitable(py, async move { Ok(healths(pool.health().await)) })
    }

    /// A healthy daemon for ``key``: ``(Client, address)`` for the first daemon in the key's
    /// ranking that connects and answers in time. Raises ``PoolUnavailable`` when none does.
    fn client_for(&self, py: Python<'_>, key: String) -> PyResult<(Client, String)> {
        let pool = self.inner.clone();
        let (inner, address) =
            block_on(py, async move { pool.client_for(&key).await })?.map_err(from_pool)?;
        Ok((Client { inner }, address))
    }

    /// ``await``-able ``client_for()``.
    fn client_for_async<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let pool = self.inner.clone();
        awaitable(py, async move {
            let (inner, address) = pool.client_for(&key).await.map_err(from_pool)?;
            Ok((Client { inner }, address))
        })
    }

    /// Runs a build on the daemon its routing key prefers and returns a ``PooledBuild``.
    ///
    /// Takes ``Client.build()``'s arguments, plus ``key``: the routing key (default
    /// ``routing_key(context)``). If the daemon is lost before or during the build, the build
    /// starts again on the next healthy one. Raises ``PoolUnavailable`` when no daemon can be
    /// used, and ``BuildError`` (with ``address`` and ``passed_over``) when the build fails.
    #[pyo3(signature = (context=None, **options))]
    fn build<'py>(
        &self,
        py: Python<'py>,
        context: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<PooledBuild> {
        let (key, Prepared { options, progress }) = self.prepare("build", context, options)?;
        let failure = progress.failure.clone();
        let task = Task::spawn(run(
            self.inner.clone(),
            key,
            options,
            progress.sink,
            progress.failure,
        ))?;
        finish(task.wait(py), &failure)
    }

    /// ``build()`` as a coroutine with the same arguments: nothing starts until it is awaited.
    /// Cancelling the awaiting task cancels the build on the daemon.
    #[pyo3(signature = (context=None, **options))]
    fn build_async<'py>(
        &self,
        py: Python<'py>,
        context: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (key, Prepared { options, progress }) =
            self.prepare("build_async", context, options)?;
        let failure = progress.failure.clone();
        let pool = self.inner.clone();
        awaitable(py, async move {
            let outcome = run(pool, key, options, progress.sink, progress.failure).await;
            finish(Ok(outcome), &failure)
        })
    }

    fn __repr__(&self) -> String {
        format!("BuilderPool({:?})", self.inner.addresses())
    }
}

/// The routing key of a build of ``context`` (a directory or a git / HTTP(S) URL): the
/// repository URL without its ``#ref:subdir`` fragment (every branch of a project shares one
/// cache), or the directory's absolute path.
#[pyfunction]
pub fn routing_key(context: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(rust_routing_key(&BuildOptions::new(build_context(
        context,
    )?)))
}
