//! `cicd-agents build`: `docker buildx build`'s flags, run through the library.

use std::path::PathBuf;
use std::process::ExitCode;

use cicd_agents_buildkit::build::{
    parse_key_values, BuildContext, BuildOptions, CacheEntry, NamedContext, Output,
};
use cicd_agents_buildkit::flags::{
    Annotation, Attest, AttestKind, OptionField, Platform, ShmSize, Ulimit,
};
use cicd_agents_buildkit::pool::{routing_key, PoolError};
use cicd_agents_buildkit::progress::ProgressMode;
use cicd_agents_buildkit::{BuildResult, BuilderPool, Error, Secret, SshAgent};
use clap::Args;

use crate::connection::ConnectionArgs;

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Build context: a directory, a git URL (https://host/org/repo.git#ref:subdir), or `-`
    /// for standard input (a tar archive, or a Dockerfile built with an empty context).
    context: String,
    /// Dockerfile (default: CONTEXT/Dockerfile); `-` reads it from standard input.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Build-time variable (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Image label (KEY=VALUE).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Target platform(s), e.g. linux/amd64,linux/arm64 (`local`: this machine's).
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Do not use the cache.
    #[arg(long)]
    no_cache: bool,
    /// Do not use the cache for these stages.
    #[arg(long = "no-cache-filter", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// Network mode for RUN steps (default, host, none).
    #[arg(long)]
    network: Option<String>,
    /// Extra /etc/hosts entry (host:ip).
    #[arg(long = "add-host")]
    add_hosts: Vec<String>,
    /// Named context (name=dir, name=docker-image://ref, name=git-url).
    #[arg(long = "build-context")]
    build_contexts: Vec<String>,
    /// Build secret (id=NAME,src=FILE or id=NAME,env=VAR).
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// SSH agent to forward (default, default=/path/agent.sock, id=/path).
    #[arg(long = "ssh")]
    ssh: Vec<String>,
    /// Image name(s).
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Push the image (shorthand for --output type=registry).
    #[arg(long)]
    push: bool,
    /// Load the image into the Docker daemon (shorthand for --output type=docker).
    #[arg(long)]
    load: bool,
    /// Output destination (type=image|registry|local|tar|oci|docker|moby|cacheonly,key=value...).
    #[arg(short = 'o', long = "output")]
    outputs: Vec<String>,
    /// Cache import (type=registry,ref=... or a bare ref).
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// Cache export (type=registry,ref=...,mode=max | type=inline).
    #[arg(long = "cache-to")]
    cache_to: Vec<String>,
    /// Extra entitlement (network.host, security.insecure).
    #[arg(long = "allow")]
    allow: Vec<String>,
    /// Raw frontend option (key=value).
    #[arg(long = "opt")]
    opts: Vec<String>,
    /// Write the build result metadata (buildx-compatible JSON) to this file.
    #[arg(long = "metadata-file")]
    metadata_file: Option<PathBuf>,
    /// Write the image digest to this file.
    #[arg(long = "iidfile")]
    iid_file: Option<PathBuf>,
    /// Progress output: auto, plain, tty, quiet, rawjson.
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Print only the image digest.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Always resolve base images from the registry.
    #[arg(long)]
    pull: bool,
    /// Provenance attestation: true, false, or attributes (mode=min|max,...).
    /// Shorthand for --attest type=provenance,...; image outputs get mode=min by default.
    #[arg(long)]
    provenance: Option<String>,
    /// SBOM attestation: true, false, or attributes (generator=IMAGE,...).
    /// Shorthand for --attest type=sbom,...
    #[arg(long)]
    sbom: Option<String>,
    /// Attestation (type=provenance|sbom[,disabled=true][,key=value...]).
    #[arg(long = "attest")]
    attests: Vec<String>,
    /// Image annotation ([index:|index-descriptor:|manifest[PLATFORM]:|manifest-descriptor:]KEY=VALUE).
    #[arg(long = "annotation")]
    annotations: Vec<String>,
    /// Size of /dev/shm in RUN steps (e.g. 64m, 1g, or bytes).
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Resource limit for RUN steps (NAME=SOFT[:HARD], e.g. nofile=1024:2048).
    #[arg(long = "ulimit")]
    ulimits: Vec<String>,
    /// Parent cgroup of RUN steps.
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// buildx's builder instance: `default` (the Docker daemon) or a daemon address;
    /// cicd-agents has no named builders (use --addr).
    #[arg(long)]
    builder: Option<String>,
    /// Build on a pool of daemons instead of one (not with --addr): addresses separated by
    /// commas, or dns+tcp://SERVICE.NAMESPACE.svc:PORT for the ready replicas of a headless
    /// Service (`k8s render pool`). The same --pool-key always lands on the same daemon while
    /// it is up; an unreachable daemon is passed over, a build that loses its daemon is
    /// started again on the next one. TLS flags apply to every daemon.
    #[arg(long = "pool", value_delimiter = ',', value_name = "ADDR[,ADDR...]")]
    pool: Vec<String>,
    /// The routing key for --pool (default: the git context's URL without #ref, or the local
    /// context's absolute path: each project keeps its daemon and its cache).
    #[arg(long = "pool-key", requires = "pool")]
    pool_key: Option<String>,
}

impl BuildArgs {
    fn options(&self) -> anyhow::Result<BuildOptions> {
        let file_on_stdin = self.file.as_deref().is_some_and(|f| f.as_os_str() == "-");
        let mut options = if self.context == "-" {
            // As buildx: a tar archive on stdin is the context, anything else a Dockerfile.
            if file_on_stdin {
                return Err(crate::exit::usage(
                    "invalid argument: can't use stdin for both the build context and --file",
                ));
            }
            let options = BuildOptions::from_stdin(read_stdin()?);
            if options.dockerfile_content.is_some() && self.file.is_some() {
                return Err(crate::exit::usage(
                    "ambiguous Dockerfile source: both stdin and --file name a Dockerfile",
                ));
            }
            options
        } else {
            BuildOptions::new(BuildContext::parse(&self.context))
        };
        if file_on_stdin {
            options.dockerfile_content = Some(read_stdin()?);
        } else if self.file.is_some() {
            options.dockerfile = self.file.clone();
        }
        options.target = self.target.clone();
        options.build_args = parse_key_values(OptionField::BuildArg, &self.build_args)?;
        options.labels = parse_key_values(OptionField::Label, &self.labels)?;
        options.platforms = Platform::parse_list(&self.platforms)?;
        options.no_cache = self.no_cache;
        options.no_cache_filter = self.no_cache_filter.clone();
        options.network = self.network.as_deref().map(str::parse).transpose()?;
        options.add_hosts = self
            .add_hosts
            .iter()
            .map(|h| h.parse())
            .collect::<Result<_, _>>()?;
        for spec in &self.build_contexts {
            let (name, value) = spec.split_once('=').ok_or_else(|| Error::InvalidOption {
                field: OptionField::BuildContext,
                value: spec.clone(),
                reason: "expected name=value".into(),
            })?;
            options
                .build_contexts
                .insert(name.to_string(), NamedContext::parse(value)?);
        }
        options.secrets = self
            .secrets
            .iter()
            .map(|s| Secret::parse(s))
            .collect::<Result<_, _>>()?;
        options.ssh = self
            .ssh
            .iter()
            .map(|s| SshAgent::parse(s))
            .collect::<Result<_, _>>()?;
        options.tags = self.tags.clone();
        options.push = self.push;
        options.outputs = self
            .outputs
            .iter()
            .map(|o| Output::parse(o))
            .collect::<Result<_, _>>()?;
        if self.load {
            options.outputs.push(Output::new("docker", []));
        }
        options.cache_from = self
            .cache_from
            .iter()
            .map(|c| CacheEntry::parse_import(c))
            .collect::<Result<_, _>>()?;
        options.cache_to = self
            .cache_to
            .iter()
            .map(|c| CacheEntry::parse_export(c))
            .collect::<Result<_, _>>()?;
        options.allow = self
            .allow
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()?;
        options.frontend_attrs = parse_key_values(OptionField::FrontendAttr, &self.opts)?;
        options.pull = self.pull;
        // buildx puts --provenance and --sbom first, then every --attest.
        if let Some(value) = self.provenance.as_deref().filter(|v| !v.is_empty()) {
            options.attests.push(Attest::provenance(value)?);
        }
        if let Some(value) = self.sbom.as_deref().filter(|v| !v.is_empty()) {
            options.attests.push(Attest::sbom(value)?);
        }
        for spec in self.attests.iter().filter(|s| !s.is_empty()) {
            options.attests.push(spec.parse()?);
        }
        if no_default_attestations()?
            && !options
                .attests
                .iter()
                .any(|a| a.kind == AttestKind::Provenance)
        {
            options.attests.push(Attest::provenance("false")?);
        }
        options.annotations = self
            .annotations
            .iter()
            .map(|a| a.parse::<Annotation>())
            .collect::<Result<_, _>>()?;
        options.shm_size = self
            .shm_size
            .as_deref()
            .map(str::parse::<ShmSize>)
            .transpose()?;
        options.ulimits = self
            .ulimits
            .iter()
            .map(|u| u.parse::<Ulimit>())
            .collect::<Result<_, _>>()?;
        options.cgroup_parent = self.cgroup_parent.clone().filter(|c| !c.is_empty());
        options.metadata_file = self.metadata_file.clone();
        options.iid_file = self.iid_file.clone();
        Ok(options)
    }
}

/// All of standard input (`-` as the context or `--file`).
fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data)
        .map_err(|err| anyhow::anyhow!("reading standard input: {err}"))?;
    Ok(data)
}

/// buildx's `BUILDX_NO_DEFAULT_ATTESTATIONS`: when true, no provenance is added by default.
fn no_default_attestations() -> anyhow::Result<bool> {
    match std::env::var("BUILDX_NO_DEFAULT_ATTESTATIONS") {
        Ok(value) => match value.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(crate::exit::usage(format!(
                "invalid BUILDX_NO_DEFAULT_ATTESTATIONS {value:?}: expected true or false"
            ))),
        },
        Err(_) => Ok(false),
    }
}

/// `--builder`: buildx's named builders have no counterpart here; `default` is the
/// Docker daemon of `$DOCKER_HOST` (or the usual socket), as in buildx, and an
/// address is taken as `--addr`.
fn apply_builder(args: &mut BuildArgs) -> anyhow::Result<()> {
    let Some(builder) = args.builder.clone() else {
        return Ok(());
    };
    let address = if builder == "default" {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.trim().is_empty() => format!("docker://{}", host.trim()),
            _ => "docker://".to_string(),
        }
    } else if builder.contains("://") {
        builder.clone()
    } else {
        return Err(crate::exit::usage(format!(
            "invalid --builder {builder:?}: cicd-agents has no named builder instances; \
             give the daemon's address with --addr (e.g. docker://, unix:///run/buildkit/buildkitd.sock, \
             tcp://host:1234) or --builder ADDRESS, or use --builder default for the Docker daemon"
        )));
    };
    match &args.connection.addr {
        Some(addr) if *addr != address => Err(crate::exit::usage(
            "--builder and --addr name different daemons; give one",
        )),
        _ => {
            args.connection.addr = Some(address);
            Ok(())
        }
    }
}

pub async fn run(mut args: BuildArgs) -> anyhow::Result<ExitCode> {
    apply_builder(&mut args)?;
    if !args.pool.is_empty() && args.connection.addr.is_some() {
        return Err(crate::exit::usage(
            "--pool and --addr (or --builder) both name where to build; give one",
        ));
    }
    let options = args.options()?;
    // `tty` on something that is not a terminal is refused here, before dialling, as buildx
    // refuses it before building.
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress.parse::<ProgressMode>()?.on_stderr()?
    };
    // Bad input is reported before dialling, whether or not a daemon is up; the
    // checked build is what runs.
    let prepared = options.prepare()?;
    if !args.pool.is_empty() {
        return run_on_pool(&args, &options, mode).await;
    }
    let client = args.connection.connect().await?;
    let mut sink = mode.stderr_sink_for(&client.address().to_string())?;
    let build = client.build_prepared(&prepared, sink.as_mut());
    let result = tokio::select! {
        result = build => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ncancelled: the build was stopped on the daemon");
            return Ok(ExitCode::from(crate::exit::INTERRUPTED));
        }
    };
    let result = match result {
        Ok(result) => result,
        Err(Error::Build(error)) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
        Err(other) => return Err(other.into()),
    };
    report(&args, &result);
    Ok(ExitCode::SUCCESS)
}

/// `--pool`: the library's `BuilderPool`, with its sticky routing and failover.
async fn run_on_pool(
    args: &BuildArgs,
    options: &BuildOptions,
    mode: ProgressMode,
) -> anyhow::Result<ExitCode> {
    let pool = BuilderPool::new(&args.pool, args.connection.tls()).map_err(|err| match err {
        PoolError::Address(Error::InvalidAddress {
            address, reason, ..
        }) => crate::exit::usage(format!("invalid --pool address {address:?}: {reason}")),
        other => other.into(),
    })?;
    let key = args
        .pool_key
        .clone()
        .unwrap_or_else(|| routing_key(options));
    // The progress names the daemon that builds once the pool has chosen it.
    let mut sink = mode.stderr_sink_for(&format!("pool {}", args.pool.join(",")))?;
    let build = pool.build(&key, options, sink.as_mut());
    let outcome = tokio::select! {
        outcome = build => outcome,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ncancelled: the build was stopped on the daemon");
            return Ok(ExitCode::from(crate::exit::INTERRUPTED));
        }
    };
    let pooled = match outcome {
        Ok(pooled) => pooled,
        Err(PoolError::Build {
            address,
            source: Error::Build(error),
            ..
        }) => {
            eprintln!("error: {error} (on {address})");
            return Ok(ExitCode::FAILURE);
        }
        Err(PoolError::Address(err)) => return Err(err.into()),
        Err(other) => return Err(other.into()),
    };
    // The plain and tty progress said which daemons were passed over as it happened.
    if !matches!(mode, ProgressMode::Plain | ProgressMode::Tty) {
        for attempt in &pooled.passed_over {
            eprintln!("passed over {attempt}");
        }
    }
    if !args.quiet {
        eprintln!("builder: {}", pooled.address);
    }
    report(args, &pooled.result);
    Ok(ExitCode::SUCCESS)
}

/// What a finished build prints: the image ID with `-q`, otherwise names and digest.
fn report(args: &BuildArgs, result: &BuildResult) {
    if args.quiet {
        if let Some(image_id) = result.image_id() {
            println!("{image_id}");
        }
    } else if let Some(digest) = &result.digest {
        for name in &result.image_names {
            eprintln!("image: {name}");
        }
        eprintln!("digest: {digest}");
    }
}
