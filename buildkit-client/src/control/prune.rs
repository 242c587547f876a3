//! `Control.Prune`: freeing build cache, streaming each record as it goes.

use std::time::Duration;

use cicd_agents_proto::moby::buildkit::v1::PruneRequest;
use futures::{Stream, StreamExt};

use crate::control::disk_usage::UsageRecord;
use crate::error::{Error, Result};
use crate::Client;

/// What [`Client::prune`] frees.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Also prune records that internal references still point to (`--all`).
    pub all: bool,
    /// Keep records used within this duration (`--keep-duration`).
    pub keep_duration: Option<Duration>,
    /// Keep this many bytes (`--keep-storage`, `keepBytes`/`reservedSpace`).
    pub keep_bytes: Option<i64>,
    /// Prune until at most this many bytes are used.
    pub max_used_space: Option<i64>,
    /// Prune until at least this many bytes are free.
    pub min_free_space: Option<i64>,
    /// BuildKit filter expressions.
    pub filters: Vec<String>,
}

impl PruneOptions {
    /// Prunes everything, including records still referenced internally.
    pub fn all(mut self, all: bool) -> Self {
        self.all = all;
        self
    }

    /// Keeps records used within `duration`.
    pub fn keep_duration(mut self, duration: Duration) -> Self {
        self.keep_duration = Some(duration);
        self
    }

    /// Keeps `bytes` of cache.
    pub fn keep_bytes(mut self, bytes: i64) -> Self {
        self.keep_bytes = Some(bytes);
        self
    }

    /// Adds a filter expression.
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filters.push(filter.into());
        self
    }
}

impl Client {
    /// Prunes the build cache; the stream yields each record as it is freed.
    pub async fn prune(
        &self,
        options: &PruneOptions,
    ) -> Result<impl Stream<Item = Result<UsageRecord>> + Send + 'static> {
        let request = PruneRequest {
            filter: options.filters.clone(),
            all: options.all,
            keep_duration: options
                .keep_duration
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            reserved_space: options.keep_bytes.unwrap_or(0),
            max_used_space: options.max_used_space.unwrap_or(0),
            min_free_space: options.min_free_space.unwrap_or(0),
        };
        let address = self.address().to_string();
        let stream = self
            .control()
            .prune(request)
            .await
            .map_err(|status| Error::rpc("Prune", &address, status))?
            .into_inner();
        Ok(stream.map(move |item| {
            item.map(UsageRecord::from)
                .map_err(|status| Error::rpc("Prune", &address, status))
        }))
    }

    /// Prunes and returns everything freed.
    pub async fn prune_all(&self, options: &PruneOptions) -> Result<Vec<UsageRecord>> {
        let stream = self.prune(options).await?;
        futures::pin_mut!(stream);
        let mut freed = Vec::new();
        while let Some(record) = stream.next().await {
            freed.push(record?);
        }
        Ok(freed)
    }
}
