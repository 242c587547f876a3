//! Multi-document YAML output that `kubectl apply -f -` takes, and reading it back.
//!
//! YAML is only *emitted* here (and parsed back in tests and by `k8s run -f`); values files are
//! never round-tripped through a serializer.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use super::argo::WorkflowTemplate;
use super::error::K8sError;

/// One Kubernetes object this module generates.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Manifest {
    /// A `batch/v1` Job.
    Job(Job),
    /// An `apps/v1` Deployment.
    Deployment(Deployment),
    /// A `v1` Service.
    Service(Service),
    /// An `apps/v1` StatefulSet.
    StatefulSet(StatefulSet),
    /// An Argo `argoproj.io/v1alpha1` WorkflowTemplate.
    WorkflowTemplate(WorkflowTemplate),
}

impl Manifest {
    /// The object's kind, as in its `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Job(_) => "Job",
            Manifest::Deployment(_) => "Deployment",
            Manifest::Service(_) => "Service",
            Manifest::StatefulSet(_) => "StatefulSet",
            Manifest::WorkflowTemplate(_) => "WorkflowTemplate",
        }
    }

    /// The object's `metadata.name` (or `generateName`), empty if it has neither.
    pub fn name(&self) -> String {
        let meta = match self {
            Manifest::Job(job) => &job.metadata,
            Manifest::Deployment(deployment) => &deployment.metadata,
            Manifest::Service(service) => &service.metadata,
            Manifest::StatefulSet(set) => &set.metadata,
            Manifest::WorkflowTemplate(template) => &template.metadata,
        };
        meta.name
            .clone()
            .or_else(|| meta.generate_name.clone())
            .unwrap_or_default()
    }

    /// This object as one YAML document (no leading `---`). Every string that a YAML 1.1
    /// reader (kubectl) or a YAML 1.2 reader (the API server) could take for a boolean, null
    /// or number (`no`, `on`, `1e3`, `0o17`, …) is quoted.
    pub fn to_yaml(&self) -> Result<String, K8sError> {
        fn emit<T: Serialize>(manifest: &Manifest, value: &T) -> Result<String, K8sError> {
            yaml_serde::to_value(value)
                .map(|value| super::yaml::emit(&value))
                .map_err(|source| K8sError::Render {
                    kind: manifest.kind(),
                    name: manifest.name(),
                    source,
                })
        }
        match self {
            Manifest::Job(job) => emit(self, job),
            Manifest::Deployment(deployment) => emit(self, deployment),
            Manifest::Service(service) => emit(self, service),
            Manifest::StatefulSet(set) => emit(self, set),
            Manifest::WorkflowTemplate(template) => emit(self, template),
        }
    }
}

impl From<Job> for Manifest {
    fn from(job: Job) -> Self {
        Manifest::Job(job)
    }
}

impl From<Deployment> for Manifest {
    fn from(deployment: Deployment) -> Self {
        Manifest::Deployment(deployment)
    }
}

impl From<Service> for Manifest {
    fn from(service: Service) -> Self {
        Manifest::Service(service)
    }
}

impl From<StatefulSet> for Manifest {
    fn from(set: StatefulSet) -> Self {
        Manifest::StatefulSet(set)
    }
}

impl From<WorkflowTemplate> for Manifest {
    fn from(template: WorkflowTemplate) -> Self {
        Manifest::WorkflowTemplate(template)
    }
}

/// Renders manifests as a multi-document YAML stream, each document starting with `---`, ready
/// for `kubectl apply -f -`.
///
/// ```
/// use cicd_agents_k8s::{buildkit::BuildJob, render_yaml};
///
/// let job = BuildJob::new("build-app", "https://github.com/org/app.git", "registry.example.com/org/app")
///     .tag("1.4.2")
///     .build()?;
/// let yaml = render_yaml(&[job.into()])?;
/// assert!(yaml.starts_with("---\napiVersion: batch/v1\nkind: Job\n"));
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
pub fn render_yaml(manifests: &[Manifest]) -> Result<String, K8sError> {
    let mut out = String::new();
    for manifest in manifests {
        out.push_str("---\n");
        out.push_str(&manifest.to_yaml()?);
    }
    Ok(out)
}

/// Reads a multi-document YAML stream back into manifests, choosing the type by each
/// document's `apiVersion` and `kind`. Empty documents are skipped.
pub fn parse_yaml(text: &str) -> Result<Vec<Manifest>, K8sError> {
    use serde::Deserialize;

    let mut manifests = Vec::new();
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let index = index + 1;
        let value = serde_json::Value::deserialize(document).map_err(|err| K8sError::Parse {
            index,
            reason: err.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let kind = value
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let typed = |err: serde_json::Error| K8sError::Parse {
            index,
            reason: format!("{api_version} {kind}: {err}"),
        };
        let manifest = match (api_version.as_str(), kind.as_str()) {
            ("batch/v1", "Job") => Manifest::Job(serde_json::from_value(value).map_err(typed)?),
            ("apps/v1", "Deployment") => Manifest::Deployment(serde_json::from_value(value).map_err(typed)?),
            ("v1", "Service") => Manifest::Service(serde_json::from_value(value).map_err(typed)?),
            ("apps/v1", "StatefulSet") => Manifest::StatefulSet(serde_json::from_value(value).map_err(typed)?),
            (super::argo::API_VERSION, "WorkflowTemplate") => {
                Manifest::WorkflowTemplate(serde_json::from_value(value).map_err(typed)?)
            }
            _ => {
                return Err(K8sError::Parse {
                    index,
                    reason: format!(
                        "unsupported object {api_version:?} {kind:?} (supported: batch/v1 Job, apps/v1 Deployment, apps/v1 StatefulSet, v1 Service, {} WorkflowTemplate)",
                        super::argo::API_VERSION
                    ),
                })
            }
        };
        manifests.push(manifest);
    }
    Ok(manifests)
}
