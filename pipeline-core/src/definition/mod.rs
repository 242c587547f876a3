//! Pipeline definitions: a YAML file a platform engineer reads at a glance.
//!
//! ```yaml
//! # Build the app from git, push it with a registry cache, deploy it through the chart.
//! name: demo
//!
//! parameters:                    # defaults; override with --set NAME=VALUE
//!   image-tag: latest            # built-in (default latest)
//!   git-ref: refs/heads/main     # built-in (default refs/heads/main)
//!   dockerfile: Dockerfile       # built-in (default Dockerfile)
//!   registry: 127.0.0.1:5055     # your own parameters
//!
//! source:
//!   git: http://127.0.0.1:8418/demo-app.git   # or  local: ./app  (relative to this file)
//!   ref: ${git-ref}                           # the default
//!   context: .                                # subdirectory holding the build context
//!   token-env: GIT_TOKEN                      # or  token-file: /run/secrets/git-token
//!
//! build:
//!   dockerfile: ${dockerfile}                 # the default; relative to the context
//!   images:
//!     - ${registry}/demo/app:${image-tag}
//!   push: true
//!   cache: ${registry}/demo/app:buildcache    # imported, and exported with mode=max
//!   network: host                             # RUN steps use the host network
//!   build-args:
//!     BASE_IMAGE: ${registry}/base/busybox:1
//!   docker-config: ~/.docker                  # registry credentials (default: $DOCKER_CONFIG)
//!
//! chart:
//!   repo: http://127.0.0.1:8418/demo-chart.git
//!   branch: main
//!   push-branch: deploy/demo                  # optional: push here instead (PR flow)
//!   token-env: GIT_TOKEN
//!   author: {name: cicd-agents, email: cicd-agents@example.com}
//!   message: "demo: deploy {image}:{new_tag} (was {old_tag})"
//!   values:
//!     - file: charts/demo/values.yaml
//!       images:
//!         - repository: image.repository      # optional: also write the repository
//!           tag: image.tag
//!           digest: image.digest              # optional: `in-tag` writes tag@sha256:…
//! ```
//!
//! # Sections
//!
//! | key | meaning |
//! |---|---|
//! | `name` | Shown in reports and events (default: the file name). |
//! | `description` | Free text. |
//! | `parameters` | `name: default`. `image-tag`, `git-ref` and `dockerfile` always exist. |
//! | `source.git` / `source.local` | A git repository URL (`https://…/app.git`; plain `http://` only on loopback) or a local directory. Exactly one. |
//! | `source.ref` | Git ref to build (default `${git-ref}`): a branch, `refs/heads/…`, `refs/tags/…` or a commit. |
//! | `source.context` | Subdirectory of the source that is the build context (default: the root). |
//! | `source.token-env` / `source.token-file` | Where the token for a private source repository comes from. |
//! | `build.dockerfile` | Dockerfile path relative to the context (default `${dockerfile}`). |
//! | `build.images` | Image names; a name without a tag gets `:${image-tag}`. |
//! | `build.push` | Push the image (default `true`). |
//! | `build.cache` | A registry cache reference (imported, exported with `mode=max`), or `{ref, mode, import, export}`. |
//! | `build.network` | `default`, `host` or `none` for `RUN` steps. |
//! | `build.build-args`, `build.labels` | `NAME: value` maps. |
//! | `build.target`, `build.platforms`, `build.no-cache` | As in `docker buildx build` (`platforms`: a list; `local` is the machine running the pipeline). |
//! | `build.pull` | Always resolve base images from the registry (`--pull`). |
//! | `build.provenance`, `build.sbom` | `true`, `false` or attributes (`mode=max`; `generator=IMAGE`), as `--provenance`/`--sbom`; a pushed image gets `mode=min` provenance by default. |
//! | `build.attest` | A list of `--attest` specs (`type=sbom,generator=IMAGE`). |
//! | `build.annotations` | A list of `--annotation` values (`index:KEY=VALUE`). |
//! | `build.shm-size`, `build.ulimits`, `build.cgroup-parent` | `/dev/shm` size (`64m`), a list of `NAME=SOFT[:HARD]`, the parent cgroup of `RUN` steps. |
//! | `build.docker-config` | Directory holding `config.json` (or the file itself) with registry credentials. |
//! | `build.pool` | Build on a pool of BuildKit daemons: a list of addresses (`[tcp://a:1234, tcp://b:1234]`) or one address, e.g. `dns+tcp://buildkitd.ci.svc:1234` for the ready replicas of a headless Service. Sticky routing and failover as `cicd-agents build --pool`. |
//! | `build.pool-key` | The pool's routing key (default: the source repository URL without `#ref`, or the local context directory), so that a project keeps its daemon and warm cache. |
//! | `chart.repo`, `chart.branch` | The chart repository and the branch to update (default `main`). |
//! | `chart.push-branch` | Push the commit to this branch instead (created from `branch` if missing). |
//! | `chart.token-env` / `chart.token-file` / `chart.username` | The git token (HTTPS basic auth; user name default `x-access-token`). |
//! | `chart.author` | `{name, email}` of the commit (default `cicd-agents <cicd-agents@localhost>`). |
//! | `chart.retry-timeout` | How long a writer keeps re-applying the edit on a moved branch before it gives up, e.g. `5m` (default `2m`; units `ms`, `s`, `m`, `h`; a bare number is seconds). |
//! | `chart.message` | Commit message template: `{image}`, `{old_tag}`, `{new_tag}`, `{digest}`, `{source_commit}`, `{files}` (see [`crate::git::MessageTemplate`]). |
//! | `chart.values[].file` | A values file, relative to the chart repository's root. |
//! | `chart.values[].images[]` | `tag` (key path, required), `repository` (key path), `digest` (key path, or `in-tag`), `image` (which of `build.images`; default the first). |
//!
//! Tokens are never written in the file: a `token:` key is an error.
//!
//! # Parameters
//!
//! `${name}` in any string value is replaced by the parameter's value, `$$` writes `$`, and a
//! `$` before anything else stays as it is (see [`params`](self#parameters) below). Overrides
//! ([`PipelineDefinition::resolve`], `--set name=value`) must name existing parameters.
//! Values are read as written: `image-tag: 1.10` is the text `1.10`, not the number 1.1.
//!
//! # Errors
//!
//! Unknown keys, wrong types, missing keys and invalid values are errors that name the file,
//! line, column and key path:
//!
//! ```
//! use cicd_agents_pipeline::definition::PipelineDefinition;
//!
//! let text = "source:\n  git: https://git.example.com/app.git\nbuild:\n  imgaes: [app]\n";
//! let err = PipelineDefinition::parse(text, "pipeline.yaml").unwrap_err();
//! assert!(err.to_string().starts_with("pipeline.yaml:4:3: unknown key `build.imgaes`"));
//! ```
//!
//! # Example
//!
//! ```
//! use cicd_agents_pipeline::definition::{PipelineDefinition, SourceLocation};
//!
//! let text = r#"
//! source:
//!   git: https://git.example.com/org/app.git
//!   context: services/api
//!   token-env: GIT_TOKEN
//! build:
//!   images: [registry.example.com/org/api]
//!   cache: registry.example.com/org/api:buildcache
//! chart:
//!   repo: https://git.example.com/org/deploy.git
//!   token-env: GIT_TOKEN
//!   values:
//!     - file: charts/api/values.yaml
//!       images: [{tag: image.tag}]
//! "#;
//! let definition = PipelineDefinition::parse(text, "pipeline.yaml")?;
//! let pipeline = definition.resolve([("image-tag", "1.10")])?;
//! assert_eq!(pipeline.build.images[0].to_string(), "registry.example.com/org/api:1.10");
//! assert_eq!(
//!     pipeline.source.buildkit_context(),
//!     "https://git.example.com/org/app.git#refs/heads/main:services/api"
//! );
//! assert!(matches!(pipeline.source.location, SourceLocation::Git { .. }));
//!
//! // Unknown parameters are errors.
//! assert!(definition.resolve([("image_tag", "1.10")]).is_err());
//! # Ok::<(), cicd_agents_pipeline::definition::DefinitionError>(())
//! ```

mod error;
mod params;
mod reader;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use cicd_agents_buildkit::flags::{Annotation, Attest, NetworkMode, Platform, ShmSize, Ulimit};
use cicd_agents_buildkit::pool::{check_address, routing_key, PoolError};
use cicd_agents_buildkit::{BuilderPool, TlsOptions};
use cicd_agents_types::{
    BranchName, GitRef, GitUrl, GitUrlScheme, ImageRef, ImageRefError, ImageTag,
};
use serde::Serialize;

pub use error::DefinitionError;
pub use params::{parse_override, valid_name as valid_parameter_name, BUILTIN_PARAMETERS};

use crate::git::{Author, GitAuth, MessageTemplate};
use crate::values::{DigestPin, ImageKeys, KeyPath};
use reader::{scalar, wrong_type, Map, Str};

/// The default commit author.
pub const DEFAULT_AUTHOR_NAME: &str = "cicd-agents";
/// The default commit author's e-mail.
pub const DEFAULT_AUTHOR_EMAIL: &str = "cicd-agents@localhost";

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "parameters",
    "source",
    "build",
    "chart",
];
const SOURCE_KEYS: &[&str] = &[
    "git",
    "local",
    "ref",
    "context",
    "token-env",
    "token-file",
    "token",
    "username",
];
const BUILD_KEYS: &[&str] = &[
    "dockerfile",
    "images",
    "push",
    "cache",
    "network",
    "build-args",
    "labels",
    "target",
    "platforms",
    "no-cache",
    "docker-config",
    "pull",
    "provenance",
    "sbom",
    "attest",
    "annotations",
    "shm-size",
    "ulimits",
    "cgroup-parent",
    "pool",
    "pool-key",
];
const CACHE_KEYS: &[&str] = &["ref", "mode", "import", "export"];
const CHART_KEYS: &[&str] = &[
    "repo",
    "branch",
    "push-branch",
    "token-env",
    "token-file",
    "token",
    "username",
    "author",
    "message",
    "retry-timeout",
    "values",
];
const AUTHOR_KEYS: &[&str] = &["name", "email"];
const VALUES_KEYS: &[&str] = &["file", "images"];
const IMAGE_KEYS: &[&str] = &["tag", "repository", "digest", "image"];

/// Where a git token comes from. Never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenSource {
    /// An environment variable (`token-env: VAR`).
    Env(String),
    /// A file (`token-file: PATH`); a trailing newline is removed.
    File(PathBuf),
}

impl TokenSource {
    /// Reads the token, with `username` as basic-auth user (default `x-access-token`).
    pub fn load(&self, username: Option<&str>) -> Result<GitAuth, crate::error::GitError> {
        let mut auth = match self {
            TokenSource::Env(var) => GitAuth::from_env(var)?,
            TokenSource::File(path) => GitAuth::from_file(path)?,
        };
        if let Some(user) = username {
            auth.username = user.to_string();
        }
        Ok(auth)
    }
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "${var}"),
            TokenSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Where the source comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceLocation {
    /// A git repository fetched by BuildKit.
    Git {
        /// The repository URL (no credentials).
        url: String,
        /// The ref to build.
        git_ref: String,
    },
    /// A local directory sent through the session.
    Local {
        /// The directory (absolute, or relative to the working directory).
        dir: PathBuf,
    },
}

/// The application source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Git repository or local directory.
    pub location: SourceLocation,
    /// Subdirectory that is the build context (empty: the root).
    pub context: String,
    /// Token for a private git repository.
    pub token: Option<TokenSource>,
    /// Basic-auth user name for the token (git: default `x-access-token`).
    pub username: Option<String>,
}

impl Source {
    /// The context as BuildKit takes it: `URL#ref[:subdir]` for git, the directory otherwise.
    pub fn buildkit_context(&self) -> String {
        match &self.location {
            SourceLocation::Git { url, git_ref } => {
                if self.context.is_empty() {
                    format!("{url}#{git_ref}")
                } else {
                    format!("{url}#{git_ref}:{}", self.context)
                }
            }
            SourceLocation::Local { dir } => self
                .local_context_dir()
                .unwrap_or_else(|| dir.clone())
                .display()
                .to_string(),
        }
    }

    /// For a local source, the context directory (`dir/context`).
    pub fn local_context_dir(&self) -> Option<PathBuf> {
        match &self.location {
            SourceLocation::Local { dir } if self.context.is_empty() => Some(dir.clone()),
            SourceLocation::Local { dir } => Some(dir.join(&self.context)),
            SourceLocation::Git { .. } => None,
        }
    }
}

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
}

impl PoolSpec {
    /// The pool, reaching `tcp://` daemons with `tls`. Nothing is dialled yet.
    pub fn builder_pool(&self, tls: TlsOptions) -> Result<BuilderPool, PoolError> {
        BuilderPool::new(&self.addresses, tls)
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

/// Parses a buildx-syntax value of the definition, reporting a refusal at its line.
fn buildx_value<T>(file: &str, at: &Str, value: &str) -> Result<T, DefinitionError>
where
    T: std::str::FromStr<Err = cicd_agents_buildkit::Error>,
{
    value
        .parse::<T>()
        .map_err(|err| refused(file, at, value, err))
}

/// A value of the definition the library refused, reported at its line.
fn refused(file: &str, at: &Str, value: &str, err: cicd_agents_buildkit::Error) -> DefinitionError {
    match err {
        cicd_agents_buildkit::Error::InvalidOption {
            value: bad, reason, ..
        } => {
            let shown = if bad.is_empty() {
                value.to_string()
            } else {
                bad
            };
            at.invalid(file, format!("`{shown}`: {reason}"))
        }
        other => at.invalid(file, other.to_string()),
    }
}

/// One image in a values file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartImage {
    /// Where the tag (and repository, digest) go.
    pub keys: ImageKeys,
    /// Index into [`BuildSpec::images`] of the image written here.
    pub image: usize,
}

impl Serialize for ChartImage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ChartImage", 4)?;
        st.serialize_field("tag", &self.keys.tag.to_string())?;
        st.serialize_field(
            "repository",
            &self.keys.repository.as_ref().map(|k| k.to_string()),
        )?;
        let digest = match &self.keys.digest {
            DigestPin::None => None,
            DigestPin::InTag => Some("in-tag".to_string()),
            DigestPin::Key(k) => Some(k.to_string()),
        };
        st.serialize_field("digest", &digest)?;
        st.serialize_field("image", &self.image)?;
        st.end()
    }
}

/// One values file and the images in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValuesTarget {
    /// Path relative to the chart repository's root.
    pub file: PathBuf,
    /// The images to set.
    pub images: Vec<ChartImage>,
}

/// The chart update.
#[derive(Debug, Clone, Serialize)]
pub struct ChartSpec {
    /// Repository URL.
    pub repo: String,
    /// Branch to update.
    pub branch: String,
    /// Branch to push to instead (pull-request flow).
    pub push_branch: Option<String>,
    /// Where the token comes from.
    pub token: Option<TokenSource>,
    /// Basic-auth user name for the token.
    pub username: Option<String>,
    /// Commit author.
    #[serde(serialize_with = "serialize_author")]
    pub author: Author,
    /// Commit message template, as written (parsed when resolving, so it is known to be valid).
    pub message: Option<String>,
    /// How long to keep retrying a push that lost a race (`None`: the default, 2 minutes).
    #[serde(
        rename = "retry_timeout_seconds",
        serialize_with = "serialize_opt_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_timeout: Option<std::time::Duration>,
    /// Values files.
    pub values: Vec<ValuesTarget>,
}

fn serialize_opt_seconds<S: serde::Serializer>(
    d: &Option<std::time::Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn serialize_author<S: serde::Serializer>(a: &Author, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{} <{}>", a.name, a.email))
}

impl ChartSpec {
    /// The retry policy of the chart's write-back: `retry-timeout` with the default backoff.
    pub fn retry_policy(&self) -> crate::git::RetryPolicy {
        self.retry_timeout
            .map(crate::git::RetryPolicy::with_timeout)
            .unwrap_or_default()
    }

    /// The parsed message template (the default when none is given).
    pub fn message_template(&self) -> Result<MessageTemplate, crate::error::GitError> {
        match &self.message {
            Some(m) => MessageTemplate::parse(m),
            None => Ok(MessageTemplate::default()),
        }
    }
}

/// A resolved pipeline: parameters substituted, every value validated.
#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    /// Name for reports.
    pub name: String,
    /// The parameter values used.
    pub parameters: BTreeMap<String, String>,
    /// The source.
    pub source: Source,
    /// The build.
    pub build: BuildSpec,
    /// The chart update, if any.
    pub chart: Option<ChartSpec>,
}

/// A parsed (not yet resolved) pipeline definition.
#[derive(Debug, Clone)]
pub struct PipelineDefinition {
    file: String,
    base_dir: PathBuf,
    name: Option<Str>,
    /// Defaults, built-ins first; each with the position of its definition, if any.
    parameters: Vec<(String, Str)>,
    source: RawSource,
    build: RawBuild,
    chart: Option<RawChart>,
}

#[derive(Debug, Clone)]
enum RawLocation {
    Git(Str),
    Local(Str),
}

#[derive(Debug, Clone)]
struct RawSource {
    location: RawLocation,
    git_ref: Option<Str>,
    context: Option<Str>,
    token: Option<RawToken>,
    username: Option<Str>,
    line: usize,
    column: usize,
}

#[derive(Debug, Clone)]
enum RawToken {
    Env(Str),
    File(Str),
}

#[derive(Debug, Clone)]
enum RawCache {
    Ref(Str),
    Full {
        reference: Str,
        mode: Option<Str>,
        import: Option<bool>,
        export: Option<bool>,
    },
}

#[derive(Debug, Clone)]
struct RawBuild {
    dockerfile: Option<Str>,
    images: Vec<Str>,
    push: Option<bool>,
    push_pos: (usize, usize),
    cache: Option<RawCache>,
    network: Option<Str>,
    build_args: Vec<(Str, Str)>,
    labels: Vec<(Str, Str)>,
    target: Option<Str>,
    platforms: Vec<Str>,
    no_cache: Option<bool>,
    docker_config: Option<Str>,
    pull: Option<bool>,
    provenance: Option<Str>,
    sbom: Option<Str>,
    attest: Vec<Str>,
    annotations: Vec<Str>,
    shm_size: Option<Str>,
    ulimits: Vec<Str>,
    cgroup_parent: Option<Str>,
    /// `build.pool` (a scalar is a list of one) and `build.pool-key`.
    pool: Option<Vec<Str>>,
    pool_key: Option<Str>,
}

#[derive(Debug, Clone)]
struct RawImage {
    tag: Str,
    repository: Option<Str>,
    digest: Option<Str>,
    image: Option<Str>,
}

#[derive(Debug, Clone)]
struct RawValues {
    file: Str,
    images: Vec<RawImage>,
}

#[derive(Debug, Clone)]
struct RawChart {
    repo: Str,
    branch: Option<Str>,
    push_branch: Option<Str>,
    token: Option<RawToken>,
    username: Option<Str>,
    author_name: Option<Str>,
    author_email: Option<Str>,
    message: Option<Str>,
    retry_timeout: Option<Str>,
    values: Vec<RawValues>,
}

/// Reads `token-env` / `token-file`, refusing `token`.
fn read_token(map: &Map<'_>) -> Result<Option<RawToken>, DefinitionError> {
    if map.has("token") {
        return Err(map.invalid(
            "token",
            "inline tokens are not allowed; use `token-env: VARIABLE` or `token-file: PATH`",
        ));
    }
    let env = map.opt_str("token-env")?;
    let file = map.opt_str("token-file")?;
    match (env, file) {
        (Some(_), Some(_)) => Err(map.invalid(
            "token-file",
            "give either `token-env` or `token-file`, not both",
        )),
        (Some(env), None) => Ok(Some(RawToken::Env(env))),
        (None, Some(file)) => Ok(Some(RawToken::File(file))),
        (None, None) => Ok(None),
    }
}

impl PipelineDefinition {
    /// Reads and parses a definition file. Relative paths in it (`source.local`,
    /// `token-file`, `build.docker-config`) are relative to the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DefinitionError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut definition = Self::parse(&text, &path.display().to_string())?;
        definition.base_dir = base_dir;
        Ok(definition)
    }

    /// Parses a definition from text; `origin` names it in errors. Relative paths are relative
    /// to the working directory (see [`PipelineDefinition::with_base_dir`]).
    pub fn parse(text: &str, origin: &str) -> Result<Self, DefinitionError> {
        let file = origin.to_string();
        let root = yaml::parse(text).map_err(|e| DefinitionError::Syntax {
            file: file.clone(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let Some(root) = root else {
            return Err(DefinitionError::MissingKey {
                file,
                line: 1,
                column: 1,
                key: "source".into(),
            });
        };
        let top = Map::new(&file, "", &root, TOP_KEYS)?;
        let name = top.opt_str("name")?;
        let _description = top.opt_str("description")?;

        // Parameters: built-ins first, then the file's (which may change built-in defaults).
        let mut parameters: Vec<(String, Str)> = BUILTIN_PARAMETERS
            .iter()
            .map(|(n, d)| {
                (
                    n.to_string(),
                    Str {
                        value: d.to_string(),
                        key: format!("parameters.{n}"),
                        line: 0,
                        column: 0,
                    },
                )
            })
            .collect();
        for (name, default) in top.opt_str_map("parameters")?.unwrap_or_default() {
            if !params::valid_name(&name.value) {
                return Err(name.invalid(
                    &file,
                    "a parameter name is letters, digits, `-` and `_`, starting with a letter or digit",
                ));
            }
            match parameters.iter_mut().find(|(n, _)| *n == name.value) {
                Some(slot) => slot.1 = default,
                None => parameters.push((name.value.clone(), default)),
            }
        }

        let source = Self::read_source(&top)?;
        let build = Self::read_build(&top)?;
        let chart = match top.opt_map("chart", CHART_KEYS)? {
            Some(chart) => Some(Self::read_chart(&chart)?),
            None => None,
        };
        Ok(Self {
            file,
            base_dir: PathBuf::from("."),
            name,
            parameters,
            source,
            build,
            chart,
        })
    }

    /// Sets the directory relative paths are resolved against.
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = dir.into();
        self
    }

    /// The name used in errors (the file path).
    pub fn origin(&self) -> &str {
        &self.file
    }

    /// The parameters and their defaults.
    pub fn parameters(&self) -> BTreeMap<String, String> {
        self.parameters
            .iter()
            .map(|(n, s)| (n.clone(), s.value.clone()))
            .collect()
    }

    fn read_source(top: &Map<'_>) -> Result<RawSource, DefinitionError> {
        let map = top.map("source", SOURCE_KEYS)?;
        let git = map.opt_str("git")?;
        let local = map.opt_str("local")?;
        let location = match (git, local) {
            (Some(_), Some(_)) => {
                return Err(map.invalid("local", "give either `git` or `local`, not both"))
            }
            (Some(git), None) => RawLocation::Git(git),
            (None, Some(local)) => RawLocation::Local(local),
            (None, None) => {
                return Err(DefinitionError::MissingKey {
                    file: map.file.to_string(),
                    line: map.node.line,
                    column: map.node.column,
                    key: "source.git (or source.local)".into(),
                })
            }
        };
        let git_ref = map.opt_str("ref")?;
        if matches!(location, RawLocation::Local(_)) && git_ref.is_some() {
            return Err(map.invalid("ref", "`ref` only applies to a `git` source"));
        }
        Ok(RawSource {
            location,
            git_ref,
            context: map.opt_str("context")?,
            token: read_token(&map)?,
            username: map.opt_str("username")?,
            line: map.node.line,
            column: map.node.column,
        })
    }

    fn read_build(top: &Map<'_>) -> Result<RawBuild, DefinitionError> {
        let map = top.map("build", BUILD_KEYS)?;
        if map.get("images").is_none() {
            return Err(map.missing("images"));
        }
        let images = map.opt_str_list("images")?.unwrap_or_default();
        if images.is_empty() {
            return Err(map.invalid("images", "at least one image name is needed"));
        }
        let cache = match map.get("cache") {
            None => None,
            Some(node) if matches!(node.value, yaml::Value::Scalar { .. }) => {
                scalar(map.file, &map.key_path("cache"), node)?.map(RawCache::Ref)
            }
            Some(node) if matches!(node.value, yaml::Value::Mapping(_)) => {
                let cache = Map::new(map.file, &map.key_path("cache"), node, CACHE_KEYS)?;
                Some(RawCache::Full {
                    reference: cache.str("ref")?,
                    mode: cache.opt_str("mode")?,
                    import: cache.opt_bool("import")?,
                    export: cache.opt_bool("export")?,
                })
            }
            Some(node) => {
                return Err(wrong_type(
                    map.file,
                    &map.key_path("cache"),
                    node,
                    "a cache reference or a mapping {ref, mode, import, export}",
                ))
            }
        };
        let pool = match map.get("pool") {
            None => None,
            Some(node) if matches!(node.value, yaml::Value::Scalar { .. }) => {
                scalar(map.file, &map.key_path("pool"), node)?.map(|address| vec![address])
            }
            Some(node) if matches!(node.value, yaml::Value::Sequence(_)) => {
                let addresses = map.opt_str_list("pool")?.unwrap_or_default();
                if addresses.is_empty() {
                    return Err(map.invalid("pool", "a builder pool needs at least one address"));
                }
                Some(addresses)
            }
            Some(node) => {
                return Err(wrong_type(
                    map.file,
                    &map.key_path("pool"),
                    node,
                    "a BuildKit address or a list of addresses",
                ))
            }
        };
        let pool_key = map.opt_str("pool-key")?;
        if pool_key.is_some() && pool.is_none() {
            return Err(map.invalid("pool-key", "`pool-key` only applies with `pool`"));
        }
        let push_pos = map
            .get("push")
            .map(|n| (n.line, n.column))
            .unwrap_or((map.node.line, map.node.column));
        Ok(RawBuild {
            dockerfile: map.opt_str("dockerfile")?,
            images,
            push: map.opt_bool("push")?,
            push_pos,
            cache,
            network: map.opt_str("network")?,
            build_args: map.opt_str_map("build-args")?.unwrap_or_default(),
            labels: map.opt_str_map("labels")?.unwrap_or_default(),
            target: map.opt_str("target")?,
            platforms: map.opt_str_list("platforms")?.unwrap_or_default(),
            no_cache: map.opt_bool("no-cache")?,
            docker_config: map.opt_str("docker-config")?,
            pull: map.opt_bool("pull")?,
            provenance: map.opt_str("provenance")?,
            sbom: map.opt_str("sbom")?,
            attest: map.opt_str_list("attest")?.unwrap_or_default(),
            annotations: map.opt_str_list("annotations")?.unwrap_or_default(),
            shm_size: map.opt_str("shm-size")?,
            ulimits: map.opt_str_list("ulimits")?.unwrap_or_default(),
            cgroup_parent: map.opt_str("cgroup-parent")?,
            pool,
            pool_key,
        })
    }

    fn read_chart(map: &Map<'_>) -> Result<RawChart, DefinitionError> {
        let (author_name, author_email) = match map.opt_map("author", AUTHOR_KEYS)? {
            Some(author) => (author.opt_str("name")?, author.opt_str("email")?),
            None => (None, None),
        };
        let mut values = Vec::new();
        let entries = map
            .opt_seq("values")?
            .ok_or_else(|| map.missing("values"))?;
        if entries.is_empty() {
            return Err(map.invalid("values", "at least one values file is needed"));
        }
        for (path, node) in entries {
            let entry = Map::new(map.file, &path, node, VALUES_KEYS)?;
            let file = entry.str("file")?;
            let mut images = Vec::new();
            let items = entry
                .opt_seq("images")?
                .ok_or_else(|| entry.missing("images"))?;
            if items.is_empty() {
                return Err(entry.invalid("images", "at least one image entry is needed"));
            }
            for (image_path, image_node) in items {
                let image = Map::new(map.file, &image_path, image_node, IMAGE_KEYS)?;
                images.push(RawImage {
                    tag: image.str("tag")?,
                    repository: image.opt_str("repository")?,
                    digest: image.opt_str("digest")?,
                    image: image.opt_str("image")?,
                });
            }
            values.push(RawValues { file, images });
        }
        Ok(RawChart {
            repo: map.str("repo")?,
            branch: map.opt_str("branch")?,
            push_branch: map.opt_str("push-branch")?,
            token: read_token(map)?,
            username: map.opt_str("username")?,
            author_name,
            author_email,
            message: map.opt_str("message")?,
            retry_timeout: map.opt_str("retry-timeout")?,
            values,
        })
    }

    /// Resolves the definition with parameter `overrides` (`name`, `value`): every `${…}` is
    /// substituted and every value validated. Unknown parameter names are errors.
    pub fn resolve<I, K, V>(&self, overrides: I) -> Result<Pipeline, DefinitionError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let file = self.file.as_str();
        let mut values: BTreeMap<String, String> = self.parameters();
        let mut overridden: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in overrides {
            let (name, value) = (name.as_ref(), value.as_ref());
            if !values.contains_key(name) {
                return Err(DefinitionError::UnknownParameter {
                    name: name.to_string(),
                    known: values.keys().cloned().collect(),
                });
            }
            values.insert(name.to_string(), value.to_string());
            overridden.insert(name.to_string(), value.to_string());
        }
        // Built-in parameters are checked where they come from (override or definition).
        let check = |name: &str, check: &dyn Fn(&str) -> Result<(), String>| {
            let value = values.get(name).cloned().unwrap_or_default();
            check(&value).map_err(|reason| match overridden.get(name) {
                Some(v) => DefinitionError::InvalidOverride {
                    text: format!("{name}={v}"),
                    reason,
                },
                None => {
                    let at = self
                        .parameters
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, s)| s);
                    match at {
                        Some(s) if s.line > 0 => s.invalid(file, reason),
                        _ => DefinitionError::InvalidOverride {
                            text: format!("{name}={value}"),
                            reason,
                        },
                    }
                }
            })
        };
        check("image-tag", &|v| {
            ImageTag::new(v).map(drop).map_err(|e| e.to_string())
        })?;
        check("git-ref", &check_git_ref)?;
        check("dockerfile", &|v| check_relative(v, "the Dockerfile path"))?;

        let sub = |s: &Str| params::substitute(file, s, &values);
        let sub_opt = |s: &Option<Str>| s.as_ref().map(sub).transpose();
        let path_of = |text: String| -> PathBuf {
            let p = expand_home(&text);
            if p.is_absolute() {
                p
            } else {
                self.base_dir.join(p)
            }
        };

        // Source.
        let raw = &self.source;
        let context = match &raw.context {
            Some(c) => {
                let text = sub(c)?;
                let trimmed = text.trim_matches('/').trim_start_matches("./").to_string();
                let trimmed = if trimmed == "." {
                    String::new()
                } else {
                    trimmed
                };
                if !trimmed.is_empty() {
                    check_relative(&trimmed, "the context").map_err(|r| c.invalid(file, r))?;
                    if trimmed.contains(['#', ':']) {
                        return Err(c.invalid(file, "the context path cannot contain `#` or `:`"));
                    }
                }
                trimmed
            }
            None => String::new(),
        };
        let location = match &raw.location {
            RawLocation::Git(url) => {
                let text = sub(url)?;
                check_git_url(&text).map_err(|r| url.invalid(file, r))?;
                let git_ref = match &raw.git_ref {
                    Some(r) => {
                        let text = sub(r)?;
                        check_git_ref(&text).map_err(|reason| r.invalid(file, reason))?;
                        text
                    }
                    None => values.get("git-ref").cloned().unwrap_or_default(),
                };
                SourceLocation::Git { url: text, git_ref }
            }
            RawLocation::Local(dir) => SourceLocation::Local {
                dir: path_of(sub(dir)?),
            },
        };
        let source = Source {
            location,
            context,
            token: self.resolve_token(&raw.token, &values, &path_of)?,
            username: sub_opt(&raw.username)?,
        };
        if matches!(source.location, SourceLocation::Local { .. }) && source.token.is_some() {
            return Err(DefinitionError::Invalid {
                file: file.to_string(),
                line: raw.line,
                column: raw.column,
                key: "source.token-env".into(),
                reason: "a token only applies to a `git` source".into(),
            });
        }

        // Build.
        let b = &self.build;
        let image_tag = values.get("image-tag").cloned().unwrap_or_default();
        let mut images = Vec::new();
        for image in &b.images {
            let text = sub(image)?;
            let name = ImageName::parse(&text, &image_tag)
                .map_err(|r| image.invalid(file, format!("{r} (in `{text}`)")))?;
            images.push(name);
        }
        let dockerfile = match &b.dockerfile {
            Some(d) => {
                let text = sub(d)?;
                check_relative(&text, "the Dockerfile path").map_err(|r| d.invalid(file, r))?;
                text
            }
            None => values.get("dockerfile").cloned().unwrap_or_default(),
        };
        let push = b.push.unwrap_or(true);
        let cache = match &b.cache {
            None => None,
            Some(RawCache::Ref(r)) => {
                let reference = image_ref(file, r, &sub(r)?)?;
                Some(CacheSpec {
                    reference,
                    mode: "max".into(),
                    import: true,
                    export: true,
                })
            }
            Some(RawCache::Full {
                reference,
                mode,
                import,
                export,
            }) => {
                let text = image_ref(file, reference, &sub(reference)?)?;
                let mode_text = match mode {
                    Some(m) => {
                        let v = sub(m)?;
                        if v != "max" && v != "min" {
                            return Err(m.invalid(file, format!("`{v}`: expected max or min")));
                        }
                        v
                    }
                    None => "max".into(),
                };
                Some(CacheSpec {
                    reference: text,
                    mode: mode_text,
                    import: import.unwrap_or(true),
                    export: export.unwrap_or(true),
                })
            }
        };
        let network: Option<NetworkMode> = match &b.network {
            Some(n) => Some(buildx_value(file, n, &sub(n)?)?),
            None => None,
        };
        let mut build_args = BTreeMap::new();
        for (k, v) in &b.build_args {
            build_args.insert(k.value.clone(), sub(v)?);
        }
        let mut labels = BTreeMap::new();
        for (k, v) in &b.labels {
            labels.insert(k.value.clone(), sub(v)?);
        }
        let mut platforms = Vec::new();
        for raw in &b.platforms {
            let text = sub(raw)?;
            platforms.extend(
                Platform::parse_list([&text]).map_err(|err| refused(file, raw, &text, err))?,
            );
        }
        let platforms = Platform::dedup(platforms);
        let mut attests: Vec<Attest> = Vec::new();
        for (raw, shorthand) in [
            (&b.provenance, Attest::provenance as fn(&str) -> _),
            (&b.sbom, Attest::sbom),
        ] {
            if let Some(raw) = raw {
                let value = sub(raw)?;
                attests.push(shorthand(&value).map_err(|err| match err {
                    cicd_agents_buildkit::Error::InvalidOption { reason, .. } => {
                        raw.invalid(file, format!("`{value}`: {reason}"))
                    }
                    other => raw.invalid(file, other.to_string()),
                })?);
            }
        }
        for raw in &b.attest {
            let attest: Attest = buildx_value(file, raw, &sub(raw)?)?;
            if attests.iter().any(|a| a.kind == attest.kind) {
                return Err(raw.invalid(
                    file,
                    format!("a second {} attestation; give each type once", attest.kind),
                ));
            }
            attests.push(attest);
        }
        let mut annotations = Vec::new();
        for raw in &b.annotations {
            annotations.push(buildx_value(file, raw, &sub(raw)?)?);
        }
        let mut ulimits = Vec::new();
        for raw in &b.ulimits {
            ulimits.push(buildx_value(file, raw, &sub(raw)?)?);
        }
        let shm_size = match &b.shm_size {
            Some(raw) => Some(buildx_value(file, raw, &sub(raw)?)?),
            None => None,
        };
        let cgroup_parent = match &b.cgroup_parent {
            Some(raw) => {
                let value = sub(raw)?;
                if value.trim().is_empty() || value.chars().any(char::is_control) {
                    return Err(raw.invalid(file, "expected a cgroup path, e.g. /ci or ci.slice"));
                }
                Some(value)
            }
            None => None,
        };
        let pool = match &b.pool {
            Some(raw) => {
                let mut addresses: Vec<String> = Vec::new();
                for at in raw {
                    let text = sub(at)?;
                    let address = check_address(&text).map_err(|err| match err {
                        cicd_agents_buildkit::Error::InvalidAddress { address, reason } => at
                            .invalid(
                                file,
                                format!("`{address}` is not a BuildKit address: {reason}"),
                            ),
                        other => refused(file, at, &text, other),
                    })?;
                    if addresses.contains(&address) {
                        return Err(
                            at.invalid(file, format!("`{address}` is listed twice in the pool"))
                        );
                    }
                    addresses.push(address);
                }
                let key = match &b.pool_key {
                    Some(raw) => {
                        let key = sub(raw)?;
                        if key.trim().is_empty() {
                            return Err(raw.invalid(file, "the routing key is empty"));
                        }
                        Some(key)
                    }
                    None => None,
                };
                Some(PoolSpec { addresses, key })
            }
            None => None,
        };
        let build = BuildSpec {
            dockerfile,
            images,
            push,
            cache,
            network,
            build_args,
            labels,
            target: sub_opt(&b.target)?,
            platforms,
            no_cache: b.no_cache.unwrap_or(false),
            docker_config: sub_opt(&b.docker_config)?.map(path_of),
            pull: b.pull.unwrap_or(false),
            attests,
            annotations,
            shm_size,
            ulimits,
            cgroup_parent,
            pool,
        };

        let chart = match &self.chart {
            Some(c) => Some(self.resolve_chart(c, &build, &values, &path_of)?),
            None => None,
        };
        if chart.is_some() && !build.push {
            return Err(DefinitionError::Invalid {
                file: file.to_string(),
                line: b.push_pos.0,
                column: b.push_pos.1,
                key: "build.push".into(),
                reason: "the chart update needs a pushed image; set `push: true` or remove `chart`"
                    .into(),
            });
        }
        let name = match &self.name {
            Some(n) => sub(n)?,
            None => Path::new(&self.file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into()),
        };
        Ok(Pipeline {
            name,
            parameters: values.clone(),
            source,
            build,
            chart,
        })
    }

    fn resolve_token(
        &self,
        token: &Option<RawToken>,
        values: &BTreeMap<String, String>,
        path_of: &dyn Fn(String) -> PathBuf,
    ) -> Result<Option<TokenSource>, DefinitionError> {
        let file = self.file.as_str();
        Ok(match token {
            None => None,
            Some(RawToken::Env(var)) => {
                let name = params::substitute(file, var, values)?;
                let ok = !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(var.invalid(
                        file,
                        format!(
                            "`{name}` is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                        ),
                    ));
                }
                Some(TokenSource::Env(name))
            }
            Some(RawToken::File(path)) => Some(TokenSource::File(path_of(params::substitute(
                file, path, values,
            )?))),
        })
    }

    fn resolve_chart(
        &self,
        c: &RawChart,
        build: &BuildSpec,
        values: &BTreeMap<String, String>,
        path_of: &dyn Fn(String) -> PathBuf,
    ) -> Result<ChartSpec, DefinitionError> {
        let file = self.file.as_str();
        let sub = |s: &Str| params::substitute(file, s, values);
        let sub_opt = |s: &Option<Str>| s.as_ref().map(sub).transpose();
        let repo = sub(&c.repo)?;
        check_git_url(&repo).map_err(|r| c.repo.invalid(file, r))?;
        let branch = match &c.branch {
            Some(b) => {
                let v = sub(b)?;
                check_branch(&v).map_err(|r| b.invalid(file, r))?;
                v
            }
            None => "main".into(),
        };
        let push_branch = match &c.push_branch {
            Some(b) => {
                let v = sub(b)?;
                check_branch(&v).map_err(|r| b.invalid(file, r))?;
                Some(v)
            }
            None => None,
        };
        let author = Author {
            name: sub_opt(&c.author_name)?.unwrap_or_else(|| DEFAULT_AUTHOR_NAME.into()),
            email: sub_opt(&c.author_email)?.unwrap_or_else(|| DEFAULT_AUTHOR_EMAIL.into()),
        };
        let message = match &c.message {
            Some(m) => {
                let text = sub(m)?;
                MessageTemplate::parse(&text).map_err(|e| m.invalid(file, e.to_string()))?;
                Some(text)
            }
            None => None,
        };
        let retry_timeout = match &c.retry_timeout {
            Some(t) => Some(
                cicd_agents_types::duration::parse_positive_duration(&sub(t)?)
                    .map_err(|r| t.invalid(file, r))?,
            ),
            None => None,
        };
        let mut targets = Vec::new();
        for v in &c.values {
            let path = sub(&v.file)?;
            check_relative(&path, "the values file").map_err(|r| v.file.invalid(file, r))?;
            let mut images = Vec::new();
            for img in &v.images {
                let key = |s: &Str| -> Result<KeyPath, DefinitionError> {
                    let text = sub(s)?;
                    KeyPath::parse(&text).map_err(|e| s.invalid(file, e.to_string()))
                };
                let tag = key(&img.tag)?;
                let repository = img.repository.as_ref().map(key).transpose()?;
                let digest = match &img.digest {
                    None => DigestPin::None,
                    Some(d) if d.value == "in-tag" => DigestPin::InTag,
                    Some(d) => DigestPin::Key(key(d)?),
                };
                let index = match &img.image {
                    None => 0,
                    Some(sel) => {
                        let text = sub(sel)?;
                        build
                            .images
                            .iter()
                            .position(|i| i.to_string() == text || i.repository == text)
                            .ok_or_else(|| {
                                let names: Vec<String> =
                                    build.images.iter().map(ToString::to_string).collect();
                                sel.invalid(
                                    file,
                                    format!(
                                        "`{text}` is not one of build.images ({})",
                                        names.join(", ")
                                    ),
                                )
                            })?
                    }
                };
                images.push(ChartImage {
                    keys: ImageKeys {
                        tag,
                        repository,
                        digest,
                    },
                    image: index,
                });
            }
            targets.push(ValuesTarget {
                file: PathBuf::from(path),
                images,
            });
        }
        Ok(ChartSpec {
            repo,
            branch,
            push_branch,
            token: self.resolve_token(&c.token, values, path_of)?,
            username: sub_opt(&c.username)?,
            author,
            message,
            retry_timeout,
            values: targets,
        })
    }
}

impl std::str::FromStr for PipelineDefinition {
    type Err = DefinitionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text, "<pipeline>")
    }
}

fn expand_home(text: &str) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(text)
}

fn check_relative(path: &str, what: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let p = Path::new(path);
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{what} `{path}` must be relative, without `..`"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// A git ref by git's own rules ([`GitRef`]) that BuildKit's `#ref:subdir` fragment can carry
/// (no `#`).
fn check_git_ref(r: &str) -> Result<(), String> {
    if r.contains('#') {
        return Err(format!(
            "`{r}`: a git ref in a BuildKit context cannot contain `#`"
        ));
    }
    GitRef::new(r)
        .map(drop)
        .map_err(|err| format!("`{}`: {}", err.name, err.reason))
}

/// A branch by git's own rules: the one [`BranchName`] the write-back uses too.
fn check_branch(b: &str) -> Result<(), String> {
    BranchName::new(b)
        .map(drop)
        .map_err(|err| format!("`{}`: {}", err.name, err.reason))
}

fn check_git_url(url: &str) -> Result<(), String> {
    let parsed = GitUrl::new(url).map_err(|err| {
        format!(
            "`{}` is not a URL ({}); expected https://host/org/repo.git",
            err.url, err.reason
        )
    })?;
    if !matches!(parsed.scheme(), GitUrlScheme::Https | GitUrlScheme::Http) {
        return Err(format!(
            "`{parsed}`: only https:// (or http:// on loopback) git URLs are supported"
        ));
    }
    if parsed.has_userinfo() {
        return Err("credentials in the URL are not allowed; use token-env or token-file".into());
    }
    if url.contains('#') {
        return Err(format!(
            "`{url}`: a git URL cannot contain `#` or spaces (use `ref` and `context`)"
        ));
    }
    if !url.trim_end_matches('/').ends_with(".git") {
        return Err(format!(
            "`{url}`: a git repository URL must end in `.git` (BuildKit reads other URLs as tarballs)"
        ));
    }
    Ok(())
}

/// An image reference of the definition (the one [`ImageRef`] parser), refused at its line.
fn image_ref(file: &str, at: &Str, text: &str) -> Result<ImageRef, DefinitionError> {
    text.parse::<ImageRef>().map_err(|err| {
        at.invalid(
            file,
            format!("`{text}` is not an image reference: {}", err.reason),
        )
    })
}

#[cfg(test)]
mod tests;
