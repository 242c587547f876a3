//! HTTP/2 keepalive on the connection to the daemon: a PING every `interval`,
//! and a connection whose PING is not answered within `timeout` is closed, so
//! a daemon (or a network path) that went silent fails the calls on it instead
//! of leaving them waiting forever.

use std::time::Duration;

use crate::error::{Error, Result};

/// When to ping the daemon and how long to wait for the answer.
///
/// A connection that stops delivering bytes (a black-holed network path, a
/// frozen daemon) is noticed within `interval + timeout`; every call on it
/// then fails with [`Error::ConnectionLost`].
///
/// ```
/// use std::time::Duration;
/// use cicd_agents_buildkit::transport::Keepalive;
///
/// let keepalive = Keepalive::new(Duration::from_secs(5), Duration::from_secs(3)).unwrap();
/// assert_eq!(keepalive.interval(), Duration::from_secs(5));
/// assert_eq!(Keepalive::default().timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    interval: Duration,
    timeout: Duration,
}

impl Keepalive {
    /// The default PING interval (15 s).
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
    /// The default time allowed for a PING's answer (10 s).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The shortest interval accepted: pinging more often makes servers
    /// answer with `ENHANCE_YOUR_CALM` and close the connection.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

    /// A PING every `interval`, each to be answered within `timeout`. Both must
    /// be at least 100 ms.
    pub fn new(interval: Duration, timeout: Duration) -> Result<Keepalive> {
        for (name, value) in [("interval", interval), ("timeout", timeout)] {
            if value < Self::MIN_INTERVAL {
                return Err(Error::invalid(
                    crate::flags::OptionField::Keepalive,
                    format!("{value:?}"),
                    format!(
                        "the keepalive {name} is shorter than the minimum {:?}",
                        Self::MIN_INTERVAL
                    ),
                ));
            }
        }
        Ok(Keepalive { interval, timeout })
    }

    /// Values to be checked by [`Keepalive::new`] later (the builder reports
    /// errors from `connect`).
    pub(crate) fn unchecked(interval: Duration, timeout: Duration) -> Keepalive {
        Keepalive { interval, timeout }
    }

    /// How often the daemon is pinged.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long a PING's answer may take before the connection is given up.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for Keepalive {
    /// 15 s between PINGs, 10 s for the answer.
    fn default() -> Self {
        Keepalive {
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_too_short_values_naming_them() {
        let err = Keepalive::new(Duration::from_millis(10), Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("keepalive interval"), "{err}");
        let err = Keepalive::new(Duration::from_secs(1), Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("keepalive timeout"), "{err}");
        assert!(Keepalive::new(Duration::from_secs(1), Duration::from_secs(1)).is_ok());
    }
}
