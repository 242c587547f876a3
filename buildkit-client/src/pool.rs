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
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::address::Address;
use crate::build::{BuildContext, BuildOptions, BuildResult};
use crate::error::Error;
use crate::progress::ProgressSink;
use crate::{Client, TlsOptions};

/// How long a daemon's health check may take (default).
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to reach a daemon (default).
pub const DEFAULT_POOL_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a daemon that failed stays at the end of the ranking (default).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(15);

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
    down_until: Option<Instant>,
    last_error: Option<String>,
}

struct Member {
    address: String,
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
    members: Vec<Member>,
    tls: TlsOptions,
    health_timeout: Duration,
    connect_timeout: Duration,
    retry_after: Duration,
}

impl fmt::Debug for BuilderPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuilderPool")
            .field("addresses", &self.addresses())
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
        let mut members: Vec<Member> = Vec::new();
        for text in addresses {
            let address: Address = text.as_ref().parse().map_err(PoolError::Address)?;
            let address = address.to_string();
            if members.iter().any(|m| m.address == address) {
                return Err(PoolError::Address(Error::InvalidAddress {
                    address,
                    reason: "listed twice in the pool".into(),
                }));
            }
            members.push(Member {
                address,
                state: Mutex::new(MemberState::default()),
            });
        }
        if members.is_empty() {
            return Err(PoolError::Empty);
        }
        Ok(BuilderPool {
            members,
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

    /// The daemons' addresses, in the order given (normalized as [`Address`] prints them).
    pub fn addresses(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.address.as_str()).collect()
    }

    /// The daemons in the order `key` prefers them (rendezvous hashing), ignoring health.
    pub fn rank(&self, key: &str) -> Vec<&str> {
        self.ranked(key)
            .into_iter()
            .map(|m| m.address.as_str())
            .collect()
    }

    fn ranked(&self, key: &str) -> Vec<&Member> {
        let mut ranked: Vec<(u64, &Member)> = self
            .members
            .iter()
            .map(|m| (score(key, &m.address), m))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.address.cmp(&b.1.address)));
        ranked.into_iter().map(|(_, m)| m).collect()
    }

    /// The order in which daemons are tried for `key`: its ranking, with daemons recently
    /// marked down moved to the end (keeping their relative order).
    pub fn candidates(&self, key: &str) -> Vec<&str> {
        self.order(key)
            .into_iter()
            .map(|m| m.address.as_str())
            .collect()
    }

    fn order(&self, key: &str) -> Vec<&Member> {
        let now = Instant::now();
        let (down, up): (Vec<&Member>, Vec<&Member>) =
            self.ranked(key).into_iter().partition(|m| m.is_down(now));
        up.into_iter().chain(down).collect()
    }

    /// Connects (or reuses the connection) and checks health.
    async fn check(&self, member: &Member) -> Result<Client, Error> {
        let cached = member.lock().client.clone();
        let client = match cached {
            Some(client) => client,
            None => {
                Client::builder()
                    .address(member.address.clone())
                    .tls(self.tls.clone())
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
        for member in self.order(key) {
            if tried.iter().any(|t| t.address == member.address) {
                continue;
            }
            match self.check(member).await {
                Ok(client) => {
                    member.mark_up(&client);
                    if !tried.is_empty() {
                        tracing::info!(%key, address = %member.address, passed_over = %list(&tried), "failing over");
                    }
                    tracing::debug!(%key, address = %member.address, "routed");
                    return Ok((client, member.address.clone(), tried));
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
        Err(PoolError::Unavailable {
            key: key.to_string(),
            tried,
        })
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
        loop {
            // Daemons that fail their health check here are passed over too, and reported.
            let (client, address, passed_over) = self.client_after(key, tried).await?;
            tried = passed_over;
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
                    if let Some(member) = self.members.iter().find(|m| m.address == address) {
                        member.mark_down(&reason, self.retry_after);
                    }
                    tried.push(Attempt { address, reason });
                }
                Err(source) => {
                    // Cutting the connection mid-build can surface as a build error; if the
                    // daemon no longer answers, it was lost, and the build goes elsewhere.
                    let member = self.members.iter().find(|m| m.address == address);
                    let lost = match member {
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
        let checks = self.members.iter().map(|member| async move {
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
        let rank: Vec<String> = pool.rank(key).into_iter().map(String::from).collect();
        if let Some(member) = pool.members.iter().find(|m| m.address == rank[0]) {
            member.mark_down("refused", Duration::from_secs(60));
        }
        assert_eq!(
            pool.candidates(key),
            [rank[1].as_str(), rank[2].as_str(), rank[0].as_str()]
        );
        if let Some(member) = pool.members.iter().find(|m| m.address == rank[0]) {
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
}
