//! The exception hierarchy of `cicd_agents` and the conversion of the Rust
//! crates' errors into it.
//!
//! ```text
//! cicd_agents.Error
//! ├── ConnectionError     the daemon cannot be reached (not the builtin ConnectionError)
//! ├── InvalidOption       an argument that cannot be used (bad address, output spec, …)
//! ├── BuildError          the build failed: step, file, line, log tail, registry
//! │   └── RegistryAuthError   a registry refused the credentials (also an AuthError)
//! ├── AuthError           credentials were refused (registry or git)
//! │   └── GitAuthError        the git server refused the token (also a GitError)
//! ├── Cancelled           the operation was cancelled
//! ├── ValuesError         a values file could not be edited
//! ├── GitError            the git write-back failed: kind, url, operation, status
//! │   ├── GitPushRejected the push was rejected (hook, protected branch, branch kept moving)
//! │   └── GitAuthError    (see above)
//! ├── InvalidPipeline     a pipeline definition is invalid
//! ├── PoolError           a builder pool could not run the call
//! │   └── PoolUnavailable no daemon of the pool could be used
//! └── K8sError            a Kubernetes manifest could not be rendered or parsed
//! ```
//!
//! Every exception's message is the Rust error's `Display`, i.e. what the
//! command line prints; structured details are attributes.

use cicd_agents_buildkit::build::BuildError as RustBuildError;
use cicd_agents_buildkit::build::RegistryFailure as RustRegistryFailure;
use cicd_agents_buildkit::flags::OptionField;
use cicd_agents_buildkit::Error as BuildkitError;
use cicd_agents_pipeline::definition::DefinitionError;
use cicd_agents_pipeline::error::{Error as PipelineError, GitError as RustGitError};
use cicd_agents_pipeline::run::RunError;
use cicd_agents_types::{ErrorKind, HasKind};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use pyo3::BoundObject;
use tonic::Code;

pyo3::create_exception!(
    cicd_agents,
    Error,
    PyException,
    "Base class of every error raised by cicd_agents.\n\nThe message is the same text the `cicd-agents` command line prints."
);
pyo3::create_exception!(
    cicd_agents,
    ConnectionError,
    Error,
    "The BuildKit daemon cannot be reached (refused, no such socket, TLS handshake, timeout,\nno daemon found at all), or the connection to it broke while something was under way\n(reset, closed, silent past the keepalive).\n\nThis is `cicd_agents.ConnectionError`, a subclass of `cicd_agents.Error`; it is *not*\nthe builtin `ConnectionError` (catch it as `cicd_agents.ConnectionError`).\n\nAttributes: `address` (the address dialled, or None), `during` (what was happening when\nthe connection broke: \"uploading the build context\", \"solving\", \"exporting/pushing\",\n\"reading progress\", \"calling Info\", ...; None when it could not be reached at all)."
);
pyo3::create_exception!(
    cicd_agents,
    InvalidOption,
    Error,
    "An argument cannot be used: a malformed address, output, cache or secret spec, a\nmissing context directory or Dockerfile, an unknown progress mode, ...\n\nAttributes: `option` (the option's name) and `reason`."
);
pyo3::create_exception!(
    cicd_agents,
    BuildError,
    Error,
    "The build failed.\n\nAttributes: `message` (the daemon's message), `step` (e.g. `[2/3] RUN make`),\n`file` and `line` (where in the Dockerfile), `source_lines` (the step's source),\n`log_tail` (the last lines the step printed) and `registry` (a `RegistryFailure` when the\nbuild failed talking to a registry, else None). `str(error)` is the full report the\ncommand line prints; its first line names the registry and the operation."
);
pyo3::create_exception!(
    cicd_agents,
    AuthError,
    Error,
    "Credentials were refused: the daemon rejected the call as unauthenticated, or the git\nserver rejected the token."
);
pyo3::create_exception!(
    cicd_agents,
    Cancelled,
    Error,
    "The operation was cancelled (e.g. the daemon cancelled the build)."
);
pyo3::create_exception!(
    cicd_agents,
    ValuesError,
    Error,
    "A Helm values file could not be edited: not YAML, key path not found, target not a\nscalar, shared anchor, ... Nothing was changed.\n\nAttributes: `file`, `key` (the key path) and `line` (1-based), each None where unknown."
);
pyo3::create_exception!(
    cicd_agents,
    GitError,
    Error,
    "The git write-back failed (clone, commit or push). Messages never contain the token.\n\nAttributes: `kind` (`auth`, `server`, `unreachable`, `not_found`, `rejected`, `other`),\n`url` (without credentials), `operation` (`clone`, `fetch`, `ls-remote`, `push`) and\n`status` (the HTTP status), each None when unknown."
);
pyo3::create_exception!(
    cicd_agents,
    GitPushRejected,
    GitError,
    "The push was rejected: by a hook or a protected branch, or every retry found the\nbranch moved again.\n\nAttributes: `url`, `branch`, `reason`, `attempts` (None when not retried)."
);
pyo3::create_exception!(
    cicd_agents,
    PoolError,
    Error,
    "A builder pool could not run the call. Base class of `PoolUnavailable`.\n\nA build that ran on a pool daemon and failed raises the build's own class\n(`BuildError`, ...) with the extra attributes `address` and `passed_over`."
);
pyo3::create_exception!(
    cicd_agents,
    PoolUnavailable,
    PoolError,
    "No daemon of a builder pool could be used.\n\nAttributes: `key` (the routing key) and `tried` (a list of `Attempt`: every daemon, in\nthe order tried, with why it was passed over)."
);
pyo3::create_exception!(
    cicd_agents,
    K8sError,
    Error,
    "A Kubernetes manifest could not be rendered or read back (`cicd_agents.k8s`).\n\nAttributes: `index` (the YAML document, counting from 1) when parsing, else None.\nInvalid builder options raise `InvalidOption` instead."
);
pyo3::create_exception!(
    cicd_agents,
    InvalidPipeline,
    Error,
    "A pipeline definition is invalid."
);

static REGISTRY_AUTH_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static GIT_AUTH_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A class deriving from two of the exception classes above (`create_exception!` takes one
/// base): `type(name, bases, {...})`.
fn two_base_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    bases: (Bound<'py, PyType>, Bound<'py, PyType>),
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    let class = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let namespace = PyDict::new(py);
        namespace.set_item("__doc__", doc)?;
        namespace.set_item("__module__", "cicd_agents")?;
        let bases = PyTuple::new(py, [bases.0, bases.1])?;
        let class = py
            .get_type::<pyo3::types::PyType>()
            .call1((name, bases, namespace))?
            .cast_into::<PyType>()?;
        Ok(class.unbind())
    })?;
    Ok(class.bind(py).clone())
}

/// `RegistryAuthError(BuildError, AuthError)`.
fn registry_auth_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    two_base_class(
        py,
        &REGISTRY_AUTH_ERROR,
        "RegistryAuthError",
        (py.get_type::<BuildError>(), py.get_type::<AuthError>()),
        "A registry refused the build's credentials (HTTP 401/403) while pushing, exporting or\nimporting cache, or pulling. A BuildError (with `registry` set) and an AuthError.",
    )
}

/// `GitAuthError(GitError, AuthError)`.
fn git_auth_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    two_base_class(
        py,
        &GIT_AUTH_ERROR,
        "GitAuthError",
        (py.get_type::<GitError>(), py.get_type::<AuthError>()),
        "The git server refused the token (HTTP 401/403). A GitError (kind `auth`) and an\nAuthError.",
    )
}

/// A new exception of `class` with `message`, or a plain `fallback` if that fails.
fn new_of(
    class: PyResult<Bound<'_, PyType>>,
    message: String,
    fallback: fn(String) -> PyErr,
) -> PyErr {
    match class {
        Ok(class) => PyErr::from_type(class, message),
        Err(_) => fallback(message),
    }
}

/// Where a build failed talking to a registry (``BuildError.registry``).
#[pyclass(module = "cicd_agents", frozen)]
pub struct RegistryFailure {
    inner: RustRegistryFailure,
}

#[pymethods]
impl RegistryFailure {
    /// The registry's ``host[:port]``.
    #[getter]
    fn registry(&self) -> &str {
        &self.inner.registry
    }
    /// ``push``, ``cache export``, ``cache import`` or ``pull``.
    #[getter]
    fn operation(&self) -> &'static str {
        self.inner.operation.as_str()
    }
    /// The HTTP status the registry answered, or None (e.g. unreachable).
    #[getter]
    fn status(&self) -> Option<u16> {
        self.inner.status
    }
    /// ``auth``, ``server``, ``unreachable`` or ``other``.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }
    /// A short cause: ``401 Unauthorized``, ``connection refused``, ...
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }
    fn __str__(&self) -> String {
        self.inner.to_string()
    }
    fn __repr__(&self) -> String {
        format!(
            "RegistryFailure(registry={:?}, operation={:?}, status={}, kind={:?})",
            self.inner.registry,
            self.inner.operation.as_str(),
            self.inner
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "None".into()),
            self.inner.kind.as_str()
        )
    }
}

/// Adds the exception types to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("RegistryAuthError", registry_auth_error(py)?)?;
    m.add("GitAuthError", git_auth_error(py)?)?;
    m.add_class::<RegistryFailure>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConnectionError", py.get_type::<ConnectionError>())?;
    m.add("InvalidOption", py.get_type::<InvalidOption>())?;
    m.add("BuildError", py.get_type::<BuildError>())?;
    m.add("AuthError", py.get_type::<AuthError>())?;
    m.add("Cancelled", py.get_type::<Cancelled>())?;
    m.add("ValuesError", py.get_type::<ValuesError>())?;
    m.add("GitError", py.get_type::<GitError>())?;
    m.add("GitPushRejected", py.get_type::<GitPushRejected>())?;
    m.add("InvalidPipeline", py.get_type::<InvalidPipeline>())?;
    m.add("PoolError", py.get_type::<PoolError>())?;
    m.add("PoolUnavailable", py.get_type::<PoolUnavailable>())?;
    m.add("K8sError", py.get_type::<K8sError>())?;
    // `error_kind` (the library's error kind, e.g. "invalid input") is set on the errors of
    // the BuildKit client; None on the others.
    py.get_type::<Error>().setattr("error_kind", py.None())?;
    Ok(())
}

/// `InvalidOption` for `option`, worded like the library's own
/// `Error::InvalidOption` ("invalid {option}: {reason}").
pub fn invalid_option(option: &str, reason: impl Into<String>) -> PyErr {
    let reason = reason.into();
    let err = InvalidOption::new_err(format!("invalid {option}: {reason}"));
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("option", option);
        let _ = value.setattr("reason", reason.as_str());
        let _ = value.setattr("flag", py.None());
    });
    err
}

/// An error of the bindings themselves (should not happen; reported rather than panicking).
pub fn internal(what: impl std::fmt::Display) -> PyErr {
    Error::new_err(format!(
        "internal error in cicd_agents: {what} (please report this)"
    ))
}

/// Sets attributes on an exception instance, ignoring failures (an exception
/// with a missing attribute is better than a different exception).
pub(crate) fn with_attrs(err: PyErr, attrs: &[(&str, Option<Py<PyAny>>)]) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        for (name, attr) in attrs {
            let _ = match attr {
                Some(v) => value.setattr(*name, v.bind(py)),
                None => value.setattr(*name, py.None()),
            };
        }
    });
    err
}

pub(crate) fn obj<'py, T>(py: Python<'py>, value: T) -> Option<Py<PyAny>>
where
    T: IntoPyObject<'py>,
{
    value.into_pyobject(py).ok().map(|b| b.into_any().unbind())
}

/// The exception class of an error kind: the class of a library error follows its
/// `kind()` (the variant only adds attributes), as the command line's exit code does.
fn class_for(kind: ErrorKind, message: String) -> PyErr {
    match kind {
        ErrorKind::InvalidInput => InvalidOption::new_err(message),
        ErrorKind::Connection => ConnectionError::new_err(message),
        ErrorKind::BuildFailed => BuildError::new_err(message),
        ErrorKind::Cancelled => Cancelled::new_err(message),
        _ => Error::new_err(message),
    }
}

/// Converts a BuildKit client error.
pub fn from_buildkit(err: BuildkitError) -> PyErr {
    let message = err.to_string();
    from_buildkit_with_message(err, message)
}

/// [`from_buildkit`] with another message (e.g. naming the pool daemon that ran the build).
pub fn from_buildkit_with_message(err: BuildkitError, message: String) -> PyErr {
    let kind = err.kind();
    let converted = Python::attach(|py| match err {
        BuildkitError::InvalidAddress {
            address, reason, ..
        } => with_attrs(
            class_for(kind, message),
            &[
                ("option", obj(py, "addr")),
                ("reason", obj(py, reason.to_string())),
                ("address", obj(py, address)),
                ("flag", obj(py, "--addr")),
            ],
        ),
        BuildkitError::NoDaemonFound { tried } => with_attrs(
            class_for(kind, message),
            &[
                ("address", None),
                ("tried", obj(py, tried)),
                ("during", None),
            ],
        ),
        BuildkitError::Connect { address, reason } => with_attrs(
            class_for(kind, message),
            &[
                ("address", obj(py, address)),
                ("reason", obj(py, reason)),
                ("during", None),
            ],
        ),
        BuildkitError::ConnectTimeout { address, .. } => with_attrs(
            class_for(kind, message),
            &[
                ("address", obj(py, address)),
                ("reason", obj(py, "timeout")),
                ("during", None),
            ],
        ),
        BuildkitError::ConnectionLost {
            address,
            during,
            reason,
        } => with_attrs(
            class_for(kind, message),
            &[
                ("address", obj(py, address)),
                ("during", obj(py, during)),
                ("reason", obj(py, reason)),
            ],
        ),
        BuildkitError::Tls { path, reason } => with_attrs(
            class_for(kind, message),
            &[
                ("option", obj(py, "tls")),
                ("reason", obj(py, reason)),
                ("flag", None),
                ("path", path.and_then(|p| obj(py, p))),
            ],
        ),
        BuildkitError::Rpc {
            call,
            address,
            status,
        } => {
            let code = format!("{:?}", status.code());
            let base = match status.code() {
                Code::Unauthenticated | Code::PermissionDenied => AuthError::new_err(message),
                _ => class_for(kind, message),
            };
            let during = if status.code() == Code::Unavailable {
                obj(py, format!("calling {call}"))
            } else {
                None
            };
            with_attrs(
                base,
                &[
                    ("during", during),
                    ("call", obj(py, call)),
                    ("address", obj(py, address)),
                    ("code", obj(py, code)),
                    ("details", obj(py, status.message())),
                ],
            )
        }
        BuildkitError::InvalidOption {
            field,
            value,
            reason,
        } => with_attrs(
            InvalidOption::new_err(option_message(keyword(field), &value, &reason)),
            &[
                ("option", obj(py, keyword(field))),
                ("field", obj(py, field.name())),
                ("value", obj(py, value)),
                ("reason", obj(py, reason)),
                ("flag", None),
            ],
        ),
        BuildkitError::Io { path, source } => with_attrs(
            class_for(kind, message),
            &[
                ("path", obj(py, path)),
                ("reason", obj(py, source.to_string())),
            ],
        ),
        BuildkitError::Session(reason) => {
            with_attrs(class_for(kind, message), &[("reason", obj(py, reason))])
        }
        BuildkitError::Build(build) => from_build_error(py, *build, message),
        BuildkitError::Cancelled => class_for(kind, message),
    });
    with_attrs(
        converted,
        &[("error_kind", Python::attach(|py| obj(py, kind.as_str())))],
    )
}

/// [`from_buildkit`], naming the option by `keyword` (the argument the value came from) when
/// the library could not know it, e.g. a cache dict checked as plain `cache`.
pub fn from_buildkit_as(err: BuildkitError, keyword: &str) -> PyErr {
    match err {
        BuildkitError::InvalidOption {
            field,
            value,
            reason,
        } => {
            let err = InvalidOption::new_err(option_message(keyword, &value, &reason));
            Python::attach(|py| {
                let error = err.value(py);
                let _ = error.setattr("option", keyword);
                let _ = error.setattr("field", field.name());
                let _ = error.setattr("value", value.as_str());
                let _ = error.setattr("reason", reason.as_str());
                let _ = error.setattr("flag", py.None());
            });
            err
        }
        other => from_buildkit(other),
    }
}

/// The keyword argument of `Client.build` (or the connection) that sets `field`.
pub fn keyword(field: OptionField) -> &'static str {
    match field {
        OptionField::Context => "context",
        OptionField::Dockerfile => "file",
        OptionField::BuildArg => "build_args",
        OptionField::Label => "labels",
        OptionField::Platform => "platforms",
        OptionField::Network => "network",
        OptionField::AddHost => "add_hosts",
        OptionField::BuildContext => "build_contexts",
        OptionField::Secret => "secrets",
        OptionField::Ssh => "ssh",
        OptionField::Tag => "tags",
        OptionField::Push => "push",
        OptionField::Output => "outputs",
        OptionField::CacheFrom => "cache_from",
        OptionField::CacheTo => "cache_to",
        OptionField::Allow => "allow",
        OptionField::FrontendAttr => "frontend_attrs",
        OptionField::SharedKey => "shared_key",
        OptionField::Progress => "progress",
        OptionField::Attest => "attests",
        OptionField::Annotation => "annotations",
        OptionField::ShmSize => "shm_size",
        OptionField::Ulimit => "ulimits",
        OptionField::CgroupParent => "cgroup_parent",
        OptionField::MetadataFile => "metadata_file",
        OptionField::IidFile => "iidfile",
        OptionField::Keepalive => "keepalive",
    }
}

/// `invalid secrets="src=x": reason`, or `invalid secrets: reason` without a value.
fn option_message(keyword: &str, value: &str, reason: &str) -> String {
    if value.is_empty() {
        format!("invalid {keyword}: {reason}")
    } else {
        format!("invalid {keyword}={value:?}: {reason}")
    }
}

fn from_build_error(py: Python<'_>, error: RustBuildError, message: String) -> PyErr {
    let exit_code = error.exit_code().and_then(|code| obj(py, code));
    let log_tail = PyList::new(py, &error.log_tail)
        .ok()
        .map(|l| l.into_any().unbind());
    let source_lines = PyList::new(py, &error.source_lines)
        .ok()
        .map(|l| l.into_any().unbind());
    let base = if error.is_registry_auth_failure() {
        new_of(registry_auth_error(py), message, BuildError::new_err)
    } else {
        BuildError::new_err(message)
    };
    let registry = error
        .registry
        .and_then(|inner| Py::new(py, RegistryFailure { inner }).ok())
        .map(|r| r.into_any());
    with_attrs(
        base,
        &[
            ("message", obj(py, error.message)),
            ("step", error.step.and_then(|s| obj(py, s))),
            ("file", error.file.and_then(|f| obj(py, f))),
            ("line", error.line.and_then(|l| obj(py, l))),
            ("source_lines", source_lines),
            ("log_tail", log_tail),
            ("registry", registry),
            ("exit_code", exit_code),
        ],
    )
}

/// Converts a pipeline error (values edit, tag check, git write-back).
pub fn from_pipeline(err: PipelineError) -> PyErr {
    let message = err.to_string();
    from_pipeline_as(err, message)
}

/// [`from_pipeline`] with another message (e.g. with the run step as context).
fn from_pipeline_as(err: PipelineError, message: String) -> PyErr {
    Python::attach(|py| match err {
        PipelineError::Values(values) => {
            let (file, key, line) = values_place(&values);
            with_attrs(
                ValuesError::new_err(message),
                &[
                    ("file", file.and_then(|f| obj(py, f))),
                    ("key", key.and_then(|k| obj(py, k))),
                    ("line", line.and_then(|l| obj(py, l))),
                ],
            )
        }
        PipelineError::Tag(_) => with_attrs(
            InvalidOption::new_err(message.clone()),
            &[("option", obj(py, "tag")), ("reason", obj(py, message))],
        ),
        PipelineError::Git(git) => from_git(py, git, message),
    })
}

/// Where a values edit failed: the file, the key path and the 1-based line, where known.
fn values_place(
    err: &cicd_agents_pipeline::error::ValuesError,
) -> (Option<String>, Option<String>, Option<usize>) {
    use cicd_agents_pipeline::error::ValuesError as V;
    match err {
        V::InvalidYaml { file, line, .. } => (Some(file.clone()), None, Some(*line)),
        V::NotUtf8 { file, .. } | V::Io { file, .. } => (Some(file.clone()), None, None),
        V::InvalidKeyPath { path, .. } => (None, Some(path.clone()), None),
        V::NoDocument { file, path, .. }
        | V::InvalidValue { file, path, .. }
        | V::VerificationFailed { file, path, .. } => {
            (Some(file.clone()), Some(path.clone()), None)
        }
        V::KeyNotFound {
            file, path, line, ..
        }
        | V::IndexOutOfRange {
            file, path, line, ..
        }
        | V::NotAContainer {
            file, path, line, ..
        }
        | V::NotAScalar {
            file, path, line, ..
        }
        | V::SharedAnchor {
            file, path, line, ..
        }
        | V::MergedKey {
            file, path, line, ..
        }
        | V::UnsupportedScalar {
            file, path, line, ..
        } => (Some(file.clone()), Some(path.clone()), Some(*line)),
        V::DuplicateKey {
            file,
            path,
            second_line,
            ..
        } => (Some(file.clone()), Some(path.clone()), Some(*second_line)),
    }
}

/// Converts a values edit error.
pub fn from_values(err: cicd_agents_pipeline::error::ValuesError) -> PyErr {
    from_pipeline(PipelineError::Values(err))
}

fn from_git(py: Python<'_>, err: RustGitError, message: String) -> PyErr {
    let common = [
        ("kind", obj(py, err.git_kind().as_str())),
        ("url", err.url().and_then(|u| obj(py, u))),
        ("operation", err.operation().and_then(|o| obj(py, o))),
        ("status", err.status().and_then(|s| obj(py, s))),
    ];
    match err {
        RustGitError::InvalidUrl { reason, .. } => with_attrs(
            InvalidOption::new_err(message),
            &[("option", obj(py, "url")), ("reason", obj(py, reason))],
        ),
        RustGitError::InvalidBranch { reason, .. } => with_attrs(
            InvalidOption::new_err(message),
            &[("option", obj(py, "branch")), ("reason", obj(py, reason))],
        ),
        RustGitError::InvalidConfig { reason } => with_attrs(
            InvalidOption::new_err(message),
            &[
                ("option", obj(py, "write-back configuration")),
                ("reason", obj(py, reason)),
            ],
        ),
        RustGitError::InvalidTemplate { reason, .. } => with_attrs(
            InvalidOption::new_err(message),
            &[("option", obj(py, "message")), ("reason", obj(py, reason))],
        ),
        RustGitError::AuthFailed { .. } => with_attrs(
            new_of(git_auth_error(py), message, AuthError::new_err),
            &common,
        ),
        RustGitError::PushRejected { branch, reason, .. } => with_attrs(
            with_attrs(GitPushRejected::new_err(message), &common),
            &[
                ("branch", obj(py, branch)),
                ("reason", obj(py, reason)),
                ("attempts", None),
            ],
        ),
        RustGitError::RetriesExhausted {
            branch,
            attempts,
            reason,
            ..
        } => with_attrs(
            with_attrs(GitPushRejected::new_err(message), &common),
            &[
                ("branch", obj(py, branch)),
                ("reason", obj(py, reason)),
                ("attempts", obj(py, attempts)),
            ],
        ),
        RustGitError::ServerError { attempts, .. } | RustGitError::Unreachable { attempts, .. } => {
            with_attrs(
                with_attrs(GitError::new_err(message), &common),
                &[("attempts", obj(py, attempts))],
            )
        }
        _ => with_attrs(GitError::new_err(message), &common),
    }
}

/// Converts a pipeline definition error: `InvalidPipeline` with `file`-relative
/// `line` and `key` attributes (None when the error is not about a place in the file).
pub fn from_definition(err: DefinitionError) -> PyErr {
    let message = err.to_string();
    Python::attach(|py| {
        with_attrs(
            InvalidPipeline::new_err(message),
            &[
                ("line", err.line().and_then(|l| obj(py, l))),
                ("key", err.key().and_then(|k| obj(py, k))),
            ],
        )
    })
}

/// Converts a failed pipeline run. The class follows the cause (`BuildError`,
/// `AuthError`, `GitPushRejected`, `ValuesError`, ...); the message is the
/// run's (`"build failed: ..."`, `"chart update: ..."`); `report` is set by the caller.
pub fn from_run(err: RunError) -> PyErr {
    let message = err.to_string();
    match err {
        RunError::Token { source, .. }
        | RunError::Source(source)
        | RunError::ChartAccess(source) => Python::attach(|py| from_git(py, source, message)),
        RunError::Build {
            cancelled: true, ..
        } => Cancelled::new_err(message),
        RunError::Build {
            failure: Some(failure),
            ..
        } => Python::attach(|py| from_build_error(py, *failure, message)),
        RunError::Build {
            message: build_message,
            ..
        } => Python::attach(|py| {
            with_attrs(
                BuildError::new_err(message),
                &[
                    ("message", obj(py, build_message)),
                    ("step", None),
                    ("file", None),
                    ("line", None),
                    ("source_lines", obj(py, Vec::<String>::new())),
                    ("log_tail", obj(py, Vec::<String>::new())),
                    ("registry", None),
                ],
            )
        }),
        RunError::Chart(inner) => from_pipeline_as(inner, message),
        RunError::NoBuilder { key, tried, .. } => Python::attach(|py| {
            with_attrs(
                PoolUnavailable::new_err(message),
                &[
                    ("key", obj(py, key)),
                    ("tried", obj(py, crate::pool::attempts(tried))),
                ],
            )
        }),
        RunError::NoDigest | RunError::Task(_) => Error::new_err(message),
    }
}
