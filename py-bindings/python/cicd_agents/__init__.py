"""Build container images with BuildKit and update Helm charts via git, from Python.

The engine is the Rust library of cicd-agents (``cicd-agents-buildkit`` and
``cicd-agents-pipeline``): this package talks to the BuildKit daemon directly
over gRPC, without the ``docker buildx`` command line.

Example::

    import cicd_agents

    client = cicd_agents.Client("docker://")          # or BUILDKIT_HOST / DOCKER_HOST
    print(client.info().version)
    result = client.build(
        "./app",
        tags=["registry.example/app:1.2.3"],
        push=True,
        cache_to="type=registry,ref=registry.example/app:cache,mode=max",
        progress="plain",
    )
    print(result.digest)

Every blocking call releases the GIL, and Ctrl-C (KeyboardInterrupt) during a
build cancels it on the daemon. ``Client.build_async`` and friends are
coroutines (nothing starts until awaited); ``Client.build_stream`` yields progress events as they
arrive. ``BuilderPool`` spreads builds over several daemons (sticky routing,
health checks, failover); ``cicd_agents.k8s`` renders the Kubernetes manifests
(build Jobs, buildkitd, Argo WorkflowTemplate, ephemeral CI runners).

Errors derive from :class:`cicd_agents.Error`. Note that
:class:`cicd_agents.ConnectionError` is this package's own class (a subclass of
``cicd_agents.Error``), not the builtin ``ConnectionError``.
"""

from ._native import (
    ActiveBuild,
    Attempt,
    AuthError,
    BuilderPool,
    BuildError,
    BuildkitVersion,
    BuildResult,
    BuildStream,
    Cancelled,
    Change,
    Client,
    ConnectionError,
    DaemonInfo,
    EndpointHealth,
    Error,
    FileEdit,
    GcPolicy,
    GitAuthError,
    GitError,
    GitPushRejected,
    InvalidOption,
    InvalidPipeline,
    K8sError,
    LogEvent,
    Pipeline,
    PooledBuild,
    PoolError,
    PoolUnavailable,
    RegistryAuthError,
    RegistryFailure,
    RunReport,
    StatusEvent,
    UsageRecord,
    ValuesDocument,
    ValuesError,
    VertexEvent,
    WarningEvent,
    Worker,
    WriteBackOutcome,
    __version__,
    edit_values_file,
    normalize_platform,
    parse_tag_ref,
    resolve_address,
    routing_key,
    set_image,
    update_values,
    validate_tag,
)
from . import k8s  # the cicd_agents.k8s submodule (Kubernetes manifests)
from ._options import BuildOptions

__all__ = [
    "ActiveBuild",
    "Attempt",
    "AuthError",
    "BuilderPool",
    "BuildError",
    "BuildkitVersion",
    "BuildResult",
    "BuildOptions",
    "BuildStream",
    "Cancelled",
    "Change",
    "Client",
    "ConnectionError",
    "DaemonInfo",
    "EndpointHealth",
    "Error",
    "FileEdit",
    "GcPolicy",
    "GitAuthError",
    "GitError",
    "GitPushRejected",
    "InvalidOption",
    "InvalidPipeline",
    "K8sError",
    "LogEvent",
    "Pipeline",
    "PooledBuild",
    "PoolError",
    "PoolUnavailable",
    "RegistryAuthError",
    "RegistryFailure",
    "RunReport",
    "StatusEvent",
    "UsageRecord",
    "ValuesDocument",
    "ValuesError",
    "VertexEvent",
    "WarningEvent",
    "Worker",
    "WriteBackOutcome",
    "__version__",
    "edit_values_file",
    "normalize_platform",
    "parse_tag_ref",
    "resolve_address",
    "routing_key",
    "set_image",
    "update_values",
    "validate_tag",
    "k8s",
]
