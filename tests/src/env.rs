use std::collections::HashMap;
use std::ffi::OsStr;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};

/// Where `scripts/testenv.sh` keeps its state unless `CICD_TESTENV_DIR` says otherwise.
pub const DEFAULT_TESTENV_DIR: &str = "/var/lib/cicd-agents-testenv";

const VARS: [&str; 11] = [
    "CICD_TESTENV_DIR",
    "CICD_TESTENV_DOCKER_SOCK",
    "CICD_TESTENV_DOCKER_ADDR",
    "CICD_TESTENV_REGISTRY",
    "CICD_TESTENV_BASE_IMAGE",
    "CICD_TESTENV_GIT_URL",
    "CICD_TESTENV_GIT_ROOT",
    "CICD_TESTENV_GIT_TOKEN",
    "CICD_TESTENV_AUTH_REGISTRY",
    "CICD_TESTENV_AUTH_USER",
    "CICD_TESTENV_AUTH_PASSWORD",
];

/// Optional: older environment files lack it (see [`TestEnv::git_base_image`]).
const GIT_BASE_IMAGE_VAR: &str = "CICD_TESTENV_GIT_BASE_IMAGE";

/// The running test environment (see `scripts/testenv.sh`).
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// State directory of the environment.
    pub dir: PathBuf,
    /// Path of the Docker daemon's API socket.
    pub docker_sock: PathBuf,
    /// The daemon as a cicd-agents address: `docker://unix:///…/docker.sock`.
    pub docker_addr: String,
    /// Registry host and port, e.g. `127.0.0.1:5055` (plain HTTP, loopback).
    pub registry: String,
    /// A busybox image in that registry, e.g. `127.0.0.1:5055/base/busybox:1`.
    pub base_image: String,
    /// An image in that registry with git, CA certificates, busybox and the host's C library
    /// (`127.0.0.1:5055/base/git:1`), the offline stand-in for a Debian base with git.
    /// `CICD_TESTENV_GIT_BASE_IMAGE`; environment files written before it existed give
    /// `{registry}/base/git:1` (`scripts/testenv.sh seed-images` seeds it).
    pub git_base_image: String,
    /// Base URL of the git server, e.g. `http://127.0.0.1:8418`.
    pub git_url: String,
    /// Directory holding the bare repositories the git server serves.
    pub git_root: PathBuf,
    /// Token the git server accepts as basic-auth password (any user name).
    pub git_token: String,
    /// A second registry that requires a login, e.g. `127.0.0.1:5057`.
    pub auth_registry: String,
    /// Its user name.
    pub auth_user: String,
    /// Its password.
    pub auth_password: String,
}

impl TestEnv {
    /// [`TestEnv::load`] for a test: a missing environment fails the test (never skips it)
    /// with the reason and how to start it.
    pub fn required() -> TestEnv {
        TestEnv::load()
            .unwrap_or_else(|e| panic!("test environment (run scripts/testenv.sh up): {e}"))
    }

    /// Loads the environment from the `CICD_TESTENV_*` process variables, falling back to
    /// `$CICD_TESTENV_DIR/env` (default `/var/lib/cicd-agents-testenv/env`) for every variable
    /// the process does not set, then checks that dockerd, the registry and the git server
    /// answer. Any failure is an error telling the user to run `scripts/testenv.sh up`.
    pub fn load() -> Result<TestEnv> {
        let mut vars: HashMap<String, String> = HashMap::new();
        for name in VARS.into_iter().chain([GIT_BASE_IMAGE_VAR]) {
            if let Ok(v) = std::env::var(name) {
                if !v.is_empty() {
                    vars.insert(name.to_string(), v);
                }
            }
        }
        let dir = vars
            .get("CICD_TESTENV_DIR")
            .cloned()
            .unwrap_or_else(|| DEFAULT_TESTENV_DIR.to_string());
        let env_file = Path::new(&dir).join("env");
        if VARS.iter().any(|v| !vars.contains_key(*v)) {
            match std::fs::read_to_string(&env_file) {
                Ok(text) => {
                    for (k, v) in parse_env_file(&text) {
                        vars.entry(k).or_insert(v);
                    }
                }
                Err(e) => {
                    let missing: Vec<&str> = VARS
                        .iter()
                        .copied()
                        .filter(|v| !vars.contains_key(*v))
                        .collect();
                    return Err(Error::EnvMissing(format!(
                        "{} not set and {} unreadable ({e})",
                        missing.join(", "),
                        env_file.display()
                    )));
                }
            }
        }
        let get = |name: &str| -> Result<String> {
            vars.get(name).cloned().ok_or_else(|| {
                Error::EnvMissing(format!(
                    "{name} is neither set nor in {}",
                    env_file.display()
                ))
            })
        };
        let env = TestEnv {
            dir: PathBuf::from(get("CICD_TESTENV_DIR")?),
            docker_sock: PathBuf::from(get("CICD_TESTENV_DOCKER_SOCK")?),
            docker_addr: get("CICD_TESTENV_DOCKER_ADDR")?,
            registry: get("CICD_TESTENV_REGISTRY")?,
            base_image: get("CICD_TESTENV_BASE_IMAGE")?,
            git_base_image: match vars.get(GIT_BASE_IMAGE_VAR) {
                Some(image) => image.clone(),
                None => format!("{}/base/git:1", get("CICD_TESTENV_REGISTRY")?),
            },
            git_url: get("CICD_TESTENV_GIT_URL")?
                .trim_end_matches('/')
                .to_string(),
            git_root: PathBuf::from(get("CICD_TESTENV_GIT_ROOT")?),
            git_token: get("CICD_TESTENV_GIT_TOKEN")?,
            auth_registry: get("CICD_TESTENV_AUTH_REGISTRY")?,
            auth_user: get("CICD_TESTENV_AUTH_USER")?,
            auth_password: get("CICD_TESTENV_AUTH_PASSWORD")?,
        };
        env.check_running()?;
        Ok(env)
    }

    /// Checks that the daemon socket, the registry and the git server accept connections.
    pub fn check_running(&self) -> Result<()> {
        UnixStream::connect(&self.docker_sock).map_err(|e| {
            Error::EnvMissing(format!(
                "dockerd is not answering on {} ({e})",
                self.docker_sock.display()
            ))
        })?;
        tcp_probe(&self.registry).map_err(|e| {
            Error::EnvMissing(format!(
                "the registry {} is not answering ({e})",
                self.registry
            ))
        })?;
        let git_hostport = self
            .git_url
            .strip_prefix("http://")
            .unwrap_or(&self.git_url)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        tcp_probe(&git_hostport).map_err(|e| {
            Error::EnvMissing(format!(
                "the git server {} is not answering ({e})",
                self.git_url
            ))
        })?;
        if !self.git_root.is_dir() {
            return Err(Error::EnvMissing(format!(
                "git root {} is not a directory",
                self.git_root.display()
            )));
        }
        Ok(())
    }

    /// Restarts the Docker daemon (and with it its BuildKit) with the same configuration
    /// and state, through `scripts/testenv.sh restart-daemon`, and returns once it answers
    /// again. Every connection to it is cut, other tests' included: use it sparingly, in a
    /// test binary of its own.
    pub fn restart_daemon(&self) -> Result<()> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/testenv.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("restart-daemon")
            .env("CICD_TESTENV_DIR", &self.dir)
            .output()
            .context(|| format!("running {} restart-daemon", script.display()))?;
        if !output.status.success() {
            return Err(Error::Command(format!(
                "{} restart-daemon failed ({}): {}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        self.check_running()
    }

    /// A fresh, unique, lowercase name with the given prefix (see [`unique_name`]).
    pub fn unique_name(&self, prefix: &str) -> String {
        unique_name(prefix)
    }

    /// A full image reference in the test registry: `{registry}/{repo}:{tag}`.
    pub fn image_ref(&self, repo: &str, tag: &str) -> String {
        format!("{}/{}:{}", self.registry, repo, tag)
    }

    /// Creates (idempotently) a bare repository `name` (`.git` is appended when missing) in
    /// the git root, with `main` as its default branch and pushes enabled, and returns its
    /// URL without credentials, e.g. `http://127.0.0.1:8418/name.git`.
    pub fn create_bare_repo(&self, name: &str) -> Result<String> {
        let name = repo_file_name(name)?;
        let dir = self.git_root.join(&name);
        if !dir.join("HEAD").is_file() {
            run_git(
                None,
                [
                    OsStr::new("init"),
                    OsStr::new("-q"),
                    OsStr::new("--bare"),
                    OsStr::new("--initial-branch=main"),
                    dir.as_os_str(),
                ],
            )?;
        }
        run_git(
            Some(&dir),
            ["config", "http.receivepack", "true"].map(OsStr::new),
        )?;
        Ok(format!("{}/{}", self.git_url, name))
    }

    /// The repository URL with the token as basic-auth credentials
    /// (`http://x-token:TOKEN@127.0.0.1:8418/name.git`), for plain `git` commands.
    pub fn authed_url(&self, repo_url: &str) -> String {
        match repo_url.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://x-token:{}@{rest}", self.git_token),
            None => repo_url.to_string(),
        }
    }

    /// Path of a repository in the git root (`.git` appended when missing).
    pub fn repo_path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.git_root.join(repo_file_name(name)?))
    }

    /// A `docker` command talking to the test daemon (`DOCKER_HOST` set).
    pub fn docker_command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.docker_sock.display()),
        );
        cmd
    }

    /// A `git` command with a fixed identity, no credential helpers, no user config and
    /// no terminal prompts, working in `dir`.
    pub fn git_command(&self, dir: &Path) -> Command {
        git_command(Some(dir))
    }

    /// Runs `git ARGS` in `dir` (see [`TestEnv::git_command`]) and returns its
    /// standard output; a failure is an error carrying git's message.
    pub fn git(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let output = self
            .git_command(dir)
            .args(args)
            .output()
            .map_err(|source| Error::Io {
                context: format!("running git {args:?}"),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Command(format!(
                "git {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The commit `branch` points at in the repository at `url` on the git server (asked with
    /// `git ls-remote`), or `None` when there is no such branch.
    pub fn remote_head(&self, url: &str, branch: &str) -> Result<Option<String>> {
        let out = self.git(
            &std::env::temp_dir(),
            &[
                "ls-remote",
                &self.authed_url(url),
                &format!("refs/heads/{branch}"),
            ],
        )?;
        Ok(out.split_whitespace().next().map(str::to_string))
    }

    /// A fresh clone of `branch` of the repository at `url`, in a new temporary directory
    /// (the clone is its root).
    pub fn fresh_clone(&self, url: &str, branch: &str) -> Result<tempfile::TempDir> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            context: "creating a clone directory".into(),
            source,
        })?;
        self.git(
            dir.path(),
            &[
                "clone",
                "-q",
                "--branch",
                branch,
                &self.authed_url(url),
                ".",
            ],
        )?;
        Ok(dir)
    }

    /// Creates a repository named after `prefix` on the git server with `files`
    /// committed on `main`, and returns its URL (without credentials).
    pub fn seed_repo<P, C>(
        &self,
        prefix: &str,
        files: impl IntoIterator<Item = (P, C)>,
    ) -> Result<String>
    where
        P: AsRef<Path>,
        C: AsRef<[u8]>,
    {
        let url = self.create_bare_repo(&self.unique_name(prefix))?;
        let work = tempfile::tempdir().map_err(|source| Error::Io {
            context: "creating a work tree".into(),
            source,
        })?;
        self.git(work.path(), &["init", "-q", "-b", "main"])?;
        write_context(work.path(), files)?;
        self.git(work.path(), &["add", "-A"])?;
        self.git(work.path(), &["commit", "-q", "-m", "initial"])?;
        self.git(
            work.path(),
            &["push", "-q", &self.authed_url(&url), "HEAD:refs/heads/main"],
        )?;
        Ok(url)
    }
}

fn tcp_probe(hostport: &str) -> std::io::Result<()> {
    let addrs: Vec<SocketAddr> = hostport.to_socket_addrs()?.collect();
    let mut last = std::io::Error::other(format!("no address for {hostport}"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn repo_file_name(name: &str) -> Result<String> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || Path::new(name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        return Err(Error::InvalidArgument(format!(
            "bad repository name {name:?}"
        )));
    }
    Ok(if name.ends_with(".git") {
        name.to_string()
    } else {
        format!("{name}.git")
    })
}

fn git_command(dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "cicd-agents tests")
        .env("GIT_AUTHOR_EMAIL", "tests@cicd-agents.invalid")
        .env("GIT_COMMITTER_NAME", "cicd-agents tests")
        .env("GIT_COMMITTER_EMAIL", "tests@cicd-agents.invalid");
    cmd
}

fn run_git<I, S>(dir: Option<&Path>, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = git_command(dir)
        .args(&args)
        .output()
        .context(|| format!("running git {shown}"))?;
    if !out.status.success() {
        return Err(Error::Command(format!(
            "git {shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Parses `export NAME=value` / `NAME=value` lines; values may be single- or double-quoted.
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('\'') && value.ends_with('\''))
                || (value.starts_with('"') && value.ends_with('"')))
        {
            &value[1..value.len() - 1]
        } else {
            value
        };
        out.push((name.trim().to_string(), value.to_string()));
    }
    out
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name usable as image repository, tag, git repository or directory name:
/// the prefix (lowercased, anything outside `[a-z0-9-]` replaced by `-`), then the process
/// id, a per-process counter and random bits, e.g. `app-3f1a-7-9c2e41`.
pub fn unique_name(prefix: &str) -> String {
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        clean.push('t');
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::random::<u32>() & 0xff_ffff;
    format!("{clean}-{:x}-{n}-{r:06x}", std::process::id())
}

/// Writes `files` (relative path, contents) under `dir`, creating parent directories.
/// Absolute paths and `..` components are rejected.
pub fn write_context<P, C>(dir: &Path, files: impl IntoIterator<Item = (P, C)>) -> Result<()>
where
    P: AsRef<Path>,
    C: AsRef<[u8]>,
{
    for (rel, contents) in files {
        let rel = rel.as_ref();
        if rel.as_os_str().is_empty()
            || rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(Error::InvalidArgument(format!(
                "context file path {} must be relative without '..'",
                rel.display()
            )));
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents.as_ref())
            .context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A new temporary directory holding `files` (see [`write_context`]): a build context.
/// Panics (failing the test) when it cannot be made.
pub fn context_dir<P, C>(files: impl IntoIterator<Item = (P, C)>) -> tempfile::TempDir
where
    P: AsRef<Path>,
    C: AsRef<[u8]>,
{
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("creating a context directory: {e}"));
    write_context(dir.path(), files).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_file() {
        let text = "export CICD_TESTENV_DIR=/var/lib/x\n\
                    # comment\n\
                    export CICD_TESTENV_GIT_TOKEN='abc def'\n\
                    CICD_TESTENV_REGISTRY=\"127.0.0.1:5055\"\n\
                    garbage\n";
        let vars: HashMap<_, _> = parse_env_file(text).into_iter().collect();
        assert_eq!(vars["CICD_TESTENV_DIR"], "/var/lib/x");
        assert_eq!(vars["CICD_TESTENV_GIT_TOKEN"], "abc def");
        assert_eq!(vars["CICD_TESTENV_REGISTRY"], "127.0.0.1:5055");
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn unique_names_differ_and_are_clean() {
        let a = unique_name("My_App/x");
        let b = unique_name("My_App/x");
        assert_ne!(a, b);
        assert!(a.starts_with("my-app-x-"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(unique_name("__").starts_with("t-"));
    }

    #[test]
    fn repo_names() {
        assert_eq!(repo_file_name("a").unwrap(), "a.git");
        assert_eq!(repo_file_name("a.git").unwrap(), "a.git");
        assert_eq!(repo_file_name("org/a").unwrap(), "org/a.git");
        assert!(repo_file_name("../a").is_err());
        assert!(repo_file_name("/a").is_err());
        assert!(repo_file_name("").is_err());
    }

    #[test]
    fn write_context_rejects_escapes() {
        let dir = tempfile::tempdir().unwrap();
        write_context(
            dir.path(),
            [("a/b.txt", "x"), ("Dockerfile", "FROM scratch")],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/b.txt")).unwrap(),
            "x"
        );
        assert!(write_context(dir.path(), [("../x", "y")]).is_err());
        assert!(write_context(dir.path(), [("/x", "y")]).is_err());
    }
}
