//! The network mode of `RUN` steps (`--network default|host|none`).

use std::fmt;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};

/// Where `RUN` steps' network comes from. Only the modes BuildKit takes from a
/// client exist; custom networks are a builder setting in buildx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    /// The daemon's default (a bridge behind Docker).
    #[default]
    Default,
    /// The host's network; needs the `network.host` entitlement, which a
    /// build with this mode asks for.
    Host,
    /// No network.
    None,
}

impl NetworkMode {
    /// The mode as written.
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::Default => "default",
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        }
    }
}

impl FromStr for NetworkMode {
    type Err = Error;
    fn from_str(text: &str) -> Result<NetworkMode> {
        match text {
            "" | "default" => Ok(NetworkMode::Default),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => Err(Error::invalid(
                OptionField::Network,
                other,
                "expected default, host or none",
            )),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for mode in [NetworkMode::Default, NetworkMode::Host, NetworkMode::None] {
            assert_eq!(mode.to_string().parse::<NetworkMode>().unwrap(), mode);
        }
        assert_eq!("".parse::<NetworkMode>().unwrap(), NetworkMode::Default);
        let err = "bridge2".parse::<NetworkMode>().unwrap_err().to_string();
        assert!(err.contains("bridge2") && !err.contains("--"), "{err}");
    }
}
