//! Dockerfile builds: options, the solve, results and errors.

mod error;

pub use error::BuildError;
