//! Running one client process and measuring it: wall time, CPU time
//! (user + sys) and peak resident memory.
//!
//! The child is reaped with `wait4(2)`, whose `rusage` on Linux covers the
//! child *and* the descendants it reaped itself (`RUSAGE_BOTH` in the
//! kernel). So `docker buildx build` is measured as users run it: the docker
//! CLI front plus the `docker-buildx` plugin it starts and waits for. Peak
//! RSS (`ru_maxrss`) is the largest of those processes.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// What one run of a client cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// From just before `spawn` to the reaping of the process.
    pub wall: Duration,
    /// User CPU time of the process (and its reaped descendants).
    pub user: Duration,
    /// System CPU time of the process (and its reaped descendants).
    pub sys: Duration,
    /// Peak resident set size in KiB.
    pub max_rss_kib: u64,
}

impl Sample {
    /// User + system time.
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

/// How a measured process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => write!(f, "signal {signal}"),
        }
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// Runs `command` with stdin closed and stdout + stderr appended to `log`,
/// waits for it and returns how it ended and what it cost.
pub fn run_measured(command: &mut Command, log: &Path) -> io::Result<(Exit, Sample)> {
    let out = File::create(log)?;
    let err = out.try_clone()?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    let started = Instant::now();
    let child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet reaped (the `Child` handle is
        // never waited on); the pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if reaped == -1 && error.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(error);
    }
    let wall = started.elapsed();
    // The process is reaped; dropping the handle neither waits nor kills.
    drop(child);
    let exit = if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(-1)
    };
    let sample = Sample {
        wall,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
    };
    Ok((exit, sample))
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub fn median_f64(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// Per-tool medians of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Median wall time, seconds.
    pub wall_s: f64,
    /// Median CPU time (user + sys), seconds.
    pub cpu_s: f64,
    /// Median peak RSS, MiB.
    pub rss_mib: f64,
    /// Number of samples.
    pub runs: usize,
}

impl Summary {
    /// Medians of `samples`; `None` without samples.
    pub fn of(samples: &[Sample]) -> Option<Summary> {
        let wall: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
        let cpu: Vec<f64> = samples.iter().map(|s| s.cpu().as_secs_f64()).collect();
        let rss: Vec<f64> = samples
            .iter()
            .map(|s| s.max_rss_kib as f64 / 1024.0)
            .collect();
        Some(Summary {
            wall_s: median_f64(&wall)?,
            cpu_s: median_f64(&cpu)?,
            rss_mib: median_f64(&rss)?,
            runs: samples.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median_f64(&[]), None);
        assert_eq!(median_f64(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_f64(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn measures_a_child() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let (exit, sample) =
            run_measured(Command::new("sh").args(["-c", "echo hi; exit 3"]), &log).unwrap();
        assert_eq!(exit, Exit::Code(3));
        assert!(sample.max_rss_kib > 0);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hi\n");
    }
}
