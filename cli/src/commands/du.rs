//! `cicd-agents du`: build cache disk usage.

use std::process::ExitCode;

use cicd_agents_buildkit::DiskUsageOptions;
use clap::Args;

use crate::connection::ConnectionArgs;
use crate::output::{human_bytes, print_json, table, Format};

#[derive(Debug, Args)]
pub struct DuArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Filter records (e.g. type==regular); repeatable.
    #[arg(long = "filter", short = 'f')]
    filters: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub async fn run(args: DuArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.connect().await?;
    let records = client
        .disk_usage(&DiskUsageOptions {
            filters: args.filters,
        })
        .await?;
    match args.format {
        Format::Json => print_json(&records)?,
        Format::Text => {
            let mut rows = vec![vec![
                "ID".into(),
                "RECLAIMABLE".into(),
                "SIZE".into(),
                "DESCRIPTION".into(),
            ]];
            let mut total = 0i64;
            let mut reclaimable = 0i64;
            for record in &records {
                total += record.size;
                let can_free = !record.in_use && !record.shared;
                if can_free {
                    reclaimable += record.size;
                }
                let id = if record.mutable {
                    format!("{}*", record.id)
                } else {
                    record.id.clone()
                };
                rows.push(vec![
                    id,
                    can_free.to_string(),
                    human_bytes(record.size),
                    record.description.clone(),
                ]);
            }
            print!("{}", table(&rows));
            println!("Reclaimable: {}", human_bytes(reclaimable));
            println!("Total:       {}", human_bytes(total));
        }
    }
    Ok(ExitCode::SUCCESS)
}
