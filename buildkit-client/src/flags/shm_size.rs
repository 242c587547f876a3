//! The size of `/dev/shm` in `RUN` steps (`--shm-size 128m`), as Docker's
//! `units.RAMInBytes` reads it.

use std::fmt;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};

/// A size in bytes written as Docker writes memory sizes: a number with an
/// optional binary unit `b`, `k`, `m`, `g`, `t`, `p` (any case, optionally
/// followed by `b` or `ib`): `64m`, `1.5g`, `1048576`.
///
/// `Display` writes the plain number of bytes, which parses back to the same size.
///
/// ```
/// use cicd_agents_buildkit::flags::ShmSize;
///
/// let size: ShmSize = "128m".parse()?;
/// assert_eq!(size.bytes(), 128 * 1024 * 1024);
/// assert_eq!(size.to_string(), "134217728");
/// # Ok::<(), cicd_agents_buildkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ShmSize(u64);

impl ShmSize {
    /// A size of `bytes`.
    pub fn from_bytes(bytes: u64) -> ShmSize {
        ShmSize(bytes)
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ShmSize {
    type Err = Error;
    fn from_str(text: &str) -> Result<ShmSize> {
        let invalid = || {
            Error::invalid(
                OptionField::ShmSize,
                text,
                "expected a size such as 64m, 1g or a number of bytes",
            )
        };
        let number_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(number_end);
        let valid_number = !number.is_empty()
            && number.split('.').all(|part| !part.is_empty())
            && number.starts_with(|c: char| c.is_ascii_digit());
        if !valid_number {
            return Err(invalid());
        }
        let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
        let unit = unit
            .strip_suffix("ib")
            .or_else(|| unit.strip_suffix('b'))
            .unwrap_or(&unit);
        let shift = match unit {
            "" => 0,
            "k" => 10,
            "m" => 20,
            "g" => 30,
            "t" => 40,
            "p" => 50,
            _ => return Err(invalid()),
        };
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let bytes = value * (1u64 << shift) as f64;
        if !bytes.is_finite() || bytes >= i64::MAX as f64 {
            return Err(invalid());
        }
        Ok(ShmSize(bytes as u64))
    }
}

impl fmt::Display for ShmSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_sizes() {
        for (text, bytes) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64mb", 64 << 20),
            ("64MiB", 64 << 20),
            ("1g", 1 << 30),
            ("1.5k", 1536),
            ("2 k", 2048),
            ("10b", 10),
        ] {
            assert_eq!(text.parse::<ShmSize>().unwrap().bytes(), bytes, "{text}");
        }
        for bad in ["", "m", "-1m", "1x", "1..5m", ".5m", "1e3", "99999999999p"] {
            assert!(bad.parse::<ShmSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn display_parses_back() {
        for text in ["0", "64m", "1.5k", "3g"] {
            let size: ShmSize = text.parse().unwrap();
            assert_eq!(size.to_string().parse::<ShmSize>().unwrap(), size);
        }
    }
}
