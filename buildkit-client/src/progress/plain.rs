//! `--progress plain`: one line per event, numbered by step, as buildx prints it.
//!
//! Step output arrives in chunks that need not end at a line break (a
//! program writing through a pipe flushes every few KiB): like buildx, a
//! line is printed once it is complete, with the time of the chunk that
//! started it; an unterminated last line is printed when its step ends.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use crate::progress::event::{StatusItem, StatusUpdate, VertexUpdate};
use crate::progress::tracker::Tracker;
use crate::progress::ProgressSink;

/// Writes buildx-style plain progress.
pub struct PlainRenderer<W: Write + Send> {
    out: std::io::BufWriter<W>,
    tracker: Tracker,
    numbers: std::collections::HashMap<String, usize>,
    finished: HashSet<String>,
    last_vertex: Option<String>,
    /// Per step, the start of a line whose end has not arrived yet.
    partial: HashMap<String, PartialLine>,
    /// Per step and counter, the reading printed last (for throttling).
    printed_statuses: HashMap<(String, String), PrintedStatus>,
    /// Per step, the counters that have not completed yet.
    open_statuses: HashMap<String, HashSet<String>>,
    /// When each counter (step, ID) was first seen.
    first_seen: HashMap<(String, String), Instant>,
    /// Steps that finished while a counter of theirs was still open; see
    /// [`DONE_GRACE`].
    deferred_done: Vec<DeferredDone>,
}

/// The block of the `#0` lines that name the daemon (not a step's digest).
const BUILDER_BLOCK: &str = "#0";

/// `text` on one line, without control characters.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A counter's reading as last printed.
struct PrintedStatus {
    current: i64,
    at: Option<SystemTime>,
    completed: bool,
}

/// A counter seen running for less than this is not printed until it
/// completes: a quick transfer gets one `done` line, as in buildx.
const QUIET_START: Duration = Duration::from_millis(100);

/// A step's `DONE` line held back until its counters complete.
struct DeferredDone {
    digest: String,
    index: usize,
    took: f64,
    since: Instant,
}

/// The daemon reports a step's end and its counters (e.g. `transferring
/// context:`) in separate messages, often the end first. buildx gathers
/// updates for a moment before printing, so its output has the counter's
/// `done` line before the step's `DONE`. We hold a step's `DONE` back until
/// its counters complete or this long has passed (checked on every update
/// and on [`ProgressSink::idle`]); on a busy machine the counter can arrive
/// well after the step's end.
const DONE_GRACE: Duration = Duration::from_millis(300);

/// A counter that changed by less than this fraction of its total, and ...
const MIN_PROGRESS_DELTA: f64 = 0.05;
/// ... less than this long after its last printed reading, is not printed
/// again (buildx's plain output does the same).
const MIN_TIME_DELTA: Duration = Duration::from_secs(5);

/// `bytes` the way buildx prints them: `59B`, `2.35kB`, `6.01MB` (decimal units).
pub(super) fn format_bytes(bytes: i64) -> String {
    const UNITS: [&str; 7] = ["kB", "MB", "GB", "TB", "PB", "EB", "ZB"];
    let magnitude = bytes.unsigned_abs();
    if magnitude < 1000 {
        return format!("{bytes}B");
    }
    let mut scaled = magnitude as f64;
    let mut unit = 0;
    let mut base = 1000u64;
    while unit + 1 < UNITS.len() && magnitude >= base.saturating_mul(1000) {
        base = base.saturating_mul(1000);
        unit += 1;
    }
    scaled /= base as f64;
    let sign = if bytes < 0 { "-" } else { "" };
    format!("{sign}{scaled:.2}{}", UNITS[unit])
}

/// The text after `#N ` of a counter's line: `transferring context: 6.01MB 0.1s done`.
fn status_text(status: &StatusItem) -> String {
    let mut text = status.id.clone();
    if status.total != 0 {
        text.push_str(&format!(
            " {} / {}",
            format_bytes(status.current),
            format_bytes(status.total)
        ));
    } else if status.current != 0 {
        text.push_str(&format!(" {}", format_bytes(status.current)));
    }
    let end = status.completed.or(status.timestamp);
    if let (Some(started), Some(end)) = (status.started, end) {
        let took = seconds_between(Some(started), Some(end));
        if took > 0.01 {
            text.push_str(&format!(" {took:.1}s"));
        }
    }
    if status.completed.is_some() {
        text.push_str(" done");
    }
    text
}

/// An unterminated output line: its `#N <time> ` prefix and its bytes so far.
struct PartialLine {
    prefix: String,
    text: Vec<u8>,
}

/// An unterminated line longer than this is printed as it is (a program
/// redrawing a progress bar with `\r` never ends its line).
const MAX_PARTIAL: usize = 64 * 1024;

/// `seconds` the way buildx prints a log line's time: 3 decimals below 10 s,
/// 2 below 100 s, 1 above.
fn log_time(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.3}")
    } else if seconds < 100.0 {
        format!("{seconds:.2}")
    } else {
        format!("{seconds:.1}")
    }
}

impl<W: Write + Send> PlainRenderer<W> {
    /// Renders to `out`.
    pub fn new(out: W) -> Self {
        PlainRenderer {
            out: std::io::BufWriter::with_capacity(64 * 1024, out),
            tracker: Tracker::default(),
            numbers: std::collections::HashMap::new(),
            finished: HashSet::new(),
            last_vertex: None,
            partial: HashMap::new(),
            printed_statuses: HashMap::new(),
            open_statuses: HashMap::new(),
            first_seen: HashMap::new(),
            deferred_done: Vec::new(),
        }
    }

    /// Whether a counter reading is worth a line: its first reading, its
    /// completion, or enough progress or time since the last printed one.
    fn status_is_news(&mut self, status: &StatusItem) -> bool {
        let key = (status.vertex.clone(), status.id.clone());
        let completed = status.completed.is_some();
        let running_for = self
            .first_seen
            .entry(key.clone())
            .or_insert_with(Instant::now)
            .elapsed();
        let news = match self.printed_statuses.get(&key) {
            None => completed || running_for >= QUIET_START,
            Some(last) if last.completed => false,
            Some(_) if completed => true,
            Some(last) => {
                let progress = if status.total > 0 {
                    (status.current - last.current) as f64 / status.total as f64
                } else {
                    0.0
                };
                let waited = match (last.at, status.timestamp) {
                    (Some(then), Some(now)) => now.duration_since(then).unwrap_or_default(),
                    _ => Duration::ZERO,
                };
                progress >= MIN_PROGRESS_DELTA || waited >= MIN_TIME_DELTA
            }
        };
        if news {
            self.printed_statuses.insert(
                key,
                PrintedStatus {
                    current: status.current,
                    at: status.timestamp,
                    completed,
                },
            );
        }
        news
    }

    /// Prints the held-back `DONE` lines whose counters have completed, or
    /// whose grace has run out (all of them when `all`).
    fn print_deferred_done(&mut self, all: bool) {
        self.print_done_where(|renderer, entry| {
            let counters_done = renderer
                .open_statuses
                .get(&entry.digest)
                .is_some_and(|open| open.is_empty());
            all || counters_done || entry.since.elapsed() >= DONE_GRACE
        });
    }

    /// Prints, in the order they finished, the held-back `DONE` lines that
    /// `ready` picks; keeps the others held back.
    fn print_done_where(&mut self, ready: impl Fn(&Self, &DeferredDone) -> bool) {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_done)
            .into_iter()
            .partition(|entry| ready(self, entry));
        self.deferred_done = later;
        for entry in now {
            self.print_done(entry);
        }
    }

    /// Starts writing lines of `digest`: a blank line separates steps, and
    /// steps that finished before are printed `DONE` first, except local
    /// transfers still waiting for their counter (see [`Self::awaits_counter`]).
    fn switch_to(&mut self, digest: &str) {
        if self.last_vertex.as_deref() != Some(digest) {
            self.print_done_where(|renderer, entry| {
                entry.digest != digest
                    && (entry.since.elapsed() >= DONE_GRACE
                        || !renderer.awaits_counter(&entry.digest))
            });
            self.start_block(digest);
        }
    }

    /// Whether the finished step `digest` has a counter still to complete:
    /// one seen and open, or, for BuildKit's `[internal] load ...` steps
    /// (build definition, `.dockerignore`, context), the transfer counter the
    /// daemon always sends, often after the step's end.
    fn awaits_counter(&self, digest: &str) -> bool {
        match self.open_statuses.get(digest) {
            Some(open) => !open.is_empty(),
            None => self
                .tracker
                .get(digest)
                .is_some_and(|state| state.name.starts_with("[internal] load ")),
        }
    }

    /// Whether `vertex`'s update is to be rendered: always for a step not
    /// finished yet. A step already finished is reopened only while its
    /// `DONE` line is still held back and the daemon now says the step runs
    /// again or failed (BuildKit ends `[internal] load build context` once
    /// after its cache check, restarts it for the transfer and fails it if
    /// the transfer fails, buildx then prints `ERROR`, not `DONE`).
    fn reopen_if_held(&mut self, vertex: &VertexUpdate) -> bool {
        if !self.finished.contains(&vertex.digest) {
            return true;
        }
        let reopens = !vertex.cached && (vertex.completed.is_none() || !vertex.error.is_empty());
        let held = self
            .deferred_done
            .iter()
            .position(|entry| entry.digest == vertex.digest);
        match held {
            Some(at) if reopens => {
                self.deferred_done.remove(at);
                self.finished.remove(&vertex.digest);
                true
            }
            _ => false,
        }
    }

    fn start_block(&mut self, digest: &str) {
        if self.last_vertex.as_deref() != Some(digest) {
            if self.last_vertex.is_some() {
                let _ = self.out.write_all(b"\n");
            }
            self.last_vertex = Some(digest.to_string());
        }
    }

    fn print_done(&mut self, entry: DeferredDone) {
        self.start_block(&entry.digest);
        let _ = writeln!(self.out, "#{} DONE {:.1}s", entry.index, entry.took);
    }

    /// Prints the step's header the first time it shows activity and
    /// returns its number (steps are numbered as they start).
    fn announce(&mut self, digest: &str) -> usize {
        if let Some(number) = self.numbers.get(digest) {
            return *number;
        }
        let Some(name) = self.tracker.get(digest).map(|state| state.name.clone()) else {
            return 0;
        };
        let number = self.numbers.len() + 1;
        self.numbers.insert(digest.to_string(), number);
        self.switch_to(digest);
        let _ = writeln!(self.out, "#{number} {name}");
        number
    }

    /// Writes one output line: `prefix`, the text (invalid UTF-8 replaced,
    /// a trailing `\r` dropped), a line break.
    fn write_line(&mut self, prefix: &str, line: &[u8]) {
        let mut line = line;
        while let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        let _ = self.out.write_all(prefix.as_bytes());
        let _ = match std::str::from_utf8(line) {
            Ok(_) => self.out.write_all(line),
            Err(_) => self.out.write_all(String::from_utf8_lossy(line).as_bytes()),
        };
        let _ = self.out.write_all(b"\n");
    }

    /// Prints the unterminated last line of `digest`'s output, if any.
    fn flush_partial(&mut self, digest: &str) {
        if let Some(partial) = self.partial.remove(digest) {
            self.switch_to(digest);
            self.write_line(&partial.prefix, &partial.text);
        }
    }

    /// Prints the complete lines of one output chunk of step `index`,
    /// keeping an unterminated last line for later.
    fn write_log(&mut self, digest: &str, index: usize, at: f64, data: &[u8]) {
        let mut pending = self.partial.remove(digest);
        let mut prefix = String::new();
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..end];
            rest = &rest[end + 1..];
            if let Some(mut partial) = pending.take() {
                partial.text.extend_from_slice(line);
                self.write_line(&partial.prefix, &partial.text);
            } else {
                if prefix.is_empty() {
                    prefix = format!("#{index} {} ", log_time(at));
                }
                self.write_line(&prefix, line);
            }
        }
        if !rest.is_empty() {
            let partial = pending.get_or_insert_with(|| PartialLine {
                prefix: if prefix.is_empty() {
                    format!("#{index} {} ", log_time(at))
                } else {
                    prefix
                },
                text: Vec::new(),
            });
            partial.text.extend_from_slice(rest);
        }
        if let Some(partial) = pending {
            if partial.text.len() > MAX_PARTIAL {
                self.write_line(&partial.prefix, &partial.text);
            } else {
                self.partial.insert(digest.to_string(), partial);
            }
        }
    }
}

fn seconds_between(start: Option<SystemTime>, end: Option<SystemTime>) -> f64 {
    match (start, end) {
        (Some(start), Some(end)) => end
            .duration_since(start)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

impl<W: Write + Send> ProgressSink for PlainRenderer<W> {
    fn update(&mut self, update: &StatusUpdate) {
        self.tracker.apply(update);
        for vertex in &update.vertexes {
            if vertex.started.is_some() || vertex.cached {
                self.announce(&vertex.digest);
            }
        }
        for status in &update.statuses {
            let index = self.announce(&status.vertex);
            if index == 0 {
                continue;
            }
            let open = self.open_statuses.entry(status.vertex.clone()).or_default();
            if status.completed.is_some() {
                open.remove(&status.id);
            } else {
                open.insert(status.id.clone());
            }
            // A counter that has not counted anything yet has nothing to say.
            let silent = status.completed.is_none() && status.current == 0;
            if silent || !self.status_is_news(status) {
                continue;
            }
            self.switch_to(&status.vertex);
            let _ = writeln!(self.out, "#{index} {}", status_text(status));
        }
        for log in &update.logs {
            let index = self.announce(&log.vertex);
            if index == 0 {
                continue;
            }
            if log.data.is_empty() {
                continue;
            }
            self.switch_to(&log.vertex);
            let started = self.tracker.get(&log.vertex).and_then(|s| s.started);
            let at = seconds_between(started, log.timestamp);
            self.write_log(&log.vertex, index, at, &log.data);
        }
        for vertex in &update.vertexes {
            if vertex.started.is_none() && !vertex.cached {
                continue;
            }
            let index = self.announce(&vertex.digest);
            if index == 0 || !self.reopen_if_held(vertex) {
                continue;
            }
            let ends = vertex.cached || !vertex.error.is_empty() || vertex.completed.is_some();
            if ends {
                self.flush_partial(&vertex.digest);
            }
            let state_cached = vertex.cached;
            if state_cached {
                self.switch_to(&vertex.digest);
                let _ = writeln!(self.out, "#{index} CACHED");
                self.finished.insert(vertex.digest.clone());
            } else if !vertex.error.is_empty() {
                self.switch_to(&vertex.digest);
                let _ = writeln!(self.out, "#{index} ERROR: {}", vertex.error);
                self.finished.insert(vertex.digest.clone());
            } else if vertex.completed.is_some() {
                let took = seconds_between(vertex.started, vertex.completed);
                self.deferred_done.push(DeferredDone {
                    digest: vertex.digest.clone(),
                    index,
                    took,
                    since: Instant::now(),
                });
                self.finished.insert(vertex.digest.clone());
            }
        }
        self.print_deferred_done(false);
        for warning in &update.warnings {
            let _ = writeln!(
                self.out,
                "WARNING: {}",
                String::from_utf8_lossy(&warning.short)
            );
        }
        let _ = self.out.flush();
    }

    fn idle(&mut self) {
        if !self.deferred_done.is_empty() {
            self.print_deferred_done(false);
            let _ = self.out.flush();
        }
    }

    /// `#0 passed over ADDRESS: REASON` for each daemon passed over, then `#0 building on
    /// ADDRESS` (buildx names its builder in a `#0` block too).
    fn builder(&mut self, address: &str, passed_over: &[crate::pool::Attempt]) {
        self.print_deferred_done(true);
        self.start_block(BUILDER_BLOCK);
        for attempt in passed_over {
            let _ = writeln!(
                self.out,
                "#0 passed over {}",
                printable(&attempt.to_string())
            );
        }
        let _ = writeln!(self.out, "#0 building on {}", printable(address));
        let _ = self.out.flush();
    }

    fn finish(&mut self) {
        self.print_deferred_done(true);
        let mut open: Vec<String> = self.partial.keys().cloned().collect();
        open.sort_by_key(|digest| self.numbers.get(digest).copied().unwrap_or(0));
        for digest in open {
            self.flush_partial(&digest);
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::event::LogChunk;
    use std::time::{Duration, UNIX_EPOCH};

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        /// What the renderer wrote so far.
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// An update that carries these steps only.
    fn steps(vertexes: Vec<VertexUpdate>) -> StatusUpdate {
        StatusUpdate {
            vertexes,
            ..Default::default()
        }
    }

    /// An update that carries these progress counters only.
    fn counters(statuses: Vec<StatusItem>) -> StatusUpdate {
        StatusUpdate {
            statuses,
            ..Default::default()
        }
    }

    /// What the renderer prints for one step `[2/2] RUN x` started at t0 that logs `chunks`
    /// (bytes, milliseconds after t0) and ends `done` milliseconds after t0 (or never).
    fn render(chunks: &[(&[u8], u64)], done: Option<u64>) -> String {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let vertex = |completed: Option<SystemTime>| VertexUpdate {
            digest: "sha256:a".into(),
            name: "[2/2] RUN x".into(),
            inputs: vec![],
            cached: false,
            started: Some(t0),
            completed,
            error: String::new(),
        };
        renderer.update(&steps(vec![vertex(None)]));
        for (data, millis) in chunks {
            let timestamp = Some(t0 + Duration::from_millis(*millis));
            renderer.update(&StatusUpdate {
                logs: vec![LogChunk {
                    vertex: "sha256:a".into(),
                    stream: 1,
                    data: data.to_vec(),
                    timestamp,
                }],
                ..Default::default()
            });
        }
        if let Some(millis) = done {
            renderer.update(&steps(vec![vertex(Some(
                t0 + Duration::from_millis(millis),
            ))]));
        }
        renderer.finish();
        out.text()
    }

    #[test]
    fn a_pool_build_names_its_daemon_and_those_passed_over_in_a_block_of_its_own() {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let passed_over = [crate::pool::Attempt {
            address: "tcp://a:1".into(),
            reason: "refused\nreally".into(),
        }];
        renderer.builder("tcp://b:1", &passed_over);
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        renderer.update(&steps(vec![VertexUpdate {
            digest: "sha256:a".into(),
            name: "[1/1] RUN x".into(),
            inputs: vec![],
            cached: true,
            started: Some(t0),
            completed: Some(t0),
            error: String::new(),
        }]));
        renderer.builder("tcp://c:1", &[]);
        renderer.finish();
        assert_eq!(
            out.text(),
            "#0 passed over tcp://a:1: refused really\n#0 building on tcp://b:1\n\n\
             #1 [1/1] RUN x\n#1 CACHED\n\n#0 building on tcp://c:1\n"
        );
    }

    #[test]
    fn renders_like_buildx() {
        assert_eq!(
            render(&[(b"hi\n", 250)], Some(300)),
            "#1 [2/2] RUN x\n#1 0.250 hi\n#1 DONE 0.3s\n"
        );
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let text = render(
            &[
                (b"1\n2\n3", 100),
                (b"4\n5\n", 200),
                (b"6", 300),
                (b"7\r\n\n", 400),
            ],
            Some(2000),
        );
        assert_eq!(
            text,
            "#1 [2/2] RUN x\n#1 0.100 1\n#1 0.100 2\n#1 0.100 34\n#1 0.200 5\n#1 0.300 67\n#1 0.400 \n#1 DONE 2.0s\n"
        );
    }

    #[test]
    fn an_unterminated_last_line_is_printed_at_the_end() {
        assert_eq!(
            render(&[(b"a\nb", 5)], Some(2000)),
            "#1 [2/2] RUN x\n#1 0.005 a\n#1 0.005 b\n#1 DONE 2.0s\n"
        );
        assert_eq!(
            render(&[(b"a\nb", 5)], None),
            "#1 [2/2] RUN x\n#1 0.005 a\n#1 0.005 b\n"
        );
    }

    #[test]
    fn log_times_like_buildx_and_invalid_utf8() {
        assert_eq!(log_time(1.23456), "1.235");
        assert_eq!(log_time(12.3456), "12.35");
        assert_eq!(log_time(123.456), "123.5");
        assert_eq!(
            render(&[(b"x\xffy\n", 15_000), (b"", 15_001)], None),
            "#1 [2/2] RUN x\n#1 15.00 x\u{fffd}y\n"
        );
    }

    fn context_vertex(completed: Option<SystemTime>) -> VertexUpdate {
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        VertexUpdate {
            digest: "sha256:ctx".into(),
            name: "[internal] load build context".into(),
            inputs: vec![],
            cached: false,
            started: Some(t0),
            completed,
            error: String::new(),
        }
    }

    fn transfer(current: i64, at_millis: u64, done: bool) -> StatusItem {
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let at = t0 + Duration::from_millis(at_millis);
        StatusItem {
            id: "transferring context:".into(),
            vertex: "sha256:ctx".into(),
            name: "transferring".into(),
            current,
            total: 0,
            started: Some(t0),
            timestamp: Some(at),
            completed: done.then_some(at),
        }
    }

    #[test]
    fn a_finished_step_is_done_before_the_next_step_prints() {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let run = |completed| {
            let mut vertex = context_vertex(completed);
            vertex.name = "[1/2] RUN true".into();
            vertex
        };
        let mut next = context_vertex(None);
        next.digest = "sha256:next".into();
        next.name = "[2/2] COPY . /".into();
        renderer.update(&steps(vec![run(None)]));
        renderer.update(&steps(vec![run(Some(t0 + Duration::from_millis(40)))]));
        renderer.update(&steps(vec![next]));
        let text = out.text();
        assert_eq!(
            text,
            "#1 [1/2] RUN true\n#1 DONE 0.0s\n\n#2 [2/2] COPY . /\n"
        );
    }

    /// BuildKit sends the transfer counter of an `[internal] load` step after
    /// the step's end more often than not; the next step starting does not
    /// print the `DONE` before the counter arrives (within the grace).
    #[test]
    fn a_local_transfer_waits_for_its_counter_while_the_next_step_prints() {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let mut next = context_vertex(None);
        next.digest = "sha256:next".into();
        next.name = "[1/1] COPY . /".into();
        renderer.update(&steps(vec![context_vertex(None)]));
        renderer.update(&steps(vec![context_vertex(Some(
            t0 + Duration::from_millis(40),
        ))]));
        renderer.update(&steps(vec![next]));
        renderer.update(&counters(vec![transfer(3840, 50, true)]));
        let text = out.text();
        assert_eq!(
            text,
            "#1 [internal] load build context\n\n#2 [1/1] COPY . /\n\n#1 transferring context: 3.84kB 0.1s done\n#1 DONE 0.0s\n"
        );
    }

    /// The daemon's updates for a context transfer that fails on the client
    /// (an invalid `.dockerignore`): the step ends, restarts in the same
    /// message, and then fails. buildx prints `ERROR`, never `DONE`.
    #[test]
    fn a_context_transfer_that_fails_after_a_first_end_is_an_error() {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        renderer.update(&StatusUpdate {
            vertexes: vec![
                context_vertex(Some(t0 + Duration::from_millis(1))),
                context_vertex(None),
            ],
            ..Default::default()
        });
        renderer.update(&counters(vec![transfer(57, 5, true)]));
        let mut failed = context_vertex(Some(t0 + Duration::from_millis(30)));
        failed.error = "error from sender: invalid exclude patterns".into();
        renderer.update(&steps(vec![failed]));
        renderer.finish();
        let text = out.text();
        assert_eq!(
            text,
            "#1 [internal] load build context\n#1 transferring context: 57B done\n#1 ERROR: error from sender: invalid exclude patterns\n"
        );
    }

    #[test]
    fn bytes_like_buildx() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(59), "59B");
        assert_eq!(format_bytes(999), "999B");
        assert_eq!(format_bytes(1000), "1.00kB");
        assert_eq!(format_bytes(6_011_397), "6.01MB");
        assert_eq!(format_bytes(1_073_741_824), "1.07GB");
    }

    #[test]
    fn a_step_is_done_after_its_counter_even_when_the_daemon_says_so_first() {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        renderer.update(&steps(vec![context_vertex(None)]));
        // Just started: not worth a line yet.
        renderer.update(&counters(vec![transfer(2_000_000, 50, false)]));
        std::thread::sleep(QUIET_START + Duration::from_millis(10));
        renderer.update(&counters(vec![transfer(2_100_000, 60, false)]));
        // Less than 5 % and 5 s after the last printed reading: not worth a line.
        renderer.update(&counters(vec![transfer(2_200_000, 70, false)]));
        renderer.update(&steps(vec![context_vertex(Some(
            t0 + Duration::from_millis(130),
        ))]));
        renderer.update(&counters(vec![transfer(6_011_397, 120, true)]));
        renderer.finish();
        let text = out.text();
        assert_eq!(
            text,
            "#1 [internal] load build context\n\
             #1 transferring context: 2.10MB 0.1s\n\
             #1 transferring context: 6.01MB 0.1s done\n\
             #1 DONE 0.1s\n"
        );
    }

    #[test]
    fn a_counter_that_never_completes_does_not_hold_done_back_forever() {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        renderer.update(&StatusUpdate {
            vertexes: vec![context_vertex(None)],
            statuses: vec![transfer(10, 5, false)],
            ..Default::default()
        });
        renderer.update(&steps(vec![context_vertex(Some(
            t0 + Duration::from_millis(20),
        ))]));
        assert!(
            !String::from_utf8(out.0.lock().unwrap().clone())
                .unwrap()
                .contains("DONE"),
            "held back for a moment"
        );
        std::thread::sleep(DONE_GRACE + Duration::from_millis(20));
        renderer.idle();
        let text = out.text();
        assert_eq!(text, "#1 [internal] load build context\n#1 DONE 0.0s\n");
    }
}
