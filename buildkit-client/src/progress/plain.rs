//! `--progress plain`: one line per event, numbered by step, as buildx prints it.

use std::collections::HashSet;
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
            self.switch_to(&log.vertex);
            let started = self.tracker.get(&log.vertex).and_then(|s| s.started);
            let at = seconds_between(started, log.timestamp);
            let text = String::from_utf8_lossy(&log.data);
            for line in text.trim_end_matches('\n').split('\n') {
                let _ = writeln!(self.out, "#{index} {at:.3} {}", line.trim_end_matches('\r'));
            }
        }
        for vertex in &update.vertexes {
            if vertex.started.is_none() && !vertex.cached {
                continue;
            }
            let index = self.announce(&vertex.digest);
            if index == 0 || self.finished.contains(&vertex.digest) {
                continue;
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
}
