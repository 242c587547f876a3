//! The keyword arguments of a build (`Client.build()`, `build_async()`, `build_stream()`,
//! `BuilderPool.build()`) parsed once into the library's `BuildOptions`.

use cicd_agents_buildkit::flags::{Annotation, Attest, Platform, ShmSize, Ulimit};

use cicd_agents_buildkit::build::{BuildOptions, NamedContext, Output};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyMapping, PyString};

use crate::convert::{mapping_items, path, spec_items, spec_value, str_list, str_map, type_name};
use crate::errors;

use crate::progress::Progress;

use super::specs::{
    add_hosts, cache_entry, context_options, dockerfile_content, key_values, output, registry_auth,
    secret, ssh_agents,
};

/// The build keywords, in the order the stub's `BuildOptions` declares them.
/// `Client.build`, `build_async`, `build_stream` and `BuilderPool.build` /
/// `build_async` take `(context, **options)` and parse `options` here, once.
pub(crate) const BUILD_KEYWORDS: &[&str] = &[
    "context_path",
    "file",
    "dockerfile_content",
    "tags",
    "build_args",
    "target",
    "platforms",
    "labels",
    "no_cache",
    "cache",
    "no_cache_filter",
    "pull",
    "network",
    "add_hosts",
    "secrets",
    "ssh",
    "build_contexts",
    "push",
    "load",
    "outputs",
    "output",
    "cache_from",
    "cache_to",
    "progress",
    "stream_logs",
    "metadata_file",
    "git_auth_tokens",
    "allow",
    "frontend_attrs",
    "registry_auth",
    "docker_config",
    "shared_key",
    "builder",
    "provenance",
    "sbom",
    "attest",
    "attests",
    "annotations",
    "shm_size",
    "ulimits",
    "cgroup_parent",
];

/// Keyword arguments being parsed: each is taken once by name; whatever is
/// left at the end is an unknown keyword.
pub(crate) struct Keywords<'py> {
    items: Vec<(String, Bound<'py, PyAny>)>,
}

impl<'py> Keywords<'py> {
    /// The keywords of a call (`**options`).
    pub(crate) fn new(options: Option<&Bound<'py, PyDict>>) -> PyResult<Keywords<'py>> {
        let mut items = Vec::new();
        if let Some(options) = options {
            for (key, value) in options.iter() {
                items.push((key.extract::<String>()?, value));
            }
        }
        Ok(Keywords { items })
    }

    /// Removes and returns `name`'s value; `None` when absent or given as None.
    pub(crate) fn take(&mut self, name: &str) -> Option<Bound<'py, PyAny>> {
        let index = self.items.iter().position(|(key, _)| key == name)?;
        let (_, value) = self.items.remove(index);
        (!value.is_none()).then_some(value)
    }

    /// A `str` keyword; a `TypeError` naming it otherwise.
    pub(crate) fn take_str(&mut self, name: &str) -> PyResult<Option<String>> {
        self.take(name)
            .map(|value| text_arg(&value, name))
            .transpose()
    }

    /// A `bool` keyword; a `TypeError` naming it otherwise.
    pub(crate) fn take_bool(&mut self, name: &str) -> PyResult<Option<bool>> {
        self.take(name)
            .map(|value| bool_arg(&value, name))
            .transpose()
    }

    /// Fails with `TypeError` on a keyword nobody took, as Python does.
    pub(crate) fn finish(self, function: &str) -> PyResult<()> {
        match self.items.first() {
            None => Ok(()),
            Some((name, _)) => Err(PyTypeError::new_err(format!(
                "{function}() got an unexpected keyword argument '{name}'"
            ))),
        }
    }
}

/// A `str` argument; a `TypeError` naming `name` otherwise.
pub(crate) fn text_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(text) => Ok(text.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name} must be a str, not {}",
            type_name(value)
        ))),
    }
}

/// A `bool` argument (exactly `True` or `False`); a `TypeError` naming `name` otherwise.
pub(crate) fn bool_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    match value.cast::<PyBool>() {
        Ok(flag) => Ok(flag.is_true()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{name} must be a bool, not {}",
            type_name(value)
        ))),
    }
}

/// The keyword arguments of a build, parsed: `Client.build()` / `build_async()` /
/// `build_stream()` and `BuilderPool.build()` / `build_async()`.
pub(crate) struct BuildArgs {
    pub(crate) prepared: Prepared,
    /// `stream_logs=True`: the call returns an iterator of text lines.
    pub(crate) stream_logs: bool,
    /// python-on-whales' `builder=`: the daemon the caller means.
    pub(crate) builder: Option<String>,
}

impl BuildArgs {
    /// Parses `(context, **options)`; `function` names the call in errors, `daemon` is the
    /// address the `"tty"` progress view names in its header (as the command line does; empty
    /// when not known before the build, for a pool).
    pub(crate) fn parse(
        function: &str,
        context: Option<&Bound<'_, PyAny>>,
        options: Keywords<'_>,
        daemon: &str,
    ) -> PyResult<BuildArgs> {
        let mut kw = options;
        let context = match (context.filter(|c| !c.is_none()), kw.take("context_path")) {
            (Some(_), Some(_)) => {
                return Err(PyTypeError::new_err(format!(
                    "{function}() got both context and context_path; give one"
                )))
            }
            (Some(context), None) => context.clone(),
            (None, Some(context)) => context,
            (None, None) => {
                return Err(PyTypeError::new_err(format!(
                    "{function}() missing the build context (a directory or URL)"
                )))
            }
        };
        let mut options = context_options(&context)?;
        if let Some(file) = kw.take("file") {
            options.dockerfile = Some(path(&file, "file")?);
        }
        if let Some(content) = kw.take("dockerfile_content") {
            if options.dockerfile_content.is_some() {
                return Err(errors::invalid_option(
                    "dockerfile_content",
                    "the context bytes are already a Dockerfile",
                ));
            }
            options.dockerfile_content = Some(dockerfile_content(&content)?);
        }
        options.tags = str_list(kw.take("tags").as_ref(), "tags")?;
        options.build_args = key_values(kw.take("build_args").as_ref(), "build_args")?;
        options.target = kw.take_str("target")?;
        options.platforms =
            Platform::parse_list(str_list(kw.take("platforms").as_ref(), "platforms")?)
                .map_err(errors::from_buildkit)?;
        options.labels = key_values(kw.take("labels").as_ref(), "labels")?;
        let no_cache = kw.take_bool("no_cache")?;
        let cache = kw.take_bool("cache")?;
        options.no_cache = match (no_cache, cache) {
            (Some(no_cache), Some(cache)) if no_cache == cache => {
                return Err(errors::invalid_option(
                    "no_cache",
                    "no_cache and cache (python-on-whales' inverse of it) disagree; give one",
                ))
            }
            (Some(no_cache), _) => no_cache,
            (None, Some(cache)) => !cache,
            (None, None) => false,
        };
        options.no_cache_filter = str_list(kw.take("no_cache_filter").as_ref(), "no_cache_filter")?;
        options.network = kw
            .take_str("network")?
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(errors::from_buildkit)?;
        options.add_hosts = add_hosts(kw.take("add_hosts").as_ref())?
            .iter()
            .map(|h| h.parse())
            .collect::<Result<_, _>>()
            .map_err(errors::from_buildkit)?;
        options.secrets = spec_items(kw.take("secrets").as_ref(), "secrets")?
            .iter()
            .map(secret)
            .collect::<PyResult<_>>()?;
        options.ssh = ssh_agents(kw.take("ssh").as_ref())?;
        if let Some(contexts) = kw.take("build_contexts") {
            let mapping = contexts.cast::<PyMapping>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "build_contexts must be a mapping {{name: dir | url | \"docker-image://ref\"}}, not {}",
                    type_name(&contexts)
                ))
            })?;
            for (name, value) in mapping_items(mapping, "build_contexts")? {
                let value = path(&value, "build_contexts")?
                    .to_string_lossy()
                    .into_owned();
                let named = NamedContext::parse(&value).map_err(errors::from_buildkit)?;
                options.build_contexts.insert(name, named);
            }
        }
        options.push = kw.take_bool("push")?.unwrap_or(false);
        let outputs = kw.take("outputs");
        let single = kw.take("output").filter(|o| !is_empty_mapping(o));
        let outputs = match (outputs, single) {
            (Some(_), Some(_)) => {
                return Err(errors::invalid_option(
                    "outputs",
                    "give outputs or output (python-on-whales' name), not both",
                ))
            }
            (outputs, single) => outputs.or(single),
        };
        options.outputs = spec_items(outputs.as_ref(), "outputs")?
            .iter()
            .map(output)
            .collect::<PyResult<_>>()?;
        if kw.take_bool("load")?.unwrap_or(false) {
            options
                .outputs
                .push(Output::new("docker", Vec::<(String, String)>::new()));
        }
        options.pull = kw.take_bool("pull")?.unwrap_or(false);
        // buildx puts --provenance and --sbom first, then every --attest.
        if let Some(value) = kw.take("provenance") {
            let value = attest_value(&value, "provenance")?;
            options
                .attests
                .push(Attest::provenance(&value).map_err(errors::from_buildkit)?);
        }
        if let Some(value) = kw.take("sbom") {
            let value = attest_value(&value, "sbom")?;
            options
                .attests
                .push(Attest::sbom(&value).map_err(errors::from_buildkit)?);
        }
        for keyword in ["attest", "attests"] {
            for item in spec_items(kw.take(keyword).as_ref(), keyword)? {
                let spec = attest_value(&item, keyword)?;
                options
                    .attests
                    .push(spec.parse::<Attest>().map_err(errors::from_buildkit)?);
            }
        }
        let annotations = match kw.take("annotations") {
            Some(map) if map.cast::<PyMapping>().is_ok() => str_map(Some(&map), "annotations")?
                .into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
            other => str_list(other.as_ref(), "annotations")?,
        };
        options.annotations = annotations
            .iter()
            .map(|text| text.parse::<Annotation>().map_err(errors::from_buildkit))
            .collect::<PyResult<_>>()?;
        if let Some(size) = kw.take("shm_size") {
            let text = spec_value(&size, "shm_size", "shm_size")?;
            options.shm_size = Some(text.parse::<ShmSize>().map_err(errors::from_buildkit)?);
        }
        options.ulimits = str_list(kw.take("ulimits").as_ref(), "ulimits")?
            .iter()
            .map(|text| text.parse::<Ulimit>().map_err(errors::from_buildkit))
            .collect::<PyResult<_>>()?;
        options.cgroup_parent = kw.take_str("cgroup_parent")?;
        options.cache_from = spec_items(kw.take("cache_from").as_ref(), "cache_from")?
            .iter()
            .map(|item| cache_entry(item, "cache_from"))
            .collect::<PyResult<_>>()?;
        options.cache_to = spec_items(kw.take("cache_to").as_ref(), "cache_to")?
            .iter()
            .map(|item| cache_entry(item, "cache_to"))
            .collect::<PyResult<_>>()?;
        options.registry_auth = registry_auth(
            kw.take("registry_auth").as_ref(),
            kw.take("docker_config").as_ref(),
        )?;
        for (host, token) in str_map(kw.take("git_auth_tokens").as_ref(), "git_auth_tokens")? {
            options = options.git_auth_token(host, token);
        }
        options.allow = str_list(kw.take("allow").as_ref(), "allow")?
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()
            .map_err(errors::from_buildkit)?;
        options.frontend_attrs.extend(key_values(
            kw.take("frontend_attrs").as_ref(),
            "frontend_attrs",
        )?);
        options.shared_key = kw.take_str("shared_key")?;
        // The library checks the destination before anything is sent and writes it after.
        options.metadata_file = kw
            .take("metadata_file")
            .map(|p| path(&p, "metadata_file"))
            .transpose()?;
        // python-on-whales' `progress=False` is no progress output.
        let progress = kw
            .take("progress")
            .filter(|p| !p.is_instance_of::<PyBool>() || p.is_truthy().unwrap_or(true));
        let progress = Progress::from_arg(progress.as_ref(), daemon)?;
        let stream_logs = kw.take_bool("stream_logs")?.unwrap_or(false);
        let builder = kw.take_str("builder")?;
        kw.finish(function)?;
        Ok(BuildArgs {
            prepared: Prepared { options, progress },
            stream_logs,
            builder,
        })
    }

    /// Refuses `builder=` unless it names `address` (the daemon this call builds on).
    pub(crate) fn check_builder(&self, address: &str) -> PyResult<()> {
        match &self.builder {
            None => Ok(()),
            Some(builder) if same_address(builder, address) => Ok(()),
            Some(builder) => Err(errors::invalid_option(
                "builder",
                format!(
                    "this client builds on {address}, not {builder:?}; \
connect a Client to that daemon's address (unix://, tcp:// or docker://) instead"
                ),
            )),
        }
    }
}

/// Whether `given` is `address` (both resolved the same way `Client(addr)` does).
fn same_address(given: &str, address: &str) -> bool {
    cicd_agents_buildkit::Address::resolve(Some(given))
        .map(|resolved| resolved.to_string() == address)
        .unwrap_or(false)
}

/// An attestation value as buildx takes it: `True` / `False`, a spec string, or
/// python-on-whales' dict form (`{"type": "sbom", "generator": "…"}` → `type=sbom,generator=…`).
fn attest_value(value: &Bound<'_, PyAny>, keyword: &str) -> PyResult<String> {
    if let Ok(mapping) = value.cast::<PyMapping>() {
        let fields = mapping_items(mapping, keyword)?
            .into_iter()
            .map(|(key, item)| Ok(format!("{key}={}", spec_value(&item, keyword, &key)?)))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(fields.join(","));
    }
    spec_value(value, keyword, keyword)
}

/// An empty dict: python-on-whales' default `output={}` (no output).
fn is_empty_mapping(value: &Bound<'_, PyAny>) -> bool {
    value.cast::<PyMapping>().ok().and_then(|m| m.len().ok()) == Some(0)
}

/// A build ready to run.
pub(crate) struct Prepared {
    pub(crate) options: BuildOptions,
    pub(crate) progress: Progress,
}
