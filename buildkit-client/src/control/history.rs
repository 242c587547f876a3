//! `Control.ListenBuildHistory` with `ActiveOnly`: the builds a daemon is
//! running right now (what `docker buildx history ls` shows as running).

use std::collections::BTreeMap;
use std::time::SystemTime;

use cicd_agents_proto::moby::buildkit::v1::BuildHistoryRequest;
use serde::Serialize;

use crate::control::system_time;
use crate::error::{Error, Result};
use crate::Client;

/// A build the daemon is running.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveBuild {
    /// The build's ref (the ID progress and history use).
    pub build_ref: String,
    /// The frontend, e.g. `dockerfile.v0`.
    pub frontend: String,
    /// The frontend's attributes: build arguments, labels (`label:NAME`), target, …
    pub frontend_attrs: BTreeMap<String, String>,
    /// When it started.
    #[serde(serialize_with = "crate::control::serialize_time")]
    pub created_at: Option<SystemTime>,
}

impl Client {
    /// The builds the daemon is running right now, by anyone (every client
    /// of the daemon, not only this one).
    pub async fn active_builds(&self) -> Result<Vec<ActiveBuild>> {
        let request = BuildHistoryRequest {
            active_only: true,
            early_exit: true,
            ..Default::default()
        };
        let mut stream = self
            .call_read_only(|mut control| {
                let request = request.clone();
                async move { control.listen_build_history(request).await }
            })
            .await
            .map_err(|status| Error::rpc("ListenBuildHistory", self.address(), status))?
            .into_inner();
        let mut builds = Vec::new();
        while let Some(event) = stream
            .message()
            .await
            .map_err(|status| Error::rpc("ListenBuildHistory", self.address(), status))?
        {
            let Some(record) = event.record else { continue };
            // A snapshot lists running builds as STARTED events.
            if record.completed_at.is_some() {
                continue;
            }
            builds.push(ActiveBuild {
                created_at: system_time(record.created_at.as_ref()),
                build_ref: record.r#ref,
                frontend: record.frontend,
                frontend_attrs: record.frontend_attrs.into_iter().collect(),
            });
        }
        Ok(builds)
    }
}
