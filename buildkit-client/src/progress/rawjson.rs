//! `--progress rawjson`: every status update as one line of JSON.

use std::io::Write;

use crate::progress::event::StatusUpdate;
use crate::progress::ProgressSink;

/// Writes one JSON object per update, then the build's timings as
/// `{"timings": {...}}` (seconds).
pub struct RawJsonRenderer<W: Write + Send> {
    out: std::io::BufWriter<W>,
}

impl<W: Write + Send> RawJsonRenderer<W> {
    /// Renders to `out`.
    pub fn new(out: W) -> Self {
        RawJsonRenderer {
            out: std::io::BufWriter::new(out),
        }
    }
}

impl<W: Write + Send> ProgressSink for RawJsonRenderer<W> {
    fn update(&mut self, update: &StatusUpdate) {
        if serde_json::to_writer(&mut self.out, update).is_ok() {
            let _ = self.out.write_all(b"\n");
        }
        let _ = self.out.flush();
    }

    fn timings(&mut self, timings: &crate::build::BuildTimings) {
        /// The line's shape; the fields keep their declared order.
        #[derive(serde::Serialize)]
        struct Line<'a> {
            timings: &'a crate::build::BuildTimings,
        }
        if serde_json::to_writer(&mut self.out, &Line { timings }).is_ok() {
            let _ = self.out.write_all(b"\n");
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timings_are_one_line_of_seconds() {
        let mut out = Vec::new();
        {
            let mut renderer = RawJsonRenderer::new(&mut out);
            renderer.update(&StatusUpdate::default());
            renderer.timings(&crate::build::BuildTimings {
                solve: std::time::Duration::from_millis(20),
                ..Default::default()
            });
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(!lines[0].contains("timings"), "{text}");
        let last: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(last["timings"]["solve"], 0.02);
        assert_eq!(last.as_object().map(|o| o.len()), Some(1));
    }
}
