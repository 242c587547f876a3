//! Image references and tags as `distribution/reference` (and so buildx) parses them.

use std::fmt;
use std::str::FromStr;

/// The registry a reference without a registry host means.
const DOCKER_HUB: &str = "docker.io";
/// A reference's name (registry and repository) is at most this long.
const NAME_MAX: usize = 255;

/// An image tag by distribution's grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
///
/// ```
/// use cicd_agents_types::ImageTag;
/// let tag: ImageTag = "v1.2.3-rc_1".parse().unwrap();
/// assert_eq!(tag.as_str(), "v1.2.3-rc_1");
/// assert!("-x".parse::<ImageTag>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageTag(String);

/// A text that is not an [`ImageTag`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image tag {tag:?}: a tag is 1 to 128 characters of [A-Za-z0-9_.-] and does not start with `.` or `-`")]
pub struct ImageTagError {
    /// The text as given.
    pub tag: String,
}

impl ImageTag {
    /// Validates `tag`.
    pub fn new(tag: impl Into<String>) -> Result<ImageTag, ImageTagError> {
        let tag = tag.into();
        if is_tag(&tag) {
            Ok(ImageTag(tag))
        } else {
            Err(ImageTagError { tag })
        }
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl FromStr for ImageTag {
    type Err = ImageTagError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ImageTag::new(text)
    }
}

impl TryFrom<&str> for ImageTag {
    type Error = ImageTagError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        ImageTag::new(text)
    }
}

impl fmt::Display for ImageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ImageTag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A docker image reference: `[registry[:port]/]path[:tag][@algorithm:hex]`, as
/// `distribution/reference` parses it for buildx and the Docker CLI.
///
/// * The registry is the first `/`-separated component when it contains a `.` or a `:`, is
///   `localhost`, or has upper-case letters; otherwise the reference is on Docker Hub.
/// * Repository path components are lower-case `[a-z0-9]+` joined by `.`, `_`, `__` or
///   runs of `-`; the name (registry and path) is at most 255 characters.
/// * The tag follows [`ImageTag`]; the digest is `sha256:` (64), `sha384:` (96) or
///   `sha512:` (128) lower-case hex digits.
///
/// Normalisation: the reference keeps the text as written ([`Display`](fmt::Display),
/// [`AsRef<str>`]); [`ImageRef::registry`] says `docker.io` for Docker Hub (also when written
/// `index.docker.io`); [`ImageRef::repository`] is the path as written (`app`, not
/// `library/app`); [`ImageRef::normalized`] is the fully spelled-out form the daemon sees
/// (`docker.io/library/app:latest`).
///
/// ```
/// use cicd_agents_types::{ImageRef, ImageTag};
/// let image: ImageRef = "app".parse().unwrap();
/// assert_eq!(image.registry(), "docker.io");
/// assert_eq!(image.normalized(), "docker.io/library/app:latest");
/// let tagged = image.with_tag("2".parse::<ImageTag>().unwrap());
/// assert_eq!(tagged.to_string(), "app:2");
/// assert!("Bad Tag!!".parse::<ImageRef>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    text: String,
    domain: Option<String>,
    path: String,
    tag: Option<ImageTag>,
    digest: Option<String>,
}

/// A text that is not an [`ImageRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ImageRefError {
    /// The text as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ImageRef {
    /// The registry host (with its port, if written), `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        match self.domain.as_deref() {
            None | Some("index.docker.io") => DOCKER_HUB,
            Some(domain) => domain,
        }
    }

    /// The repository path as written, without the registry (`team/app`, `app`).
    pub fn repository(&self) -> &str {
        &self.path
    }

    /// The registry as written, if the reference names one.
    pub fn written_registry(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The name as written: registry (if written) and repository, without tag and digest.
    pub fn name(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The tag, if one is written.
    pub fn tag(&self) -> Option<&ImageTag> {
        self.tag.as_ref()
    }

    /// The digest (`sha256:…`), if one is written.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same reference with `tag` as its tag (a digest is kept).
    pub fn with_tag(&self, tag: ImageTag) -> ImageRef {
        let mut text = self.name();
        text.push(':');
        text.push_str(tag.as_str());
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest);
        }
        ImageRef {
            text,
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag),
            digest: self.digest.clone(),
        }
    }

    /// The fully spelled-out reference: `docker.io/library/` for official Hub images, and
    /// `:latest` when neither a tag nor a digest is written.
    pub fn normalized(&self) -> String {
        let registry = self.registry();
        let mut text = if registry == DOCKER_HUB && !self.path.contains('/') {
            format!("{registry}/library/{}", self.path)
        } else {
            format!("{registry}/{}", self.path)
        };
        match (&self.tag, &self.digest) {
            (None, None) => text.push_str(":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    text.push(':');
                    text.push_str(tag.as_str());
                }
                if let Some(digest) = digest {
                    text.push('@');
                    text.push_str(digest);
                }
            }
        }
        text
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn parse(text: &str) -> Result<ImageRef, ImageRefError> {
        let fail = |reason: String| ImageRefError {
            reference: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("the reference is empty".into()));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("it contains spaces or control characters".into()));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(fail)?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(colon) => {
                let tag = &rest[last_slash + colon + 1..];
                let tag = ImageTag::new(tag).map_err(|err| fail(err.to_string()))?;
                (&rest[..last_slash + colon], Some(tag))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(fail("the repository name is empty".into()));
        }
        if name.len() > NAME_MAX {
            return Err(fail(format!(
                "the repository name is longer than {NAME_MAX} characters"
            )));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                check_domain(first).map_err(fail)?;
                (Some(first.to_string()), path)
            }
            _ => (None, name),
        };
        check_path(path).map_err(fail)?;
        Ok(ImageRef {
            text: text.to_string(),
            domain,
            path: path.to_string(),
            tag,
            digest,
        })
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "digest {digest:?} is not algorithm:hex (e.g. sha256:…)"
        ));
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "digest algorithm {algorithm:?} is not sha256, sha384 or sha512"
            ))
        }
    };
    if hex.len() != length || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "a {algorithm} digest is {length} lower-case hex digits"
        ));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    let bad = || format!("{domain:?} is not a registry host[:port]");
    let (host, port) = if let Some(after) = domain.strip_prefix('[') {
        let (address, tail) = after.split_once(']').ok_or_else(bad)?;
        address.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        match tail {
            "" => (None, None),
            _ => (None, Some(tail.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let component_ok = |part: &str| {
            !part.is_empty()
                && part.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        };
        if !host.split('.').all(component_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if is_path_component(component) {
            continue;
        }
        if is_path_component(&component.to_ascii_lowercase()) {
            return Err(format!("repository name must be lowercase ({component:?})"));
        }
        if component.is_empty() {
            return Err("the repository path has an empty component".into());
        }
        return Err(format!(
            "{component:?} is not a repository path component (lower-case letters and digits, separated by `.`, `_`, `__` or `-`)"
        ));
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(bytes[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[start..index];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(text)
    }
}

impl TryFrom<&str> for ImageRef {
    type Error = ImageRefError;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        ImageRef::parse(text)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for ImageRef {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

crate::serde_as_string!(ImageTag);
crate::serde_as_string!(ImageRef);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        /// Text, registry, repository, tag, digest.
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            ("app", "docker.io", "app", None, None),
            ("app:1", "docker.io", "app", Some("1"), None),
            ("org/app:1", "docker.io", "org/app", Some("1"), None),
            ("localhost/app", "localhost", "app", None, None),
            (
                "localhost:5000/a/b:x",
                "localhost:5000",
                "a/b",
                Some("x"),
                None,
            ),
            (
                "reg.example/team/app",
                "reg.example",
                "team/app",
                None,
                None,
            ),
            (
                "index.docker.io/org/app",
                "docker.io",
                "org/app",
                None,
                None,
            ),
            ("[::1]:5000/app:2", "[::1]:5000", "app", Some("2"), None),
            (
                "a__b-c---d/f_g.h:T.9",
                "docker.io",
                "a__b-c---d/f_g.h",
                Some("T.9"),
                None,
            ),
            (
                "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "docker.io",
                "app",
                None,
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
        ];
        for (text, registry, repository, tag, digest) in cases {
            let image: ImageRef = text.parse().unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(image.registry(), *registry, "{text}");
            assert_eq!(image.repository(), *repository, "{text}");
            assert_eq!(image.tag().map(ImageTag::as_str), *tag, "{text}");
            assert_eq!(image.digest(), *digest, "{text}");
            assert_eq!(image.to_string(), *text);
        }
    }

    #[test]
    fn refuses_what_buildx_refuses() {
        for text in [
            "",
            "Bad Tag!!",
            "App:1",
            "app:",
            "app:-x",
            "app:.x",
            ":1",
            "/app",
            "app/",
            "a//b",
            "a..b",
            "a-/b",
            "_a",
            "reg.example/App",
            "re_g.example/app",
            "reg.example:port/app",
            "app@sha256:abc",
            "app@md5:0123456789abcdef0123456789abcdef",
            "app@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "app name",
            "app\n",
        ] {
            let err = text.parse::<ImageRef>().unwrap_err();
            assert_eq!(err.reference, text);
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
        let long = format!("{}:1", "a".repeat(256));
        assert!(long.parse::<ImageRef>().is_err());
        let tag = format!("app:{}", "t".repeat(129));
        assert!(tag.parse::<ImageRef>().is_err());
    }

    #[test]
    fn normalizes_and_retags() {
        let image: ImageRef = "org/app:1".parse().unwrap();
        assert_eq!(image.normalized(), "docker.io/org/app:1");
        assert_eq!(
            image.with_tag(ImageTag::new("2").unwrap()).as_str(),
            "org/app:2"
        );
        let reg: ImageRef = "reg:5000/app".parse().unwrap();
        assert_eq!(reg.normalized(), "reg:5000/app:latest");
        assert_eq!(reg.written_registry(), Some("reg:5000"));
        assert_eq!(reg.name(), "reg:5000/app");
    }

    #[test]
    fn tags() {
        for ok in ["1", "_x", "A.b-C_d", &"t".repeat(128)] {
            assert_eq!(ImageTag::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "a:b", "é", &"t".repeat(129)] {
            assert_eq!(ImageTag::new(bad).unwrap_err().tag, bad);
        }
        let json = serde_json::to_string(&ImageTag::new("v1").unwrap()).unwrap();
        assert_eq!(json, "\"v1\"");
        assert!(serde_json::from_str::<ImageTag>("\"-x\"").is_err());
    }
}
