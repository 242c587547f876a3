//! `--platform` values: `os/arch[/variant]`, checked before a build starts so a
//! typo is an error that names the value rather than a daemon message about
//! a base image that has no such manifest.
//!
//! | written as | means |
//! |---|---|
//! | `linux/amd64`, `linux/arm64`, `linux/arm/v7` | the usual OCI platform strings |
//! | `Linux/X86_64`, `linux/aarch64` | accepted; normalised to `linux/amd64`, `linux/arm64` |
//! | `linux/amd64/v3`, `linux/arm64/v8` | a variant of 1 to 16 lowercase letters and digits |
//!
//! The operating systems and architectures are the ones Go (and so BuildKit and
//! the OCI image index) knows by name.

use crate::error::{Error, Result};
use crate::flags::OptionField;

/// Operating systems Go's `GOOS` names and image indexes use.
const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "android",
    "dragonfly",
    "plan9",
    "js",
    "wasip1",
];

/// Architectures Go's `GOARCH` names and image indexes use.
const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips", "mipsle",
    "mips64", "mips64le", "loong64", "wasm",
];

/// Other names people write for an architecture, and the OCI name.
const ARCH_ALIASES: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("x86-64", "amd64"),
    ("aarch64", "arm64"),
    ("i386", "386"),
    ("armhf", "arm"),
];

fn invalid(value: &str, reason: impl std::fmt::Display) -> Error {
    Error::invalid(OptionField::Platform, value, reason.to_string())
}

/// Checks one platform string and returns it normalised (lowercase, aliases
/// resolved): `linux/x86_64` gives `linux/amd64`.
///
/// ```
/// use cicd_agents_buildkit::build::normalize_platform;
/// assert_eq!(normalize_platform("linux/aarch64").unwrap(), "linux/arm64");
/// assert_eq!(normalize_platform("linux/arm/v7").unwrap(), "linux/arm/v7");
/// assert!(normalize_platform("linux").unwrap_err().to_string().contains("\"linux\""));
/// ```
pub fn normalize_platform(value: &str) -> Result<String> {
    let text = value.trim();
    if text.is_empty() {
        return Err(invalid(
            value,
            "empty platform; write os/arch[/variant], e.g. linux/amd64",
        ));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(invalid(
            value,
            "a platform is os/arch[/variant] with no spaces or special characters",
        ));
    }
    let lower = text.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(invalid(
            value,
            "expected os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7",
        ));
    }
    let os = parts[0];
    if !KNOWN_OS.contains(&os) {
        return Err(invalid(
            value,
            format!("unknown operating system {os:?}; expected e.g. linux or windows"),
        ));
    }
    let arch = ARCH_ALIASES
        .iter()
        .find(|(alias, _)| *alias == parts[1])
        .map(|(_, name)| *name)
        .unwrap_or(parts[1]);
    if !KNOWN_ARCH.contains(&arch) {
        return Err(invalid(
            value,
            format!(
                "unknown architecture {:?}; expected one of {}",
                parts[1],
                KNOWN_ARCH.join(", ")
            ),
        ));
    }
    match parts.get(2) {
        None => Ok(format!("{os}/{arch}")),
        Some(variant) => {
            if variant.is_empty()
                || variant.len() > 16
                || !variant.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(invalid(
                    value,
                    format!("invalid variant {variant:?}; expected e.g. v7 or v8"),
                ));
            }
            Ok(format!("{os}/{arch}/{variant}"))
        }
    }
}

/// A target platform, normalised (`linux/x86_64` is `linux/amd64`).
///
/// ```
/// use cicd_agents_buildkit::flags::Platform;
///
/// let platform: Platform = "Linux/X86_64".parse()?;
/// assert_eq!(platform.to_string(), "linux/amd64");
/// # Ok::<(), cicd_agents_buildkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform(String);

impl Platform {
    /// The normalised `os/arch[/variant]`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Platform {
    type Err = Error;
    fn from_str(text: &str) -> Result<Platform> {
        normalize_platform(text).map(Platform)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises_the_usual_forms() {
        for (given, expected) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/arm64", "linux/arm64"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("linux/arm64/v8", "linux/arm64/v8"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("Linux/X86_64", "linux/amd64"),
            ("linux/aarch64", "linux/arm64"),
            ("windows/amd64", "windows/amd64"),
            (" linux/s390x ", "linux/s390x"),
        ] {
            assert_eq!(normalize_platform(given).unwrap(), expected, "{given}");
        }
    }

    #[test]
    fn platform_display_parses_back() {
        for text in ["linux/amd64", "linux/arm/v7", "windows/arm64"] {
            let p: Platform = text.parse().unwrap();
            assert_eq!(p.to_string().parse::<Platform>().unwrap(), p);
            assert_eq!(p.as_str(), text);
        }
    }

    #[test]
    fn rejects_malformed_platforms_naming_the_value() {
        for bad in [
            "",
            "linux",
            "amd64",
            "linux/",
            "/amd64",
            "linux/amd65",
            "linuks/amd64",
            "linux/arm/",
            "linux/arm/v7/x",
            "linux/arm/v-7",
            "linux amd64",
            "linux/am\nd64",
            "linux/ämd64",
            "linux//amd64",
        ] {
            let err = normalize_platform(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid platform") && !err.contains("--"),
                "{bad:?}: {err}"
            );
            // An empty value has nothing to quote; the reason says it is empty.
            assert!(
                bad.is_empty() || err.contains(&format!("{bad:?}")),
                "{bad:?}: {err}"
            );
        }
    }
}
