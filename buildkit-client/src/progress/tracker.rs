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
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            let mut line = String::from_utf8_lossy(&self.partial).into_owned();
            line.truncate(line.trim_end_matches('\r').len().min(MAX_LINE));
            self.partial.clear();
            if self.log_tail.len() == LOG_TAIL {
                self.log_tail.pop_front();
            }
            self.log_tail.push_back(line);
            rest = &rest[end + 1..];
        }
        if self.partial.len() < MAX_LINE {
            let room = MAX_LINE - self.partial.len();
            self.partial.extend_from_slice(&rest[..rest.len().min(room)]);
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
            self.entry(&log.vertex).push_log(&log.data);
        }
    }

    fn entry(&mut self, digest: &str) -> &mut VertexState {
        if !self.vertexes.contains_key(digest) {
            self.order.push(digest.to_string());
            let index = self.order.len();
            self.vertexes.insert(digest.to_string(), VertexState { index, ..VertexState::default() });
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
        self.order.iter().filter_map(|d| self.vertexes.get(d).map(|v| (d.as_str(), v)))
    }

    /// The first step that failed.
    pub fn failed(&self) -> Option<&VertexState> {
        self.iter().map(|(_, v)| v).find(|v| !v.error.is_empty() && !v.error.contains("context canceled"))
            .or_else(|| self.iter().map(|(_, v)| v).find(|v| !v.error.is_empty()))
    }

    /// How many steps there are and how many have finished.
    pub fn counts(&self) -> (usize, usize) {
        let done = self.vertexes.values().filter(|v| v.completed.is_some()).count();
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
                logs: vec![LogChunk { vertex: "d1".into(), stream: 1, data: chunk.to_vec(), timestamp: None }],
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
}
