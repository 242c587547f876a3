//! [`BuildTimings`]: where a build's time went, measured by the client.

use std::time::Duration;

use serde::{Serialize, Serializer};

/// Where a build's time went, as the client saw it.
///
/// `connect`, `session_start` and `solve` follow one another, so together
/// they are at most `total` (the solve request is sent as the session starts
/// opening; `solve` counts from the session being open). `context_walk`,
/// `context_transfer` and `export` happen during the solve (the walk starts
/// before the daemon is asked anything, so it may overlap all three).
/// Serialised (`--progress rawjson`, Python's `to_dict`) as seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BuildTimings {
    /// Dialling the daemon and asking for its version: the client's own
    /// connection on its first build (zero on later builds of the same client).
    #[serde(serialize_with = "seconds")]
    pub connect: Duration,
    /// Opening the session the daemon calls back into (the solve request is
    /// already on its way meanwhile).
    #[serde(serialize_with = "seconds")]
    pub session_start: Duration,
    /// Listing local directories (the context, the Dockerfile's directory),
    /// summed over the daemon's requests.
    #[serde(serialize_with = "seconds")]
    pub context_walk: Duration,
    /// Sending what the daemon asked for after each listing, summed over its
    /// requests.
    #[serde(serialize_with = "seconds")]
    pub context_transfer: Duration,
    /// From the session being open to the solve's answer.
    #[serde(serialize_with = "seconds")]
    pub solve: Duration,
    /// The export steps (`exporting to image`, pushing, …), first start to
    /// last finish, as the daemon reported them.
    #[serde(serialize_with = "seconds")]
    pub export: Duration,
    /// The whole build, connection included, until the progress ended.
    #[serde(serialize_with = "seconds")]
    pub total: Duration,
}

fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl BuildTimings {
    /// The phases that follow one another: connect, session start and solve.
    pub fn sequential(&self) -> Duration {
        self.connect + self.session_start + self.solve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_seconds() {
        let timings = BuildTimings {
            connect: Duration::from_millis(1500),
            solve: Duration::from_micros(250),
            ..BuildTimings::default()
        };
        let json = serde_json::to_value(timings).unwrap();
        assert_eq!(json["connect"], 1.5);
        assert_eq!(json["solve"], 0.00025);
        assert_eq!(json["total"], 0.0);
        assert_eq!(timings.sequential(), Duration::from_micros(1_500_250));
    }
}
