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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use crate::progress::event::{StatusItem, StatusUpdate};
use crate::progress::plain::format_bytes;
use crate::progress::{colour_wanted, ProgressSink};

/// How often the view is redrawn at most while updates arrive (buildx: 100 ms).
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Rows of output shown under a running step (buildx's default log height).
const LOG_ROWS: usize = 6;
/// Columns the output rows leave free (buildx's `termPad`).
const LOG_PAD: usize = 10;
/// A step line with less room than this for its name is not drawn.
const MIN_NAME_ROOM: usize = 12;
/// The most bytes kept of an output line that has no end yet.
const MAX_PARTIAL: usize = 4096;
/// The size assumed when the terminal's cannot be read (buildx's fallback).
const FALLBACK_SIZE: TermSize = TermSize { cols: 80, rows: 10 };

const COLOR_DONE: &str = "\x1b[34m";
const COLOR_ERROR: &str = "\x1b[31m";
const COLOR_CANCELED: &str = "\x1b[33m";
const FAINT: &str = "\x1b[2m";
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
}

/// One line of a frame.
struct Line {
    text: String,
    /// Its width in columns (`text` holds no control characters).
    width: usize,
    color: Option<&'static str>,
}

impl Line {
    fn new(text: String, color: Option<&'static str>) -> Self {
        Line {
            width: text.chars().count(),
            text,
            color,
        }
    }
}

/// What the view knows of the build.
#[derive(Default)]
struct View {
    steps: HashMap<String, Step>,
    /// Digests in the order the steps first started.
    order: Vec<String>,
    /// The first step's start on the daemon's clock and on ours: daemon
    /// times are shifted by the difference, as buildx does.
    clocks: Option<(SystemTime, SystemTime)>,
}

/// One step (vertex).
#[derive(Default)]
struct Step {
    name: String,
    cached: bool,
    error: String,
    /// Start → end of each run of the step, on the daemon's clock.
    intervals: BTreeMap<SystemTime, Option<SystemTime>>,
    /// Counter IDs in the order they started.
    counters: Vec<String>,
    counter_by_id: HashMap<String, StatusItem>,
    warnings: Vec<String>,
    output: Output,
    /// Output bytes seen and frames that showed the output: which running
    /// steps get room for their output when not all can (as buildx weighs them).
    output_bytes: usize,
    output_shown: usize,
}

impl Step {
    fn completed(&self) -> bool {
        !self.intervals.is_empty() && self.intervals.values().all(|end| end.is_some())
    }

    fn canceled(&self) -> bool {
        self.error.ends_with("context canceled")
    }

    /// Time spent running, overlapping runs counted once.
    fn seconds(&self, now: SystemTime) -> f64 {
        let mut total = Duration::ZERO;
        let mut covered_until: Option<SystemTime> = None;
        // Sorted by start (a BTreeMap).
        for (&start, &end) in &self.intervals {
            let end = end.unwrap_or(now).max(start);
            let from = covered_until.map_or(start, |until| until.max(start));
            if end > from {
                total += end.duration_since(from).unwrap_or_default();
            }
            covered_until = Some(covered_until.map_or(end, |until| until.max(end)));
        }
        total.as_secs_f64()
    }
}

/// The tail of a step's output, kept as the rows a small terminal would show.
#[derive(Default)]
struct Output {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl Output {
    fn push(&mut self, data: &[u8]) {
        for &byte in data {
            match byte {
                b'\n' => {
                    let line = sanitize(&String::from_utf8_lossy(&self.partial));
                    self.partial.clear();
                    if self.lines.len() == LOG_ROWS {
                        self.lines.pop_front();
                    }
                    self.lines.push_back(line);
                }
                // A carriage return starts the line again (progress bars).
                b'\r' => self.partial.clear(),
                _ if self.partial.len() < MAX_PARTIAL => self.partial.push(byte),
                _ => {}
            }
        }
    }

    /// The last rows of the output on a terminal `cols` wide, blank ones left
    /// out (an unfinished last line is a row once it holds something).
    fn rows(&self, cols: usize) -> Vec<String> {
        let cols = cols.max(1);
        let current = sanitize(&String::from_utf8_lossy(&self.partial));
        let current = (!current.is_empty()).then_some(&current);
        let mut rows: Vec<String> = Vec::new();
        for line in self.lines.iter().chain(current) {
            let chars: Vec<char> = line.chars().collect();
            if chars.is_empty() {
                rows.push(String::new());
            }
            rows.extend(chars.chunks(cols).map(|chunk| chunk.iter().collect()));
        }
        let skip = rows.len().saturating_sub(LOG_ROWS);
        rows.into_iter()
            .skip(skip)
            .filter(|row| !row.trim().is_empty())
            .collect()
    }
}

/// `text` without control characters or escape sequences, tabs expanded to
/// the next multiple of 8 columns: what is left has one column per character.
fn sanitize(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut column = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => {
                let next = (column / 8 + 1) * 8;
                clean.extend(std::iter::repeat_n(' ', next - column));
                column = next;
            }
            '\x1b' => match chars.next() {
                // CSI: `ESC [`, parameters, one final character.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS and the like: up to BEL or `ESC \`.
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                // A two-character escape.
                _ => {}
            },
            c if c.is_control() => {}
            c => {
                clean.push(c);
                column += 1;
            }
        }
    }
    clean
}

/// `text` cut to at most `cols` characters.
fn cut(text: &str, cols: usize) -> &str {
    match text.char_indices().nth(cols) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// `left` padded to `cols - right's width - 1` columns, a space, then `right`
/// (buildx's `align`).
fn align(left: &str, right: &str, cols: usize) -> String {
    let pad = cols.saturating_sub(right.chars().count() + 1);
    format!("{left:<pad$} {right}")
}

/// One line of the step list before it is fitted to the width.
struct Job {
    name: String,
    status: String,
    seconds: f64,
    completed: bool,
    color: Option<&'static str>,
    /// The step whose output may be shown under this line.
    output_of: Option<String>,
    show_output: bool,
}

impl View {
    fn apply(&mut self, update: &StatusUpdate, now: SystemTime) {
        for vertex in &update.vertexes {
            let is_new = !self.steps.contains_key(&vertex.digest);
            let step = self.steps.entry(vertex.digest.clone()).or_default();
            let was_started = !step.intervals.is_empty();
            if is_new || !vertex.name.is_empty() {
                step.name = sanitize(&vertex.name);
            }
            step.cached = vertex.cached;
            step.error = vertex.error.clone();
            if let Some(started) = vertex.started {
                step.intervals.insert(started, vertex.completed);
                if !was_started {
                    self.order.push(vertex.digest.clone());
                    if self.clocks.is_none() {
                        self.clocks = Some((started, now));
                    }
                }
            }
        }
        for status in &update.statuses {
            let Some(step) = self.steps.get_mut(&status.vertex) else {
                continue;
            };
            let started_before = step
                .counter_by_id
                .get(&status.id)
                .is_some_and(|old| old.started.is_some());
            if status.started.is_some() && !started_before {
                step.counters.push(status.id.clone());
            }
            step.counter_by_id.insert(status.id.clone(), status.clone());
        }
        for warning in &update.warnings {
            if let Some(step) = self.steps.get_mut(&warning.vertex) {
                step.warnings
                    .push(sanitize(&String::from_utf8_lossy(&warning.short)));
            }
        }
        for log in &update.logs {
            if let Some(step) = self.steps.get_mut(&log.vertex) {
                step.output.push(&log.data);
                step.output_bytes += log.data.len();
            }
        }
    }

    /// A daemon time on our clock.
    fn local(&self, at: SystemTime) -> SystemTime {
        match self.clocks {
            Some((daemon, ours)) => match ours.duration_since(daemon) {
                Ok(ahead) => at.checked_add(ahead).unwrap_or(at),
                Err(behind) => at.checked_sub(behind.duration()).unwrap_or(at),
            },
            None => at,
        }
    }

    fn jobs(&self, now: SystemTime) -> Vec<Job> {
        // Durations between daemon times are shifted into "now" on the daemon's clock.
        let daemon_now = match self.clocks {
            Some((daemon, ours)) => match now.duration_since(ours) {
                Ok(since) => daemon.checked_add(since).unwrap_or(daemon),
                Err(_) => daemon,
            },
            None => now,
        };
        let mut jobs = Vec::new();
        for digest in &self.order {
            let Some(step) = self.steps.get(digest) else {
                continue;
            };
            let mut name = step.name.clone();
            let mut color = Some(COLOR_DONE);
            if !step.error.is_empty() {
                if step.canceled() {
                    name = format!("CANCELED {name}");
                    color = Some(COLOR_CANCELED);
                } else {
                    name = format!("ERROR {name}");
                    color = Some(COLOR_ERROR);
                }
            }
            if step.cached {
                name = format!("CACHED {name}");
            }
            jobs.push(Job {
                name,
                status: String::new(),
                seconds: step.seconds(daemon_now),
                completed: step.completed(),
                color,
                output_of: Some(digest.clone()),
                show_output: false,
            });
            for id in &step.counters {
                let Some(counter) = step.counter_by_id.get(id) else {
                    continue;
                };
                let Some(started) = counter.started else {
                    continue;
                };
                let end = counter.completed.unwrap_or(daemon_now).max(started);
                let status = if counter.total != 0 {
                    format!(
                        "{} / {}",
                        format_bytes(counter.current),
                        format_bytes(counter.total)
                    )
                } else if counter.current != 0 {
                    format_bytes(counter.current)
                } else {
                    String::new()
                };
                jobs.push(Job {
                    name: format!("=> {}", sanitize(&counter.id)),
                    status,
                    seconds: end
                        .duration_since(started)
                        .unwrap_or_default()
                        .as_secs_f64(),
                    completed: counter.completed.is_some(),
                    color: Some(COLOR_DONE),
                    output_of: None,
                    show_output: false,
                });
            }
            for warning in &step.warnings {
                let (start, end) = step
                    .intervals
                    .iter()
                    .next_back()
                    .map_or((daemon_now, Some(daemon_now)), |(&s, &e)| (s, e));
                let end = end.unwrap_or(daemon_now).max(start);
                jobs.push(Job {
                    name: format!("WARN: {warning}"),
                    status: String::new(),
                    seconds: end.duration_since(start).unwrap_or_default().as_secs_f64(),
                    completed: false,
                    color: Some(COLOR_CANCELED),
                    output_of: None,
                    show_output: false,
                });
            }
        }
        jobs
    }

    /// The lines of one frame for a terminal of `size`; `last` draws every
    /// step (the frame left on screen) rather than what fits the height.
    fn frame(&mut self, now: SystemTime, size: TermSize, builder: &str, last: bool) -> Vec<Line> {
        let cols = usize::from(size.cols.max(1));
        let rows = usize::from(size.rows.max(1));
        let log_cols = cols.saturating_sub(LOG_PAD).max(1);

        let counted: Vec<&Step> = self.steps.values().collect();
        let total = counted.len();
        let finished = counted.iter().filter(|s| s.completed()).count();
        let elapsed = match self.clocks {
            Some((daemon, _)) => now
                .duration_since(self.local(daemon))
                .unwrap_or_default()
                .as_secs_f64(),
            None => 0.0,
        };
        let done = if last && finished > 0 && finished == total {
            "FINISHED"
        } else {
            ""
        };
        let head = format!("[+] Building {elapsed:.1}s ({finished}/{total}) {done}");
        let head = if builder.is_empty() {
            head.trim_end().to_string()
        } else {
            align(&head, builder, cols.saturating_sub(1))
        };
        let mut lines = vec![Line::new(
            cut(&head, cols.saturating_sub(1)).to_string(),
            None,
        )];

        let mut jobs = self.jobs(now);
        // Which running steps show their output: the busiest first, while
        // the height leaves room for them.
        let running = jobs.iter().filter(|j| !j.completed).count();
        let mut candidates: Vec<usize> = (0..jobs.len())
            .filter(|&i| {
                !jobs[i].completed
                    && jobs[i]
                        .output_of
                        .as_ref()
                        .and_then(|d| self.steps.get(d))
                        .is_some_and(|s| s.output_bytes > 0)
            })
            .collect();
        let weight = |i: &usize| {
            jobs[*i]
                .output_of
                .as_ref()
                .and_then(|d| self.steps.get(d))
                .map_or(0, |s| s.output_bytes + s.output_shown * 50)
        };
        candidates.sort_by_key(|i| std::cmp::Reverse(weight(i)));
        let mut free = rows as isize - 2 - running as isize;
        let needs = (LOG_ROWS + 3) as isize;
        let mut output_rows = 0;
        for i in candidates {
            if free <= needs {
                break;
            }
            jobs[i].show_output = true;
            if let Some(step) = jobs[i].output_of.as_ref().and_then(|d| self.steps.get(d)) {
                output_rows += step.output.rows(log_cols).len();
            }
            free -= needs;
        }
        if !last {
            let limit = rows as isize - 2 - output_rows as isize;
            jobs = fit_height(jobs, limit.max(0) as usize);
        }

        for job in jobs {
            let seconds = if job.seconds < 0.05 { 0.0 } else { job.seconds };
            let timer = format!(" {seconds:.1}s");
            // buildx counts the timer's newline too.
            let mut room = cols as isize - 4 - (timer.len() as isize + 1) - 1;
            let mut show_status = false;
            if !job.status.is_empty() && room + job.status.len() as isize > 20 {
                show_status = true;
                room -= job.status.len() as isize + 1;
            }
            if room < MIN_NAME_ROOM as isize {
                continue;
            }
            let mut text = format!(" => {}", cut(&job.name, room as usize));
            if show_status {
                text.push(' ');
                text.push_str(&job.status);
            }
            let text = align(&text, &timer, cols.saturating_sub(1));
            let color = if job.completed { job.color } else { None };
            lines.push(Line::new(
                cut(&text, cols.saturating_sub(1)).to_string(),
                color,
            ));
            if job.show_output {
                if let Some(step) = job.output_of.as_ref().and_then(|d| self.steps.get_mut(d)) {
                    for row in step.output.rows(log_cols) {
                        let text = format!(" => => # {row}");
                        lines.push(Line::new(
                            cut(&text, cols.saturating_sub(1)).to_string(),
                            Some(FAINT),
                        ));
                    }
                    step.output_shown += 1;
                }
            }
        }
        lines
    }
}

/// The last `limit` jobs, with running jobs that would be cut off moved back
/// in place of finished ones at the top (buildx's `wrapHeight`).
fn fit_height(jobs: Vec<Job>, limit: usize) -> Vec<Job> {
    if jobs.len() <= limit {
        return jobs;
    }
    let cut_at = jobs.len() - limit;
    let mut jobs = jobs;
    let kept = jobs.split_off(cut_at);
    let hidden_running: Vec<Job> = jobs.into_iter().filter(|j| !j.completed).collect();
    if hidden_running.is_empty() {
        return kept;
    }
    // Drop finished jobs among the first `hidden_running.len()` kept ones.
    let mut budget = hidden_running.len();
    let mut rest = Vec::with_capacity(kept.len());
    for job in kept {
        if job.completed && budget > 0 {
            budget -= 1;
            continue;
        }
        budget = budget.saturating_sub(1);
        rest.push(job);
    }
    let room = limit - rest.len();
    let skip = hidden_running.len().saturating_sub(room);
    hidden_running.into_iter().skip(skip).chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::event::{LogChunk, VertexUpdate, Warning};
    use std::num::NonZeroU16;
    use std::sync::{Arc, Mutex};
    use std::time::UNIX_EPOCH;

    /// A terminal emulator the renderer writes into.
    #[derive(Clone)]
    struct Term(Arc<Mutex<vt100::Parser>>);

    impl Term {
        fn new(cols: u16, rows: u16) -> Self {
            let (Some(rows), Some(cols)) = (NonZeroU16::new(rows), NonZeroU16::new(cols)) else {
                panic!("a terminal has a size");
            };
            Term(Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 10_000))))
        }

        fn resize(&self, cols: u16, rows: u16) {
            let (Some(rows), Some(cols)) = (NonZeroU16::new(rows), NonZeroU16::new(cols)) else {
                panic!("a terminal has a size");
            };
            self.0.lock().unwrap().set_size(rows, cols);
        }

        /// Every row ever shown: the scrollback, then the screen, trailing
        /// blank rows of the screen left out.
        fn all_rows(&self) -> Vec<String> {
            let mut parser = self.0.lock().unwrap();
            let screen = parser.screen_mut();
            screen.set_scrollback(usize::MAX);
            let history = screen.scrollback();
            let (_, cols) = screen.size();
            let mut rows = Vec::new();
            for offset in (1..=history).rev() {
                screen.set_scrollback(offset);
                rows.extend(screen.rows(0, cols.get()).take(1));
            }
            screen.set_scrollback(0);
            rows.extend(screen.rows(0, cols.get()));
            while rows.last().is_some_and(|r| r.trim().is_empty()) {
                rows.pop();
            }
            rows
        }

        fn cursor_row(&self) -> u16 {
            self.0.lock().unwrap().screen().cursor_position().0
        }
    }

    impl Write for Term {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            // A terminal's line discipline turns `\n` into `\r\n` (ONLCR).
            let mut cooked = Vec::with_capacity(data.len() + 64);
            for &byte in data {
                if byte == b'\n' {
                    cooked.push(b'\r');
                }
                cooked.push(byte);
            }
            self.0.lock().unwrap().process(&cooked);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(millis)
    }

    fn vertex(
        digest: &str,
        name: &str,
        started: Option<u64>,
        completed: Option<u64>,
    ) -> VertexUpdate {
        VertexUpdate {
            digest: digest.into(),
            name: name.into(),
            inputs: vec![],
            cached: false,
            started: started.map(at),
            completed: completed.map(at),
            error: String::new(),
        }
    }

    fn counter(
        digest: &str,
        id: &str,
        current: i64,
        started: u64,
        completed: Option<u64>,
    ) -> StatusItem {
        StatusItem {
            id: id.into(),
            vertex: digest.into(),
            name: String::new(),
            current,
            total: 0,
            started: Some(at(started)),
            timestamp: Some(at(completed.unwrap_or(started))),
            completed: completed.map(at),
        }
    }

    fn log(digest: &str, text: &str) -> LogChunk {
        LogChunk {
            vertex: digest.into(),
            stream: 1,
            data: text.as_bytes().to_vec(),
            timestamp: None,
        }
    }

    const LONG_RUN: &str = "[3/3] RUN sleep 6 && echo 'a long command that goes on and on past the right edge of any reasonable terminal window, on and on and on, and still on' && true";

    /// The build from issue 13: a 300 MB context and a six-second `RUN`, the
    /// steps announced (unstarted) out of order first, as the daemon does.
    /// Each element is (time in ms, update).
    fn recorded_build() -> Vec<(u64, StatusUpdate)> {
        let mut events = Vec::new();
        let mut push = |ms: u64, update: StatusUpdate| events.push((ms, update));
        push(
            0,
            StatusUpdate {
                vertexes: vec![vertex(
                    "def",
                    "[internal] load build definition from Dockerfile",
                    Some(0),
                    None,
                )],
                ..Default::default()
            },
        );
        push(
            40,
            StatusUpdate {
                vertexes: vec![vertex(
                    "def",
                    "[internal] load build definition from Dockerfile",
                    Some(0),
                    Some(40),
                )],
                statuses: vec![counter("def", "transferring dockerfile:", 130, 5, Some(40))],
                ..Default::default()
            },
        );
        push(
            60,
            StatusUpdate {
                vertexes: vec![
                    vertex(
                        "meta",
                        "[internal] load metadata for docker.io/library/alpine:3.19",
                        Some(60),
                        Some(300),
                    ),
                    vertex("ign", "[internal] load .dockerignore", Some(60), Some(80)),
                ],
                statuses: vec![counter("ign", "transferring context:", 2, 62, Some(80))],
                ..Default::default()
            },
        );
        // Announced before they start, the RUN first.
        push(
            320,
            StatusUpdate {
                vertexes: vec![
                    vertex("run", LONG_RUN, None, None),
                    vertex("copy", "[2/3] COPY . /ctx", None, None),
                    vertex(
                        "from",
                        "[1/3] FROM docker.io/library/alpine:3.19@sha256:0123456789abcdef",
                        None,
                        None,
                    ),
                    vertex("ctx", "[internal] load build context", None, None),
                ],
                ..Default::default()
            },
        );
        push(
            330,
            StatusUpdate {
                vertexes: vec![
                    vertex("ctx", "[internal] load build context", Some(330), None),
                    VertexUpdate {
                        cached: true,
                        ..vertex(
                            "from",
                            "[1/3] FROM docker.io/library/alpine:3.19@sha256:0123456789abcdef",
                            Some(330),
                            Some(330),
                        )
                    },
                ],
                ..Default::default()
            },
        );
        for step in 1..=10u64 {
            let ms = 330 + step * 200;
            let done = (step == 10).then_some(ms);
            push(
                ms,
                StatusUpdate {
                    vertexes: if step == 10 {
                        vec![vertex(
                            "ctx",
                            "[internal] load build context",
                            Some(330),
                            done,
                        )]
                    } else {
                        vec![]
                    },
                    statuses: vec![counter(
                        "ctx",
                        "transferring context:",
                        step as i64 * 30_007_000,
                        335,
                        done,
                    )],
                    ..Default::default()
                },
            );
        }
        push(
            2400,
            StatusUpdate {
                vertexes: vec![vertex("copy", "[2/3] COPY . /ctx", Some(2400), Some(3900))],
                ..Default::default()
            },
        );
        push(
            3900,
            StatusUpdate {
                vertexes: vec![vertex("run", LONG_RUN, Some(3900), None)],
                ..Default::default()
            },
        );
        for second in 1..=6u64 {
            push(
                3900 + second * 1000,
                StatusUpdate {
                    logs: vec![log(
                        "run",
                        &format!("tick {second}\r\x1b[1mbold\x1b[0m tick {second}\tdone\n"),
                    )],
                    ..Default::default()
                },
            );
        }
        events
    }

    fn finish_build(renderer: &mut TtyRenderer<Term>, now: u64) {
        let update = StatusUpdate {
            vertexes: vec![vertex("run", LONG_RUN, Some(3900), Some(now))],
            ..Default::default()
        };
        renderer.view.apply(&update, at(now));
        renderer.draw(at(now), true);
    }

    /// Feeds the recorded build, drawing a frame every 100 ms as the ticks do.
    fn play(
        renderer: &mut TtyRenderer<Term>,
        events: &[(u64, StatusUpdate)],
        until: u64,
        mut each_frame: impl FnMut(u64, &mut TtyRenderer<Term>),
    ) {
        let mut next = 0;
        for ms in (0..=until).step_by(100) {
            while next < events.len() && events[next].0 <= ms {
                renderer.view.apply(&events[next].1, at(events[next].0));
                next += 1;
            }
            each_frame(ms, renderer);
            renderer.draw(at(ms), false);
        }
    }

    fn renderer(term: &Term, cols: u16, rows: u16) -> TtyRenderer<Term> {
        TtyRenderer::new(term.clone())
            .size(TermSize { cols, rows })
            .builder_name("docker://unix:///var/run/docker.sock")
            .color(true)
    }

    fn position(rows: &[String], needle: &str) -> usize {
        rows.iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle:?} in\n{}", rows.join("\n")))
    }

    #[test]
    fn one_header_redrawn_in_place_steps_in_order_with_sub_lines_and_cut_to_the_width() {
        let term = Term::new(120, 30);
        let mut view = renderer(&term, 120, 30);
        let events = recorded_build();
        let mut seen_running_log = false;
        play(&mut view, &events, 9_000, |ms, _| {
            if ms == 8_000 {
                let rows = term.all_rows();
                // While RUN runs, its last output rows are under it, cleaned
                // of escapes, carriage returns and tabs.
                let run = position(&rows, "[3/3] RUN");
                assert!(
                    rows[run + 1].starts_with(" => => # bold tick 1     done"),
                    "{rows:#?}"
                );
                assert_eq!(
                    rows.iter().filter(|r| r.starts_with(" => => # ")).count(),
                    4,
                    "{rows:#?}"
                );
                seen_running_log = true;
            }
        });
        assert!(seen_running_log);
        // Mid-build: one header, at the top, with the builder at the right.
        let rows = term.all_rows();
        assert_eq!(
            rows.iter().filter(|r| r.contains("[+] Building")).count(),
            1,
            "{rows:#?}"
        );
        assert!(
            rows[0].starts_with("[+] Building 9.0s (6/7)"),
            "{}",
            rows[0]
        );
        assert!(
            rows[0].ends_with("docker://unix:///var/run/docker.sock"),
            "{:?}",
            rows[0]
        );

        finish_build(&mut view, 10_000);
        let rows = term.all_rows();
        let text = rows.join("\n");
        assert_eq!(
            rows.iter().filter(|r| r.contains("[+] Building")).count(),
            1,
            "{text}"
        );
        assert!(
            rows[0].starts_with("[+] Building 10.0s (7/7) FINISHED"),
            "{text}"
        );
        assert_eq!(rows.len(), 11, "{text}");
        // Steps in the order they started, each counter under its step.
        let order = [
            "=> [internal] load build definition from Dockerfile",
            "=> => transferring dockerfile: 130B",
            "=> [internal] load metadata for docker.io/library/alpine:3.19",
            "=> [internal] load .dockerignore",
            "=> => transferring context: 2B",
            "=> [internal] load build context",
            "=> => transferring context: 300.07MB",
            "=> CACHED [1/3] FROM docker.io/library/alpine:3.19@sha256:0123456789abcdef",
            "=> [2/3] COPY . /ctx",
            "=> [3/3] RUN sleep 6",
        ];
        for (row, needle) in rows[1..11].iter().zip(order) {
            assert!(
                row.starts_with(&format!(" {needle}")),
                "{row:?} is not {needle:?}\n{text}"
            );
        }
        // Timers at the right, in the second-to-last column; nothing wraps.
        assert!(rows[6].ends_with(" 2.0s"), "{:?}", rows[6]);
        assert!(rows[7].ends_with(" 2.0s"), "{:?}", rows[7]);
        assert!(rows[10].ends_with(" 6.1s"), "{:?}", rows[10]);
        assert!(
            rows[10].contains("any reasonable terminal"),
            "{:?}",
            rows[10]
        );
        for row in &rows {
            assert!(row.chars().count() <= 120, "{row:?}");
            assert!(
                !row.starts_with("on and on") && !row.starts_with(" reasonable"),
                "wrapped: {text}"
            );
        }
        // Output rows of a finished step are gone; the cursor is under the view.
        assert!(!text.contains(" => => # "), "{text}");
        assert_eq!(term.cursor_row(), 11);
    }

    #[test]
    fn the_view_follows_a_resize_and_fits_a_narrow_terminal() {
        let term = Term::new(120, 30);
        let mut size = TermSize {
            cols: 120,
            rows: 30,
        };
        let shared = Arc::new(Mutex::new(size));
        let reading = shared.clone();
        let mut view = TtyRenderer::new(term.clone())
            .size_from(move || Some(*reading.lock().unwrap()))
            .builder_name("docker://unix:///var/run/docker.sock")
            .color(false);
        let events = recorded_build();
        play(&mut view, &events, 9_000, |ms, _| {
            if ms == 5_000 {
                size = TermSize { cols: 40, rows: 30 };
                *shared.lock().unwrap() = size;
                term.resize(40, 30);
            }
        });
        let rows = term.all_rows();
        let text = rows.join("\n");
        assert_eq!(
            rows.iter().filter(|r| r.contains("[+] Building")).count(),
            1,
            "{text}"
        );
        // The header is cut to 39 columns, the builder's name with it (as buildx does).
        assert_eq!(rows[0], "[+] Building 9.0s (6/7)  docker://unix:", "{text}");
        for row in &rows {
            assert!(row.trim_end().chars().count() <= 39, "{row:?}");
        }
        let ctx = position(&rows, "=> [internal] load build context");
        assert!(rows[ctx].ends_with(" 2.0s"), "{:?}", rows[ctx]);
        // The counter's bytes still fit beside a cut name.
        assert!(
            rows[ctx + 1].starts_with(" => => transferring cont 300.07MB"),
            "{:?}",
            rows[ctx + 1]
        );
        let run = position(&rows, "[3/3] RUN sleep 6 && ec");
        assert!(rows[run].ends_with(" 5.1s"), "{:?}", rows[run]);
        // Output rows are cut to 40 - 10 columns, as buildx's are.
        assert!(rows[run + 1].starts_with(" => => # "), "{text}");

        // Narrower than a step line can be: only the header remains.
        *shared.lock().unwrap() = TermSize { cols: 20, rows: 30 };
        term.resize(20, 30);
        finish_build(&mut view, 10_000);
        let rows = term.all_rows();
        assert_eq!(
            rows.iter().filter(|r| r.contains("[+] Build")).count(),
            1,
            "{rows:#?}"
        );
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert_eq!(rows[0], "[+] Building 10.0s ", "{rows:#?}");
    }

    #[test]
    fn a_long_build_keeps_within_the_height_until_the_last_frame() {
        let term = Term::new(80, 12);
        let mut view = renderer(&term, 80, 12);
        let mut updates = Vec::new();
        for i in 0..30u64 {
            let start = i * 100;
            updates.push((
                start,
                StatusUpdate {
                    vertexes: vec![vertex(
                        &format!("d{i}"),
                        &format!("[{i}/30] RUN step {i}"),
                        Some(start),
                        Some(start + 150),
                    )],
                    ..Default::default()
                },
            ));
        }
        let mut scrolled = false;
        play(&mut view, &updates, 3_000, |_, _| {
            let parser = term.0.lock().unwrap();
            scrolled |= parser.screen().scrollback_len() > 0;
        });
        // 12 rows: the header and the last 10 steps, the screen never scrolled.
        assert!(!scrolled);
        let rows = term.all_rows();
        assert_eq!(rows.len(), 11, "{rows:#?}");
        assert!(rows[1].contains("[20/30] RUN step 20"), "{rows:#?}");
        // The last frame lists every step and scrolls the screen once.
        view.draw(at(3_200), true);
        let rows = term.all_rows();
        assert_eq!(rows.len(), 31, "{rows:#?}");
        assert_eq!(
            rows.iter().filter(|r| r.contains("[+] Building")).count(),
            1
        );
        assert!(
            rows[0].starts_with("[+] Building 3.2s (30/30) FINISHED"),
            "{rows:#?}"
        );
        assert!(rows[1].contains("[0/30] RUN step 0"), "{rows:#?}");
    }

    #[test]
    fn running_steps_cut_off_the_top_come_back_in_place_of_finished_ones() {
        let term = Term::new(80, 8);
        let mut view = renderer(&term, 80, 8);
        let mut update = StatusUpdate::default();
        update
            .vertexes
            .push(vertex("slow", "[1/9] RUN the slow one", Some(0), None));
        for i in 2..=9u64 {
            update.vertexes.push(vertex(
                &format!("d{i}"),
                &format!("[{i}/9] RUN quick {i}"),
                Some(i),
                Some(i + 1),
            ));
        }
        update.warnings.push(Warning {
            vertex: "d9".into(),
            level: 1,
            short: b"JSONArgsRecommended: use JSON".to_vec(),
            detail: vec![],
            url: String::new(),
        });
        view.view.apply(&update, at(0));
        view.draw(at(1_000), false);
        let rows = term.all_rows();
        assert_eq!(rows.len(), 7, "{rows:#?}");
        assert!(rows[1].contains("[1/9] RUN the slow one"), "{rows:#?}");
        assert!(rows[1].ends_with(" 1.0s"), "{rows:#?}");
        assert!(rows[5].contains("[9/9] RUN quick 9"), "{rows:#?}");
        assert!(
            rows[6].contains("=> WARN: JSONArgsRecommended: use JSON"),
            "{rows:#?}"
        );
    }

    #[test]
    fn output_rows_are_the_last_six_wrapped_at_the_width() {
        let mut output = Output::default();
        output.push(b"one\ntwo\nthree\nfour\nfive\nsix\nseven\n");
        assert_eq!(
            output.rows(20),
            ["two", "three", "four", "five", "six", "seven"]
        );
        output.push(b"0123456789abcdefghij-and-more\n\n\t\x1b[31mred");
        assert_eq!(
            output.rows(20),
            [
                "six",
                "seven",
                "0123456789abcdefghij",
                "-and-more",
                "        red"
            ]
        );
    }

    #[test]
    fn odd_updates_draw_without_panicking() {
        let term = Term::new(30, 3);
        let mut view = renderer(&term, 30, 3);
        let far = UNIX_EPOCH.checked_add(Duration::from_secs(1 << 60));
        let update = StatusUpdate {
            vertexes: vec![
                VertexUpdate {
                    started: far,
                    completed: Some(UNIX_EPOCH),
                    ..vertex("far", "\x1b]0;title\x07far\tstep", None, None)
                },
                VertexUpdate {
                    started: Some(UNIX_EPOCH),
                    ..vertex("old", "", None, None)
                },
            ],
            statuses: vec![counter("nowhere", "x", -5, 0, None)],
            logs: vec![
                log("nowhere", "lost\n"),
                log("old", &"\u{1F600}".repeat(5000)),
            ],
            ..Default::default()
        };
        view.view.apply(&update, at(0));
        for (cols, rows) in [(1, 1), (12, 2), (30, 3), (200, 1)] {
            term.resize(cols, rows);
            view = view.size(TermSize { cols, rows });
            view.draw(at(100), false);
            view.draw(at(200), true);
        }
        // The last frame is whole (a terminal shrunk below a frame's height
        // keeps what scrolled off above, as any does); no escape got through.
        let rows = term.all_rows();
        let last = &rows[rows.len() - 3..];
        assert!(last[0].starts_with("[+] Building 0.2s (1/2) "), "{rows:#?}");
        assert!(last[1].starts_with(" => far     step  "), "{rows:#?}");
        assert!(last[2].starts_with(" =>    "), "{rows:#?}");
        assert!(!rows.iter().any(|r| r.contains("title")), "{rows:#?}");
    }

    #[test]
    fn a_second_build_gets_a_view_of_its_own_below_the_first() {
        let term = Term::new(80, 20);
        let mut view = renderer(&term, 80, 20);
        for (build, digest) in [(1, "a"), (2, "b")] {
            let start = build * 1_000;
            let name = format!("[1/1] RUN build {build}");
            view.view.apply(
                &StatusUpdate {
                    vertexes: vec![vertex(digest, &name, Some(start), None)],
                    ..Default::default()
                },
                at(start),
            );
            view.draw(at(start + 100), false);
            view.view.apply(
                &StatusUpdate {
                    vertexes: vec![vertex(digest, &name, Some(start), Some(start + 500))],
                    ..Default::default()
                },
                at(start + 500),
            );
            view.draw(at(start + 500), true);
            view.leave_on_screen();
        }
        let rows = term.all_rows();
        assert_eq!(rows.len(), 4, "{rows:#?}");
        assert!(
            rows[0].starts_with("[+] Building 0.5s (1/1) FINISHED"),
            "{rows:#?}"
        );
        assert!(rows[1].starts_with(" => [1/1] RUN build 1"), "{rows:#?}");
        assert!(
            rows[2].starts_with("[+] Building 0.5s (1/1) FINISHED"),
            "{rows:#?}"
        );
        assert!(rows[3].starts_with(" => [1/1] RUN build 2"), "{rows:#?}");
    }

    #[test]
    fn colours_only_when_asked_and_cursor_hidden_while_drawing() {
        let mut out = Vec::new();
        {
            let mut view = TtyRenderer::new(&mut out)
                .size(TermSize { cols: 60, rows: 20 })
                .color(true);
            view.view.apply(
                &StatusUpdate {
                    vertexes: vec![
                        vertex("a", "[1/2] RUN ok", Some(0), Some(100)),
                        VertexUpdate {
                            error: "process did not complete successfully".into(),
                            ..vertex("b", "[2/2] RUN fails", Some(100), Some(200))
                        },
                    ],
                    ..Default::default()
                },
                at(0),
            );
            view.draw(at(300), true);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\x1b[?25l"), "{text:?}");
        assert!(text.ends_with("\x1b[?25h"), "{text:?}");
        assert!(text.contains("\x1b[34m => [1/2] RUN ok"), "{text:?}");
        assert!(
            text.contains("\x1b[31m => ERROR [2/2] RUN fails"),
            "{text:?}"
        );

        let mut plain = Vec::new();
        {
            let mut view = TtyRenderer::new(&mut plain).color(false);
            view.view.apply(
                &StatusUpdate {
                    vertexes: vec![vertex("a", "[1/1] RUN ok", Some(0), Some(100))],
                    ..Default::default()
                },
                at(0),
            );
            view.draw(at(300), true);
        }
        let text = String::from_utf8(plain).unwrap();
        assert!(!text.contains("\x1b[3"), "{text:?}");
    }
}
