//! Pieces every manifest shares: security contexts, volumes, env vars, labels and the checks
//! on values that end up in a manifest.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    KeyToPath, ObjectFieldSelector, PersistentVolumeClaimSpec, PodSecurityContext, Probe,
    SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::error::K8sError;
use super::names::{
    Dns1035Label, Dns1123Label, Dns1123Subdomain, GenerateNamePrefix, LabelKey, LabelValue,
};
use super::quantity::Quantity;

/// The UID and GID the `moby/buildkit:*-rootless` image is built for (changing it needs a
/// rebuilt image).
pub const BUILDKIT_UID: i64 = 1000;
/// The rootless BuildKit image used unless another is given (a current release). Pin your own
/// version in production.
pub const DEFAULT_BUILDKIT_IMAGE: &str = "docker.io/moby/buildkit:v0.26.3-rootless";
/// Where rootless BuildKit keeps its state (an `emptyDir`: the image's `VOLUME` breaks on
/// `nosuid`/`nodev` node file systems).
pub const BUILDKIT_STATE_DIR: &str = "/home/user/.local/share/buildkit";
/// Where the Docker config (`config.json`) is mounted for rootless BuildKit; `DOCKER_CONFIG`
/// points here.
pub const BUILDKIT_DOCKER_CONFIG_DIR: &str = "/home/user/.docker";
/// The `buildkitd` flag rootless BuildKit needs in a pod (Kubernetes cannot give it an
/// unmasked `/proc`).
pub const NO_PROCESS_SANDBOX: &str = "--oci-worker-no-process-sandbox";
/// The conventional name of the registry credentials Secret (type
/// `kubernetes.io/dockerconfigjson`).
pub const DEFAULT_REGISTRY_SECRET: &str = "regcred";

/// A key in a Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key inside it.
    pub key: String,
}

impl SecretKeyRef {
    /// `key` in the Secret `name`.
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        SecretKeyRef {
            name: name.into(),
            key: key.into(),
        }
    }

    pub(crate) fn validate(&self, option: &str) -> Result<(), K8sError> {
        validate_dns_subdomain(option, &self.name)?;
        let key_ok = !self.key.is_empty()
            && self.key.len() <= 253
            && self
                .key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !key_ok {
            return Err(K8sError::option(
                option,
                format!(
                    "secret key {:?} is not a valid key ([-._a-zA-Z0-9]+)",
                    self.key
                ),
            ));
        }
        Ok(())
    }
}

/// How much the builder container is allowed. The defaults are what rootless BuildKit and
/// rootless Buildah need and no more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderSecurity {
    /// Add `CAP_SYS_ADMIN`. Off by default: upstream's rootless manifests do without it; the
    /// original design needed it on Ubuntu nodes whose AppArmor restricts unprivileged user
    /// namespaces (`failed to share mount point: /: permission denied`).
    pub sys_admin: bool,
    /// Whether the builder may gain privileges through set-uid binaries. On by default because
    /// rootlesskit maps the sub-UID range with the set-uid `newuidmap`/`newgidmap`, which fail
    /// with `Could not set caps` under `allowPrivilegeEscalation: false` (moby/buildkit#1671).
    /// Set it to `false` on clusters where the builder runs without a sub-UID mapping (for
    /// example with `hostUsers: false`). The container is never privileged either way.
    pub allow_privilege_escalation: bool,
}

impl Default for BuilderSecurity {
    fn default() -> Self {
        BuilderSecurity {
            sys_admin: false,
            allow_privilege_escalation: true,
        }
    }
}

/// The security context of a rootless builder container (BuildKit or Buildah): UID/GID 1000,
/// seccomp and AppArmor `Unconfined` (user namespaces and mounts), never privileged.
pub(crate) fn builder_security_context(security: &BuilderSecurity) -> SecurityContext {
    SecurityContext {
        run_as_user: Some(BUILDKIT_UID),
        run_as_group: Some(BUILDKIT_UID),
        run_as_non_root: Some(true),
        privileged: Some(false),
        allow_privilege_escalation: Some(security.allow_privilege_escalation),
        seccomp_profile: Some(SeccompProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        }),
        app_armor_profile: Some(AppArmorProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        }),
        capabilities: security.sys_admin.then(|| Capabilities {
            add: Some(vec!["SYS_ADMIN".into()]),
            drop: None,
        }),
        ..SecurityContext::default()
    }
}

/// The security context of every other container: non-root, no privilege escalation, no
/// capabilities, the runtime's default seccomp profile (passes the `restricted` Pod Security
/// Standard).
pub(crate) fn restricted_security_context(uid: i64, gid: i64) -> SecurityContext {
    SecurityContext {
        run_as_user: Some(uid),
        run_as_group: Some(gid),
        run_as_non_root: Some(true),
        privileged: Some(false),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            add: None,
            drop: Some(vec!["ALL".into()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// Pod-level security context: shared volumes group-owned by `fs_group`.
pub(crate) fn pod_security_context(fs_group: i64) -> PodSecurityContext {
    PodSecurityContext {
        fs_group: Some(fs_group),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        ..PodSecurityContext::default()
    }
}

/// A plain env var.
pub(crate) fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// An env var read from a Secret.
pub(crate) fn env_from_secret(name: &str, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// An env var holding a field of the pod (`metadata.name`, …).
pub(crate) fn env_from_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: field_path.into(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// An `emptyDir` volume.
pub(crate) fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// The registry credentials: a `kubernetes.io/dockerconfigjson` Secret whose
/// `.dockerconfigjson` key is mounted as `config.json`.
pub(crate) fn docker_config_volume(name: &str, secret_name: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name.into()),
            items: Some(vec![KeyToPath {
                key: ".dockerconfigjson".into(),
                path: "config.json".into(),
                mode: None,
            }]),
            default_mode: Some(0o440),
            optional: Some(false),
        }),
        ..Volume::default()
    }
}

/// A Secret mounted as files (TLS material).
pub(crate) fn secret_volume(name: &str, secret_name: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name.into()),
            default_mode: Some(0o440),
            optional: Some(false),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

pub(crate) fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// A probe that runs a command.
pub(crate) fn exec_probe(
    command: &[&str],
    initial_delay: i32,
    period: i32,
    failure_threshold: i32,
) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(10),
        ..Probe::default()
    }
}

/// A claim of `size` (a checked quantity) of one node's storage (`ReadWriteOnce`) from
/// `storage_class` (otherwise the cluster's default): the pool's cache volumes and the
/// runners' workspace.
pub(crate) fn claim_spec(size: &str, storage_class: Option<String>) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: storage_class,
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".to_string(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity(size.to_string()),
            )])),
            limits: None,
        }),
        ..PersistentVolumeClaimSpec::default()
    }
}

/// `app.kubernetes.io/*` labels plus the user's own.
pub(crate) fn labels(
    name: &str,
    component: &str,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("app.kubernetes.io/name".to_string(), name.to_string());
    labels.insert(
        "app.kubernetes.io/component".to_string(),
        component.to_string(),
    );
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        "cicd-agents".to_string(),
    );
    for (key, value) in extra {
        labels.insert(key.clone(), value.clone());
    }
    labels
}

pub(crate) fn metadata(
    name: &str,
    namespace: Option<&str>,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// A DNS-1123 label ([`Dns1123Label`]): namespaces and object names that also become label
/// values (Jobs).
pub(crate) fn validate_dns_label(option: &str, value: &str) -> Result<(), K8sError> {
    Dns1123Label::parse(value)
        .map(drop)
        .map_err(|err| err.for_option(option))
}

/// A DNS-1123 subdomain ([`Dns1123Subdomain`]): Secrets, service accounts, storage classes.
pub(crate) fn validate_dns_subdomain(option: &str, value: &str) -> Result<(), K8sError> {
    Dns1123Subdomain::parse(value)
        .map(drop)
        .map_err(|err| err.for_option(option))
}

/// A DNS-1035 label ([`Dns1035Label`]): Service names.
pub(crate) fn validate_dns1035_label(option: &str, value: &str) -> Result<(), K8sError> {
    Dns1035Label::parse(value)
        .map(drop)
        .map_err(|err| err.for_option(option))
}

/// The name of an object that may be created with `generateName`: with `generate`, a
/// [`GenerateNamePrefix`] (returned without its `-`, for the labels); otherwise a DNS-1123
/// label.
pub(crate) fn validate_job_name(
    option: &str,
    value: &str,
    generate: bool,
) -> Result<String, K8sError> {
    if generate {
        GenerateNamePrefix::parse(value)
            .map(|prefix| prefix.base().to_string())
            .map_err(|err| err.for_option(option))
    } else {
        validate_dns_label(option, value).map(|()| value.to_string())
    }
}

/// The user's extra labels: valid keys and values.
pub(crate) fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), K8sError> {
    for (key, value) in labels {
        LabelKey::parse(key).map_err(|err| err.for_option("label"))?;
        LabelValue::parse(value).map_err(|err| err.for_option("label"))?;
    }
    Ok(())
}

/// An image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` ([`cicd_agents_types::ImageTag`]).
pub(crate) fn validate_tag(option: &str, value: &str) -> Result<(), K8sError> {
    match cicd_agents_types::ImageTag::new(value) {
        Ok(_) => Ok(()),
        Err(_) => Err(K8sError::option(
            option,
            format!("{value:?} is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"),
        )),
    }
}

/// An image reference as `cicd-agents build -t` takes it: an
/// [`ImageRef`](cicd_agents_types::ImageRef) (`[registry[:port]/]path[:tag][@digest]`, which
/// leaves no room for spaces, quotes, commas or `$`: the value ends up inside comma-separated
/// BuildKit attributes and `$(VAR)`-expanded arguments).
pub(crate) fn validate_image(
    option: &str,
    value: &str,
) -> Result<cicd_agents_types::ImageRef, K8sError> {
    value
        .parse::<cicd_agents_types::ImageRef>()
        .map_err(|err| K8sError::option(option, format!("{value:?}: {}", err.reason)))
}

/// A git ref to build: a [`GitRef`](cicd_agents_types::GitRef) (git's rules) that also fits
/// the build context's syntax (`<url>#<ref>:<subdir>`), so only `[A-Za-z0-9_./-]`: the same
/// rule [`BUILD_SCRIPT`](crate::buildkit::BUILD_SCRIPT) applies at run time to a workflow
/// parameter (`refs/heads/main`, `v1.2.3`, a SHA).
pub(crate) fn validate_git_ref(option: &str, value: &str) -> Result<(), K8sError> {
    let git_ref = cicd_agents_types::GitRef::new(value)
        .map_err(|err| K8sError::option(option, format!("{value:?}: {}", err.reason)))?;
    if let Some(c) = git_ref
        .as_str()
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')))
    {
        return Err(K8sError::option(
            option,
            format!(
                "{value:?}: {c:?} cannot be part of a build context's ref (use [A-Za-z0-9_./-])"
            ),
        ));
    }
    Ok(())
}

/// A relative path inside the repository (Dockerfile, context sub-directory).
pub(crate) fn validate_repo_path(option: &str, value: &str) -> Result<(), K8sError> {
    let ok = !value.is_empty()
        && value.len() <= 1024
        && !value.starts_with('/')
        && !value.split('/').any(|part| part == "..")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '+' | '@'));
    if ok {
        Ok(())
    } else {
        Err(K8sError::option(
            option,
            format!("{value:?} is not an accepted relative path ([A-Za-z0-9_./+@-], no '..')"),
        ))
    }
}

/// A URL or other free text that is passed on verbatim: no whitespace, no control characters,
/// no quotes, no `$` (Kubernetes expands `$(VAR)` in arguments) and no `{{` (Argo would try
/// to resolve it as an expression in a WorkflowTemplate).
pub(crate) fn validate_plain(option: &str, value: &str) -> Result<(), K8sError> {
    let ok = !value.is_empty()
        && value.len() <= 2048
        && !value.contains("{{")
        && !value.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '`' | '$' | '\\' | '#')
        });
    if ok {
        Ok(())
    } else {
        Err(K8sError::option(
            option,
            format!(
                "{value:?} contains whitespace, quotes, '#', '$', '{{{{' or control characters"
            ),
        ))
    }
}

/// The host of an `https://` (or `http://`) git URL as Go's `url.Host` has it (with the port,
/// without user information; [`GitUrl::host_port`](cicd_agents_types::GitUrl::host_port)):
/// BuildKit offers a git token only to the remote whose host matches the secret's name
/// `GIT_AUTH_TOKEN.<host>`. URLs that carry credentials are refused: the token belongs in a
/// Secret.
pub(crate) fn git_url_host(option: &str, url: &str) -> Result<String, K8sError> {
    let parsed = cicd_agents_types::GitUrl::new(url)
        .map_err(|err| K8sError::option(option, format!("{:?}: {}", err.url, err.reason)))?;
    if parsed.has_userinfo() {
        // Never echo the URL: its user information may be a password.
        return Err(K8sError::option(
            option,
            "the URL carries credentials; store the token in a Secret and pass it as the git token instead",
        ));
    }
    validate_plain(option, url)?;
    if !matches!(
        parsed.scheme(),
        cicd_agents_types::GitUrlScheme::Https | cicd_agents_types::GitUrlScheme::Http
    ) {
        return Err(K8sError::option(
            option,
            format!("{url:?} is not an https:// (or http://) URL"),
        ));
    }
    parsed
        .host_port()
        .ok_or_else(|| K8sError::option(option, format!("{url:?} has no host")))
}

/// A size such as `10Gi` or `1e3`: a [`Quantity`] greater than zero.
pub(crate) fn validate_size(option: &str, value: &str) -> Result<(), K8sError> {
    Quantity::parse_positive(value)
        .map(drop)
        .map_err(|err| err.for_option(option))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_accept_the_usual_and_reject_injection() {
        assert!(validate_tag("tag", "1.10").is_ok());
        assert!(validate_tag("tag", "v1.2.3-rc.1_x").is_ok());
        for bad in [
            "",
            ".x",
            "-x",
            "a,push=false",
            "a b",
            "$(X)",
            &"a".repeat(129),
        ] {
            assert!(validate_tag("tag", bad).is_err(), "{bad}");
        }
        assert!(validate_image("image", "registry.local:5000/team/app").is_ok());
        assert!(validate_image("image", "app,push=false").is_err());
        assert!(validate_git_ref("ref", "refs/heads/main").is_ok());
        assert!(validate_git_ref("ref", "--upload-pack=x").is_err());
        assert!(validate_git_ref("ref", "a:b").is_err());
        assert!(validate_repo_path("dockerfile", "docker/Dockerfile.prod").is_ok());
        assert!(validate_repo_path("dockerfile", "../etc/passwd").is_err());
        assert!(validate_plain("git url", "https://github.com/o/r.git").is_ok());
        assert!(validate_plain("git url", "https://x/$(rm)").is_err());
        assert!(validate_plain("git url", "https://x/{{workflow.name}}").is_err());
        assert_eq!(
            git_url_host("git url", "https://git.example:8443/o/r.git").ok(),
            Some("git.example:8443".to_string())
        );
        assert_eq!(
            git_url_host("git url", "http://127.0.0.1/r.git").ok(),
            Some("127.0.0.1".to_string())
        );
        let err = git_url_host("git url", "https://u:pa$$word@host/r.git").unwrap_err();
        assert!(!err.to_string().contains("pa$$word"), "{err}");
        assert!(git_url_host("git url", "git@host:o/r.git").is_err());
        assert!(git_url_host("git url", "https:///r.git").is_err());
        assert!(validate_dns_label("name", "build-app-1").is_ok());
        assert!(validate_dns_label("name", "Build").is_err());
        assert!(validate_size("size", "10Gi").is_ok());
        assert!(validate_size("size", "1e3").is_ok());
        assert!(validate_size("size", "ten").is_err());
        assert!(validate_size("size", "0").is_err());
        assert!(validate_size("size", "1.2.3Gi").is_err());
        assert!(SecretKeyRef::new("github-token", "token")
            .validate("secret")
            .is_ok());
        assert!(SecretKeyRef::new("Bad_Name", "token")
            .validate("secret")
            .is_err());
    }
}
