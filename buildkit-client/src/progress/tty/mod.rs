//! `--progress tty`: buildx's live view, redrawn in place.
//!
//! One header (`[+] Building 12.3s (5/7)` and the builder's name on the
//! right), then the steps in the order they started, each with its timer,
//! its counters (`=> => transferring context: 300.07MB`) and, while it runs,
//! the last rows of its output. Every line is cut to the terminal's width
//! (never wrapped) and the whole view is redrawn with cursor movement on each
//! tick; while the build runs the view is kept within the terminal's height.
//! The terminal's size is read again before every frame, so a resized
//! terminal is honoured at the next tick. The last frame (on
//! [`ProgressSink::finish`]) lists every step and stays on screen.

mod view;

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use crate::progress::event::StatusUpdate;
use crate::progress::{colour_wanted, ProgressSink};
use view::{sanitize, View};

/// How often the view is redrawn at most while updates arrive (buildx: 100 ms).
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// The size assumed when the terminal's cannot be read (buildx's fallback).
const FALLBACK_SIZE: TermSize = TermSize { cols: 80, rows: 10 };

const RESET: &str = "\x1b[0m";

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl TermSize {
    /// The size of the terminal behind `fd`, if it is one.
    pub fn of(fd: impl std::os::fd::AsFd) -> Option<TermSize> {
        let size = rustix::termios::tcgetwinsize(fd).ok()?;
        (size.ws_col > 0 && size.ws_row > 0).then_some(TermSize {
            cols: size.ws_col,
            rows: size.ws_row,
        })
    }
}

type SizeSource = Box<dyn FnMut() -> Option<TermSize> + Send>;

/// Draws the live view.
pub struct TtyRenderer<W: Write + Send> {
    out: W,
    size: SizeSource,
    builder: String,
    color: bool,
    view: View,
    /// Line lengths (in columns) of the frame on screen, and the width it was drawn at.
    on_screen: Vec<usize>,
    drawn_at_cols: usize,
    last_draw: Option<Instant>,
}

impl<W: Write + Send> TtyRenderer<W> {
    /// Renders to `out`, which should be a terminal. Its size is taken as
    /// 80×10 (as buildx does when it cannot read it) until
    /// [`TtyRenderer::size`] or [`TtyRenderer::size_from`] says otherwise;
    /// colours are on unless `NO_COLOR` is set.
    pub fn new(out: W) -> Self {
        TtyRenderer {
            out,
            size: Box::new(|| None),
            builder: String::new(),
            color: colour_wanted(true, std::env::var_os("NO_COLOR").as_deref()),
            view: View::default(),
            on_screen: Vec::new(),
            drawn_at_cols: 0,
            last_draw: None,
        }
    }

    /// Draws for a terminal of this fixed size.
    pub fn size(self, size: TermSize) -> Self {
        self.size_from(move || Some(size))
    }

    /// Asks `source` for the terminal's size before every frame (so a
    /// resized terminal is followed); `None` means 80×10.
    pub fn size_from(mut self, source: impl FnMut() -> Option<TermSize> + Send + 'static) -> Self {
        self.size = Box::new(source);
        self
    }

    /// The builder's name shown at the right of the header (buildx shows
    /// `docker:default`; the CLI shows the daemon's address).
    pub fn builder_name(mut self, name: impl Into<String>) -> Self {
        self.builder = sanitize(&name.into());
        self
    }

    /// Turns colours on or off.
    pub fn color(mut self, on: bool) -> Self {
        self.color = on;
        self
    }

    fn draw(&mut self, now: SystemTime, last: bool) {
        let size = (self.size)().unwrap_or(FALLBACK_SIZE);
        let cols = usize::from(size.cols.max(1));
        let frame = self.view.frame(now, size, &self.builder, last);
        let mut bytes = String::with_capacity(frame.iter().map(|l| l.text.len() + 16).sum());
        bytes.push_str("\x1b[?25l");
        let up = self.rows_on_screen(cols);
        if up > 0 {
            bytes.push_str(&format!("\x1b[{up}A"));
        }
        bytes.push('\r');
        for line in &frame {
            match (self.color, line.color) {
                (true, Some(color)) => {
                    bytes.push_str(color);
                    bytes.push_str(&line.text);
                    bytes.push_str(RESET);
                }
                _ => bytes.push_str(&line.text),
            }
            bytes.push_str("\x1b[K\n");
        }
        bytes.push_str("\x1b[J\x1b[?25h");
        self.on_screen = frame.iter().map(|l| l.width).collect();
        self.drawn_at_cols = cols;
        let _ = self.out.write_all(bytes.as_bytes());
        let _ = self.out.flush();
        self.last_draw = Some(Instant::now());
    }

    /// Leaves the frame on screen as it is: a next build (a pipeline runs
    /// several through one renderer) gets a view of its own below it.
    fn leave_on_screen(&mut self) {
        self.view = View::default();
        self.on_screen.clear();
        self.last_draw = None;
    }

    /// How many rows the frame on screen takes now. A terminal made narrower
    /// than the frame was drawn for re-wraps its long lines (tmux, VTE and
    /// most others do), so they count for more than one row.
    fn rows_on_screen(&self, cols: usize) -> usize {
        if cols >= self.drawn_at_cols {
            return self.on_screen.len();
        }
        self.on_screen
            .iter()
            .map(|&width| width.div_ceil(cols).max(1))
            .sum()
    }
}

impl<W: Write + Send> ProgressSink for TtyRenderer<W> {
    fn update(&mut self, update: &StatusUpdate) {
        let now = SystemTime::now();
        self.view.apply(update, now);
        if self.last_draw.is_none_or(|at| at.elapsed() >= REDRAW_EVERY) {
            self.draw(now, false);
        }
    }

    fn idle(&mut self) {
        self.draw(SystemTime::now(), false);
    }

    fn finish(&mut self) {
        self.draw(SystemTime::now(), true);
        self.leave_on_screen();
    }

    /// Prints `passed over ADDRESS: REASON` above the view for each daemon passed over, and
    /// names `address` at the right of the header from now on.
    fn builder(&mut self, address: &str, passed_over: &[crate::pool::Attempt]) {
        if !self.on_screen.is_empty() {
            // A build lost on its daemon: its view stays as it was left.
            self.draw(SystemTime::now(), true);
            self.leave_on_screen();
        }
        if !passed_over.is_empty() {
            let mut text = String::new();
            for attempt in passed_over {
                text.push_str("passed over ");
                text.push_str(&sanitize(&attempt.to_string()));
                text.push('\n');
            }
            let _ = self.out.write_all(text.as_bytes());
            let _ = self.out.flush();
        }
        self.builder = sanitize(address);
    }
}

#[cfg(test)]
mod tests;
