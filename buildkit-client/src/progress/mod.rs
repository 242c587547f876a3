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
                return Err(Error::option(
                    OptionField::Progress,
                    format!("{other:?}; expected auto, plain, tty, quiet or rawjson"),
                ))
            }
        })
    }
}

impl ProgressMode {
    /// A renderer writing to stderr.
    pub fn stderr_sink(self) -> Box<dyn ProgressSink> {
        self.stderr_sink_for("")
    }

    /// A renderer writing to stderr, naming `builder` (e.g. the daemon's
    /// address) at the right of the `tty` view's header, as buildx names its
    /// builder. The `tty` view follows the terminal's size as it changes.
    pub fn stderr_sink_for(self, builder: &str) -> Box<dyn ProgressSink> {
        let mode = match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        };
        match mode {
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
        }
    }
}
