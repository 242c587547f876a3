//! The state of every step seen so far: the renderers draw from it and a
//! failed build takes the failing step's name and last output from it.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use crate::progress::event::StatusUpdate;

/// How many output lines are kept per step.
const LOG_TAIL: usize = 20;
/// The longest line kept (longer ones are cut).
const MAX_LINE: usize = 4096;

/// One step.
#[derive(Debug, Clone, Default)]
pub struct VertexState {
    /// Its number in order of appearance, from 1 (buildx's `#N`).
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Whether it came from the cache.
    pub cached: bool,
    /// When it started.
    pub started: Option<SystemTime>,
    /// When it finished.
    pub completed: Option<SystemTime>,
    /// Its error.
    pub error: String,
    /// Its last complete output lines.
    pub log_tail: VecDeque<String>,
    partial: Vec<u8>,
}

impl VertexState {
    /// Output lines, including a last unterminated one.
    pub fn last_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.log_tail.iter().cloned().collect();
        if !self.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&self.partial).into_owned());
        }
        if lines.len() > LOG_TAIL {
            lines.drain(..lines.len() - LOG_TAIL);
        }
        lines
    }

    fn push_log(&mut self, data: &[u8]) {
        // Complete lines that LOG_TAIL later lines of this same chunk would
        // push out again are skipped rather than converted and stored.
        let breaks = data.iter().filter(|&&b| b == b'\n').count();
        let mut skip = breaks.saturating_sub(LOG_TAIL);
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if skip > 0 {
                skip -= 1;
                self.partial.clear();
                rest = &rest[end + 1..];
                continue;
            }
            self.partial.extend_from_slice(&rest[..end]);
            // Reuse the buffer of the line that drops out.
            let mut line = if self.log_tail.len() >= LOG_TAIL {
                self.log_tail.pop_front().unwrap_or_default()
            } else {
                String::new()
            };
            line.clear();
            line.push_str(&String::from_utf8_lossy(&self.partial));
            let mut keep = line.trim_end_matches('\r').len().min(MAX_LINE);
            while !line.is_char_boundary(keep) {
                keep -= 1;
            }
            line.truncate(keep);
            self.partial.clear();
            self.log_tail.push_back(line);
            rest = &rest[end + 1..];
        }
        if self.partial.len() < MAX_LINE {
            let room = MAX_LINE - self.partial.len();
            self.partial
                .extend_from_slice(&rest[..rest.len().min(room)]);
        }
    }
}

/// All steps of one build.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    vertexes: HashMap<String, VertexState>,
    order: Vec<String>,
}

impl Tracker {
    /// Folds an update in.
    pub fn apply(&mut self, update: &StatusUpdate) {
        for vertex in &update.vertexes {
            let state = self.entry(&vertex.digest);
            if !vertex.name.is_empty() {
                state.name = vertex.name.clone();
            }
            state.cached |= vertex.cached;
            state.started = vertex.started.or(state.started);
            state.completed = vertex.completed.or(state.completed);
            if !vertex.error.is_empty() {
                state.error = vertex.error.clone();
            }
        }
        for log in &update.logs {
            // No allocation for a step already known (the usual case).
            match self.vertexes.get_mut(&log.vertex) {
                Some(state) => state.push_log(&log.data),
                None => self.entry(&log.vertex).push_log(&log.data),
            }
        }
    }

    fn entry(&mut self, digest: &str) -> &mut VertexState {
        if !self.vertexes.contains_key(digest) {
            self.order.push(digest.to_string());
            let index = self.order.len();
            self.vertexes.insert(
                digest.to_string(),
                VertexState {
                    index,
                    ..VertexState::default()
                },
            );
        }
        // The entry exists: it was either there or inserted just above.
        self.vertexes.entry(digest.to_string()).or_default()
    }

    /// A step by digest.
    pub fn get(&self, digest: &str) -> Option<&VertexState> {
        self.vertexes.get(digest)
    }

    /// Steps in order of appearance.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &VertexState)> {
        self.order
            .iter()
            .filter_map(|d| self.vertexes.get(d).map(|v| (d.as_str(), v)))
    }

    /// The first step that failed.
    pub fn failed(&self) -> Option<&VertexState> {
        self.iter()
            .map(|(_, v)| v)
            .find(|v| !v.error.is_empty() && !v.error.contains("context canceled"))
            .or_else(|| self.iter().map(|(_, v)| v).find(|v| !v.error.is_empty()))
    }

    /// How many steps there are and how many have finished.
    pub fn counts(&self) -> (usize, usize) {
        let done = self
            .vertexes
            .values()
            .filter(|v| v.completed.is_some())
            .count();
        (self.vertexes.len(), done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::event::{LogChunk, VertexUpdate};

    #[test]
    fn keeps_the_last_lines_per_step() {
        let mut tracker = Tracker::default();
        tracker.apply(&StatusUpdate {
            vertexes: vec![VertexUpdate {
                digest: "d1".into(),
                name: "[1/2] RUN x".into(),
                inputs: vec![],
                cached: false,
                started: None,
                completed: None,
                error: String::new(),
            }],
            ..Default::default()
        });
        let text: String = (0..30).map(|i| format!("line {i}\n")).collect::<String>() + "tail";
        for chunk in text.as_bytes().chunks(7) {
            tracker.apply(&StatusUpdate {
                logs: vec![LogChunk {
                    vertex: "d1".into(),
                    stream: 1,
                    data: chunk.to_vec(),
                    timestamp: None,
                }],
                ..Default::default()
            });
        }
        let state = tracker.get("d1").unwrap();
        let lines = state.last_lines();
        assert_eq!(lines.len(), 20);
        assert_eq!(lines.last().unwrap(), "tail");
        assert_eq!(lines[lines.len() - 2], "line 29");
        assert_eq!(state.index, 1);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary_and_big_chunks_keep_the_tail() {
        let mut tracker = Tracker::default();
        let long = "€".repeat(2000) + "\n"; // 6000 bytes; byte 4096 is inside a character
        let many: String = (0..1000).map(|i| format!("n{i}\n")).collect();
        for data in [long.as_str(), many.as_str()] {
            tracker.apply(&StatusUpdate {
                logs: vec![LogChunk {
                    vertex: "d".into(),
                    stream: 1,
                    data: data.as_bytes().to_vec(),
                    timestamp: None,
                }],
                ..Default::default()
            });
            if data == long {
                let lines = tracker.get("d").unwrap().last_lines();
                assert_eq!(lines, vec!["€".repeat(1365)]);
            }
        }
        let lines = tracker.get("d").unwrap().last_lines();
        assert_eq!(lines.len(), 20);
        assert_eq!(lines[0], "n980");
        assert_eq!(lines[19], "n999");
    }
}
