//! Dockerfile builds: options, the solve, results and errors.
//!
//! [`BuildOptions`] holds what `docker buildx build` takes; [`Client::build`]
//! (and [`Client::build_with_progress`]) runs it and returns a [`BuildResult`].
//!
//! [`Client::build`]: crate::Client::build
//! [`Client::build_with_progress`]: crate::Client::build_with_progress

mod cache;
mod error;
mod options;
pub(crate) mod output;
pub(crate) mod plan;
mod platform;
mod registry_failure;
mod result;
mod scoped_path;
mod solve;
mod spec;
mod timings;

pub use cache::CacheEntry;
pub use error::BuildError;
pub use options::{BuildContext, BuildOptions, NamedContext};
pub use output::Output;
pub use plan::PreparedBuild;
pub use platform::normalize_platform;
pub use registry_failure::{RegistryFailure, RegistryFailureKind, RegistryOperation};
pub use result::BuildResult;
pub use spec::{parse_key_values, TypedSpec};
pub use timings::BuildTimings;
