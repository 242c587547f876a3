//! Format-preserving edits of Helm values files for Python (`set_image`,
//! `edit_values_file`, `ValuesDocument`) and the tag checks (`validate_tag`,
//! `parse_tag_ref`).

use std::path::PathBuf;

use cicd_agents_pipeline::values::{
    edit_file_as, Change as RustChange, FileEdit as RustFileEdit, KeyPath, ScalarStyle,
    ValuesDocument as RustDocument,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyMapping, PyString};

use crate::convert::{mapping_items, type_name};
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
pub(crate) fn edits(value: &Bound<'_, PyAny>, option: &str) -> PyResult<Vec<(String, String)>> {
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
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "{option}: each item must be a (key path, value) pair of str"
                ))
            })?
    };
    pairs
        .into_iter()
        .map(|(key, v)| {
            let v: String = v.extract().map_err(|_| {
                PyTypeError::new_err(format!("{option}: the value for {key:?} must be a str"))
            })?;
            Ok((key, v))
        })
        .collect()
}

pub(crate) fn parse_edits(pairs: &[(String, String)]) -> PyResult<Vec<(KeyPath, String)>> {
    pairs
        .iter()
        .map(|(key, value)| {
            Ok((
                KeyPath::parse(key).map_err(errors::from_values)?,
                value.clone(),
            ))
        })
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
pub fn set_image(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let path = crate::convert::path(path, "path")?;
    let value = value
        .map(|v| crate::build::text_arg(v, "value"))
        .transpose()?;
    let pairs = match value {
        Some(value) => {
            let key: String = key
                .extract()
                .map_err(|_| PyTypeError::new_err("key must be a str key path"))?;
            vec![(key, value)]
        }
        None if key.is_instance_of::<PyString>() => {
            return Err(PyTypeError::new_err(
                "set_image(path, key, value): the value is missing",
            ))
        }
        None => edits(key, "edits")?,
    };
    py.detach(|| cicd_agents_pipeline::values::set_image(&path, &pairs))
        .map_err(errors::from_values)
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
    let inner = py
        .detach(|| edit_file_as(&path, &name, &parsed))
        .map_err(errors::from_values)?;
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
        self.inner
            .get_in(document, &key)
            .map_err(errors::from_values)
    }

    /// Sets the scalar at ``path`` in document ``document`` (default: the
    /// first, the one Helm reads) and returns the ``Change``.
    #[pyo3(signature = (path, value, document=0))]
    fn set(&mut self, path: &str, value: &str, document: usize) -> PyResult<Change> {
        let key = KeyPath::parse(path).map_err(errors::from_values)?;
        let inner = self
            .inner
            .set_in(document, &key, value)
            .map_err(errors::from_values)?;
        Ok(Change { inner })
    }

    /// Applies several edits (mapping or pairs) to the first document, all or nothing.
    fn set_all(&mut self, edits: &Bound<'_, PyAny>) -> PyResult<Vec<Change>> {
        let parsed = parse_edits(&self::edits(edits, "edits")?)?;
        self.inner
            .set_all_paths(&parsed)
            .map(changes)
            .map_err(errors::from_values)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "ValuesDocument(origin={:?}, documents={})",
            self.inner.origin(),
            self.inner.document_count()
        )
    }
}

/// Checks an image tag as the chart update does (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``);
/// raises ``InvalidOption`` (``option == "tag"``) when it is not one.
#[pyfunction]
pub fn validate_tag(tag: &str) -> PyResult<()> {
    cicd_agents_pipeline::values::validate_tag(tag).map_err(|err| errors::from_pipeline(err.into()))
}

/// Splits ``"tag@sha256:..."`` (or a bare tag) into ``(tag, digest or None)``, validating
/// both parts; raises ``InvalidOption`` (``option == "tag"``) otherwise.
#[pyfunction]
pub fn parse_tag_ref(text: &str) -> PyResult<(String, Option<String>)> {
    let (tag, digest) = cicd_agents_pipeline::values::parse_tag_ref(text)
        .map_err(|err| errors::from_pipeline(err.into()))?;
    Ok((
        tag.as_str().to_string(),
        digest.map(|d| d.as_str().to_string()),
    ))
}
