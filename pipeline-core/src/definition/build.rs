//! The resolved `build` section: image names, cache, buildx options and the builder pool.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use cicd_agents_buildkit::flags::{Annotation, Attest, NetworkMode, Platform, ShmSize, Ulimit};
use cicd_agents_buildkit::pool::{routing_key, PoolError};
use cicd_agents_buildkit::{BuilderPool, TlsOptions};
use cicd_agents_types::{ImageRef, ImageRefError, ImageTag};
use serde::Serialize;

/// An image name split into repository and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// Everything before the tag, e.g. `registry.example.com:5000/team/app`.
    pub repository: String,
    /// The tag.
    pub tag: ImageTag,
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

impl Serialize for ImageName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl ImageName {
    /// Parses `repository[:tag]` as an image reference ([`ImageRef`], distribution's and so
    /// buildx's rules); a missing tag is `default_tag`. Digests (`@sha256:…`) are refused: the
    /// build produces the digest.
    pub fn parse(text: &str, default_tag: &str) -> Result<ImageName, String> {
        let reference: ImageRef = text.parse().map_err(|err: ImageRefError| err.reason)?;
        if reference.digest().is_some() {
            return Err("an image name to build cannot carry a digest (`@…`)".into());
        }
        let tag = match reference.tag() {
            Some(tag) => tag.clone(),
            None => ImageTag::new(default_tag).map_err(|e| e.to_string())?,
        };
        Ok(ImageName {
            repository: reference.name(),
            tag,
        })
    }
}

/// A registry build cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheSpec {
    /// The cache image reference.
    pub reference: ImageRef,
    /// `max` (all layers, the default) or `min`.
    pub mode: String,
    /// Import the cache (`--cache-from`).
    pub import: bool,
    /// Export the cache (`--cache-to`).
    pub export: bool,
}

/// The build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSpec {
    /// Dockerfile path relative to the context.
    pub dockerfile: String,
    /// Image names (at least one).
    pub images: Vec<ImageName>,
    /// Push the image.
    pub push: bool,
    /// Registry cache.
    pub cache: Option<CacheSpec>,
    /// Network mode of `RUN` steps (`default`, `host`, `none`).
    #[serde(serialize_with = "as_strings")]
    pub network: Option<NetworkMode>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// Stage to build.
    pub target: Option<String>,
    /// Target platforms, each once (an item may be a comma list, as `--platform`).
    #[serde(serialize_with = "as_strings")]
    pub platforms: Vec<Platform>,
    /// Ignore the cache.
    pub no_cache: bool,
    /// Docker configuration directory with registry credentials.
    pub docker_config: Option<PathBuf>,
    /// Always resolve base images from the registry.
    pub pull: bool,
    /// Attestations (`provenance`, `sbom`, then `attest`). Unlike `docker buildx build`, a
    /// pipeline adds no provenance unless `provenance` (or an `attest` entry) asks for one, as
    /// `buildctl build` does: a provenance holds the build's times, so a rebuild of the same source
    /// would otherwise push a new digest.
    #[serde(serialize_with = "as_strings")]
    pub attests: Vec<Attest>,
    /// Image annotations.
    #[serde(serialize_with = "as_strings")]
    pub annotations: Vec<Annotation>,
    /// Size of `/dev/shm` in `RUN` steps.
    #[serde(serialize_with = "as_strings")]
    pub shm_size: Option<ShmSize>,
    /// Resource limits of `RUN` steps.
    #[serde(serialize_with = "as_strings")]
    pub ulimits: Vec<Ulimit>,
    /// Parent cgroup of `RUN` steps.
    pub cgroup_parent: Option<String>,
    /// The daemons to build on (`build.pool`); `None`: the one daemon the caller gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSpec>,
}

/// A pool of BuildKit daemons to build on (`build.pool`, `build.pool-key`), with the
/// library's sticky routing and failover ([`BuilderPool`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolSpec {
    /// The daemons' addresses, normalized as the pool names them (`tcp://…`, `unix://…`,
    /// `docker://…`, or `dns+tcp://…` for the ready replicas of a headless Service).
    pub addresses: Vec<String>,
    /// The routing key; `None`: [`routing_key`] of the build (the source repository URL
    /// without its `#ref`, or the local context's directory).
    pub key: Option<String>,
    /// TLS for the `tcp://` daemons (`build.pool-tls`: `ca`, `cert`, `key`, `server-name`,
    /// `skip-verify`; paths resolved against the definition's directory, the files read when
    /// a daemon is dialled). `None`: plain TCP unless the caller gives TLS options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
}

impl PoolSpec {
    /// The pool, reaching `tcp://` daemons with `tls`. Nothing is dialled yet.
    pub fn builder_pool(&self, tls: TlsOptions) -> Result<BuilderPool, PoolError> {
        BuilderPool::new(&self.addresses, tls)
    }

    /// The definition's TLS options for the daemons (`build.pool-tls`; none without it).
    pub fn tls_options(&self) -> TlsOptions {
        self.tls.clone().unwrap_or_default()
    }

    /// The routing key of a build with `options`: `pool-key`, else [`routing_key`].
    pub fn routing_key(&self, options: &cicd_agents_buildkit::build::BuildOptions) -> String {
        self.key.clone().unwrap_or_else(|| routing_key(options))
    }
}

/// Serializes values in their buildx syntax (their `Display`).
fn as_strings<'a, S, T, I>(values: I, serializer: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    I: IntoIterator<Item = &'a T>,
    T: fmt::Display + 'a,
{
    serializer.collect_seq(values.into_iter().map(ToString::to_string))
}
