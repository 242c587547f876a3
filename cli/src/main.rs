//! `cicd-agents`: BuildKit builds and GitOps chart updates from the command line.
//!
//! This crate parses arguments and renders results; every behaviour lives in
//! the library crates.

mod commands;
mod connection;
mod duration;
mod exit;
mod flag_names;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build container images with BuildKit and write the new tags into Helm charts.
#[derive(Debug, Parser)]
#[command(name = "cicd-agents", version, about, long_about = None)]
struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "CICD_AGENTS_LOG", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image from a Dockerfile (flags as in `docker buildx build`).
    Build(Box<commands::build::BuildArgs>),
    /// Update image values in a Helm chart (locally, or commit and push to its repository).
    #[command(subcommand)]
    Chart(commands::chart::ChartCommand),
    /// Inspect the daemon.
    #[command(subcommand)]
    Debug(commands::debug::DebugCommand),
    /// Kubernetes: render manifests for builds at scale, run a build Job.
    K8s(commands::k8s::K8sArgs),
    /// Show the build cache's disk usage.
    Du(commands::du::DuArgs),
    /// Run a pipeline definition: build, push, update the chart, commit.
    #[command(subcommand)]
    Pipeline(commands::pipeline::PipelineCommand),
    /// Free build cache.
    Prune(commands::prune::PruneArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Build(args) => commands::build::run(*args).await,
            Command::Chart(command) => commands::chart::run(command).await,
            Command::Debug(command) => commands::debug::run(command).await,
            Command::Du(args) => commands::du::run(args).await,
            Command::K8s(args) => commands::k8s::run(args).await,
            Command::Pipeline(command) => commands::pipeline::run(command).await,
            Command::Prune(args) => commands::prune::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", exit::render(&err));
            exit::code_for(&err)
        }
    }
}
