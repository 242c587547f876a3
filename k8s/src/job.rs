//! The `Job` shape shared by the build Job ([`BuildJob`](crate::buildkit::BuildJob)) and the
//! runner Jobs ([`RunnerJob`](crate::runners::RunnerJob)): a name or a `generateName` prefix,
//! the bounds (TTL after finishing, deadline, retries), the labels on the Job and its pod, and a
//! pod that never restarts.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::common::{labels, metadata, validate_job_name};
use crate::error::K8sError;

/// Everything of a Job but its pod.
pub(crate) struct JobShape<'a> {
    /// The name, or with `generate_name` the prefix (with or without its trailing `-`).
    pub name: &'a str,
    pub generate_name: bool,
    pub namespace: Option<&'a str>,
    /// `app.kubernetes.io/component`.
    pub component: &'a str,
    /// The user's extra labels.
    pub labels: &'a BTreeMap<String, String>,
    pub ttl_seconds_after_finished: i32,
    pub active_deadline_seconds: i64,
    pub backoff_limit: i32,
}

impl JobShape<'_> {
    /// Checks the name (a Job name, or a `generateName` prefix).
    pub(crate) fn validate_name(&self) -> Result<(), K8sError> {
        validate_job_name("name", self.name, self.generate_name).map(drop)
    }

    /// Checks the bounds: TTL and retries ≥ 0, deadline > 0.
    pub(crate) fn validate_bounds(&self) -> Result<(), K8sError> {
        if self.ttl_seconds_after_finished < 0
            || self.active_deadline_seconds <= 0
            || self.backoff_limit < 0
        {
            return Err(K8sError::option(
                "timing",
                "TTL and backoff limit must be ≥ 0 and the deadline > 0",
            ));
        }
        Ok(())
    }

    /// The Job running `pod` (its `restartPolicy` becomes `Never`).
    pub(crate) fn job(&self, pod: PodSpec) -> Result<Job, K8sError> {
        // With generateName, the labels hold the prefix without its '-'.
        let name = validate_job_name("name", self.name, self.generate_name)?;
        let labels = labels(&name, self.component, self.labels);
        let mut meta = metadata(&name, self.namespace, labels.clone());
        if self.generate_name {
            meta.name = None;
            meta.generate_name = Some(format!("{name}-"));
        }
        Ok(Job {
            metadata: meta,
            spec: Some(JobSpec {
                backoff_limit: Some(self.backoff_limit),
                active_deadline_seconds: Some(self.active_deadline_seconds),
                ttl_seconds_after_finished: Some(self.ttl_seconds_after_finished),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        ..pod
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        })
    }
}
