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

/// The TCP port a `buildkitd` listens on unless told otherwise.
pub const DEFAULT_DAEMON_PORT: i32 = 1234;
/// The Secret with the daemon's TLS material (`ca.pem`, `cert.pem`, `key.pem`) unless told
/// otherwise.
pub const DEFAULT_TLS_SECRET: &str = "buildkit-daemon-certs";

/// The options of rootless `buildkitd`s (all but their name), one struct shared by
/// [`BuildkitDaemon`] and [`BuildkitPool`](super::BuildkitPool) (`options()` sets all of them at
/// once) and filled by the command line's front end. The builders' setters of the same names
/// change one field each.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildkitDaemonOptions {
    /// The namespace (otherwise the one `kubectl` uses).
    pub namespace: Option<String>,
    /// How many daemons (1 to 1000).
    pub replicas: i32,
    /// The rootless BuildKit image (default [`DEFAULT_BUILDKIT_IMAGE`]).
    pub image: String,
    /// The TCP port (default [`DEFAULT_DAEMON_PORT`]).
    pub port: i32,
    /// The Secret with `ca.pem`, `cert.pem` and `key.pem` (default [`DEFAULT_TLS_SECRET`]).
    pub tls_secret: String,
    /// Registry credentials the daemons themselves use (a `kubernetes.io/dockerconfigjson`
    /// Secret), or none.
    pub registry_secret: Option<String>,
    /// What the daemon containers may do.
    pub security: BuilderSecurity,
    /// CPU and memory requests and limits of each daemon.
    pub resources: Option<ResourceRequirements>,
    /// Extra labels on every object and its pods.
    pub labels: BTreeMap<String, String>,
}

impl Default for BuildkitDaemonOptions {
    /// One replica, port [`DEFAULT_DAEMON_PORT`], TLS material from [`DEFAULT_TLS_SECRET`], no
    /// registry credentials.
    fn default() -> Self {
        BuildkitDaemonOptions {
            namespace: None,
            replicas: 1,
            image: DEFAULT_BUILDKIT_IMAGE.into(),
            port: DEFAULT_DAEMON_PORT,
            tls_secret: DEFAULT_TLS_SECRET.into(),
            registry_secret: None,
            security: BuilderSecurity::default(),
            resources: None,
            labels: BTreeMap::new(),
        }
    }
}

impl BuildkitDaemonOptions {
    /// Checks every option with the Kubernetes and image rules.
    pub fn validate(&self) -> Result<(), K8sError> {
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
}

/// The setters of the daemon options ([`BuildkitDaemonOptions`]), the same on
/// [`BuildkitDaemon`] and [`BuildkitPool`](super::BuildkitPool): each changes one field of the
/// options at the given path of `self`.
macro_rules! daemon_setters {
    ($($options:ident).+) => {
        /// Every daemon option at once (replacing those set before).
        pub fn options(mut self, options: BuildkitDaemonOptions) -> Self {
            self.$($options).+ = options;
            self
        }

        /// The daemon options.
        pub fn daemon_options(&self) -> &BuildkitDaemonOptions {
            &self.$($options).+
        }

        /// The namespace.
        pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
            self.$($options).+.namespace = Some(namespace.into());
            self
        }

        /// How many daemons (default 1 for a daemon, 3 for a pool). Each keeps its own cache:
        /// for sticky routing over several, use a [`BuildkitPool`](crate::buildkit::BuildkitPool)
        /// and the builder pool in `cicd-agents-buildkit`.
        pub fn replicas(mut self, replicas: i32) -> Self {
            self.$($options).+.replicas = replicas;
            self
        }

        /// The rootless BuildKit image.
        pub fn image(mut self, image: impl Into<String>) -> Self {
            self.$($options).+.image = image.into();
            self
        }

        /// The TCP port (default 1234).
        pub fn port(mut self, port: i32) -> Self {
            self.$($options).+.port = port;
            self
        }

        /// The Secret with `ca.pem`, `cert.pem` and `key.pem` (default
        /// `buildkit-daemon-certs`); for a pool, see its documentation for the names the
        /// certificate must carry.
        pub fn tls_secret(mut self, secret: impl Into<String>) -> Self {
            self.$($options).+.tls_secret = secret.into();
            self
        }

        /// Registry credentials the daemons themselves use (for cache export and pulls of
        /// private base images); clients normally send theirs through the build session.
        pub fn registry_secret(mut self, secret: Option<String>) -> Self {
            self.$($options).+.registry_secret = secret;
            self
        }

        /// What the daemon containers may do (see [`BuilderSecurity`](crate::BuilderSecurity)).
        pub fn security(mut self, security: crate::BuilderSecurity) -> Self {
            self.$($options).+.security = security;
            self
        }

        /// Add `CAP_SYS_ADMIN` (off by default).
        pub fn sys_admin(mut self, sys_admin: bool) -> Self {
            self.$($options).+.security.sys_admin = sys_admin;
            self
        }

        /// CPU and memory requests and limits of each daemon.
        pub fn resources(
            mut self,
            resources: k8s_openapi::api::core::v1::ResourceRequirements,
        ) -> Self {
            self.$($options).+.resources = Some(resources);
            self
        }

        /// An extra label on every object.
        pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.$($options).+.labels.insert(key.into(), value.into());
            self
        }
    };
}
pub(super) use daemon_setters;

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
    pub(super) options: BuildkitDaemonOptions,
}

impl BuildkitDaemon {
    /// One replica named `name`, with the default [`BuildkitDaemonOptions`] (TLS material from
    /// the Secret `buildkit-daemon-certs`, port 1234).
    pub fn new(name: impl Into<String>) -> Self {
        BuildkitDaemon {
            name: name.into(),
            options: BuildkitDaemonOptions::default(),
        }
    }

    daemon_setters!(options);

    /// The address clients use inside the cluster.
    pub fn address(&self) -> String {
        match &self.options.namespace {
            Some(namespace) => format!("tcp://{}.{namespace}.svc:{}", self.name, self.options.port),
            None => format!("tcp://{}:{}", self.name, self.options.port),
        }
    }

    pub(super) fn validate(&self) -> Result<(), K8sError> {
        // The Service has the same name: a DNS-1035 label.
        validate_dns1035_label("name", &self.name)?;
        self.options.validate()
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
        volumes.push(secret_volume("certs", &self.options.tls_secret));
        if let Some(secret) = &self.options.registry_secret {
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
            image: Some(self.options.image.clone()),
            args: Some(vec![
                "--addr".into(),
                format!("unix:///run/user/{BUILDKIT_UID}/buildkit/buildkitd.sock"),
                "--addr".into(),
                format!("tcp://0.0.0.0:{}", self.options.port),
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
                container_port: self.options.port,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(exec_probe(&probe_command, 5, 30, 3)),
            liveness_probe: Some(exec_probe(&probe_command, 5, 30, 3)),
            volume_mounts: Some(mounts),
            security_context: Some(builder_security_context(&self.options.security)),
            resources: self.options.resources.clone(),
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
        let labels = labels(&self.name, "buildkitd", &self.options.labels);
        Ok(Deployment {
            metadata: metadata(
                &self.name,
                self.options.namespace.as_deref(),
                labels.clone(),
            ),
            spec: Some(DeploymentSpec {
                replicas: Some(self.options.replicas),
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
                self.options.namespace.as_deref(),
                labels(&self.name, "buildkitd", &self.options.labels),
            ),
            spec: Some(ServiceSpec {
                selector: Some(self.selector()),
                ports: Some(vec![ServicePort {
                    name: Some("buildkitd".into()),
                    port: self.options.port,
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
