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

use std::fmt;
use std::process::ExitCode;

use cicd_agents_pipeline::definition::DefinitionError;

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

/// A [`UsageError`] as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Whether `err` (or anything it wraps) is bad input rather than a failure.
pub fn is_usage(err: &anyhow::Error) -> bool {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return true;
        }
        if let Some(err) = cause.downcast_ref::<DefinitionError>() {
            return err.is_invalid_input();
        }
        if let Some(err) = cause.downcast_ref::<cicd_agents_buildkit::Error>() {
            return err.is_invalid_input();
        }
        if let Some(err) = cause.downcast_ref::<cicd_agents_pipeline::error::Error>() {
            return err.is_invalid_input();
        }
        if let Some(err) = cause.downcast_ref::<cicd_agents_pipeline::error::ValuesError>() {
            return err.is_invalid_input();
        }
        if let Some(err) = cause.downcast_ref::<cicd_agents_pipeline::error::GitError>() {
            return err.is_invalid_input();
        }
        if cause.is::<cicd_agents_pipeline::error::TagError>() {
            return true;
        }
    }
    false
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
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let twice = anyhow::Error::new(cicd_agents_buildkit::Error::Io {
            path: "/x".into(),
            source: io,
        })
        .context("reading");
        assert_eq!(render(&twice), "reading: /x: gone");
    }
}
