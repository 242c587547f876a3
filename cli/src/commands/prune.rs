//! `cicd-agents prune`: free build cache, printing each record as it goes.

use std::process::ExitCode;
use std::time::Duration;

use cicd_agents_buildkit::PruneOptions;
use cicd_agents_types::units::number_and_unit;
use clap::Args;
use futures::StreamExt;

use crate::connection::ConnectionArgs;
use crate::output::{human_bytes, Format};

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Also prune records still referenced internally.
    #[arg(long, short = 'a')]
    all: bool,
    /// Keep records used within this duration (e.g. 24h, 90m, 30s).
    #[arg(long, value_parser = crate::duration::parse_duration)]
    keep_duration: Option<Duration>,
    /// Keep this much storage (bytes, or with kB/MB/GB/KiB/MiB/GiB).
    #[arg(long = "keep-storage", value_parser = parse_bytes)]
    keep_storage: Option<i64>,
    /// Filter records (e.g. type==regular); repeatable.
    #[arg(long = "filter", short = 'f')]
    filters: Vec<String>,
    /// Output format (json prints one JSON object per freed record).
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

fn parse_bytes(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (value, unit) = number_and_unit(text)
        .ok_or_else(|| format!("{text:?} is not a size like 10GB or 512MiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        other => return Err(format!("unknown unit {other:?} in {text:?}")),
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(format!("{text:?} is too large a size"));
    }
    Ok(bytes as i64)
}

pub async fn run(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let client = args.connection.connect().await?;
    let options = PruneOptions {
        all: args.all,
        keep_duration: args.keep_duration,
        keep_bytes: args.keep_storage,
        filters: args.filters,
        ..PruneOptions::default()
    };
    let stream = client.prune(&options).await?;
    futures::pin_mut!(stream);
    let mut total = 0i64;
    let mut count = 0usize;
    while let Some(record) = stream.next().await {
        let record = record?;
        total += record.size;
        count += 1;
        match args.format {
            Format::Json => println!("{}", serde_json::to_string(&record)?),
            Format::Text => println!(
                "{}\t{}\t{}",
                record.id,
                human_bytes(record.size),
                record.description
            ),
        }
    }
    if args.format == Format::Text {
        println!("Total: {} in {count} records", human_bytes(total));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("10GB").unwrap(), 10_000_000_000);
        assert_eq!(parse_bytes("1MiB").unwrap(), 1_048_576);
        assert!(parse_bytes(&format!("{}TB", "9".repeat(400))).is_err());
        assert!(parse_bytes("lots").is_err());
    }
}
