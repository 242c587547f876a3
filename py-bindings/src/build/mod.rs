//! Builds: the keyword arguments of `Client.build()` turned into the
//! library's `BuildOptions`, the build run blocking / as an awaitable / as an
//! event stream, and `BuildResult`.
//!
//! Every spec string is parsed by the library (`Output::parse`,
//! `CacheEntry::parse_import` / `parse_export`, `Secret::parse`,
//! `SshAgent::parse`, `NamedContext::parse`, `parse_key_values`); dicts are
//! handed to the library's constructors (`Output::new`, `CacheEntry::new`,
//! `Secret::file` / `env` / `value`). The bindings only convert types.
//!
//! - `keywords`: `(context, **options)` parsed once into `BuildArgs` / `Prepared`;
//! - `specs`: one keyword's value (spec string or dict) as the library's type;
//! - this module: running a prepared build (blocking or as an awaitable);
//! - `stream`: `BuildStream`, the build read as an iterator of events;
//! - `result`: `BuildResult`.

mod keywords;
mod result;
mod specs;
mod stream;

pub(crate) use keywords::{bool_arg, text_arg, BuildArgs, Keywords, Prepared, BUILD_KEYWORDS};
pub use result::BuildResult;
pub(crate) use specs::build_context;
pub use specs::normalize_platform;
pub use stream::BuildStream;

use std::sync::Arc;

use cicd_agents_buildkit::build::{BuildOptions, BuildResult as RustBuildResult};
use cicd_agents_buildkit::progress::ProgressSink;
use cicd_agents_buildkit::Error as BuildkitError;
use pyo3::prelude::*;

use crate::errors;
use crate::progress::CallbackFailure;
use crate::runtime::{awaitable, Task};

/// How a build run ended: the library's result, or `None` when a progress
/// callback raised (its error is in the `CallbackFailure`).
type Outcome = Option<Result<RustBuildResult, BuildkitError>>;

/// Runs the build until it ends or a progress callback raises.
async fn run(
    client: cicd_agents_buildkit::Client,
    options: BuildOptions,
    mut sink: Box<dyn ProgressSink>,
    failure: Arc<CallbackFailure>,
) -> Outcome {
    failure
        .race(client.build_with_progress(&options, sink.as_mut()))
        .await
}

/// Turns a finished (or waited-for) run into the Python result.
fn finish(outcome: PyResult<Outcome>, failure: &CallbackFailure) -> PyResult<BuildResult> {
    match failure.outcome(outcome)? {
        Ok(result) => Ok(BuildResult { inner: result }),
        Err(err) => Err(errors::from_buildkit(err)),
    }
}

/// `Client.build()`.
pub(crate) fn build_blocking(
    py: Python<'_>,
    client: &cicd_agents_buildkit::Client,
    prepared: Prepared,
) -> PyResult<BuildResult> {
    let Prepared { options, progress } = prepared;
    let failure = progress.failure.clone();
    let task = Task::spawn(run(
        client.clone(),
        options,
        progress.sink,
        progress.failure,
    ))?;
    finish(task.wait(py), &failure)
}

/// `Client.build_async()`.
pub(crate) fn build_awaitable<'py>(
    py: Python<'py>,
    client: &cicd_agents_buildkit::Client,
    prepared: Prepared,
) -> PyResult<Bound<'py, PyAny>> {
    let Prepared { options, progress } = prepared;
    let failure = progress.failure.clone();
    let client = client.clone();
    awaitable(py, async move {
        let outcome = run(client, options, progress.sink, progress.failure).await;
        finish(Ok(outcome), &failure)
    })
}
