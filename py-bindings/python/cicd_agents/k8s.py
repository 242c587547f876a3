"""Kubernetes manifests for running builds at scale (the ``k8s`` module of ``cicd-agents-pipeline``).

Builders take their options as keyword arguments and ``build()`` returns a
:class:`Manifest`; :func:`render_yaml` gives the multi-document YAML that
``kubectl apply -f -`` takes, byte for byte what the Rust crate and
``cicd-agents k8s render`` produce. :func:`parse_yaml` reads it back.

Example::

    from cicd_agents import k8s

    job = k8s.BuildJob("build-app", "https://github.com/org/app.git", "docker.io/org/app",
                       namespace="ci", tag="1.4.2").build()
    daemon = k8s.BuildkitDaemon("buildkitd", namespace="ci", replicas=2)
    print(k8s.render_yaml([job, *daemon.manifests()]))

Invalid values raise :class:`cicd_agents.InvalidOption` naming the option;
rendering and parsing errors raise :class:`K8sError`.
"""

from ._native import k8s as _native_k8s

ARGO_API_VERSION = _native_k8s.ARGO_API_VERSION
BUILD_SCRIPT = _native_k8s.BUILD_SCRIPT
BUILDAH_SERVER_SCRIPT = _native_k8s.BUILDAH_SERVER_SCRIPT
BUILD_REQUESTS_DIR = _native_k8s.BUILD_REQUESTS_DIR
BUILDKIT_DOCKER_CONFIG_DIR = _native_k8s.BUILDKIT_DOCKER_CONFIG_DIR
BUILDKIT_STATE_DIR = _native_k8s.BUILDKIT_STATE_DIR
BUILDKIT_UID = _native_k8s.BUILDKIT_UID
DEFAULT_BUILDAH_IMAGE = _native_k8s.DEFAULT_BUILDAH_IMAGE
DEFAULT_BUILDKIT_IMAGE = _native_k8s.DEFAULT_BUILDKIT_IMAGE
DEFAULT_CIRCLECI_RUNNER_IMAGE = _native_k8s.DEFAULT_CIRCLECI_RUNNER_IMAGE
DEFAULT_GITHUB_RUNNER_IMAGE = _native_k8s.DEFAULT_GITHUB_RUNNER_IMAGE
DEFAULT_REGISTRY_SECRET = _native_k8s.DEFAULT_REGISTRY_SECRET
NO_PROCESS_SANDBOX = _native_k8s.NO_PROCESS_SANDBOX
RUNNER_BUILDKIT_ADDR = _native_k8s.RUNNER_BUILDKIT_ADDR

BuildAndUpdateChart = _native_k8s.BuildAndUpdateChart
BuilderSecurity = _native_k8s.BuilderSecurity
BuildJob = _native_k8s.BuildJob
BuildkitDaemon = _native_k8s.BuildkitDaemon
BuildkitPool = _native_k8s.BuildkitPool
ChartUpdate = _native_k8s.ChartUpdate
K8sError = _native_k8s.K8sError
Manifest = _native_k8s.Manifest
RunnerJob = _native_k8s.RunnerJob
SecretKeyRef = _native_k8s.SecretKeyRef
parse_yaml = _native_k8s.parse_yaml
render_yaml = _native_k8s.render_yaml

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
