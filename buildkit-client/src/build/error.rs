//! A failed build, described the way a person debugging it needs.

use super::registry_failure::RegistryFailure;

/// Why a build failed: the daemon's message, the failing step, where in the
/// Dockerfile it is and the last lines its command printed.
///
/// When the build failed talking to a registry (push, cache export or import, pull),
/// [`BuildError::registry`] says which registry, what for, and how it failed, and the first
/// line of the message says it too: `pushing to registry 127.0.0.1:5099 failed: 401 Unauthorized`.
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
    /// The registry failure the daemon reported, if the build failed talking to a registry.
    pub registry: Option<RegistryFailure>,
}

impl BuildError {
    /// Whether the build failed because a registry refused the credentials (HTTP 401/403).
    pub fn is_registry_auth_failure(&self) -> bool {
        self.registry.as_ref().is_some_and(RegistryFailure::is_auth)
    }

    /// The exit code of the failed step's process, from the daemon's
    /// `process "…" did not complete successfully: exit code: N`; `None` when
    /// the build failed otherwise (a missing file, a registry, ...).
    pub fn exit_code(&self) -> Option<i32> {
        let (_, tail) = self.message.rsplit_once("exit code: ")?;
        let digits: &str = tail
            .split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .next()?;
        digits.parse().ok()
    }

    fn render(&self) -> String {
        let mut text = String::new();
        if let Some(registry) = &self.registry {
            text.push_str(&format!("{registry}\n"));
        }
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
    pub(crate) fn from_status(
        status: &tonic::Status,
        tracker: &crate::progress::Tracker,
    ) -> BuildError {
        use cicd_agents_proto::errdefs;
        use cicd_agents_proto::google::rpc;
        use prost::Message;

        let mut error = BuildError {
            message: clean_message(status.message()),
            ..BuildError::default()
        };
        let mut failed_digest = None;
        if let Ok(details) = rpc::Status::decode(status.details()) {
            for any in details.details {
                // Details come as protobuf (`…/errdefs.Source`) or, from some
                // daemons, as JSON (`…/errdefs.Source+json`).
                let json = any.type_url.ends_with("+json");
                let kind = any.type_url.trim_end_matches("+json");
                if kind.ends_with("errdefs.Source") {
                    let location = if json {
                        SourceLocation::from_json(&any.value)
                    } else {
                        errdefs::Source::decode(any.value.as_slice())
                            .ok()
                            .and_then(SourceLocation::from_proto)
                    };
                    if let Some(location) = location {
                        error.apply_location(location);
                    }
                } else if kind.ends_with("errdefs.Vertex") {
                    let digest = if json {
                        serde_json::from_slice::<serde_json::Value>(&any.value)
                            .ok()
                            .and_then(|v| {
                                v.get("digest").and_then(|d| d.as_str()).map(String::from)
                            })
                    } else {
                        errdefs::Vertex::decode(any.value.as_slice())
                            .ok()
                            .map(|v| v.digest)
                    };
                    failed_digest = digest.or(failed_digest);
                }
            }
        }
        let failed = failed_digest
            .as_deref()
            .and_then(|d| tracker.get(d))
            .or_else(|| tracker.failed());
        if let Some(vertex) = failed {
            error.step = Some(vertex.name.clone()).filter(|n| !n.is_empty());
            error.log_tail = vertex.last_lines();
        }
        error.registry = RegistryFailure::detect(&error.message, error.step.as_deref());
        if let Some(registry) = &error.registry {
            tracing::debug!(registry = %registry.registry, operation = %registry.operation, status = ?registry.status, kind = %registry.kind, "the build failed at a registry");
        }
        error
    }
}

/// Where in a source file a failing step is written.
struct SourceLocation {
    filename: String,
    data: Vec<u8>,
    start: i32,
    end: i32,
}

impl SourceLocation {
    fn from_proto(source: cicd_agents_proto::errdefs::Source) -> Option<SourceLocation> {
        let info = source.info?;
        let range = source.ranges.first()?;
        let start = range.start.as_ref().map(|p| p.line).unwrap_or(0);
        let end = range.end.as_ref().map(|p| p.line).unwrap_or(start);
        Some(SourceLocation {
            filename: info.filename,
            data: info.data,
            start,
            end,
        })
    }

    fn from_json(bytes: &[u8]) -> Option<SourceLocation> {
        use base64::Engine;
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let info = value.get("info")?;
        let filename = info
            .get("filename")
            .and_then(|f| f.as_str())
            .unwrap_or_default()
            .to_string();
        let data = info
            .get("data")
            .and_then(|d| d.as_str())
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .unwrap_or_default();
        let range = value.get("ranges")?.as_array()?.first()?;
        let line = |key: &str| {
            range
                .get(key)
                .and_then(|p| p.get("line").or_else(|| p.get("Line")))
                .and_then(|l| l.as_i64())
                .unwrap_or(0) as i32
        };
        let start = line("start");
        let end = line("end");
        Some(SourceLocation {
            filename,
            data,
            start,
            end,
        })
    }
}

impl BuildError {
    fn apply_location(&mut self, location: SourceLocation) {
        if !location.filename.is_empty() {
            self.file = Some(location.filename);
        }
        if location.start > 0 {
            let start = location.start as usize;
            let end = (location.end.max(location.start)) as usize;
            self.line = Some(start as u32);
            self.source_lines = String::from_utf8_lossy(&location.data)
                .lines()
                .skip(start - 1)
                .take((end - start + 1).clamp(1, 10))
                .map(String::from)
                .collect();
        }
    }
}

/// BuildKit prefixes messages with wrappers ("failed to solve: ") that say nothing.
fn clean_message(message: &str) -> String {
    let mut text = message.trim();
    for prefix in [
        "failed to solve: ",
        "failed to solve with frontend dockerfile.v0: ",
    ] {
        while let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    text.to_string()
}

#[cfg(test)]
mod exit_code_tests {
    use super::BuildError;

    fn failed(message: &str) -> BuildError {
        BuildError {
            message: message.into(),
            ..BuildError::default()
        }
    }

    #[test]
    fn the_exit_code_comes_from_the_daemons_message() {
        let run =
            failed("process \"/bin/sh -c exit 42\" did not complete successfully: exit code: 42");
        assert_eq!(run.exit_code(), Some(42));
        assert_eq!(
            failed("failed to compute cache key: \"/x\" not found").exit_code(),
            None
        );
        assert_eq!(failed("exit code: ").exit_code(), None);
    }
}
