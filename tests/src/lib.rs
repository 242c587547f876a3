//! Support code for the cicd-agents integration tests.
//!
//! Every integration test runs against a **real** environment started by
//! `scripts/testenv.sh up` (dockerd with its embedded BuildKit, a registry, a smart-HTTP git
//! server with token auth, a busybox base image). This crate:
//!
//! - loads that environment ([`TestEnv::load`]); a missing environment is an error, so tests
//!   fail instead of silently skipping;
//! - relays connections to the Docker daemon's embedded BuildKit so that it looks like a
//!   standalone `buildkitd` on `unix://`, `tcp://` or `tcp://` + mTLS ([`Relay`]);
//! - generates a throw-away CA, server and client certificates ([`TestCerts`]);
//! - puts an HTTP proxy that injects faults (down, 500, 401, ...) in front of the registry or
//!   the git server ([`FaultProxy`]).

mod certs;
mod cli;
pub mod differential;
mod env;
mod error;
mod fault_proxy;
mod registry;
mod relay;

pub use certs::TestCerts;
pub use cli::{cli, cli_binary, cli_build};
pub use env::{context_dir, unique_name, write_context, TestEnv, DEFAULT_TESTENV_DIR};
pub use error::{Error, Result};
pub use fault_proxy::{FaultProxy, Match, SeenRequest};
pub use registry::{manifest_digest, ImageContents, RegistryReader};
pub use relay::{probe_h2, Relay};
