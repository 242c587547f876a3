"""Type stubs of cicd_agents.k8s (Kubernetes manifests)."""

from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional, Union, final

from . import Error

__all__ = [
    "ARGO_API_VERSION",
    "BUILD_SCRIPT",
    "BUILDAH_SERVER_SCRIPT",
    "BUILD_REQUESTS_DIR",
    "BUILDKIT_DOCKER_CONFIG_DIR",
    "BUILDKIT_STATE_DIR",
    "BUILDKIT_UID",
    "DEFAULT_BUILDAH_IMAGE",
    "DEFAULT_BUILDKIT_IMAGE",
    "DEFAULT_CIRCLECI_RUNNER_IMAGE",
    "DEFAULT_GITHUB_RUNNER_IMAGE",
    "DEFAULT_REGISTRY_SECRET",
    "NO_PROCESS_SANDBOX",
    "RUNNER_BUILDKIT_ADDR",
    "BuildAndUpdateChart",
    "BuilderSecurity",
    "BuildJob",
    "BuildkitDaemon",
    "BuildkitPool",
    "ChartUpdate",
    "K8sError",
    "Manifest",
    "RunnerJob",
    "SecretKeyRef",
    "parse_yaml",
    "render_yaml",
]

ARGO_API_VERSION: str
BUILD_SCRIPT: str
BUILDAH_SERVER_SCRIPT: str
BUILD_REQUESTS_DIR: str
BUILDKIT_DOCKER_CONFIG_DIR: str
BUILDKIT_STATE_DIR: str
BUILDKIT_UID: int
DEFAULT_BUILDAH_IMAGE: str
DEFAULT_BUILDKIT_IMAGE: str
DEFAULT_CIRCLECI_RUNNER_IMAGE: str
DEFAULT_GITHUB_RUNNER_IMAGE: str
DEFAULT_REGISTRY_SECRET: str
NO_PROCESS_SANDBOX: str
RUNNER_BUILDKIT_ADDR: str

# {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {...}}: Kubernetes ResourceRequirements.
_Resources = Mapping[str, Any]

class K8sError(Error):
    """A manifest could not be rendered or read back; ``index`` is the YAML document (from 1)."""

    index: Optional[int]

@final
class SecretKeyRef:
    """A key in a Kubernetes Secret."""

    def __new__(cls, name: str, key: str) -> "SecretKeyRef": ...
    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...

@final
class BuilderSecurity:
    """What the builder container may do (defaults: what rootless BuildKit and Buildah need)."""

    def __new__(cls, *, sys_admin: bool = False, allow_privilege_escalation: bool = True) -> "BuilderSecurity": ...
    @property
    def sys_admin(self) -> bool: ...
    @property
    def allow_privilege_escalation(self) -> bool: ...

@final
class ChartUpdate:
    """The chart write-back of BuildAndUpdateChart's update-chart step."""

    def __new__(cls, repo: str, branch: str, file: str, key: str, tool_image: str) -> "ChartUpdate": ...
    @property
    def repo(self) -> str: ...
    @property
    def branch(self) -> str: ...
    @property
    def file(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def tool_image(self) -> str: ...

@final
class Manifest:
    """One Kubernetes object: Job, Deployment, Service or Argo WorkflowTemplate."""

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "Manifest": ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> Optional[str]: ...
    def to_yaml(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

def render_yaml(manifests: Union[Manifest, Iterable[Manifest]]) -> str: ...
def parse_yaml(text: str) -> List[Manifest]: ...

@final
class BuildJob:
    """A one-shot rootless BuildKit build Job (git context, push, registry cache)."""

    def __new__(
        cls,
        name: str,
        git_url: str,
        image: str,
        *,
        namespace: Optional[str] = None,
        generate_name: bool = False,
        git_ref: Optional[str] = None,
        context_subdir: Optional[str] = None,
        dockerfile: Optional[str] = None,
        tag: Optional[str] = None,
        push: bool = True,
        cache_ref: Optional[str] = None,
        insecure_cache_registry: bool = False,
        insecure_registry: bool = False,
        registry_secret: Optional[str] = ...,  # DEFAULT_REGISTRY_SECRET ("regcred"); None: no pull secret
        git_token: Optional[SecretKeyRef] = None,
        buildkit_image: Optional[str] = None,
        builder: Optional[Literal["buildkit", "kaniko"]] = None,
        kaniko_image: Optional[str] = None,
        security: Optional[BuilderSecurity] = None,
        sys_admin: Optional[bool] = None,
        resources: Optional[_Resources] = None,
        ttl_seconds_after_finished: Optional[int] = None,
        active_deadline_seconds: Optional[int] = None,
        backoff_limit: Optional[int] = None,
        service_account: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> "BuildJob": ...
    def build(self) -> Manifest: ...

@final
class BuildkitDaemon:
    """A long-running rootless buildkitd Deployment + Service with mutual TLS."""

    def __new__(
        cls,
        name: str,
        *,
        namespace: Optional[str] = None,
        replicas: Optional[int] = None,
        image: Optional[str] = None,
        port: Optional[int] = None,
        tls_secret: Optional[str] = None,
        registry_secret: Optional[str] = None,
        security: Optional[BuilderSecurity] = None,
        sys_admin: Optional[bool] = None,
        resources: Optional[_Resources] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> "BuildkitDaemon": ...
    @property
    def address(self) -> str: ...
    def deployment(self) -> Manifest: ...
    def service(self) -> Manifest: ...
    def manifests(self) -> List[Manifest]: ...

@final
class BuildkitPool:
    """A pool of rootless buildkitd replicas: a StatefulSet + headless Service with mutual TLS."""

    def __new__(
        cls,
        name: str = "buildkitd-pool",
        *,
        namespace: Optional[str] = None,
        replicas: Optional[int] = None,
        image: Optional[str] = None,
        port: Optional[int] = None,
        tls_secret: Optional[str] = None,
        registry_secret: Optional[str] = None,
        cache_size: Optional[str] = None,
        storage_class: Optional[str] = None,
        security: Optional[BuilderSecurity] = None,
        sys_admin: Optional[bool] = None,
        resources: Optional[_Resources] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> "BuildkitPool": ...
    @property
    def address(self) -> str: ...
    @property
    def member_addresses(self) -> List[str]: ...
    @property
    def certificate_dns_names(self) -> List[str]: ...
    def statefulset(self) -> Manifest: ...
    def service(self) -> Manifest: ...
    def manifests(self) -> List[Manifest]: ...

@final
class BuildAndUpdateChart:
    """The original pipeline as an Argo WorkflowTemplate: build, then update the Helm chart."""

    def __new__(
        cls,
        name: str,
        git_url: str,
        image: str,
        chart: ChartUpdate,
        *,
        namespace: Optional[str] = None,
        default_tag: Optional[str] = None,
        default_git_ref: Optional[str] = None,
        default_dockerfile: Optional[str] = None,
        context_subdir: Optional[str] = None,
        cache_ref: Optional[str] = None,
        insecure_cache_registry: bool = False,
        insecure_registry: bool = False,
        registry_secret: Optional[str] = ...,  # DEFAULT_REGISTRY_SECRET ("regcred"); None: no pull secret
        github_token: Optional[SecretKeyRef] = None,
        git_token: Optional[SecretKeyRef] = None,
        buildkit_image: Optional[str] = None,
        builder: Optional[Literal["buildkit", "kaniko"]] = None,
        kaniko_image: Optional[str] = None,
        security: Optional[BuilderSecurity] = None,
        sys_admin: Optional[bool] = None,
        resources: Optional[_Resources] = None,
        tool_uid: Optional[int] = None,
        service_account: Optional[str] = None,
        active_deadline_seconds: Optional[int] = None,
        ttl_seconds_after_completion: Optional[int] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> "BuildAndUpdateChart": ...
    def build(self) -> Manifest: ...

@final
class RunnerJob:
    """An ephemeral GitHub Actions or CircleCI runner Job with a rootless builder sidecar."""

    @staticmethod
    def github(
        name: str,
        jit_config: SecretKeyRef,
        *,
        namespace: Optional[str] = None,
        generate_name: bool = False,
        runner_image: Optional[str] = None,
        runner_uid: Optional[int] = None,
        builder: Optional[str] = None,
        builder_image: Optional[str] = None,
        security: Optional[BuilderSecurity] = None,
        sys_admin: Optional[bool] = None,
        storage_driver: Optional[str] = None,
        registry_secret: Optional[str] = ...,  # DEFAULT_REGISTRY_SECRET ("regcred"); None: no pull secret
        workspace_size: Optional[str] = None,
        storage_class: Optional[str] = None,
        ttl_seconds_after_finished: Optional[int] = None,
        active_deadline_seconds: Optional[int] = None,
        service_account: Optional[str] = None,
        runner_resources: Optional[_Resources] = None,
        builder_resources: Optional[_Resources] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> "RunnerJob": ...
    @staticmethod
    def circleci(
        name: str,
        token: SecretKeyRef,
        *,
        namespace: Optional[str] = None,
        generate_name: bool = False,
        runner_image: Optional[str] = None,
        runner_uid: Optional[int] = None,
        builder: Optional[str] = None,
        builder_image: Optional[str] = None,
        security: Optional[BuilderSecurity] = None,
        sys_admin: Optional[bool] = None,
        storage_driver: Optional[str] = None,
        registry_secret: Optional[str] = ...,  # DEFAULT_REGISTRY_SECRET ("regcred"); None: no pull secret
        workspace_size: Optional[str] = None,
        storage_class: Optional[str] = None,
        ttl_seconds_after_finished: Optional[int] = None,
        active_deadline_seconds: Optional[int] = None,
        service_account: Optional[str] = None,
        runner_resources: Optional[_Resources] = None,
        builder_resources: Optional[_Resources] = None,
        labels: Optional[Mapping[str, str]] = None,
    ) -> "RunnerJob": ...
    def build(self) -> Manifest: ...
