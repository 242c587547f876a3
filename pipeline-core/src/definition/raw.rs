//! The definition as read, before parameters are substituted: each section's keys and values
//! with their positions, read with the typed [`Map`] reader.

use super::error::DefinitionError;
use super::reader::{scalar, wrong_type, Map, Str};
use super::{yaml, PipelineDefinition};

pub(super) const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "parameters",
    "source",
    "build",
    "chart",
];
pub(super) const SOURCE_KEYS: &[&str] = &[
    "git",
    "local",
    "ref",
    "context",
    "token-env",
    "token-file",
    "token",
    "username",
];
pub(super) const BUILD_KEYS: &[&str] = &[
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
    "pool-tls",
];
/// `build.pool-tls`: the `--tlscacert`, `--tlscert`, `--tlskey`, `--tlsservername` and
/// `--tls-skip-verify` of the command line.
pub(super) const POOL_TLS_KEYS: &[&str] = &["ca", "cert", "key", "server-name", "skip-verify"];
pub(super) const CACHE_KEYS: &[&str] = &["ref", "mode", "import", "export"];
pub(super) const CHART_KEYS: &[&str] = &[
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
pub(super) const AUTHOR_KEYS: &[&str] = &["name", "email"];
pub(super) const VALUES_KEYS: &[&str] = &["file", "images"];
pub(super) const IMAGE_KEYS: &[&str] = &["tag", "repository", "digest", "image"];

#[derive(Debug, Clone)]
pub(super) enum RawLocation {
    Git(Str),
    Local(Str),
}

#[derive(Debug, Clone)]
pub(super) struct RawSource {
    pub(super) location: RawLocation,
    pub(super) git_ref: Option<Str>,
    pub(super) context: Option<Str>,
    pub(super) token: Option<RawToken>,
    pub(super) username: Option<Str>,
    pub(super) line: usize,
    pub(super) column: usize,
}

#[derive(Debug, Clone)]
pub(super) enum RawToken {
    Env(Str),
    File(Str),
}

#[derive(Debug, Clone)]
pub(super) enum RawCache {
    Ref(Str),
    Full {
        reference: Str,
        mode: Option<Str>,
        import: Option<bool>,
        export: Option<bool>,
    },
}

#[derive(Debug, Clone)]
pub(super) struct RawBuild {
    pub(super) dockerfile: Option<Str>,
    pub(super) images: Vec<Str>,
    pub(super) push: Option<bool>,
    pub(super) push_pos: (usize, usize),
    pub(super) cache: Option<RawCache>,
    pub(super) network: Option<Str>,
    pub(super) build_args: Vec<(Str, Str)>,
    pub(super) labels: Vec<(Str, Str)>,
    pub(super) target: Option<Str>,
    pub(super) platforms: Vec<Str>,
    pub(super) no_cache: Option<bool>,
    pub(super) docker_config: Option<Str>,
    pub(super) pull: Option<bool>,
    pub(super) provenance: Option<Str>,
    pub(super) sbom: Option<Str>,
    pub(super) attest: Vec<Str>,
    pub(super) annotations: Vec<Str>,
    pub(super) shm_size: Option<Str>,
    pub(super) ulimits: Vec<Str>,
    pub(super) cgroup_parent: Option<Str>,
    /// `build.pool` (a scalar is a list of one), `build.pool-key` and `build.pool-tls`.
    pub(super) pool: Option<Vec<Str>>,
    pub(super) pool_key: Option<Str>,
    pub(super) pool_tls: Option<RawPoolTls>,
}

/// `build.pool-tls`: TLS for the pool's `tcp://` daemons.
#[derive(Debug, Clone)]
pub(super) struct RawPoolTls {
    pub(super) ca: Option<Str>,
    pub(super) cert: Option<Str>,
    pub(super) key: Option<Str>,
    pub(super) server_name: Option<Str>,
    pub(super) skip_verify: bool,
    /// Where the block starts.
    pub(super) line: usize,
    pub(super) column: usize,
}

#[derive(Debug, Clone)]
pub(super) struct RawImage {
    pub(super) tag: Str,
    pub(super) repository: Option<Str>,
    pub(super) digest: Option<Str>,
    pub(super) image: Option<Str>,
}

#[derive(Debug, Clone)]
pub(super) struct RawValues {
    pub(super) file: Str,
    pub(super) images: Vec<RawImage>,
}

#[derive(Debug, Clone)]
pub(super) struct RawChart {
    pub(super) repo: Str,
    pub(super) branch: Option<Str>,
    pub(super) push_branch: Option<Str>,
    pub(super) token: Option<RawToken>,
    pub(super) username: Option<Str>,
    pub(super) author_name: Option<Str>,
    pub(super) author_email: Option<Str>,
    pub(super) message: Option<Str>,
    pub(super) retry_timeout: Option<Str>,
    pub(super) values: Vec<RawValues>,
}

/// Reads `token-env` / `token-file`, refusing `token`.
pub(super) fn read_token(map: &Map<'_>) -> Result<Option<RawToken>, DefinitionError> {
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
    pub(super) fn read_source(top: &Map<'_>) -> Result<RawSource, DefinitionError> {
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

    pub(super) fn read_build(top: &Map<'_>) -> Result<RawBuild, DefinitionError> {
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
        let pool_tls = match map.opt_map("pool-tls", POOL_TLS_KEYS)? {
            Some(_) if pool.is_none() => {
                return Err(map.invalid("pool-tls", "`pool-tls` only applies with `pool`"))
            }
            Some(tls) => {
                if POOL_TLS_KEYS.iter().all(|key| !tls.has(key)) {
                    return Err(map.invalid(
                        "pool-tls",
                        "give at least one of `ca`, `cert` and `key`, `server-name`, `skip-verify`",
                    ));
                }
                Some(RawPoolTls {
                    ca: tls.opt_str("ca")?,
                    cert: tls.opt_str("cert")?,
                    key: tls.opt_str("key")?,
                    server_name: tls.opt_str("server-name")?,
                    skip_verify: tls.opt_bool("skip-verify")?.unwrap_or(false),
                    line: tls.node.line,
                    column: tls.node.column,
                })
            }
            None => None,
        };
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
            pool_tls,
        })
    }

    pub(super) fn read_chart(map: &Map<'_>) -> Result<RawChart, DefinitionError> {
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
}
