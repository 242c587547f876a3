//! The pipeline crate (`cicd-agents-pipeline`) for Python: format-preserving
//! edits of Helm values files (`set_image`, `edit_values_file`,
//! `ValuesDocument`) and the GitOps write-back (`update_values`).
//!
//! TODO(pipeline model): `Pipeline.from_file` / `from_dict` / `.run()` bind the
//! pipeline definition and runner once `cicd-agents-pipeline` has them; the
//! crate has only the values edits and the git write-back so far.

use std::path::PathBuf;

use cicd_agents_pipeline::git::{
    update_values as rust_update_values, Author, CommitVars, GitAuth, MessageTemplate, ValuesUpdate, WriteBack,
    WriteBackConfig, WriteBackOutcome as RustOutcome,
};
use cicd_agents_pipeline::values::{
    edit_file_as, Change as RustChange, FileEdit as RustFileEdit, KeyPath, ScalarStyle, ValuesDocument as RustDocument,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyString};

use crate::convert::{mapping_items, path, type_name};
use crate::errors;

fn style_name(style: ScalarStyle) -> &'static str {
    match style {
        ScalarStyle::Plain => "plain",
        ScalarStyle::SingleQuoted => "single-quoted",
        ScalarStyle::DoubleQuoted => "double-quoted",
        ScalarStyle::Literal => "literal",
        ScalarStyle::Folded => "folded",
    }
}

/// The outcome of one edit of a values file.
#[pyclass(module = "cicd_agents", frozen)]
pub struct Change {
    inner: RustChange,
}

#[pymethods]
impl Change {
    /// The key path, e.g. ``image.tag``.
    #[getter]
    fn path(&self) -> String {
        self.inner.path.to_string()
    }
    /// 0-based index of the YAML document edited.
    #[getter]
    fn document(&self) -> usize {
        self.inner.document
    }
    /// 1-based line of the value.
    #[getter]
    fn line(&self) -> usize {
        self.inner.line
    }
    /// The value before (empty for an empty ``key:``).
    #[getter]
    fn old_value(&self) -> &str {
        &self.inner.old_value
    }
    /// The value after.
    #[getter]
    fn new_value(&self) -> &str {
        &self.inner.new_value
    }
    /// Quote style before: ``"plain"``, ``"single-quoted"``, ``"double-quoted"``, ``"literal"`` or ``"folded"``.
    #[getter]
    fn old_style(&self) -> &'static str {
        style_name(self.inner.old_style)
    }
    /// Quote style after.
    #[getter]
    fn new_style(&self) -> &'static str {
        style_name(self.inner.new_style)
    }
    /// Whether the text changed.
    #[getter]
    fn changed(&self) -> bool {
        self.inner.changed
    }
    fn __repr__(&self) -> String {
        format!(
            "Change(path={:?}, old_value={:?}, new_value={:?}, changed={})",
            self.inner.path.to_string(),
            self.inner.old_value,
            self.inner.new_value,
            if self.inner.changed { "True" } else { "False" }
        )
    }
}

fn changes(changes: Vec<RustChange>) -> Vec<Change> {
    changes.into_iter().map(|inner| Change { inner }).collect()
}

/// The result of ``edit_values_file()``.
#[pyclass(module = "cicd_agents", frozen)]
pub struct FileEdit {
    inner: RustFileEdit,
}

#[pymethods]
impl FileEdit {
    /// One ``Change`` per requested edit, in order.
    #[getter]
    fn changes(&self) -> Vec<Change> {
        changes(self.inner.changes.clone())
    }
    /// Whether the file was rewritten.
    #[getter]
    fn changed(&self) -> bool {
        self.inner.changed
    }
    fn __repr__(&self) -> String {
        format!(
            "FileEdit(changed={}, changes={})",
            if self.inner.changed { "True" } else { "False" },
            self.inner.changes.len()
        )
    }
}

/// `(key path, value)` pairs from a mapping or an iterable of pairs.
fn edits(value: &Bound<'_, PyAny>, option: &str) -> PyResult<Vec<(String, String)>> {
    let pairs: Vec<(String, Bound<'_, PyAny>)> = if let Ok(mapping) = value.cast::<PyMapping>() {
        mapping_items(mapping, option)?
    } else {
        let iter = value.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "{option} must be a mapping {{key path: value}} or (key path, value) pairs, not {}",
                type_name(value)
            ))
        })?;
        iter.map(|item| item?.extract::<(String, Bound<'_, PyAny>)>())
            .collect::<PyResult<_>>()
            .map_err(|_| PyTypeError::new_err(format!("{option}: each item must be a (key path, value) pair of str")))?
    };
    pairs
        .into_iter()
        .map(|(key, v)| {
            let v: String = v
                .extract()
                .map_err(|_| PyTypeError::new_err(format!("{option}: the value for {key:?} must be a str")))?;
            Ok((key, v))
        })
        .collect()
}

fn parse_edits(pairs: &[(String, String)]) -> PyResult<Vec<(KeyPath, String)>> {
    pairs
        .iter()
        .map(|(key, value)| Ok((KeyPath::parse(key).map_err(errors::from_values)?, value.clone())))
        .collect()
}

/// Sets values in a Helm values file, preserving its formatting, and returns
/// whether the file changed.
///
/// ``set_image("charts/app/values.yaml", "image.tag", "1.4.2")``, or several
/// edits at once (all or nothing): ``set_image(path, {"image.tag": "1.4.2",
/// "image.digest": "sha256:..."})``. Key paths: ``image.tag``,
/// ``sidecars[0].image.tag``, ``ingress.annotations."nginx.io/rewrite"``.
///
/// Only the target scalar's bytes change: comments, key order, quoting,
/// anchors and line endings stay; values YAML would read as numbers, booleans
/// or null are quoted. Raises ``ValuesError`` (nothing written) if a key is
/// missing, the target is not a scalar, it is shared through an anchor, ...
#[pyfunction]
#[pyo3(signature = (path, key, value=None))]
pub fn set_image(py: Python<'_>, path: PathBuf, key: &Bound<'_, PyAny>, value: Option<String>) -> PyResult<bool> {
    let pairs = match value {
        Some(value) => {
            let key: String = key.extract().map_err(|_| PyTypeError::new_err("key must be a str key path"))?;
            vec![(key, value)]
        }
        None if key.is_instance_of::<PyString>() => {
            return Err(PyTypeError::new_err("set_image(path, key, value): the value is missing"))
        }
        None => edits(key, "edits")?,
    };
    py.detach(|| cicd_agents_pipeline::values::set_image(&path, &pairs)).map_err(errors::from_values)
}

/// Applies several edits (a mapping ``{key path: value}`` or pairs) to the
/// values file at ``path``, all or nothing, and returns a ``FileEdit`` with
/// one ``Change`` per edit. The file is rewritten (atomically) only if
/// something changed. ``name`` is how errors name the file (default: the path).
#[pyfunction]
#[pyo3(signature = (path, edits, *, name=None))]
pub fn edit_values_file(
    py: Python<'_>,
    path: PathBuf,
    edits: &Bound<'_, PyAny>,
    name: Option<String>,
) -> PyResult<FileEdit> {
    let parsed = parse_edits(&self::edits(edits, "edits")?)?;
    let name = name.unwrap_or_else(|| path.display().to_string());
    let inner = py.detach(|| edit_file_as(&path, &name, &parsed)).map_err(errors::from_values)?;
    Ok(FileEdit { inner })
}

/// A values file held as text and edited in place (format-preserving).
///
/// ``doc = ValuesDocument(text, origin="values.yaml")``; ``doc.set("image.tag",
/// "1.2.3")`` returns a ``Change``; ``doc.text`` (or ``str(doc)``) is the edited
/// text. ``origin`` names the text in error messages (default ``<input>``).
#[pyclass(module = "cicd_agents")]
pub struct ValuesDocument {
    inner: RustDocument,
}

#[pymethods]
impl ValuesDocument {
    #[new]
    #[pyo3(signature = (text, origin=None))]
    fn new(text: String, origin: Option<String>) -> PyResult<Self> {
        let inner = match origin {
            Some(origin) => RustDocument::parse_named(text, origin),
            None => RustDocument::parse(text),
        }
        .map_err(errors::from_values)?;
        Ok(ValuesDocument { inner })
    }

    /// The current text.
    #[getter]
    fn text(&self) -> &str {
        self.inner.as_str()
    }

    /// The name used in errors.
    #[getter]
    fn origin(&self) -> &str {
        self.inner.origin()
    }

    /// Number of YAML documents in the text.
    #[getter]
    fn document_count(&self) -> usize {
        self.inner.document_count()
    }

    /// The scalar value at ``path`` (aliases followed) in document ``document``.
    #[pyo3(signature = (path, document=0))]
    fn get(&self, path: &str, document: usize) -> PyResult<String> {
        let key = KeyPath::parse(path).map_err(errors::from_values)?;
        self.inner.get_in(document, &key).map_err(errors::from_values)
    }

    /// Sets the scalar at ``path`` in document ``document`` (default: the
    /// first, the one Helm reads) and returns the ``Change``.
    #[pyo3(signature = (path, value, document=0))]
    fn set(&mut self, path: &str, value: &str, document: usize) -> PyResult<Change> {
        let key = KeyPath::parse(path).map_err(errors::from_values)?;
        let inner = self.inner.set_in(document, &key, value).map_err(errors::from_values)?;
        Ok(Change { inner })
    }

    /// Applies several edits (mapping or pairs) to the first document, all or nothing.
    fn set_all(&mut self, edits: &Bound<'_, PyAny>) -> PyResult<Vec<Change>> {
        let parsed = parse_edits(&self::edits(edits, "edits")?)?;
        self.inner.set_all_paths(&parsed).map(changes).map_err(errors::from_values)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("ValuesDocument(origin={:?}, documents={})", self.inner.origin(), self.inner.document_count())
    }
}

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
/// ``branch``). A push rejected because the branch moved is retried on the new
/// tip (``max_attempts``, default 5); pushes are never forced. Nothing is
/// committed when nothing changed (``outcome.commit`` is None).
///
/// ``token`` authenticates HTTPS (basic auth, user ``token_username``, default
/// ``x-access-token``); it never appears in a URL, argument or message.
/// ``http://`` URLs are accepted for loopback hosts only unless
/// ``allow_insecure_http``.
///
/// Blocks with the GIL released (runs ``git``). Raises ``AuthError``,
/// ``GitPushRejected``, ``GitError``, ``ValuesError`` or ``InvalidOption``.
#[pyfunction]
#[pyo3(signature = (url, branch, updates, *, author, token=None, token_username=None, push_branch=None, message=None, image=None, digest=None, source_commit=None, old_tag=None, new_tag=None, max_attempts=None, allow_insecure_http=false, git_program=None))]
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
    max_attempts: Option<u32>,
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
        values_updates.push(ValuesUpdate { file: PathBuf::from(file), edits: parse_edits(&edits(&file_edits, "updates")?)? });
    }
    let (name, email) = author;
    let mut config = WriteBackConfig::new(url, branch, Author { name, email });
    config.push_branch = push_branch;
    if let Some(template) = message {
        config.message = MessageTemplate::parse(&template).map_err(|e| errors::from_pipeline(e.into()))?;
    }
    if let Some(token) = token {
        let mut auth = GitAuth::token(token);
        if let Some(username) = token_username {
            auth.username = username;
        }
        config.auth = Some(auth);
    }
    if let Some(attempts) = max_attempts {
        config.retry.max_attempts = attempts;
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
    let writeback = WriteBack::new(config).map_err(|e| errors::from_pipeline(e.into()))?;
    let inner = py
        .detach(|| rust_update_values(&writeback, &values_updates, &vars))
        .map_err(errors::from_pipeline)?;
    Ok(WriteBackOutcome { inner })
}
