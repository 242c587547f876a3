//! An HTTP-aware loopback proxy that injects faults in front of a real server (the registry,
//! the git server).
//!
//! [`FaultProxy::start`] listens on `127.0.0.1` with an ephemeral port and forwards every
//! request to the upstream `host:port`, one request per connection (the request is sent
//! upstream with `Connection: close`, so every request of a keep-alive client shows up as a
//! new connection and can be inspected). The `Host` header is passed through unchanged, so a
//! registry's `Location` headers point back at the proxy.
//!
//! Faults:
//! - [`FaultProxy::go_down`]: the listener is closed (connections are refused) and every
//!   connection being proxied is cut; [`FaultProxy::clear`] brings it back on the same port.
//! - [`FaultProxy::set_fault_for`]: requests whose method (an all-uppercase word such as
//!   `PUT`) or target (any other text: a path substring such as `/blobs/uploads/` or
//!   `git-receive-pack`) matches are answered with the given status by the proxy itself;
//!   the upstream never sees them. `401` answers carry `WWW-Authenticate: Basic`.
//!
//! A TLS handshake is answered in plain HTTP (`400`), as the real registry does, so that
//! Docker's resolver falls back from `https://` to `http://` for the loopback registry.
//!
//! The proxy runs on its own thread with its own Tokio runtime, so a test whose runtime is
//! blocked (or a blocking test without a runtime) does not stall it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::error::{Error, IoContext, Result};

const MAX_HEAD: usize = 64 * 1024;
/// First byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
const PLAIN_HTTP_TO_TLS: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a faulted request's body is drained after the answer (so that the client reads
/// the answer instead of a connection reset).
const LINGER: Duration = Duration::from_secs(5);

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Every request.
    Any,
    /// Requests with this method (`GET`, `PUT`, ...).
    Method(String),
    /// Requests whose target (path and query) contains this text.
    Path(String),
}

impl Match {
    /// An all-uppercase ASCII word is a method; anything else is a path substring; `*` or an
    /// empty text matches every request.
    pub fn parse(text: &str) -> Match {
        if text.is_empty() || text == "*" {
            Match::Any
        } else if text.bytes().all(|b| b.is_ascii_uppercase()) {
            Match::Method(text.to_string())
        } else {
            Match::Path(text.to_string())
        }
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        match self {
            Match::Any => true,
            Match::Method(m) => m == method,
            Match::Path(p) => target.contains(p.as_str()),
        }
    }
}

impl From<&str> for Match {
    fn from(text: &str) -> Self {
        Match::parse(text)
    }
}

#[derive(Debug, Clone)]
struct Rule {
    when: Match,
    status: u16,
    /// Requests left to answer with the fault (`None`: unlimited).
    remaining: Option<u32>,
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The status the proxy answered itself, or `None` when the request was forwarded.
    pub fault: Option<u16>,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<SeenRequest>>,
    faults_served: AtomicU64,
    connections: AtomicU64,
}

impl Shared {
    /// The status to answer `method target` with, consuming one use of a limited rule.
    fn fault_for(&self, method: &str, target: &str) -> Option<u16> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let index = rules
            .iter()
            .position(|r| r.remaining != Some(0) && r.when.matches(method, target))?;
        let rule = &mut rules[index];
        if let Some(left) = rule.remaining.as_mut() {
            *left -= 1;
        }
        Some(rule.status)
    }

    fn record(&self, method: &str, target: &str, fault: Option<u16>) {
        tracing::debug!(%method, %target, ?fault, "fault proxy request");
        if fault.is_some() {
            self.faults_served.fetch_add(1, Ordering::SeqCst);
        }
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(SeenRequest {
                method: method.to_string(),
                target: target.to_string(),
                fault,
            });
    }
}

enum Command {
    Down,
    Up,
    Stop,
}

type Ack = std_mpsc::SyncSender<Result<()>>;

/// A running fault-injecting proxy (see the module documentation). Stopped when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: String,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<(Command, Ack)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("faults_served", &self.faults_served())
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `upstream` (`host:port`, e.g. the
    /// registry `127.0.0.1:5055` or the git server `127.0.0.1:8418`; an `http://` prefix and
    /// a path are ignored). No fault is set.
    pub fn start(upstream: &str) -> Result<FaultProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if upstream.is_empty() {
            return Err(Error::InvalidArgument(
                "fault proxy: empty upstream address".into(),
            ));
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .context(|| "binding the fault proxy on 127.0.0.1".to_string())?;
        let addr = listener
            .local_addr()
            .context(|| "reading the fault proxy's address".to_string())?;
        listener
            .set_nonblocking(true)
            .context(|| "making the fault proxy's listener non-blocking".to_string())?;
        let shared = Arc::new(Shared::default());
        let (commands, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<()>>(1);
        let thread_shared = shared.clone();
        let thread_upstream = upstream.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Io {
                            context: "starting the fault proxy's runtime".into(),
                            source: e,
                        }));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(Error::Io {
                                context: "registering the fault proxy's listener".into(),
                                source: e,
                            }));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    serve(listener, addr, thread_upstream, thread_shared, rx).await;
                });
            })
            .context(|| "spawning the fault proxy thread".to_string())?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::Command(
                    "the fault proxy thread ended while starting".into(),
                ))
            }
        }
        tracing::debug!(%addr, %upstream, "fault proxy listening");
        Ok(FaultProxy {
            addr,
            upstream,
            shared,
            commands,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT`, to put where the upstream's `host:port` would go (image references,
    /// cache references).
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The listening socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, e.g. as a git base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The upstream `host:port`.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Closes the listener (new connections are refused) and cuts every connection being
    /// proxied. Returns once that is done. [`FaultProxy::clear`] undoes it.
    pub fn go_down(&self) -> Result<()> {
        self.command(Command::Down)
    }

    /// Answers every request matching `matcher` (see [`Match::parse`]: a method such as
    /// `PUT`, or a target substring such as `/manifests/`) with `status`, from now on. Rules
    /// are tried in the order they were set; the first that matches answers.
    pub fn set_fault_for(&self, matcher: &str, status: u16) {
        self.add_rule(Match::parse(matcher), status, None);
    }

    /// Like [`FaultProxy::set_fault_for`], for the next `times` matching requests only
    /// (a transient fault).
    pub fn set_fault_times(&self, matcher: &str, status: u16, times: u32) {
        self.add_rule(Match::parse(matcher), status, Some(times));
    }

    fn add_rule(&self, when: Match, status: u16, remaining: Option<u32>) {
        tracing::debug!(addr = %self.addr, ?when, status, ?remaining, "fault proxy: fault set");
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Rule {
                when,
                status,
                remaining,
            });
    }

    /// Removes every fault and, if the proxy is down, listens again on the same port.
    pub fn clear(&self) -> Result<()> {
        self.shared
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.command(Command::Up)
    }

    /// Requests answered with a fault so far.
    pub fn faults_served(&self) -> u64 {
        self.shared.faults_served.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every request seen so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn command(&self, command: Command) -> Result<()> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.commands
            .send((command, tx))
            .map_err(|_| Error::Command("the fault proxy has stopped".into()))?;
        rx.recv_timeout(DIAL_TIMEOUT)
            .map_err(|_| Error::Timeout("the fault proxy did not answer a command".into()))?
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let (tx, _rx) = std_mpsc::sync_channel(1);
        let _ = self.commands.send((Command::Stop, tx));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: String,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<(Command, Ack)>,
) {
    let mut listener = Some(listener);
    let (kill, _) = watch::channel(0u64);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some((command, ack)) = command else { break };
                match command {
                    Command::Stop => {
                        let _ = ack.send(Ok(()));
                        break;
                    }
                    Command::Down => {
                        listener = None;
                        kill.send_modify(|g| *g += 1);
                        conns.abort_all();
                        tracing::debug!(%addr, "fault proxy down");
                        let _ = ack.send(Ok(()));
                    }
                    Command::Up => {
                        let result = if listener.is_none() {
                            match TcpListener::bind(addr).await {
                                Ok(l) => {
                                    listener = Some(l);
                                    tracing::debug!(%addr, "fault proxy up again");
                                    Ok(())
                                }
                                Err(source) => Err(Error::Io { context: format!("re-binding the fault proxy on {addr}"), source }),
                            }
                        } else {
                            Ok(())
                        };
                        let _ = ack.send(result);
                    }
                }
            }
            accepted = accept(listener.as_ref()) => match accepted {
                Ok(stream) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    let mut killed = kill.subscribe();
                    let shared = shared.clone();
                    let upstream = upstream.clone();
                    conns.spawn(async move {
                        tokio::select! {
                            res = handle(stream, &upstream, &shared) => {
                                if let Err(e) = res {
                                    tracing::debug!(error = %e, "fault proxy connection ended with an error");
                                }
                            }
                            _ = killed.changed() => {}
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fault proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// Serves one request on `client`: answers a fault itself or forwards it upstream.
async fn handle(mut client: TcpStream, upstream: &str, shared: &Shared) -> Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(Error::Command("fault proxy: request head too large".into()));
        }
        let mut chunk = [0u8; 4096];
        let n = client
            .read(&mut chunk)
            .await
            .context(|| "reading a request".to_string())?;
        if n == 0 {
            return Ok(()); // closed before a request
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.first() == Some(&TLS_HANDSHAKE) {
            // A TLS ClientHello: Docker's resolver tries https first even for insecure
            // registries and falls back to http when the server answers in plain HTTP (what
            // a Go HTTP server says to a TLS client).
            let _ = client.write_all(PLAIN_HTTP_TO_TLS).await;
            let _ = client.shutdown().await;
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let body_start = buf.split_off(head_end);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();

    if let Some(status) = shared.fault_for(&method, &target) {
        shared.record(&method, &target, Some(status));
        return answer_fault(client, status).await;
    }
    shared.record(&method, &target, None);

    // Forward with `Connection: close`: the upstream closes after its answer, and the
    // client's next request comes on a new connection.
    let mut forwarded = format!("{request_line}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => s,
        _ => return answer_fault(client, 502).await,
    };
    let _ = server.set_nodelay(true);
    server
        .write_all(forwarded.as_bytes())
        .await
        .context(|| format!("writing to {upstream}"))?;
    server
        .write_all(&body_start)
        .await
        .context(|| format!("writing to {upstream}"))?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upload = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    });
    let copied = tokio::io::copy(&mut server_read, &mut client_write).await;
    let _ = client_write.shutdown().await;
    upload.abort();
    copied.context(|| format!("relaying the answer of {upstream}"))?;
    Ok(())
}

/// Writes a `status` answer with `Connection: close`, then drains what the client still sends
/// (a request body) for a while, so that it reads the answer rather than a reset.
async fn answer_fault(mut client: TcpStream, status: u16) -> Result<()> {
    let reason = reason_phrase(status);
    let body = format!(
        "{{\"errors\":[{{\"code\":\"UNKNOWN\",\"message\":\"fault injected by the test proxy: {status} {reason}\"}}]}}\n"
    );
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        response.push_str("WWW-Authenticate: Basic realm=\"fault-proxy\"\r\n");
    }
    response.push_str("\r\n");
    response.push_str(&body);
    client
        .write_all(response.as_bytes())
        .await
        .context(|| "writing a fault answer".to_string())?;
    let _ = client.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 16 * 1024];
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
    Ok(())
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert_eq!(Match::parse("PUT"), Match::Method("PUT".into()));
        assert_eq!(Match::parse("/v2/"), Match::Path("/v2/".into()));
        assert_eq!(
            Match::parse("git-receive-pack"),
            Match::Path("git-receive-pack".into())
        );
        assert_eq!(Match::parse("*"), Match::Any);
        assert!(Match::parse("blobs").matches("GET", "/v2/a/blobs/sha256:1"));
        assert!(!Match::parse("HEAD").matches("GET", "/v2/"));
    }

    #[test]
    fn limited_rules_run_out() {
        let shared = Shared::default();
        shared.rules.lock().unwrap().push(Rule {
            when: Match::Any,
            status: 500,
            remaining: Some(1),
        });
        assert_eq!(shared.fault_for("GET", "/"), Some(500));
        assert_eq!(shared.fault_for("GET", "/"), None);
    }
}
