//! `--progress plain`: one line per event, numbered by step, as buildx prints it.
//!
//! Step output arrives in chunks that need not end at a line break (a
//! program writing through a pipe flushes every few KiB): like buildx, a
//! line is printed once it is complete, with the time of the chunk that
//! started it; an unterminated last line is printed when its step ends.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::SystemTime;

use crate::progress::event::StatusUpdate;
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
        }
    }

    fn switch_to(&mut self, digest: &str) {
        if self.last_vertex.as_deref() != Some(digest) {
            if self.last_vertex.is_some() {
                let _ = self.out.write_all(b"\n");
            }
            self.last_vertex = Some(digest.to_string());
        }
    }

    /// Prints the step's header the first time it shows activity and
    /// returns its number (steps are numbered as they start).
    fn announce(&mut self, digest: &str) -> usize {
        if let Some(number) = self.numbers.get(digest) {
            return *number;
        }
        let Some(name) = self.tracker.get(digest).map(|state| state.name.clone()) else { return 0 };
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
                prefix: if prefix.is_empty() { format!("#{index} {} ", log_time(at)) } else { prefix },
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
        (Some(start), Some(end)) => end.duration_since(start).map(|d| d.as_secs_f64()).unwrap_or(0.0),
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
            if index == 0 || status.completed.is_none() {
                continue;
            }
            self.switch_to(&status.vertex);
            let name = if status.name.is_empty() { &status.id } else { &status.name };
            let _ = if status.total > 0 {
                writeln!(self.out, "#{index} {name} {}B / {}B done", status.current, status.total)
            } else if status.current > 0 {
                writeln!(self.out, "#{index} {name} {}B done", status.current)
            } else {
                writeln!(self.out, "#{index} {name} done")
            };
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
            if index == 0 || self.finished.contains(&vertex.digest) {
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
                self.switch_to(&vertex.digest);
                let took = seconds_between(vertex.started, vertex.completed);
                let _ = writeln!(self.out, "#{index} DONE {took:.1}s");
                self.finished.insert(vertex.digest.clone());
            }
        }
        for warning in &update.warnings {
            let _ = writeln!(self.out, "WARNING: {}", String::from_utf8_lossy(&warning.short));
        }
        let _ = self.out.flush();
    }

    fn finish(&mut self) {
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
    use crate::progress::event::{LogChunk, VertexUpdate};
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

    #[test]
    fn renders_like_buildx() {
        let out = Shared::default();
        let mut renderer = PlainRenderer::new(out.clone());
        let t0 = UNIX_EPOCH + Duration::from_secs(1000);
        let vertex = |completed: Option<SystemTime>| VertexUpdate {
            digest: "sha256:a".into(),
            name: "[2/2] RUN echo hi".into(),
            inputs: vec![],
            cached: false,
            started: Some(t0),
            completed,
            error: String::new(),
        };
        renderer.update(&StatusUpdate { vertexes: vec![vertex(None)], ..Default::default() });
        renderer.update(&StatusUpdate {
            logs: vec![LogChunk { vertex: "sha256:a".into(), stream: 1, data: b"hi\n".to_vec(), timestamp: Some(t0 + Duration::from_millis(250)) }],
            ..Default::default()
        });
        renderer.update(&StatusUpdate { vertexes: vec![vertex(Some(t0 + Duration::from_millis(300)))], ..Default::default() });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "#1 [2/2] RUN echo hi\n#1 0.250 hi\n#1 DONE 0.3s\n");
    }

    fn render(chunks: &[(&[u8], u64)], done: bool) -> String {
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
        renderer.update(&StatusUpdate { vertexes: vec![vertex(None)], ..Default::default() });
        for (data, millis) in chunks {
            let timestamp = Some(t0 + Duration::from_millis(*millis));
            renderer.update(&StatusUpdate {
                logs: vec![LogChunk { vertex: "sha256:a".into(), stream: 1, data: data.to_vec(), timestamp }],
                ..Default::default()
            });
        }
        if done {
            renderer.update(&StatusUpdate { vertexes: vec![vertex(Some(t0 + Duration::from_secs(2)))], ..Default::default() });
        }
        renderer.finish();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let text = render(&[(b"1\n2\n3", 100), (b"4\n5\n", 200), (b"6", 300), (b"7\r\n\n", 400)], true);
        assert_eq!(
            text,
            "#1 [2/2] RUN x\n#1 0.100 1\n#1 0.100 2\n#1 0.100 34\n#1 0.200 5\n#1 0.300 67\n#1 0.400 \n#1 DONE 2.0s\n"
        );
    }

    #[test]
    fn an_unterminated_last_line_is_printed_at_the_end() {
        assert_eq!(render(&[(b"a\nb", 5)], true), "#1 [2/2] RUN x\n#1 0.005 a\n#1 0.005 b\n#1 DONE 2.0s\n");
        assert_eq!(render(&[(b"a\nb", 5)], false), "#1 [2/2] RUN x\n#1 0.005 a\n#1 0.005 b\n");
    }

    #[test]
    fn log_times_like_buildx_and_invalid_utf8() {
        assert_eq!(log_time(1.23456), "1.235");
        assert_eq!(log_time(12.3456), "12.35");
        assert_eq!(log_time(123.456), "123.5");
        assert_eq!(render(&[(b"x\xffy\n", 15_000), (b"", 15_001)], false), "#1 [2/2] RUN x\n#1 15.00 x\u{fffd}y\n");
    }
}
