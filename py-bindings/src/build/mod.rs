//! Builds: the keyword arguments of `Client.build()` turned into the
//! library's `BuildOptions`, the build run blocking / as an awaitable / as an
//! event stream, and `BuildResult`.
//!
//! Every spec string is parsed by the library (`Output::parse`,
//! `CacheEntry::parse_import` / `parse_export`, `Secret::parse`,
//! `SshAgent::parse`, `NamedContext::parse`, `parse_key_values`); dicts are
//! handed to the library's constructors (`Output::new`, `CacheEntry::new`,
//! `Secret::file` / `env` / `value`). The bindings only convert types.

use cicd_agents_buildkit::flags::{Annotation, Attest, OptionField, Platform, ShmSize, Ulimit};
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};

use cicd_agents_buildkit::build::{
    parse_key_values, BuildContext, BuildOptions, BuildResult as RustBuildResult, CacheEntry,
    NamedContext, Output,
};
use cicd_agents_buildkit::progress::{PlainRenderer, ProgressSink, StatusUpdate};
use cicd_agents_buildkit::{Error as BuildkitError, RegistryAuth, Secret, SshAgent};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyMapping, PyString};
use tokio::task::JoinHandle;

use crate::convert::{
    json_to_py, mapping_items, path, spec_items, spec_value, str_list, str_map, to_dict, type_name,
};
use crate::errors;
use crate::progress::{events, CallbackFailure, Progress, Tee};
use crate::runtime::{awaitable, catch_panic, runtime, Task, TICK};

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

fn some<'a, 'py>(value: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    value.filter(|v| !v.is_none())
}

/// `KEY=VALUE` pairs: a mapping, or a list of `"KEY=VALUE"` (a bare `KEY`
/// takes its value from the environment, as the library does for the CLI).
fn key_values(
    value: Option<&Bound<'_, PyAny>>,
    option: &str,
) -> PyResult<std::collections::BTreeMap<String, String>> {
    match some(value) {
        None => Ok(Default::default()),
        Some(v) if v.cast::<PyMapping>().is_ok() => str_map(Some(v), option),
        Some(v) => {
            let items = str_list(Some(v), option)?;
            let field = match option {
                "labels" => OptionField::Label,
                "frontend_attrs" => OptionField::FrontendAttr,
                _ => OptionField::BuildArg,
            };
            parse_key_values(field, &items).map_err(errors::from_buildkit)
        }
    }
}

/// `{"type": kind, key: value, ...}` as the type and the attributes.
fn typed_dict(
    mapping: &Bound<'_, PyMapping>,
    option: &str,
) -> PyResult<(String, Vec<(String, String)>)> {
    let mut kind = None;
    let mut attrs = Vec::new();
    for (key, value) in mapping_items(mapping, option)? {
        if key == "type" {
            kind = Some(spec_value(&value, option, &key)?);
        } else {
            attrs.push((key.clone(), spec_value(&value, option, &key)?));
        }
    }
    let kind = kind.ok_or_else(|| {
        errors::invalid_option(
            option,
            "a dict needs a \"type\" key, e.g. {\"type\": \"registry\", \"ref\": \"...\"}",
        )
    })?;
    Ok((kind, attrs))
}

fn output(item: &Bound<'_, PyAny>) -> PyResult<Output> {
    if let Ok(mapping) = item.cast::<PyMapping>() {
        let (kind, attrs) = typed_dict(mapping, "outputs")?;
        return Ok(Output::new(&kind, attrs));
    }
    let spec: String = spec_string(item, "outputs")?;
    Output::parse(&spec).map_err(errors::from_buildkit)
}

fn cache_entry(item: &Bound<'_, PyAny>, option: &str) -> PyResult<CacheEntry> {
    if let Ok(mapping) = item.cast::<PyMapping>() {
        let (kind, attrs) = typed_dict(mapping, option)?;
        return CacheEntry::new(&kind, attrs).map_err(|err| errors::from_buildkit_as(err, option));
    }
    let spec = spec_string(item, option)?;
    let parsed = if option == "cache_from" {
        CacheEntry::parse_import(&spec)
    } else {
        CacheEntry::parse_export(&spec)
    };
    parsed.map_err(errors::from_buildkit)
}

fn spec_string(item: &Bound<'_, PyAny>, option: &str) -> PyResult<String> {
    if item.is_instance_of::<PyString>() {
        return item.extract();
    }
    Err(PyTypeError::new_err(format!(
        "{option}: each item must be a \"type=...,key=value\" str or a dict, not {}",
        type_name(item)
    )))
}

/// A secret: a buildx spec, or `{"id": ..., "src"|"env"|"value": ...}`.
fn secret(item: &Bound<'_, PyAny>) -> PyResult<Secret> {
    let Ok(mapping) = item.cast::<PyMapping>() else {
        if item.is_instance_of::<PyString>() {
            let spec: String = item.extract()?;
            return Secret::parse(&spec).map_err(errors::from_buildkit);
        }
        return Err(PyTypeError::new_err(format!(
            "secrets: each item must be a buildx spec str (\"id=NAME,src=FILE\") or a dict, not {}",
            type_name(item)
        )));
    };
    let mut id = None;
    let mut sources = Vec::new();
    for (key, value) in mapping_items(mapping, "secrets")? {
        match key.as_str() {
            "id" => {
                id = Some(
                    value
                        .extract::<String>()
                        .map_err(|_| PyTypeError::new_err("secrets: \"id\" must be a str"))?,
                )
            }
            "src" | "source" => sources.push((
                "src",
                path(&value, "secrets: \"src\"")?
                    .to_string_lossy()
                    .into_owned(),
            )),
            "env" => sources.push((
                "env",
                value
                    .extract::<String>()
                    .map_err(|_| PyTypeError::new_err("secrets: \"env\" must be a str"))?,
            )),
            "value" => {
                let text = if let Ok(bytes) = value.cast::<PyBytes>() {
                    String::from_utf8(bytes.as_bytes().to_vec()).map_err(|_| {
                        errors::invalid_option(
                            "secrets",
                            "a \"value\" given as bytes must be UTF-8",
                        )
                    })?
                } else {
                    value.extract::<String>().map_err(|_| {
                        PyTypeError::new_err("secrets: \"value\" must be a str or bytes")
                    })?
                };
                sources.push(("value", text));
            }
            other => {
                return Err(errors::invalid_option(
                    "secrets",
                    format!("unknown key {other:?}; expected id and one of src, env or value"),
                ))
            }
        }
    }
    let id =
        id.ok_or_else(|| errors::invalid_option("secrets", "a secret dict needs an \"id\""))?;
    match sources.as_slice() {
        [("src", src)] => Ok(Secret::file(id, src)),
        [("env", env)] => Ok(Secret::env(id, env.clone())),
        [(_, value)] => Ok(Secret::value(id, value.clone())),
        [] => Err(errors::invalid_option(
            "secrets",
            format!("secret {id:?} needs one of src, env or value"),
        )),
        _ => Err(errors::invalid_option(
            "secrets",
            format!("secret {id:?} has more than one of src, env and value"),
        )),
    }
}

fn ssh_agents(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<SshAgent>> {
    let Some(value) = some(value) else {
        return Ok(Vec::new());
    };
    let specs: Vec<String> = if let Ok(mapping) = value.cast::<PyMapping>() {
        mapping_items(mapping, "ssh")?
            .into_iter()
            .map(|(id, socket)| Ok(format!("{id}={}", path(&socket, "ssh")?.to_string_lossy())))
            .collect::<PyResult<_>>()?
    } else {
        str_list(Some(value), "ssh")?
    };
    specs
        .iter()
        .map(|spec| SshAgent::parse(spec).map_err(errors::from_buildkit))
        .collect()
}

fn add_hosts(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match some(value) {
        Some(v) if v.cast::<PyMapping>().is_ok() => Ok(str_map(Some(v), "add_hosts")?
            .into_iter()
            .map(|(name, ip)| format!("{name}:{ip}"))
            .collect()),
        other => str_list(other, "add_hosts"),
    }
}

fn registry_auth(
    registry_auth: Option<&Bound<'_, PyAny>>,
    docker_config: Option<&Bound<'_, PyAny>>,
) -> PyResult<RegistryAuth> {
    let mut auth = match some(docker_config) {
        None => RegistryAuth::docker_config(),
        Some(flag) if flag.is_instance_of::<PyBool>() => {
            if flag.extract::<bool>()? {
                RegistryAuth::docker_config()
            } else {
                RegistryAuth::anonymous()
            }
        }
        Some(dir) => RegistryAuth::docker_config().config_dir(path(dir, "docker_config")?),
    };
    let Some(value) = some(registry_auth) else {
        return Ok(auth);
    };
    let mapping = value.cast::<PyMapping>().map_err(|_| {
        PyTypeError::new_err(format!(
            "registry_auth must be a mapping {{host: (username, secret)}}, not {}",
            type_name(value)
        ))
    })?;
    for (host, credentials) in mapping_items(mapping, "registry_auth")? {
        let (username, secret): (String, String) = if let Ok(fields) =
            credentials.cast::<PyMapping>()
        {
            let mut username = None;
            let mut secret = None;
            for (key, field) in mapping_items(fields, "registry_auth")? {
                let text: String = field.extract().map_err(|_| {
                    PyTypeError::new_err(format!("registry_auth[{host:?}][{key:?}] must be a str"))
                })?;
                match key.as_str() {
                    "username" => username = Some(text),
                    "password" | "secret" | "token" => secret = Some(text),
                    other => {
                        return Err(errors::invalid_option(
                            "registry_auth",
                            format!(
                                "unknown key {other:?} for {host}; expected username and password"
                            ),
                        ))
                    }
                }
            }
            let secret = secret.ok_or_else(|| {
                errors::invalid_option("registry_auth", format!("{host}: no password"))
            })?;
            (username.unwrap_or_default(), secret)
        } else {
            credentials.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "registry_auth[{host:?}] must be a (username, secret) tuple or a dict"
                ))
            })?
        };
        auth = auth.with_credentials(&host, username, secret);
    }
    Ok(auth)
}

/// A build context argument: a URL or directory string, an `os.PathLike` directory, or
/// `bytes` read as buildx reads `-` (a tar archive, else a Dockerfile with no context).
pub(crate) fn build_context(context: &Bound<'_, PyAny>) -> PyResult<BuildContext> {
    Ok(context_options(context)?.context)
}

/// `dockerfile_content=`: the Dockerfile's text, as `str` or `bytes`.
fn dockerfile_content(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(data) = value.cast::<PyBytes>() {
        return Ok(data.as_bytes().to_vec());
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_cow()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "dockerfile_content must be a str or bytes, not {}",
        type_name(value)
    )))
}

/// The options of a build of `context` (see [`build_context`]).
fn context_options(context: &Bound<'_, PyAny>) -> PyResult<BuildOptions> {
    if let Ok(data) = context.cast::<PyBytes>() {
        return Ok(BuildOptions::from_stdin(data.as_bytes().to_vec()));
    }
    Ok(BuildOptions::new(plain_context(context)?))
}

/// A URL or directory string, or an `os.PathLike` directory.
fn plain_context(context: &Bound<'_, PyAny>) -> PyResult<BuildContext> {
    if context.is_instance_of::<PyString>() {
        Ok(BuildContext::parse(&context.extract::<String>()?))
    } else {
        Ok(BuildContext::Local(path(context, "context")?))
    }
}

/// How a build run ended: the library's result, or `None` when a progress
/// callback raised (its error is in the `CallbackFailure`).
type Outcome = Option<Result<RustBuildResult, BuildkitError>>;

/// Runs the build until it ends or a progress callback raises.
async fn run(
    client: cicd_agents_buildkit::Client,
    options: BuildOptions,
    mut sink: Box<dyn ProgressSink>,
    failure: Arc<CallbackFailure>,
) -> Outcome {
    failure
        .race(client.build_with_progress(&options, sink.as_mut()))
        .await
}

/// Turns a finished (or waited-for) run into the Python result.
fn finish(outcome: PyResult<Outcome>, failure: &CallbackFailure) -> PyResult<BuildResult> {
    match failure.outcome(outcome)? {
        Ok(result) => Ok(BuildResult { inner: result }),
        Err(err) => Err(errors::from_buildkit(err)),
    }
}

/// `Client.build()`.
pub(crate) fn build_blocking(
    py: Python<'_>,
    client: &cicd_agents_buildkit::Client,
    prepared: Prepared,
) -> PyResult<BuildResult> {
    let Prepared { options, progress } = prepared;
    let failure = progress.failure.clone();
    let task = Task::spawn(run(
        client.clone(),
        options,
        progress.sink,
        progress.failure,
    ))?;
    finish(task.wait(py), &failure)
}

/// `Client.build_async()`.
pub(crate) fn build_awaitable<'py>(
    py: Python<'py>,
    client: &cicd_agents_buildkit::Client,
    prepared: Prepared,
) -> PyResult<Bound<'py, PyAny>> {
    let Prepared { options, progress } = prepared;
    let failure = progress.failure.clone();
    let client = client.clone();
    awaitable(py, async move {
        let outcome = run(client, options, progress.sink, progress.failure).await;
        finish(Ok(outcome), &failure)
    })
}

/// A finished build.
#[pyclass(module = "cicd_agents", frozen)]
pub struct BuildResult {
    pub(crate) inner: RustBuildResult,
}

#[pymethods]
impl BuildResult {
    /// The build's reference (the solve request's ref).
    #[getter]
    fn build_ref(&self) -> &str {
        &self.inner.build_ref
    }
    /// The image manifest (or index) digest, ``containerimage.digest``; None
    /// when no image was exported.
    #[getter]
    fn digest(&self) -> Option<&str> {
        self.inner.digest.as_deref()
    }
    /// The image config digest, ``containerimage.config.digest``, or None.
    #[getter]
    fn config_digest(&self) -> Option<&str> {
        self.inner.config_digest.as_deref()
    }
    /// The image ID as ``docker buildx build --iidfile`` writes it: the config
    /// digest of a single-platform image, the index digest of several; None
    /// when no image was exported.
    #[getter]
    fn image_id(&self) -> Option<&str> {
        self.inner.image_id()
    }
    /// The image names exported (``image.name`` split at commas).
    #[getter]
    fn image_names(&self) -> Vec<String> {
        self.inner.image_names.clone()
    }
    /// The full exporter response as the daemon sent it (str to str).
    #[getter]
    fn exporter_response(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.exporter_response.clone()
    }
    /// Where the build's time went, measured by the client, in seconds:
    /// ``connect``, ``session_start``, ``context_walk``, ``context_transfer``,
    /// ``solve``, ``export`` and ``total`` (str to float).
    #[getter]
    fn timings(&self) -> std::collections::BTreeMap<&'static str, f64> {
        let t = &self.inner.timings;
        [
            ("connect", t.connect),
            ("session_start", t.session_start),
            ("context_walk", t.context_walk),
            ("context_transfer", t.context_transfer),
            ("solve", t.solve),
            ("export", t.export),
            ("total", t.total),
        ]
        .into_iter()
        .map(|(name, duration)| (name, duration.as_secs_f64()))
        .collect()
    }
    /// The metadata ``docker buildx build --metadata-file`` writes: every
    /// exporter response key, base64-encoded JSON values decoded, plus
    /// ``buildx.build.ref``.
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.metadata())
    }
    /// As a JSON-compatible dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_dict(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "BuildResult(digest={}, image_names={:?})",
            crate::convert::repr_opt(self.inner.digest.as_deref()),
            self.inner.image_names
        )
    }
}

/// What the runtime task of a stream sends.
enum Message {
    Update(StatusUpdate),
    /// A line of plain progress output (`stream_logs=True`).
    Line(String),
    Done(Result<Outcome, String>),
}

/// Forwards updates to the stream's channel.
struct ChannelSink(Sender<Message>);

impl ProgressSink for ChannelSink {
    fn update(&mut self, update: &StatusUpdate) {
        let _ = self.0.send(Message::Update(update.clone()));
    }
}

/// Sends what the plain renderer writes to the stream's channel, line by line.
struct LineWriter {
    sender: Sender<Message>,
    partial: Vec<u8>,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let _ = self.sender.send(Message::Line(text));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a stream is.
enum StreamState {
    Running,
    Done(Py<BuildResult>),
    Failed(PyErr),
    Cancelled,
}

/// A running build whose progress events are read by iterating it.
///
/// Returned by ``Client.build_stream()``. Iterating yields ``VertexEvent``,
/// ``StatusEvent``, ``LogEvent`` and ``WarningEvent`` objects as they arrive
/// (waiting with the GIL released; Ctrl-C cancels the build). When the build
/// ends the iteration stops and ``result`` holds the ``BuildResult``; if it
/// failed, the iteration raises its error (e.g. ``BuildError``), and so does
/// every later ``wait()``.
///
/// ``wait()`` skips the remaining events and returns the result; ``cancel()``
/// cancels the build on the daemon. Used as a context manager, leaving the
/// block cancels a build that is still running; so does dropping the stream.
///
/// ``build(..., stream_logs=True)`` (python-on-whales' keyword) returns one
/// that yields the plain progress output's lines (``str``) instead of events.
#[pyclass(module = "cicd_agents")]
pub struct BuildStream {
    messages: Mutex<Receiver<Message>>,
    handle: JoinHandle<()>,
    pending: VecDeque<Py<PyAny>>,
    state: StreamState,
    failure: Arc<CallbackFailure>,
}

impl Drop for BuildStream {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl BuildStream {
    /// Starts the build; with `lines`, the stream yields plain progress lines.
    pub(crate) fn start(
        client: &cicd_agents_buildkit::Client,
        prepared: Prepared,
        lines: bool,
    ) -> PyResult<BuildStream> {
        let Prepared { options, progress } = prepared;
        let (sender, messages) = mpsc::channel();
        let reader: Box<dyn ProgressSink> = if lines {
            Box::new(PlainRenderer::new(LineWriter {
                sender: sender.clone(),
                partial: Vec::new(),
            }))
        } else {
            Box::new(ChannelSink(sender.clone()))
        };
        let sink = Tee(vec![reader, progress.sink]);
        let failure = progress.failure.clone();
        let client = client.clone();
        let handle = runtime()?.spawn(async move {
            let outcome = catch_panic(run(client, options, Box::new(sink), progress.failure)).await;
            let _ = sender.send(Message::Done(outcome));
        });
        Ok(BuildStream {
            messages: Mutex::new(messages),
            handle,
            pending: VecDeque::new(),
            state: StreamState::Running,
            failure,
        })
    }

    /// The next event, or `None` at the end. `keep_events: false` drops events.
    /// Once the build has failed, raises its error (again).
    fn next_event(&mut self, py: Python<'_>, keep_events: bool) -> PyResult<Option<Py<PyAny>>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            match &self.state {
                StreamState::Running => {}
                StreamState::Done(_) => return Ok(None),
                StreamState::Failed(err) => return Err(err.clone_ref(py)),
                StreamState::Cancelled => {
                    return Err(errors::Cancelled::new_err("the build was cancelled"))
                }
            }
            let messages = self
                .messages
                .get_mut()
                .map_err(|_| errors::internal("the event channel is poisoned"))?;
            match py.detach(move || messages.recv_timeout(TICK)) {
                Ok(Message::Update(update)) => {
                    if keep_events {
                        self.pending.extend(events(py, &update)?);
                    }
                }
                Ok(Message::Line(line)) => {
                    if keep_events {
                        self.pending
                            .push_back(PyString::new(py, &line).into_any().unbind());
                    }
                }
                Ok(Message::Done(outcome)) => {
                    let outcome =
                        outcome.map_err(|panic| errors::internal(format!("panic: {panic}")));
                    let ended =
                        finish(outcome, &self.failure).and_then(|result| Py::new(py, result));
                    match ended {
                        Ok(result) => self.state = StreamState::Done(result),
                        Err(err) => {
                            self.state = StreamState::Failed(err.clone_ref(py));
                            return Err(err);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(err) = py.check_signals() {
                        self.cancel_and_wait(py);
                        return Err(err);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.state = StreamState::Cancelled;
                }
            }
        }
    }

    fn cancel_and_wait(&mut self, py: Python<'_>) {
        self.handle.abort();
        self.state = StreamState::Cancelled;
        self.pending.clear();
        // Wait (briefly) until the task is gone, so its cancellation went out.
        if let Ok(messages) = self.messages.get_mut() {
            py.detach(move || {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                    if messages.recv_timeout(left).is_err() {
                        break;
                    }
                }
            });
        }
    }
}

#[pymethods]
impl BuildStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.next_event(py, true)
    }

    /// The ``BuildResult`` once the build has finished successfully, else None.
    #[getter]
    fn result(&self, py: Python<'_>) -> Option<Py<BuildResult>> {
        match &self.state {
            StreamState::Done(result) => Some(result.clone_ref(py)),
            _ => None,
        }
    }

    /// Whether the build has ended (successfully, failed or cancelled).
    #[getter]
    fn done(&self) -> bool {
        !matches!(self.state, StreamState::Running)
    }

    /// Waits for the build to end, discarding the events not read yet, and
    /// returns its ``BuildResult`` (or raises its error: the ``BuildError`` of
    /// a failed build, ``Cancelled`` after ``cancel()``).
    fn wait(&mut self, py: Python<'_>) -> PyResult<Py<BuildResult>> {
        self.pending.clear();
        while self.next_event(py, false)?.is_some() {}
        match &self.state {
            StreamState::Done(result) => Ok(result.clone_ref(py)),
            StreamState::Failed(err) => Err(err.clone_ref(py)),
            _ => Err(errors::Cancelled::new_err("the build was cancelled")),
        }
    }

    /// Cancels the build on the daemon (no-op once it has ended).
    fn cancel(&mut self, py: Python<'_>) {
        if matches!(self.state, StreamState::Running) {
            self.cancel_and_wait(py);
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.cancel(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = match self.state {
            StreamState::Running => "running",
            StreamState::Done(_) => "done",
            StreamState::Failed(_) => "failed",
            StreamState::Cancelled => "cancelled",
        };
        format!("BuildStream({state})")
    }
}

/// Checks a platform string (``os/arch[/variant]``) and returns it normalised as buildx
/// does: ``normalize_platform("linux/x86_64") == "linux/amd64"``, ``"linux/armhf"`` gives
/// ``"linux/arm/v7"``, ``"local"`` this machine's platform. Raises
/// ``InvalidOption`` (``option == "platforms"``) naming the value otherwise.
#[pyfunction]
pub fn normalize_platform(platform: &str) -> PyResult<String> {
    cicd_agents_buildkit::build::normalize_platform(platform).map_err(errors::from_buildkit)
}
