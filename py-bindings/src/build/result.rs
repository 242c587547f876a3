//! `BuildResult`: a finished build for Python.

use cicd_agents_buildkit::build::BuildResult as RustBuildResult;
use pyo3::prelude::*;

use crate::convert::{json_to_py, to_dict};

/// A finished build.
#[pyclass(module = "cicd_agents", frozen)]
pub struct BuildResult {
    pub(crate) inner: RustBuildResult,
}

#[pymethods]
impl BuildResult {
    /// The build's reference (the solve request's ref).
    #[getter]
    fn build_ref(&self) -> &str {
        &self.inner.build_ref
    }
    /// The image manifest (or index) digest, ``containerimage.digest``; None
    /// when no image was exported.
    #[getter]
    fn digest(&self) -> Option<&str> {
        self.inner.digest.as_deref()
    }
    /// The image config digest, ``containerimage.config.digest``, or None.
    #[getter]
    fn config_digest(&self) -> Option<&str> {
        self.inner.config_digest.as_deref()
    }
    /// The image ID as ``docker buildx build --iidfile`` writes it: the config
    /// digest of a single-platform image, the index digest of several; None
    /// when no image was exported.
    #[getter]
    fn image_id(&self) -> Option<&str> {
        self.inner.image_id()
    }
    /// The image names exported (``image.name`` split at commas).
    #[getter]
    fn image_names(&self) -> Vec<String> {
        self.inner.image_names.clone()
    }
    /// The full exporter response as the daemon sent it (str to str).
    #[getter]
    fn exporter_response(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.exporter_response.clone()
    }
    /// Where the build's time went, measured by the client, in seconds:
    /// ``connect``, ``session_start``, ``context_walk``, ``context_transfer``,
    /// ``solve``, ``export`` and ``total`` (str to float).
    #[getter]
    fn timings(&self) -> std::collections::BTreeMap<&'static str, f64> {
        let t = &self.inner.timings;
        [
            ("connect", t.connect),
            ("session_start", t.session_start),
            ("context_walk", t.context_walk),
            ("context_transfer", t.context_transfer),
            ("solve", t.solve),
            ("export", t.export),
            ("total", t.total),
        ]
        .into_iter()
        .map(|(name, duration)| (name, duration.as_secs_f64()))
        .collect()
    }
    /// The metadata ``docker buildx build --metadata-file`` writes: every
    /// exporter response key, base64-encoded JSON values decoded, plus
    /// ``buildx.build.ref``.
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.metadata())
    }
    /// As a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "BuildResult(digest={}, image_names={:?})",
            crate::convert::repr_opt(self.inner.digest.as_deref()),
            self.inner.image_names
        )
    }
}
