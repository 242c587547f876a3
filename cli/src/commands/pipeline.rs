//! `cicd-agents pipeline`: run a pipeline definition (build → push → chart update → commit),
//! or check one.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cicd_agents_buildkit::pool::PoolError;
use cicd_agents_buildkit::progress::ProgressMode;
use cicd_agents_buildkit::TlsOptions;
use cicd_agents_pipeline::definition::{parse_override, Pipeline, PipelineDefinition, PoolSpec};
use cicd_agents_pipeline::run::{EventSink, RunEvent, RunReport, Runner, Step};
use clap::{Args, Subcommand};

use crate::connection::ConnectionArgs;
use crate::output::{print_json, Format};

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run a pipeline: build (and push) the image, write the tag into the chart, commit and push.
    Run(Box<RunArgs>),
    /// Check a pipeline definition and print it resolved (no network).
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The pipeline definition (YAML).
    file: PathBuf,
    /// Override a parameter, e.g. --set image-tag=1.2.3 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Build nothing, push nothing, commit nothing: print the build it would run and the values
    /// diff it would commit.
    #[arg(long)]
    dry_run: bool,
    /// Progress output: auto, plain, tty, quiet, rawjson (events as JSON lines).
    #[arg(long, default_value = "auto")]
    progress: String,
    /// How long the chart commit keeps retrying when the branch moved, e.g. 5m (instead of
    /// the definition's chart.retry-timeout; default 2m).
    #[arg(
        long = "retry-timeout",
        value_name = "DURATION",
        value_parser = crate::duration::parse_positive_duration
    )]
    retry_timeout: Option<std::time::Duration>,
    /// Write the run report (JSON) to this file, also when the run fails.
    #[arg(long = "report-file")]
    report_file: Option<PathBuf>,
    /// Output format of the final report on stdout.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The pipeline definition (YAML).
    file: PathBuf,
    /// Override a parameter (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(command: PipelineCommand) -> anyhow::Result<ExitCode> {
    match command {
        PipelineCommand::Run(args) => run_pipeline(*args).await,
        PipelineCommand::Check(args) => check(args),
    }
}

fn load(file: &PathBuf, set: &[String]) -> anyhow::Result<Pipeline> {
    let overrides = set
        .iter()
        .map(|s| parse_override(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PipelineDefinition::from_file(file)?.resolve(overrides)?)
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let pipeline = load(&args.file, &args.set)?;
    match args.format {
        Format::Json => print_json(&pipeline)?,
        Format::Text => {
            println!("pipeline {}: ok", pipeline.name);
            for (name, value) in &pipeline.parameters {
                println!("  parameter {name} = {value}");
            }
            print!(
                "{}",
                indent(&Runner::new(pipeline.clone()).build_plan().to_string())
            );
            if let Some(chart) = &pipeline.chart {
                println!("  chart:      {} ({})", chart.repo, chart.branch);
                for values in &chart.values {
                    for image in &values.images {
                        println!("  values:     {} {}", values.file.display(), image.keys.tag);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Prints run events on stderr: step lines for people, or JSON lines for `rawjson`.
/// BuildKit's own progress (build step lines) is drawn by its renderer, so forwarded build
/// steps are not repeated here.
fn event_printer(mode: ProgressMode) -> Option<Arc<dyn EventSink>> {
    match mode {
        ProgressMode::Quiet => None,
        ProgressMode::RawJson => Some(Arc::new(|event: &RunEvent| {
            if let Ok(line) = serde_json::to_string(event) {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        })),
        _ => Some(Arc::new(|event: &RunEvent| {
            let line = match event {
                RunEvent::StepStarted { step } => format!("==> {step}"),
                RunEvent::StepProgress {
                    step: Step::Build, ..
                } => return,
                RunEvent::StepProgress { message, .. } => format!("    {message}"),
                RunEvent::StepFinished {
                    step,
                    duration,
                    outcome,
                } => {
                    format!("<== {step}: {outcome} ({:.1}s)", duration.as_secs_f64())
                }
                RunEvent::ImageBuilt {
                    digest: Some(digest),
                    ..
                } => format!("    image digest {digest}"),
                RunEvent::BuilderChosen {
                    address,
                    passed_over,
                } => {
                    let mut lines: Vec<String> = passed_over
                        .iter()
                        .map(|p| format!("    passed over {p}"))
                        .collect();
                    lines.push(format!("    builder {address}"));
                    lines.join("\n")
                }
                _ => return,
            };
            let _ = writeln!(std::io::stderr(), "{line}");
        })),
    }
}

fn write_report(path: &PathBuf, report: &RunReport) -> anyhow::Result<()> {
    std::fs::write(path, report.to_json() + "\n")
        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

fn print_report(format: Format, report: &RunReport) -> anyhow::Result<()> {
    match format {
        Format::Json => print_json(report),
        Format::Text => {
            print!("{report}");
            Ok(())
        }
    }
}

/// The TLS options of the definition's pool: the --tls* flags if any is given (the command
/// line wins over the file, with a note when both say something), else `build.pool-tls`.
fn pool_tls(connection: &ConnectionArgs, pool: Option<&PoolSpec>) -> TlsOptions {
    let from_file = pool.and_then(|pool| pool.tls.as_ref());
    if connection.has_tls() {
        if from_file.is_some() {
            eprintln!("note: --tls* options given: the definition's build.pool-tls is not used");
        }
        return connection.tls();
    }
    from_file.cloned().unwrap_or_default()
}

async fn run_pipeline(args: RunArgs) -> anyhow::Result<ExitCode> {
    let pipeline = load(&args.file, &args.set)?;
    let mode = args.progress.parse::<ProgressMode>()?.on_stderr()?;
    let mut runner = Runner::new(pipeline);
    if let Some(timeout) = args.retry_timeout {
        runner = runner.retry_timeout(timeout);
    }
    if let Some(printer) = event_printer(mode) {
        runner = runner.events_arc(printer);
    }
    // `build.pool` builds on the pool unless --addr names one daemon (the command line wins
    // over the file; $BUILDKIT_HOST does not).
    let pool = match &args.connection.addr {
        Some(_) if runner.pipeline().build.pool.is_some() => {
            eprintln!(
                "note: --addr given: building on that daemon, not on the definition's build.pool"
            );
            None
        }
        Some(_) => None,
        // The definition's addresses were checked when it was read. The --tls* flags, when
        // any is given, replace the definition's `build.pool-tls` as a whole.
        None => runner
            .builder_pool(pool_tls(
                &args.connection,
                runner.pipeline().build.pool.as_ref(),
            ))
            .map_err(|err| match err {
                PoolError::Address(err) => anyhow::Error::from(err),
                other => other.into(),
            })?,
    };
    let result = if args.dry_run {
        runner.dry_run().await
    } else if let Some(pool) = pool {
        let name = runner
            .pipeline()
            .build
            .pool
            .as_ref()
            .map(|p| format!("pool {}", p.addresses.join(",")))
            .unwrap_or_default();
        runner = runner.progress(mode.stderr_sink_for(&name)?);
        tokio::select! {
            result = runner.run_on_pool(&pool) => result,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ncancelled: the build was stopped on the daemon");
                return Ok(ExitCode::from(crate::exit::INTERRUPTED));
            }
        }
    } else {
        let client = args.connection.connect().await?;
        runner = runner.progress(mode.stderr_sink_for(&client.address().to_string())?);
        tokio::select! {
            result = runner.run(&client) => result,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ncancelled: the build was stopped on the daemon");
                return Ok(ExitCode::from(crate::exit::INTERRUPTED));
            }
        }
    };
    match result {
        Ok(report) => {
            if let Some(path) = &args.report_file {
                write_report(path, &report)?;
            }
            print_report(args.format, &report)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            if let Some(path) = &args.report_file {
                write_report(path, &failure.report)?;
            }
            if args.format == Format::Json {
                print_json(&failure.report)?;
            }
            eprintln!("error: {}", failure.error);
            Ok(ExitCode::FAILURE)
        }
    }
}
