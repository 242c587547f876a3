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
mod registry_failure;
mod result;
mod scoped_path;
mod solve;
mod timings;

pub use crate::flags::CacheEntry;
pub use crate::flags::NamedContext;
pub use crate::flags::Output;
pub use crate::flags::{normalize_platform, Platform};
pub use crate::flags::{parse_key_values, TypedSpec};
pub use error::BuildError;
pub use options::{is_archive, BuildContext, BuildOptions};
pub use plan::PreparedBuild;
pub use registry_failure::{RegistryFailure, RegistryFailureKind, RegistryOperation};
pub use result::BuildResult;
pub use timings::BuildTimings;
