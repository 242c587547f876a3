//! Values written in `docker buildx build` syntax, one file per kind (in the
//! spirit of buildx's `util/buildflags`): each is a type with `FromStr` and a
//! `Display` that parses back to the same value.
//!
//! The library never names a command-line flag: a value that cannot be used is
//! [`Error::InvalidOption`](crate::Error::InvalidOption) with a typed
//! [`OptionField`], and each front end words it itself (`--secret` on the
//! command line, `secrets=` in Python, `build.secrets` in a pipeline file).

mod annotation;
mod attest;
mod ulimit;

use std::fmt;

pub use annotation::{Annotation, AnnotationKind};
pub use attest::{Attest, AttestKind};
pub use ulimit::{Ulimit, UlimitName};

mod shm_size;
pub use shm_size::ShmSize;

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
    /// The file the build's metadata JSON is written to.
    MetadataFile,
    /// The file the image ID is written to.
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
            OptionField::Keepalive => "keepalive",
            OptionField::MetadataFile => "metadata file",
            OptionField::IidFile => "image ID file",
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
