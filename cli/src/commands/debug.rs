//! `cicd-agents debug info|workers`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::connection::ConnectionArgs;
use crate::output::{print_json, table, Format};

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Which BuildKit the daemon is.
    Info(DebugArgs),
    /// The daemon's workers and their platforms.
    Workers(DebugArgs),
}

#[derive(Debug, Args)]
pub struct DebugArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(command: DebugCommand) -> anyhow::Result<ExitCode> {
    match command {
        DebugCommand::Info(args) => {
            let client = args.connection.connect().await?;
            let info = client.info().await?;
            match args.format {
                Format::Json => print_json(&info)?,
                Format::Text => {
                    println!("Address:  {}", info.address);
                    println!("BuildKit: {}", info.version_display());
                    if let Some(reported) = &info.reported {
                        if !reported.package.is_empty() {
                            println!("Package:  {}", reported.package);
                        }
                        if !reported.revision.is_empty() {
                            println!("Revision: {}", reported.revision);
                        }
                    }
                }
            }
        }
        DebugCommand::Workers(args) => {
            let client = args.connection.connect().await?;
            let workers = client.list_workers().await?;
            match args.format {
                Format::Json => print_json(&workers)?,
                Format::Text => {
                    let mut rows = vec![vec!["ID".to_string(), "PLATFORMS".to_string()]];
                    rows.extend(
                        workers
                            .iter()
                            .map(|w| vec![w.id.clone(), w.platforms.join(",")]),
                    );
                    print!("{}", table(&rows));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
