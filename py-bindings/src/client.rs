//! `cicd_agents.Client`: a connection to a BuildKit daemon, and the Control
//! API's results (`DaemonInfo`, `Worker`, `UsageRecord`, …) as Python objects.

use std::path::PathBuf;

use cicd_agents_buildkit::control::info::BuildkitVersion as RustBuildkitVersion;
use cicd_agents_buildkit::control::workers::GcPolicy as RustGcPolicy;
use cicd_agents_buildkit::{
    ActiveBuild as RustActiveBuild, DaemonInfo as RustDaemonInfo, DiskUsageOptions, PruneOptions,
    TlsOptions, UsageRecord as RustUsageRecord, Worker as RustWorker,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::build::{bool_arg, text_arg, BuildArgs, BuildStream, Keywords};
use crate::convert::{datetime, duration, path, str_list, to_dict};
use crate::errors;
use crate::runtime::{awaitable, block_on};

/// A BuildKit release stamp as a daemon or worker reports it.
#[pyclass(module = "cicd_agents", frozen)]
#[derive(Clone)]
pub struct BuildkitVersion {
    inner: RustBuildkitVersion,
}

#[pymethods]
impl BuildkitVersion {
    /// The Go package, e.g. ``github.com/moby/buildkit``.
    #[getter]
    fn package(&self) -> &str {
        &self.inner.package
    }
    /// The release, e.g. ``v0.13.2``.
    #[getter]
    fn version(&self) -> &str {
        &self.inner.version
    }
    /// The source revision.
    #[getter]
    fn revision(&self) -> &str {
        &self.inner.revision
    }
    /// As a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "BuildkitVersion({:?}, {:?})",
            self.inner.package, self.inner.version
        )
    }
}

/// What ``Client.info()`` returns: which BuildKit the daemon is.
#[pyclass(module = "cicd_agents", frozen)]
pub struct DaemonInfo {
    inner: RustDaemonInfo,
}

#[pymethods]
impl DaemonInfo {
    /// The daemon's address.
    #[getter]
    fn address(&self) -> &str {
        &self.inner.address
    }
    /// The version users should read, e.g. ``v0.13.2`` or ``v0.13.x``.
    #[getter]
    fn version(&self) -> &str {
        &self.inner.version
    }
    /// Where ``version`` comes from: ``"info"``, ``"worker"``, ``"docker-engine"`` or ``"unknown"``.
    #[getter]
    fn version_source<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner.version_source)
    }
    /// The version stamp exactly as the daemon reported it, or None.
    #[getter]
    fn reported(&self) -> Option<BuildkitVersion> {
        self.inner
            .reported
            .clone()
            .map(|inner| BuildkitVersion { inner })
    }
    /// For ``docker://`` addresses: the Docker Engine version, else None.
    #[getter]
    fn docker_engine(&self) -> Option<&str> {
        self.inner.docker_engine.as_deref()
    }
    /// The version with a note on where it comes from when it is not the daemon's own word.
    fn version_display(&self) -> String {
        self.inner.version_display()
    }
    /// ``(major, minor)`` of the version, or None when unknown.
    fn minor_version(&self) -> Option<(u64, u64)> {
        self.inner.minor_version()
    }
    /// Whether the daemon is at least ``major.minor`` (unknown versions count as current).
    fn at_least(&self, major: u64, minor: u64) -> bool {
        self.inner.at_least(major, minor)
    }
    /// As a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "DaemonInfo(address={:?}, version={:?})",
            self.inner.address, self.inner.version
        )
    }
}

/// One garbage-collection rule of a worker.
#[pyclass(module = "cicd_agents", frozen)]
pub struct GcPolicy {
    inner: RustGcPolicy,
}

#[pymethods]
impl GcPolicy {
    /// Applies to all records, not only unused ones.
    #[getter]
    fn all(&self) -> bool {
        self.inner.all
    }
    /// Keep records used within this many seconds.
    #[getter]
    fn keep_duration_seconds(&self) -> i64 {
        self.inner.keep_duration_seconds
    }
    /// Bytes kept (``keepBytes``, now ``reservedSpace``).
    #[getter]
    fn reserved_space(&self) -> i64 {
        self.inner.reserved_space
    }
    /// Upper bound of space used.
    #[getter]
    fn max_used_space(&self) -> i64 {
        self.inner.max_used_space
    }
    /// Space left free on the disk.
    #[getter]
    fn min_free_space(&self) -> i64 {
        self.inner.min_free_space
    }
    /// Filters.
    #[getter]
    fn filters(&self) -> Vec<String> {
        self.inner.filters.clone()
    }
    /// As a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "GcPolicy(all={}, keep_duration_seconds={}, reserved_space={})",
            if self.inner.all { "True" } else { "False" },
            self.inner.keep_duration_seconds,
            self.inner.reserved_space
        )
    }
}

/// One worker a daemon builds on.
#[pyclass(module = "cicd_agents", frozen)]
pub struct Worker {
    inner: RustWorker,
}

#[pymethods]
impl Worker {
    /// The worker's ID.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// Platforms it builds for, as ``os/arch[/variant]``.
    #[getter]
    fn platforms(&self) -> Vec<String> {
        self.inner.platforms.clone()
    }
    /// Its labels (executor, snapshotter, hostname, ...).
    #[getter]
    fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.labels.clone()
    }
    /// Its garbage-collection rules.
    #[getter]
    fn gc_policies(&self) -> Vec<GcPolicy> {
        self.inner
            .gc_policies
            .iter()
            .cloned()
            .map(|inner| GcPolicy { inner })
            .collect()
    }
    /// The BuildKit version the worker reports (v0.11+), or None.
    #[getter]
    fn buildkit_version(&self) -> Option<BuildkitVersion> {
        self.inner
            .buildkit_version
            .clone()
            .map(|inner| BuildkitVersion { inner })
    }
    /// As a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "Worker(id={:?}, platforms={:?})",
            self.inner.id, self.inner.platforms
        )
    }
}

/// A build the daemon is running (``Client.active_builds()``).
#[pyclass(module = "cicd_agents", frozen)]
pub struct ActiveBuild {
    inner: RustActiveBuild,
}

#[pymethods]
impl ActiveBuild {
    /// The build's ref (the ID progress and history use).
    #[getter]
    fn build_ref(&self) -> &str {
        &self.inner.build_ref
    }
    /// The frontend, e.g. ``dockerfile.v0``.
    #[getter]
    fn frontend(&self) -> &str {
        &self.inner.frontend
    }
    /// The frontend's attributes: build arguments, labels (``label:NAME``), target, ...
    #[getter]
    fn frontend_attrs(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.frontend_attrs.clone()
    }
    /// When it started (UTC), or None.
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.created_at)
    }
    /// As a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "ActiveBuild(build_ref={:?}, frontend={:?})",
            self.inner.build_ref, self.inner.frontend
        )
    }
}

/// One build cache record (``Client.disk_usage()``, ``Client.prune()``).
#[pyclass(module = "cicd_agents", frozen)]
pub struct UsageRecord {
    inner: RustUsageRecord,
}

#[pymethods]
impl UsageRecord {
    /// Record ID.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// Whether it is a mutable (not yet committed) record.
    #[getter]
    fn mutable(&self) -> bool {
        self.inner.mutable
    }
    /// Whether a build is using it now.
    #[getter]
    fn in_use(&self) -> bool {
        self.inner.in_use
    }
    /// Size in bytes.
    #[getter]
    fn size(&self) -> i64 {
        self.inner.size
    }
    /// Parent record IDs.
    #[getter]
    fn parents(&self) -> Vec<String> {
        self.inner.parents.clone()
    }
    /// When it was created (UTC ``datetime``), or None.
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.created_at)
    }
    /// When it was last used (UTC ``datetime``), or None.
    #[getter]
    fn last_used_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        datetime(py, self.inner.last_used_at)
    }
    /// How often it was used.
    #[getter]
    fn usage_count(&self) -> i64 {
        self.inner.usage_count
    }
    /// What it is (e.g. the step that made it).
    #[getter]
    fn description(&self) -> &str {
        &self.inner.description
    }
    /// Its type (``regular``, ``source.local``, ``exec.cachemount``, ...).
    #[getter]
    fn record_type(&self) -> &str {
        &self.inner.record_type
    }
    /// Whether it is shared with other records.
    #[getter]
    fn shared(&self) -> bool {
        self.inner.shared
    }
    /// As a JSON-compatible dict (timestamps as RFC 3339 strings).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "UsageRecord(id={:?}, size={}, type={:?})",
            self.inner.id, self.inner.size, self.inner.record_type
        )
    }
}

fn records(records: Vec<RustUsageRecord>) -> Vec<UsageRecord> {
    records
        .into_iter()
        .map(|inner| UsageRecord { inner })
        .collect()
}

/// A connection to a BuildKit daemon.
///
/// ``Client(addr=None, *, tls_ca=None, tls_cert=None, tls_key=None,
/// tls_server_name=None, connect_timeout=None, keepalive=None, tls_skip_verify=False)`` connects
/// (blocking, the GIL released). ``addr`` is ``unix:///path``, ``tcp://host:port`` or
/// ``docker://[unix:///path|tcp://host:port]``; without it the address is
/// resolved like ``buildctl`` and ``buildx`` do: ``$BUILDKIT_HOST``,
/// ``$DOCKER_HOST`` (as ``docker://``), ``/run/buildkit/buildkitd.sock``,
/// ``$XDG_RUNTIME_DIR/buildkit/buildkitd.sock``, ``/var/run/docker.sock``.
/// The TLS files (PEM) apply to ``tcp://`` daemons, whose certificate is
/// always verified unless ``tls_skip_verify=True`` (insecure: emits a
/// ``RuntimeWarning``). Use
/// ``await Client.connect_async(...)`` from asyncio code.
///
/// Every method blocks with the GIL released; Ctrl-C (KeyboardInterrupt)
/// cancels the call (a build is cancelled on the daemon). Each blocking
/// method has an ``*_async`` twin returning an awaitable.
///
/// ``keepalive=(interval, timeout)`` (seconds or timedeltas, default 15 and
/// 10) pings the daemon every ``interval``; a connection whose ping is not
/// answered within ``timeout`` is given up, failing a running call with
/// ``ConnectionError`` (its ``during`` says what was happening). After a cut
/// or a daemon restart the client dials again by itself on its next call.
///
/// Raises ``ConnectionError`` when the daemon cannot be reached and
/// ``InvalidOption`` for a malformed address or unusable TLS files.
#[pyclass(module = "cicd_agents", frozen)]
pub struct Client {
    pub(crate) inner: cicd_agents_buildkit::Client,
}

/// The TLS keyword arguments of ``Client(...)`` and ``BuilderPool(...)``.
pub(crate) struct TlsArgs {
    pub(crate) ca: Option<PathBuf>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
    pub(crate) server_name: Option<String>,
    pub(crate) skip_verify: bool,
}

impl TlsArgs {
    /// The `tls_*` keyword arguments, each checked for its type by name.
    pub(crate) fn from_args(
        ca: Option<&Bound<'_, PyAny>>,
        cert: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        server_name: Option<&Bound<'_, PyAny>>,
        skip_verify: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TlsArgs> {
        let file = |value: Option<&Bound<'_, PyAny>>, name: &str| {
            value
                .filter(|v| !v.is_none())
                .map(|v| path(v, name))
                .transpose()
        };
        Ok(TlsArgs {
            ca: file(ca, "tls_ca")?,
            cert: file(cert, "tls_cert")?,
            key: file(key, "tls_key")?,
            server_name: server_name
                .filter(|v| !v.is_none())
                .map(|v| text_arg(v, "tls_server_name"))
                .transpose()?,
            skip_verify: skip_verify
                .map(|v| bool_arg(v, "tls_skip_verify"))
                .transpose()?
                .unwrap_or(false),
        })
    }

    /// The library's options; warns (``RuntimeWarning``) when verification is off.
    pub(crate) fn options(self, py: Python<'_>) -> PyResult<TlsOptions> {
        if self.skip_verify {
            let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
            PyErr::warn(
                py,
                &category,
                c"tls_skip_verify=True: the daemon's TLS certificate is NOT verified; anyone on the network path \
can impersonate it and read build secrets and registry credentials",
                2,
            )?;
        }
        Ok(TlsOptions::default()
            .insecure_skip_verify(self.skip_verify)
            .with_paths(self.ca, self.cert, self.key, self.server_name))
    }
}

fn builder(
    py: Python<'_>,
    addr: Option<String>,
    tls: TlsArgs,
    connect_timeout: Option<&Bound<'_, PyAny>>,
    keepalive: Option<&Bound<'_, PyAny>>,
) -> PyResult<cicd_agents_buildkit::ClientBuilder> {
    let tls = tls.options(py)?;
    let mut builder = cicd_agents_buildkit::Client::builder()
        .address_opt(addr)
        .tls(tls);
    if let Some(timeout) = connect_timeout.filter(|t| !t.is_none()) {
        builder = builder.connect_timeout(duration(timeout, "connect_timeout")?);
    }
    if let Some(keepalive) = keepalive.filter(|k| !k.is_none()) {
        builder = builder.keepalive_config(keepalive_pair(keepalive)?);
    }
    Ok(builder)
}

/// ``keepalive=(interval, timeout)``: two numbers of seconds or timedeltas.
fn keepalive_pair(value: &Bound<'_, PyAny>) -> PyResult<cicd_agents_buildkit::Keepalive> {
    let pair: (Bound<'_, PyAny>, Bound<'_, PyAny>) = value.extract().map_err(|_| {
        errors::invalid_option(
            "keepalive",
            format!(
                "expected a pair (interval, timeout) of seconds, not {}",
                crate::convert::type_name(value)
            ),
        )
    })?;
    let interval = duration(&pair.0, "keepalive interval")?;
    let timeout = duration(&pair.1, "keepalive timeout")?;
    cicd_agents_buildkit::Keepalive::new(interval, timeout).map_err(errors::from_buildkit)
}

fn prune_options(
    all: bool,
    keep_duration: Option<&Bound<'_, PyAny>>,
    keep_storage: Option<i64>,
    max_used_space: Option<i64>,
    min_free_space: Option<i64>,
    filters: Option<&Bound<'_, PyAny>>,
) -> PyResult<PruneOptions> {
    let mut options = PruneOptions::default().all(all);
    if let Some(value) = keep_duration.filter(|v| !v.is_none()) {
        options = options.keep_duration(duration(value, "keep_duration")?);
    }
    options.keep_bytes = keep_storage;
    options.max_used_space = max_used_space;
    options.min_free_space = min_free_space;
    options.filters = str_list(filters, "filters")?;
    Ok(options)
}

impl Client {
    /// The build keywords of a call on this client, parsed (see `BuildArgs`).
    fn build_args(
        &self,
        function: &str,
        context: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<BuildArgs> {
        let address = self.inner.address().to_string();
        let args = BuildArgs::parse(function, context, Keywords::new(options)?, &address)?;
        args.check_builder(&address)?;
        Ok(args)
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (addr=None, *, tls_ca=None, tls_cert=None, tls_key=None, tls_server_name=None, connect_timeout=None, keepalive=None, tls_skip_verify=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        addr: Option<&Bound<'_, PyAny>>,
        tls_ca: Option<&Bound<'_, PyAny>>,
        tls_cert: Option<&Bound<'_, PyAny>>,
        tls_key: Option<&Bound<'_, PyAny>>,
        tls_server_name: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        keepalive: Option<&Bound<'_, PyAny>>,
        tls_skip_verify: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let addr = addr.map(|a| text_arg(a, "addr")).transpose()?;
        let tls = TlsArgs::from_args(tls_ca, tls_cert, tls_key, tls_server_name, tls_skip_verify)?;
        let builder = builder(py, addr, tls, connect_timeout, keepalive)?;
        let inner = block_on(py, builder.connect())?.map_err(errors::from_buildkit)?;
        Ok(Client { inner })
    }

    /// Connects without blocking the event loop: ``client = await Client.connect_async(addr)``.
    /// Takes the same arguments as ``Client(...)``.
    #[staticmethod]
    #[pyo3(signature = (addr=None, *, tls_ca=None, tls_cert=None, tls_key=None, tls_server_name=None, connect_timeout=None, keepalive=None, tls_skip_verify=None))]
    #[allow(clippy::too_many_arguments)]
    fn connect_async<'py>(
        py: Python<'py>,
        addr: Option<&Bound<'py, PyAny>>,
        tls_ca: Option<&Bound<'py, PyAny>>,
        tls_cert: Option<&Bound<'py, PyAny>>,
        tls_key: Option<&Bound<'py, PyAny>>,
        tls_server_name: Option<&Bound<'py, PyAny>>,
        connect_timeout: Option<&Bound<'py, PyAny>>,
        keepalive: Option<&Bound<'py, PyAny>>,
        tls_skip_verify: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let addr = addr.map(|a| text_arg(a, "addr")).transpose()?;
        let tls = TlsArgs::from_args(tls_ca, tls_cert, tls_key, tls_server_name, tls_skip_verify)?;
        let builder = builder(py, addr, tls, connect_timeout, keepalive)?;
        awaitable(py, async move {
            let inner = builder.connect().await.map_err(errors::from_buildkit)?;
            Ok(Client { inner })
        })
    }

    /// The daemon's address, e.g. ``docker://unix:///var/run/docker.sock``.
    #[getter]
    fn address(&self) -> String {
        self.inner.address().to_string()
    }

    /// Asks the daemon which BuildKit it is.
    fn info(&self, py: Python<'_>) -> PyResult<DaemonInfo> {
        let client = self.inner.clone();
        let inner =
            block_on(py, async move { client.info().await })?.map_err(errors::from_buildkit)?;
        Ok(DaemonInfo { inner })
    }

    /// ``await``-able ``info()``.
    fn info_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        awaitable(py, async move {
            let inner = client.info().await.map_err(errors::from_buildkit)?;
            Ok(DaemonInfo { inner })
        })
    }

    /// Lists the daemon's workers.
    fn workers(&self, py: Python<'_>) -> PyResult<Vec<Worker>> {
        let client = self.inner.clone();
        let workers = block_on(py, async move { client.list_workers().await })?
            .map_err(errors::from_buildkit)?;
        Ok(workers.into_iter().map(|inner| Worker { inner }).collect())
    }

    /// ``await``-able ``workers()``.
    fn workers_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        awaitable(py, async move {
            let workers = client.list_workers().await.map_err(errors::from_buildkit)?;
            Ok(workers
                .into_iter()
                .map(|inner| Worker { inner })
                .collect::<Vec<_>>())
        })
    }

    /// The builds the daemon is running right now, by any client.
    fn active_builds(&self, py: Python<'_>) -> PyResult<Vec<ActiveBuild>> {
        let client = self.inner.clone();
        let builds = block_on(py, async move { client.active_builds().await })?
            .map_err(errors::from_buildkit)?;
        Ok(builds
            .into_iter()
            .map(|inner| ActiveBuild { inner })
            .collect())
    }

    /// ``await``-able ``active_builds()``.
    fn active_builds_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.inner.clone();
        awaitable(py, async move {
            let builds = client
                .active_builds()
                .await
                .map_err(errors::from_buildkit)?;
            Ok(builds
                .into_iter()
                .map(|inner| ActiveBuild { inner })
                .collect::<Vec<_>>())
        })
    }

    /// Lists the build cache records, optionally filtered with BuildKit
    /// filter expressions (``"type==regular"``, ``"id~=abc"``).
    #[pyo3(signature = (filters=None))]
    fn disk_usage(
        &self,
        py: Python<'_>,
        filters: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<UsageRecord>> {
        let options = DiskUsageOptions {
            filters: str_list(filters, "filters")?,
        };
        let client = self.inner.clone();
        let found = block_on(py, async move { client.disk_usage(&options).await })?
            .map_err(errors::from_buildkit)?;
        Ok(records(found))
    }

    /// ``await``-able ``disk_usage()``.
    #[pyo3(signature = (filters=None))]
    fn disk_usage_async<'py>(
        &self,
        py: Python<'py>,
        filters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = DiskUsageOptions {
            filters: str_list(filters, "filters")?,
        };
        let client = self.inner.clone();
        awaitable(py, async move {
            let found = client
                .disk_usage(&options)
                .await
                .map_err(errors::from_buildkit)?;
            Ok(records(found))
        })
    }

    /// Frees build cache and returns the records freed.
    ///
    /// ``all``: also records still referenced internally. ``keep_duration``:
    /// keep records used within this time (seconds or ``timedelta``).
    /// ``keep_storage``: keep this many bytes. ``max_used_space`` /
    /// ``min_free_space``: prune until at most / at least that many bytes are
    /// used / free. ``filters``: BuildKit filter expressions.
    #[pyo3(signature = (all=false, keep_duration=None, keep_storage=None, filters=None, *, max_used_space=None, min_free_space=None))]
    #[allow(clippy::too_many_arguments)]
    fn prune(
        &self,
        py: Python<'_>,
        all: bool,
        keep_duration: Option<&Bound<'_, PyAny>>,
        keep_storage: Option<i64>,
        filters: Option<&Bound<'_, PyAny>>,
        max_used_space: Option<i64>,
        min_free_space: Option<i64>,
    ) -> PyResult<Vec<UsageRecord>> {
        let options = prune_options(
            all,
            keep_duration,
            keep_storage,
            max_used_space,
            min_free_space,
            filters,
        )?;
        let client = self.inner.clone();
        let freed = block_on(py, async move { client.prune_all(&options).await })?
            .map_err(errors::from_buildkit)?;
        Ok(records(freed))
    }

    /// ``await``-able ``prune()``.
    #[pyo3(signature = (all=false, keep_duration=None, keep_storage=None, filters=None, *, max_used_space=None, min_free_space=None))]
    #[allow(clippy::too_many_arguments)]
    fn prune_async<'py>(
        &self,
        py: Python<'py>,
        all: bool,
        keep_duration: Option<&Bound<'py, PyAny>>,
        keep_storage: Option<i64>,
        filters: Option<&Bound<'py, PyAny>>,
        max_used_space: Option<i64>,
        min_free_space: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = prune_options(
            all,
            keep_duration,
            keep_storage,
            max_used_space,
            min_free_space,
            filters,
        )?;
        let client = self.inner.clone();
        awaitable(py, async move {
            let freed = client
                .prune_all(&options)
                .await
                .map_err(errors::from_buildkit)?;
            Ok(records(freed))
        })
    }

    /// Runs a Dockerfile build and returns its ``BuildResult``.
    ///
    /// ``context`` is a directory (str or ``os.PathLike``) or a git / HTTP(S)
    /// URL (``https://host/org/repo.git#ref:subdir``) the daemon fetches.
    ///
    /// Keyword arguments, named like ``docker buildx build``'s flags (and
    /// python-on-whales' ``buildx.build``):
    ///
    /// - ``context``: a directory or URL, or ``bytes`` read as buildx reads ``-``: a
    ///   tar archive (plain or compressed) is the context, anything else a
    ///   Dockerfile built with an empty context.
    /// - ``file``: the Dockerfile (default ``<context>/Dockerfile``; for URL
    ///   contexts a path inside the repository).
    /// - ``dockerfile_content``: the Dockerfile's text (str or bytes) instead of a
    ///   file, as buildx's ``-f -``.
    /// - ``tags``: image name(s), a str or a list.
    /// - ``build_args``, ``labels``: dicts (or lists of ``"KEY=VALUE"``).
    /// - ``target``: the stage to build. ``platforms``: e.g. ``"linux/amd64"`` or a list.
    /// - ``no_cache``: ignore the cache; ``no_cache_filter``: only for these stages.
    /// - ``network``: ``"default"``, ``"host"`` or ``"none"`` for RUN steps.
    /// - ``add_hosts``: ``"name:ip"`` entries, or a dict ``{name: ip}``.
    /// - ``secrets``: buildx specs (``"id=npmrc,src=~/.npmrc"``, ``"id=tok,env=TOKEN"``)
    ///   or dicts ``{"id": ..., "src"|"env"|"value": ...}``, one or a list.
    /// - ``ssh``: ``"default"``, ``"id=/path/agent.sock"``, a list, or a dict ``{id: socket}``.
    /// - ``build_contexts``: ``{name: dir | "docker-image://ref" | url}``.
    /// - ``push``: push the tagged image.
    /// - ``outputs``, ``cache_from``, ``cache_to``: ``"type=...,k=v"`` strings (as
    ///   for buildx) or dicts ``{"type": ..., "k": v}``, one or a list. A bare
    ///   ``cache_from`` string is a registry reference.
    /// - ``progress``: None (silent), ``"auto"``, ``"plain"``, ``"tty"``, ``"quiet"``,
    ///   ``"rawjson"`` (rendered to stderr like the command line), or a callable
    ///   receiving ``VertexEvent`` / ``StatusEvent`` / ``LogEvent`` / ``WarningEvent``
    ///   objects as they arrive. If the callable raises, the build is cancelled and
    ///   the exception re-raised.
    /// - ``metadata_file``: write buildx's metadata JSON (``BuildResult.metadata()``) there.
    /// - ``git_auth_tokens``: ``{host: token}`` for private git contexts (sent as
    ///   ``GIT_AUTH_TOKEN.<host>`` secrets, never in a URL).
    /// - ``allow``: extra entitlements (``"network.host"``, ``"security.insecure"``).
    /// - ``frontend_attrs``: raw Dockerfile frontend options.
    /// - ``registry_auth``: ``{host: (username, secret)}`` credentials that win over
    ///   the Docker configuration; ``docker_config``: True (default: read
    ///   ``$DOCKER_CONFIG`` / ``~/.docker/config.json``), False (no Docker
    ///   configuration) or the directory holding ``config.json``.
    /// - ``shared_key``: key for incremental context transfer.
    ///
    /// python-on-whales' ``docker.buildx.build`` keywords are taken too:
    /// ``context_path`` (the context), ``cache`` (the inverse of ``no_cache``),
    /// ``output`` (one output, its dict form), ``load`` (into the Docker image
    /// store: an output ``type=docker``), ``pull`` (always pull base images),
    /// ``progress=False`` (silent), ``stream_logs=True`` (returns an iterator of
    /// the plain progress output's lines instead of the result) and ``builder``
    /// (must name this client's daemon). The keywords and their types are
    /// declared once, in ``cicd_agents.BuildOptions``; a wrong type raises
    /// ``TypeError`` naming the keyword, an unknown keyword ``TypeError``.
    ///
    /// Blocks with the GIL released; Ctrl-C cancels the build on the daemon and
    /// raises KeyboardInterrupt. Raises ``BuildError`` when the build fails,
    /// ``InvalidOption`` for unusable arguments, ``ConnectionError`` when the
    /// daemon is gone.
    #[pyo3(signature = (context=None, **options))]
    fn build<'py>(
        &self,
        py: Python<'py>,
        context: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let args = self.build_args("build", context, options)?;
        if args.stream_logs {
            let stream = BuildStream::start(&self.inner, args.prepared, true)?;
            return Ok(Py::new(py, stream)?.into_any());
        }
        let result = crate::build::build_blocking(py, &self.inner, args.prepared)?;
        Ok(Py::new(py, result)?.into_any())
    }

    /// ``build()`` as a coroutine, with the same arguments: nothing is sent
    /// until it is awaited (``await``, ``asyncio.run``, ``create_task``,
    /// ``gather``, ``wait_for``, ...). Cancelling the awaiting task cancels the
    /// build on the daemon. A ``progress`` callable is called from a runtime
    /// thread (not the event loop's), as with ``build()``. ``stream_logs`` is
    /// refused: use ``build_stream()``.
    #[pyo3(signature = (context=None, **options))]
    fn build_async<'py>(
        &self,
        py: Python<'py>,
        context: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = self.build_args("build_async", context, options)?;
        if args.stream_logs {
            return Err(errors::invalid_option(
                "stream_logs",
                "build_async() returns the result; iterate build_stream(..., stream_logs=True) for the lines",
            ));
        }
        crate::build::build_awaitable(py, &self.inner, args.prepared)
    }

    /// Starts a build and returns a ``BuildStream``: iterate it to receive the
    /// progress events as they arrive; when iteration ends, ``stream.result``
    /// holds the ``BuildResult``. A failed build raises its error from the
    /// iteration (and from ``wait()``). Same arguments as ``build()``; a
    /// ``progress`` given here is served as well (e.g. ``"plain"`` to also
    /// render on stderr); with ``stream_logs=True`` it yields text lines.
    #[pyo3(signature = (context=None, **options))]
    fn build_stream<'py>(
        &self,
        context: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<BuildStream> {
        let args = self.build_args("build_stream", context, options)?;
        BuildStream::start(&self.inner, args.prepared, args.stream_logs)
    }

    /// This client, for python-on-whales' spelling: ``docker.buildx.build(...)``
    /// runs unchanged with ``docker = cicd_agents.Client(...)``.
    #[getter]
    fn buildx(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __repr__(&self) -> String {
        format!("Client({:?})", self.inner.address().to_string())
    }
}

/// The address ``Client(addr)`` would dial, resolved the way ``buildctl`` and ``buildx`` do:
/// ``addr`` if given, else ``$BUILDKIT_HOST``, ``$DOCKER_HOST`` (as ``docker://``), then the
/// well-known sockets that exist on this machine. Nothing is dialled. Raises
/// ``InvalidOption`` for a malformed address and ``ConnectionError`` (naming every place
/// tried) when none is found.
#[pyfunction]
#[pyo3(signature = (addr=None))]
pub fn resolve_address(addr: Option<&str>) -> PyResult<String> {
    cicd_agents_buildkit::Address::resolve(addr)
        .map(|a| a.to_string())
        .map_err(errors::from_buildkit)
}
