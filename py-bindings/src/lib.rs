//! Python bindings of cicd-agents: the native module `cicd_agents._native`,
//! re-exported by the `cicd_agents` package (`py-bindings/python`).
//!
//! The bindings only convert types; every behaviour lives in the Rust crates
//! (`cicd-agents-buildkit`, `cicd-agents-pipeline`):
//!
//! * [`client`]: `Client` and the Control API's results;
//! * [`build`]: `Client.build` / `build_async` / `build_stream` and `BuildResult`;
//! * [`progress`]: progress event objects and sinks;
//! * [`errors`]: the exception hierarchy;
//! * [`pool`]: `BuilderPool` over several daemons, `routing_key`;
//! * [`pipeline`]: values edits and the git write-back;
//! * [`k8s`]: the `cicd_agents.k8s` submodule (Kubernetes manifests);
//! * [`runtime`]: the process-wide tokio runtime, GIL release and Ctrl-C.

use pyo3::prelude::*;

mod build;
mod client;
mod convert;
mod errors;
mod k8s;
mod pipeline;
mod pool;
mod progress;
mod runtime;
mod values;
mod writeback;

/// Native part of the ``cicd_agents`` package; import ``cicd_agents`` instead.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The build keywords the parser takes, for the test that holds the stub's
    // `BuildOptions` to them.
    m.add("_BUILD_KEYWORDS", build::BUILD_KEYWORDS.to_vec())?;
    errors::register(m)?;
    m.add_class::<client::Client>()?;
    m.add_class::<client::DaemonInfo>()?;
    m.add_class::<client::BuildkitVersion>()?;
    m.add_class::<client::Worker>()?;
    m.add_class::<client::ActiveBuild>()?;
    m.add_class::<client::GcPolicy>()?;
    m.add_class::<client::UsageRecord>()?;
    m.add_class::<build::BuildResult>()?;
    m.add_class::<build::BuildStream>()?;
    m.add_class::<progress::VertexEvent>()?;
    m.add_class::<progress::StatusEvent>()?;
    m.add_class::<progress::LogEvent>()?;
    m.add_class::<progress::WarningEvent>()?;
    m.add_class::<values::ValuesDocument>()?;
    m.add_class::<values::Change>()?;
    m.add_class::<values::FileEdit>()?;
    m.add_class::<writeback::WriteBackOutcome>()?;
    m.add_class::<pipeline::Pipeline>()?;
    m.add_class::<pipeline::RunReport>()?;
    m.add_function(wrap_pyfunction!(build::normalize_platform, m)?)?;
    m.add_function(wrap_pyfunction!(values::set_image, m)?)?;
    m.add_function(wrap_pyfunction!(values::edit_values_file, m)?)?;
    m.add_function(wrap_pyfunction!(writeback::update_values, m)?)?;
    m.add_function(wrap_pyfunction!(values::validate_tag, m)?)?;
    m.add_function(wrap_pyfunction!(values::parse_tag_ref, m)?)?;
    m.add_function(wrap_pyfunction!(client::resolve_address, m)?)?;
    m.add_class::<pool::BuilderPool>()?;
    m.add_class::<pool::PooledBuild>()?;
    m.add_class::<pool::EndpointHealth>()?;
    m.add_class::<pool::Attempt>()?;
    m.add_function(wrap_pyfunction!(pool::routing_key, m)?)?;
    k8s::register(m)?;
    Ok(())
}
