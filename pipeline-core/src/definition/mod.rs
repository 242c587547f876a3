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
//! | `build.pool-tls` | TLS for the pool's `tcp://` daemons: a mapping of `ca`, `cert` and `key` (PEM files, relative to the definition; `cert` with `key`), `server-name` and `skip-verify`, as `--tlscacert`, `--tlscert`, `--tlskey`, `--tlsservername` and `--tls-skip-verify` give them ([`PoolSpec::tls`]). Only with `pool`. |
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

mod build;
mod chart;
mod checks;
mod error;
mod params;
mod raw;
mod reader;
mod resolve;
mod source;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use build::{BuildSpec, CacheSpec, ImageName, PoolSpec};
pub use chart::{ChartImage, ChartSpec, ValuesTarget};
pub use error::DefinitionError;
pub use params::{parse_override, valid_name as valid_parameter_name, BUILTIN_PARAMETERS};
pub use source::{Source, SourceLocation, TokenSource};

use raw::{RawBuild, RawChart, RawSource, CHART_KEYS, TOP_KEYS};
use reader::{Map, Str};
use serde::Serialize;

/// The default commit author.
pub const DEFAULT_AUTHOR_NAME: &str = "cicd-agents";
/// The default commit author's e-mail.
pub const DEFAULT_AUTHOR_EMAIL: &str = "cicd-agents@localhost";

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
}

impl std::str::FromStr for PipelineDefinition {
    type Err = DefinitionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text, "<pipeline>")
    }
}

#[cfg(test)]
mod tests;
