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
//!
//! Options are typed and checked before anything is dialled: [`BuildOptions::prepare`] lowers
//! them to what the daemon will receive, and a bad value is an
//! [`Error::InvalidOption`] naming the field (each front end words it: `--tag` on the command
//! line, `tags=` in Python).
//!
//! ```
//! use cicd_agents_buildkit::flags::{NetworkMode, OptionField, Platform};
//! use cicd_agents_buildkit::{BuildOptions, Error};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("Dockerfile"), "FROM busybox\nRUN echo hi\n")?;
//! let options = BuildOptions::local(dir.path())
//!     .tag("registry.example:5000/team/app:1.2")
//!     .platform("linux/arm64".parse::<Platform>()?)
//!     .network("host".parse::<NetworkMode>()?)
//!     .build_arg("VERSION", "1.2");
//! let prepared = options.prepare()?;
//! assert_eq!(prepared.frontend_attrs()["platform"], "linux/arm64");
//! assert_eq!(prepared.frontend_attrs()["build-arg:VERSION"], "1.2");
//!
//! let bad = BuildOptions::local(dir.path()).tag("Bad Tag!!").prepare().unwrap_err();
//! assert!(matches!(bad, Error::InvalidOption { field: OptionField::Tag, .. }), "{bad}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
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

pub use address::{Accepted, Address, AddressOrigin, AddressProblem, Endpoint};
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
