//! The model behind the live view: the steps, their counters and output, and how they
//! are laid out as the lines of one frame within the terminal's width and height.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::TermSize;
use crate::progress::event::{StatusItem, StatusUpdate};
use crate::progress::plain::format_bytes;

/// Rows of output shown under a running step (buildx's default log height).
const LOG_ROWS: usize = 6;
/// Columns the output rows leave free (buildx's `termPad`).
const LOG_PAD: usize = 10;
/// A step line with less room than this for its name is not drawn.
const MIN_NAME_ROOM: usize = 12;
/// The most bytes kept of an output line that has no end yet.
const MAX_PARTIAL: usize = 4096;

const COLOR_DONE: &str = "\x1b[34m";
const COLOR_ERROR: &str = "\x1b[31m";
const COLOR_CANCELED: &str = "\x1b[33m";
const FAINT: &str = "\x1b[2m";

/// One line of a frame.
pub(super) struct Line {
    pub(super) text: String,
    /// Its width in columns (`text` holds no control characters).
    pub(super) width: usize,
    pub(super) color: Option<&'static str>,
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
pub(super) struct View {
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
pub(super) struct Output {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl Output {
    pub(super) fn push(&mut self, data: &[u8]) {
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
    pub(super) fn rows(&self, cols: usize) -> Vec<String> {
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
pub(super) fn sanitize(text: &str) -> String {
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
    pub(super) fn apply(&mut self, update: &StatusUpdate, now: SystemTime) {
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
    pub(super) fn frame(
        &mut self,
        now: SystemTime,
        size: TermSize,
        builder: &str,
        last: bool,
    ) -> Vec<Line> {
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
