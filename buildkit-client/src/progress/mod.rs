//! Build progress: the daemon's `Status` stream as typed events, a tracker
//! that remembers each step's name and last log lines, and renderers like
//! buildx's (`plain`, `tty`, `quiet`, `rawjson`).

mod event;
mod plain;
mod rawjson;
mod tracker;
mod tty;

use std::io::IsTerminal;

pub use event::{LogChunk, StatusItem, StatusUpdate, VertexUpdate, Warning};
pub use plain::PlainRenderer;
pub use rawjson::RawJsonRenderer;
pub use tracker::{Tracker, VertexState};
pub use tty::{TermSize, TtyRenderer};

use crate::error::{Error, Result};
use crate::flags::OptionField;

/// Receives progress as it arrives. Called on the build's own task: keep it
/// quick (hand heavy work to another thread).
pub trait ProgressSink: Send {
    /// One batch of changes from the daemon.
    fn update(&mut self, update: &StatusUpdate);
    /// No update has arrived for a moment. Called about every
    /// [`IDLE_TICK`] while the daemon is quiet, so a renderer that holds
    /// output back (to order it the way buildx does) can print it.
    fn idle(&mut self) {}
    /// Where the build's time went, measured by the client: sent once, after
    /// the last update and before [`finish`](ProgressSink::finish).
    fn timings(&mut self, _timings: &crate::build::BuildTimings) {}
    /// The build is over (successfully or not).
    fn finish(&mut self) {}
    /// The daemon the build runs on, and the daemons passed over since the last call (or
    /// since the build began), in order, with why. A [`BuilderPool`](crate::BuilderPool)
    /// calls it before each attempt, so a build started again on another daemon calls it
    /// again; a build on one [`Client`](crate::Client) does not (its caller knows the
    /// daemon).
    fn builder(&mut self, _address: &str, _passed_over: &[crate::pool::Attempt]) {}
}

/// Whether output on a stream is coloured: only on a terminal, and never
/// when `NO_COLOR` (passed as `no_color`) is set to a non-empty value
/// (<https://no-color.org>). The `tty` view and the CLI's diagnostics follow it.
pub fn colour_wanted(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// How often [`ProgressSink::idle`] is called while no update arrives.
pub const IDLE_TICK: std::time::Duration = std::time::Duration::from_millis(100);

impl<F: FnMut(&StatusUpdate) + Send> ProgressSink for F {
    fn update(&mut self, update: &StatusUpdate) {
        self(update)
    }
}

/// Discards progress (`--progress quiet`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl ProgressSink for Quiet {
    fn update(&mut self, _update: &StatusUpdate) {}
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// `tty` on a terminal, else `plain`.
    Auto,
    /// Line by line, like `buildx --progress plain`.
    Plain,
    /// Live view with timers, redrawn in place.
    Tty,
    /// Nothing.
    Quiet,
    /// One JSON object per status update.
    RawJson,
}

impl std::str::FromStr for ProgressMode {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Ok(match text {
            "auto" => ProgressMode::Auto,
            "plain" => ProgressMode::Plain,
            "tty" => ProgressMode::Tty,
            "quiet" => ProgressMode::Quiet,
            "rawjson" => ProgressMode::RawJson,
            other => {
                return Err(Error::invalid(
                    OptionField::Progress,
                    other,
                    "expected auto, plain, tty, quiet or rawjson",
                ))
            }
        })
    }
}

impl std::fmt::Display for ProgressMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProgressMode::Auto => "auto",
            ProgressMode::Plain => "plain",
            ProgressMode::Tty => "tty",
            ProgressMode::Quiet => "quiet",
            ProgressMode::RawJson => "rawjson",
        })
    }
}

impl ProgressMode {
    /// The mode that renders on a stream that is (or is not) a terminal, as
    /// BuildKit's `progressui.NewDisplay` decides it for buildx: `auto` is
    /// `tty` on a terminal and `plain` elsewhere; `tty` needs a terminal and is
    /// refused elsewhere (buildx: "failed to get console: provided file is not
    /// a console") rather than drawn at a guessed size into a file or a pipe.
    ///
    /// ```
    /// use cicd_agents_buildkit::progress::ProgressMode;
    ///
    /// assert_eq!(ProgressMode::Auto.on(false)?, ProgressMode::Plain);
    /// assert_eq!(ProgressMode::Tty.on(true)?, ProgressMode::Tty);
    /// assert!(ProgressMode::Tty.on(false).is_err());
    /// # Ok::<(), cicd_agents_buildkit::Error>(())
    /// ```
    pub fn on(self, is_terminal: bool) -> Result<ProgressMode> {
        match self {
            ProgressMode::Auto if is_terminal => Ok(ProgressMode::Tty),
            ProgressMode::Auto => Ok(ProgressMode::Plain),
            ProgressMode::Tty if !is_terminal => Err(Error::invalid(
                OptionField::Progress,
                "tty",
                "the output is not a terminal (\"provided file is not a console\", as buildx says); \
                 use plain, rawjson or auto",
            )),
            other => Ok(other),
        }
    }

    /// [`on`](Self::on) standard error: the check a front end makes before
    /// dialling, so that a refused `tty` costs no connection.
    pub fn on_stderr(self) -> Result<ProgressMode> {
        self.on(std::io::stderr().is_terminal())
    }

    /// A renderer writing to stderr; `tty` is refused when stderr is not a
    /// terminal ([`on`](Self::on)).
    pub fn stderr_sink(self) -> Result<Box<dyn ProgressSink>> {
        self.stderr_sink_for("")
    }

    /// A renderer writing to stderr, naming `builder` (e.g. the daemon's
    /// address) at the right of the `tty` view's header, as buildx names its
    /// builder. The `tty` view follows the terminal's size as it changes; it
    /// is refused when stderr is not a terminal ([`on`](Self::on)).
    pub fn stderr_sink_for(self, builder: &str) -> Result<Box<dyn ProgressSink>> {
        Ok(match self.on_stderr()? {
            ProgressMode::Plain | ProgressMode::Auto => {
                Box::new(PlainRenderer::new(std::io::stderr()))
            }
            ProgressMode::Tty => Box::new(
                TtyRenderer::new(std::io::stderr())
                    .size_from(|| TermSize::of(std::io::stderr()))
                    .builder_name(builder),
            ),
            ProgressMode::Quiet => Box::new(Quiet),
            ProgressMode::RawJson => Box::new(RawJsonRenderer::new(std::io::stderr())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_display_and_resolve_as_buildx() {
        for text in ["auto", "plain", "tty", "quiet", "rawjson"] {
            let mode: ProgressMode = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
        }
        let err = "sideways".parse::<ProgressMode>().unwrap_err().to_string();
        assert!(
            err.starts_with("invalid progress mode \"sideways\""),
            "{err}"
        );
        assert_eq!(ProgressMode::Auto.on(true).unwrap(), ProgressMode::Tty);
        assert_eq!(ProgressMode::Auto.on(false).unwrap(), ProgressMode::Plain);
        for mode in [
            ProgressMode::Plain,
            ProgressMode::Quiet,
            ProgressMode::RawJson,
        ] {
            assert_eq!(mode.on(false).unwrap(), mode);
            assert_eq!(mode.on(true).unwrap(), mode);
        }
        let err = ProgressMode::Tty.on(false).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidOption { field: OptionField::Progress, value, .. } if value == "tty"
            ),
            "{err}"
        );
        assert!(err.to_string().contains("not a terminal"), "{err}");
    }
}
