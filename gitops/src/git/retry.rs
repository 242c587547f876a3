//! The write-back's retry budget: how long it keeps trying ([`RetryPolicy`]), how it waits
//! between attempts, and how it reports the time it took.

use std::time::{Duration, Instant};

use rand::Rng as _;

/// How long a write-back keeps trying, and how it waits between attempts.
///
/// Retries are budgeted by time, not by count: with N writers racing for one branch the last
/// one can lose N-1 races in a row, so a fixed number of attempts is the wrong budget. A
/// write-back re-applies its edit on the fetched tip until it lands or `timeout` has passed
/// since it started; between attempts it sleeps a jittered exponential backoff (see
/// [`RetryPolicy::backoff`]), shortened so that it never sleeps past the deadline. No attempt
/// starts after the deadline; one already under way finishes, so a write-back can last its
/// timeout plus one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long to keep retrying, from the start of the write-back (default 2 minutes).
    pub timeout: Duration,
    /// Delay before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Self::DEFAULT_TIMEOUT,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The default deadline of a write-back: 2 minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

    /// The default backoff with a deadline of `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            ..Self::default()
        }
    }

    /// The delay after failed attempt `attempt` (1-based): `initial * 2^(attempt-1)` capped at
    /// `max`, then a uniformly random part of it between one half and all of it.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        let base = self.initial_backoff.as_millis().min(u128::from(u64::MAX)) as u64;
        let cap = self.max_backoff.as_millis().min(u128::from(u64::MAX)) as u64;
        let full = base.saturating_mul(factor).min(cap);
        let low = full / 2;
        let ms = if full > low {
            rand::rng().random_range(low..=full)
        } else {
            full
        };
        Duration::from_millis(ms)
    }
}

/// A duration as the write-back reports it: `350ms`, `4.2s`, `2m`, `2m 3.5s`.
pub fn format_elapsed(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (minutes, rest_ms) = (ms / 60_000, ms % 60_000);
    let seconds = if rest_ms % 1000 == 0 {
        format!("{}s", rest_ms / 1000)
    } else {
        format!("{}.{}s", rest_ms / 1000, (rest_ms % 1000) / 100)
    };
    match (minutes, rest_ms) {
        (0, _) => seconds,
        (m, 0) => format!("{m}m"),
        (m, _) => format!("{m}m {seconds}"),
    }
}

/// The retry budget of one write-back: its start, its deadline and the policy's backoff.
pub(super) struct Budget<'a> {
    policy: &'a RetryPolicy,
    started: Instant,
}

impl<'a> Budget<'a> {
    pub(super) fn start(policy: &'a RetryPolicy) -> Self {
        Self {
            policy,
            started: Instant::now(),
        }
    }

    /// A budget whose clock started at `started` (the clone of a write-back that runs now).
    pub(super) fn since(policy: &'a RetryPolicy, started: Instant) -> Self {
        Self { policy, started }
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// After failed attempt `attempt`: the delay to sleep before the next one (the backoff,
    /// cut short at the deadline), or `None` when the deadline has passed.
    pub(super) fn next_delay(&self, attempt: u32) -> Option<Duration> {
        let left = self.policy.timeout.checked_sub(self.elapsed())?;
        if left.is_zero() {
            return None;
        }
        Some(self.policy.backoff(attempt).min(left))
    }
}
