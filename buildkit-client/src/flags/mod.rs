//! Values written in `docker buildx build` syntax, one file per kind (in the
//! spirit of buildx's `util/buildflags`): each is a type with `FromStr` and a
//! `Display` that parses back to the same value.
//!
//! The library never names a command-line flag: a value that cannot be used is
//! [`Error::InvalidOption`](crate::Error::InvalidOption) with a typed
//! [`OptionField`], and each front end words it itself (`--secret` on the
//! command line, `secrets=` in Python, `build.secrets` in a pipeline file).
//!
//! | file | values |
//! |---|---|
//! | `secret.rs`, `ssh.rs` | `--secret`, `--ssh` |
//! | `output.rs`, `cache.rs`, `spec.rs` | `--output`, `--cache-from`/`--cache-to`, the `type=…,k=v` syntax; `--build-arg`/`--label` pairs |
//! | `platform.rs`, `network.rs`, `add_host.rs`, `entitlement.rs` | `--platform`, `--network`, `--add-host`, `--allow` |
//! | `named_context.rs` | `--build-context` |
//! | `attest.rs`, `annotation.rs` | `--attest`/`--provenance`/`--sbom`, `--annotation` |
//! | `shm_size.rs`, `ulimit.rs` | `--shm-size`, `--ulimit` (`--cgroup-parent` and `--pull` are plain values) |
//!
//! How a value reaches the daemon (frontend attributes, exporters) is the
//! business of `build::plan`; image names are validated by the shared types crate.

/// Declares a closed set of words as an enum (buildx's fixed vocabularies: `--network`,
/// `--allow`, attestation types, ulimit names) with `ALL`, `name()`, `Display`, and a
/// `FromStr` that refuses any other word with `InvalidOption` for the given field, listing
/// the words. A variant may take extra spellings after its word (`"default" | ""`): they
/// parse to it, `name()` gives the first.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident for $field:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal $(| $alias:literal)*),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $ty {
            $($(#[$vmeta])* $variant,)+
        }

        impl $ty {
            /// Every value, in the order declared.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The word as written.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $word,)+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::error::Error;
            fn from_str(text: &str) -> $crate::error::Result<$ty> {
                match text {
                    $($word $(| $alias)* => Ok($ty::$variant),)+
                    other => Err($crate::error::Error::invalid(
                        $crate::flags::OptionField::$field,
                        other,
                        $crate::flags::expected_words(&[$($word),+]),
                    )),
                }
            }
        }
    };
}

mod add_host;
mod annotation;
mod attest;
mod cache;
mod entitlement;
mod named_context;
mod network;
mod output;
mod platform;
mod secret;
mod shm_size;
mod spec;
pub(crate) mod ssh;
mod ulimit;

use std::fmt;

pub use add_host::AddHost;
pub use annotation::{Annotation, AnnotationKind};
pub use attest::{Attest, AttestKind};
pub use cache::CacheEntry;
pub use entitlement::Entitlement;
pub(crate) use named_context::is_remote;
pub use named_context::NamedContext;
pub use network::NetworkMode;
pub use output::Output;
pub use platform::{normalize_platform, Platform};
pub use secret::{Secret, SecretSource};
pub use shm_size::ShmSize;
pub use spec::{parse_key_values, TypedSpec};
pub use ssh::SshAgent;
pub use ulimit::{Ulimit, UlimitName};

/// Which build option a value belongs to: what an
/// [`Error::InvalidOption`](crate::Error::InvalidOption) is about.
///
/// `Display` gives a neutral name (`secret`, `cache export`); front ends map
/// the variant to their own vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OptionField {
    /// The build context.
    Context,
    /// The Dockerfile.
    Dockerfile,
    /// A build argument.
    BuildArg,
    /// An image label.
    Label,
    /// A target platform.
    Platform,
    /// The network mode of `RUN` steps.
    Network,
    /// An extra `/etc/hosts` entry.
    AddHost,
    /// A named context.
    BuildContext,
    /// A build secret.
    Secret,
    /// An SSH agent.
    Ssh,
    /// An image name.
    Tag,
    /// Pushing the image.
    Push,
    /// An output (exporter).
    Output,
    /// A cache import.
    CacheFrom,
    /// A cache export.
    CacheTo,
    /// An extra entitlement.
    Allow,
    /// A raw frontend attribute.
    FrontendAttr,
    /// The key for incremental context transfer.
    SharedKey,
    /// The progress output mode.
    Progress,
    /// An attestation (provenance, SBOM).
    Attest,
    /// An image annotation.
    Annotation,
    /// The size of `/dev/shm` in `RUN` steps.
    ShmSize,
    /// A resource limit of `RUN` steps.
    Ulimit,
    /// The parent cgroup of `RUN` steps.
    CgroupParent,
    /// The connection keepalive.
    Keepalive,
    /// The file a build's metadata is written to.
    MetadataFile,
    /// The file a build's image ID is written to.
    IidFile,
}

impl OptionField {
    /// The neutral name, as `Display` writes it.
    pub fn name(self) -> &'static str {
        match self {
            OptionField::Context => "context",
            OptionField::Dockerfile => "Dockerfile",
            OptionField::BuildArg => "build argument",
            OptionField::Label => "label",
            OptionField::Platform => "platform",
            OptionField::Network => "network mode",
            OptionField::AddHost => "extra host",
            OptionField::BuildContext => "named context",
            OptionField::Secret => "secret",
            OptionField::Ssh => "SSH agent",
            OptionField::Tag => "image name",
            OptionField::Push => "push",
            OptionField::Output => "output",
            OptionField::CacheFrom => "cache import",
            OptionField::CacheTo => "cache export",
            OptionField::Allow => "entitlement",
            OptionField::FrontendAttr => "frontend attribute",
            OptionField::SharedKey => "shared key",
            OptionField::Progress => "progress mode",
            OptionField::Attest => "attestation",
            OptionField::Annotation => "annotation",
            OptionField::ShmSize => "shm size",
            OptionField::Ulimit => "ulimit",
            OptionField::CgroupParent => "cgroup parent",
            OptionField::MetadataFile => "metadata file",
            OptionField::IidFile => "image ID file",
            OptionField::Keepalive => "keepalive",
        }
    }
}

impl fmt::Display for OptionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Go's `strconv.ParseBool`, which buildx uses for `true`/`false` values.
pub(crate) fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Splits `a=1,b=2` at commas, honouring double quotes as buildx's CSV parsing
/// does; fields are trimmed and empty ones dropped.
pub(crate) fn split_fields(spec: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in spec.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if !current.trim().is_empty() {
                    fields.push(current.trim().to_string());
                }
                current.clear();
            }
            _ => current.push(ch),
        }
    }
    if !current.trim().is_empty() {
        fields.push(current.trim().to_string());
    }
    fields
}

/// Writes `key=value` fields joined by `,`, quoting a field (CSV style) when it
/// holds a comma or a quote, so that the text splits back into the same fields.
pub(crate) fn write_fields<'a>(
    f: &mut fmt::Formatter<'_>,
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> fmt::Result {
    for (index, (key, value)) in fields.into_iter().enumerate() {
        if index > 0 {
            f.write_str(",")?;
        }
        let field = format!("{key}={value}");
        // Parsed fields never hold a double quote (the splitter consumes them).
        if field.contains(',') {
            write!(f, "\"{field}\"")?;
        } else {
            f.write_str(&field)?;
        }
    }
    Ok(())
}

/// `expected a, b or c`: the reason a closed set gives for a word it does not know.
pub(crate) fn expected_words(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("expected {} or {last}", rest.join(", "))
        }
        Some((only, _)) => format!("expected {only}"),
        None => "expected nothing".to_string(),
    }
}
