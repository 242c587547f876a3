//! Extra privileges a build may use (`--allow network.host`).

use std::fmt;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};

/// An entitlement BuildKit grants when the daemon allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entitlement {
    /// `network.host`: `RUN --network=host`.
    NetworkHost,
    /// `security.insecure`: `RUN --security=insecure`.
    SecurityInsecure,
}

impl Entitlement {
    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "network.host",
            Entitlement::SecurityInsecure => "security.insecure",
        }
    }
}

impl FromStr for Entitlement {
    type Err = Error;
    fn from_str(text: &str) -> Result<Entitlement> {
        match text {
            "network.host" => Ok(Entitlement::NetworkHost),
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            other => Err(Error::invalid(
                OptionField::Allow,
                other,
                "expected network.host or security.insecure",
            )),
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for e in [Entitlement::NetworkHost, Entitlement::SecurityInsecure] {
            assert_eq!(e.to_string().parse::<Entitlement>().unwrap(), e);
        }
        assert!("network.hots".parse::<Entitlement>().is_err());
    }
}
