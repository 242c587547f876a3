//! How bytes reach a daemon: unix sockets, TCP (optionally TLS or mutual TLS)
//! and the Docker API's HTTP/1.1 → h2c upgrades.
//!
//! The transport opens raw streams; `tonic` runs HTTP/2 and gRPC on top. It
//! also opens a build session's stream (`Transport::open_session`), the
//! one place that tells Docker's `/session` door from `Control.Session`.

pub(crate) mod docker;
pub(crate) mod io;
mod keepalive;
mod session;
mod tls;

use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixStream};
use tonic::transport::{Channel, Endpoint as TonicEndpoint};

pub use keepalive::Keepalive;
pub(crate) use session::SessionStream;
pub use tls::TlsOptions;
use tls::TlsSettings;

use crate::address::{Address, Endpoint};
use crate::error::{error_chain, Error, Result};
use io::BoxedStream;

/// The largest gRPC message accepted or sent (BuildKit's own limit is 16 MiB;
/// we allow more so that large exporter responses and definitions pass).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// HTTP/2 per-stream window: large enough that a bulk transfer is not throttled
/// by window updates.
pub(crate) const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// HTTP/2 per-connection window.
pub(crate) const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
/// Default time allowed for reaching the daemon.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything needed to open streams to one daemon.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    address: Address,
    tls: Option<TlsSettings>,
    connect_timeout: Duration,
    keepalive: Keepalive,
}

impl Transport {
    pub(crate) fn new(
        address: Address,
        tls: &TlsOptions,
        connect_timeout: Duration,
        keepalive: Keepalive,
    ) -> Result<Self> {
        let tls = if tls.is_enabled() {
            match address.endpoint() {
                Endpoint::Tcp { host, .. } => Some(tls.settings(host)?),
                Endpoint::Unix(_) => {
                    return Err(Error::Tls {
                        path: None,
                        reason: format!("TLS options were given but {address} is a unix socket"),
                    })
                }
            }
        } else {
            None
        };
        Ok(Transport {
            address,
            tls,
            connect_timeout,
            keepalive,
        })
    }

    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    pub(crate) fn keepalive(&self) -> Keepalive {
        self.keepalive
    }

    fn connect_error(&self, reason: impl Into<String>) -> Error {
        Error::Connect {
            address: self.address.to_string(),
            reason: reason.into(),
        }
    }

    /// Opens a raw stream to the endpoint (TLS already negotiated).
    async fn dial_raw(&self) -> Result<BoxedStream> {
        let attempt = async {
            match self.address.endpoint() {
                Endpoint::Unix(path) => {
                    let stream = UnixStream::connect(path).await.map_err(|err| {
                        self.connect_error(format!("{}: {}", path.display(), err))
                    })?;
                    Ok(Box::new(stream) as BoxedStream)
                }
                Endpoint::Tcp { host, port } => {
                    let stream = TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|err| self.connect_error(err.to_string()))?;
                    let _ = stream.set_nodelay(true);
                    match &self.tls {
                        None => Ok(Box::new(stream) as BoxedStream),
                        Some(tls) => {
                            let stream = tls
                                .connector
                                .connect(tls.server_name.clone(), stream)
                                .await
                                .map_err(|err| {
                                    self.connect_error(handshake_failure(host, tls, &err))
                                })?;
                            Ok(Box::new(stream) as BoxedStream)
                        }
                    }
                }
            }
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(Error::ConnectTimeout {
                address: self.address.to_string(),
                timeout: self.connect_timeout,
            }),
        }
    }

    /// Opens a stream that speaks HTTP/2 to the Control API.
    ///
    /// `connect_timeout` covers the whole way to a daemon that answers: the
    /// dial, TLS, and for `unix://`/`tcp://` the daemon's first HTTP/2 bytes
    /// (a listener that accepts and never answers fails the first call when
    /// the time is up; a Docker API socket, which answers HTTP/1.1, fails it
    /// at once with a hint to use `docker://`). For `docker://`, the HTTP/1.1
    /// upgrade is that answer.
    ///
    /// `told` (if given) learns how the daemon's first answer went.
    pub(crate) async fn dial_control(
        &self,
        told: Option<tokio::sync::oneshot::Sender<std::result::Result<(), io::NoAnswer>>>,
    ) -> Result<BoxedStream> {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let stream = self.dial_raw().await?;
        if !self.address.is_docker() {
            let transport = self.clone();
            let fail: io::FailWith = Box::new(move |answer| {
                let kind = match answer {
                    io::NoAnswer::Silent => std::io::ErrorKind::TimedOut,
                    io::NoAnswer::Http1 => std::io::ErrorKind::InvalidData,
                };
                std::io::Error::new(kind, transport.no_answer(answer))
            });
            return Ok(Box::new(io::AnswerBy::new(stream, deadline, fail, told)));
        }
        let upgraded =
            tokio::time::timeout(self.connect_timeout, docker::upgrade(stream, "/grpc", &[]))
                .await
                .map_err(|_| Error::ConnectTimeout {
                    address: self.address.to_string(),
                    timeout: self.connect_timeout,
                })?;
        upgraded.map_err(|reason| self.connect_error(reason))
    }

    /// The error for a daemon that hung up before its first answer was read. The Docker API
    /// answers HTTP/2's preface in HTTP/1.1 and closes; when our writes lose that race, its
    /// answer can be gone with the connection. A second connection asked in HTTP/1.1 tells.
    async fn closed_without_answer(&self) -> Error {
        if self.answers_http1().await {
            return self.no_answer(io::NoAnswer::Http1);
        }
        self.connect_error("the daemon closed the connection without answering")
    }

    /// Whether the daemon answers a plain HTTP/1.1 request (within the connect timeout).
    async fn answers_http1(&self) -> bool {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let probe = async {
            let mut stream = self.dial_raw().await.ok()?;
            stream
                .write_all(b"GET /_ping HTTP/1.1\r\nHost: buildkitd\r\nConnection: close\r\n\r\n")
                .await
                .ok()?;
            let mut first = [0u8; 5];
            stream.read_exact(&mut first).await.ok()?;
            Some(io::looks_like_http1(&first))
        };
        matches!(
            tokio::time::timeout(self.connect_timeout, probe).await,
            Ok(Some(true))
        )
    }

    /// The error for a daemon whose first answer was not HTTP/2.
    fn no_answer(&self, answer: io::NoAnswer) -> Error {
        match answer {
            io::NoAnswer::Silent => Error::ConnectTimeout {
                address: self.address.to_string(),
                timeout: self.connect_timeout,
            },
            io::NoAnswer::Http1 => self.connect_error(format!(
                "it answered in HTTP/1.1, as the Docker API does, not in BuildKit's gRPC; \
                 for the BuildKit inside Docker use the address docker://{}",
                self.address.endpoint()
            )),
        }
    }

    /// Opens the Docker API's `/session` door with the session headers; the
    /// returned stream speaks HTTP/2 with the daemon as the client.
    async fn dial_docker_session(&self, headers: &[(String, String)]) -> Result<BoxedStream> {
        let stream = self.dial_raw().await?;
        let upgraded = tokio::time::timeout(
            self.connect_timeout,
            docker::upgrade(stream, "/session", headers),
        )
        .await
        .map_err(|_| Error::ConnectTimeout {
            address: self.address.to_string(),
            timeout: self.connect_timeout,
        })?;
        upgraded.map_err(|reason| self.connect_error(reason))
    }

    /// `GET` on the Docker API (only for `docker://` addresses).
    pub(crate) async fn docker_get(&self, path: &str) -> Result<docker::Response> {
        let stream = self.dial_raw().await?;
        docker::get(stream, path)
            .await
            .map_err(|reason| self.connect_error(reason))
    }

    /// Connects an HTTP/2 channel for the Control API, failing fast when the
    /// daemon cannot be reached.
    pub(crate) async fn connect_channel(&self) -> Result<Channel> {
        let endpoint = TonicEndpoint::from_static("http://buildkitd")
            .initial_stream_window_size(Some(STREAM_WINDOW))
            .initial_connection_window_size(Some(CONNECTION_WINDOW))
            .http2_keep_alive_interval(self.keepalive.interval())
            .keep_alive_timeout(self.keepalive.timeout())
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let transport = self.clone();
        // The first dial reports the daemon's first answer: the connect is
        // done only once the daemon has spoken HTTP/2 (see `dial_control`).
        let (told, answer) = tokio::sync::oneshot::channel();
        let told = std::sync::Arc::new(std::sync::Mutex::new(Some(told)));
        let connector = tower::service_fn(move |_: Uri| {
            let transport = transport.clone();
            let told = told.lock().ok().and_then(|mut told| told.take());
            async move { transport.dial_control(told).await.map(TokioIo::new) }
        });
        match endpoint.connect_with_connector(connector).await {
            Ok(channel) if self.address.is_docker() => Ok(channel),
            Ok(channel) => match answer.await {
                Ok(Ok(())) => Ok(channel),
                Ok(Err(no_answer)) => Err(self.no_answer(no_answer)),
                Err(_) => Err(self.closed_without_answer().await),
            },
            // Our connector's own error names the address and the cause; prefer
            // it to tonic's generic "transport error".
            Err(err) => {
                Err(take_our_error(&err).unwrap_or_else(|| self.connect_error(error_chain(&err))))
            }
        }
    }
}

/// Says why a TLS handshake with `host` failed; a certificate that could not
/// be verified is named as such, with the ways out.
fn handshake_failure(host: &str, tls: &TlsSettings, err: &std::io::Error) -> String {
    let name = match &tls.server_name {
        rustls::pki_types::ServerName::DnsName(name) => name.as_ref().to_string(),
        rustls::pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    };
    let certificate = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
    if certificate {
        format!(
            "TLS handshake with {host}: the daemon's certificate could not be verified for the name {name:?} ({err}); \
             give the CA certificate that signed it, the server name it carries, \
             or skip verification (insecure)"
        )
    } else {
        format!("TLS handshake with {host}: {err}")
    }
}

/// Finds this crate's [`Error`] in a source chain and rebuilds it (errors are
/// not `Clone`; the variants a connector returns carry only strings).
fn take_our_error(err: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(candidate) = current {
        if let Some(ours) = candidate.downcast_ref::<Error>() {
            return Some(match ours {
                Error::Connect { address, reason } => Error::Connect {
                    address: address.clone(),
                    reason: reason.clone(),
                },
                Error::ConnectTimeout { address, timeout } => Error::ConnectTimeout {
                    address: address.clone(),
                    timeout: *timeout,
                },
                other => Error::Connect {
                    address: String::new(),
                    reason: other.to_string(),
                },
            });
        }
        current = candidate.source();
    }
    None
}
