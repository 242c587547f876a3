//! A pool of rootless `buildkitd`s: [`StatefulSet`] + headless [`Service`] ([`BuildkitPool`]).

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::daemon::{daemon_setters, BuildkitDaemon, BuildkitDaemonOptions};
use super::STATE_VOLUME;
use crate::common::{
    claim_spec, labels, metadata, validate_dns_label, validate_dns_subdomain, validate_size,
};
use crate::error::K8sError;

/// The default size of each pool replica's cache volume.
pub const DEFAULT_POOL_CACHE_SIZE: &str = "50Gi";

/// A pool of rootless `buildkitd`s for the builder pool's sticky routing: a [`StatefulSet`] of
/// `replicas` daemons (started in parallel, each with its own cache on a volume from
/// `volumeClaimTemplates` that survives restarts and rescheduling) and a headless [`Service`]
/// (`clusterIP: None`) of the same name that publishes ready pods only.
///
/// Each replica has a stable DNS name, `<name>-<i>.<name>.<namespace>.svc[.cluster.local]`, and
/// the Service name resolves to the addresses of the ready replicas. Clients give the pool as
/// [`address`](Self::address) (`dns+tcp://<name>.<namespace>.svc:1234`): the builder pool
/// learns the members from DNS, routes each project to the same replica while it exists, and
/// verifies each replica's certificate against the replica's DNS name.
///
/// **Certificates.** Every replica mounts the same Secret (`ca.pem`, `cert.pem`, `key.pem`), so
/// the server certificate must cover every replica's name: give it the wildcard SANs of
/// [`certificate_dns_names`](Self::certificate_dns_names) (`*.<name>.<namespace>.svc` and
/// `*.<name>.<namespace>.svc.cluster.local`, plus the Service's own names), e.g. with
/// upstream's `create-certs.sh` or `mkcert` given those names, or a cert-manager
/// `Certificate` with them in `dnsNames`. A wildcard covers exactly one label, which is the
/// replica's pod name.
///
/// ```
/// use cicd_agents_k8s::buildkit::BuildkitPool;
///
/// let pool = BuildkitPool::new("buildkitd-pool").namespace("ci").replicas(3).cache_size("100Gi");
/// let manifests = pool.manifests()?;
/// assert_eq!(manifests.len(), 2);
/// assert_eq!(pool.address(), "dns+tcp://buildkitd-pool.ci.svc:1234");
/// assert_eq!(pool.member_addresses()[2], "tcp://buildkitd-pool-2.buildkitd-pool.ci.svc:1234");
/// assert!(pool.certificate_dns_names().contains(&"*.buildkitd-pool.ci.svc".to_string()));
/// # Ok::<(), cicd_agents_k8s::K8sError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BuildkitPool {
    daemon: BuildkitDaemon,
    cache_size: String,
    storage_class: Option<String>,
}

impl BuildkitPool {
    /// Three replicas named `name-0…2`, a Service `name`, TLS material from the Secret
    /// `buildkit-daemon-certs`, port 1234, a [`DEFAULT_POOL_CACHE_SIZE`] cache volume each.
    pub fn new(name: impl Into<String>) -> Self {
        BuildkitPool {
            daemon: BuildkitDaemon::new(name).replicas(3),
            cache_size: DEFAULT_POOL_CACHE_SIZE.into(),
            storage_class: None,
        }
    }

    daemon_setters!(daemon.options);

    /// The size of each replica's cache volume (a Kubernetes quantity, default
    /// [`DEFAULT_POOL_CACHE_SIZE`]).
    pub fn cache_size(mut self, size: impl Into<String>) -> Self {
        self.cache_size = size.into();
        self
    }

    /// The storage class of the cache volumes (otherwise the cluster's default).
    pub fn storage_class(mut self, class: Option<String>) -> Self {
        self.storage_class = class;
        self
    }

    fn service_host(&self) -> String {
        match &self.daemon.options.namespace {
            Some(namespace) => format!("{}.{namespace}.svc", self.daemon.name),
            None => self.daemon.name.clone(),
        }
    }

    /// The pool's address for the builder pool: `dns+tcp://<name>.<namespace>.svc:<port>`.
    pub fn address(&self) -> String {
        format!(
            "dns+tcp://{}:{}",
            self.service_host(),
            self.daemon.options.port
        )
    }

    /// Each replica's own address, `tcp://<name>-<i>.<name>.<namespace>.svc:<port>`.
    pub fn member_addresses(&self) -> Vec<String> {
        let host = self.service_host();
        (0..self.daemon.options.replicas.max(0))
            .map(|i| {
                format!(
                    "tcp://{}-{i}.{host}:{}",
                    self.daemon.name, self.daemon.options.port
                )
            })
            .collect()
    }

    /// The DNS names the daemons' server certificate must carry (as SANs) so that every
    /// replica's name, and the Service's, verify: wildcards for the replicas, in the short
    /// and the `cluster.local` form.
    pub fn certificate_dns_names(&self) -> Vec<String> {
        let host = self.service_host();
        let mut names = vec![format!("*.{host}"), host.clone()];
        if self.daemon.options.namespace.is_some() {
            names.push(format!("*.{host}.cluster.local"));
            names.push(format!("{host}.cluster.local"));
        }
        names
    }

    fn validate(&self) -> Result<(), K8sError> {
        self.daemon.validate()?;
        // `<name>-<i>` is each pod's name and DNS label: it must stay a label.
        let longest = format!("{}-{}", self.daemon.name, self.daemon.options.replicas - 1);
        validate_dns_label("name", &longest)?;
        validate_size("cache size", &self.cache_size)?;
        if let Some(class) = &self.storage_class {
            validate_dns_subdomain("storage class", class)?;
        }
        Ok(())
    }

    /// The StatefulSet.
    pub fn statefulset(&self) -> Result<StatefulSet, K8sError> {
        self.validate()?;
        let daemon = &self.daemon;
        let labels = labels(&daemon.name, "buildkitd", &daemon.options.labels);
        Ok(StatefulSet {
            metadata: metadata(
                &daemon.name,
                daemon.options.namespace.as_deref(),
                labels.clone(),
            ),
            spec: Some(StatefulSetSpec {
                replicas: Some(daemon.options.replicas),
                service_name: Some(daemon.name.clone()),
                pod_management_policy: Some("Parallel".into()),
                selector: LabelSelector {
                    match_labels: Some(daemon.selector()),
                    match_expressions: None,
                },
                template: daemon.pod_template(labels.clone(), true),
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(STATE_VOLUME.into()),
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    },
                    spec: Some(claim_spec(&self.cache_size, self.storage_class.clone())),
                    status: None,
                }]),
                ..StatefulSetSpec::default()
            }),
            status: None,
        })
    }

    /// The headless Service: no cluster IP, one DNS record per *ready* replica.
    pub fn service(&self) -> Result<Service, K8sError> {
        self.validate()?;
        let mut service = self.daemon.service()?;
        if let Some(spec) = service.spec.as_mut() {
            spec.cluster_ip = Some("None".into());
            spec.publish_not_ready_addresses = Some(false);
        }
        Ok(service)
    }

    /// The Service and the StatefulSet, in the order to apply them (the StatefulSet names
    /// its governing Service).
    pub fn manifests(&self) -> Result<Vec<crate::Manifest>, K8sError> {
        Ok(vec![self.service()?.into(), self.statefulset()?.into()])
    }
}
