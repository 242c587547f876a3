//! [`BuildOptions`]: everything `docker buildx build` takes, as a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::flags::{
    is_remote, AddHost, Annotation, Attest, CacheEntry, Entitlement, NamedContext, NetworkMode,
    Output, Platform, ShmSize, Ulimit,
};
use crate::session::auth::RegistryAuth;
use crate::session::secrets::Secret;
use crate::session::ssh::SshAgent;

/// The build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildContext {
    /// A local directory, sent through the session.
    Local(PathBuf),
    /// A git repository (`https://host/org/repo.git#ref:subdir`, `git@…`) or
    /// an HTTP(S) tarball, fetched by the daemon.
    Remote(String),
    /// A tar archive (plain, gzip, bzip2 or xz) held in memory, which the daemon
    /// pulls through the session and unpacks (buildx's `-` with a tar on stdin).
    Archive(Vec<u8>),
    /// An empty directory: the context of a Dockerfile given alone (buildx's `-`
    /// with a Dockerfile on stdin); served from a private temporary directory.
    Empty,
}

impl BuildContext {
    /// A directory or a URL, as users write the `CONTEXT` argument.
    pub fn parse(text: &str) -> BuildContext {
        if is_remote(text) {
            BuildContext::Remote(text.to_string())
        } else {
            BuildContext::Local(PathBuf::from(text))
        }
    }
}

/// Whether `data` starts like an archive the way buildx tells a context on
/// standard input from a Dockerfile: a bzip2, gzip or xz signature, or a tar
/// header whose checksum is right.
pub fn is_archive(data: &[u8]) -> bool {
    const SIGNATURES: [&[u8]; 3] = [
        &[0x42, 0x5A, 0x68],
        &[0x1F, 0x8B, 0x08],
        &[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00],
    ];
    if SIGNATURES.iter().any(|sig| data.starts_with(sig)) {
        return true;
    }
    let Some(header) = data.get(..512) else {
        return false;
    };
    // The checksum field (bytes 148..156) holds the octal sum of the header's
    // bytes with the field itself counted as spaces.
    let field = &header[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .take_while(|c| *c != '\0')
        .collect();
    let Ok(stored) = u64::from_str_radix(digits.trim(), 8) else {
        return false;
    };
    let unsigned: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    let signed: i64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// A Dockerfile build: the context, the Dockerfile and every `buildx build`
/// option, built step by step.
///
/// ```
/// use cicd_agents_buildkit::build::{BuildOptions, CacheEntry};
///
/// let options = BuildOptions::local("./app")
///     .dockerfile("./app/Dockerfile")
///     .tag("registry.example/app:1.2.3")
///     .push(true)
///     .build_arg("VERSION", "1.2.3")
///     .cache_from(CacheEntry::registry("registry.example/app:cache"))
///     .cache_to(CacheEntry::registry("registry.example/app:cache").attr("mode", "max"));
/// assert_eq!(options.tags, ["registry.example/app:1.2.3"]);
/// ```
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context.
    pub context: BuildContext,
    /// The Dockerfile: a local path (default `<context>/Dockerfile`) or, for
    /// remote contexts, a path inside the repository.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's content, when it is not a file (buildx's `-f -`): sent
    /// from a private temporary directory, removed after the build; takes the
    /// place of [`dockerfile`](Self::dockerfile).
    pub dockerfile_content: Option<Vec<u8>>,
    /// The stage to build (`--target`).
    pub target: Option<String>,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// `--label`s on the image.
    pub labels: BTreeMap<String, String>,
    /// Target platforms (`--platform`), e.g. `linux/amd64`; each is sent once
    /// ([`Platform::parse_list`] reads buildx's comma lists).
    pub platforms: Vec<Platform>,
    /// Ignore the cache for every step (`--no-cache`).
    pub no_cache: bool,
    /// Ignore the cache for these stages only (`--no-cache-filter`).
    pub no_cache_filter: Vec<String>,
    /// Network mode for `RUN` steps (`--network host|none|default`).
    pub network: Option<NetworkMode>,
    /// Extra `/etc/hosts` entries (`--add-host name:ip`).
    pub add_hosts: Vec<AddHost>,
    /// Named contexts (`--build-context name=…`).
    pub build_contexts: BTreeMap<String, NamedContext>,
    /// Build secrets (`--secret`).
    pub secrets: Vec<Secret>,
    /// SSH agents (`--ssh`).
    pub ssh: Vec<SshAgent>,
    /// Image names (`-t/--tag`).
    pub tags: Vec<String>,
    /// Push the image (`--push`).
    pub push: bool,
    /// Outputs (`-o/--output`).
    pub outputs: Vec<Output>,
    /// Cache imports (`--cache-from`).
    pub cache_from: Vec<CacheEntry>,
    /// Cache exports (`--cache-to`).
    pub cache_to: Vec<CacheEntry>,
    /// Registry credentials; the Docker configuration by default.
    pub registry_auth: RegistryAuth,
    /// Tokens for private git contexts, by host; sent as the
    /// `GIT_AUTH_TOKEN.<host>` secret, never in a URL.
    pub git_auth_tokens: BTreeMap<String, SecretString>,
    /// Raw frontend options (`--opt key=value` in buildctl terms).
    pub frontend_attrs: BTreeMap<String, String>,
    /// Extra entitlements (`--allow security.insecure`).
    pub allow: Vec<Entitlement>,
    /// Key for incremental context transfer; defaults to one derived from the
    /// context's absolute path, so rebuilds of the same directory send only changes.
    pub shared_key: Option<String>,
    /// Always resolve base images from the registry (`--pull`).
    pub pull: bool,
    /// Attestations (`--attest`, `--provenance`, `--sbom`). Without a provenance
    /// entry, a `mode=min` provenance is added to image outputs where the daemon
    /// supports attestations, as buildx does; a disabled one turns that off.
    pub attests: Vec<Attest>,
    /// Annotations written by image outputs (`--annotation`).
    pub annotations: Vec<Annotation>,
    /// Size of `/dev/shm` in `RUN` steps (`--shm-size`).
    pub shm_size: Option<ShmSize>,
    /// Resource limits of `RUN` steps (`--ulimit`); a later entry for the same
    /// limit replaces an earlier one.
    pub ulimits: Vec<Ulimit>,
    /// Parent cgroup of `RUN` steps (`--cgroup-parent`).
    pub cgroup_parent: Option<String>,
    /// Where a successful build writes its metadata (buildx's
    /// `--metadata-file`); its directory is checked before the build starts.
    pub metadata_file: Option<PathBuf>,
    /// Where a successful build writes the image ID (buildx's `--iidfile`);
    /// its directory is checked before the build starts.
    pub iid_file: Option<PathBuf>,
}

impl BuildOptions {
    /// A build of a local directory.
    pub fn local(dir: impl Into<PathBuf>) -> BuildOptions {
        BuildOptions::new(BuildContext::Local(dir.into()))
    }

    /// A build of a git repository or tarball URL fetched by the daemon.
    pub fn remote(url: impl Into<String>) -> BuildOptions {
        BuildOptions::new(BuildContext::Remote(url.into()))
    }

    /// A build of what standard input held, as buildx takes `-` for the context:
    /// an archive ([`is_archive`]) is the context; anything else is a
    /// Dockerfile, built with an empty context.
    pub fn from_stdin(data: Vec<u8>) -> BuildOptions {
        if is_archive(&data) {
            BuildOptions::new(BuildContext::Archive(data))
        } else {
            BuildOptions::new(BuildContext::Empty).dockerfile_content(data)
        }
    }

    /// A build of `context`.
    pub fn new(context: BuildContext) -> BuildOptions {
        BuildOptions {
            context,
            dockerfile: None,
            dockerfile_content: None,
            target: None,
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            platforms: Vec::new(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            network: None,
            add_hosts: Vec::new(),
            build_contexts: BTreeMap::new(),
            secrets: Vec::new(),
            ssh: Vec::new(),
            tags: Vec::new(),
            push: false,
            outputs: Vec::new(),
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            registry_auth: RegistryAuth::docker_config(),
            git_auth_tokens: BTreeMap::new(),
            frontend_attrs: BTreeMap::new(),
            allow: Vec::new(),
            shared_key: None,
            pull: false,
            attests: Vec::new(),
            annotations: Vec::new(),
            shm_size: None,
            ulimits: Vec::new(),
            cgroup_parent: None,
            metadata_file: None,
            iid_file: None,
        }
    }

    /// Sets the Dockerfile (`-f`).
    pub fn dockerfile(mut self, path: impl AsRef<Path>) -> Self {
        self.dockerfile = Some(path.as_ref().to_path_buf());
        self
    }

    /// Builds the Dockerfile `content` (`-f -`) instead of a file.
    pub fn dockerfile_content(mut self, content: impl Into<Vec<u8>>) -> Self {
        self.dockerfile_content = Some(content.into());
        self
    }

    /// Builds this stage (`--target`).
    pub fn target(mut self, stage: impl Into<String>) -> Self {
        self.target = Some(stage.into());
        self
    }

    /// Adds a build argument.
    pub fn build_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.build_args.insert(name.into(), value.into());
        self
    }

    /// Adds an image label.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Adds a target platform (`"linux/arm64".parse()?`).
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platforms.push(platform);
        self
    }

    /// Ignores the cache.
    pub fn no_cache(mut self, no_cache: bool) -> Self {
        self.no_cache = no_cache;
        self
    }

    /// Sets the network mode of `RUN` steps.
    pub fn network(mut self, mode: NetworkMode) -> Self {
        self.network = Some(mode);
        self
    }

    /// Adds an `/etc/hosts` entry (`name:ip`).
    pub fn add_host(mut self, entry: AddHost) -> Self {
        self.add_hosts.push(entry);
        self
    }

    /// Adds a named context.
    pub fn build_context(mut self, name: impl Into<String>, context: NamedContext) -> Self {
        self.build_contexts.insert(name.into(), context);
        self
    }

    /// Adds a secret.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Forwards an SSH agent.
    pub fn ssh(mut self, agent: SshAgent) -> Self {
        self.ssh.push(agent);
        self
    }

    /// Adds an image name.
    pub fn tag(mut self, name: impl Into<String>) -> Self {
        self.tags.push(name.into());
        self
    }

    /// Pushes the image.
    pub fn push(mut self, push: bool) -> Self {
        self.push = push;
        self
    }

    /// Adds an output.
    pub fn output(mut self, output: Output) -> Self {
        self.outputs.push(output);
        self
    }

    /// Adds a cache import.
    pub fn cache_from(mut self, entry: CacheEntry) -> Self {
        self.cache_from.push(entry);
        self
    }

    /// Adds a cache export.
    pub fn cache_to(mut self, entry: CacheEntry) -> Self {
        self.cache_to.push(entry);
        self
    }

    /// Uses these registry credentials.
    pub fn registry_auth(mut self, auth: RegistryAuth) -> Self {
        self.registry_auth = auth;
        self
    }

    /// Authenticates git contexts on `host` with `token`.
    pub fn git_auth_token(mut self, host: impl Into<String>, token: impl Into<String>) -> Self {
        self.git_auth_tokens
            .insert(host.into(), SecretString::from(token.into()));
        self
    }

    /// Sets a raw frontend attribute.
    pub fn frontend_attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.frontend_attrs.insert(key.into(), value.into());
        self
    }

    /// Always resolves base images from the registry.
    pub fn pull(mut self, pull: bool) -> Self {
        self.pull = pull;
        self
    }

    /// Adds an attestation request (or, disabled, turns the default provenance off).
    pub fn attest(mut self, attest: Attest) -> Self {
        self.attests.push(attest);
        self
    }

    /// Adds an image annotation.
    pub fn annotation(mut self, annotation: Annotation) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// Sets the size of `/dev/shm` in `RUN` steps.
    pub fn shm_size(mut self, size: ShmSize) -> Self {
        self.shm_size = Some(size);
        self
    }

    /// Adds a resource limit for `RUN` steps.
    pub fn ulimit(mut self, limit: Ulimit) -> Self {
        self.ulimits.push(limit);
        self
    }

    /// Sets the parent cgroup of `RUN` steps.
    pub fn cgroup_parent(mut self, cgroup: impl Into<String>) -> Self {
        self.cgroup_parent = Some(cgroup.into());
        self
    }

    /// Sets the key for incremental context transfer.
    pub fn shared_key(mut self, key: impl Into<String>) -> Self {
        self.shared_key = Some(key.into());
        self
    }

    /// Writes the build's metadata to `path` when it succeeds (see
    /// [`BuildResult::metadata`](crate::build::BuildResult::metadata)).
    pub fn metadata_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.metadata_file = Some(path.into());
        self
    }

    /// Writes the image ID (the image's digest, or its configuration's) to
    /// `path` when the build succeeds.
    pub fn iid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.iid_file = Some(path.into());
        self
    }
}
