//! Generated build contexts.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The Dockerfile of the context cases: nothing but the transfer and a copy.
pub const COPY_DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx\n";

/// Shape of the many-small-files context.
#[derive(Debug, Clone, Copy)]
pub struct ManyFiles {
    /// Top-level directories.
    pub top: usize,
    /// Subdirectories in each top-level directory.
    pub sub: usize,
    /// Files in each subdirectory.
    pub files: usize,
    /// Bytes per file.
    pub size: usize,
}

impl ManyFiles {
    /// 20 × 10 × 100 = 20,000 files of 1 KiB.
    pub const FULL: ManyFiles = ManyFiles {
        top: 20,
        sub: 10,
        files: 100,
        size: 1024,
    };
    /// 2 × 5 × 10 = 100 files, for smoke runs.
    pub const QUICK: ManyFiles = ManyFiles {
        top: 2,
        sub: 5,
        files: 10,
        size: 1024,
    };

    /// Number of files.
    pub fn count(&self) -> usize {
        self.top * self.sub * self.files
    }

    /// Relative path of file number `index` (0-based, below [`count`](Self::count)).
    pub fn path_of(&self, index: usize) -> PathBuf {
        let f = index % self.files;
        let s = (index / self.files) % self.sub;
        let t = index / (self.files * self.sub);
        PathBuf::from(format!("d{t:02}/s{s:02}/f{f:04}.txt"))
    }

    /// Writes the context into `dir` (created, must not exist or be empty);
    /// `nonce` goes into every file so that separate contexts differ.
    pub fn write(&self, dir: &Path, nonce: &str) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        fs::write(dir.join("Dockerfile"), COPY_DOCKERFILE)?;
        let mut body = Vec::with_capacity(self.size);
        for index in 0..self.count() {
            let path = dir.join(self.path_of(index));
            if index % self.files == 0 {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
            }
            body.clear();
            let _ = writeln!(body, "{nonce} file {index}");
            body.resize(self.size, b'a' + (index % 26) as u8);
            fs::write(&path, &body)?;
        }
        Ok(())
    }

    /// Rewrites file `index` of the context in `dir` with new content
    /// (`version` in it) and a modification time the daemon cannot have seen.
    pub fn change_one(&self, dir: &Path, index: usize, version: u64) -> io::Result<()> {
        let path = dir.join(self.path_of(index % self.count()));
        let mut body = format!("changed {version}\n").into_bytes();
        body.resize(self.size, b'z');
        fs::write(&path, &body)?;
        let file = fs::File::options().write(true).open(&path)?;
        file.set_modified(SystemTime::now() + Duration::from_millis(version % 1000))?;
        Ok(())
    }
}

/// Writes one file of `size` pseudo-random bytes (a fast xorshift, so the
/// content is neither sparse nor compressible) plus the copy Dockerfile.
pub fn write_big_file(dir: &Path, size: u64, seed: u64) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join("Dockerfile"), COPY_DOCKERFILE)?;
    let file = fs::File::create(dir.join("big.bin"))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let mut state = seed | 1;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Name of the build argument that makes every log build run its step again.
pub const NONCE_ARG: &str = "BENCH_NONCE";

/// Lines printed per burst by the log step. BuildKit clips a step's log once
/// it runs ahead of 200 KiB per second since the step started
/// (`BUILDKIT_STEP_LOG_MAX_SPEED`; total limit 2 MiB), so the step prints in
/// bursts of at most ~200 KB with a one-second pause between them.
pub const LOG_BURST: usize = 25_000;

/// The `RUN` command printing `lines` numbered lines in paced bursts.
pub fn log_command(lines: usize) -> String {
    let mut parts = Vec::new();
    let mut start = 1;
    while start <= lines {
        let end = (start + LOG_BURST - 1).min(lines);
        if !parts.is_empty() {
            parts.push("sleep 1".to_string());
        }
        parts.push(format!("seq {start} {end}"));
        start = end + 1;
    }
    if parts.is_empty() {
        parts.push("true".to_string());
    }
    parts.join(" && ")
}

/// The log-heavy build: a context with only a Dockerfile whose `RUN` prints
/// `lines` lines ([`log_command`]). The step declares [`NONCE_ARG`], so a new
/// value of it forces the step to run again (the argument is part of its
/// cache key).
pub fn write_log_context(dir: &Path, base_image: &str, lines: usize) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base_image}\nARG {NONCE_ARG}\nRUN {}\n",
            log_command(lines)
        ),
    )
}

/// Whether a `--progress plain` log shows step output line `n` (a line
/// `#<step> <seconds> <n>`), i.e. the daemon did not clip the log before it.
pub fn plain_log_has_line(log: &str, n: usize) -> bool {
    let want = n.to_string();
    log.lines().any(|line| {
        let mut words = line.split(' ');
        matches!(
            (words.next(), words.next(), words.next(), words.next()),
            (Some(step), Some(at), Some(text), None)
                if step.starts_with('#') && at.parse::<f64>().is_ok() && text == want
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_files_layout() {
        let shape = ManyFiles::QUICK;
        assert_eq!(shape.count(), 100);
        assert_eq!(shape.path_of(0), PathBuf::from("d00/s00/f0000.txt"));
        assert_eq!(shape.path_of(99), PathBuf::from("d01/s04/f0009.txt"));
        let dir = tempfile::tempdir().unwrap();
        shape.write(dir.path(), "n").unwrap();
        let body = fs::read(dir.path().join(shape.path_of(57))).unwrap();
        assert_eq!(body.len(), 1024);
        assert!(body.starts_with(b"n file 57\n"));
        shape.change_one(dir.path(), 57, 3).unwrap();
        assert!(fs::read(dir.path().join(shape.path_of(57)))
            .unwrap()
            .starts_with(b"changed 3\n"));
    }

    #[test]
    fn log_commands() {
        assert_eq!(log_command(1000), "seq 1 1000");
        assert_eq!(
            log_command(60_000),
            "seq 1 25000 && sleep 1 && seq 25001 50000 && sleep 1 && seq 50001 60000"
        );
        assert!(plain_log_has_line(
            "#5 [2/2] RUN seq 1 1000\n#5 0.101 999\n#5 0.101 1000\n#5 DONE 0.2s\n",
            1000
        ));
        assert!(!plain_log_has_line(
            "#5 [2/2] RUN seq 1 1000\n#5 0.101 999\n#5 0.3 [output clipped]\n",
            1000
        ));
    }

    #[test]
    fn big_file_has_the_size() {
        let dir = tempfile::tempdir().unwrap();
        write_big_file(dir.path(), (1 << 20) + 5, 7).unwrap();
        assert_eq!(
            fs::metadata(dir.path().join("big.bin")).unwrap().len(),
            (1 << 20) + 5
        );
    }
}
