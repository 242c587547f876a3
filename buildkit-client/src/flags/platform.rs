//! `--platform` values: `os/arch[/variant]`, parsed and normalised as buildx
//! does (containerd's `platforms.Parse` + `Normalize`, and buildx's `local`),
//! checked before a build starts so a typo is an error that names the value
//! rather than a daemon message about a base image that has no such manifest.
//!
//! | written as | means |
//! |---|---|
//! | `linux/amd64`, `linux/arm64`, `linux/arm/v7`, `linux/amd64/v2` | the usual OCI platform strings |
//! | `Linux/X86_64`, `linux/aarch64`, `linux/i386` | `linux/amd64`, `linux/arm64`, `linux/386` |
//! | `linux/arm`, `linux/armhf`, `linux/armel`, `linux/arm/7` | `linux/arm/v7`, `linux/arm/v7`, `linux/arm/v6`, `linux/arm/v7` |
//! | `linux/arm64/v8`, `linux/amd64/v1`, `macos/arm64` | `linux/arm64`, `linux/amd64`, `darwin/arm64` (the default variants are left out) |
//! | `local` | the platform this client runs on (buildx's `local`) |
//! | `linux`, `arm64` | one part: an operating system gets this client's architecture, an architecture this client's operating system (containerd's rule) |
//!
//! A list (`linux/amd64,linux/arm64`) is split at commas and each platform
//! is kept once, in the order first written ([`Platform::parse_list`]), as
//! buildx's `platformutil.Parse` and `Dedupe` do.
//!
//! One deliberate difference: buildx passes an unknown `os/arch` pair on to
//! the daemon, where it fails at the first base image (or, for `FROM scratch`,
//! builds an image for a platform that does not exist). Here the operating
//! system and architecture must be ones Go (and so BuildKit and the OCI image
//! index) knows by name, so `linux/amd65` is refused before anything is sent.

use std::fmt;

use crate::error::{Error, Result};
use crate::flags::OptionField;

/// Operating systems Go's `GOOS` names (containerd's `isKnownOS`, and `wasip1`).
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

/// Architectures Go's `GOARCH` names (containerd's `isKnownArch`).
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn invalid(value: &str, reason: impl fmt::Display) -> Error {
    Error::invalid(OptionField::Platform, value, reason.to_string())
}

/// containerd's component rule: `[A-Za-z0-9_.-]+` (the operating system
/// allows no `.`).
fn is_component(text: &str, dot: bool) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (dot && c == '.'))
}

/// A variant: 1 to 16 letters, digits and dots (`v7`, `v8.2`, `power9`),
/// starting with a letter or digit. (containerd takes any component; a
/// variant with other characters names no real CPU.)
fn is_variant(text: &str) -> bool {
    text.len() <= 16
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
}

/// containerd's `normalizeOS` (the text is already lowercase).
fn normalize_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// containerd's `normalizeArch` followed by its `Normalize`: aliases resolved,
/// 32-bit ARM always with its variant, the default variants of `amd64` (`v1`)
/// and `arm64` (`v8`) left out. Both texts are already lowercase.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = match (arch, variant) {
        ("i386", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", variant) => ("amd64", variant),
        ("aarch64" | "arm64", "8" | "v8") => ("arm64", ""),
        ("aarch64" | "arm64", variant) => ("arm64", variant),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        (arch, variant) => (arch, variant),
    };
    (arch.to_string(), variant.to_string())
}

/// The operating system and architecture this client runs on, in Go's names.
fn client_os_arch() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "loongarch64" => "loong64",
        "powerpc" => "ppc",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "wasm32" => "wasm",
        other => other,
    };
    (os, arch)
}

/// A target platform, normalised the way buildx sends it to the daemon.
///
/// ```
/// use cicd_agents_buildkit::flags::Platform;
///
/// let platform: Platform = "Linux/X86_64".parse()?;
/// assert_eq!(platform.to_string(), "linux/amd64");
/// let arm: Platform = "linux/armhf".parse()?;
/// assert_eq!((arm.os(), arm.architecture(), arm.variant()), ("linux", "arm", Some("v7")));
/// assert!("linux/amd65".parse::<Platform>().is_err());
/// # Ok::<(), cicd_agents_buildkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// The platform this client runs on: what buildx means by `local`.
    pub fn local() -> Platform {
        let (os, arch) = client_os_arch();
        let (architecture, variant) = normalize_arch(arch, "");
        Platform {
            os: os.to_string(),
            architecture,
            variant: Some(variant).filter(|v| !v.is_empty()),
        }
    }

    /// The operating system (`linux`).
    pub fn os(&self) -> &str {
        &self.os
    }

    /// The architecture (`amd64`, `arm64`, `arm`).
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The variant (`v7` for `linux/arm/v7`), if any.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// Parses platform values as `docker buildx build --platform` takes them:
    /// each value may be a comma-separated list; every platform is kept once,
    /// in the order first written. An empty item (`linux/amd64,`) is an error,
    /// as in buildx.
    ///
    /// ```
    /// use cicd_agents_buildkit::flags::Platform;
    ///
    /// let list = Platform::parse_list(["linux/amd64,linux/x86_64", "linux/arm64"])?;
    /// let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
    /// assert_eq!(shown, ["linux/amd64", "linux/arm64"]);
    /// # Ok::<(), cicd_agents_buildkit::Error>(())
    /// ```
    pub fn parse_list<I, S>(values: I) -> Result<Vec<Platform>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut platforms = Vec::new();
        for value in values {
            for item in value.as_ref().split(',') {
                platforms.push(item.parse()?);
            }
        }
        Ok(Platform::dedup(platforms))
    }

    /// `platforms` with each platform kept once, in the order first given
    /// (buildx's `platformutil.Dedupe`).
    pub fn dedup(platforms: impl IntoIterator<Item = Platform>) -> Vec<Platform> {
        let mut kept: Vec<Platform> = Vec::new();
        for platform in platforms {
            if !kept.contains(&platform) {
                kept.push(platform);
            }
        }
        kept
    }

    fn parse(value: &str) -> Result<Platform> {
        let text = value.trim();
        if text.is_empty() {
            return Err(invalid(
                value,
                "empty platform; write os/arch[/variant], e.g. linux/amd64",
            ));
        }
        if text.eq_ignore_ascii_case("local") {
            return Ok(Platform::local());
        }
        if text.contains('*') {
            return Err(invalid(value, "wildcards are not supported"));
        }
        if text.contains('(') {
            return Err(invalid(
                value,
                "OS versions and features (`windows(10.0.17763)/amd64`) are not supported",
            ));
        }
        let lower = text.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.len() > 3 {
            return Err(invalid(
                value,
                "expected os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7",
            ));
        }
        let bad_part = |part: &str| {
            invalid(
                value,
                format!(
                    "{part:?} is not a platform part (letters, digits, `_`, `-` and `.`); \
                     expected os/arch[/variant], e.g. linux/amd64"
                ),
            )
        };
        for (index, part) in parts.iter().enumerate() {
            if !is_component(part, index > 0) {
                return Err(bad_part(part));
            }
        }
        let (client_os, client_arch) = client_os_arch();
        let (os, arch, variant) = match parts.as_slice() {
            [one] if KNOWN_OS.contains(&normalize_os(one)) => (normalize_os(one), client_arch, ""),
            [one] => (client_os, *one, ""),
            [os, arch] => (normalize_os(os), *arch, ""),
            [os, arch, variant] => (normalize_os(os), *arch, *variant),
            _ => return Err(bad_part(text)),
        };
        if !KNOWN_OS.contains(&os) {
            return Err(invalid(
                value,
                format!("unknown operating system {os:?}; expected e.g. linux or windows"),
            ));
        }
        if !variant.is_empty() && !is_variant(variant) {
            return Err(invalid(
                value,
                format!("invalid variant {variant:?}; expected e.g. v7, v8 or v2"),
            ));
        }
        let (architecture, variant) = normalize_arch(arch, variant);
        if !KNOWN_ARCH.contains(&architecture.as_str()) {
            let what = if parts.len() == 1 {
                "operating system or architecture"
            } else {
                "architecture"
            };
            return Err(invalid(
                value,
                format!(
                    "unknown {what} {arch:?}; expected one of {}",
                    KNOWN_ARCH.join(", ")
                ),
            ));
        }
        Ok(Platform {
            os: os.to_string(),
            architecture,
            variant: Some(variant).filter(|v| !v.is_empty()),
        })
    }
}

/// Checks one platform string and returns it normalised: `linux/x86_64`
/// gives `linux/amd64` (the text of a [`Platform`]).
///
/// ```
/// use cicd_agents_buildkit::build::normalize_platform;
/// assert_eq!(normalize_platform("linux/aarch64").unwrap(), "linux/arm64");
/// assert_eq!(normalize_platform("linux/armhf").unwrap(), "linux/arm/v7");
/// assert!(normalize_platform("linux/").unwrap_err().to_string().contains("\"linux/\""));
/// ```
pub fn normalize_platform(value: &str) -> Result<String> {
    value.parse::<Platform>().map(|p| p.to_string())
}

impl std::str::FromStr for Platform {
    type Err = Error;
    fn from_str(text: &str) -> Result<Platform> {
        Platform::parse(text)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What buildx sends for each (containerd `platforms.Parse`, then `Normalize`).
    #[test]
    fn accepts_and_normalises_as_buildx() {
        for (given, expected) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/arm64", "linux/arm64"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/5", "linux/arm/v5"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v9", "linux/arm64/v9"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v2", "linux/amd64/v2"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("Linux/X86_64", "linux/amd64"),
            ("linux/x86-64", "linux/amd64"),
            ("linux/i386", "linux/386"),
            ("linux/riscv64", "linux/riscv64"),
            ("windows/amd64", "windows/amd64"),
            ("macos/arm64", "darwin/arm64"),
            (" linux/s390x ", "linux/s390x"),
        ] {
            assert_eq!(normalize_platform(given).unwrap(), expected, "{given}");
        }
    }

    #[test]
    fn local_and_single_parts_take_the_clients_platform() {
        let local = Platform::local();
        assert!(KNOWN_OS.contains(&local.os()), "{local}");
        assert!(KNOWN_ARCH.contains(&local.architecture()), "{local}");
        assert_eq!("local".parse::<Platform>().unwrap(), local);
        assert_eq!("LOCAL".parse::<Platform>().unwrap(), local);
        let linux: Platform = "linux".parse().unwrap();
        assert_eq!(
            (linux.os(), linux.architecture()),
            ("linux", local.architecture())
        );
        let arm64: Platform = "aarch64".parse().unwrap();
        assert_eq!(
            (arm64.os(), arm64.to_string()),
            (local.os(), format!("{}/arm64", local.os()))
        );
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(local.to_string(), "linux/amd64");
    }

    #[test]
    fn display_parses_back_to_the_same_platform() {
        for text in [
            "linux/amd64",
            "linux/arm/v7",
            "linux/arm",
            "linux/arm64/v8",
            "linux/amd64/v2",
            "windows/arm64",
            "local",
            "linux",
        ] {
            let p: Platform = text.parse().unwrap();
            assert_eq!(p.to_string().parse::<Platform>().unwrap(), p, "{text}");
        }
    }

    #[test]
    fn lists_split_at_commas_and_keep_each_platform_once() {
        let list = Platform::parse_list([
            "linux/amd64,linux/arm64",
            "linux/x86_64",
            "linux/arm/v7,linux/armhf",
        ])
        .unwrap();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
        assert!(Platform::parse_list(Vec::<String>::new())
            .unwrap()
            .is_empty());
        let err = Platform::parse_list(["linux/amd64,"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty platform"), "{err}");
        let err = Platform::parse_list(["linux/amd64,darwin/arm65"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"darwin/arm65\""), "{err}");
    }

    #[test]
    fn rejects_malformed_platforms_naming_the_value() {
        for bad in [
            "",
            "amd65",
            "linux/",
            "/amd64",
            "linux/amd65",
            "linuks/amd64",
            "linux/arm/",
            "linux/arm/v7/x",
            "linux/arm/v-7",
            "linux/arm/v77777777777777777",
            "linux amd64",
            "linux/am\nd64",
            "linux/ämd64",
            "linux//amd64",
            "linux/*",
            "windows(10.0.17763)/amd64",
            "linux/arm,64",
        ] {
            let err = match bad.parse::<Platform>() {
                Ok(p) => panic!("{bad:?} was accepted as {p}"),
                Err(err) => err,
            };
            assert!(
                matches!(
                    err,
                    Error::InvalidOption {
                        field: OptionField::Platform,
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
            let err = err.to_string();
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
