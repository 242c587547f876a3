//! `cicd_agents.k8s`: the pipeline crate's Kubernetes manifests (`cicd_agents_pipeline::k8s`,
//! feature `k8s`) for Python.
//!
//! The builders take the Rust builders' options as keyword arguments and `build()` returns a
//! `Manifest` (one Kubernetes object); `render_yaml` and `parse_yaml` are the library's, so
//! the YAML is byte-for-byte what the Rust crate and `cicd-agents k8s render` produce. The
//! launcher (`k8s-launch`, kube-rs) is not bound: it would pull an HTTP client for the API
//! server into the wheel.

use std::collections::BTreeMap;

use cicd_agents_pipeline::k8s::argo::{
    BuildAndUpdateChart as RustWorkflow, ChartUpdate as RustChartUpdate,
    API_VERSION as ARGO_API_VERSION,
};
use cicd_agents_pipeline::k8s::buildkit::{
    BuildJob as RustBuildJob, BuildStepOptions, BuildkitDaemon as RustDaemon,
    BuildkitDaemonOptions, BuildkitPool as RustPool, BUILD_SCRIPT,
};
use cicd_agents_pipeline::k8s::k8s_openapi::api::core::v1::ResourceRequirements;
use cicd_agents_pipeline::k8s::runners::{
    Builder, RunnerJob as RustRunnerJob, BUILDAH_SERVER_SCRIPT, BUILD_REQUESTS_DIR,
    DEFAULT_BUILDAH_IMAGE, DEFAULT_CIRCLECI_RUNNER_IMAGE, DEFAULT_GITHUB_RUNNER_IMAGE,
    RUNNER_BUILDKIT_ADDR,
};
use cicd_agents_pipeline::k8s::{
    parse_yaml as rust_parse_yaml, render_yaml as rust_render_yaml,
    BuilderSecurity as RustSecurity, K8sError, Manifest as RustManifest,
    SecretKeyRef as RustSecretKeyRef, BUILDKIT_DOCKER_CONFIG_DIR, BUILDKIT_STATE_DIR, BUILDKIT_UID,
    DEFAULT_BUILDKIT_IMAGE, DEFAULT_REGISTRY_SECRET, NO_PROCESS_SANDBOX,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyMapping;

use crate::convert::{str_map, to_dict, type_name};
use crate::errors::{self, obj, with_attrs};

/// Calls the builder's setter of the same name for each option that is `Some`:
/// `set_some!(job; tag, dockerfile)` takes local variables, `set_some!(job, self; tag)` the
/// fields of `self`.
macro_rules! set_some {
    ($builder:ident; $($option:ident),+ $(,)?) => {
        $(if let Some(v) = $option {
            $builder = $builder.$option(v);
        })+
    };
    ($builder:ident, $source:expr; $($option:ident),+ $(,)?) => {
        $(if let Some(v) = $source.$option {
            $builder = $builder.$option(v);
        })+
    };
}

/// Converts a manifest error: `InvalidOption` (with `option` and `reason`) for a value that
/// cannot go into a manifest, `K8sError` (with `index`) for rendering and parsing.
fn from_k8s(err: K8sError) -> PyErr {
    let message = err.to_string();
    match err {
        K8sError::InvalidOption { option, reason } => errors::invalid_option(&option, reason),
        K8sError::Parse { index, .. } => Python::attach(|py| {
            with_attrs(
                errors::K8sError::new_err(message),
                &[("index", obj(py, index))],
            )
        }),
        _ => with_attrs(errors::K8sError::new_err(message), &[("index", None)]),
    }
}

/// A key in a Kubernetes Secret: ``SecretKeyRef(name, key)``.
#[pyclass(module = "cicd_agents.k8s", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct SecretKeyRef {
    inner: RustSecretKeyRef,
}

#[pymethods]
impl SecretKeyRef {
    #[new]
    fn new(name: String, key: String) -> Self {
        SecretKeyRef {
            inner: RustSecretKeyRef::new(name, key),
        }
    }
    /// The Secret's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// The key inside it.
    #[getter]
    fn key(&self) -> &str {
        &self.inner.key
    }
    fn __repr__(&self) -> String {
        format!("SecretKeyRef({:?}, {:?})", self.inner.name, self.inner.key)
    }
}

/// What the builder container may do: ``BuilderSecurity(*, sys_admin=False,
/// allow_privilege_escalation=True)``. The defaults are what rootless BuildKit and Buildah
/// need and no more: ``sys_admin`` adds ``CAP_SYS_ADMIN`` (the original design's Ubuntu
/// nodes needed it); ``allow_privilege_escalation`` stays on because rootlesskit's set-uid
/// ``newuidmap`` fails without it (moby/buildkit#1671). Never privileged either way.
#[pyclass(module = "cicd_agents.k8s", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct BuilderSecurity {
    inner: RustSecurity,
}

#[pymethods]
impl BuilderSecurity {
    #[new]
    #[pyo3(signature = (*, sys_admin=false, allow_privilege_escalation=true))]
    fn new(sys_admin: bool, allow_privilege_escalation: bool) -> Self {
        BuilderSecurity {
            inner: RustSecurity {
                sys_admin,
                allow_privilege_escalation,
            },
        }
    }
    /// Whether ``CAP_SYS_ADMIN`` is added.
    #[getter]
    fn sys_admin(&self) -> bool {
        self.inner.sys_admin
    }
    /// Whether the builder may gain privileges through set-uid binaries.
    #[getter]
    fn allow_privilege_escalation(&self) -> bool {
        self.inner.allow_privilege_escalation
    }
    fn __repr__(&self) -> String {
        let b = |v: bool| if v { "True" } else { "False" };
        format!(
            "BuilderSecurity(sys_admin={}, allow_privilege_escalation={})",
            b(self.inner.sys_admin),
            b(self.inner.allow_privilege_escalation)
        )
    }
}

/// The chart write-back of ``BuildAndUpdateChart``'s ``update-chart`` step:
/// ``ChartUpdate(repo, branch, file, key, tool_image)`` (the chart repository, the branch
/// Argo CD watches, the values file in it, the key path of the tag such as ``image.tag``, and
/// an image with the ``cicd-agents`` binary and git, such as one built from
/// ``images/tool/Dockerfile``).
#[pyclass(module = "cicd_agents.k8s", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct ChartUpdate {
    inner: RustChartUpdate,
}

#[pymethods]
impl ChartUpdate {
    #[new]
    fn new(repo: String, branch: String, file: String, key: String, tool_image: String) -> Self {
        ChartUpdate {
            inner: RustChartUpdate {
                repo,
                branch,
                file,
                key,
                tool_image,
            },
        }
    }
    /// The chart repository (HTTPS).
    #[getter]
    fn repo(&self) -> &str {
        &self.inner.repo
    }
    /// The branch Argo CD watches.
    #[getter]
    fn branch(&self) -> &str {
        &self.inner.branch
    }
    /// The values file inside the repository.
    #[getter]
    fn file(&self) -> &str {
        &self.inner.file
    }
    /// The key path of the tag, e.g. ``image.tag``.
    #[getter]
    fn key(&self) -> &str {
        &self.inner.key
    }
    /// An image containing the ``cicd-agents`` binary.
    #[getter]
    fn tool_image(&self) -> &str {
        &self.inner.tool_image
    }
    fn __repr__(&self) -> String {
        let c = &self.inner;
        format!(
            "ChartUpdate(repo={:?}, branch={:?}, file={:?}, key={:?}, tool_image={:?})",
            c.repo, c.branch, c.file, c.key, c.tool_image
        )
    }
}

/// One Kubernetes object: a ``Job``, ``Deployment``, ``Service`` or Argo ``WorkflowTemplate``.
///
/// ``to_yaml()`` is one YAML document, ``to_dict()`` the object as the API server takes it
/// (camelCase keys); ``Manifest.from_dict(d)`` reads one back. Manifests compare equal when
/// the objects are equal.
#[pyclass(module = "cicd_agents.k8s", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct Manifest {
    inner: RustManifest,
}

fn manifests(items: Vec<RustManifest>) -> Vec<Manifest> {
    items.into_iter().map(|inner| Manifest { inner }).collect()
}

#[pymethods]
impl Manifest {
    /// Reads one object from a dict (the form ``to_dict()`` returns, or ``yaml.safe_load``'s).
    #[staticmethod]
    fn from_dict(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Manifest> {
        if data.cast::<PyMapping>().is_err() {
            return Err(PyTypeError::new_err(format!(
                "data must be a dict, not {}",
                type_name(data)
            )));
        }
        // JSON is YAML: the library's reader picks the type by apiVersion and kind.
        let text: String = py
            .import("json")?
            .call_method1("dumps", (data,))?
            .extract()?;
        let mut parsed = rust_parse_yaml(&text).map_err(from_k8s)?;
        match (parsed.pop(), parsed.is_empty()) {
            (Some(inner), true) => Ok(Manifest { inner }),
            _ => Err(errors::K8sError::new_err(
                "from_dict: expected exactly one object",
            )),
        }
    }
    /// The object's kind: ``"Job"``, ``"Deployment"``, ``"Service"`` or ``"WorkflowTemplate"``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    /// Its ``metadata.name`` (or ``generateName``).
    #[getter]
    fn name(&self) -> String {
        self.inner.name()
    }
    /// Its namespace, or None.
    #[getter]
    fn namespace(&self) -> Option<String> {
        let meta = match &self.inner {
            RustManifest::Job(job) => &job.metadata,
            RustManifest::Deployment(deployment) => &deployment.metadata,
            RustManifest::Service(service) => &service.metadata,
            RustManifest::StatefulSet(set) => &set.metadata,
            RustManifest::WorkflowTemplate(template) => &template.metadata,
        };
        meta.namespace.clone()
    }
    /// This object as one YAML document (no leading ``---``).
    fn to_yaml(&self) -> PyResult<String> {
        self.inner.to_yaml().map_err(from_k8s)
    }
    /// This object as a JSON-compatible dict, as the API server takes it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner {
            RustManifest::Job(job) => to_dict(py, job),
            RustManifest::Deployment(deployment) => to_dict(py, deployment),
            RustManifest::Service(service) => to_dict(py, service),
            RustManifest::StatefulSet(set) => to_dict(py, set),
            RustManifest::WorkflowTemplate(template) => to_dict(py, template),
        }
    }
    fn __repr__(&self) -> String {
        format!("Manifest({}, {:?})", self.inner.kind(), self.inner.name())
    }
}

/// Renders manifests as a multi-document YAML stream, each document starting with ``---``,
/// ready for ``kubectl apply -f -``. Takes an iterable of ``Manifest`` (or one).
#[pyfunction]
pub fn render_yaml(manifests: &Bound<'_, PyAny>) -> PyResult<String> {
    let items: Vec<RustManifest> = if let Ok(one) = manifests.cast::<Manifest>() {
        vec![one.get().inner.clone()]
    } else {
        let mut items = Vec::new();
        for item in manifests.try_iter()? {
            let item = item?;
            let manifest = item.cast::<Manifest>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "render_yaml takes Manifest objects, not {}",
                    type_name(&item)
                ))
            })?;
            items.push(manifest.get().inner.clone());
        }
        items
    };
    rust_render_yaml(&items).map_err(from_k8s)
}

/// Reads a multi-document YAML stream back into a list of ``Manifest`` (``batch/v1`` Job,
/// ``apps/v1`` Deployment, ``v1`` Service, Argo WorkflowTemplate). Raises ``K8sError``
/// naming the document for anything else.
#[pyfunction]
pub fn parse_yaml(text: &str) -> PyResult<Vec<Manifest>> {
    rust_parse_yaml(text).map(manifests).map_err(from_k8s)
}

/// `{"requests": {...}, "limits": {...}}` (the Kubernetes form) as `ResourceRequirements`.
fn resources(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
    option: &str,
) -> PyResult<Option<ResourceRequirements>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if value.cast::<PyMapping>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "{option} must be a dict {{\"requests\": {{\"cpu\": \"1\"}}, \"limits\": {{\"memory\": \"2Gi\"}}}}, not {}",
            type_name(value)
        )));
    }
    let text: String = py
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| errors::invalid_option(option, err.to_string()))
}

fn labels(value: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, String>> {
    str_map(value, "labels")
}

fn security(base: Option<BuilderSecurity>, sys_admin: Option<bool>) -> RustSecurity {
    let mut security = base.map(|s| s.inner).unwrap_or_default();
    if let Some(sys_admin) = sys_admin {
        security.sys_admin = sys_admin;
    }
    security
}

/// A `#[pymethods]` block for a class built on the library's `BuildStepOptions` (``BuildJob``,
/// ``BuildAndUpdateChart``): its constructor takes the class's own arguments (`new(...)`: their
/// Python signature, then `fn new(...)`: their Rust parameters) followed by the build step's
/// keywords, which are declared and translated here once; the constructor's body receives
/// them as `BuildStepOptions` under the name after `with`. Further methods pass through.
macro_rules! build_step_methods {
    (
        impl $class:ident {
            new($($signature:tt)*)
            fn new($($param:ident: $ty:ty),+ $(,)?) with $step:ident $body:block
            $($methods:tt)*
        }
    ) => {
        #[pymethods]
        impl $class {
            #[new]
            #[pyo3(signature = ($($signature)*, namespace=None, context_subdir=None, cache_ref=None, insecure_cache_registry=false, insecure_registry=false, registry_secret=Some(DEFAULT_REGISTRY_SECRET.to_string()), git_token=None, buildkit_image=None, builder=None, kaniko_image=None, security=None, sys_admin=None, resources=None, service_account=None, labels=None))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                py: Python<'_>,
                $($param: $ty,)+
                namespace: Option<String>,
                context_subdir: Option<String>,
                cache_ref: Option<String>,
                insecure_cache_registry: bool,
                insecure_registry: bool,
                registry_secret: Option<String>,
                git_token: Option<SecretKeyRef>,
                buildkit_image: Option<String>,
                builder: Option<String>,
                kaniko_image: Option<String>,
                security: Option<BuilderSecurity>,
                sys_admin: Option<bool>,
                resources: Option<&Bound<'_, PyAny>>,
                service_account: Option<String>,
                labels: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<Self> {
                let defaults = BuildStepOptions::default();
                let $step = BuildStepOptions {
                    namespace,
                    context_subdir,
                    cache_ref,
                    insecure_cache_registry,
                    insecure_registry,
                    registry_secret,
                    git_token: git_token.map(|t| t.inner),
                    buildkit_image: buildkit_image.unwrap_or(defaults.buildkit_image),
                    engine: match builder {
                        Some(name) => name.parse().map_err(from_k8s)?,
                        None => defaults.engine,
                    },
                    kaniko_image: kaniko_image.unwrap_or(defaults.kaniko_image),
                    security: self::security(security, sys_admin),
                    resources: self::resources(py, resources, "resources")?,
                    service_account,
                    labels: self::labels(labels)?,
                };
                Ok($body)
            }

            $($methods)*
        }
    };
}

/// A one-shot rootless BuildKit build ``Job``: clones ``git_url`` at ``git_ref`` inside
/// BuildKit, builds ``dockerfile`` and pushes ``image:tag``, with registry cache import and
/// export when ``cache_ref`` is given. Values reach the container as environment variables,
/// never as shell text.
///
/// ``BuildJob(name, git_url, image, *, namespace=None, generate_name=False,
/// git_ref="refs/heads/main", context_subdir=None, dockerfile="Dockerfile", tag="latest",
/// push=True, cache_ref=None, insecure_cache_registry=False, insecure_registry=False, registry_secret="regcred",
/// git_token=None, buildkit_image=DEFAULT_BUILDKIT_IMAGE, builder="buildkit" (or "kaniko"),
/// kaniko_image=DEFAULT_KANIKO_IMAGE, security=None, sys_admin=None,
/// resources=None, ttl_seconds_after_finished=3600, active_deadline_seconds=3600,
/// backoff_limit=0, service_account=None, labels=None)``; ``registry_secret=None`` pushes
/// anonymously, ``git_token`` is a ``SecretKeyRef``, ``resources`` a dict in the Kubernetes
/// form. ``build()`` checks the values (``InvalidOption`` names the option) and returns the
/// ``Manifest``.
#[pyclass(module = "cicd_agents.k8s", frozen)]
pub struct BuildJob {
    inner: RustBuildJob,
}

build_step_methods! {
    impl BuildJob {
        new(name, git_url, image, *, generate_name=false, git_ref=None, dockerfile=None, tag=None, push=true, ttl_seconds_after_finished=None, active_deadline_seconds=None, backoff_limit=None)
        fn new(
            name: String,
            git_url: String,
            image: String,
            generate_name: bool,
            git_ref: Option<String>,
            dockerfile: Option<String>,
            tag: Option<String>,
            push: bool,
            ttl_seconds_after_finished: Option<i32>,
            active_deadline_seconds: Option<i64>,
            backoff_limit: Option<i32>,
        ) with step {
            let mut job = RustBuildJob::new(name, git_url, image)
                .options(step)
                .generate_name(generate_name)
                .push(push);
            set_some!(job; git_ref, dockerfile, tag, ttl_seconds_after_finished, active_deadline_seconds, backoff_limit);
            BuildJob { inner: job }
        }

        /// Checks the values and returns the ``Job`` as a ``Manifest``.
        fn build(&self) -> PyResult<Manifest> {
            let job = self.inner.build().map_err(from_k8s)?;
            Ok(Manifest { inner: job.into() })
        }

        fn __repr__(&self) -> String {
            "BuildJob(...)".to_string()
        }
    }
}

/// The keywords `BuildkitDaemon` and `BuildkitPool` share, translated once onto the
/// library's `BuildkitDaemonOptions` (starting from the builder's own defaults).
struct DaemonKeywords<'a, 'py> {
    namespace: Option<String>,
    replicas: Option<i32>,
    image: Option<String>,
    port: Option<i32>,
    tls_secret: Option<String>,
    registry_secret: Option<String>,
    security: Option<BuilderSecurity>,
    sys_admin: Option<bool>,
    resources: Option<&'a Bound<'py, PyAny>>,
    labels: Option<&'a Bound<'py, PyAny>>,
}

impl DaemonKeywords<'_, '_> {
    fn apply(
        self,
        py: Python<'_>,
        mut options: BuildkitDaemonOptions,
    ) -> PyResult<BuildkitDaemonOptions> {
        options.namespace = self.namespace.or(options.namespace);
        options.replicas = self.replicas.unwrap_or(options.replicas);
        options.image = self.image.unwrap_or(options.image);
        options.port = self.port.unwrap_or(options.port);
        options.tls_secret = self.tls_secret.unwrap_or(options.tls_secret);
        options.registry_secret = self.registry_secret;
        options.security = security(self.security, self.sys_admin);
        if let Some(v) = resources(py, self.resources, "resources")? {
            options.resources = Some(v);
        }
        options.labels.extend(labels(self.labels)?);
        Ok(options)
    }
}

/// A long-running rootless ``buildkitd``: a ``Deployment`` listening on TCP with mutual TLS
/// (certificates from a Secret with ``ca.pem``, ``cert.pem``, ``key.pem``) and a ``Service``.
///
/// ``BuildkitDaemon(name, *, namespace=None, replicas=1, image=DEFAULT_BUILDKIT_IMAGE,
/// port=1234, tls_secret="buildkit-daemon-certs", registry_secret=None, security=None,
/// sys_admin=None, resources=None, labels=None)``. ``manifests()`` returns the Deployment and
/// the Service in the order to apply them; ``address`` is what clients in the cluster dial.
#[pyclass(module = "cicd_agents.k8s", frozen)]
pub struct BuildkitDaemon {
    inner: RustDaemon,
}

#[pymethods]
impl BuildkitDaemon {
    #[new]
    #[pyo3(signature = (name, *, namespace=None, replicas=None, image=None, port=None, tls_secret=None, registry_secret=None, security=None, sys_admin=None, resources=None, labels=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        namespace: Option<String>,
        replicas: Option<i32>,
        image: Option<String>,
        port: Option<i32>,
        tls_secret: Option<String>,
        registry_secret: Option<String>,
        security: Option<BuilderSecurity>,
        sys_admin: Option<bool>,
        resources: Option<&Bound<'_, PyAny>>,
        labels: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let daemon = RustDaemon::new(name);
        let options = DaemonKeywords {
            namespace,
            replicas,
            image,
            port,
            tls_secret,
            registry_secret,
            security,
            sys_admin,
            resources,
            labels,
        }
        .apply(py, daemon.daemon_options().clone())?;
        let daemon = daemon.options(options);
        Ok(BuildkitDaemon { inner: daemon })
    }

    /// The address clients use inside the cluster, e.g. ``tcp://buildkitd.ci.svc:1234``.
    #[getter]
    fn address(&self) -> String {
        self.inner.address()
    }

    /// The ``Deployment``.
    fn deployment(&self) -> PyResult<Manifest> {
        Ok(Manifest {
            inner: self.inner.deployment().map_err(from_k8s)?.into(),
        })
    }

    /// The ``Service``.
    fn service(&self) -> PyResult<Manifest> {
        Ok(Manifest {
            inner: self.inner.service().map_err(from_k8s)?.into(),
        })
    }

    /// The Deployment and the Service, in the order to apply them.
    fn manifests(&self) -> PyResult<Vec<Manifest>> {
        self.inner.manifests().map(manifests).map_err(from_k8s)
    }

    fn __repr__(&self) -> String {
        format!("BuildkitDaemon(address={:?})", self.inner.address())
    }
}

/// A pool of rootless ``buildkitd`` replicas for ``BuilderPool``: a ``StatefulSet`` (a cache
/// volume per replica from ``volumeClaimTemplates``, pods started in parallel) and a headless
/// ``Service`` of the same name (``clusterIP: None``, ready pods only), mutual TLS as
/// ``BuildkitDaemon``.
///
/// ``BuildkitPool(name="buildkitd-pool", *, namespace=None, replicas=3, image=DEFAULT_BUILDKIT_IMAGE,
/// port=1234, tls_secret="buildkit-daemon-certs", registry_secret=None, cache_size="50Gi",
/// storage_class=None, security=None, sys_admin=None, resources=None, labels=None)``.
/// ``address`` is the ``dns+tcp://`` address ``BuilderPool`` discovers the replicas from;
/// ``certificate_dns_names`` the SANs the shared server certificate needs.
#[pyclass(module = "cicd_agents.k8s", frozen)]
pub struct BuildkitPool {
    inner: RustPool,
}

#[pymethods]
impl BuildkitPool {
    #[new]
    #[pyo3(signature = (name="buildkitd-pool", *, namespace=None, replicas=None, image=None, port=None, tls_secret=None, registry_secret=None, cache_size=None, storage_class=None, security=None, sys_admin=None, resources=None, labels=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: &str,
        namespace: Option<String>,
        replicas: Option<i32>,
        image: Option<String>,
        port: Option<i32>,
        tls_secret: Option<String>,
        registry_secret: Option<String>,
        cache_size: Option<String>,
        storage_class: Option<String>,
        security: Option<BuilderSecurity>,
        sys_admin: Option<bool>,
        resources: Option<&Bound<'_, PyAny>>,
        labels: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut pool = RustPool::new(name).storage_class(storage_class);
        if let Some(v) = cache_size {
            pool = pool.cache_size(v);
        }
        let options = DaemonKeywords {
            namespace,
            replicas,
            image,
            port,
            tls_secret,
            registry_secret,
            security,
            sys_admin,
            resources,
            labels,
        }
        .apply(py, pool.daemon_options().clone())?;
        let pool = pool.options(options);
        Ok(BuildkitPool { inner: pool })
    }

    /// The pool's address for ``BuilderPool``, e.g. ``dns+tcp://buildkitd-pool.ci.svc:1234``.
    #[getter]
    fn address(&self) -> String {
        self.inner.address()
    }

    /// Each replica's own address, ``tcp://<name>-<i>.<name>.<namespace>.svc:<port>``.
    #[getter]
    fn member_addresses(&self) -> Vec<String> {
        self.inner.member_addresses()
    }

    /// The DNS names (SANs) the replicas' shared server certificate must carry.
    #[getter]
    fn certificate_dns_names(&self) -> Vec<String> {
        self.inner.certificate_dns_names()
    }

    /// The ``StatefulSet``.
    fn statefulset(&self) -> PyResult<Manifest> {
        Ok(Manifest {
            inner: self.inner.statefulset().map_err(from_k8s)?.into(),
        })
    }

    /// The headless ``Service``.
    fn service(&self) -> PyResult<Manifest> {
        Ok(Manifest {
            inner: self.inner.service().map_err(from_k8s)?.into(),
        })
    }

    /// The Service and the StatefulSet, in the order to apply them.
    fn manifests(&self) -> PyResult<Vec<Manifest>> {
        self.inner.manifests().map(manifests).map_err(from_k8s)
    }

    fn __repr__(&self) -> String {
        format!("BuildkitPool(address={:?})", self.inner.address())
    }
}

/// The original pipeline as an Argo ``WorkflowTemplate``: build with rootless BuildKit, then
/// write the new tag into the Helm chart with ``cicd-agents chart set-image``. Parameters
/// ``image-tag``, ``git-ref`` and ``dockerfile``.
///
/// ``BuildAndUpdateChart(name, git_url, image, chart, *, namespace=None, default_tag="latest",
/// default_git_ref="refs/heads/main", default_dockerfile="Dockerfile", context_subdir=None,
/// cache_ref=None, insecure_cache_registry=False, insecure_registry=False, registry_secret="regcred"
/// (None: anonymous push), github_token=SecretKeyRef("github-token", "token"), git_token=None, buildkit_image=None,
/// builder="buildkit" (or "kaniko"), kaniko_image=None,
/// security=None, sys_admin=None, resources=None, tool_uid=65532, service_account=None,
/// active_deadline_seconds=3600, ttl_seconds_after_completion=86400, labels=None)``;
/// ``chart`` is a ``ChartUpdate``. ``build()`` returns the ``Manifest``.
#[pyclass(module = "cicd_agents.k8s", frozen)]
pub struct BuildAndUpdateChart {
    inner: RustWorkflow,
}

build_step_methods! {
    impl BuildAndUpdateChart {
        new(name, git_url, image, chart, *, default_tag=None, default_git_ref=None, default_dockerfile=None, github_token=None, tool_uid=None, active_deadline_seconds=None, ttl_seconds_after_completion=None)
        fn new(
            name: String,
            git_url: String,
            image: String,
            chart: ChartUpdate,
            default_tag: Option<String>,
            default_git_ref: Option<String>,
            default_dockerfile: Option<String>,
            github_token: Option<SecretKeyRef>,
            tool_uid: Option<i64>,
            active_deadline_seconds: Option<i64>,
            ttl_seconds_after_completion: Option<i32>,
        ) with step {
            let mut workflow = RustWorkflow::new(name, git_url, image, chart.inner).options(step);
            set_some!(workflow; default_tag, default_git_ref, default_dockerfile);
            if let Some(v) = github_token {
                workflow = workflow.github_token(v.inner);
            }
            set_some!(workflow; tool_uid, active_deadline_seconds, ttl_seconds_after_completion);
            BuildAndUpdateChart { inner: workflow }
        }

        /// Checks the values and returns the ``WorkflowTemplate`` as a ``Manifest``.
        fn build(&self) -> PyResult<Manifest> {
            Ok(Manifest {
                inner: self.inner.build().map_err(from_k8s)?.into(),
            })
        }

        fn __repr__(&self) -> String {
            "BuildAndUpdateChart(...)".to_string()
        }
    }
}

fn builder(name: &str) -> PyResult<Builder> {
    match name {
        "buildkit" => Ok(Builder::Buildkit),
        "buildah" => Ok(Builder::Buildah),
        other => Err(errors::invalid_option(
            "builder",
            format!("{other:?}: expected \"buildkit\" or \"buildah\""),
        )),
    }
}

/// An ephemeral CI runner ``Job`` with a rootless builder sidecar: made with
/// ``RunnerJob.github(name, jit_config, **options)`` (a GitHub Actions runner registered by
/// the JIT configuration in the ``SecretKeyRef`` ``jit_config``) or
/// ``RunnerJob.circleci(name, token, **options)`` (a CircleCI machine runner 3, single task).
///
/// Options: ``namespace``, ``generate_name=False``, ``runner_image``, ``runner_uid``,
/// ``builder`` (``"buildkit"``, the default, or ``"buildah"``), ``builder_image``,
/// ``security``, ``sys_admin``, ``storage_driver="vfs"`` (Buildah), ``registry_secret=
/// "regcred"`` (None: none), ``workspace_size="10Gi"``, ``storage_class``,
/// ``ttl_seconds_after_finished=600``, ``active_deadline_seconds=21600``, ``service_account``,
/// ``runner_resources``, ``builder_resources``, ``labels``. ``build()`` returns the ``Manifest``.
#[pyclass(module = "cicd_agents.k8s", frozen)]
pub struct RunnerJob {
    inner: RustRunnerJob,
}

/// The options `RunnerJob.github()` and `RunnerJob.circleci()` share.
struct RunnerOptions<'a, 'py> {
    namespace: Option<String>,
    generate_name: bool,
    runner_image: Option<String>,
    runner_uid: Option<i64>,
    builder: Option<String>,
    builder_image: Option<String>,
    security: Option<BuilderSecurity>,
    sys_admin: Option<bool>,
    storage_driver: Option<String>,
    registry_secret: Option<String>,
    workspace_size: Option<String>,
    storage_class: Option<String>,
    ttl_seconds_after_finished: Option<i32>,
    active_deadline_seconds: Option<i64>,
    service_account: Option<String>,
    runner_resources: Option<&'a Bound<'py, PyAny>>,
    builder_resources: Option<&'a Bound<'py, PyAny>>,
    labels: Option<&'a Bound<'py, PyAny>>,
}

impl RunnerOptions<'_, '_> {
    fn apply(self, py: Python<'_>, mut job: RustRunnerJob) -> PyResult<RunnerJob> {
        job = job
            .generate_name(self.generate_name)
            .registry_secret(self.registry_secret)
            .security(security(self.security, self.sys_admin));
        if let Some(v) = self.builder {
            job = job.builder(builder(&v)?);
        }
        set_some!(job, self; namespace, runner_image, runner_uid, builder_image, storage_driver,
            workspace_size, storage_class, ttl_seconds_after_finished, active_deadline_seconds,
            service_account);
        if let Some(v) = resources(py, self.runner_resources, "runner_resources")? {
            job = job.runner_resources(v);
        }
        if let Some(v) = resources(py, self.builder_resources, "builder_resources")? {
            job = job.builder_resources(v);
        }
        for (key, value) in labels(self.labels)? {
            job = job.label(key, value);
        }
        Ok(RunnerJob { inner: job })
    }
}

/// `RunnerJob`'s methods, with one static constructor per `name(secret) => library
/// constructor` given: each takes the `RunnerOptions` keywords, written here once.
macro_rules! runner_job_methods {
    ($($(#[$doc:meta])* fn $kind:ident(name, $secret:ident) => $ctor:path;)+) => {
        #[pymethods]
        impl RunnerJob {
            $(
                $(#[$doc])*
                #[staticmethod]
                #[pyo3(signature = (name, $secret, *, namespace=None, generate_name=false, runner_image=None, runner_uid=None, builder=None, builder_image=None, security=None, sys_admin=None, storage_driver=None, registry_secret=Some(DEFAULT_REGISTRY_SECRET.to_string()), workspace_size=None, storage_class=None, ttl_seconds_after_finished=None, active_deadline_seconds=None, service_account=None, runner_resources=None, builder_resources=None, labels=None))]
                #[allow(clippy::too_many_arguments)]
                fn $kind(
                    py: Python<'_>,
                    name: String,
                    $secret: SecretKeyRef,
                    namespace: Option<String>,
                    generate_name: bool,
                    runner_image: Option<String>,
                    runner_uid: Option<i64>,
                    builder: Option<String>,
                    builder_image: Option<String>,
                    security: Option<BuilderSecurity>,
                    sys_admin: Option<bool>,
                    storage_driver: Option<String>,
                    registry_secret: Option<String>,
                    workspace_size: Option<String>,
                    storage_class: Option<String>,
                    ttl_seconds_after_finished: Option<i32>,
                    active_deadline_seconds: Option<i64>,
                    service_account: Option<String>,
                    runner_resources: Option<&Bound<'_, PyAny>>,
                    builder_resources: Option<&Bound<'_, PyAny>>,
                    labels: Option<&Bound<'_, PyAny>>,
                ) -> PyResult<RunnerJob> {
                    RunnerOptions {
                        namespace,
                        generate_name,
                        runner_image,
                        runner_uid,
                        builder,
                        builder_image,
                        security,
                        sys_admin,
                        storage_driver,
                        registry_secret,
                        workspace_size,
                        storage_class,
                        ttl_seconds_after_finished,
                        active_deadline_seconds,
                        service_account,
                        runner_resources,
                        builder_resources,
                        labels,
                    }
                    .apply(py, $ctor(name, $secret.inner))
                }
            )+

            /// Checks the values and returns the ``Job`` as a ``Manifest``.
            fn build(&self) -> PyResult<Manifest> {
                Ok(Manifest {
                    inner: self.inner.build().map_err(from_k8s)?.into(),
                })
            }

            fn __repr__(&self) -> String {
                "RunnerJob(...)".to_string()
            }
        }
    };
}

runner_job_methods! {
    /// A GitHub Actions runner Job (see the class documentation for the options).
    fn github(name, jit_config) => RustRunnerJob::github;
    /// A CircleCI machine runner Job (see the class documentation for the options).
    fn circleci(name, token) => RustRunnerJob::circleci;
}

/// Adds the `k8s` submodule to the native module.
pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let m = PyModule::new(parent.py(), "k8s")?;
    m.add_class::<SecretKeyRef>()?;
    m.add_class::<BuilderSecurity>()?;
    m.add_class::<ChartUpdate>()?;
    m.add_class::<Manifest>()?;
    m.add_class::<BuildJob>()?;
    m.add_class::<BuildkitDaemon>()?;
    m.add_class::<BuildkitPool>()?;
    m.add_class::<BuildAndUpdateChart>()?;
    m.add_class::<RunnerJob>()?;
    m.add_function(wrap_pyfunction!(render_yaml, &m)?)?;
    m.add_function(wrap_pyfunction!(parse_yaml, &m)?)?;
    m.add("K8sError", parent.py().get_type::<errors::K8sError>())?;
    m.add("ARGO_API_VERSION", ARGO_API_VERSION)?;
    m.add("BUILD_SCRIPT", BUILD_SCRIPT)?;
    m.add("BUILDAH_SERVER_SCRIPT", BUILDAH_SERVER_SCRIPT)?;
    m.add("BUILD_REQUESTS_DIR", BUILD_REQUESTS_DIR)?;
    m.add("BUILDKIT_DOCKER_CONFIG_DIR", BUILDKIT_DOCKER_CONFIG_DIR)?;
    m.add("BUILDKIT_STATE_DIR", BUILDKIT_STATE_DIR)?;
    m.add("BUILDKIT_UID", BUILDKIT_UID)?;
    m.add("DEFAULT_BUILDAH_IMAGE", DEFAULT_BUILDAH_IMAGE)?;
    m.add("DEFAULT_BUILDKIT_IMAGE", DEFAULT_BUILDKIT_IMAGE)?;
    m.add(
        "DEFAULT_CIRCLECI_RUNNER_IMAGE",
        DEFAULT_CIRCLECI_RUNNER_IMAGE,
    )?;
    m.add("DEFAULT_GITHUB_RUNNER_IMAGE", DEFAULT_GITHUB_RUNNER_IMAGE)?;
    m.add("DEFAULT_REGISTRY_SECRET", DEFAULT_REGISTRY_SECRET)?;
    m.add("NO_PROCESS_SANDBOX", NO_PROCESS_SANDBOX)?;
    m.add("RUNNER_BUILDKIT_ADDR", RUNNER_BUILDKIT_ADDR)?;
    parent.add_submodule(&m)?;
    Ok(())
}
