//! The command's exit codes, and which errors are bad usage.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the build, pipeline run or operation failed (daemon, network, git, a failing `RUN`) |
//! | 2 | bad usage: a malformed flag or value, a missing context, Dockerfile or file named on the command line, an invalid pipeline definition, values file or key path |
//! | 130 | interrupted (Ctrl-C); a running build is cancelled on the daemon |
//!
//! clap's own errors (unknown flag, missing argument) exit with 2 as well.
//!
//! The code comes from the error's [`ErrorKind`] alone: the first error in the chain that
//! answers [`HasKind`] decides; [`ErrorKind::InvalidInput`] is bad usage (2), every other
//! kind a failure (1).

use std::error::Error as StdError;
use std::fmt;
use std::process::ExitCode;

use cicd_agents_pipeline::definition::DefinitionError;
use cicd_agents_pipeline::error::{Error as PipelineError, GitError, TagError, ValuesError};
use cicd_agents_pipeline::k8s::launch::LaunchError;
use cicd_agents_pipeline::k8s::K8sError;
use cicd_agents_pipeline::run::{RunError, RunFailure};
use cicd_agents_types::{ErrorKind, HasKind};

/// A failed build, pipeline or operation.
pub const FAILURE: u8 = 1;
/// Bad usage.
pub const USAGE: u8 = 2;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// Bad usage found by the command itself (not by clap or the library): the
/// message says which flag or value is wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl HasKind for UsageError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// A [`UsageError`] as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// `cause`'s kind if it is an `E`.
fn kind_as<E: HasKind + StdError + 'static>(cause: &(dyn StdError + 'static)) -> Option<ErrorKind> {
    cause.downcast_ref::<E>().map(HasKind::kind)
}

/// Every error type that answers [`HasKind`] and can end a command.
const KNOWN: &[fn(&(dyn StdError + 'static)) -> Option<ErrorKind>] = &[
    kind_as::<UsageError>,
    kind_as::<cicd_agents_buildkit::Error>,
    kind_as::<PipelineError>,
    kind_as::<DefinitionError>,
    kind_as::<ValuesError>,
    kind_as::<GitError>,
    kind_as::<TagError>,
    kind_as::<K8sError>,
    kind_as::<LaunchError>,
    kind_as::<RunError>,
    kind_as::<RunFailure>,
    kind_as::<cicd_agents_types::ImageRefError>,
    kind_as::<cicd_agents_types::ImageTagError>,
    kind_as::<cicd_agents_types::GitRefError>,
    kind_as::<cicd_agents_types::GitUrlError>,
];

/// The kind of the first error in `err`'s chain that knows its kind.
pub fn kind_of(err: &anyhow::Error) -> Option<ErrorKind> {
    err.chain()
        .find_map(|cause| KNOWN.iter().find_map(|kind| kind(cause)))
}

/// Whether `err` (or anything it wraps) is bad input rather than a failure.
pub fn is_usage(err: &anyhow::Error) -> bool {
    kind_of(err) == Some(ErrorKind::InvalidInput)
}

/// The error and its causes on one line, each cause once: many errors already
/// include their source's text, which `{:#}` would print a second time.
pub fn render(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause
            .downcast_ref::<cicd_agents_buildkit::Error>()
            .and_then(crate::flag_names::describe)
            .unwrap_or_else(|| cause.to_string());
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The exit code for an error that ended the command.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(if is_usage(err) { USAGE } else { FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors() {
        assert!(is_usage(&usage("--x: bad")));
        let option = cicd_agents_buildkit::build::Output::parse("type=").unwrap_err();
        assert!(is_usage(
            &anyhow::Error::new(option).context("while parsing")
        ));
        let connect = cicd_agents_buildkit::Error::Connect {
            address: "tcp://h:1".into(),
            reason: "refused".into(),
        };
        assert!(!is_usage(&connect.into()));
        assert!(!is_usage(&anyhow::anyhow!("something else")));
        // Kubernetes values are bad usage too (they once exited 1).
        let k8s = cicd_agents_pipeline::k8s::K8sError::InvalidOption {
            option: "--replicas".into(),
            reason: "0".into(),
        };
        assert!(is_usage(&anyhow::Error::new(k8s).context("rendering")));
        assert_eq!(
            kind_of(&anyhow::Error::new(cicd_agents_buildkit::Error::Cancelled)),
            Some(ErrorKind::Cancelled)
        );
        let tag = "Bad Tag!!"
            .parse::<cicd_agents_types::ImageRef>()
            .unwrap_err();
        assert!(is_usage(&anyhow::Error::new(tag)));
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let twice = anyhow::Error::new(cicd_agents_buildkit::Error::Io {
            path: "/x".into(),
            source: io,
        })
        .context("reading");
        assert_eq!(render(&twice), "reading: /x: gone");
    }
}
