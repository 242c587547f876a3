//! The side-by-side benchmark: `cicd-agents build` and `docker buildx build`
//! on the same daemon (or `cicd-agents build` and `buildctl build` on a
//! standalone BuildKit), in the same run, alternating the tools.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::contexts::{self, ManyFiles, NONCE_ARG};
use crate::measure::{run_measured, Sample, Summary};

/// The clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Tool {
    /// `cicd-agents build`.
    Ours,
    /// `docker buildx build` (docker driver).
    Buildx,
    /// `buildctl build` against a standalone BuildKit (`--buildkit-addr`).
    Buildctl,
}

impl Tool {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Ours => "cicd-agents",
            Tool::Buildx => "buildx",
            Tool::Buildctl => "buildctl",
        }
    }

    fn parse(text: &str) -> Option<Tool> {
        match text {
            "ours" | "cicd-agents" => Some(Tool::Ours),
            "buildx" | "theirs" => Some(Tool::Buildx),
            "buildctl" => Some(Tool::Buildctl),
            _ => None,
        }
    }

    /// What the CPU and memory columns cover for this tool.
    fn process_tree(self) -> &'static str {
        match self {
            Tool::Ours => "the `cicd-agents` process",
            Tool::Buildx => "`docker` CLI + `docker-buildx` plugin",
            Tool::Buildctl => "the `buildctl` process",
        }
    }
}

/// The benchmark cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Case {
    /// Many small files, first build after a prune.
    FilesFirst,
    /// Many small files, no-change rebuild.
    FilesNoChange,
    /// Many small files, one file changed.
    FilesOneChange,
    /// One big file, first build after a prune.
    BigFirst,
    /// One big file, no-change rebuild.
    BigNoChange,
    /// A step printing many log lines, `--progress plain`.
    Logs,
}

impl Case {
    /// Every case, in run order.
    pub const ALL: [Case; 6] = [
        Case::FilesFirst,
        Case::FilesNoChange,
        Case::FilesOneChange,
        Case::BigFirst,
        Case::BigNoChange,
        Case::Logs,
    ];

    /// Name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Case::FilesFirst => "files-first",
            Case::FilesNoChange => "files-nochange",
            Case::FilesOneChange => "files-onechange",
            Case::BigFirst => "big-first",
            Case::BigNoChange => "big-nochange",
            Case::Logs => "logs",
        }
    }

    fn parse(text: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|case| case.name() == text)
    }
}

/// How first builds start from nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBuild {
    /// `docker builder prune -af` (with `--buildkit-addr`:
    /// `buildctl prune --all`) before each first build (untimed).
    Prune,
    /// A freshly generated context at a new path before each first build:
    /// nothing of it is cached, and the daemon's cache is left alone (for
    /// smoke runs next to other tests).
    Fresh,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Timed runs per tool and case.
    pub iterations: usize,
    /// Cases to run.
    pub cases: Vec<Case>,
    /// Tools to run.
    pub tools: Vec<Tool>,
    /// Shape of the many-files context.
    pub files: ManyFiles,
    /// Size of the big file.
    pub big_bytes: u64,
    /// Lines printed by the log case.
    pub log_lines: usize,
    /// How first builds start from nothing.
    pub first_build: FirstBuild,
    /// The `cicd-agents` binary.
    pub ours: PathBuf,
    /// The `docker` CLI.
    pub docker: PathBuf,
    /// The Docker daemon's socket.
    pub docker_sock: PathBuf,
    /// The `buildctl` CLI.
    pub buildctl: PathBuf,
    /// A standalone BuildKit daemon (`unix://…`, `tcp://…`): when set, ours
    /// and `buildctl` build there instead of on the Docker daemon.
    pub buildkit_addr: Option<String>,
    /// Base image of the log case.
    pub base_image: String,
    /// Where contexts and logs go.
    pub work_dir: PathBuf,
    /// Where the markdown report goes.
    pub report: PathBuf,
    /// Keep the generated contexts afterwards.
    pub keep_work: bool,
    /// Print every sample.
    pub verbose: bool,
}

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// A measured or helper command failed.
    #[error("{what} failed ({detail}); log: {log}")]
    Command {
        /// What was run.
        what: String,
        /// How it ended.
        detail: String,
        /// Its output.
        log: String,
    },
    /// Bad arguments or environment.
    #[error("{0}")]
    Usage(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// Results of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// Its description for the table.
    pub label: String,
    /// Every timed sample per tool, in run order.
    pub samples: BTreeMap<Tool, Vec<Sample>>,
}

impl CaseResult {
    /// Medians for `tool`.
    pub fn summary(&self, tool: Tool) -> Option<Summary> {
        Summary::of(self.samples.get(&tool)?)
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Facts about the machine and tools.
    pub facts: Vec<(String, String)>,
    /// Per case.
    pub cases: Vec<CaseResult>,
}

fn human_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

fn label(case: Case, config: &Config) -> String {
    let files = format!(
        "{} × {} B files",
        human_count(config.files.count()),
        config.files.size
    );
    let big = format!("one {} file", human_size(config.big_bytes));
    let first = match config.first_build {
        FirstBuild::Prune => "first build after prune",
        FirstBuild::Fresh => "first build (fresh context)",
    };
    match case {
        Case::FilesFirst => format!("{files}, {first}"),
        Case::FilesNoChange => format!("{files}, no-change rebuild"),
        Case::FilesOneChange => format!("{files}, one file changed"),
        Case::BigFirst => format!("{big}, {first}"),
        Case::BigNoChange => format!("{big}, no-change rebuild"),
        Case::Logs => format!(
            "RUN printing {} lines, --progress plain",
            human_count(config.log_lines)
        ),
    }
}

/// The runner: contexts, commands, and samples.
struct Runner<'a> {
    config: &'a Config,
    files_dir: PathBuf,
    big_dir: PathBuf,
    logs_dir: PathBuf,
    counter: u64,
    nonce: String,
}

impl Runner<'_> {
    fn docker(&self) -> Command {
        let mut command = Command::new(&self.config.docker);
        command.env(
            "DOCKER_HOST",
            format!("unix://{}", self.config.docker_sock.display()),
        );
        command
    }

    /// A build command for `tool` on `context`.
    fn build_command(&self, tool: Tool, context: &Path, build_arg: Option<&str>) -> Command {
        build_command(self.config, tool, context, build_arg)
    }

    /// Runs a helper command (untimed), failing on a non-zero exit.
    fn helper(&self, what: &str, command: &mut Command) -> Result<(), BenchError> {
        let log = self.config.work_dir.join("logs/helper.log");
        let (exit, _) = run_measured(command, &log).map_err(io_err(format!("running {what}")))?;
        if !exit.success() {
            return Err(BenchError::Command {
                what: what.to_string(),
                detail: exit.to_string(),
                log: log.display().to_string(),
            });
        }
        Ok(())
    }

    fn prune(&self) -> Result<(), BenchError> {
        match &self.config.buildkit_addr {
            Some(addr) => self.helper(
                "buildctl prune --all",
                Command::new(&self.config.buildctl).args(["--addr", addr, "prune", "--all"]),
            )?,
            None => self.helper(
                "docker builder prune -af",
                self.docker().args(["builder", "prune", "-af"]),
            )?,
        }
        // Flush what the daemon wrote (and deleted) so that writeback does
        // not run during the next timed build.
        self.helper("sync", &mut Command::new("sync"))
    }

    fn timed(
        &mut self,
        case: Case,
        tool: Tool,
        context: &Path,
        build_arg: Option<&str>,
    ) -> Result<Sample, BenchError> {
        let log = self
            .config
            .work_dir
            .join(format!("logs/{}-{}.log", case.name(), tool.name()));
        let mut command = self.build_command(tool, context, build_arg);
        let (exit, sample) =
            run_measured(&mut command, &log).map_err(io_err(format!("running {}", tool.name())))?;
        if !exit.success() {
            return Err(BenchError::Command {
                what: format!("{} build ({})", tool.name(), case.name()),
                detail: exit.to_string(),
                log: log.display().to_string(),
            });
        }
        if case == Case::Logs {
            check_log_output(&log, self.config.log_lines, tool)?;
        }
        Ok(sample)
    }

    /// An untimed build, to bring a tool's incremental state up to date.
    fn warm(&mut self, tool: Tool, context: &Path) -> Result<(), BenchError> {
        let mut command = self.build_command(tool, context, None);
        let what = format!("{} warm-up build of {}", tool.name(), context.display());
        self.helper(&what, &mut command)
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A context for one first build: the shared one after a prune, or a
    /// fresh one (removed by the caller).
    fn first_build_context(
        &mut self,
        case: Case,
        tool: Tool,
    ) -> Result<(PathBuf, bool), BenchError> {
        let shared = if case == Case::FilesFirst {
            &self.files_dir
        } else {
            &self.big_dir
        };
        match self.config.first_build {
            FirstBuild::Prune => {
                self.prune()?;
                Ok((shared.clone(), false))
            }
            FirstBuild::Fresh => {
                let n = self.next();
                let dir =
                    self.config
                        .work_dir
                        .join(format!("fresh-{}-{}-{n}", case.name(), tool.name()));
                let _ = fs::remove_dir_all(&dir);
                let nonce = format!("{}-{n}", self.nonce);
                if case == Case::FilesFirst {
                    self.config.files.write(&dir, &nonce)
                } else {
                    contexts::write_big_file(
                        &dir,
                        self.config.big_bytes,
                        n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    )
                }
                .map_err(io_err(format!("writing {}", dir.display())))?;
                Ok((dir, true))
            }
        }
    }

    fn run_case(&mut self, case: Case) -> Result<CaseResult, BenchError> {
        let tools = &self.config.tools;
        let mut samples: BTreeMap<Tool, Vec<Sample>> =
            tools.iter().map(|t| (*t, Vec::new())).collect();
        match case {
            Case::FilesNoChange | Case::FilesOneChange => {
                for tool in tools.clone() {
                    let dir = self.files_dir.clone();
                    self.warm(tool, &dir)?;
                }
            }
            Case::BigNoChange => {
                for tool in tools.clone() {
                    let dir = self.big_dir.clone();
                    self.warm(tool, &dir)?;
                }
            }
            _ => {}
        }
        for iteration in 0..self.config.iterations {
            let mut order = tools.clone();
            if iteration % 2 == 1 {
                order.reverse();
            }
            for tool in order {
                let sample = match case {
                    Case::FilesFirst | Case::BigFirst => {
                        let (dir, remove) = self.first_build_context(case, tool)?;
                        let sample = self.timed(case, tool, &dir, None);
                        if remove {
                            let _ = fs::remove_dir_all(&dir);
                        }
                        sample?
                    }
                    Case::FilesNoChange => {
                        let dir = self.files_dir.clone();
                        self.timed(case, tool, &dir, None)?
                    }
                    Case::FilesOneChange => {
                        let version = self.next();
                        let dir = self.files_dir.clone();
                        self.config
                            .files
                            .change_one(&dir, (version as usize).wrapping_mul(7919), version)
                            .map_err(io_err("changing a file"))?;
                        self.timed(case, tool, &dir, None)?
                    }
                    Case::BigNoChange => {
                        let dir = self.big_dir.clone();
                        self.timed(case, tool, &dir, None)?
                    }
                    Case::Logs => {
                        let n = self.next();
                        let arg = format!("{NONCE_ARG}={}-{n}", self.nonce);
                        let dir = self.logs_dir.clone();
                        self.timed(case, tool, &dir, Some(&arg))?
                    }
                };
                if self.config.verbose {
                    eprintln!(
                        "  {:<16} {:<11} #{iteration}: wall {:>8.3}s cpu {:>7.3}s (user {:.3} sys {:.3}) rss {:>6.1} MiB",
                        case.name(),
                        tool.name(),
                        sample.wall.as_secs_f64(),
                        sample.cpu().as_secs_f64(),
                        sample.user.as_secs_f64(),
                        sample.sys.as_secs_f64(),
                        sample.max_rss_kib as f64 / 1024.0
                    );
                }
                if let Some(list) = samples.get_mut(&tool) {
                    list.push(sample);
                }
            }
        }
        Ok(CaseResult {
            case,
            label: label(case, self.config),
            samples,
        })
    }
}

/// The build command of `tool` on `context`: no export (`type=cacheonly`,
/// which for `buildctl` is no `--output` at all), plain progress, host
/// network, no default attestations (`buildctl` adds none; ours reads
/// buildx's variable), so that every tool asks the daemon for the same work.
pub fn build_command(
    config: &Config,
    tool: Tool,
    context: &Path,
    build_arg: Option<&str>,
) -> Command {
    let mut command = match tool {
        Tool::Ours => {
            let mut command = Command::new(&config.ours);
            command.args(["build", "--addr"]);
            match &config.buildkit_addr {
                Some(addr) => command.arg(addr),
                None => command.arg(format!("docker://unix://{}", config.docker_sock.display())),
            };
            command.args(["--output", "type=cacheonly"]);
            command
        }
        Tool::Buildx => {
            let mut command = Command::new(&config.docker);
            command.env(
                "DOCKER_HOST",
                format!("unix://{}", config.docker_sock.display()),
            );
            command.args(["buildx", "build", "--output", "type=cacheonly"]);
            command
        }
        Tool::Buildctl => {
            let mut command = Command::new(&config.buildctl);
            if let Some(addr) = &config.buildkit_addr {
                command.args(["--addr", addr]);
            }
            command.args(["build", "--frontend", "dockerfile.v0"]);
            let mut local = std::ffi::OsString::from("context=");
            local.push(context);
            command.arg("--local").arg(&local);
            let mut local = std::ffi::OsString::from("dockerfile=");
            local.push(context);
            command.arg("--local").arg(&local);
            command.args([
                "--progress",
                "plain",
                "--opt",
                "force-network-mode=host",
                "--allow",
                "network.host",
            ]);
            if let Some(arg) = build_arg {
                command.arg("--opt").arg(format!("build-arg:{arg}"));
            }
            return command;
        }
    };
    command.env("BUILDX_NO_DEFAULT_ATTESTATIONS", "1");
    command.args(["--progress", "plain", "--network", "host"]);
    if let Some(arg) = build_arg {
        command.args(["--build-arg", arg]);
    }
    command.arg(context);
    command
}

/// Checks that a log build printed its last line (not clipped by the daemon).
fn check_log_output(log: &Path, lines: usize, tool: Tool) -> Result<(), BenchError> {
    let text = fs::read(log).map_err(io_err(format!("reading {}", log.display())))?;
    if !contexts::plain_log_has_line(&String::from_utf8_lossy(&text), lines) {
        return Err(BenchError::Command {
            what: format!("{} log build", tool.name()),
            detail: format!("its output does not show line {lines} of the step"),
            log: log.display().to_string(),
        });
    }
    Ok(())
}

fn command_output(command: &mut Command) -> String {
    match command.output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => format!("unknown ({})", String::from_utf8_lossy(&out.stderr).trim()),
        Err(err) => format!("unknown ({err})"),
    }
}

/// `, worker oci, snapshotter overlayfs` from the daemon's first worker's
/// labels; empty when they cannot be read.
fn worker_summary(ours: &Path, addr: &str) -> String {
    let Ok(out) = Command::new(ours)
        .args(["debug", "workers", "--format", "json", "--addr", addr])
        .output()
    else {
        return String::new();
    };
    let Ok(workers) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return String::new();
    };
    let label = |name: &str| {
        workers[0]["labels"][format!("org.mobyproject.buildkit.worker.{name}")]
            .as_str()
            .map(str::to_string)
    };
    match (label("executor"), label("snapshotter")) {
        (Some(executor), Some(snapshotter)) => {
            format!(", worker {executor}, snapshotter {snapshotter}")
        }
        _ => String::new(),
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn machine_facts(config: &Config) -> Vec<(String, String)> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kib as f64 / (1024.0 * 1024.0)))
        })
        .unwrap_or_else(|| "?".into());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))?
                .split(':')
                .nth(1)
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let docker_host = format!("unix://{}", config.docker_sock.display());
    let mut facts = vec![
        (
            "machine".to_string(),
            format!("{cores} cores ({cpu}), {memory} RAM"),
        ),
        (
            "kernel".to_string(),
            command_output(Command::new("uname").arg("-r")),
        ),
    ];
    match &config.buildkit_addr {
        Some(addr) => {
            let info =
                command_output(Command::new(&config.ours).args(["debug", "info", "--addr", addr]));
            let version = info
                .lines()
                .find_map(|l| l.strip_prefix("BuildKit:"))
                .map(|v| v.trim().to_string())
                .unwrap_or(info);
            facts.push((
                "daemon".to_string(),
                format!(
                    "standalone BuildKit {version} at {addr}{}",
                    worker_summary(&config.ours, addr)
                ),
            ));
        }
        None => facts.push((
            "daemon".to_string(),
            format!(
                "Docker {} (embedded BuildKit, docker driver)",
                command_output(
                    Command::new(&config.docker)
                        .env("DOCKER_HOST", &docker_host)
                        .args(["version", "--format", "{{.Server.Version}}"])
                )
            ),
        )),
    }
    if config.tools.contains(&Tool::Buildx) {
        facts.push((
            "buildx".to_string(),
            command_output(
                Command::new(&config.docker)
                    .env("DOCKER_HOST", &docker_host)
                    .args(["buildx", "version"]),
            ),
        ));
    }
    if config.tools.contains(&Tool::Buildctl) {
        facts.push((
            "buildctl".to_string(),
            command_output(Command::new(&config.buildctl).arg("--version")),
        ));
    }
    facts.extend([
        (
            "cicd-agents".to_string(),
            command_output(Command::new(&config.ours).arg("--version")),
        ),
        (
            "iterations".to_string(),
            format!(
                "{} per tool and case, alternating the tools",
                config.iterations
            ),
        ),
    ]);
    if let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) {
        facts.push(("started (unix time)".to_string(), now.as_secs().to_string()));
    }
    facts.push(("load average at start".to_string(), load_average()));
    facts
}

/// Whether `tools` and `--buildkit-addr` fit together.
fn check_tools(config: &Config) -> Result<(), BenchError> {
    match &config.buildkit_addr {
        None if config.tools.contains(&Tool::Buildctl) => Err(BenchError::Usage(
            "--tools buildctl needs --buildkit-addr (the standalone BuildKit daemon to build on)"
                .into(),
        )),
        Some(_) if config.tools.contains(&Tool::Buildx) => Err(BenchError::Usage(
            "--buildkit-addr cannot be combined with --tools buildx: buildx builds on the Docker \
             daemon, and the tools must share one daemon; use --tools ours,buildctl"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Before anything is generated: `buildctl` runs, and the daemon at
/// `--buildkit-addr` answers (asked by our own client, so that a missing
/// daemon is told apart from a broken `buildctl`). Missing pieces are errors,
/// never a reason to skip a tool.
fn preflight(config: &Config) -> Result<(), BenchError> {
    check_tools(config)?;
    let Some(addr) = &config.buildkit_addr else {
        return Ok(());
    };
    let needs_buildctl = config.tools.contains(&Tool::Buildctl)
        || (config.first_build == FirstBuild::Prune
            && config
                .cases
                .iter()
                .any(|c| matches!(c, Case::FilesFirst | Case::BigFirst)));
    if needs_buildctl {
        let version = Command::new(&config.buildctl)
            .arg("--version")
            .output()
            .map_err(|err| {
                BenchError::Usage(format!(
                    "buildctl ({}) cannot be run: {err}; give its path with --buildctl",
                    config.buildctl.display()
                ))
            })?;
        if !version.status.success() {
            return Err(BenchError::Usage(format!(
                "buildctl ({}) --version failed ({}): {}",
                config.buildctl.display(),
                version.status,
                String::from_utf8_lossy(&version.stderr).trim()
            )));
        }
    }
    let info = Command::new(&config.ours)
        .args(["debug", "info", "--addr", addr])
        .output()
        .map_err(io_err(format!("running {}", config.ours.display())))?;
    if !info.status.success() {
        let stderr = String::from_utf8_lossy(&info.stderr);
        let reason = stderr.trim();
        return Err(BenchError::Usage(format!(
            "no BuildKit daemon answers at --buildkit-addr {addr}: {}",
            reason.strip_prefix("error: ").unwrap_or(reason)
        )));
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(config: &Config) -> Result<Report, BenchError> {
    if config.iterations == 0 {
        return Err(BenchError::Usage("--iterations must be at least 1".into()));
    }
    if !config.ours.is_file() {
        return Err(BenchError::Usage(format!(
            "the cicd-agents binary {} does not exist",
            config.ours.display()
        )));
    }
    preflight(config)?;
    fs::create_dir_all(config.work_dir.join("logs"))
        .map_err(io_err(format!("creating {}", config.work_dir.display())))?;
    let nonce = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ std::process::id() as u128
    );
    let mut runner = Runner {
        config,
        files_dir: config.work_dir.join("files-ctx"),
        big_dir: config.work_dir.join("big-ctx"),
        logs_dir: config.work_dir.join("logs-ctx"),
        counter: 0,
        nonce: nonce.clone(),
    };
    let mut facts = machine_facts(config);
    let needs_files = config
        .cases
        .iter()
        .any(|c| matches!(c, Case::FilesNoChange | Case::FilesOneChange))
        || (config.cases.contains(&Case::FilesFirst) && config.first_build == FirstBuild::Prune);
    let needs_big = config.cases.contains(&Case::BigNoChange)
        || (config.cases.contains(&Case::BigFirst) && config.first_build == FirstBuild::Prune);
    for dir in [&runner.files_dir, &runner.big_dir, &runner.logs_dir] {
        let _ = fs::remove_dir_all(dir);
    }
    if needs_files {
        eprintln!(
            "generating {} files in {}",
            config.files.count(),
            runner.files_dir.display()
        );
        config
            .files
            .write(&runner.files_dir, &nonce)
            .map_err(io_err("writing the many-files context"))?;
    }
    if needs_big {
        eprintln!(
            "generating a {} file in {}",
            human_size(config.big_bytes),
            runner.big_dir.display()
        );
        contexts::write_big_file(&runner.big_dir, config.big_bytes, 0x2545_f491_4f6c_dd1d)
            .map_err(io_err("writing the big-file context"))?;
    }
    if config.cases.contains(&Case::Logs) {
        contexts::write_log_context(&runner.logs_dir, &config.base_image, config.log_lines)
            .map_err(io_err("writing the log context"))?;
    }
    let mut cases = Vec::new();
    for case in &config.cases {
        eprintln!("case {} ({})", case.name(), label(*case, config));
        let result = runner.run_case(*case)?;
        for tool in &config.tools {
            if let Some(s) = result.summary(*tool) {
                eprintln!(
                    "  {:<11} median wall {:.3}s cpu {:.3}s rss {:.1} MiB",
                    tool.name(),
                    s.wall_s,
                    s.cpu_s,
                    s.rss_mib
                );
            }
        }
        cases.push(result);
    }
    facts.push(("load average at end".to_string(), load_average()));
    if !config.keep_work {
        for dir in [&runner.files_dir, &runner.big_dir, &runner.logs_dir] {
            let _ = fs::remove_dir_all(dir);
        }
    }
    Ok(Report { facts, cases })
}

fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 {
        format!("{:.2}", ours / theirs)
    } else {
        "–".into()
    }
}

fn seconds(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.3} s")
    } else {
        format!("{value:.2} s")
    }
}

impl Report {
    /// The tool ours is compared with: the first other tool that was run
    /// (buildx when only ours ran).
    pub fn other_tool(&self) -> Tool {
        self.cases
            .iter()
            .flat_map(|case| case.samples.keys())
            .copied()
            .find(|tool| *tool != Tool::Ours)
            .unwrap_or(Tool::Buildx)
    }

    /// The report as markdown: facts, then one table row per case.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.facts {
            let _ = writeln!(out, "- {key}: {value}");
        }
        out.push('\n');
        let other = self.other_tool();
        let name = other.name();
        let _ = writeln!(
            out,
            "| Case | Wall cicd-agents | Wall {name} | ratio | CPU cicd-agents | CPU {name} | ratio | Peak RSS cicd-agents | Peak RSS {name} | ratio |",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for case in &self.cases {
            let ours = case.summary(Tool::Ours);
            let theirs = case.summary(other);
            let cell = |s: Option<Summary>, f: fn(&Summary) -> String| {
                s.as_ref().map(f).unwrap_or_else(|| "–".into())
            };
            let r = |f: fn(&Summary) -> f64| match (&ours, &theirs) {
                (Some(a), Some(b)) => ratio(f(a), f(b)),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                case.label,
                cell(ours, |s| seconds(s.wall_s)),
                cell(theirs, |s| seconds(s.wall_s)),
                r(|s| s.wall_s),
                cell(ours, |s| seconds(s.cpu_s)),
                cell(theirs, |s| seconds(s.cpu_s)),
                r(|s| s.cpu_s),
                cell(ours, |s| format!("{:.0} MiB", s.rss_mib)),
                cell(theirs, |s| format!("{:.0} MiB", s.rss_mib)),
                r(|s| s.rss_mib),
            );
        }
        let _ = writeln!(
            out,
            "\nMedians per tool; ratio = cicd-agents / {name} (below 1 is better for cicd-agents). \
             CPU = user + sys of the client process tree ({} for {name}), \
             from `wait4`; peak RSS = largest `ru_maxrss` in that tree.",
            other.process_tree()
        );
        out
    }
}

/// Parses the harness's command line (everything after the program name).
pub fn parse_args(args: &[String], defaults: Config) -> Result<Config, BenchError> {
    let mut config = defaults;
    let mut quick = false;
    let mut iterations = None;
    let mut first_build = None;
    let mut i = 0;
    let value = |i: &mut usize, name: &str| -> Result<String, BenchError> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| BenchError::Usage(format!("{name} needs a value")))
    };
    while i < args.len() {
        let arg = args[i].as_str();
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        let take = |i: &mut usize| -> Result<String, BenchError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => value(i, name),
            }
        };
        match name {
            "--quick" => quick = true,
            "--iterations" | "-n" => {
                let text = take(&mut i)?;
                iterations = Some(text.parse().map_err(|_| {
                    BenchError::Usage(format!("--iterations: {text:?} is not a number"))
                })?);
            }
            "--cases" => {
                let text = take(&mut i)?;
                config.cases = text
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        Case::parse(s)
                            .ok_or_else(|| BenchError::Usage(format!("unknown case {s:?}")))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--tools" => {
                let text = take(&mut i)?;
                config.tools = text
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        Tool::parse(s)
                            .ok_or_else(|| BenchError::Usage(format!("unknown tool {s:?}")))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--first-build" => {
                first_build = Some(match take(&mut i)?.as_str() {
                    "prune" => FirstBuild::Prune,
                    "fresh" => FirstBuild::Fresh,
                    other => {
                        return Err(BenchError::Usage(format!(
                            "--first-build: {other:?}; expected prune or fresh"
                        )))
                    }
                })
            }
            "--files" => {
                let text = take(&mut i)?;
                let n: usize = text
                    .parse()
                    .map_err(|_| BenchError::Usage(format!("--files: {text:?} is not a number")))?;
                config.files.files = n.div_ceil(config.files.top * config.files.sub).max(1);
            }
            "--big-mib" => {
                let text = take(&mut i)?;
                let n: u64 = text.parse().map_err(|_| {
                    BenchError::Usage(format!("--big-mib: {text:?} is not a number"))
                })?;
                config.big_bytes = n << 20;
            }
            "--log-lines" => {
                let text = take(&mut i)?;
                config.log_lines = text.parse().map_err(|_| {
                    BenchError::Usage(format!("--log-lines: {text:?} is not a number"))
                })?;
            }
            "--ours" => config.ours = PathBuf::from(take(&mut i)?),
            "--docker" => config.docker = PathBuf::from(take(&mut i)?),
            "--buildctl" => config.buildctl = PathBuf::from(take(&mut i)?),
            "--buildkit-addr" => {
                let addr = take(&mut i)?;
                if !addr.contains("://") {
                    return Err(BenchError::Usage(format!(
                        "--buildkit-addr: {addr:?} is not an address (unix:///path or tcp://host:port)"
                    )));
                }
                config.buildkit_addr = Some(addr);
            }
            "--work-dir" => config.work_dir = PathBuf::from(take(&mut i)?),
            "--report" => config.report = PathBuf::from(take(&mut i)?),
            "--keep-work" => config.keep_work = true,
            "--verbose" | "-v" => config.verbose = true,
            "--help" | "-h" => return Err(BenchError::Usage(USAGE.to_string())),
            other => {
                return Err(BenchError::Usage(format!(
                    "unknown argument {other:?}\n\n{USAGE}"
                )))
            }
        }
        i += 1;
    }
    if quick {
        config.files = ManyFiles::QUICK;
        config.big_bytes = 1 << 20;
        config.log_lines = 1000;
    }
    config.iterations = iterations.unwrap_or(if quick { 1 } else { config.iterations });
    config.first_build = first_build.unwrap_or(if quick {
        FirstBuild::Fresh
    } else {
        config.first_build
    });
    if config.tools.is_empty() || config.cases.is_empty() {
        return Err(BenchError::Usage("no tools or no cases selected".into()));
    }
    check_tools(&config)?;
    Ok(config)
}

/// Command-line help.
pub const USAGE: &str = "\
side-by-side: cicd-agents build vs docker buildx build on the test environment's daemon,
or vs buildctl build on a standalone BuildKit (--tools ours,buildctl --buildkit-addr ADDR)

Options:
  --iterations N      timed runs per tool and case (default 5; 1 with --quick)
  --cases LIST        comma-separated: files-first,files-nochange,files-onechange,big-first,big-nochange,logs
  --tools LIST        ours,buildx (default) or ours,buildctl (needs --buildkit-addr)
  --buildkit-addr A   standalone BuildKit (unix:///run/buildkit/buildkitd.sock, tcp://…):
                      ours and buildctl build there, first builds prune with buildctl
  --buildctl PATH     buildctl CLI (default: buildctl)
  --quick             tiny contexts (100 files, 1 MiB, 1,000 lines), fresh contexts instead of prunes
  --first-build MODE  prune (default) or fresh (new context per first build, cache left alone)
  --files N           number of small files (default 20000)
  --big-mib N         size of the big file in MiB (default 1024)
  --log-lines N       lines printed by the log case (default 100000)
  --ours PATH         cicd-agents binary (default: next to this program)
  --docker PATH       docker CLI (default: docker)
  --work-dir DIR      contexts and logs (default: target/bench/work)
  --report FILE       markdown report (default: target/bench/report.md)
  --keep-work         keep the generated contexts
  --verbose           print every sample

Environment: CICD_TESTENV_DOCKER_SOCK and CICD_TESTENV_BASE_IMAGE, or the
environment file of scripts/testenv.sh ($CICD_TESTENV_DIR/env).";

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            iterations: 5,
            cases: Case::ALL.to_vec(),
            tools: vec![Tool::Ours, Tool::Buildx],
            files: ManyFiles::QUICK,
            big_bytes: 1 << 20,
            log_lines: 10,
            first_build: FirstBuild::Prune,
            ours: PathBuf::from("/opt/cicd-agents"),
            docker: PathBuf::from("docker"),
            docker_sock: PathBuf::from("/run/docker.sock"),
            base_image: "busybox".into(),
            buildctl: PathBuf::from("/opt/buildctl"),
            buildkit_addr: None,
            work_dir: PathBuf::from("/tmp/w"),
            report: PathBuf::from("/tmp/r.md"),
            keep_work: false,
            verbose: false,
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn argv(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn buildctl_needs_an_address_and_excludes_buildx() {
        let err = parse_args(&args(&["--tools", "ours,buildctl"]), config()).unwrap_err();
        assert!(err.to_string().contains("--buildkit-addr"), "{err}");
        let err = parse_args(
            &args(&[
                "--tools",
                "ours,buildx",
                "--buildkit-addr",
                "unix:///x.sock",
            ]),
            config(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("ours,buildctl"), "{err}");
        let err = parse_args(&args(&["--buildkit-addr", "/x.sock"]), config()).unwrap_err();
        assert!(err.to_string().contains("not an address"), "{err}");
        let ok = parse_args(
            &args(&[
                "--tools=ours,buildctl",
                "--buildkit-addr=unix:///run/bk/buildkitd.sock",
                "--buildctl",
                "/usr/local/bin/buildctl",
            ]),
            config(),
        )
        .unwrap();
        assert_eq!(ok.tools, vec![Tool::Ours, Tool::Buildctl]);
        assert_eq!(
            ok.buildkit_addr.as_deref(),
            Some("unix:///run/bk/buildkitd.sock")
        );
        assert_eq!(ok.buildctl, PathBuf::from("/usr/local/bin/buildctl"));
    }

    #[test]
    fn ours_and_buildctl_build_on_the_same_daemon_with_the_same_request() {
        let mut config = config();
        config.tools = vec![Tool::Ours, Tool::Buildctl];
        config.buildkit_addr = Some("unix:///run/bk/buildkitd.sock".into());
        let ctx = Path::new("/tmp/ctx");
        let ours = build_command(&config, Tool::Ours, ctx, Some("N=1"));
        assert_eq!(ours.get_program(), "/opt/cicd-agents");
        assert_eq!(
            argv(&ours),
            [
                "build",
                "--addr",
                "unix:///run/bk/buildkitd.sock",
                "--output",
                "type=cacheonly",
                "--progress",
                "plain",
                "--network",
                "host",
                "--build-arg",
                "N=1",
                "/tmp/ctx"
            ]
        );
        assert!(ours
            .get_envs()
            .any(|(k, v)| k == "BUILDX_NO_DEFAULT_ATTESTATIONS" && v == Some("1".as_ref())));
        let theirs = build_command(&config, Tool::Buildctl, ctx, Some("N=1"));
        assert_eq!(theirs.get_program(), "/opt/buildctl");
        assert_eq!(
            argv(&theirs),
            [
                "--addr",
                "unix:///run/bk/buildkitd.sock",
                "build",
                "--frontend",
                "dockerfile.v0",
                "--local",
                "context=/tmp/ctx",
                "--local",
                "dockerfile=/tmp/ctx",
                "--progress",
                "plain",
                "--opt",
                "force-network-mode=host",
                "--allow",
                "network.host",
                "--opt",
                "build-arg:N=1"
            ]
        );
        // Without --buildkit-addr ours still talks to the Docker daemon.
        let docker = build_command(&super::tests::config(), Tool::Ours, ctx, None);
        assert_eq!(argv(&docker)[2], "docker://unix:///run/docker.sock");
    }

    #[test]
    fn the_table_names_the_tool_ours_is_compared_with() {
        let sample = Sample {
            wall: std::time::Duration::from_millis(100),
            user: std::time::Duration::from_millis(10),
            sys: std::time::Duration::from_millis(10),
            max_rss_kib: 2048,
        };
        let mut slow = sample;
        slow.wall = std::time::Duration::from_millis(400);
        let report = Report {
            facts: vec![],
            cases: vec![CaseResult {
                case: Case::FilesNoChange,
                label: "x".into(),
                samples: [(Tool::Ours, vec![sample]), (Tool::Buildctl, vec![slow])]
                    .into_iter()
                    .collect(),
            }],
        };
        assert_eq!(report.other_tool(), Tool::Buildctl);
        let text = report.markdown();
        assert!(text.contains("| Wall buildctl |"), "{text}");
        assert!(text.contains("| 0.100 s | 0.400 s | 0.25 |"), "{text}");
        assert!(text.contains("cicd-agents / buildctl"), "{text}");
        assert!(!text.contains("buildx"), "{text}");
    }

    #[test]
    fn missing_buildctl_or_daemon_is_an_error_not_a_skip() {
        let mut config = config();
        config.tools = vec![Tool::Ours, Tool::Buildctl];
        config.buildkit_addr = Some("unix:///nonexistent/buildkitd.sock".into());
        config.buildctl = PathBuf::from("/nonexistent/buildctl");
        let err = preflight(&config).unwrap_err().to_string();
        assert!(
            err.contains("buildctl") && err.contains("/nonexistent/buildctl"),
            "{err}"
        );
        // A buildctl that runs, and an `ours` that says the daemon is not there.
        config.buildctl = PathBuf::from("true");
        config.ours = PathBuf::from("false");
        let err = preflight(&config).unwrap_err().to_string();
        assert!(
            err.contains("no BuildKit daemon answers")
                && err.contains("unix:///nonexistent/buildkitd.sock"),
            "{err}"
        );
    }
}
