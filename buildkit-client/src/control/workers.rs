//! `Control.ListWorkers`: the workers a daemon builds on.

use std::collections::BTreeMap;

use cicd_agents_proto::moby::buildkit::v1::ListWorkersRequest;
use serde::Serialize;

use crate::control::info::BuildkitVersion;
use crate::error::{Error, Result};
use crate::Client;

/// One worker.
#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    /// The worker's ID.
    pub id: String,
    /// Platforms it builds for, as `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// Its labels (executor, snapshotter, hostname, …).
    pub labels: BTreeMap<String, String>,
    /// Its garbage-collection rules.
    pub gc_policies: Vec<GcPolicy>,
    /// The BuildKit version the worker reports (v0.11+).
    pub buildkit_version: Option<BuildkitVersion>,
}

/// One garbage-collection rule.
#[derive(Debug, Clone, Serialize)]
pub struct GcPolicy {
    /// Applies to all records, not only unused ones.
    pub all: bool,
    /// Keep records used within this many seconds.
    pub keep_duration_seconds: i64,
    /// Bytes kept (`keepBytes`, now `reservedSpace`).
    pub reserved_space: i64,
    /// Upper bound of space used.
    pub max_used_space: i64,
    /// Space left free on the disk.
    pub min_free_space: i64,
    /// Filters.
    pub filters: Vec<String>,
}

/// Formats a platform the way `buildctl` prints it.
pub(crate) fn platform_string(platform: &cicd_agents_proto::pb::Platform) -> String {
    let mut text = format!("{}/{}", platform.os, platform.architecture);
    if !platform.variant.is_empty() {
        text.push('/');
        text.push_str(&platform.variant);
    }
    text
}

impl Client {
    /// Lists the daemon's workers.
    pub async fn list_workers(&self) -> Result<Vec<Worker>> {
        let response = self
            .call_read_only(|mut control| async move {
                control
                    .list_workers(ListWorkersRequest { filter: Vec::new() })
                    .await
            })
            .await
            .map_err(|status| Error::rpc("ListWorkers", self.address(), status))?
            .into_inner();
        Ok(response
            .record
            .into_iter()
            .map(|record| Worker {
                id: record.id,
                platforms: distinct(record.platforms.iter().map(platform_string)),
                labels: record.labels.into_iter().collect(),
                gc_policies: record
                    .gc_policy
                    .into_iter()
                    .map(|policy| GcPolicy {
                        all: policy.all,
                        keep_duration_seconds: policy.keep_duration / 1_000_000_000,
                        reserved_space: policy.reserved_space,
                        max_used_space: policy.max_used_space,
                        min_free_space: policy.min_free_space,
                        filters: policy.filters,
                    })
                    .collect(),
                buildkit_version: record.buildkit_version.map(BuildkitVersion::from),
            })
            .collect())
    }
}

/// The platforms in the order reported, each once (a daemon lists e.g.
/// `linux/amd64` once per emulated variant it maps to it).
fn distinct(platforms: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = Vec::new();
    for platform in platforms {
        if !seen.contains(&platform) {
            seen.push(platform);
        }
    }
    seen
}

#[cfg(test)]
mod distinct_tests {
    use super::distinct;

    #[test]
    fn platforms_are_listed_once_in_the_order_reported() {
        let reported = ["linux/amd64", "linux/386", "linux/amd64", "linux/386"];
        assert_eq!(
            distinct(reported.iter().map(|p| p.to_string())),
            vec!["linux/amd64".to_string(), "linux/386".to_string()]
        );
    }
}
