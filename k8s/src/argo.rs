//! Argo Workflows: serde types for the subset of the `argoproj.io/v1alpha1` CRDs we emit
//! ([`WorkflowTemplate`]), and the build-and-update-chart template of the original design
//! ([`BuildAndUpdateChart`]).
//!
//! The template has the original parameters (`image-tag` = `latest`, `git-ref` =
//! `refs/heads/main`, `dockerfile` = `Dockerfile`), a `build` step (rootless BuildKit, the same
//! container as [`BuildJob`](super::buildkit::BuildJob)) and an `update-chart` step that runs
//! `cicd-agents chart set-image` instead of `sed`. Parameters reach both steps only as
//! environment variables (`value: "{{inputs.parameters.image-tag}}"`), never inside script text,
//! which is the command injection Argo's own `argo-dangerous-interpolation` policy blocks.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, PodSecurityContext, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use super::buildkit::{
    build_step_setters, check_build_target, BuildContainer, BuildEngine, BuildStepOptions,
};
use super::common::{
    empty_dir, env, env_from_secret, git_url_host, labels, metadata, mount,
    restricted_security_context, validate_dns_subdomain, validate_git_ref, validate_image,
    validate_plain, validate_repo_path, validate_tag, SecretKeyRef,
};
use super::error::K8sError;
use super::names::LabelValue;

/// The API version of Argo's CRDs.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// An Argo `WorkflowTemplate` (the subset of fields this crate emits; unknown fields are
/// ignored when reading).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplate {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `WorkflowTemplate`.
    pub kind: String,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// The workflow.
    pub spec: WorkflowSpec,
}

/// `spec` of a workflow or workflow template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// The template that runs first.
    pub entrypoint: String,
    /// Workflow parameters and their defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Service account of the workflow's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Pod security context for every pod of the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Whether pods get a service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Seconds the whole workflow may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// When finished workflows are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
    /// When finished pods are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "podGC")]
    pub pod_gc: Option<PodGc>,
    /// Volumes shared by the templates' pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Claims created for the workflow and deleted with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
    /// The templates.
    pub templates: Vec<Template>,
}

/// Parameters passed to a workflow, step or task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arguments {
    /// The parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
}

/// One parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// Its value (for arguments, or a workflow parameter's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A default for inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// What it means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where an output parameter's value comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// `valueFrom` of an output parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A file in the main container whose content is the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Outputs of a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    /// Output parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
}

impl Parameter {
    fn named(name: &str) -> Self {
        Parameter {
            name: name.into(),
            ..Parameter::default()
        }
    }

    fn with_value(name: &str, value: impl Into<String>) -> Self {
        Parameter {
            name: name.into(),
            value: Some(value.into()),
            ..Parameter::default()
        }
    }
}

/// Inputs of a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs {
    /// Input parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
}

/// `ttlStrategy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    /// Seconds after completion, whatever the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    /// Seconds after success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
    /// Seconds after failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
}

/// `podGC`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodGc {
    /// `OnPodCompletion`, `OnPodSuccess`, `OnWorkflowCompletion`, `OnWorkflowSuccess`.
    pub strategy: String,
}

/// Labels and annotations of a template's pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One template: a container, or steps or a DAG of other templates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Its name.
    pub name: String,
    /// Its inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    /// Its outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    /// Labels and annotations for the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// Pod security context of this template's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Whether the pod gets a service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Seconds this template may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<IntOrString>,
    /// Volumes of this template's pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// A container template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Steps: groups run one after another, the steps of a group in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Vec<WorkflowStep>>>,
    /// A DAG of tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag: Option<DagTemplate>,
}

/// One step of a `steps` template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    /// The step's name.
    pub name: String,
    /// The template it runs.
    pub template: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
}

/// A `dag` template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTemplate {
    /// The tasks.
    pub tasks: Vec<DagTask>,
}

/// One task of a DAG.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTask {
    /// The task's name.
    pub name: String,
    /// The template it runs.
    pub template: String,
    /// Tasks that must succeed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
}

/// The chart write-back the `update-chart` step performs with
/// `cicd-agents chart set-image --repo … --branch … --file … --key … --value=$(IMAGE_TAG)
/// --digest=$(IMAGE_DIGEST) --source-commit=$(SOURCE_COMMIT) --token-env GITHUB_TOKEN` (the
/// digest and the source commit are the build step's output parameters, for the commit
/// message's `{digest}` and `{source_commit}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartUpdate {
    /// The chart repository (HTTPS).
    pub repo: String,
    /// The branch Argo CD watches.
    pub branch: String,
    /// The values file inside the repository.
    pub file: String,
    /// The key path of the tag, e.g. `image.tag`.
    pub key: String,
    /// An image with the `cicd-agents` binary **and git** (the write-back runs `git`), run as
    /// UID 65532 with a read-only root: build it from `images/tool/Dockerfile`.
    pub tool_image: String,
}

/// The original design's pipeline as an Argo `WorkflowTemplate`: build with rootless
/// BuildKit, then write the new tag into the Helm chart.
///
/// ```
/// use cicd_agents_k8s::argo::{BuildAndUpdateChart, ChartUpdate};
///
/// let template = BuildAndUpdateChart::new(
///     "build-and-deploy",
///     "https://github.com/org/app.git",
///     "docker.io/org/app",
///     ChartUpdate {
///         repo: "https://github.com/org/charts.git".into(),
///         branch: "main".into(),
///         file: "charts/app/values.yaml".into(),
///         key: "image.tag".into(),
///         tool_image: "registry.example.com/cicd-agents:0.1.0".into(),
///     },
/// )
/// .cache_ref("local-registry:5000/app:buildcache")
/// .build()?;
/// let params: Vec<_> = template.spec.arguments.as_ref().unwrap().parameters.iter()
///     .map(|p| (p.name.as_str(), p.value.as_deref().unwrap_or_default()))
///     .collect();
/// assert_eq!(params, [("image-tag", "latest"), ("git-ref", "refs/heads/main"), ("dockerfile", "Dockerfile")]);
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BuildAndUpdateChart {
    name: String,
    step: BuildStepOptions,
    git_url: String,
    image: String,
    chart: ChartUpdate,
    default_tag: String,
    default_git_ref: String,
    default_dockerfile: String,
    github_token: SecretKeyRef,
    tool_uid: i64,
    active_deadline_seconds: i64,
    ttl_seconds_after_completion: i32,
}

/// Workflow parameter names.
const P_TAG: &str = "image-tag";
const P_REF: &str = "git-ref";
const P_DOCKERFILE: &str = "dockerfile";
/// The build step's output parameter: the pushed image's digest.
const P_DIGEST: &str = "digest";
/// Where the build step writes the digest.
const DIGEST_FILE: &str = "/tmp/image-digest";
/// The build step's output parameter: the source commit it built.
const P_SOURCE_COMMIT: &str = "source-commit";
/// Where the build step writes the source commit.
const SOURCE_COMMIT_FILE: &str = "/tmp/source-commit";

impl BuildAndUpdateChart {
    /// The template `name` building `git_url` into `image` (a repository without tag) and
    /// updating `chart`. Secrets: `regcred` (dockerconfigjson) and `github-token` (key
    /// `token`).
    pub fn new(
        name: impl Into<String>,
        git_url: impl Into<String>,
        image: impl Into<String>,
        chart: ChartUpdate,
    ) -> Self {
        BuildAndUpdateChart {
            name: name.into(),
            step: BuildStepOptions::default(),
            git_url: git_url.into(),
            image: image.into(),
            chart,
            default_tag: "latest".into(),
            default_git_ref: "refs/heads/main".into(),
            default_dockerfile: "Dockerfile".into(),
            github_token: SecretKeyRef::new("github-token", "token"),
            tool_uid: 65532,
            active_deadline_seconds: 3600,
            ttl_seconds_after_completion: 86400,
        }
    }

    build_step_setters!();

    /// Default of the `image-tag` parameter (default `latest`).
    pub fn default_tag(mut self, tag: impl Into<String>) -> Self {
        self.default_tag = tag.into();
        self
    }

    /// Default of the `git-ref` parameter (default `refs/heads/main`).
    pub fn default_git_ref(mut self, git_ref: impl Into<String>) -> Self {
        self.default_git_ref = git_ref.into();
        self
    }

    /// Default of the `dockerfile` parameter (default `Dockerfile`).
    pub fn default_dockerfile(mut self, path: impl Into<String>) -> Self {
        self.default_dockerfile = path.into();
        self
    }

    /// The Secret key holding the chart repository token (default `github-token`/`token`).
    pub fn github_token(mut self, secret: SecretKeyRef) -> Self {
        self.github_token = secret;
        self
    }

    /// The UID the `update-chart` container runs as (default 65532, non-root).
    pub fn tool_uid(mut self, uid: i64) -> Self {
        self.tool_uid = uid;
        self
    }

    /// Seconds the workflow may run (default 3600).
    pub fn active_deadline_seconds(mut self, seconds: i64) -> Self {
        self.active_deadline_seconds = seconds;
        self
    }

    /// Seconds a finished workflow is kept (default 86400).
    pub fn ttl_seconds_after_completion(mut self, seconds: i32) -> Self {
        self.ttl_seconds_after_completion = seconds;
        self
    }

    fn validate(&self) -> Result<(), K8sError> {
        validate_dns_subdomain("name", &self.name)?;
        // Argo refuses longer names, and the name is also a label value.
        LabelValue::parse(&self.name).map_err(|err| err.for_option("name"))?;
        self.step.validate()?;
        check_build_target(&self.git_url, &self.image)?;
        validate_tag("default tag", &self.default_tag)?;
        validate_git_ref("default git ref", &self.default_git_ref)?;
        validate_repo_path("default dockerfile", &self.default_dockerfile)?;
        self.github_token.validate("github token secret")?;
        git_url_host("chart repo", &self.chart.repo)?;
        validate_git_ref("chart branch", &self.chart.branch)?;
        // The step runs the write-back, which takes a branch by git's rules.
        cicd_agents_types::BranchName::new(self.chart.branch.as_str())
            .map_err(|err| K8sError::option("chart branch", err.to_string()))?;
        validate_repo_path("chart file", &self.chart.file)?;
        validate_plain("chart key", &self.chart.key)?;
        validate_image("tool image", &self.chart.tool_image)?;
        if self.tool_uid <= 0 {
            return Err(K8sError::option(
                "tool uid",
                "the update-chart container must not run as root",
            ));
        }
        Ok(())
    }

    /// Builds the WorkflowTemplate.
    pub fn build(&self) -> Result<WorkflowTemplate, K8sError> {
        self.validate()?;
        let input = |name: &str| format!("{{{{inputs.parameters.{name}}}}}");
        let workflow_param = |name: &str| format!("{{{{workflow.parameters.{name}}}}}");
        let labels = labels(&self.name, "pipeline", &self.step.labels);

        let kaniko = self.step.engine == BuildEngine::Kaniko;
        let build_pod = BuildContainer {
            name: "main",
            step: &self.step,
            git_url: &self.git_url,
            git_ref: &input(P_REF),
            dockerfile: &input(P_DOCKERFILE),
            image: &self.image,
            image_tag: &input(P_TAG),
            push: true,
            digest_file: Some(DIGEST_FILE),
            // Kaniko's image has neither shell nor git to resolve the commit.
            source_commit_file: (!kaniko).then_some(SOURCE_COMMIT_FILE),
        }
        .render()?;

        let build = Template {
            name: "build".into(),
            inputs: Some(Inputs {
                parameters: vec![
                    Parameter::named(P_TAG),
                    Parameter::named(P_REF),
                    Parameter::named(P_DOCKERFILE),
                ],
            }),
            outputs: Some(Outputs {
                parameters: [
                    (P_DIGEST, DIGEST_FILE),
                    (P_SOURCE_COMMIT, SOURCE_COMMIT_FILE),
                ]
                .iter()
                .filter(|(name, _)| !(kaniko && *name == P_SOURCE_COMMIT))
                .map(|(name, path)| Parameter {
                    name: (*name).into(),
                    value_from: Some(ValueFrom {
                        path: Some((*path).into()),
                    }),
                    ..Parameter::default()
                })
                .collect(),
            }),
            security_context: build_pod.security_context,
            volumes: build_pod.volumes,
            container: Some(build_pod.container),
            ..Template::default()
        };

        let chart = &self.chart;
        let mut update_args: Vec<String> = [
            "chart",
            "set-image",
            "--repo",
            &chart.repo,
            "--branch",
            &chart.branch,
            "--file",
            &chart.file,
            "--key",
            &chart.key,
            // Kubernetes substitutes the variable into this one argument (no shell runs);
            // joined to its flag, a tag starting with `-` cannot pass for a flag.
            "--value=$(IMAGE_TAG)",
            "--digest=$(IMAGE_DIGEST)",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        let mut update_env = vec![
            env("IMAGE_TAG", input(P_TAG)),
            env("IMAGE_DIGEST", input(P_DIGEST)),
        ];
        let mut update_inputs = vec![Parameter::named(P_TAG), Parameter::named(P_DIGEST)];
        let mut update_step_args = vec![
            Parameter::with_value(P_TAG, workflow_param(P_TAG)),
            // The digest the build step pushed (its output parameter).
            Parameter::with_value(
                P_DIGEST,
                format!("{{{{steps.build.outputs.parameters.{P_DIGEST}}}}}"),
            ),
        ];
        if !kaniko {
            // The source commit the build step resolved and built.
            update_args.push("--source-commit=$(SOURCE_COMMIT)".into());
            update_env.push(env("SOURCE_COMMIT", input(P_SOURCE_COMMIT)));
            update_inputs.push(Parameter::named(P_SOURCE_COMMIT));
            update_step_args.push(Parameter::with_value(
                P_SOURCE_COMMIT,
                format!("{{{{steps.build.outputs.parameters.{P_SOURCE_COMMIT}}}}}"),
            ));
        }
        update_args.extend(["--token-env".to_string(), "GITHUB_TOKEN".to_string()]);
        update_env.extend([
            env_from_secret("GITHUB_TOKEN", &self.github_token),
            env("HOME", "/tmp"),
            env("TMPDIR", "/tmp"),
        ]);
        let update_container = Container {
            name: "main".into(),
            image: Some(chart.tool_image.clone()),
            command: Some(vec!["cicd-agents".into()]),
            args: Some(update_args),
            env: Some(update_env),
            volume_mounts: Some(vec![mount("tmp", "/tmp", false)]),
            security_context: Some({
                let mut context = restricted_security_context(self.tool_uid, self.tool_uid);
                context.read_only_root_filesystem = Some(true);
                context
            }),
            ..Container::default()
        };
        let update_chart = Template {
            name: "update-chart".into(),
            inputs: Some(Inputs {
                parameters: update_inputs,
            }),
            volumes: vec![empty_dir("tmp")],
            container: Some(update_container),
            ..Template::default()
        };

        let main = Template {
            name: "main".into(),
            steps: Some(vec![
                vec![WorkflowStep {
                    name: "build".into(),
                    template: "build".into(),
                    arguments: Some(Arguments {
                        parameters: [P_TAG, P_REF, P_DOCKERFILE]
                            .iter()
                            .map(|name| Parameter::with_value(name, workflow_param(name)))
                            .collect(),
                    }),
                }],
                vec![WorkflowStep {
                    name: "update-chart".into(),
                    template: "update-chart".into(),
                    arguments: Some(Arguments {
                        parameters: update_step_args,
                    }),
                }],
            ]),
            ..Template::default()
        };

        let describe = |name: &str, value: &str, description: &str| Parameter {
            name: name.into(),
            value: Some(value.into()),
            description: Some(description.into()),
            ..Parameter::default()
        };
        Ok(WorkflowTemplate {
            api_version: API_VERSION.into(),
            kind: "WorkflowTemplate".into(),
            metadata: metadata(&self.name, self.step.namespace.as_deref(), labels),
            spec: WorkflowSpec {
                entrypoint: "main".into(),
                arguments: Some(Arguments {
                    parameters: vec![
                        describe(
                            P_TAG,
                            &self.default_tag,
                            "Tag of the image to build and deploy",
                        ),
                        describe(
                            P_REF,
                            &self.default_git_ref,
                            "Git branch or tag to build from",
                        ),
                        describe(
                            P_DOCKERFILE,
                            &self.default_dockerfile,
                            "Path of the Dockerfile in the repository",
                        ),
                    ],
                }),
                service_account_name: self.step.service_account.clone(),
                security_context: None,
                automount_service_account_token: None,
                active_deadline_seconds: Some(self.active_deadline_seconds),
                ttl_strategy: Some(TtlStrategy {
                    seconds_after_completion: Some(self.ttl_seconds_after_completion),
                    ..TtlStrategy::default()
                }),
                pod_gc: Some(PodGc {
                    strategy: "OnPodSuccess".into(),
                }),
                volumes: Vec::new(),
                volume_claim_templates: Vec::new(),
                templates: vec![main, build, update_chart],
            },
        })
    }
}
