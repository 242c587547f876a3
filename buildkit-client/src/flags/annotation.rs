//! Image annotations (`--annotation [TYPE[PLATFORM]:]KEY=VALUE`), as buildx's
//! `ParseAnnotations` reads them and BuildKit's exporters take them.

use std::fmt;
use std::str::FromStr;

use super::OptionField;
use crate::error::{Error, Result};
use crate::flags::Platform;

/// Where an annotation is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnnotationKind {
    /// No type given: the exporter's default (the image manifest).
    Default,
    /// The image index (`index:`).
    Index,
    /// The index's descriptor (`index-descriptor:`).
    IndexDescriptor,
    /// The image manifest (`manifest:`).
    Manifest,
    /// The manifest's descriptor in the index (`manifest-descriptor:`).
    ManifestDescriptor,
}

impl AnnotationKind {
    /// The type as written before `:` (empty for [`AnnotationKind::Default`]).
    pub fn name(self) -> &'static str {
        match self {
            AnnotationKind::Default => "",
            AnnotationKind::Index => "index",
            AnnotationKind::IndexDescriptor => "index-descriptor",
            AnnotationKind::Manifest => "manifest",
            AnnotationKind::ManifestDescriptor => "manifest-descriptor",
        }
    }

    fn takes_platform(self) -> bool {
        matches!(
            self,
            AnnotationKind::Manifest | AnnotationKind::ManifestDescriptor
        )
    }
}

/// One annotation: `[TYPE[\[PLATFORM\]]:]KEY=VALUE`, e.g.
/// `index:org.opencontainers.image.title=app` or
/// `manifest[linux/amd64]:com.example.note=x`.
///
/// ```
/// use cicd_agents_buildkit::flags::{Annotation, AnnotationKind};
///
/// let a: Annotation = "index:org.opencontainers.image.title=app".parse()?;
/// assert_eq!(a.kind, AnnotationKind::Index);
/// assert_eq!(a.exporter_key(), "annotation-index.org.opencontainers.image.title");
/// # Ok::<(), cicd_agents_buildkit::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Where it is written.
    pub kind: AnnotationKind,
    /// For manifest annotations: only the manifest of this platform.
    pub platform: Option<Platform>,
    /// The annotation's key.
    pub key: String,
    /// Its value.
    pub value: String,
}

impl Annotation {
    /// The exporter attribute carrying it (`annotation-manifest[linux/amd64].KEY`).
    pub fn exporter_key(&self) -> String {
        let mut prefix = String::from("annotation");
        if self.kind != AnnotationKind::Default {
            prefix.push('-');
            prefix.push_str(self.kind.name());
        }
        if let Some(platform) = &self.platform {
            prefix.push_str(&format!("[{platform}]"));
        }
        format!("{prefix}.{}", self.key)
    }
}

fn is_type_char(c: char) -> bool {
    c.is_ascii_lowercase() || c == '-'
}

impl FromStr for Annotation {
    type Err = Error;
    fn from_str(text: &str) -> Result<Annotation> {
        let invalid = |reason: String| Error::invalid(OptionField::Annotation, text, reason);
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| invalid("expected [type:]key=value".into()))?;
        // `type[platform]:key` when the part before the first `:` has that shape;
        // otherwise the whole name is the key (keys may hold `:`).
        let mut kind = AnnotationKind::Default;
        let mut platform = None;
        let mut key = name;
        if let Some((prefix, rest)) = name.split_once(':') {
            let (type_name, bracket) = match prefix.split_once('[') {
                Some((t, p)) => (t, p.strip_suffix(']')),
                None => (prefix, None),
            };
            let platform_ok = bracket.is_some_and(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '-'))
            });
            let shaped = !type_name.is_empty()
                && type_name.chars().all(is_type_char)
                && (!prefix.contains('[') || platform_ok);
            if shaped {
                kind = match type_name {
                    "index" => AnnotationKind::Index,
                    "index-descriptor" => AnnotationKind::IndexDescriptor,
                    "manifest" => AnnotationKind::Manifest,
                    "manifest-descriptor" => AnnotationKind::ManifestDescriptor,
                    other => {
                        return Err(invalid(format!(
                        "unknown annotation type {other:?}; expected index, index-descriptor, manifest or manifest-descriptor"
                    )))
                    }
                };
                if let Some(p) = bracket {
                    if !kind.takes_platform() {
                        return Err(invalid(format!(
                            "a platform applies to manifest annotations only, not {type_name}"
                        )));
                    }
                    platform = Some(p.parse()?);
                }
                key = rest;
            }
        }
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(invalid(
                "the key must be non-empty with no white space".into(),
            ));
        }
        Ok(Annotation {
            kind,
            platform,
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != AnnotationKind::Default {
            f.write_str(self.kind.name())?;
            if let Some(platform) = &self.platform {
                write!(f, "[{platform}]")?;
            }
            f.write_str(":")?;
        }
        write!(f, "{}={}", self.key, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let plain: Annotation = "org.opencontainers.image.title=My App".parse().unwrap();
        assert_eq!(plain.kind, AnnotationKind::Default);
        assert_eq!(
            plain.exporter_key(),
            "annotation.org.opencontainers.image.title"
        );
        assert_eq!(plain.value, "My App");
        let index: Annotation = "index:a=1".parse().unwrap();
        assert_eq!(index.exporter_key(), "annotation-index.a");
        let desc: Annotation = "manifest-descriptor:a=b=c".parse().unwrap();
        assert_eq!(desc.exporter_key(), "annotation-manifest-descriptor.a");
        assert_eq!(desc.value, "b=c");
        let per_platform: Annotation = "manifest[linux/x86_64]:a=1".parse().unwrap();
        assert_eq!(
            per_platform.exporter_key(),
            "annotation-manifest[linux/amd64].a"
        );
        let colon_key: Annotation = "com.example:x=1".parse().unwrap();
        assert_eq!(colon_key.kind, AnnotationKind::Default);
        assert_eq!(colon_key.key, "com.example:x");
    }

    #[test]
    fn refuses_bad_annotations() {
        for bad in [
            "novalue",
            "=x",
            "layer:a=1",
            "index[linux/amd64]:a=1",
            "manifest[linux/amd65]:a=1",
            "manifest:=1",
            "a b=1",
        ] {
            let err = bad.parse::<Annotation>().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidOption {
                        field: OptionField::Annotation | OptionField::Platform,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn display_parses_back() {
        for text in [
            "a=1",
            "index:a=1",
            "index-descriptor:a=",
            "manifest[linux/arm/v7]:k=v w",
            "manifest-descriptor:k=a=b",
        ] {
            let a: Annotation = text.parse().unwrap();
            assert_eq!(a.to_string(), text);
            assert_eq!(a.to_string().parse::<Annotation>().unwrap(), a);
        }
    }
}
