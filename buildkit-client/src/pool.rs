//! [`BuilderPool`]: one client over several BuildKit daemons.
//!
//! * **Sticky routing.** Each build has a key (the repository URL, or the local context's
//!   absolute path; see [`routing_key`]). Daemons are ranked for that key by rendezvous
//!   (highest-random-weight) hashing: every daemon gets the score `sha256(key, address)` and
//!   the highest wins. The same project keeps landing on the same daemon and its warm cache,
//!   across calls and processes, and adding or removing a daemon only moves the keys that
//!   ranked it first.
//! * **Health checks.** Before a daemon is handed out it must answer `ListWorkers` within a
//!   short timeout (default 2 s).
//! * **Failover.** A daemon that cannot be reached (connect failure, timeout, gRPC
//!   `Unavailable`) is marked down for a while (default 15 s) and the next daemon in the key's
//!   ranking is tried; daemons marked down are tried last, not never. A build that loses its
//!   daemon is started again on the next one; a build that *fails* (a Dockerfile error) is not.
//! * **Errors** name every daemon tried and why it was passed over.
//! * **Discovery.** An address `dns+tcp://<service>.<namespace>.svc:<port>` stands for the
//!   ready replicas of a headless Service in front of a StatefulSet (`cicd-agents k8s render
//!   pool`); see [`crate::discovery`]. Members are the replicas' DNS names (stable across pod
//!   restarts, unlike their IPs), so a key keeps its replica while that replica exists. DNS is
//!   asked again every [`DEFAULT_REFRESH_INTERVAL`] and whenever every known member failed;
//!   a failed lookup keeps the members found before. Static and DNS addresses may be mixed.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use cicd_agents_buildkit::{build::BuildOptions, pool::routing_key, BuilderPool, TlsOptions};
//!
//! let pool = BuilderPool::new(
//!     ["tcp://buildkitd-0.buildkitd:1234", "tcp://buildkitd-1.buildkitd:1234", "tcp://buildkitd-2.buildkitd:1234"],
//!     TlsOptions::default().ca_cert("ca.pem").client_cert("cert.pem", "key.pem"),
//! )?;
//! let options = BuildOptions::remote("https://github.com/org/app.git#main").tag("registry.example/app:1.4.2").push(true);
//! let key = routing_key(&options);
//! let build = pool.build(&key, &options, &mut |_: &_| {}).await?;
//! println!("built {:?} on {}", build.result.digest, build.address);
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::address::{Accepted, Address, AddressOrigin, AddressProblem};
use crate::build::{BuildContext, BuildOptions, BuildResult};
use crate::discovery::{Discovered, DnsPoolAddress, Resolver, SystemResolver};
use crate::error::Error;
use crate::progress::ProgressSink;
use crate::{Client, TlsOptions};

/// How long a daemon's health check may take (default).
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to reach a daemon (default).
pub const DEFAULT_POOL_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a daemon that failed stays at the end of the ranking (default).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(15);
/// How often DNS addresses are resolved again (default).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Why a daemon was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The daemon's address.
    pub address: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.address, self.reason)
    }
}

/// What the pool can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool was given no addresses.
    #[error("a builder pool needs at least one BuildKit address")]
    Empty,
    /// An address is malformed or appears twice.
    #[error("builder pool: {0}")]
    Address(#[source] Error),
    /// No daemon could be used; every one is listed, in the order tried.
    #[error(
        "no BuildKit daemon of the pool is available for {key:?}; tried {}",
        list(tried)
    )]
    Unavailable {
        /// The routing key.
        key: String,
        /// Every daemon tried, and why it was passed over.
        tried: Vec<Attempt>,
    },
    /// The build ran and failed on `address` (not a connection problem: not retried).
    #[error("{source} (on {address})")]
    Build {
        /// The daemon that ran the build.
        address: String,
        /// The build's error.
        #[source]
        source: Error,
        /// Daemons passed over before it.
        passed_over: Vec<Attempt>,
    },
}

fn list(tried: &[Attempt]) -> String {
    tried
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Default)]
struct MemberState {
    client: Option<Client>,
    /// Where a discovered member is dialled now, and the name its certificate carries.
    dial: Option<(String, String)>,
    down_until: Option<Instant>,
    last_error: Option<String>,
}

struct Member {
    address: String,
    /// The DNS address it was discovered from (index into `BuilderPool::dns`).
    source: Option<usize>,
    state: Mutex<MemberState>,
}

impl Member {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemberState> {
        // A poisoned lock only means a panic elsewhere; the state is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_down(&self, now: Instant) -> bool {
        self.lock().down_until.is_some_and(|until| until > now)
    }

    fn mark_down(&self, reason: &str, retry_after: Duration) {
        let mut state = self.lock();
        state.client = None;
        state.down_until = Some(Instant::now() + retry_after);
        state.last_error = Some(reason.to_string());
    }

    fn mark_up(&self, client: &Client) {
        let mut state = self.lock();
        state.client = Some(client.clone());
        state.down_until = None;
        state.last_error = None;
    }
}

/// A build the pool ran: its result, where it ran, and the daemons passed over first.
#[derive(Debug, Clone)]
pub struct PooledBuild {
    /// The build's result.
    pub result: BuildResult,
    /// The daemon that ran it.
    pub address: String,
    /// Daemons tried before, in order, with why they were passed over: those that failed
    /// their health check before the build started, and those lost in the middle of it.
    pub passed_over: Vec<Attempt>,
}

/// The health of one daemon, as [`BuilderPool::health`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    /// The daemon's address.
    pub address: String,
    /// `Ok(number of workers)` or why it is not usable.
    pub status: Result<usize, String>,
    /// How long the check took.
    pub latency: Duration,
}

/// A client over several BuildKit daemons with sticky routing, health checks and failover;
/// see the [module documentation](self).
pub struct BuilderPool {
    members: RwLock<Vec<Arc<Member>>>,
    dns: Vec<DnsPoolAddress>,
    resolver: Arc<dyn Resolver>,
    refresh_interval: Duration,
    refreshed: Mutex<Option<Instant>>,
    tls: TlsOptions,
    health_timeout: Duration,
    connect_timeout: Duration,
    retry_after: Duration,
}

impl fmt::Debug for BuilderPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuilderPool")
            .field("addresses", &self.addresses())
            .field("dns", &self.dns)
            .field("health_timeout", &self.health_timeout)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

/// The routing key of a build: the repository URL without its `#ref:subdir` fragment (every
/// branch of a project shares one cache), or the local context's absolute path.
pub fn routing_key(options: &BuildOptions) -> String {
    match &options.context {
        BuildContext::Remote(url) => url
            .split('#')
            .next()
            .unwrap_or(url)
            .trim_end_matches('/')
            .to_string(),
        BuildContext::Local(path) => absolute(path),
        // Nothing on this machine to keep a cache warm for.
        BuildContext::Archive(_) | BuildContext::Empty => String::new(),
    }
}

fn absolute(path: &Path) -> String {
    if let Ok(canonical) = path.canonicalize() {
        return canonical.display().to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path).display().to_string(),
        _ => path.display().to_string(),
    }
}

/// Checks one pool address exactly as [`BuilderPool::new`] reads it (a daemon address,
/// `tcp://…`, `unix://…`, `docker://…`, or a `dns+tcp://…` discovery address) and returns it
/// normalized, as the pool names it. Nothing is dialled or resolved.
///
/// ```
/// use cicd_agents_buildkit::pool::check_address;
///
/// assert_eq!(check_address("dns+tcp://BuildKitd.ci.svc:1234").unwrap(), "dns+tcp://buildkitd.ci.svc:1234");
/// assert!(check_address("ftp://host:21").is_err());
/// ```
pub fn check_address(text: &str) -> Result<String, Error> {
    Ok(match PoolAddress::parse(text)? {
        PoolAddress::Dns(address) => address.to_string(),
        PoolAddress::Daemon(address) => address.to_string(),
    })
}

/// One entry of a pool's address list, read once for [`check_address`] and
/// [`BuilderPool::new`].
enum PoolAddress {
    /// A daemon reached at this address.
    Daemon(Address),
    /// Members discovered from DNS.
    Dns(DnsPoolAddress),
}

impl PoolAddress {
    fn parse(text: &str) -> Result<PoolAddress, Error> {
        if DnsPoolAddress::is_dns(text) {
            return Ok(PoolAddress::Dns(text.parse()?));
        }
        text.parse::<Address>()
            .map(PoolAddress::Daemon)
            .map_err(|err| match err {
                // Where the error lists the schemes that would do, a pool takes one more.
                Error::InvalidAddress {
                    address,
                    reason,
                    origin,
                } => Error::InvalidAddress {
                    address,
                    reason: reason.accepting(Accepted::Pool),
                    origin,
                },
                other => other,
            })
    }
}

/// The rendezvous score of `address` for `key`.
fn score(key: &str, address: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update((key.len() as u64).to_be_bytes());
    hasher.update(key.as_bytes());
    hasher.update(address.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

impl BuilderPool {
    /// A pool over `addresses` (`tcp://…`, `unix://…`, `docker://…`), all reached with `tls`
    /// (for `tcp://` daemons; give `TlsOptions::default()` for none). Nothing is dialled yet.
    pub fn new<I, S>(addresses: I, tls: TlsOptions) -> Result<BuilderPool, PoolError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut members: Vec<Arc<Member>> = Vec::new();
        let mut dns: Vec<DnsPoolAddress> = Vec::new();
        for text in addresses {
            let twice = |address: String| {
                PoolError::Address(Error::InvalidAddress {
                    address,
                    reason: AddressProblem::ListedTwice,
                    origin: AddressOrigin::Given,
                })
            };
            let address = match PoolAddress::parse(text.as_ref()).map_err(PoolError::Address)? {
                PoolAddress::Dns(address) => {
                    if dns.contains(&address) {
                        return Err(twice(address.to_string()));
                    }
                    dns.push(address);
                    continue;
                }
                PoolAddress::Daemon(address) => address.to_string(),
            };
            if members.iter().any(|m| m.address == address) {
                return Err(twice(address));
            }
            members.push(Arc::new(Member {
                address,
                source: None,
                state: Mutex::new(MemberState::default()),
            }));
        }
        if members.is_empty() && dns.is_empty() {
            return Err(PoolError::Empty);
        }
        Ok(BuilderPool {
            members: RwLock::new(members),
            dns,
            resolver: Arc::new(SystemResolver),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            refreshed: Mutex::new(None),
            tls,
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
            connect_timeout: DEFAULT_POOL_CONNECT_TIMEOUT,
            retry_after: DEFAULT_RETRY_AFTER,
        })
    }

    /// How long a health check (`ListWorkers`) may take.
    pub fn health_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    /// How long connecting to a daemon may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a daemon that failed is tried last.
    pub fn retry_after(mut self, duration: Duration) -> Self {
        self.retry_after = duration;
        self
    }

    /// How often `dns+tcp://` addresses are resolved again (they are also resolved again
    /// when every known member failed).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Resolves `dns+tcp://` addresses with `resolver` instead of the system's.
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The `dns+tcp://` addresses the pool discovers members from.
    pub fn dns_addresses(&self) -> Vec<String> {
        self.dns.iter().map(ToString::to_string).collect()
    }

    fn snapshot(&self) -> Vec<Arc<Member>> {
        self.members
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn member(&self, address: &str) -> Option<Arc<Member>> {
        self.snapshot().into_iter().find(|m| m.address == address)
    }

    /// Resolves the `dns+tcp://` addresses again if `force` or the refresh interval has
    /// passed. Members that stay keep their state (connection, down mark); a source whose
    /// lookup fails keeps its members. Returns the lookups that failed.
    async fn refresh(&self, force: bool) -> Vec<Attempt> {
        if self.dns.is_empty() {
            return Vec::new();
        }
        {
            let refreshed = self
                .refreshed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !force && refreshed.is_some_and(|at| at.elapsed() < self.refresh_interval) {
                return Vec::new();
            }
        }
        let lookups = self
            .dns
            .iter()
            .map(|address| address.discover(self.resolver.as_ref()));
        let results = futures::future::join_all(lookups).await;
        let mut failed = Vec::new();
        let mut members = self.members.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::take(&mut *members);
        // Static members first, then each source's, in the order given.
        members.extend(old.iter().filter(|m| m.source.is_none()).cloned());
        for (source, result) in results.into_iter().enumerate() {
            match result {
                Ok(found) => {
                    for Discovered {
                        name,
                        dial,
                        server_name,
                    } in found
                    {
                        if members.iter().any(|m| m.address == name) {
                            continue;
                        }
                        let member = match old.iter().find(|m| m.address == name) {
                            Some(member) => member.clone(),
                            None => {
                                tracing::info!(address = %name, source = %self.dns[source], "pool member appeared");
                                Arc::new(Member {
                                    address: name,
                                    source: Some(source),
                                    state: Mutex::new(MemberState::default()),
                                })
                            }
                        };
                        {
                            let mut state = member.lock();
                            let target = Some((dial, server_name));
                            if state.dial != target {
                                state.client = None;
                                state.dial = target;
                            }
                        }
                        members.push(member);
                    }
                }
                Err(reason) => {
                    tracing::warn!(source = %self.dns[source], %reason, "pool discovery failed; keeping the members found before");
                    members.extend(old.iter().filter(|m| m.source == Some(source)).cloned());
                    failed.push(Attempt {
                        address: self.dns[source].to_string(),
                        reason,
                    });
                }
            }
        }
        for gone in old
            .iter()
            .filter(|m| !members.iter().any(|n| n.address == m.address))
        {
            tracing::info!(address = %gone.address, "pool member left");
        }
        drop(members);
        *self
            .refreshed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        failed
    }

    /// Resolves every `dns+tcp://` address now; returns the members afterwards.
    pub async fn discover(&self) -> Vec<String> {
        self.refresh(true).await;
        self.addresses()
    }

    /// The daemons' addresses: those given, in the order given (normalized as [`Address`]
    /// prints them), then those last discovered from DNS.
    pub fn addresses(&self) -> Vec<String> {
        self.snapshot().iter().map(|m| m.address.clone()).collect()
    }

    /// The daemons in the order `key` prefers them (rendezvous hashing), ignoring health.
    pub fn rank(&self, key: &str) -> Vec<String> {
        self.ranked(key)
            .into_iter()
            .map(|m| m.address.clone())
            .collect()
    }

    fn ranked(&self, key: &str) -> Vec<Arc<Member>> {
        let mut ranked: Vec<(u64, Arc<Member>)> = self
            .snapshot()
            .into_iter()
            .map(|m| (score(key, &m.address), m))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.address.cmp(&b.1.address)));
        ranked.into_iter().map(|(_, m)| m).collect()
    }

    /// The order in which daemons are tried for `key`: its ranking, with daemons recently
    /// marked down moved to the end (keeping their relative order).
    pub fn candidates(&self, key: &str) -> Vec<String> {
        self.order(key)
            .into_iter()
            .map(|m| m.address.clone())
            .collect()
    }

    fn order(&self, key: &str) -> Vec<Arc<Member>> {
        let now = Instant::now();
        let (down, up): (Vec<Arc<Member>>, Vec<Arc<Member>>) =
            self.ranked(key).into_iter().partition(|m| m.is_down(now));
        up.into_iter().chain(down).collect()
    }

    /// Connects (or reuses the connection) and checks health.
    async fn check(&self, member: &Member) -> Result<Client, Error> {
        let (cached, dial) = {
            let state = member.lock();
            (state.client.clone(), state.dial.clone())
        };
        let client = match cached {
            Some(client) => client,
            None => {
                // A discovered member is dialled at its IP; its certificate must carry its
                // DNS name.
                let (address, tls) = match dial {
                    Some((address, server_name)) if self.tls.is_enabled() => {
                        let tls = match &self.tls.server_name {
                            Some(_) => self.tls.clone(),
                            None => self.tls.clone().server_name(server_name),
                        };
                        (address, tls)
                    }
                    Some((address, _)) => (address, self.tls.clone()),
                    None => (member.address.clone(), self.tls.clone()),
                };
                Client::builder()
                    .address(address)
                    .tls(tls)
                    .connect_timeout(self.connect_timeout)
                    .connect()
                    .await?
            }
        };
        match tokio::time::timeout(self.health_timeout, client.list_workers()).await {
            Ok(Ok(workers)) if workers.is_empty() => Err(Error::Connect {
                address: member.address.clone(),
                reason: "the daemon has no workers".into(),
            }),
            Ok(Ok(_)) => Ok(client),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(Error::ConnectTimeout {
                address: member.address.clone(),
                timeout: self.health_timeout,
            }),
        }
    }

    /// A healthy daemon for `key`: the first in the key's ranking that connects and answers
    /// `ListWorkers` in time. Returns the client and the daemon's address.
    pub async fn client_for(&self, key: &str) -> Result<(Client, String), PoolError> {
        let (client, address, _) = self.client_after(key, Vec::new()).await?;
        Ok((client, address))
    }

    /// The first healthy daemon for `key` that is not in `tried`. Returns it with `tried`
    /// extended by every daemon passed over on the way (so that a build can report them).
    async fn client_after(
        &self,
        key: &str,
        mut tried: Vec<Attempt>,
    ) -> Result<(Client, String, Vec<Attempt>), PoolError> {
        let mut lookups = self.refresh(false).await;
        let mut forced = false;
        loop {
            if let Some(found) = self.try_members(key, &mut tried).await {
                return Ok((found.0, found.1, tried));
            }
            // Every known member failed: ask DNS again, once, for members not yet tried.
            if self.dns.is_empty() || forced {
                break;
            }
            forced = true;
            lookups = self.refresh(true).await;
            let fresh = self
                .snapshot()
                .iter()
                .any(|m| !tried.iter().any(|t| t.address == m.address));
            if !fresh {
                break;
            }
        }
        if self.snapshot().is_empty() && lookups.is_empty() {
            for address in &self.dns {
                tried.push(Attempt {
                    address: address.to_string(),
                    reason: "no ready member in DNS".into(),
                });
            }
        }
        tried.extend(lookups);
        Err(PoolError::Unavailable {
            key: key.to_string(),
            tried,
        })
    }

    /// Tries the members not in `tried`, in `key`'s order; returns the first healthy one.
    async fn try_members(&self, key: &str, tried: &mut Vec<Attempt>) -> Option<(Client, String)> {
        for member in self.order(key) {
            if tried.iter().any(|t| t.address == member.address) {
                continue;
            }
            match self.check(&member).await {
                Ok(client) => {
                    member.mark_up(&client);
                    if !tried.is_empty() {
                        tracing::info!(%key, address = %member.address, passed_over = %list(tried), "failing over");
                    }
                    tracing::debug!(%key, address = %member.address, "routed");
                    return Some((client, member.address.clone()));
                }
                Err(err) => {
                    let reason = err.to_string();
                    tracing::warn!(%key, address = %member.address, %reason, "BuildKit daemon unavailable");
                    member.mark_down(&reason, self.retry_after);
                    tried.push(Attempt {
                        address: member.address.clone(),
                        reason,
                    });
                }
            }
        }
        None
    }

    /// Runs a build on the daemon `key` routes to. If that daemon is lost before or during the
    /// build (a connection error, not a build failure), the build is started again on the next
    /// healthy daemon. Returns the result, the daemon that ran it and those passed over.
    pub async fn build(
        &self,
        key: &str,
        options: &BuildOptions,
        progress: &mut (dyn ProgressSink + '_),
    ) -> Result<PooledBuild, PoolError> {
        let mut tried: Vec<Attempt> = Vec::new();
        // How many of `tried` the progress sink has been told about.
        let mut told = 0;
        loop {
            // Daemons that fail their health check here are passed over too, and reported.
            let (client, address, passed_over) = self.client_after(key, tried).await?;
            tried = passed_over;
            progress.builder(&address, &tried[told..]);
            told = tried.len();
            match client.build_with_progress(options, progress).await {
                Ok(result) => {
                    return Ok(PooledBuild {
                        result,
                        address,
                        passed_over: tried,
                    })
                }
                Err(err) if err.is_connection() => {
                    let reason = format!("lost during the build: {err}");
                    tracing::warn!(%key, %address, %reason, "retrying the build on the next daemon");
                    if let Some(member) = self.member(&address) {
                        member.mark_down(&reason, self.retry_after);
                    }
                    tried.push(Attempt { address, reason });
                }
                Err(source) => {
                    // Cutting the connection mid-build can surface as a build error; if the
                    // daemon no longer answers, it was lost, and the build goes elsewhere.
                    let member = self.member(&address);
                    let lost = match &member {
                        Some(member) => {
                            member.lock().client = None;
                            self.check(member).await.err()
                        }
                        None => None,
                    };
                    match (member, lost) {
                        (Some(member), Some(lost)) => {
                            let reason = format!("lost during the build: {source} (then: {lost})");
                            tracing::warn!(%key, %address, %reason, "retrying the build on the next daemon");
                            member.mark_down(&reason, self.retry_after);
                            tried.push(Attempt { address, reason });
                        }
                        _ => {
                            return Err(PoolError::Build {
                                address,
                                source,
                                passed_over: tried,
                            })
                        }
                    }
                }
            }
        }
    }

    /// Checks every daemon now, concurrently.
    pub async fn health(&self) -> Vec<EndpointHealth> {
        self.refresh(false).await;
        let members = self.snapshot();
        let checks = members.iter().map(|member| async move {
            let started = Instant::now();
            let status = match self.check(member).await {
                Ok(client) => {
                    member.mark_up(&client);
                    match client.list_workers().await {
                        Ok(workers) => Ok(workers.len()),
                        Err(err) => Err(err.to_string()),
                    }
                }
                Err(err) => {
                    let reason = err.to_string();
                    member.mark_down(&reason, self.retry_after);
                    Err(reason)
                }
            };
            EndpointHealth {
                address: member.address.clone(),
                status,
                latency: started.elapsed(),
            }
        });
        futures::future::join_all(checks).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(addresses: &[&str]) -> BuilderPool {
        match BuilderPool::new(addresses, TlsOptions::default()) {
            Ok(pool) => pool,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn the_pool_and_check_address_read_addresses_alike() {
        for text in ["ftp://h:1", "dns://svc:1", "h:1234", "tcp://a:1,tcp://b:1"] {
            let checked = match check_address(text) {
                Ok(ok) => panic!("{text}: accepted as {ok}"),
                Err(err) => err.to_string(),
            };
            let pooled = match BuilderPool::new([text], TlsOptions::default()) {
                Ok(_) => panic!("{text}: the pool took it"),
                Err(err) => err.to_string(),
            };
            assert!(pooled.contains(&checked), "{text}: {pooled} / {checked}");
        }
    }

    /// The pool decides on the reason's type, not its text: every reason that lists the
    /// schemes that would do lists `dns+tcp://` too, and only those.
    #[test]
    fn address_errors_that_list_schemes_list_dns_tcp() {
        let reason = |text: &str| match check_address(text) {
            Err(Error::InvalidAddress { reason, .. }) => reason,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            reason("dns://svc.ci.svc:1234"),
            AddressProblem::UnknownScheme {
                scheme: "dns".into(),
                accepted: Accepted::Pool
            }
        );
        assert_eq!(
            reason("ssh://me@host"),
            AddressProblem::UnsupportedTransport {
                scheme: "ssh".into(),
                accepted: Accepted::Pool
            }
        );
        assert_eq!(
            reason("bogus"),
            AddressProblem::MissingScheme {
                accepted: Accepted::Pool
            }
        );
        for text in [
            "dns://svc.ci.svc:1234",
            "ssh://me@host",
            "bogus",
            "kube-pod://p",
        ] {
            let message = check_address(text).unwrap_err().to_string();
            assert!(message.contains("dns+tcp://"), "{text}: {message}");
            let pooled = BuilderPool::new([text], TlsOptions::default()).unwrap_err();
            assert!(
                pooled.to_string().contains("dns+tcp://"),
                "{text}: {pooled}"
            );
            // A single daemon's address does not take it.
            let single = text.parse::<Address>().unwrap_err().to_string();
            assert!(!single.contains("dns+tcp://"), "{text}: {single}");
        }
        assert_eq!(
            check_address("bogus").unwrap_err().to_string(),
            "invalid BuildKit address \"bogus\": missing scheme; use unix:///path, tcp://host:port, \
             docker:// or dns+tcp://<service>.<namespace>.svc:<port>"
        );
        // Reasons that list no scheme are left as they are.
        assert_eq!(
            reason("tcp://h"),
            AddressProblem::MissingPort {
                example: "tcp://host:port"
            }
        );
        assert_eq!(
            reason("dns+tcp://svc.ci.svc"),
            AddressProblem::MissingPort {
                example: "dns+tcp://<service>.<namespace>.svc:<port>"
            }
        );
    }

    #[test]
    fn an_address_listed_twice_is_refused() {
        for twice in [
            ["tcp://a:1234", "tcp://a:1234"],
            ["dns+tcp://p.ci.svc:1234", "dns+tcp://p.ci.svc:1234"],
        ] {
            let err = BuilderPool::new(twice, TlsOptions::default()).map(drop);
            assert!(
                matches!(&err, Err(e) if e.to_string().contains("listed twice")),
                "{twice:?}: {err:?}"
            );
        }
    }

    #[test]
    fn ranking_is_deterministic_and_spreads_keys() {
        let addresses = ["tcp://a:1234", "tcp://b:1234", "tcp://c:1234"];
        let one = pool(&addresses);
        let reversed = pool(&["tcp://c:1234", "tcp://b:1234", "tcp://a:1234"]);
        let mut firsts = std::collections::BTreeMap::new();
        for n in 0..300 {
            let key = format!("https://github.com/org/app-{n}.git");
            assert_eq!(
                one.rank(&key),
                reversed.rank(&key),
                "order of the list must not matter"
            );
            assert_eq!(one.rank(&key).len(), 3);
            *firsts.entry(one.rank(&key)[0].to_string()).or_insert(0) += 1;
        }
        // Roughly a third each.
        assert_eq!(firsts.len(), 3, "{firsts:?}");
        assert!(
            firsts.values().all(|&n| (60..=140).contains(&n)),
            "{firsts:?}"
        );
    }

    #[test]
    fn removing_a_daemon_only_moves_its_own_keys() {
        let all = pool(&["tcp://a:1234", "tcp://b:1234", "tcp://c:1234"]);
        let without_c = pool(&["tcp://a:1234", "tcp://b:1234"]);
        for n in 0..200 {
            let key = format!("/work/project-{n}");
            let before = all.rank(&key);
            if before[0] != "tcp://c:1234" {
                assert_eq!(
                    without_c.rank(&key)[0],
                    before[0],
                    "{key} moved although its daemon stayed"
                );
            } else {
                assert_eq!(
                    without_c.rank(&key)[0],
                    before[1],
                    "{key} did not move to its second choice"
                );
            }
        }
    }

    #[test]
    fn down_daemons_are_tried_last() {
        let pool = pool(&["tcp://a:1234", "tcp://b:1234", "tcp://c:1234"]);
        let key = "https://github.com/org/app.git";
        let rank: Vec<String> = pool.rank(key);
        if let Some(member) = pool.member(&rank[0]) {
            member.mark_down("refused", Duration::from_secs(60));
        }
        assert_eq!(
            pool.candidates(key),
            [rank[1].as_str(), rank[2].as_str(), rank[0].as_str()]
        );
        if let Some(member) = pool.member(&rank[0]) {
            member.mark_down("refused", Duration::ZERO);
        }
        assert_eq!(
            pool.candidates(key),
            pool.rank(key),
            "after retry_after it is first again"
        );
    }

    #[test]
    fn bad_pools_are_refused() {
        assert!(matches!(
            BuilderPool::new(Vec::<String>::new(), TlsOptions::default()),
            Err(PoolError::Empty)
        ));
        let err = BuilderPool::new(["tcp://a:1", "bogus"], TlsOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus"), "{err}");
        let err = BuilderPool::new(["tcp://a:1", "tcp://a:1/"], TlsOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn routing_keys_ignore_the_ref_and_resolve_local_paths() {
        let remote = BuildOptions::remote("https://github.com/org/app.git#refs/heads/feature:svc");
        assert_eq!(routing_key(&remote), "https://github.com/org/app.git");
        let dir = std::env::temp_dir();
        let local = BuildOptions::local(&dir);
        let key = routing_key(&local);
        assert!(Path::new(&key).is_absolute(), "{key}");
    }

    /// A stand-in DNS: host → addresses, changed by the test.
    #[derive(Debug, Default)]
    struct FakeDns(Mutex<std::collections::BTreeMap<String, Vec<std::net::SocketAddr>>>);

    impl FakeDns {
        fn set(&self, host: &str, addresses: &[u8]) {
            let addresses = addresses
                .iter()
                .map(|n| std::net::SocketAddr::from(([10, 0, 0, *n], 1234)))
                .collect();
            self.0.lock().unwrap().insert(host.to_string(), addresses);
        }
        /// Ready replicas `indexes` of `pool.ci.svc` (replica i at 10.0.0.i).
        fn ready(&self, indexes: &[u8]) {
            for i in 0..8u8 {
                self.set(&format!("pool-{i}.pool.ci.svc"), &[i]);
            }
            self.set("pool.ci.svc", indexes);
        }
    }

    impl Resolver for FakeDns {
        fn resolve<'a>(
            &'a self,
            host: &'a str,
            _port: u16,
        ) -> futures::future::BoxFuture<'a, std::io::Result<Vec<std::net::SocketAddr>>> {
            let found = self.0.lock().unwrap().get(host).cloned();
            Box::pin(async move {
                found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "SERVFAIL"))
            })
        }
    }

    fn member(i: u8) -> String {
        format!("tcp://pool-{i}.pool.ci.svc:1234")
    }

    #[tokio::test]
    async fn discovered_members_come_and_go_and_keys_follow_their_member_name() {
        let dns = Arc::new(FakeDns::default());
        dns.ready(&[0, 1, 2]);
        let pool = BuilderPool::new(["dns+tcp://pool.ci.svc:1234"], TlsOptions::default())
            .unwrap()
            .resolver(dns.clone())
            .refresh_interval(Duration::ZERO);
        assert_eq!(pool.dns_addresses(), ["dns+tcp://pool.ci.svc:1234"]);
        assert!(
            pool.addresses().is_empty(),
            "nothing is resolved before use"
        );
        assert_eq!(pool.discover().await, [member(0), member(1), member(2)]);
        let keys: Vec<String> = (0..200).map(|n| format!("/work/project-{n}")).collect();
        let before: Vec<String> = keys.iter().map(|k| pool.rank(k)[0].clone()).collect();

        // Replica 1 stops being ready; replica 3 appears; replica 0 restarts with a new IP.
        pool.member(&member(0))
            .unwrap()
            .mark_down("x", Duration::from_secs(60));
        dns.ready(&[0, 2, 3]);
        dns.set("pool-0.pool.ci.svc", &[50]);
        dns.set("pool.ci.svc", &[50, 2, 3]);
        assert_eq!(pool.discover().await, [member(0), member(2), member(3)]);
        let replica0 = pool.member(&member(0)).unwrap();
        assert_eq!(
            replica0.lock().dial.as_ref().map(|d| d.0.clone()),
            Some("tcp://10.0.0.50:1234".to_string()),
            "a member is dialled where DNS says it is now"
        );
        assert!(
            replica0.is_down(Instant::now()),
            "a member keeps its state across lookups"
        );
        for (key, first) in keys.iter().zip(&before) {
            let now = pool.rank(key)[0].clone();
            if *first != member(1) && now != member(3) {
                assert_eq!(&now, first, "{key} moved although its member stayed");
            }
            assert_ne!(now, member(1), "{key} still routes to a member that left");
        }
        // Replica 1 comes back: only keys that now rank it first move, and they move to it.
        let without_1: Vec<String> = keys.iter().map(|k| pool.rank(k)[0].clone()).collect();
        dns.ready(&[0, 1, 2, 3]);
        pool.discover().await;
        let mut returned = 0;
        for ((key, first), previous) in keys.iter().zip(&before).zip(&without_1) {
            let now = pool.rank(key)[0].clone();
            if now == member(1) {
                returned += 1;
            } else {
                assert_eq!(
                    &now, previous,
                    "{key} moved to a member that did not change"
                );
            }
            if *first == member(1) && now != member(1) {
                assert_eq!(now, member(3), "{key} did not return to replica 1");
            }
        }
        assert!(returned > 20, "{returned} keys returned to replica 1");
    }

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_members_and_an_empty_one_is_reported() {
        let dns = Arc::new(FakeDns::default());
        dns.ready(&[0, 1]);
        let pool = BuilderPool::new(["dns+tcp://pool.ci.svc:1234"], TlsOptions::default())
            .unwrap()
            .resolver(dns.clone())
            .connect_timeout(Duration::from_millis(200))
            .refresh_interval(Duration::ZERO);
        assert_eq!(pool.discover().await.len(), 2);
        dns.0.lock().unwrap().remove("pool.ci.svc");
        assert_eq!(
            pool.discover().await.len(),
            2,
            "a failed lookup drops nobody"
        );
        dns.ready(&[]);
        // No ready replica: the members are gone and the error says so.
        let err = pool.client_for("k").await.unwrap_err().to_string();
        assert!(
            err.contains("dns+tcp://pool.ci.svc:1234: no ready member in DNS"),
            "{err}"
        );
    }
}
