//! A loopback relay that makes the Docker daemon's embedded BuildKit look like a standalone
//! `buildkitd`.
//!
//! For every accepted connection the relay dials the Docker API socket, sends
//! `POST /grpc` with `Connection: Upgrade` / `Upgrade: h2c` (what buildx's `DialHijack`
//! sends), requires `101 Switching Protocols`, and from then on copies bytes both ways: the
//! client speaks HTTP/2 (gRPC) to BuildKit's Control API exactly as it would to buildkitd.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::certs::TestCerts;
use crate::error::{Error, IoContext, Result};

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The HTTP/1.1 request that turns a Docker API connection into BuildKit's gRPC endpoint.
const UPGRADE_REQUEST: &[u8] = b"POST /grpc HTTP/1.1\r\n\
Host: docker\r\n\
User-Agent: cicd-agents-testenv-relay\r\n\
Content-Length: 0\r\n\
Connection: Upgrade\r\n\
Upgrade: h2c\r\n\
\r\n";

#[derive(Debug)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

enum Accepted {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Listener {
    async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Accepted::Tcp(s)
            }),
        }
    }
}

struct Shared {
    accepted: AtomicU64,
    active: AtomicUsize,
    kill: watch::Sender<u64>,
    /// Bytes forwarded from clients to the daemon, over all connections.
    client_bytes: AtomicU64,
    /// Bytes forwarded from the daemon to clients, over all connections.
    daemon_bytes: AtomicU64,
    /// Cut every connection once `client_bytes` reaches this (`u64::MAX`: never).
    cut_at_client_bytes: AtomicU64,
    /// While set, bytes are read and dropped instead of forwarded.
    black_hole: AtomicBool,
}

impl Shared {
    fn cut(&self) {
        self.kill.send_modify(|generation| *generation += 1);
    }
}

struct ActiveGuard(Arc<Shared>);

impl ActiveGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(shared.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running relay. It listens until [`Relay::stop`] is called or it is dropped; both also
/// cut every relayed connection.
pub struct Relay {
    addr: String,
    endpoint: Endpoint,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    done: Mutex<Option<oneshot::Receiver<()>>>,
    _dir: Option<TempDir>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("addr", &self.addr)
            .field("connections", &self.connections())
            .field("active", &self.active_connections())
            .finish()
    }
}

impl Relay {
    /// A relay on a fresh unix socket `buildkitd.sock` in a new temporary directory.
    pub async fn unix(docker_sock: impl AsRef<Path>) -> Result<Relay> {
        let dir = tempfile::Builder::new()
            .prefix("cicd-relay-")
            .tempdir()
            .context(|| "creating a temporary directory for the relay socket".to_string())?;
        let path = dir.path().join("buildkitd.sock");
        let mut relay = Self::unix_at(docker_sock, &path).await?;
        relay._dir = Some(dir);
        Ok(relay)
    }

    /// A relay on the unix socket `path` (a stale socket file there is replaced). Useful to
    /// bring a relay back on the same address after [`Relay::stop`].
    pub async fn unix_at(docker_sock: impl AsRef<Path>, path: impl AsRef<Path>) -> Result<Relay> {
        let path = path.as_ref().to_path_buf();
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            use std::os::unix::fs::FileTypeExt;
            if meta.file_type().is_socket() {
                std::fs::remove_file(&path)
                    .context(|| format!("removing stale socket {}", path.display()))?;
            }
        }
        let listener =
            UnixListener::bind(&path).context(|| format!("binding {}", path.display()))?;
        Ok(Self::start(
            docker_sock.as_ref(),
            Listener::Unix(listener),
            None,
            format!("unix://{}", path.display()),
            Endpoint::Unix(path),
        ))
    }

    /// A plain-TCP relay on `127.0.0.1` with an ephemeral port.
    pub async fn tcp(docker_sock: impl AsRef<Path>) -> Result<Relay> {
        Self::tcp_at(docker_sock, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// A plain-TCP relay on `addr`.
    pub async fn tcp_at(docker_sock: impl AsRef<Path>, addr: SocketAddr) -> Result<Relay> {
        let (listener, local) = bind_tcp(addr).await?;
        Ok(Self::start(
            docker_sock.as_ref(),
            Listener::Tcp(listener),
            None,
            format!("tcp://{local}"),
            Endpoint::Tcp(local),
        ))
    }

    /// A TLS relay on `127.0.0.1` with an ephemeral port, presenting `certs`' server
    /// certificate and requiring a client certificate signed by its CA (mTLS), ALPN `h2`.
    pub async fn tls(docker_sock: impl AsRef<Path>, certs: &TestCerts) -> Result<Relay> {
        Self::tls_at(docker_sock, certs, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`Relay::tls`], on `addr`.
    pub async fn tls_at(
        docker_sock: impl AsRef<Path>,
        certs: &TestCerts,
        addr: SocketAddr,
    ) -> Result<Relay> {
        let acceptor = TlsAcceptor::from(certs.server_config()?);
        let (listener, local) = bind_tcp(addr).await?;
        Ok(Self::start(
            docker_sock.as_ref(),
            Listener::Tcp(listener),
            Some(acceptor),
            format!("tcp://{local}"),
            Endpoint::Tcp(local),
        ))
    }

    fn start(
        docker_sock: &Path,
        listener: Listener,
        tls: Option<TlsAcceptor>,
        addr: String,
        endpoint: Endpoint,
    ) -> Relay {
        let (kill, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            accepted: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            kill,
            client_bytes: AtomicU64::new(0),
            daemon_bytes: AtomicU64::new(0),
            cut_at_client_bytes: AtomicU64::new(u64::MAX),
            black_hole: AtomicBool::new(false),
        });
        let (done_tx, done_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(
            listener,
            tls,
            docker_sock.to_path_buf(),
            shared.clone(),
            done_tx,
        ));
        tracing::debug!(%addr, docker_sock = %docker_sock.display(), "relay listening");
        Relay {
            addr,
            endpoint,
            shared,
            task,
            done: Mutex::new(Some(done_rx)),
            _dir: None,
        }
    }

    /// The address as a user writes it: `unix:///tmp/…/buildkitd.sock` or
    /// `tcp://127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The socket path of a unix relay.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.endpoint {
            Endpoint::Unix(p) => Some(p),
            Endpoint::Tcp(_) => None,
        }
    }

    /// The listening address of a TCP or TLS relay.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.endpoint {
            Endpoint::Unix(_) => None,
            Endpoint::Tcp(a) => Some(*a),
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently being relayed.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Cuts every connection being relayed right now but keeps listening.
    pub fn kill_connections(&self) {
        self.shared.cut();
    }

    /// Fault injection: cuts every connection being relayed right now (both sockets are
    /// closed, as when a daemon or the network between goes away) and keeps listening, so
    /// a client may connect again. Same as [`Relay::kill_connections`].
    pub fn cut_now(&self) {
        tracing::debug!(addr = %self.addr, "relay: cutting every connection");
        self.shared.cut();
    }

    /// Fault injection: cuts every connection once `bytes` more bytes have gone from
    /// clients to the daemon (counted over all connections from now on). The cut happens
    /// once; a later call arms it again.
    pub fn cut_after_client_bytes(&self, bytes: u64) {
        let at = self.client_bytes().saturating_add(bytes);
        self.shared.cut_at_client_bytes.store(at, Ordering::SeqCst);
    }

    /// Fault injection: from now on, bytes in both directions are read and dropped instead
    /// of forwarded, while every socket stays open: what a client sees when the network
    /// between it and the daemon silently stops delivering packets.
    /// [`Relay::restore`] forwards again (the bytes dropped meanwhile are lost).
    pub fn black_hole(&self) {
        tracing::debug!(addr = %self.addr, "relay: black hole");
        self.shared.black_hole.store(true, Ordering::SeqCst);
    }

    /// Ends a [`Relay::black_hole`] and disarms [`Relay::cut_after_client_bytes`].
    pub fn restore(&self) {
        self.shared.black_hole.store(false, Ordering::SeqCst);
        self.shared
            .cut_at_client_bytes
            .store(u64::MAX, Ordering::SeqCst);
    }

    /// Bytes forwarded from clients to the daemon so far, over all connections.
    pub fn client_bytes(&self) -> u64 {
        self.shared.client_bytes.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the daemon to clients so far, over all connections.
    pub fn daemon_bytes(&self) -> u64 {
        self.shared.daemon_bytes.load(Ordering::SeqCst)
    }

    /// Stops listening and cuts every relayed connection; returns once the listener is
    /// closed, so new connection attempts fail from then on. Idempotent.
    pub async fn stop(&self) {
        self.kill_connections();
        self.task.abort();
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            // Resolves (with an error) when the accept task, which owns the listener and the
            // connection tasks, has been dropped.
            let _ = done.await;
        }
        tracing::debug!(addr = %self.addr, "relay stopped");
    }

    /// Whether [`Relay::stop`] was called (or the accept loop ended).
    pub fn is_stopped(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.cut();
        self.task.abort();
    }
}

async fn bind_tcp(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .context(|| format!("binding {addr}"))?;
    let local = listener
        .local_addr()
        .context(|| "reading the relay's local address".to_string())?;
    Ok((listener, local))
}

async fn accept_loop(
    listener: Listener,
    tls: Option<TlsAcceptor>,
    docker_sock: PathBuf,
    shared: Arc<Shared>,
    // Dropped together with this future: tells `Relay::stop` that the listener is closed.
    _done: oneshot::Sender<()>,
) {
    // Dropping the set (when this future is dropped) aborts every connection task.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    shared.accepted.fetch_add(1, Ordering::SeqCst);
                    let guard = ActiveGuard::new(&shared);
                    let mut kill = shared.kill.subscribe();
                    let docker_sock = docker_sock.clone();
                    let tls = tls.clone();
                    let counters = shared.clone();
                    conns.spawn(async move {
                        let _guard = guard;
                        tokio::select! {
                            res = serve(stream, tls, &docker_sock, &counters) => {
                                if let Err(e) = res {
                                    tracing::debug!(error = %e, "relay connection ended with an error");
                                }
                            }
                            _ = kill.changed() => {
                                tracing::debug!("relay connection cut");
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "relay accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve(
    stream: Accepted,
    tls: Option<TlsAcceptor>,
    docker_sock: &Path,
    shared: &Shared,
) -> Result<()> {
    match (stream, tls) {
        (Accepted::Unix(s), _) => relay_connection(s, docker_sock, shared).await,
        (Accepted::Tcp(s), None) => relay_connection(s, docker_sock, shared).await,
        (Accepted::Tcp(s), Some(acceptor)) => {
            let s = timeout(DIAL_TIMEOUT, acceptor.accept(s))
                .await
                .map_err(|_| Error::Timeout("TLS handshake".to_string()))?
                .context(|| "TLS handshake".to_string())?;
            relay_connection(s, docker_sock, shared).await
        }
    }
}

/// Dials the Docker socket, upgrades to h2c on `/grpc` and copies bytes both ways.
async fn relay_connection<C>(mut client: C, docker_sock: &Path, shared: &Shared) -> Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut docker = timeout(DIAL_TIMEOUT, UnixStream::connect(docker_sock))
        .await
        .map_err(|_| Error::Timeout(format!("connecting to {}", docker_sock.display())))?
        .context(|| format!("connecting to {}", docker_sock.display()))?;
    let leftover = timeout(DIAL_TIMEOUT, upgrade(&mut docker))
        .await
        .map_err(|_| {
            Error::Timeout("waiting for dockerd's 101 Switching Protocols".to_string())
        })??;
    if !leftover.is_empty() {
        client
            .write_all(&leftover)
            .await
            .context(|| "writing to the relay client".to_string())?;
    }
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut docker_read, mut docker_write) = tokio::io::split(docker);
    let upstream = pump(
        &mut client_read,
        &mut docker_write,
        shared,
        Direction::ToDaemon,
    );
    let downstream = pump(
        &mut docker_read,
        &mut client_write,
        shared,
        Direction::ToClient,
    );
    // Either side hanging up ends the relayed connection (both sockets are dropped).
    tokio::select! {
        res = upstream => res.context(|| "relaying client to daemon".to_string())?,
        res = downstream => res.context(|| "relaying daemon to client".to_string())?,
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToDaemon,
    ToClient,
}

/// Copies `from` to `to`, counting bytes and obeying the fault controls, until `from` ends.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    shared: &Shared,
    direction: Direction,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        if shared.black_hole.load(Ordering::SeqCst) {
            continue;
        }
        to.write_all(&buf[..n]).await?;
        let counter = match direction {
            Direction::ToDaemon => &shared.client_bytes,
            Direction::ToClient => &shared.daemon_bytes,
        };
        let total = counter.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        if direction == Direction::ToDaemon {
            let at = shared.cut_at_client_bytes.load(Ordering::SeqCst);
            if total >= at
                && shared
                    .cut_at_client_bytes
                    .compare_exchange(at, u64::MAX, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                tracing::debug!(
                    total,
                    "relay: client byte limit reached, cutting every connection"
                );
                shared.cut();
            }
        }
    }
}

/// Sends the upgrade request and reads the response head; returns the bytes read past it.
async fn upgrade(docker: &mut UnixStream) -> Result<Vec<u8>> {
    docker
        .write_all(UPGRADE_REQUEST)
        .await
        .context(|| "sending the upgrade request to dockerd".to_string())?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(Error::Upgrade("response head too large".to_string()));
        }
        let n = docker
            .read(&mut chunk)
            .await
            .context(|| "reading dockerd's upgrade response".to_string())?;
        if n == 0 {
            return Err(Error::Upgrade(format!(
                "dockerd closed the connection after {:?}",
                String::from_utf8_lossy(&buf)
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status_line = head.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code != "101" {
        return Err(Error::Upgrade(format!(
            "expected 101 Switching Protocols, got {status_line:?} (body so far: {:?})",
            String::from_utf8_lossy(&buf[head_end..])
        )));
    }
    Ok(buf.split_off(head_end))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// HTTP/2 client connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_FRAME_SETTINGS: u8 = 0x4;
const H2_FLAG_ACK: u8 = 0x1;

/// Checks at the byte level that an HTTP/2 server answers on `stream`: writes the client
/// preface and an empty SETTINGS frame, then reads frames until the server's own SETTINGS
/// frame (not an ACK) arrives. Times out after 10 s.
pub async fn probe_h2<S>(stream: &mut S) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hello = H2_PREFACE.to_vec();
    // length 0, type SETTINGS, flags 0, stream 0
    hello.extend_from_slice(&[0, 0, 0, H2_FRAME_SETTINGS, 0, 0, 0, 0, 0]);
    let fut = async {
        stream
            .write_all(&hello)
            .await
            .context(|| "writing the HTTP/2 preface".to_string())?;
        stream
            .flush()
            .await
            .context(|| "flushing the HTTP/2 preface".to_string())?;
        for _ in 0..64 {
            let mut header = [0u8; 9];
            stream
                .read_exact(&mut header)
                .await
                .context(|| "reading an HTTP/2 frame header".to_string())?;
            let len = (usize::from(header[0]) << 16)
                | (usize::from(header[1]) << 8)
                | usize::from(header[2]);
            let (kind, flags) = (header[3], header[4]);
            let mut payload = vec![0u8; len];
            stream
                .read_exact(&mut payload)
                .await
                .context(|| "reading an HTTP/2 frame payload".to_string())?;
            if kind == H2_FRAME_SETTINGS && flags & H2_FLAG_ACK == 0 {
                return Ok(());
            }
        }
        Err(Error::Upgrade(
            "no SETTINGS frame among the first 64 HTTP/2 frames".to_string(),
        ))
    };
    timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| Error::Timeout("waiting for the server's HTTP/2 SETTINGS frame".to_string()))?
}
