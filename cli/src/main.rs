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

/// Whether diagnostics on stderr are coloured: only on a terminal, and never
/// when `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
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

#[cfg(test)]
mod tests {
    use super::log_colour;
    use std::ffi::OsStr;

    #[test]
    fn log_colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some(OsStr::new("1"))));
    }
}
