//! `side-by-side`: `cicd-agents build` and `docker buildx build` on the same
//! daemon (or `buildctl build` on a standalone BuildKit, `--tools
//! ours,buildctl --buildkit-addr ADDR`), alternating; prints a markdown table
//! and writes it to `target/bench/report.md`. Run `side-by-side --help` for
//! the options.

use std::path::PathBuf;
use std::process::ExitCode;

use cicd_agents_benches::contexts::ManyFiles;
use cicd_agents_benches::harness::{self, BenchError, Case, Config, FirstBuild, Tool};
use cicd_agents_benches::{bench_dir, testenv_var};

fn defaults() -> Result<Config, BenchError> {
    let docker_sock = testenv_var("CICD_TESTENV_DOCKER_SOCK").ok_or_else(|| {
        BenchError::Usage("CICD_TESTENV_DOCKER_SOCK is not set and no test environment file was found; run scripts/testenv.sh up".into())
    })?;
    let base_image =
        testenv_var("CICD_TESTENV_BASE_IMAGE").unwrap_or_else(|| "busybox:latest".into());
    let ours = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("cicd-agents")))
        .unwrap_or_else(|| PathBuf::from("cicd-agents"));
    let bench = bench_dir();
    Ok(Config {
        iterations: 5,
        cases: Case::ALL.to_vec(),
        tools: vec![Tool::Ours, Tool::Buildx],
        files: ManyFiles::FULL,
        big_bytes: 1 << 30,
        log_lines: 100_000,
        first_build: FirstBuild::Prune,
        ours,
        docker: PathBuf::from("docker"),
        docker_sock: PathBuf::from(docker_sock),
        buildctl: PathBuf::from("buildctl"),
        buildkit_addr: None,
        base_image,
        work_dir: bench.join("work"),
        report: bench.join("report.md"),
        keep_work: false,
        verbose: false,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match defaults().and_then(|d| harness::parse_args(&args, d)) {
        Ok(config) => config,
        Err(BenchError::Usage(text)) if args.iter().any(|a| a == "--help" || a == "-h") => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let report = match harness::run(&config) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let text = report.markdown();
    println!("{text}");
    if let Some(parent) = config.report.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(err) = std::fs::write(&config.report, &text) {
        eprintln!("error: writing {}: {err}", config.report.display());
        return ExitCode::FAILURE;
    }
    let json = config.report.with_extension("json");
    match serde_json::to_string_pretty(&report) {
        Ok(data) => {
            if let Err(err) = std::fs::write(&json, data) {
                eprintln!("warning: writing {}: {err}", json.display());
            }
        }
        Err(err) => eprintln!("warning: encoding the samples: {err}"),
    }
    eprintln!(
        "report written to {} (samples in {})",
        config.report.display(),
        json.display()
    );
    ExitCode::SUCCESS
}
