//! `--progress tty`: a live view redrawn in place, with a timer per step and
//! the last lines of running steps.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use crate::progress::event::StatusUpdate;
use crate::progress::tracker::Tracker;
use crate::progress::ProgressSink;

/// How often the view is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(120);
/// Log lines shown under a running step.
const LOG_LINES: usize = 6;

/// Draws the live view.
pub struct TtyRenderer<W: Write + Send> {
    out: W,
    tracker: Tracker,
    started: Instant,
    drawn_lines: usize,
    last_draw: Option<Instant>,
}

impl<W: Write + Send> TtyRenderer<W> {
    /// Renders to `out`, which should be a terminal.
    pub fn new(out: W) -> Self {
        TtyRenderer {
            out,
            tracker: Tracker::default(),
            started: Instant::now(),
            drawn_lines: 0,
            last_draw: None,
        }
    }

    fn draw(&mut self, done: bool) {
        let (total, finished) = self.tracker.counts();
        let mut frame = String::new();
        let status = if done { "Finished" } else { "Building" };
        frame.push_str(&format!(
            "[+] {status} {:.1}s ({finished}/{total})\n",
            self.started.elapsed().as_secs_f64()
        ));
        let now = SystemTime::now();
        for (_, vertex) in self.tracker.iter() {
            if vertex.started.is_none() && !vertex.cached {
                continue;
            }
            let took = match (vertex.started, vertex.completed) {
                (Some(start), Some(end)) => end.duration_since(start).unwrap_or_default(),
                (Some(start), None) => now.duration_since(start).unwrap_or_default(),
                _ => Duration::ZERO,
            };
            let prefix = if vertex.cached {
                "CACHED "
            } else if !vertex.error.is_empty() {
                "ERROR "
            } else {
                ""
            };
            frame.push_str(&format!(
                " => {prefix}{:<60} {:>5.1}s\n",
                vertex.name,
                took.as_secs_f64()
            ));
            if vertex.completed.is_none() && !vertex.cached {
                let lines = vertex.last_lines();
                for line in lines.iter().skip(lines.len().saturating_sub(LOG_LINES)) {
                    let shown: String = line.chars().take(100).collect();
                    frame.push_str(&format!(" => => # {shown}\n"));
                }
            }
        }
        let mut bytes = Vec::with_capacity(frame.len() + 16);
        if self.drawn_lines > 0 {
            bytes.extend_from_slice(format!("\x1b[{}A", self.drawn_lines).as_bytes());
        }
        for line in frame.lines() {
            bytes.extend_from_slice(b"\x1b[2K");
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        let new_lines = frame.lines().count();
        for _ in new_lines..self.drawn_lines {
            bytes.extend_from_slice(b"\x1b[2K\n");
        }
        let extra = self.drawn_lines.saturating_sub(new_lines);
        if extra > 0 {
            bytes.extend_from_slice(format!("\x1b[{extra}A").as_bytes());
        }
        self.drawn_lines = new_lines;
        let _ = self.out.write_all(&bytes);
        let _ = self.out.flush();
        self.last_draw = Some(Instant::now());
    }
}

impl<W: Write + Send> ProgressSink for TtyRenderer<W> {
    fn update(&mut self, update: &StatusUpdate) {
        self.tracker.apply(update);
        if self
            .last_draw
            .map(|t| t.elapsed() >= REDRAW_EVERY)
            .unwrap_or(true)
        {
            self.draw(false);
        }
    }

    fn finish(&mut self) {
        self.draw(true);
    }
}
