//! A BuildKit client: talk to a BuildKit daemon directly over gRPC, the way
//! `buildctl` and `docker buildx` do, from Rust.
//!
//! * [`Client`] connects to a daemon at an [`Address`]: `unix://`, `tcp://`
//!   (TLS and mutual TLS through [`TlsOptions`]) or a Docker daemon's embedded
//!   BuildKit through `docker://`.
//! * The Control API: [`Client::info`], [`Client::list_workers`],
//!   [`Client::disk_usage`], [`Client::prune`].
//! * Builds: [`Client::build`] runs a Dockerfile build with a local or git
//!   context, secrets, SSH, exporters, registry cache and progress.
//!
//! ```no_run
//! # async fn run() -> Result<(), cicd_agents_buildkit::Error> {
//! use cicd_agents_buildkit::Client;
//!
//! let client = Client::connect("docker://").await?;
//! println!("BuildKit {}", client.info().await?.version_display());
//! # Ok(()) }
//! ```

pub mod address;
pub mod build;
mod client;
pub mod control;
pub mod discovery;
mod error;
pub mod flags;
pub mod fsutil;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod pool;
pub mod progress;
pub mod session;
pub mod transport;

pub use address::{Address, Endpoint};
pub use build::{BuildOptions, BuildResult};
pub use client::{Client, ClientBuilder};
pub use control::disk_usage::{DiskUsageOptions, UsageRecord};
pub use control::history::ActiveBuild;
pub use control::info::{DaemonInfo, VersionSource};
pub use control::prune::PruneOptions;
pub use control::workers::Worker;
pub use error::{Error, Result};
pub use pool::BuilderPool;
pub use session::{auth::RegistryAuth, secrets::Secret, ssh::SshAgent};
pub use transport::{Keepalive, TlsOptions};
