//! A long-running rootless `buildkitd`: [`Deployment`] + [`Service`] ([`BuildkitDaemon`]).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, ResourceRequirements, Service, ServicePort,
    ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{DOCKER_CONFIG_VOLUME, STATE_VOLUME};
use crate::common::{
    builder_security_context, docker_config_volume, empty_dir, env, exec_probe, labels, metadata,
    mount, pod_security_context, secret_volume, validate_dns1035_label, validate_dns_label,
    validate_dns_subdomain, validate_image, validate_labels, BuilderSecurity,
    BUILDKIT_DOCKER_CONFIG_DIR, BUILDKIT_STATE_DIR, BUILDKIT_UID, DEFAULT_BUILDKIT_IMAGE,
    NO_PROCESS_SANDBOX,
};
use crate::error::K8sError;

/// A long-running rootless `buildkitd`: a [`Deployment`] listening on the pod-local unix
/// socket and on TCP with mutual TLS (certificates from a Secret with `ca.pem`, `cert.pem`,
/// `key.pem`, as upstream's `create-certs.sh` makes them), probed with
/// `buildctl debug workers`, and a [`Service`] in front of it. Clients connect with
/// `tcp://<name>.<namespace>.svc:1234` and their own client certificate.
///
/// ```
/// use cicd_agents_k8s::buildkit::BuildkitDaemon;
///
/// let daemon = BuildkitDaemon::new("buildkitd").namespace("ci").replicas(2);
/// let manifests = daemon.manifests()?;
/// assert_eq!(manifests.len(), 2);
/// assert_eq!(daemon.address(), "tcp://buildkitd.ci.svc:1234");
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BuildkitDaemon {
    pub(super) name: String,
    pub(super) namespace: Option<String>,
    pub(super) replicas: i32,
    image: String,
    pub(super) port: i32,
    tls_secret: String,
    registry_secret: Option<String>,
    security: BuilderSecurity,
    resources: Option<ResourceRequirements>,
    pub(super) labels: BTreeMap<String, String>,
}

impl BuildkitDaemon {
    /// One replica named `name`, TLS material from the Secret `buildkit-daemon-certs`, port 1234.
    pub fn new(name: impl Into<String>) -> Self {
        BuildkitDaemon {
            name: name.into(),
            namespace: None,
            replicas: 1,
            image: DEFAULT_BUILDKIT_IMAGE.into(),
            port: 1234,
            tls_secret: "buildkit-daemon-certs".into(),
            registry_secret: None,
            security: BuilderSecurity::default(),
            resources: None,
            labels: BTreeMap::new(),
        }
    }

    /// The namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// How many daemons (default 1). Each keeps its own cache: for sticky routing over several,
    /// give each its own address (see the builder pool in `cicd-agents-buildkit`).
    pub fn replicas(mut self, replicas: i32) -> Self {
        self.replicas = replicas;
        self
    }

    /// The rootless BuildKit image.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = image.into();
        self
    }

    /// The TCP port (default 1234).
    pub fn port(mut self, port: i32) -> Self {
        self.port = port;
        self
    }

    /// The Secret with `ca.pem`, `cert.pem` and `key.pem` (default `buildkit-daemon-certs`).
    pub fn tls_secret(mut self, secret: impl Into<String>) -> Self {
        self.tls_secret = secret.into();
        self
    }

    /// Registry credentials the daemon itself uses (for cache export and pulls of private base
    /// images); clients normally send theirs through the build session.
    pub fn registry_secret(mut self, secret: Option<String>) -> Self {
        self.registry_secret = secret;
        self
    }

    /// What the daemon container may do (see [`BuilderSecurity`]).
    pub fn security(mut self, security: BuilderSecurity) -> Self {
        self.security = security;
        self
    }

    /// Add `CAP_SYS_ADMIN` (off by default).
    pub fn sys_admin(mut self, sys_admin: bool) -> Self {
        self.security.sys_admin = sys_admin;
        self
    }

    /// CPU and memory requests and limits.
    pub fn resources(mut self, resources: ResourceRequirements) -> Self {
        self.resources = Some(resources);
        self
    }

    /// An extra label on every object.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The address clients use inside the cluster.
    pub fn address(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("tcp://{}.{namespace}.svc:{}", self.name, self.port),
            None => format!("tcp://{}:{}", self.name, self.port),
        }
    }

    pub(super) fn validate(&self) -> Result<(), K8sError> {
        // The Service has the same name: a DNS-1035 label.
        validate_dns1035_label("name", &self.name)?;
        validate_labels(&self.labels)?;
        if let Some(namespace) = &self.namespace {
            validate_dns_label("namespace", namespace)?;
        }
        if !(1..=1000).contains(&self.replicas) {
            return Err(K8sError::option(
                "replicas",
                format!("{} is not between 1 and 1000", self.replicas),
            ));
        }
        if !(1..=65535).contains(&self.port) {
            return Err(K8sError::option(
                "port",
                format!("{} is not a port number", self.port),
            ));
        }
        validate_image("image", &self.image)?;
        validate_dns_subdomain("tls secret", &self.tls_secret)?;
        if let Some(secret) = &self.registry_secret {
            validate_dns_subdomain("registry secret", secret)?;
        }
        Ok(())
    }

    pub(super) fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), self.name.clone()),
            (
                "app.kubernetes.io/component".to_string(),
                "buildkitd".to_string(),
            ),
        ])
    }

    /// The buildkitd pod, shared by the Deployment and the pool's StatefulSet: the daemon on
    /// the pod-local unix socket and on TCP with mutual TLS, probed with `buildctl debug
    /// workers`. With `state_claim`, the state directory comes from the StatefulSet's volume
    /// claim template of that name (a cache that survives restarts); otherwise from an
    /// `emptyDir`.
    pub(super) fn pod_template(
        &self,
        labels: BTreeMap<String, String>,
        state_claim: bool,
    ) -> PodTemplateSpec {
        let probe_command = ["buildctl", "debug", "workers"];
        let mut env_vars = vec![];
        let mut mounts = vec![
            mount(STATE_VOLUME, BUILDKIT_STATE_DIR, false),
            mount("certs", "/certs", true),
        ];
        let mut volumes = Vec::new();
        if !state_claim {
            volumes.push(empty_dir(STATE_VOLUME));
        }
        volumes.push(secret_volume("certs", &self.tls_secret));
        if let Some(secret) = &self.registry_secret {
            env_vars.push(env("DOCKER_CONFIG", BUILDKIT_DOCKER_CONFIG_DIR));
            mounts.push(mount(
                DOCKER_CONFIG_VOLUME,
                BUILDKIT_DOCKER_CONFIG_DIR,
                true,
            ));
            volumes.push(docker_config_volume(DOCKER_CONFIG_VOLUME, secret));
        }
        let container = Container {
            name: "buildkitd".into(),
            image: Some(self.image.clone()),
            args: Some(vec![
                "--addr".into(),
                format!("unix:///run/user/{BUILDKIT_UID}/buildkit/buildkitd.sock"),
                "--addr".into(),
                format!("tcp://0.0.0.0:{}", self.port),
                "--tlscacert".into(),
                "/certs/ca.pem".into(),
                "--tlscert".into(),
                "/certs/cert.pem".into(),
                "--tlskey".into(),
                "/certs/key.pem".into(),
                NO_PROCESS_SANDBOX.into(),
            ]),
            env: (!env_vars.is_empty()).then_some(env_vars),
            ports: Some(vec![ContainerPort {
                name: Some("buildkitd".into()),
                container_port: self.port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(exec_probe(&probe_command, 5, 30, 3)),
            liveness_probe: Some(exec_probe(&probe_command, 5, 30, 3)),
            volume_mounts: Some(mounts),
            security_context: Some(builder_security_context(&self.security)),
            resources: self.resources.clone(),
            ..Container::default()
        };
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                automount_service_account_token: Some(false),
                security_context: Some(pod_security_context(BUILDKIT_UID)),
                containers: vec![container],
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
        }
    }

    /// The Deployment.
    pub fn deployment(&self) -> Result<Deployment, K8sError> {
        self.validate()?;
        let labels = labels(&self.name, "buildkitd", &self.labels);
        Ok(Deployment {
            metadata: metadata(&self.name, self.namespace.as_deref(), labels.clone()),
            spec: Some(DeploymentSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector {
                    match_labels: Some(self.selector()),
                    match_expressions: None,
                },
                template: self.pod_template(labels, false),
                ..DeploymentSpec::default()
            }),
            status: None,
        })
    }

    /// The Service.
    pub fn service(&self) -> Result<Service, K8sError> {
        self.validate()?;
        Ok(Service {
            metadata: metadata(
                &self.name,
                self.namespace.as_deref(),
                labels(&self.name, "buildkitd", &self.labels),
            ),
            spec: Some(ServiceSpec {
                selector: Some(self.selector()),
                ports: Some(vec![ServicePort {
                    name: Some("buildkitd".into()),
                    port: self.port,
                    protocol: Some("TCP".into()),
                    target_port: Some(IntOrString::String("buildkitd".into())),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        })
    }

    /// The Deployment and the Service, in the order to apply them.
    pub fn manifests(&self) -> Result<Vec<crate::Manifest>, K8sError> {
        Ok(vec![self.deployment()?.into(), self.service()?.into()])
    }
}
