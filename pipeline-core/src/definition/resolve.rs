//! Resolving a definition: parameters substituted, every value validated at its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cicd_agents_buildkit::flags::{Attest, NetworkMode, Platform};
use cicd_agents_buildkit::pool::check_address;
use cicd_agents_buildkit::TlsOptions;
use cicd_agents_types::ImageTag;

use super::checks::{
    buildx_value, check_branch, check_git_ref, check_git_url, check_relative, expand_home,
    image_ref, refused,
};
use super::error::DefinitionError;
use super::params;
use super::raw::{RawCache, RawChart, RawLocation, RawPoolTls, RawToken};
use super::reader::Str;
use super::{
    BuildSpec, CacheSpec, ChartImage, ChartSpec, ImageName, Pipeline, PipelineDefinition, PoolSpec,
    Source, SourceLocation, TokenSource, ValuesTarget, DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME,
};
use crate::git::{Author, MessageTemplate};
use crate::values::{DigestPin, ImageKeys, KeyPath};

impl PipelineDefinition {
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
                        cicd_agents_buildkit::Error::InvalidAddress {
                            address, reason, ..
                        } => at.invalid(
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
                let tls = match &b.pool_tls {
                    Some(raw) => Some(self.resolve_pool_tls(raw, &sub, &path_of)?),
                    None => None,
                };
                Some(PoolSpec {
                    addresses,
                    key,
                    tls,
                })
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

    /// `build.pool-tls`: each path against the definition's directory and refused empty at
    /// its line; the client certificate and key together and a server name a handshake takes,
    /// as connecting checks them (`TlsOptions::check`). The files are read when a daemon is
    /// dialled.
    fn resolve_pool_tls(
        &self,
        raw: &RawPoolTls,
        sub: &dyn Fn(&Str) -> Result<String, DefinitionError>,
        path_of: &dyn Fn(String) -> PathBuf,
    ) -> Result<TlsOptions, DefinitionError> {
        let file = self.file.as_str();
        let path = |value: &Option<Str>| -> Result<Option<PathBuf>, DefinitionError> {
            let Some(at) = value else {
                return Ok(None);
            };
            let text = sub(at)?;
            if text.trim().is_empty() || text.chars().any(char::is_control) {
                return Err(at.invalid(file, "expected the path of a PEM file"));
            }
            Ok(Some(path_of(text)))
        };
        let tls = TlsOptions::default()
            .with_paths(
                path(&raw.ca)?,
                path(&raw.cert)?,
                path(&raw.key)?,
                raw.server_name.as_ref().map(sub).transpose()?,
            )
            .insecure_skip_verify(raw.skip_verify);
        match tls.check() {
            Ok(()) => Ok(tls),
            Err(cicd_agents_buildkit::Error::Tls { path, reason }) => {
                // A path names the half of the client certificate given alone.
                let at = match path {
                    Some(path) if tls.cert.as_ref() == Some(&path) => raw.cert.as_ref(),
                    Some(path) if tls.key.as_ref() == Some(&path) => raw.key.as_ref(),
                    Some(_) => None,
                    None => raw.server_name.as_ref(),
                };
                Err(match at {
                    Some(at) => at.invalid(file, reason),
                    None => DefinitionError::Invalid {
                        file: file.to_string(),
                        line: raw.line,
                        column: raw.column,
                        key: "build.pool-tls".into(),
                        reason,
                    },
                })
            }
            Err(other) => Err(DefinitionError::Invalid {
                file: file.to_string(),
                line: raw.line,
                column: raw.column,
                key: "build.pool-tls".into(),
                reason: other.to_string(),
            }),
        }
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
