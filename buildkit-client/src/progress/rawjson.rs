//! `--progress rawjson`: every status update as one line of JSON.

use std::io::Write;

use crate::progress::event::StatusUpdate;
use crate::progress::ProgressSink;

/// Writes one JSON object per update.
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
}
