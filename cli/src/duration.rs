//! Durations as users write them on the command line: `90`, `500ms`, `30s`,
//! `90m`, `24h`, `7d` (a bare number is seconds; decimals allowed). The parser is the
//! library's (`cicd_agents_pipeline::duration`), shared with the pipeline definition.

use std::time::Duration;

pub use cicd_agents_types::duration::{parse_duration, parse_positive_duration};

/// `INTERVAL,TIMEOUT` (e.g. `15s,10s`): the HTTP/2 keepalive of `--keepalive`.
pub fn parse_keepalive(text: &str) -> Result<(Duration, Duration), String> {
    let Some((interval, timeout)) = text.split_once(',') else {
        return Err(format!("{text:?} is not INTERVAL,TIMEOUT (e.g. 15s,10s)"));
    };
    Ok((
        parse_positive_duration(interval)?,
        parse_positive_duration(timeout)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_pairs() {
        assert_eq!(
            parse_keepalive("15s,10s"),
            Ok((Duration::from_secs(15), Duration::from_secs(10)))
        );
        assert!(parse_keepalive("15s")
            .unwrap_err()
            .contains("INTERVAL,TIMEOUT"));
        assert!(parse_keepalive("15s,0").is_err());
        assert!(parse_keepalive("x,1s").unwrap_err().contains("\"x\""));
    }
}
