//! Turning [`BuildOptions`] into a solve request for the Dockerfile frontend
//! and the session that must serve it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cicd_agents_proto::moby::buildkit::v1::{CacheOptions, Exporter, SolveRequest};
use cicd_agents_types::{GitUrl, ImageRef};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::build::cache::{check_exports, frontend_import_attrs};
use crate::build::options::{BuildContext, BuildOptions};
use crate::build::output::{plan_exporters, PlannedExporter};
use crate::build::scoped_path::resolve_in_root;
use crate::control::info::DaemonInfo;
use crate::error::{Error, Result};
use crate::flags::NamedContext;
use crate::flags::Platform;
use crate::flags::{AttestKind, Entitlement, NetworkMode, OptionField};
use crate::session::context_sync::LocalDirs;
use crate::session::exports::{ExportTarget, Exports};
use crate::session::secrets::{Secret, SecretSource};
use crate::session::ssh::SshAgent;
use crate::session::upload::{upload_url, Uploads};
use crate::session::{random_id, SessionConfig};

/// The frontend every build here uses.
pub(crate) const DOCKERFILE_FRONTEND: &str = "dockerfile.v0";

/// A solve request and its session, ready to run.
#[derive(Debug)]
pub(crate) struct SolvePlan {
    pub(crate) request: SolveRequest,
    pub(crate) session: SessionConfig,
}

fn path_error(path: &Path, what: OptionField) -> Error {
    Error::option(what, format!("{}: no such directory", path.display()))
}

/// A stable key for a local directory, so that the daemon can reuse what it
/// received last time and a rebuild sends only what changed.
///
/// The key travels as an HTTP header (`docker://`) or gRPC metadata, so it is
/// limited to safe ASCII: the directory's name keeps only `[A-Za-z0-9._-]`
/// (anything else becomes `_`, at most 32 characters), and the digest of the
/// whole path keeps keys of different directories apart.
pub(crate) fn shared_key_for(dir: &Path) -> String {
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let base: String = name
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{base}:{}", &hex::encode(digest)[..16])
}

/// A caller-chosen shared key must be sendable as a header value: visible
/// ASCII, no spaces, at most 256 characters.
fn check_shared_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::option(OptionField::SharedKey,
            format!("{key:?}: use 1 to 256 visible ASCII characters (no spaces, line breaks or non-ASCII)"),
        ));
    }
    Ok(())
}

/// Every `--secret` file must exist and be a readable file when the build starts;
/// the daemon asks for it only once a `RUN` mounts it, which is too late for a
/// clear error.
fn check_secret_files(secrets: &[Secret]) -> Result<()> {
    for secret in secrets {
        if let SecretSource::File(path) = &secret.source {
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    return Err(Error::option(
                        OptionField::Secret,
                        format!(
                            "secret {:?}: {} is a directory, not a file",
                            secret.id,
                            path.display()
                        ),
                    ))
                }
                Ok(_) => {}
                Err(err) => {
                    return Err(Error::option(
                        OptionField::Secret,
                        format!("secret {:?}: {}: {err}", secret.id, path.display()),
                    ))
                }
            }
        }
        if secret.id.is_empty() {
            return Err(Error::option(
                OptionField::Secret,
                "a secret needs a non-empty id",
            ));
        }
    }
    Ok(())
}

/// Every `--ssh` agent socket must exist and be a socket.
fn check_ssh_sockets(agents: &[SshAgent]) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    for agent in agents {
        match std::fs::metadata(&agent.socket) {
            Ok(meta) if meta.file_type().is_socket() => {}
            Ok(_) => {
                return Err(Error::option(
                    OptionField::Ssh,
                    format!(
                        "agent {:?}: {} is not a unix socket (give an ssh-agent socket)",
                        agent.id,
                        agent.socket.display()
                    ),
                ))
            }
            Err(err) => {
                return Err(Error::option(
                    OptionField::Ssh,
                    format!("agent {:?}: {}: {err}", agent.id, agent.socket.display()),
                ))
            }
        }
    }
    Ok(())
}

/// What a destination path must be once the build writes it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// A file written in an existing directory (metadata, image ID).
    FileInDir,
    /// A file; missing directories on its way are created (tarballs).
    File,
    /// A directory, created with its parents if missing (`local` export).
    Dir,
}

/// Checks every place the build writes on this machine before anything is
/// sent, so that a build is not run (and pushed) only to fail writing its
/// result: the metadata and image ID files' directories exist, and no
/// export destination has a file where a directory must be, or the reverse.
fn check_destinations(options: &BuildOptions, exporters: &[PlannedExporter]) -> Result<()> {
    let mut wanted: Vec<(OptionField, &Path, Destination)> = Vec::new();
    if let Some(path) = &options.metadata_file {
        wanted.push((OptionField::MetadataFile, path, Destination::FileInDir));
    }
    if let Some(path) = &options.iid_file {
        wanted.push((OptionField::IidFile, path, Destination::FileInDir));
    }
    for exporter in exporters {
        match &exporter.target {
            Some(ExportTarget::File(path)) => {
                wanted.push((OptionField::Output, path, Destination::File))
            }
            Some(ExportTarget::Directory(path)) => {
                wanted.push((OptionField::Output, path, Destination::Dir))
            }
            Some(ExportTarget::Stdout) | None => {}
        }
    }
    for (option, path, destination) in wanted {
        check_destination(path, destination)
            .map_err(|reason| Error::option(option, format!("{}: {reason}", path.display())))?;
    }
    Ok(())
}

/// Why `path` cannot be written as `destination`, if it cannot.
fn check_destination(path: &Path, destination: Destination) -> std::result::Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("an empty path".into());
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() && destination != Destination::Dir => {
            return Err("is a directory".into())
        }
        Ok(meta) if !meta.is_dir() && destination == Destination::Dir => {
            return Err("is not a directory".into())
        }
        Ok(_) => return Ok(()),
        Err(err) if !missing(&err) => return Err(err.to_string()),
        Err(_) => {}
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // The nearest ancestor that exists must be a directory; a file's own directory must exist,
    // a directory and the directories on a file's way are created by the export.
    let mut absent = None;
    for ancestor in parent.ancestors() {
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a directory", ancestor.display())),
            Err(err) if missing(&err) => absent = absent.or(Some(ancestor)),
            Err(err) => return Err(format!("{}: {err}", ancestor.display())),
        }
    }
    match absent {
        Some(dir) if destination == Destination::FileInDir => {
            Err(format!("the directory {} does not exist", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Whether a look-up failed because the path is not there (or a file stands where a
/// directory on its way should be).
fn missing(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// The directory sent for the Dockerfile and the Dockerfile's name in it,
/// after checking that the name leads to a file there the way the daemon
/// will read it: symlinks followed inside that directory, absolute targets
/// taken from its root (a link out of it finds nothing, as in buildx).
fn dockerfile_in_dir(dockerfile: &Path) -> Result<(PathBuf, std::ffi::OsString)> {
    let Some(name) = dockerfile.file_name() else {
        return Err(Error::option(
            OptionField::Dockerfile,
            format!("{}: not a file path", dockerfile.display()),
        ));
    };
    let parent = match dockerfile.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let missing = || {
        Error::option(
            OptionField::Dockerfile,
            format!("{}: no such Dockerfile", dockerfile.display()),
        )
    };
    let dir = std::fs::canonicalize(parent).map_err(|_| missing())?;
    let name = lowercase_fallback(&dir, name);
    let name = name.as_os_str();
    let found = resolve_in_root(&dir, Path::new(name)).map_err(|err| {
        Error::option(
            OptionField::Dockerfile,
            format!("{}: {err}", dockerfile.display()),
        )
    })?;
    let is_link =
        std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_symlink());
    match found {
        Some(found) if found.is_dir() => Err(Error::option(
            OptionField::Dockerfile,
            format!("{}: is a directory, not a Dockerfile", dockerfile.display()),
        )),
        Some(found) if found.is_file() => Ok((dir, name.to_os_string())),
        _ if is_link => Err(Error::option(
            OptionField::Dockerfile,
            format!(
                "{}: no such Dockerfile: its symlinks lead nowhere inside {} (BuildKit follows them only inside the Dockerfile's directory)",
                dockerfile.display(),
                dir.display()
            ),
        )),
        _ => Err(missing()),
    }
}

/// The name the daemon will read for `name` in `dir`: as buildx (moby/moby#10858), a
/// Dockerfile named `Dockerfile` that is not there is looked for as `dockerfile`.
fn lowercase_fallback(dir: &Path, name: &std::ffi::OsStr) -> std::ffi::OsString {
    if name != "Dockerfile" {
        return name.to_os_string();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return name.to_os_string();
    };
    let names: Vec<std::ffi::OsString> = entries.flatten().map(|e| e.file_name()).collect();
    pick_dockerfile_name(&names).into()
}

/// `Dockerfile` unless the directory holds only the lowercase `dockerfile`.
fn pick_dockerfile_name(names: &[std::ffi::OsString]) -> &'static str {
    let has = |wanted: &str| names.iter().any(|n| n == wanted);
    if !has("Dockerfile") && has("dockerfile") {
        "dockerfile"
    } else {
        "Dockerfile"
    }
}

/// A new private temporary directory.
fn private_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("cicd-agents-")
        .tempdir()
        .map_err(|err| Error::io(std::env::temp_dir(), err))
}

fn absolute_dir(dir: &Path, option: OptionField) -> Result<PathBuf> {
    let absolute = std::fs::canonicalize(dir).map_err(|_| path_error(dir, option))?;
    if !absolute.is_dir() {
        return Err(Error::option(
            option,
            format!("{}: not a directory", dir.display()),
        ));
    }
    Ok(absolute)
}

/// Host (with the port, as Go's `url.Host` has it) of a git or HTTP URL:
/// BuildKit looks up the secret `GIT_AUTH_TOKEN.<that>`.
pub(crate) fn url_host(url: &str) -> Option<String> {
    // scp-like `git@host:path` too; with a `/` before the first `:` (or no `:`) git reads the
    // text as a local path, so there is no host.
    GitUrl::new(url).ok()?.host_port()
}

/// The secret names a token for `host` is offered under: the host as given,
/// plus `host:port` for every remote URL of the build on that host.
fn git_token_secret_names(host: &str, urls: &[&str]) -> Vec<String> {
    let mut names = vec![format!("GIT_AUTH_TOKEN.{host}")];
    for found in urls.iter().filter_map(|url| url_host(url)) {
        let bare = found.rsplit_once(':').map(|(h, _)| h).unwrap_or(&found);
        if (bare == host || found == host) && !names.contains(&format!("GIT_AUTH_TOKEN.{found}")) {
            names.push(format!("GIT_AUTH_TOKEN.{found}"));
        }
    }
    names
}

/// Rejects URLs that carry credentials: tokens belong in secrets, where they
/// stay out of logs, image history and provenance.
fn refuse_credentials_in_url(url: &str, option: OptionField) -> Result<()> {
    if url.contains("://") && GitUrl::new(url).map_or(url.contains('@'), |url| url.has_userinfo()) {
        return Err(Error::option(
            option,
            "the URL carries credentials; pass the token as a git auth token (GIT_AUTH_TOKEN.<host> secret) instead",
        ));
    }
    Ok(())
}

/// `--pull`, `--cgroup-parent`, `--shm-size` and `--ulimit` as the Dockerfile
/// frontend's attributes.
fn run_step_attrs(options: &BuildOptions, attrs: &mut BTreeMap<String, String>) -> Result<()> {
    if options.pull {
        attrs.insert("image-resolve-mode".into(), "pull".into());
    }
    if let Some(parent) = &options.cgroup_parent {
        if parent.trim().is_empty() || parent.chars().any(char::is_control) {
            return Err(Error::invalid(
                OptionField::CgroupParent,
                parent,
                "expected a cgroup path, e.g. /ci or ci.slice",
            ));
        }
        attrs.insert("cgroup-parent".into(), parent.clone());
    }
    if let Some(size) = options.shm_size.filter(|s| s.bytes() > 0) {
        attrs.insert("shm-size".into(), size.to_string());
    }
    if !options.ulimits.is_empty() {
        let by_name: BTreeMap<_, _> = options.ulimits.iter().map(|u| (u.name, u)).collect();
        let list: Vec<String> = by_name.values().map(ToString::to_string).collect();
        attrs.insert("ulimit".into(), list.join(","));
    }
    Ok(())
}

/// The `attest:KIND` attributes: what was asked for and, unless provenance was
/// set (or turned off), buildx's default `mode=min` provenance for image
/// outputs where the daemon supports attestations.
fn attest_attrs(
    options: &BuildOptions,
    daemon: &DaemonInfo,
    attrs: &mut BTreeMap<String, String>,
) -> Result<()> {
    let requested = requested_attests(options);
    let supported = daemon.supports_attestations();
    if !requested.is_empty() && !supported {
        return Err(Error::option(
            OptionField::Attest,
            format!(
                "the daemon at {} cannot store attestations (it needs BuildKit 0.11 or newer and, behind Docker, the containerd image store)",
                daemon.address
            ),
        ));
    }
    attrs.extend(requested);
    if supported && !provenance_set(options) {
        attrs.insert("attest:provenance".into(), DEFAULT_PROVENANCE.into());
    }
    Ok(())
}

/// The `attest:KIND` attributes asked for (a turned-off attestation sends none).
fn requested_attests(options: &BuildOptions) -> Vec<(String, String)> {
    options
        .attests
        .iter()
        .filter_map(|a| a.frontend_attr())
        .collect()
}

/// Whether provenance was set, on or off: then buildx's default provenance is not added.
fn provenance_set(options: &BuildOptions) -> bool {
    options
        .attests
        .iter()
        .any(|a| a.kind == AttestKind::Provenance)
}

/// Each attestation type at most once.
fn check_attests(options: &BuildOptions) -> Result<()> {
    for (index, attest) in options.attests.iter().enumerate() {
        if options.attests[..index]
            .iter()
            .any(|a| a.kind == attest.kind)
        {
            return Err(Error::invalid(
                OptionField::Attest,
                attest.to_string(),
                format!("a second {} attestation; give each type once", attest.kind),
            ));
        }
    }
    Ok(())
}

/// The provenance buildx asks for by default: minimal, and only for outputs
/// that hold attestations inline (image, oci, docker), not for local or tar.
pub(crate) const DEFAULT_PROVENANCE: &str = "mode=min,inline-only=true";

/// A build checked and lowered as far as it can be without a daemon: the
/// Dockerfile frontend's attributes, the directories and secrets the session
/// serves. [`BuildOptions::prepare`] makes one; a build (also one started with
/// [`Client::build_prepared`](crate::Client::build_prepared)) completes it for
/// the daemon it runs on, without checking anything twice.
#[derive(Debug, Clone)]
pub struct PreparedBuild {
    options: BuildOptions,
    attrs: BTreeMap<String, String>,
    local_dirs: Vec<(String, PathBuf)>,
    shared_key: Option<String>,
    secrets: Vec<Secret>,
    entitlements: Vec<String>,
    /// Data the daemon pulls through the session, by ID.
    uploads: Vec<(String, bytes::Bytes)>,
    /// Private directories served to the daemon (an empty context, a Dockerfile
    /// given as content), removed when the last copy of the build is dropped.
    _temp_dirs: Vec<Arc<tempfile::TempDir>>,
}

impl PreparedBuild {
    /// Whether the request depends on what the daemon says of itself (its version, whether it
    /// can store attestations): an attestation asked for, buildx's default provenance (not
    /// turned off), or more than one export (BuildKit 0.13 or newer). Otherwise the solve
    /// goes out without asking the daemon first.
    pub(crate) fn needs_daemon_info(&self, docker_daemon: bool) -> bool {
        let options = &self.options;
        let several_exports = planned_exporters(options, docker_daemon)
            .map(|exporters| exporters.len() > 1)
            .unwrap_or(true);
        !requested_attests(options).is_empty() || !provenance_set(options) || several_exports
    }

    /// The options it was prepared from.
    pub fn options(&self) -> &BuildOptions {
        &self.options
    }

    /// The Dockerfile frontend's attributes as they will be sent (the daemon
    /// adds only the default provenance, where it supports attestations).
    pub fn frontend_attrs(&self) -> &BTreeMap<String, String> {
        &self.attrs
    }

    /// The frontend attribute `key` as the solve request will carry it (the
    /// options' own frontend attributes win, as in the plan).
    pub(crate) fn frontend_attr(&self, key: &str) -> Option<&String> {
        self.options
            .frontend_attrs
            .get(key)
            .or_else(|| self.attrs.get(key))
    }

    /// The directories the build's session serves, by name.
    pub(crate) fn local_dirs(&self) -> LocalDirs {
        let mut local_dirs = LocalDirs::default();
        for (name, dir) in &self.local_dirs {
            local_dirs.insert(name.clone(), dir.clone());
        }
        local_dirs
    }
}

impl SolvePlan {
    #[cfg(test)]
    pub(crate) fn new(
        options: &BuildOptions,
        daemon: &DaemonInfo,
        docker_daemon: bool,
    ) -> Result<SolvePlan> {
        SolvePlan::from_prepared(&PreparedBuild::new(options)?, daemon, docker_daemon)
    }

    /// Completes a prepared build for `daemon`: attestations, exporters, IDs.
    #[cfg(test)]
    pub(crate) fn from_prepared(
        prepared: &PreparedBuild,
        daemon: &DaemonInfo,
        docker_daemon: bool,
    ) -> Result<SolvePlan> {
        SolvePlan::from_prepared_with_dirs(prepared, daemon, docker_daemon, prepared.local_dirs())
    }

    /// `from_prepared` (tests only), serving `local_dirs` (made
    /// by [`PreparedBuild::local_dirs`] before the daemon was asked anything,
    /// so that walks could start early).
    pub(crate) fn from_prepared_with_dirs(
        prepared: &PreparedBuild,
        daemon: &DaemonInfo,
        docker_daemon: bool,
        local_dirs: LocalDirs,
    ) -> Result<SolvePlan> {
        let options = &prepared.options;
        let mut attrs = prepared.attrs.clone();
        attest_attrs(options, daemon, &mut attrs)?;
        for (key, value) in &options.frontend_attrs {
            attrs.insert(key.clone(), value.clone());
        }
        let exporters = planned_exporters(options, docker_daemon)?;
        if exporters.len() > 1 && !daemon.at_least(0, 13) {
            return Err(Error::option(
                OptionField::Output,
                format!(
                    "BuildKit {} supports one output per build; several need v0.13 or newer",
                    daemon.version
                ),
            ));
        }
        let mut exports = Exports::default();
        for (index, exporter) in exporters.iter().enumerate() {
            if let Some(target) = &exporter.target {
                exports.insert(index, target.clone());
            }
        }
        let proto_exporters: Vec<Exporter> = exporters
            .iter()
            .map(|e| Exporter {
                r#type: e.kind.clone(),
                attrs: e.attrs.clone().into_iter().collect(),
            })
            .collect();
        let session_id = random_id();
        let request = SolveRequest {
            r#ref: random_id(),
            session: session_id.clone(),
            frontend: DOCKERFILE_FRONTEND.into(),
            frontend_attrs: attrs.into_iter().collect(),
            exporter_deprecated: proto_exporters
                .first()
                .map(|e| e.r#type.clone())
                .unwrap_or_default(),
            exporter_attrs_deprecated: proto_exporters
                .first()
                .map(|e| e.attrs.clone())
                .unwrap_or_default(),
            exporters: proto_exporters,
            cache: Some(CacheOptions {
                exports: options.cache_to.iter().map(|e| e.to_proto()).collect(),
                imports: options.cache_from.iter().map(|e| e.to_proto()).collect(),
                ..Default::default()
            }),
            entitlements: prepared.entitlements.clone(),
            ..Default::default()
        };
        let uploads = Uploads::default();
        for (id, data) in &prepared.uploads {
            uploads.add(id, data.clone());
        }
        let session = SessionConfig {
            id: session_id,
            name: "cicd-agents".into(),
            shared_key: prepared
                .shared_key
                .clone()
                .unwrap_or_else(|| "remote".into()),
            local_dirs,
            secrets: prepared.secrets.clone(),
            auth: options.registry_auth.clone(),
            ssh: options.ssh.clone(),
            exports,
            uploads,
        };
        Ok(SolvePlan { request, session })
    }
}

/// The exporters of `options`, annotations included. As buildx: annotations go to
/// every output the user asked for (pushing included), not to the image loaded by
/// default when only tags are given.
fn planned_exporters(options: &BuildOptions, docker_daemon: bool) -> Result<Vec<PlannedExporter>> {
    let mut exporters =
        plan_exporters(&options.outputs, &options.tags, options.push, docker_daemon)?;
    if !options.outputs.is_empty() || options.push {
        for exporter in &mut exporters {
            for annotation in &options.annotations {
                exporter
                    .attrs
                    .insert(annotation.exporter_key(), annotation.value.clone());
            }
        }
    }
    Ok(exporters)
}

impl PreparedBuild {
    /// Checks and lowers `options` (see [`BuildOptions::prepare`]).
    fn new(options: &BuildOptions) -> Result<PreparedBuild> {
        for tag in &options.tags {
            // As buildx does: a name the registry would refuse is refused before anything is sent.
            tag.parse::<ImageRef>()
                .map_err(|err| Error::invalid(OptionField::Tag, tag, err.to_string()))?;
        }
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        let mut local_dirs: Vec<(String, PathBuf)> = Vec::new();
        let mut shared_key = options.shared_key.clone();
        let mut secrets: Vec<Secret> = options.secrets.clone();
        if let Some(key) = &shared_key {
            check_shared_key(key)?;
        }
        check_secret_files(&options.secrets)?;
        check_ssh_sockets(&options.ssh)?;

        let mut temp_dirs: Vec<Arc<tempfile::TempDir>> = Vec::new();
        let mut uploads: Vec<(String, bytes::Bytes)> = Vec::new();
        // A Dockerfile given as content is served as the `dockerfile` directory
        // from a private temporary directory, as buildx does.
        let dockerfile_dir = match &options.dockerfile_content {
            Some(content) => {
                if content.iter().all(u8::is_ascii_whitespace) {
                    return Err(Error::option(
                        OptionField::Dockerfile,
                        "the Dockerfile given as content is empty",
                    ));
                }
                let dir = private_dir()?;
                let path = dir.path().join("Dockerfile");
                std::fs::write(&path, content).map_err(|err| Error::io(&path, err))?;
                let dir_path = dir.path().to_path_buf();
                temp_dirs.push(Arc::new(dir));
                attrs.insert("dockerfilekey".into(), "dockerfile".into());
                attrs.insert("filename".into(), "Dockerfile".into());
                local_dirs.push(("dockerfile".into(), dir_path.clone()));
                Some(dir_path)
            }
            None => None,
        };
        let local_context = match &options.context {
            BuildContext::Local(dir) => Some(absolute_dir(dir, OptionField::Context)?),
            BuildContext::Empty => {
                let dir = private_dir()?;
                let path = dir.path().to_path_buf();
                temp_dirs.push(Arc::new(dir));
                Some(path)
            }
            BuildContext::Remote(url) => {
                refuse_credentials_in_url(url, OptionField::Context)?;
                attrs.insert("context".into(), url.clone());
                None
            }
            BuildContext::Archive(data) => {
                let id = random_id();
                attrs.insert("context".into(), upload_url(&id));
                uploads.push((id, bytes::Bytes::from(data.clone())));
                None
            }
        };
        match (&local_context, &dockerfile_dir) {
            (Some(context), None) => {
                let dockerfile = match &options.dockerfile {
                    Some(path) if path.as_os_str() == "-" => {
                        return Err(Error::option(
                            OptionField::Dockerfile,
                            "\"-\" (standard input) is not a file; give the Dockerfile's content instead",
                        ))
                    }
                    Some(path) => path.clone(),
                    None => context.join("Dockerfile"),
                };
                let (dockerfile_dir, name) = dockerfile_in_dir(&dockerfile)?;
                attrs.insert("filename".into(), name.to_string_lossy().into_owned());
                local_dirs.push(("dockerfile".into(), dockerfile_dir));
            }
            (None, None) => {
                let filename = options
                    .dockerfile
                    .as_deref()
                    .unwrap_or(Path::new("Dockerfile"));
                attrs.insert("filename".into(), filename.to_string_lossy().into_owned());
            }
            (_, Some(_)) => {}
        }
        if let Some(context) = &local_context {
            local_dirs.insert(0, ("context".into(), context.clone()));
            if matches!(options.context, BuildContext::Local(_)) {
                shared_key.get_or_insert_with(|| shared_key_for(context));
            }
        }

        if let Some(target) = &options.target {
            attrs.insert("target".into(), target.clone());
        }
        for (name, value) in &options.build_args {
            attrs.insert(format!("build-arg:{name}"), value.clone());
        }
        for (name, value) in &options.labels {
            attrs.insert(format!("label:{name}"), value.clone());
        }
        if !options.platforms.is_empty() {
            let platforms: Vec<String> = Platform::dedup(options.platforms.iter().cloned())
                .iter()
                .map(ToString::to_string)
                .collect();
            attrs.insert("platform".into(), platforms.join(","));
        }
        if options.no_cache {
            attrs.insert("no-cache".into(), String::new());
        } else if !options.no_cache_filter.is_empty() {
            attrs.insert("no-cache".into(), options.no_cache_filter.join(","));
        }
        let mut entitlements: Vec<String> = options.allow.iter().map(ToString::to_string).collect();
        match options.network.unwrap_or_default() {
            NetworkMode::Default => {}
            mode @ (NetworkMode::Host | NetworkMode::None) => {
                attrs.insert("force-network-mode".into(), mode.to_string());
                if mode == NetworkMode::Host {
                    entitlements.push(Entitlement::NetworkHost.to_string());
                }
            }
        }
        if !options.add_hosts.is_empty() {
            let hosts: Vec<String> = options.add_hosts.iter().map(ToString::to_string).collect();
            attrs.insert("add-hosts".into(), hosts.join(","));
        }
        for (name, context) in &options.build_contexts {
            if name.is_empty() {
                return Err(Error::option(
                    OptionField::BuildContext,
                    "empty context name",
                ));
            }
            let value = match context {
                NamedContext::Local(dir) => {
                    let dir = absolute_dir(dir, OptionField::BuildContext)?;
                    let local_name = format!("named-{name}");
                    local_dirs.push((local_name.clone(), dir));
                    format!("local:{local_name}")
                }
                NamedContext::Image(image) => format!("docker-image://{image}"),
                NamedContext::Remote(url) => {
                    refuse_credentials_in_url(url, OptionField::BuildContext)?;
                    url.clone()
                }
            };
            attrs.insert(format!("context:{name}"), value);
        }
        let mut remote_urls: Vec<&str> = Vec::new();
        if let BuildContext::Remote(url) = &options.context {
            remote_urls.push(url);
        }
        for context in options.build_contexts.values() {
            if let NamedContext::Remote(url) = context {
                remote_urls.push(url);
            }
        }
        for (host, token) in &options.git_auth_tokens {
            for name in git_token_secret_names(host, &remote_urls) {
                secrets.push(Secret::value(name, token.expose_secret().to_string()));
            }
        }

        check_exports(&options.cache_to)?;
        for (key, value) in frontend_import_attrs(&options.cache_from) {
            attrs.insert(key, value);
        }
        run_step_attrs(options, &mut attrs)?;
        check_attests(options)?;
        // Outputs are checked as a Docker daemon would take them (the most lenient);
        // the build plans them again for the daemon it runs on.
        let exporters = planned_exporters(options, true)?;
        // Every place the build writes on this machine is checked before anything is sent.
        check_destinations(options, &exporters)?;
        Ok(PreparedBuild {
            options: options.clone(),
            attrs,
            local_dirs,
            shared_key,
            secrets,
            entitlements,
            uploads,
            _temp_dirs: temp_dirs,
        })
    }
}

impl BuildOptions {
    /// Checks everything that can be checked without a daemon: the context
    /// and Dockerfile exist, secret files and SSH sockets exist, outputs and
    /// cache specs are well formed (platforms, network modes and the other
    /// typed values were checked when parsed). A build
    /// runs the same checks; front ends call this to reject bad input before
    /// dialling. Errors are [`Error::InvalidOption`].
    pub fn validate(&self) -> Result<()> {
        self.prepare().map(drop)
    }

    /// [`validate`](Self::validate)s and keeps the result: the lowered build,
    /// for [`Client::build_prepared`](crate::Client::build_prepared) to run
    /// without checking it again, or to show what would be sent.
    pub fn prepare(&self) -> Result<PreparedBuild> {
        PreparedBuild::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::info::VersionSource;
    use crate::flags::CacheEntry;

    fn daemon(version: &str) -> DaemonInfo {
        DaemonInfo {
            address: "unix:///x".into(),
            version: version.into(),
            version_source: VersionSource::Info,
            reported: None,
            docker_engine: None,
            docker_image_store: None,
        }
    }

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        dir
    }

    /// The daemon is asked about itself only when its answer changes the request.
    #[test]
    fn the_daemon_is_asked_about_itself_only_when_the_request_depends_on_it() {
        use crate::flags::{Attest, Output};
        let dir = context();
        let needs = |options: BuildOptions| options.prepare().unwrap().needs_daemon_info(true);
        let off = || Attest::provenance("false").unwrap();
        // buildx's default provenance depends on the daemon's image store.
        assert!(needs(BuildOptions::local(dir.path())));
        // Provenance turned off, one output: nothing to ask.
        let mut quiet = BuildOptions::local(dir.path());
        quiet.attests.push(off());
        assert!(!needs(quiet.clone()));
        // Provenance set explicitly: whether the daemon can store it.
        let mut asked = BuildOptions::local(dir.path());
        asked.attests.push(Attest::provenance("mode=max").unwrap());
        assert!(needs(asked));
        let mut sbom = quiet.clone();
        sbom.attests.push(Attest::sbom("true").unwrap());
        assert!(needs(sbom));
        // Two outputs need BuildKit 0.13.
        let mut two = quiet.clone();
        two.outputs = vec![
            Output::oci_tar(dir.path().join("image.tar")),
            Output::local(dir.path().join("out")),
        ];
        assert!(needs(two));
    }

    #[test]
    fn output_destinations_are_checked_before_the_build() {
        use crate::flags::Output;
        let dir = context();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let refused = |options: BuildOptions, option: &str, path: &Path| {
            let err = options.validate().unwrap_err();
            let text = err.to_string();
            assert!(err.is_invalid_input(), "{err:?}");
            assert!(text.contains(option), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
        };
        let missing = dir.path().join("missing/dir/m.json");
        refused(
            BuildOptions::local(dir.path()).metadata_file(&missing),
            "metadata file",
            &missing,
        );
        refused(
            BuildOptions::local(dir.path()).iid_file(&missing),
            "image ID file",
            &missing,
        );
        refused(
            BuildOptions::local(dir.path()).metadata_file(dir.path()),
            "metadata file",
            dir.path(),
        );
        let under_file = file.join("out.tar");
        let tar = |dest: &Path| Output::new("tar", [("dest".into(), dest.display().to_string())]);
        refused(
            BuildOptions::local(dir.path()).output(tar(&under_file)),
            "output",
            &under_file,
        );
        let deep_under_file = file.join("a/b");
        refused(
            BuildOptions::local(dir.path()).output(Output::local(&deep_under_file)),
            "output",
            &deep_under_file,
        );
        refused(
            BuildOptions::local(dir.path()).output(Output::local(&file)),
            "output",
            &file,
        );

        // What the build can create or write is fine.
        let fine = BuildOptions::local(dir.path())
            .metadata_file(dir.path().join("m.json"))
            .iid_file(dir.path().join("iid"))
            .output(Output::local(dir.path().join("new/out")))
            .output(tar(&dir.path().join("new/t.tar")));
        fine.validate().unwrap();
    }

    #[test]
    fn local_build_request() {
        let dir = context();
        let options = BuildOptions::local(dir.path())
            .tag("r/a:1")
            .push(true)
            .target("final")
            .build_arg("V", "1")
            .network(NetworkMode::Host)
            .add_host("db:10.0.0.2".parse().unwrap())
            .no_cache(true)
            .cache_from(CacheEntry::registry("r/a:cache"))
            .cache_to(CacheEntry::registry("r/a:cache").attr("mode", "max"));
        let plan = SolvePlan::new(&options, &daemon("v0.13.2"), true).unwrap();
        let attrs = &plan.request.frontend_attrs;
        assert_eq!(attrs["filename"], "Dockerfile");
        assert_eq!(attrs["target"], "final");
        assert_eq!(attrs["build-arg:V"], "1");
        assert_eq!(attrs["force-network-mode"], "host");
        assert_eq!(attrs["add-hosts"], "db=10.0.0.2");
        assert_eq!(attrs["no-cache"], "");
        assert!(attrs["cache-imports"].contains("r/a:cache"));
        assert_eq!(plan.request.entitlements, ["network.host"]);
        assert_eq!(plan.request.exporter_deprecated, "image");
        assert_eq!(plan.request.exporters.len(), 1);
        assert_eq!(plan.request.exporter_attrs_deprecated["push"], "true");
        let cache = plan.request.cache.as_ref().unwrap();
        assert_eq!(cache.exports[0].attrs["mode"], "max");
        assert_eq!(cache.imports[0].r#type, "registry");
        assert_eq!(plan.request.session, plan.session.id);
        assert!(!plan.session.local_dirs.is_empty());
        let again = SolvePlan::new(&options, &daemon("v0.13.2"), true).unwrap();
        assert_eq!(
            plan.session.shared_key, again.session.shared_key,
            "shared key must be stable"
        );
        assert_ne!(plan.request.r#ref, again.request.r#ref);
    }

    #[test]
    fn remote_context_and_git_token() {
        let options = BuildOptions::remote("http://127.0.0.1:8418/app.git#main:sub")
            .git_auth_token("127.0.0.1", "tok");
        let plan = SolvePlan::new(&options, &daemon("v0.13.2"), true).unwrap();
        assert_eq!(
            plan.request.frontend_attrs["context"],
            "http://127.0.0.1:8418/app.git#main:sub"
        );
        assert!(plan
            .session
            .secrets
            .iter()
            .any(|s| s.id == "GIT_AUTH_TOKEN.127.0.0.1"));
        assert!(plan
            .session
            .secrets
            .iter()
            .any(|s| s.id == "GIT_AUTH_TOKEN.127.0.0.1:8418"));
        assert!(!format!("{:?}", plan.request).contains("tok\""));
        let leaky = BuildOptions::remote("https://user:tok@host/app.git");
        assert!(SolvePlan::new(&leaky, &daemon("v0.13.2"), true).is_err());
    }

    #[test]
    fn new_buildx_flags_reach_the_frontend() {
        use crate::flags::{Annotation, Attest, ShmSize, Ulimit};
        let dir = context();
        let options = BuildOptions::local(dir.path())
            .tag("r/a:1")
            .push(true)
            .pull(true)
            .cgroup_parent("/ci")
            .shm_size("128m".parse::<ShmSize>().unwrap())
            .ulimit("nofile=1024:2048".parse::<Ulimit>().unwrap())
            .ulimit("nproc=50".parse::<Ulimit>().unwrap())
            .ulimit("nofile=10:20".parse::<Ulimit>().unwrap())
            .attest(Attest::sbom("generator=r/scanner:1").unwrap())
            .annotation("index:org.example.a=1".parse::<Annotation>().unwrap())
            .annotation("b=2".parse::<Annotation>().unwrap());
        let plan = SolvePlan::new(&options, &daemon("v0.13.2"), true).unwrap();
        let attrs = &plan.request.frontend_attrs;
        assert_eq!(attrs["image-resolve-mode"], "pull");
        assert_eq!(attrs["cgroup-parent"], "/ci");
        assert_eq!(attrs["shm-size"], "134217728");
        assert_eq!(attrs["ulimit"], "nofile=10:20,nproc=50:50");
        assert_eq!(attrs["attest:sbom"], "type=sbom,generator=r/scanner:1");
        assert_eq!(attrs["attest:provenance"], DEFAULT_PROVENANCE);
        let exporter = &plan.request.exporters[0].attrs;
        assert_eq!(exporter["annotation-index.org.example.a"], "1");
        assert_eq!(exporter["annotation.b"], "2");

        let plain =
            SolvePlan::new(&BuildOptions::local(dir.path()), &daemon("v0.13.2"), true).unwrap();
        for key in ["image-resolve-mode", "cgroup-parent", "shm-size", "ulimit"] {
            assert!(!plain.request.frontend_attrs.contains_key(key), "{key}");
        }
        let max = BuildOptions::local(dir.path()).attest(Attest::provenance("mode=max").unwrap());
        let plan = SolvePlan::new(&max, &daemon("v0.13.2"), true).unwrap();
        assert_eq!(
            plan.request.frontend_attrs["attest:provenance"],
            "type=provenance,mode=max"
        );
        let off = BuildOptions::local(dir.path()).attest(Attest::provenance("false").unwrap());
        let plan = SolvePlan::new(&off, &daemon("v0.13.2"), true).unwrap();
        assert!(!plan
            .request
            .frontend_attrs
            .contains_key("attest:provenance"));
    }

    #[test]
    fn a_prepared_build_is_checked_once_and_completed_per_daemon() {
        let dir = context();
        let options = BuildOptions::local(dir.path())
            .tag("r/a:1")
            .push(true)
            .build_arg("V", "1");
        let prepared = options.prepare().unwrap();
        assert_eq!(prepared.frontend_attrs()["build-arg:V"], "1");
        assert!(!prepared.frontend_attrs().contains_key("attest:provenance"));
        // The context may go away: the prepared build is not checked again.
        let one = SolvePlan::from_prepared(&prepared, &daemon("v0.13.2"), true).unwrap();
        let two = SolvePlan::from_prepared(&prepared, &daemon("v0.13.2"), false).unwrap();
        assert_ne!(one.request.r#ref, two.request.r#ref);
        assert_ne!(one.session.id, two.session.id);
        assert_eq!(one.request.frontend_attrs, two.request.frontend_attrs);
        assert_eq!(
            one.request.frontend_attrs["attest:provenance"],
            DEFAULT_PROVENANCE
        );
        drop(dir);
        assert!(SolvePlan::from_prepared(&prepared, &daemon("v0.13.2"), true).is_ok());
        assert!(options.validate().is_err(), "validate checks the context");
    }

    #[test]
    fn attestations_follow_the_daemon() {
        use crate::flags::Attest;
        let dir = context();
        let mut classic = daemon("v0.13.2");
        classic.docker_image_store = Some(String::new());
        let plan = SolvePlan::new(&BuildOptions::local(dir.path()), &classic, true).unwrap();
        assert!(!plan
            .request
            .frontend_attrs
            .contains_key("attest:provenance"));
        let sbom = BuildOptions::local(dir.path()).attest(Attest::sbom("true").unwrap());
        let err = SolvePlan::new(&sbom, &classic, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("containerd image store"), "{err}");
        let mut containerd = daemon("v0.13.2");
        containerd.docker_image_store = Some("io.containerd.snapshotter.v1".into());
        assert!(SolvePlan::new(&sbom, &containerd, true).is_ok());
        assert!(SolvePlan::new(&sbom, &daemon("v0.10.6"), true).is_err());
        let twice = sbom.clone().attest(Attest::sbom("false").unwrap());
        assert!(SolvePlan::new(&twice, &containerd, true).is_err());
        let bad_parent = BuildOptions::local(dir.path()).cgroup_parent(" ");
        assert!(matches!(
            bad_parent.validate().unwrap_err(),
            Error::InvalidOption {
                field: OptionField::CgroupParent,
                ..
            }
        ));
    }

    #[test]
    fn bad_input_names_the_problem() {
        let missing = BuildOptions::local("/nonexistent/ctx");
        assert!(SolvePlan::new(&missing, &daemon("v0.13.2"), true)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/ctx"));
        let dir = context();
        let no_file = BuildOptions::local(dir.path()).dockerfile(dir.path().join("Nope"));
        assert!(SolvePlan::new(&no_file, &daemon("v0.13.2"), true)
            .unwrap_err()
            .to_string()
            .contains("Nope"));
        let two = BuildOptions::local(dir.path())
            .output(crate::build::Output::local(dir.path().join("o")))
            .output(crate::build::Output::oci_tar(dir.path().join("o.tar")));
        assert!(SolvePlan::new(&two, &daemon("v0.12.1"), true).is_err());
        assert!(SolvePlan::new(&two, &daemon("v0.13.1"), true).is_ok());
        let bad_net = "bridge2".parse::<NetworkMode>();
        assert!(bad_net.unwrap_err().to_string().contains("bridge2"));
    }

    #[test]
    fn shared_keys_are_safe_ascii() {
        for name in [
            "with space",
            "ünïcödé-ctx",
            "new\nline",
            "tab\there",
            "a:b\"c",
        ] {
            let key = shared_key_for(&Path::new("/tmp").join(name));
            assert!(
                key.bytes().all(|b| b.is_ascii_graphic()),
                "{name:?}: {key:?}"
            );
            assert!(
                http::HeaderValue::from_str(&key).is_ok(),
                "{name:?}: {key:?}"
            );
        }
        assert_ne!(
            shared_key_for(Path::new("/a/x y")),
            shared_key_for(Path::new("/a/x_y"))
        );
        assert_eq!(
            shared_key_for(Path::new("/srv/app")),
            shared_key_for(Path::new("/srv/app"))
        );
        let dir = context();
        let bad = BuildOptions::local(dir.path()).shared_key("a b\n");
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("shared key"));
    }

    #[test]
    fn secret_files_ssh_sockets_are_checked_and_platforms_sent_once() {
        let dir = context();
        let missing =
            BuildOptions::local(dir.path()).secret(Secret::file("npmrc", "/nonexistent/npmrc"));
        let err = missing.validate().unwrap_err().to_string();
        assert!(
            err.contains("npmrc")
                && err.contains("/nonexistent/npmrc")
                && err.contains("invalid secret"),
            "{err}"
        );
        let a_dir = BuildOptions::local(dir.path()).secret(Secret::file("d", dir.path()));
        assert!(a_dir
            .validate()
            .unwrap_err()
            .to_string()
            .contains("directory"));
        let ssh = BuildOptions::local(dir.path()).ssh(SshAgent {
            id: "default".into(),
            socket: "/nonexistent/agent.sock".into(),
        });
        let err = ssh.validate().unwrap_err().to_string();
        assert!(
            err.contains("invalid SSH agent") && err.contains("/nonexistent/agent.sock"),
            "{err}"
        );
        let platform = |text: &str| text.parse::<Platform>().unwrap();
        let plan = SolvePlan::new(
            &BuildOptions::local(dir.path())
                .platform(platform("linux/x86_64"))
                .platform(platform("linux/armhf"))
                .platform(platform("linux/amd64")),
            &daemon("v0.13.2"),
            true,
        )
        .unwrap();
        // Normalised and each sent once, as buildx sends them.
        assert_eq!(
            plan.request.frontend_attrs["platform"],
            "linux/amd64,linux/arm/v7"
        );
        let file_ctx = BuildOptions::local(dir.path().join("Dockerfile"));
        assert!(file_ctx
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        let dir_dockerfile = BuildOptions::local(dir.path()).dockerfile(dir.path());
        assert!(dir_dockerfile
            .validate()
            .unwrap_err()
            .to_string()
            .contains("is a directory"));
    }

    #[test]
    fn image_names_are_checked_before_anything_is_sent() {
        let dir = context();
        for bad in ["Bad Tag!!", "r/a:", "r/A:1", "r/a:-1", "r/a@sha256:x"] {
            let err = BuildOptions::local(dir.path())
                .tag("r/ok:1")
                .tag(bad)
                .validate();
            match err {
                Err(Error::InvalidOption {
                    field,
                    value,
                    reason,
                }) => {
                    assert_eq!(field, OptionField::Tag);
                    assert_eq!(value, bad);
                    assert!(reason.contains(&format!("{bad:?}")), "{reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        for ok in ["app", "r.example:5000/team/app:1.2", "localhost/a_b:latest"] {
            assert!(
                BuildOptions::local(dir.path()).tag(ok).validate().is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_lowercase_dockerfile_is_the_fallback() {
        let names = |list: &[&str]| -> Vec<std::ffi::OsString> {
            list.iter().map(std::ffi::OsString::from).collect()
        };
        assert_eq!(pick_dockerfile_name(&names(&["dockerfile"])), "dockerfile");
        assert_eq!(
            pick_dockerfile_name(&names(&["dockerfile", "Dockerfile"])),
            "Dockerfile"
        );
        assert_eq!(pick_dockerfile_name(&names(&["foo"])), "Dockerfile");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dockerfile"), "FROM scratch\n").unwrap();
        let prepared = BuildOptions::local(dir.path()).prepare().unwrap();
        assert_eq!(prepared.frontend_attrs()["filename"], "dockerfile");
        // Only the default name falls back.
        let other = BuildOptions::local(dir.path()).dockerfile(dir.path().join("Containerfile"));
        assert!(other.prepare().is_err());
    }

    #[test]
    fn stdin_inputs_follow_buildx() {
        // A Dockerfile alone: an empty context, the content from a private directory
        // that is gone once the build is dropped.
        let prepared = BuildOptions::from_stdin(b"FROM scratch\n".to_vec())
            .prepare()
            .unwrap();
        assert_eq!(prepared.frontend_attrs()["dockerfilekey"], "dockerfile");
        assert_eq!(prepared.frontend_attrs()["filename"], "Dockerfile");
        let dirs: BTreeMap<_, _> = prepared.local_dirs.iter().cloned().collect();
        assert_eq!(std::fs::read_dir(&dirs["context"]).unwrap().count(), 0);
        let dockerfile = dirs["dockerfile"].join("Dockerfile");
        assert_eq!(std::fs::read(&dockerfile).unwrap(), b"FROM scratch\n");
        drop(prepared);
        assert!(!dockerfile.exists());
        let empty = BuildOptions::from_stdin(b" \n".to_vec())
            .prepare()
            .unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty}");

        // A tar archive: pulled by the daemon through the session.
        let mut tar = vec![0u8; 1024];
        tar[..4].copy_from_slice(b"file");
        tar[100..107].copy_from_slice(b"0000644");
        tar[156] = b'0';
        let sum: u32 = tar[..512].iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
        tar[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let options = BuildOptions::from_stdin(tar);
        assert!(matches!(options.context, BuildContext::Archive(_)));
        let prepared = options.prepare().unwrap();
        assert!(prepared.frontend_attrs()["context"].starts_with("http://buildkit-session/"));
        assert!(prepared.local_dirs.is_empty());
        assert_eq!(prepared.uploads.len(), 1);

        // A Dockerfile given as content with a local context.
        let dir = context();
        let prepared = BuildOptions::local(dir.path())
            .dockerfile_content("FROM scratch\nLABEL a=b\n")
            .prepare()
            .unwrap();
        let dirs: BTreeMap<_, _> = prepared.local_dirs.iter().cloned().collect();
        assert_eq!(dirs["context"], dir.path().canonicalize().unwrap());
        assert_ne!(dirs["dockerfile"], dirs["context"]);
    }

    #[test]
    fn archives_are_told_from_dockerfiles() {
        use crate::build::is_archive;
        assert!(is_archive(&[0x1F, 0x8B, 0x08, 0]));
        assert!(is_archive(b"BZh91AY"));
        assert!(is_archive(&[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 1]));
        assert!(!is_archive(b"FROM scratch\n"));
        assert!(!is_archive(&[0u8; 1024]));
        let mut long = b"FROM scratch\n".to_vec();
        long.resize(600, b' ');
        assert!(!is_archive(&long));
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://github.com/o/r.git#main").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            url_host("http://127.0.0.1:8418/app.git").as_deref(),
            Some("127.0.0.1:8418")
        );
        assert_eq!(
            url_host("git@github.com:o/r.git").as_deref(),
            Some("github.com")
        );
        // Not scp-like: a slash before the first colon, or no colon (found by the options
        // fuzz target; input kept in fuzz/regressions/options/git-at-slash).
        assert_eq!(url_host("git@httpsz//usem@git.e:8443/org/app.git"), None);
        assert_eq!(url_host("git@host/path"), None);
        assert_eq!(url_host("git@:path"), None);
    }
}
