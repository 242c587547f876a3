//! The GitOps write-back for Python (`update_values`, `WriteBackOutcome`): the remote form
//! of `set_image`.

use std::path::PathBuf;

use cicd_agents_pipeline::git::{Author, CommitVars, GitAuth, MessageTemplate, WriteBackConfig};
use cicd_agents_pipeline::run::{ChartOutcome as RustOutcome, ChartUpdate, ValuesUpdate};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyMapping;

use crate::convert::{duration, mapping_items, path, type_name};
use crate::errors;
use crate::values::{edits, parse_edits};

/// The result of ``update_values()``.
#[pyclass(module = "cicd_agents", frozen)]
pub struct WriteBackOutcome {
    inner: RustOutcome,
}

#[pymethods]
impl WriteBackOutcome {
    /// The pushed commit, or None when the edit changed nothing (no commit, no push).
    #[getter]
    fn commit(&self) -> Option<&str> {
        self.inner.commit.as_deref()
    }
    /// The commit the edit was applied on (the remote tip at that time).
    #[getter]
    fn parent(&self) -> &str {
        &self.inner.parent
    }
    /// The branch pushed to (or that would have been pushed to).
    #[getter]
    fn branch(&self) -> &str {
        &self.inner.branch
    }
    /// Attempts made (1 unless pushes were rejected because the branch moved).
    #[getter]
    fn attempts(&self) -> u32 {
        self.inner.attempts
    }
    /// Seconds from the start of the update (clone included) until it landed.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.inner.elapsed.as_secs_f64()
    }
    /// Changed files, relative to the repository root.
    #[getter]
    fn files(&self) -> Vec<String> {
        self.inner.files.clone()
    }
    /// The commit message, when a commit was made.
    #[getter]
    fn message(&self) -> Option<&str> {
        self.inner.message.as_deref()
    }
    /// Whether a commit was pushed.
    #[getter]
    fn changed(&self) -> bool {
        self.inner.changed()
    }
    fn __repr__(&self) -> String {
        format!(
            "WriteBackOutcome(commit={}, branch={:?}, attempts={})",
            crate::convert::repr_opt(self.inner.commit.as_deref()),
            self.inner.branch,
            self.inner.attempts
        )
    }
}

/// Updates values files in a git repository and pushes the change: the remote
/// form of ``set_image``.
///
/// ``updates`` maps repository-relative values files to their edits:
/// ``{"charts/app/values.yaml": {"image.tag": "1.4.2"}}``. The branch is
/// shallow-cloned, the files edited (format-preserving), the change committed
/// as ``author`` (``(name, email)``) with ``message`` (a template with
/// ``{image}``, ``{old_tag}``, ``{new_tag}``, ``{digest}``, ``{source_commit}``,
/// ``{files}``; a default is used if None) and pushed to ``push_branch`` (default:
/// ``branch``). A push rejected because the branch moved (or failing on a 5xx or
/// unreachable server) is re-applied on the new tip with jittered backoff until
/// ``retry_timeout`` (seconds or a ``timedelta``; default 2 minutes) has passed;
/// then ``GitPushRejected`` (or ``GitError``) says how many attempts were made
/// and how long they took. Pushes are never forced. Nothing is committed when
/// nothing changed (``outcome.commit`` is None). Empty ``image``, ``old_tag``
/// and ``new_tag`` are filled in from the edits, as the pipeline run does.
///
/// ``token`` authenticates HTTPS (basic auth, user ``token_username``, default
/// ``x-access-token``); it never appears in a URL, argument or message.
/// ``http://`` URLs are accepted for loopback hosts only unless
/// ``allow_insecure_http``.
///
/// Blocks with the GIL released (runs ``git``). Raises ``AuthError``,
/// ``GitPushRejected``, ``GitError``, ``ValuesError`` or ``InvalidOption``.
#[pyfunction]
#[pyo3(signature = (url, branch, updates, *, author, token=None, token_username=None, push_branch=None, message=None, image=None, digest=None, source_commit=None, old_tag=None, new_tag=None, retry_timeout=None, allow_insecure_http=false, git_program=None))]
#[allow(clippy::too_many_arguments)]
pub fn update_values(
    py: Python<'_>,
    url: String,
    branch: String,
    updates: &Bound<'_, PyAny>,
    author: (String, String),
    token: Option<String>,
    token_username: Option<String>,
    push_branch: Option<String>,
    message: Option<String>,
    image: Option<String>,
    digest: Option<String>,
    source_commit: Option<String>,
    old_tag: Option<String>,
    new_tag: Option<String>,
    retry_timeout: Option<&Bound<'_, PyAny>>,
    allow_insecure_http: bool,
    git_program: Option<&Bound<'_, PyAny>>,
) -> PyResult<WriteBackOutcome> {
    let mapping = updates.cast::<PyMapping>().map_err(|_| {
        PyTypeError::new_err(format!(
            "updates must be a mapping {{values file: {{key path: value}}}}, not {}",
            type_name(updates)
        ))
    })?;
    let mut values_updates = Vec::new();
    for (file, file_edits) in mapping_items(mapping, "updates")? {
        values_updates.push(ValuesUpdate {
            file: PathBuf::from(file),
            edits: parse_edits(&edits(&file_edits, "updates")?)?,
        });
    }
    let (name, email) = author;
    let mut config = WriteBackConfig::new(url, branch, Author { name, email });
    config.push_branch = push_branch;
    if let Some(template) = message {
        config.message =
            MessageTemplate::parse(&template).map_err(|e| errors::from_pipeline(e.into()))?;
    }
    if let Some(token) = token {
        let mut auth = GitAuth::token(token);
        if let Some(username) = token_username {
            auth.username = username;
        }
        config.auth = Some(auth);
    }
    if let Some(timeout) = retry_timeout.filter(|t| !t.is_none()) {
        config.retry.timeout = duration(timeout, "retry_timeout")?;
    }
    config.allow_insecure_http = allow_insecure_http;
    if let Some(program) = git_program.filter(|p| !p.is_none()) {
        config.git_program = path(program, "git_program")?;
    }
    let vars = CommitVars {
        image: image.unwrap_or_default(),
        old_tag: old_tag.unwrap_or_default(),
        new_tag: new_tag.unwrap_or_default(),
        digest: digest.unwrap_or_default(),
        source_commit: source_commit.unwrap_or_default(),
    };
    let update = ChartUpdate {
        config,
        updates: values_updates,
        vars,
    };
    let inner = py
        .detach(|| update.apply(&mut |_| {}))
        .map_err(errors::from_pipeline)?;
    Ok(WriteBackOutcome { inner })
}
