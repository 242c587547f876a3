//! Extra `/etc/hosts` entries of `RUN` steps (`--add-host name:ip`).

use std::fmt;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};

/// One entry: `HOST:IP` (or `HOST=IP`, which buildx also reads; needed for
/// IPv6 addresses, which hold `:`).
///
/// ```
/// use cicd_agents_buildkit::flags::AddHost;
///
/// let entry: AddHost = "db:10.0.0.2".parse()?;
/// assert_eq!((entry.host.as_str(), entry.ip.as_str()), ("db", "10.0.0.2"));
/// assert_eq!(entry.to_string(), "db=10.0.0.2");
/// # Ok::<(), cicd_agents_buildkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddHost {
    /// The host name.
    pub host: String,
    /// Its address.
    pub ip: String,
}

impl FromStr for AddHost {
    type Err = Error;
    fn from_str(entry: &str) -> Result<AddHost> {
        let (host, ip) = entry
            .split_once('=')
            .or_else(|| entry.split_once(':'))
            .filter(|(h, i)| !h.is_empty() && !i.is_empty())
            .ok_or_else(|| Error::invalid(OptionField::AddHost, entry, "expected host:ip"))?;
        Ok(AddHost {
            host: host.to_string(),
            ip: ip.to_string(),
        })
    }
}

impl fmt::Display for AddHost {
    /// `HOST=IP`, the form BuildKit's `add-hosts` attribute takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.host, self.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for text in ["db:10.0.0.2", "db=10.0.0.2", "v6=::1"] {
            let entry: AddHost = text.parse().unwrap();
            assert_eq!(entry.to_string().parse::<AddHost>().unwrap(), entry);
        }
        assert_eq!("v6=::1".parse::<AddHost>().unwrap().ip, "::1");
        for bad in ["db", ":1.2.3.4", "db:"] {
            assert!(bad.parse::<AddHost>().is_err(), "{bad}");
        }
    }
}
