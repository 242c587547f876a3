//! `Control.Info`: which BuildKit the daemon is.
//!
//! Daemons older than v0.11 answer `Unimplemented`; the version is then taken
//! from the worker records if they carry one. A Docker daemon built by a
//! distribution may report the unstamped `v0.0.0+unknown`; for `docker://`
//! addresses the version is then inferred from the Docker Engine's own version,
//! as buildx does.

use cicd_agents_proto::moby::buildkit::v1::{InfoRequest, ListWorkersRequest};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::Client;

/// A BuildKit build's version stamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildkitVersion {
    /// The Go package, e.g. `github.com/moby/buildkit`.
    pub package: String,
    /// The release, e.g. `v0.13.2`.
    pub version: String,
    /// The source revision.
    pub revision: String,
}

impl From<cicd_agents_proto::moby::buildkit::v1::types::BuildkitVersion> for BuildkitVersion {
    fn from(v: cicd_agents_proto::moby::buildkit::v1::types::BuildkitVersion) -> Self {
        BuildkitVersion {
            package: v.package,
            version: v.version,
            revision: v.revision,
        }
    }
}

/// Where [`DaemonInfo::version`] comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    /// The daemon's `Info` answer.
    Info,
    /// A worker record (daemons older than v0.11 have no `Info`).
    Worker,
    /// Inferred from the Docker Engine version that embeds it.
    DockerEngine,
    /// Not known.
    Unknown,
}

/// What [`Client::info`] returns.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonInfo {
    /// The daemon's address.
    pub address: String,
    /// The version users should read, e.g. `v0.13.2` or `v0.13.x`.
    pub version: String,
    /// Where [`version`](Self::version) comes from.
    pub version_source: VersionSource,
    /// The version stamp exactly as the daemon reported it, if it did.
    pub reported: Option<BuildkitVersion>,
    /// For `docker://`: the Docker Engine version.
    pub docker_engine: Option<String>,
    /// For `docker://`: the image store's driver type as `docker info` reports
    /// it (`io.containerd.snapshotter.v1` for the containerd image store, empty
    /// for the classic store), if known. Decided as buildx does, from the
    /// embedded BuildKit's workers: only the containerd store's carry a
    /// snapshotter label.
    pub docker_image_store: Option<String>,
}

impl DaemonInfo {
    /// What is known of the daemon at `address` without asking it: nothing.
    pub(crate) fn not_asked(address: String) -> Self {
        DaemonInfo {
            address,
            version: "unknown".to_string(),
            version_source: VersionSource::Unknown,
            reported: None,
            docker_engine: None,
            docker_image_store: None,
        }
    }

    /// The version with a note on where it comes from when it is not the daemon's own word.
    pub fn version_display(&self) -> String {
        match (&self.version_source, &self.docker_engine, &self.reported) {
            (VersionSource::DockerEngine, Some(engine), Some(reported)) => format!(
                "{} (embedded in Docker Engine {engine}, which reports {:?})",
                self.version, reported.version
            ),
            (VersionSource::DockerEngine, Some(engine), None) => {
                format!("{} (embedded in Docker Engine {engine})", self.version)
            }
            _ => self.version.clone(),
        }
    }

    /// `(major, minor)` of the version, when known.
    pub fn minor_version(&self) -> Option<(u64, u64)> {
        parse_minor(&self.version)
    }

    /// Whether builds on this daemon can carry attestations (provenance, SBOM):
    /// BuildKit 0.11 or newer and, behind a Docker daemon, the containerd image
    /// store (the classic store cannot hold them). Unknown means yes, as buildx
    /// would find out from the daemon.
    pub fn supports_attestations(&self) -> bool {
        let image_store_ok = match &self.docker_image_store {
            Some(driver) => driver.contains("containerd.snapshotter"),
            None => true,
        };
        self.at_least(0, 11) && image_store_ok
    }

    /// Whether the daemon is at least `major.minor`. Unknown versions are
    /// assumed current.
    pub fn at_least(&self, major: u64, minor: u64) -> bool {
        self.minor_version()
            .map(|v| v >= (major, minor))
            .unwrap_or(true)
    }
}

fn parse_minor(version: &str) -> Option<(u64, u64)> {
    let text = version.trim().trim_start_matches('v');
    let mut parts = text.split(['.', '+', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn is_unstamped(version: &str) -> bool {
    version.is_empty() || parse_minor(version) == Some((0, 0))
}

/// The BuildKit release line a Docker Engine release embeds (the engine's
/// vendored BuildKit; buildx keeps a table like this for older engines).
pub fn buildkit_for_docker_engine(engine: &str) -> Option<&'static str> {
    let (major, minor) = parse_minor(engine)?;
    Some(match (major, minor) {
        (20, 10) => "v0.8.x",
        (22, 6) => "v0.10.x",
        (23, _) => "v0.10.x",
        (24, _) => "v0.11.x",
        (25, _) => "v0.12.x",
        (26, _) => "v0.13.x",
        (27, 0) | (27, 1) => "v0.14.x",
        (27, 2) => "v0.15.x",
        (27, _) => "v0.16.x",
        (28, 0) => "v0.20.x",
        (28, 1) => "v0.21.x",
        (28, 2) => "v0.22.x",
        (28, _) => "v0.23.x",
        _ => return None,
    })
}

/// The engine version in a Docker API `Server` header (`Docker/26.1.5+dfsg1 (linux)`).
fn engine_from_server_header(server: &str) -> Option<String> {
    let version = server
        .strip_prefix("Docker/")?
        .split(char::is_whitespace)
        .next()?;
    (!version.is_empty()).then(|| version.to_string())
}

/// The worker label BuildKit sets for a containerd snapshotter; a Docker
/// daemon's embedded BuildKit has it only with the containerd image store.
const SNAPSHOTTER_LABEL: &str = "org.mobyproject.buildkit.worker.snapshotter";

/// `driver-type` of `docker info` with the containerd image store.
const CONTAINERD_IMAGE_STORE: &str = "io.containerd.snapshotter.v1";

/// The image store of a Docker daemon whose embedded BuildKit has `workers`:
/// the containerd store when a worker has a snapshotter label (as buildx
/// decides), else the classic store (`Some("")`, as `docker info` has no
/// `driver-type` then); unknown without workers.
fn image_store_of(
    workers: &[cicd_agents_proto::moby::buildkit::v1::types::WorkerRecord],
) -> Option<String> {
    if workers.is_empty() {
        return None;
    }
    let containerd = workers
        .iter()
        .any(|worker| worker.labels.contains_key(SNAPSHOTTER_LABEL));
    Some(if containerd {
        CONTAINERD_IMAGE_STORE.to_string()
    } else {
        String::new()
    })
}

impl Client {
    /// Asks the daemon which BuildKit it is.
    ///
    /// Behind a Docker daemon the questions go out together (BuildKit's
    /// `Info` and `ListWorkers`, the Engine's version from `GET /_ping`): one
    /// round trip's wait instead of three, and no `GET /info`, which makes the
    /// Docker daemon gather everything `docker info` shows (tens of
    /// milliseconds of its CPU on every build).
    pub async fn info(&self) -> Result<DaemonInfo> {
        let address = self.address().to_string();
        let docker = self.address().is_docker();
        let info_call =
            self.call_read_only(|mut control| async move { control.info(InfoRequest {}).await });
        let workers_call = async {
            if !docker {
                return None;
            }
            Some(
                self.call_read_only(|mut control| async move {
                    control
                        .list_workers(ListWorkersRequest { filter: Vec::new() })
                        .await
                })
                .await,
            )
        };
        let engine_call = async {
            if docker {
                self.docker_engine_version().await
            } else {
                None
            }
        };
        let (info_answer, workers_answer, docker_engine) =
            tokio::join!(info_call, workers_call, engine_call);
        let mut docker_workers = None;
        let mut docker_image_store = None;
        if let Some(answer) = workers_answer {
            match answer {
                Ok(response) => {
                    let workers = response.into_inner().record;
                    docker_image_store = image_store_of(&workers);
                    docker_workers = Some(workers);
                }
                Err(status) => {
                    tracing::debug!(%status, "cannot list the Docker daemon's BuildKit workers");
                }
            }
        }
        let reported = match info_answer {
            Ok(response) => response
                .into_inner()
                .buildkit_version
                .map(BuildkitVersion::from),
            Err(status) if status.code() == tonic::Code::Unimplemented => None,
            Err(status) => return Err(Error::rpc("Info", &address, status)),
        };
        let (mut version, mut source) = match &reported {
            Some(v) if !is_unstamped(&v.version) => (v.version.clone(), VersionSource::Info),
            _ => (String::new(), VersionSource::Unknown),
        };
        if source == VersionSource::Unknown && reported.is_none() {
            let workers = match docker_workers {
                Some(workers) => workers,
                None => {
                    self.call_read_only(|mut control| async move {
                        control
                            .list_workers(ListWorkersRequest { filter: Vec::new() })
                            .await
                    })
                    .await
                    .map_err(|status| Error::rpc("ListWorkers", &address, status))?
                    .into_inner()
                    .record
                }
            };
            if let Some(found) = workers
                .iter()
                .filter_map(|worker| worker.buildkit_version.as_ref())
                .find(|v| !is_unstamped(&v.version))
            {
                version = found.version.clone();
                source = VersionSource::Worker;
            }
        }
        if source == VersionSource::Unknown {
            if let Some(line) = docker_engine
                .as_deref()
                .and_then(buildkit_for_docker_engine)
            {
                version = line.to_string();
                source = VersionSource::DockerEngine;
            }
        }
        if version.is_empty() {
            version = match &reported {
                Some(v) if !v.version.is_empty() => v.version.clone(),
                Some(_) => "unknown".to_string(),
                None => "older than v0.11 (no Info call)".to_string(),
            };
        }
        Ok(DaemonInfo {
            address,
            version,
            version_source: source,
            reported,
            docker_engine,
            docker_image_store,
        })
    }

    /// The Docker Engine's version: from the `Server` header of `GET /_ping`
    /// (`Docker/26.1.5 (linux)`), else from `GET /version`, which costs the
    /// daemon more (it runs `runc --version` and `docker-init --version` to
    /// answer it: ~7 ms against under 1 ms for the ping, on the test daemon).
    async fn docker_engine_version(&self) -> Option<String> {
        match self.transport.docker_get("/_ping").await {
            Ok(ping) => {
                if let Some(version) = ping.header("Server").and_then(engine_from_server_header) {
                    return Some(version);
                }
            }
            Err(err) => tracing::debug!(%err, "cannot ping the Docker daemon"),
        }
        let answer = match self.transport.docker_get("/version").await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::debug!(%err, "cannot read the Docker Engine version");
                return None;
            }
        };
        let value: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
        value.get("Version")?.as_str().map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_store_follows_the_snapshotter_label() {
        use cicd_agents_proto::moby::buildkit::v1::types::WorkerRecord;
        let worker = |labels: &[(&str, &str)]| WorkerRecord {
            id: "w".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        assert_eq!(image_store_of(&[]), None);
        let classic = worker(&[("org.mobyproject.buildkit.worker.executor", "containerd")]);
        assert_eq!(image_store_of(&[classic]).as_deref(), Some(""));
        let containerd = worker(&[(SNAPSHOTTER_LABEL, "overlayfs")]);
        assert_eq!(
            image_store_of(&[containerd]).as_deref(),
            Some("io.containerd.snapshotter.v1")
        );
    }

    #[test]
    fn the_engine_version_is_read_from_the_server_header() {
        assert_eq!(
            engine_from_server_header("Docker/26.1.5+dfsg1 (linux)").as_deref(),
            Some("26.1.5+dfsg1")
        );
        assert_eq!(
            engine_from_server_header("Docker/27.0.1").as_deref(),
            Some("27.0.1")
        );
        assert_eq!(engine_from_server_header("nginx/1.25"), None);
        assert_eq!(engine_from_server_header("Docker/ (linux)"), None);
    }

    #[test]
    fn engine_table() {
        assert_eq!(buildkit_for_docker_engine("26.1.5+dfsg1"), Some("v0.13.x"));
        assert_eq!(buildkit_for_docker_engine("24.0.7"), Some("v0.11.x"));
        assert_eq!(buildkit_for_docker_engine("nonsense"), None);
    }

    #[test]
    fn unstamped_versions() {
        assert!(is_unstamped("v0.0.0+unknown"));
        assert!(is_unstamped(""));
        assert!(!is_unstamped("v0.13.2"));
        assert_eq!(parse_minor("v0.26.1"), Some((0, 26)));
    }
}
