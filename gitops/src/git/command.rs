//! Running the system `git` with an isolated environment and the token only in the transport.
//!
//! * The process environment is cleared and rebuilt: `PATH`, proxy and CA variables are kept;
//!   `HOME` points into the temporary directory; `GIT_CONFIG_NOSYSTEM=1` and
//!   `GIT_CONFIG_GLOBAL=/dev/null` keep user and system config (and credential helpers) out;
//!   `GIT_TERMINAL_PROMPT=0` stops prompts; `LC_ALL=C` makes messages parseable.
//! * Configuration is passed with `GIT_CONFIG_COUNT` / `GIT_CONFIG_KEY_n` /
//!   `GIT_CONFIG_VALUE_n`, i.e. through the environment of the git process only: never on the
//!   command line (visible in `ps`) and never written to the repository's `.git/config`.
//! * The token travels as `http.<scheme>://<host>/.extraHeader = Authorization: Basic …`,
//!   scoped to the repository's origin, with redirects disabled so the header is not sent
//!   elsewhere. The remote URL stays credential-free.
//! * Everything git prints is passed through a [`Redactor`] before it is logged or stored in
//!   an error.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use secrecy::ExposeSecret as _;

use super::GitAuth;
use crate::error::GitError;

/// Environment variables passed through to git.
const PASS_ENV: &[&str] = &[
    "PATH",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
];

/// Replaces secrets in text.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secret(s))", self.needles.len())
    }
}

impl Redactor {
    pub fn new(auth: Option<&GitAuth>) -> Self {
        let mut needles = Vec::new();
        if let Some(auth) = auth {
            let token = auth.token.expose_secret();
            if !token.is_empty() {
                let userpass = format!("{}:{}", auth.username, token);
                needles.push(basic_value(&userpass));
                needles.push(userpass);
                needles.push(percent_encode(token));
                needles.push(token.to_string());
            }
        }
        // Longest first so that a needle containing another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if !n.is_empty() && out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "[REDACTED]");
            }
        }
        out
    }
}

fn basic_value(userpass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(userpass.as_bytes())
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs git commands for one write-back.
pub(crate) struct GitRunner {
    program: PathBuf,
    home: PathBuf,
    /// `GIT_CONFIG_KEY_n`/`VALUE_n` pairs (the auth header among them).
    config: Vec<(String, String)>,
    pub redactor: Redactor,
}

/// The output of a git command, redacted.
pub(crate) struct GitOutput {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl GitRunner {
    pub fn new(program: &Path, home: &Path, origin: &str, auth: Option<&GitAuth>) -> Self {
        let mut config: Vec<(String, String)> = vec![
            ("protocol.allow".into(), "never".into()),
            ("protocol.https.allow".into(), "always".into()),
            ("protocol.http.allow".into(), "always".into()),
            ("protocol.file.allow".into(), "always".into()),
            ("http.followRedirects".into(), "false".into()),
            ("http.lowSpeedLimit".into(), "1000".into()),
            ("http.lowSpeedTime".into(), "60".into()),
            ("core.hooksPath".into(), "/dev/null".into()),
            ("core.autocrlf".into(), "false".into()),
            ("core.fsmonitor".into(), "false".into()),
            ("commit.gpgSign".into(), "false".into()),
            ("init.defaultBranch".into(), "main".into()),
            ("advice.detachedHead".into(), "false".into()),
            ("gc.auto".into(), "0".into()),
            // A throwaway clone: no `git maintenance run --auto` after each commit (one process
            // fewer on the write-back's path).
            ("maintenance.auto".into(), "false".into()),
            ("fetch.writeCommitGraph".into(), "false".into()),
        ];
        if let Some(auth) = auth {
            let userpass = format!("{}:{}", auth.username, auth.token.expose_secret());
            config.push((
                format!("http.{origin}/.extraHeader"),
                format!("Authorization: Basic {}", basic_value(&userpass)),
            ));
        }
        Self {
            program: program.to_path_buf(),
            home: home.to_path_buf(),
            config,
            redactor: Redactor::new(auth),
        }
    }

    fn command(&self, dir: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env_clear();
        for name in PASS_ENV {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        cmd.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_TRACE_REDACT", "1")
            .env("GIT_CONFIG_COUNT", self.config.len().to_string());
        for (i, (k, v)) in self.config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), k);
            cmd.env(format!("GIT_CONFIG_VALUE_{i}"), v);
        }
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// `git clone` of `branch` alone, one commit deep and without tags, from
    /// `url` into `dest`: the checkout a write-back (or its preview) edits.
    pub fn clone_shallow(
        &self,
        url: &str,
        branch: &str,
        dest: &Path,
    ) -> Result<GitOutput, GitError> {
        let args = [
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--single-branch",
            "--no-tags",
            "--branch",
            branch,
            "--",
            url,
        ];
        self.run(
            None,
            args.iter().map(OsStr::new).chain([dest.as_os_str()]),
            &[],
            None,
        )
    }

    /// Runs `git args…` in `dir`, with extra environment and optional stdin.
    pub fn run<I, S>(
        &self,
        dir: Option<&Path>,
        args: I,
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let shown = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = self.command(dir);
        cmd.args(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        tracing::debug!(command = %format!("git {}", self.redactor.redact(&shown)), "running git");
        let spawn_err = |source| GitError::Spawn {
            program: self.program.display().to_string(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let Some(input) = stdin {
            if let Some(mut pipe) = child.stdin.take() {
                pipe.write_all(input.as_bytes())
                    .map_err(|source| GitError::Io {
                        action: "writing to git's standard input".into(),
                        source,
                    })?;
            }
        }
        let output: Output = child.wait_with_output().map_err(|source| GitError::Io {
            action: format!("waiting for git {}", first_word(&shown)),
            source,
        })?;
        let out = GitOutput {
            success: output.status.success(),
            status: output.status.to_string(),
            stdout: self
                .redactor
                .redact(&String::from_utf8_lossy(&output.stdout)),
            stderr: self
                .redactor
                .redact(&String::from_utf8_lossy(&output.stderr)),
        };
        if !out.stderr.trim().is_empty() {
            tracing::trace!(command = %first_word(&shown), stderr = %out.stderr.trim(), "git stderr");
        }
        Ok(out)
    }

    /// Runs a local command (no network) and requires success; returns stdout.
    pub fn local<I, S>(&self, dir: &Path, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let op = args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = self.run(Some(dir), &args, &[], None)?;
        if !out.success {
            return Err(command_error(&op, &out));
        }
        Ok(out.stdout)
    }
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// A [`GitError::Command`] from a failed command's (already redacted) output.
pub(crate) fn command_error(operation: &str, out: &GitOutput) -> GitError {
    let stderr = out.stderr.trim();
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    let mut text = tail;
    if text.len() > 2000 {
        let mut cut = text.len() - 2000;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("…{}", &text[cut..]);
    }
    GitError::Command {
        operation: operation.to_string(),
        status: out.status.clone(),
        stderr: text,
    }
}

/// How a remote git operation failed, read from git's (curl's) messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RemoteFailure {
    /// Credentials refused or wanted (401/403).
    Auth(Option<u16>),
    /// A 5xx answer.
    Server(u16),
    /// No answer: refused, reset, timed out, unknown host. Holds git's words for it.
    Unreachable(String),
}

/// curl's messages for a server that could not be reached or stopped answering.
const UNREACHABLE_MARKERS: &[&str] = &[
    "Failed to connect to",
    "Couldn't connect to server",
    "Connection refused",
    "Could not resolve host",
    "Connection timed out",
    "Operation timed out",
    "Empty reply from server",
    "Connection reset by peer",
    "Recv failure",
    "Send failure",
    "transfer closed with outstanding read data remaining",
    "Failed sending data to the peer",
    "Failure when receiving data from the peer",
    "SSL connection timeout",
    "Network is unreachable",
    "No route to host",
];

/// Classifies a failed remote command's stderr; `None` when it is none of the above.
pub(crate) fn classify_remote_failure(stderr: &str) -> Option<RemoteFailure> {
    let status = http_status(stderr);
    if let Some(code @ (401 | 403)) = status {
        return Some(RemoteFailure::Auth(Some(code)));
    }
    if is_auth_failure(stderr) {
        // git asks for credentials (and cannot, prompts being off) after a 401.
        return Some(RemoteFailure::Auth(Some(401)));
    }
    if let Some(code @ 500..=599) = status {
        return Some(RemoteFailure::Server(code));
    }
    let line = stderr
        .lines()
        .find(|line| UNREACHABLE_MARKERS.iter().any(|m| line.contains(m)))?;
    let reason = match line.split_once("': ") {
        Some((_, after)) => after,
        None => line
            .trim_start_matches("fatal: ")
            .trim_start_matches("error: "),
    };
    Some(RemoteFailure::Unreachable(
        reason.trim().chars().take(300).collect(),
    ))
}

/// The HTTP status in `The requested URL returned error: 500` or `RPC failed; HTTP 500`.
fn http_status(stderr: &str) -> Option<u16> {
    ["returned error: ", "HTTP "].iter().find_map(|marker| {
        stderr.match_indices(marker).find_map(|(i, _)| {
            let digits: String = stderr[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let code: u16 = digits.parse().ok().filter(|_| digits.len() == 3)?;
            (100..600).contains(&code).then_some(code)
        })
    })
}

/// The typed error of a remote failure, or `None` when the output is not one.
pub(crate) fn remote_failure_error(
    url: &str,
    operation: &'static str,
    out: &GitOutput,
) -> Option<GitError> {
    let url = url.to_string();
    Some(match classify_remote_failure(&out.stderr)? {
        RemoteFailure::Auth(status) => GitError::AuthFailed {
            url,
            operation,
            status,
        },
        RemoteFailure::Server(status) => GitError::ServerError {
            url,
            operation,
            status,
            attempts: 1,
            elapsed: std::time::Duration::ZERO,
        },
        RemoteFailure::Unreachable(reason) => GitError::Unreachable {
            url,
            operation,
            reason,
            attempts: 1,
            elapsed: std::time::Duration::ZERO,
        },
    })
}

/// Whether git's stderr says the server refused (or wanted) credentials.
pub(crate) fn is_auth_failure(stderr: &str) -> bool {
    const MARKERS: &[&str] = &[
        "Authentication failed",
        "could not read Username",
        "could not read Password",
        "terminal prompts disabled",
        "HTTP Basic: Access denied",
        "returned error: 401",
        "returned error: 403",
        "Invalid username or password",
    ];
    MARKERS.iter().any(|m| stderr.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn redacts_token_forms() {
        let auth = GitAuth {
            username: "x-access-token".into(),
            token: SecretString::from("s3cr3t/tok+en"),
        };
        let r = Redactor::new(Some(&auth));
        let b64 = basic_value("x-access-token:s3cr3t/tok+en");
        let text =
            format!("a s3cr3t/tok+en b {b64} c s3cr3t%2Ftok%2Ben d x-access-token:s3cr3t/tok+en");
        let out = r.redact(&text);
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(!out.contains(&b64), "{out}");
        assert_eq!(Redactor::new(None).redact("plain"), "plain");
    }

    #[test]
    fn classifies_remote_failures() {
        use RemoteFailure::*;
        let c = classify_remote_failure;
        assert_eq!(
            c("fatal: unable to access 'http://h/r.git/': The requested URL returned error: 500"),
            Some(Server(500))
        );
        assert_eq!(
            c("fatal: unable to access 'http://h/r.git/': The requested URL returned error: 403"),
            Some(Auth(Some(403)))
        );
        assert_eq!(
            c("fatal: could not read Username for 'http://h': terminal prompts disabled"),
            Some(Auth(Some(401)))
        );
        assert_eq!(
            c("error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502\nfatal: the remote end hung up unexpectedly"),
            Some(Server(502))
        );
        assert_eq!(
            c("fatal: unable to access 'http://127.0.0.1:1/r.git/': Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server"),
            Some(Unreachable("Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server".into()))
        );
        assert_eq!(c("fatal: repository 'http://h/r.git/' not found"), None);
        assert_eq!(
            c("fatal: unable to access 'http://h/r.git/': The requested URL returned error: 404"),
            None
        );
    }

    #[test]
    fn recognises_auth_failures() {
        assert!(is_auth_failure(
            "fatal: Authentication failed for 'http://h/r.git/'"
        ));
        assert!(is_auth_failure(
            "fatal: could not read Username for 'http://127.0.0.1:8418': terminal prompts disabled"
        ));
        assert!(!is_auth_failure("fatal: repository not found"));
    }
}
