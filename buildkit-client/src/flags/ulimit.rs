//! Resource limits of `RUN` steps (`--ulimit nofile=1024:2048`), as Docker's
//! `units.ParseUlimit` reads them.

use std::fmt;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};

closed_set! {
    /// The limits Docker knows, by their `ulimit` names.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    #[allow(missing_docs)]
    pub enum UlimitName for Ulimit {
        Core = "core",
        Cpu = "cpu",
        Data = "data",
        Fsize = "fsize",
        Locks = "locks",
        Memlock = "memlock",
        Msgqueue = "msgqueue",
        Nice = "nice",
        Nofile = "nofile",
        Nproc = "nproc",
        Rss = "rss",
        Rtprio = "rtprio",
        Rttime = "rttime",
        Sigpending = "sigpending",
        Stack = "stack",
    }
}

/// One limit: `NAME=SOFT[:HARD]` (the hard limit defaults to the soft one;
/// `-1` is unlimited).
///
/// ```
/// use cicd_agents_buildkit::flags::{Ulimit, UlimitName};
///
/// let limit: Ulimit = "nofile=1024:2048".parse()?;
/// assert_eq!((limit.name, limit.soft, limit.hard), (UlimitName::Nofile, 1024, 2048));
/// assert_eq!("nproc=100".parse::<Ulimit>()?.to_string(), "nproc=100:100");
/// # Ok::<(), cicd_agents_buildkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    /// Which limit.
    pub name: UlimitName,
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

impl FromStr for Ulimit {
    type Err = Error;
    fn from_str(text: &str) -> Result<Ulimit> {
        let invalid = |reason: String| Error::invalid(OptionField::Ulimit, text, reason);
        let (name, limits) = text
            .split_once('=')
            .ok_or_else(|| invalid("expected NAME=SOFT[:HARD], e.g. nofile=1024:2048".into()))?;
        let name: UlimitName = name.parse()?;
        let number = |part: &str| {
            part.parse::<i64>()
                .map_err(|_| invalid(format!("{part:?} is not a whole number")))
        };
        let (soft, hard) = match limits.split(':').collect::<Vec<_>>()[..] {
            [soft] => (number(soft)?, number(soft)?),
            [soft, hard] => (number(soft)?, number(hard)?),
            _ => return Err(invalid("at most two limits, SOFT[:HARD]".into())),
        };
        if hard != -1 {
            if soft == -1 {
                return Err(invalid(format!(
                    "the soft limit -1 (unlimited) exceeds the hard limit {hard}"
                )));
            }
            if soft > hard {
                return Err(invalid(format!(
                    "the soft limit {soft} exceeds the hard limit {hard}"
                )));
            }
        }
        Ok(Ulimit { name, soft, hard })
    }
}

impl fmt::Display for Ulimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}:{}", self.name, self.soft, self.hard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        let one: Ulimit = "nofile=512".parse().unwrap();
        assert_eq!((one.soft, one.hard), (512, 512));
        let unlimited: Ulimit = "core=-1".parse().unwrap();
        assert_eq!((unlimited.soft, unlimited.hard), (-1, -1));
        let soft_only_limited: Ulimit = "stack=100:-1".parse().unwrap();
        assert_eq!(soft_only_limited.hard, -1);
        for bad in [
            "nofile",
            "files=1",
            "nofile=a",
            "nofile=1:2:3",
            "nofile=3:2",
            "nofile=-1:5",
            "NOFILE=1",
        ] {
            let err = bad.parse::<Ulimit>().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidOption {
                        field: OptionField::Ulimit,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn display_parses_back() {
        for name in UlimitName::ALL {
            let limit: Ulimit = format!("{name}=10:20").parse().unwrap();
            assert_eq!(limit.to_string().parse::<Ulimit>().unwrap(), limit);
        }
    }
}
