//! Durations as people write them in pipeline definitions and on the command line: `90`,
//! `500ms`, `30s`, `90m`, `24h`, `7d` (a bare number is seconds; decimals allowed). One parser
//! for every front end: the pipeline definition's `chart.retry-timeout` and the command line's
//! duration flags use it.

use std::time::Duration;

use crate::units::number_and_unit;

/// Parses a duration; the error names the text and the units accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (value, unit) = number_and_unit(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 24h, 90m or 30s"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use ms, s, m, h or d"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is too long a duration"))
}

/// [`parse_duration`], refusing zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        duration if duration.is_zero() => {
            Err(format!("{:?} must be longer than zero", text.trim()))
        }
        duration => Ok(duration),
    }
}

/// Serialises a duration as seconds with millisecond precision (`1.234`), for reports and
/// events (`#[serde(serialize_with = "cicd_agents_types::duration::serialize_seconds")]`).
pub fn serialize_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration(&"9".repeat(400)).is_err());
        assert!(parse_duration("99999999999999999999999d").is_err());
        assert!(parse_positive_duration("0").is_err());
    }
}
