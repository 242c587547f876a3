//! One keyword's value turned into the library's type: spec strings and dicts for outputs,
//! cache entries, secrets, SSH agents, hosts, registry credentials, the build context.

use cicd_agents_buildkit::flags::OptionField;

use cicd_agents_buildkit::build::{
    parse_key_values, BuildContext, BuildOptions, CacheEntry, Output,
};
use cicd_agents_buildkit::{RegistryAuth, Secret, SshAgent};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyMapping, PyString};

use crate::convert::{mapping_items, path, spec_value, str_list, str_map, type_name};
use crate::errors;

fn some<'a, 'py>(value: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    value.filter(|v| !v.is_none())
}

/// `KEY=VALUE` pairs: a mapping, or a list of `"KEY=VALUE"` (a bare `KEY`
/// takes its value from the environment, as the library does for the CLI).
pub(super) fn key_values(
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

pub(super) fn output(item: &Bound<'_, PyAny>) -> PyResult<Output> {
    if let Ok(mapping) = item.cast::<PyMapping>() {
        let (kind, attrs) = typed_dict(mapping, "outputs")?;
        return Ok(Output::new(&kind, attrs));
    }
    let spec: String = spec_string(item, "outputs")?;
    Output::parse(&spec).map_err(errors::from_buildkit)
}

pub(super) fn cache_entry(item: &Bound<'_, PyAny>, option: &str) -> PyResult<CacheEntry> {
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
pub(super) fn secret(item: &Bound<'_, PyAny>) -> PyResult<Secret> {
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

pub(super) fn ssh_agents(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<SshAgent>> {
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

pub(super) fn add_hosts(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match some(value) {
        Some(v) if v.cast::<PyMapping>().is_ok() => Ok(str_map(Some(v), "add_hosts")?
            .into_iter()
            .map(|(name, ip)| format!("{name}:{ip}"))
            .collect()),
        other => str_list(other, "add_hosts"),
    }
}

pub(super) fn registry_auth(
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
pub(super) fn dockerfile_content(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
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
pub(super) fn context_options(context: &Bound<'_, PyAny>) -> PyResult<BuildOptions> {
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

/// Checks a platform string (``os/arch[/variant]``) and returns it normalised as buildx
/// does: ``normalize_platform("linux/x86_64") == "linux/amd64"``, ``"linux/armhf"`` gives
/// ``"linux/arm/v7"``, ``"local"`` this machine's platform. Raises
/// ``InvalidOption`` (``option == "platforms"``) naming the value otherwise.
#[pyfunction]
pub fn normalize_platform(platform: &str) -> PyResult<String> {
    cicd_agents_buildkit::build::normalize_platform(platform).map_err(errors::from_buildkit)
}
