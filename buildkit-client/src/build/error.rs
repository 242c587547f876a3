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

impl BuildError {
    /// Builds the error from the solve's gRPC status and what progress showed.
    pub(crate) fn from_status(status: &tonic::Status, tracker: &crate::progress::Tracker) -> BuildError {
        use cicd_agents_proto::errdefs;
        use cicd_agents_proto::google::rpc;
        use prost::Message;

        let mut error = BuildError { message: clean_message(status.message()), ..BuildError::default() };
        let mut failed_digest = None;
        if let Ok(details) = rpc::Status::decode(status.details()) {
            for any in details.details {
                if any.type_url.ends_with("errdefs.Source") {
                    if let Ok(source) = errdefs::Source::decode(any.value.as_slice()) {
                        if let Some(info) = source.info {
                            error.file = Some(info.filename.clone()).filter(|f| !f.is_empty());
                            if let Some(range) = source.ranges.first() {
                                let start = range.start.as_ref().map(|p| p.line).unwrap_or(0);
                                let end = range.end.as_ref().map(|p| p.line).unwrap_or(start).max(start);
                                if start > 0 {
                                    error.line = Some(start as u32);
                                    let text = String::from_utf8_lossy(&info.data);
                                    error.source_lines = text
                                        .lines()
                                        .skip(start as usize - 1)
                                        .take((end - start + 1).clamp(1, 10) as usize)
                                        .map(String::from)
                                        .collect();
                                }
                            }
                        }
                    }
                } else if any.type_url.ends_with("errdefs.Vertex") {
                    if let Ok(vertex) = errdefs::Vertex::decode(any.value.as_slice()) {
                        failed_digest = Some(vertex.digest);
                    }
                }
            }
        }
        let failed = failed_digest.as_deref().and_then(|d| tracker.get(d)).or_else(|| tracker.failed());
        if let Some(vertex) = failed {
            error.step = Some(vertex.name.clone()).filter(|n| !n.is_empty());
            error.log_tail = vertex.last_lines();
        }
        error
    }
}

/// BuildKit prefixes messages with wrappers ("failed to solve: ") that say nothing.
fn clean_message(message: &str) -> String {
    let mut text = message.trim();
    for prefix in ["failed to solve: ", "failed to solve with frontend dockerfile.v0: "] {
        while let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    text.to_string()
}
