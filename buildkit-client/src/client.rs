//! [`Client`]: one connection to one BuildKit daemon.

use std::time::Duration;

use cicd_agents_proto::moby::buildkit::v1::control_client::ControlClient;
use tonic::transport::Channel;

use crate::address::Address;
use crate::error::Result;
use crate::transport::{
    Keepalive, TlsOptions, Transport, DEFAULT_CONNECT_TIMEOUT, MAX_MESSAGE_SIZE,
};

/// A connection to a BuildKit daemon's Control API.
///
/// Cloning is cheap: clones share the HTTP/2 connection.
///
/// ```no_run
/// # async fn run() -> Result<(), cicd_agents_buildkit::Error> {
/// use cicd_agents_buildkit::Client;
///
/// let client = Client::builder().address("docker://").connect().await?;
/// let info = client.info().await?;
/// println!("BuildKit {}", info.version_display());
/// for worker in client.list_workers().await? {
///     println!("{} {:?}", worker.id, worker.platforms);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) transport: Transport,
    pub(crate) control: ControlClient<Channel>,
    daemon: std::sync::Arc<tokio::sync::OnceCell<crate::DaemonInfo>>,
    /// How long [`ClientBuilder::connect`] took, in nanoseconds, until the
    /// first build reports it in its timings.
    connect_nanos: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Options for [`Client`]; see [`Client::builder`].
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    address: Option<String>,
    tls: TlsOptions,
    connect_timeout: Option<Duration>,
    keepalive: Option<Keepalive>,
}

impl ClientBuilder {
    /// The daemon's address (`unix://…`, `tcp://…`, `docker://…`). Without it
    /// the address is resolved as [`Address::resolve`] describes.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the address only if `address` is `Some`.
    pub fn address_opt(mut self, address: Option<impl Into<String>>) -> Self {
        self.address = address.map(Into::into);
        self
    }

    /// TLS options for `tcp://` daemons.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// How long to wait for the daemon to answer a connect (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// HTTP/2 keepalive on the connection to the daemon: a PING every
    /// `interval`, and the connection is given up when a PING is not answered
    /// within `timeout` (default 15 s / 10 s; see [`Keepalive`]). A daemon or
    /// network path that goes silent then fails the running calls with
    /// [`Error::ConnectionLost`](crate::Error::ConnectionLost) within
    /// `interval + timeout`. Values under 100 ms are rejected by
    /// [`connect`](ClientBuilder::connect).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive = Some(Keepalive::unchecked(interval, timeout));
        self
    }

    /// Like [`keepalive`](ClientBuilder::keepalive), with a checked [`Keepalive`].
    pub fn keepalive_config(mut self, keepalive: Keepalive) -> Self {
        self.keepalive = Some(keepalive);
        self
    }

    /// Resolves the address and connects.
    pub async fn connect(self) -> Result<Client> {
        // Options first: a bad option is reported even when no daemon is found.
        let keepalive = match self.keepalive {
            Some(keepalive) => Keepalive::new(keepalive.interval(), keepalive.timeout())?,
            None => Keepalive::default(),
        };
        let address = Address::resolve(self.address.as_deref())?;
        let transport = Transport::new(
            address,
            &self.tls,
            self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            keepalive,
        )?;
        tracing::debug!(address = %transport.address(), "connecting to BuildKit");
        let started = std::time::Instant::now();
        let channel = transport.connect_channel().await?;
        let control = ControlClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Ok(Client {
            transport,
            control,
            daemon: Default::default(),
            connect_nanos: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            )),
        })
    }
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects to `address` with default options.
    pub async fn connect(address: &str) -> Result<Client> {
        Client::builder().address(address).connect().await
    }

    /// The daemon's address.
    pub fn address(&self) -> &Address {
        self.transport.address()
    }

    pub(crate) fn control(&self) -> ControlClient<Channel> {
        self.control.clone()
    }

    /// Opens the byte stream of a build session announced with `headers`;
    /// the transport knows how this daemon takes sessions.
    pub(crate) async fn open_session(
        &self,
        headers: &[(String, String)],
    ) -> Result<crate::transport::SessionStream> {
        self.transport.open_session(&self.control, headers).await
    }

    /// Makes a Control call that changes nothing on the daemon, and makes it
    /// once more if the first attempt found the connection already broken (cut,
    /// daemon restarted): the channel notices a dead connection only when a
    /// call fails on it, and dials a new one for the next call. A failed dial
    /// is not retried.
    pub(crate) async fn call_read_only<T, F, Fut>(
        &self,
        call: F,
    ) -> std::result::Result<tonic::Response<T>, tonic::Status>
    where
        F: Fn(ControlClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        match call(self.control()).await {
            Err(status) if is_stale_connection(&status) => {
                tracing::debug!(address = %self.address(), %status, "the connection had broken; calling again on a new one");
                call(self.control()).await
            }
            other => other,
        }
    }

    /// How long connecting took, the first time it is asked; zero after.
    pub(crate) fn take_connect_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(
            self.connect_nanos
                .swap(0, std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// The daemon's [`info`](Client::info), asked once per client.
    pub(crate) async fn daemon_info(&self) -> Result<crate::DaemonInfo> {
        self.daemon.get_or_try_init(|| self.info()).await.cloned()
    }
}

/// Whether `status` says the call failed on a connection that had broken
/// (rather than the daemon answering, or a new connection failing to open).
fn is_stale_connection(status: &tonic::Status) -> bool {
    use std::error::Error as _;
    crate::error::connection_failure(status).is_some()
        && status
            .source()
            .and_then(crate::error::take_connect_error)
            .is_none()
}
