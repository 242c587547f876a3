//! A failed build, described the way a person debugging it needs.

/// Why a build failed: the daemon's message, the failing step, where in the
/// Dockerfile it is and the last lines its command printed.
#[derive(Debug, Clone, Default, thiserror::Error)]
#[error("{}", self.render())]
pub struct BuildError {
    /// The daemon's error message.
    pub message: String,
    /// The failing step's name, e.g. `[build 3/4] RUN make`.
    pub step: Option<String>,
    /// The Dockerfile (or other source) the step comes from.
    pub file: Option<String>,
    /// Its 1-based line.
    pub line: Option<u32>,
    /// The source lines of the step.
    pub source_lines: Vec<String>,
    /// The last lines the step printed.
    pub log_tail: Vec<String>,
}

impl BuildError {
    fn render(&self) -> String {
        let mut text = String::new();
        if let Some(step) = &self.step {
            text.push_str(&format!("failed to build: {step}: "));
        } else {
            text.push_str("failed to build: ");
        }
        text.push_str(&self.message);
        if let (Some(file), Some(line)) = (&self.file, self.line) {
            text.push_str(&format!("\n  --> {file}:{line}"));
            for (offset, source) in self.source_lines.iter().enumerate() {
                text.push_str(&format!("\n  {:>4} | {source}", line as usize + offset));
            }
        }
        if !self.log_tail.is_empty() {
            text.push_str("\n  last output:");
            for log in &self.log_tail {
                text.push_str(&format!("\n    {log}"));
            }
        }
        text
    }
}
