//! The Control API's calls, one module per call: what the daemon is
//! ([`info`]), what it runs on ([`workers`]), what it stores
//! ([`disk_usage`]), freeing it ([`prune`]) and what it is building
//! ([`history`]).

pub mod disk_usage;
pub mod history;
pub mod info;
pub mod prune;
pub mod workers;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A protobuf timestamp as seconds and nanoseconds since the epoch.
pub(crate) fn system_time(timestamp: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let timestamp = timestamp?;
    let seconds = u64::try_from(timestamp.seconds).ok()?;
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// RFC 3339 (UTC, seconds) for JSON output.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        (rest % 3600) / 60,
        rest % 60
    )
}

/// RFC 3339 with the fraction of a second, as Go's `time.RFC3339Nano` writes
/// it (what buildx's `--progress rawjson` shows): up to nine digits, trailing
/// zeros dropped, no fraction on a whole second.
pub(crate) fn rfc3339_nanos(time: SystemTime) -> String {
    let seconds = rfc3339(time);
    let nanos = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    if nanos == 0 {
        return seconds;
    }
    let fraction = format!("{nanos:09}");
    let fraction = fraction.trim_end_matches('0');
    let whole = seconds.trim_end_matches('Z');
    format!("{whole}.{fraction}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's method).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Serialises an optional [`SystemTime`] as RFC 3339.
pub(crate) fn serialize_time<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_some(&rfc3339(*time)),
        None => serializer.serialize_none(),
    }
}

/// Serialises an optional [`SystemTime`] as RFC 3339 with nanoseconds
/// ([`rfc3339_nanos`]).
pub(crate) fn serialize_time_nanos<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_some(&rfc3339_nanos(*time)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn formats_rfc3339_with_nanoseconds_as_go_does() {
        let at = |nanos: u32| UNIX_EPOCH + Duration::new(1_700_000_000, nanos);
        assert_eq!(rfc3339_nanos(at(0)), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339_nanos(at(622_493_585)),
            "2023-11-14T22:13:20.622493585Z"
        );
        assert_eq!(rfc3339_nanos(at(500_000_000)), "2023-11-14T22:13:20.5Z");
        assert_eq!(rfc3339_nanos(at(1_000)), "2023-11-14T22:13:20.000001Z");
    }
}
