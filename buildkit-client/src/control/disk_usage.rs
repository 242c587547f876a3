//! `Control.DiskUsage`: the build cache records a daemon keeps.

use std::time::SystemTime;

use cicd_agents_proto::moby::buildkit::v1::DiskUsageRequest;
use serde::Serialize;

use crate::control::{serialize_time, system_time};
use crate::error::{Error, Result};
use crate::Client;

/// One build cache record.
#[derive(Debug, Clone, Serialize)]
pub struct UsageRecord {
    /// Record ID.
    pub id: String,
    /// Whether it is a mutable (not yet committed) record.
    pub mutable: bool,
    /// Whether a build is using it now.
    pub in_use: bool,
    /// Size in bytes.
    pub size: i64,
    /// Parent records.
    pub parents: Vec<String>,
    /// When it was created.
    #[serde(serialize_with = "serialize_time")]
    pub created_at: Option<SystemTime>,
    /// When it was last used.
    #[serde(serialize_with = "serialize_time")]
    pub last_used_at: Option<SystemTime>,
    /// How often it was used.
    pub usage_count: i64,
    /// What it is (e.g. the step that made it).
    pub description: String,
    /// Its type (`regular`, `source.local`, `exec.cachemount`, …).
    pub record_type: String,
    /// Whether it is shared with other records.
    pub shared: bool,
}

impl From<cicd_agents_proto::moby::buildkit::v1::UsageRecord> for UsageRecord {
    fn from(record: cicd_agents_proto::moby::buildkit::v1::UsageRecord) -> Self {
        #[allow(deprecated)]
        let mut parents = record.parents;
        #[allow(deprecated)]
        if parents.is_empty() && !record.parent.is_empty() {
            parents.push(record.parent);
        }
        UsageRecord {
            id: record.id,
            mutable: record.mutable,
            in_use: record.in_use,
            size: record.size,
            parents,
            created_at: system_time(record.created_at.as_ref()),
            last_used_at: system_time(record.last_used_at.as_ref()),
            usage_count: record.usage_count,
            description: record.description,
            record_type: record.record_type,
            shared: record.shared,
        }
    }
}

/// Which records [`Client::disk_usage`] reports.
#[derive(Debug, Clone, Default)]
pub struct DiskUsageOptions {
    /// BuildKit filter expressions (`type==regular`, `id~=abc`).
    pub filters: Vec<String>,
}

impl Client {
    /// Lists the daemon's build cache records.
    pub async fn disk_usage(&self, options: &DiskUsageOptions) -> Result<Vec<UsageRecord>> {
        #[allow(clippy::needless_update)]
        let request = DiskUsageRequest {
            filter: options.filters.clone(),
            ..Default::default()
        };
        let response = self
            .call_read_only(|mut control| {
                let request = request.clone();
                async move { control.disk_usage(request).await }
            })
            .await
            .map_err(|status| Error::rpc("DiskUsage", self.address(), status))?
            .into_inner();
        Ok(response.record.into_iter().map(UsageRecord::from).collect())
    }
}
