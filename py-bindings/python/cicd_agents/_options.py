"""``BuildOptions``: the keyword arguments of every build call, declared once.

``Client.build``, ``Client.build_async``, ``Client.build_stream``,
``BuilderPool.build`` and ``BuilderPool.build_async`` take ``(context,
**options)``; the type stubs declare ``options`` as ``Unpack[BuildOptions]``,
and the native module parses them in one place (an unknown keyword or a value
of the wrong type raises ``TypeError`` naming the keyword). Every key is
optional; ``None`` means "not given".

Beyond ``docker buildx build``'s flags, python-on-whales' ``buildx.build``
keywords are accepted: ``context_path``, ``cache``, ``output``, ``load``,
``pull``, ``progress=False``, ``stream_logs``, ``builder``, ``provenance``,
``sbom`` and ``attest``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Tuple, TypedDict, Union

if TYPE_CHECKING:
    import os

    from . import LogEvent, StatusEvent, VertexEvent, WarningEvent

    _Path = Union[str, os.PathLike[str]]
    _SpecValue = Union[str, bool, int, float, os.PathLike[str]]
    _Spec = Union[str, Mapping[str, _SpecValue]]
    _Specs = Union[_Spec, Sequence[_Spec]]
    _StrOrList = Union[str, Sequence[str]]
    _KeyValues = Union[Mapping[str, str], Sequence[str]]
    _Secret = Union[str, Mapping[str, Union[str, bytes, os.PathLike[str]]]]
    _Event = Union[VertexEvent, StatusEvent, LogEvent, WarningEvent]

__all__ = ["BuildOptions"]


class BuildOptions(TypedDict, total=False):
    """The build keywords (see ``Client.build``), for annotating a dict of them:
    ``options: BuildOptions = {"tags": "app:1", "push": True}; client.build(ctx, **options)``."""

    context_path: Optional[_Path]
    """python-on-whales' name for the context (give ``context`` or this)."""
    file: Optional[_Path]
    dockerfile_content: Optional[Union[str, bytes]]
    """The Dockerfile's text instead of a file (buildx's ``-f -``)."""
    tags: Optional[_StrOrList]
    build_args: Optional[_KeyValues]
    target: Optional[str]
    platforms: Optional[_StrOrList]
    """``"linux/amd64"``, ``"linux/amd64,linux/arm64"`` or a list, as ``--platform``: normalised
    (``linux/x86_64`` is ``linux/amd64``), ``"local"`` is this machine's platform, each sent once."""
    labels: Optional[_KeyValues]
    no_cache: Optional[bool]
    cache: Optional[bool]
    """python-on-whales: ``cache=False`` is ``no_cache=True``."""
    no_cache_filter: Optional[_StrOrList]
    pull: Optional[bool]
    """Always pull the base images (``--pull``)."""
    network: Optional[str]
    add_hosts: Optional[Union[_StrOrList, Mapping[str, str]]]
    secrets: Optional[Union[_Secret, Sequence[_Secret]]]
    ssh: Optional[Union[_StrOrList, Mapping[str, _Path]]]
    build_contexts: Optional[Mapping[str, _Path]]
    push: Optional[bool]
    load: Optional[bool]
    """Load the image into the Docker daemon's image store (``docker://`` daemons)."""
    outputs: Optional[_Specs]
    output: Optional[_Spec]
    """python-on-whales' single output (its dict form); give ``outputs`` or this."""
    cache_from: Optional[_Specs]
    cache_to: Optional[_Specs]
    progress: Union[None, bool, str, Callable[[_Event], Any]]
    """None or False (silent), a mode (``"plain"``, ...) or a callable receiving events."""
    metadata_file: Optional[_Path]
    git_auth_tokens: Optional[Mapping[str, str]]
    allow: Optional[_StrOrList]
    frontend_attrs: Optional[_KeyValues]
    registry_auth: Optional[Mapping[str, Union[Tuple[str, str], Mapping[str, str]]]]
    docker_config: Optional[Union[bool, _Path]]
    shared_key: Optional[str]
    builder: Optional[str]
    """python-on-whales: the daemon to build on; must be this client's address."""
    provenance: Union[None, bool, str, Mapping[str, _SpecValue]]
    """``--provenance``: True, False, ``"mode=max"`` or a dict (python-on-whales)."""
    sbom: Union[None, bool, str, Mapping[str, _SpecValue]]
    """``--sbom``: True, False, ``"generator=IMAGE"`` or a dict (python-on-whales)."""
    attest: Optional[_Specs]
    """python-on-whales' ``attest``: ``{"type": "sbom", ...}`` (or specs, like ``attests``)."""
    attests: Optional[_Specs]
    """``--attest`` specs: ``"type=provenance,mode=max"`` or dicts, one or a list."""
    annotations: Optional[Union[_StrOrList, Mapping[str, str]]]
    """``--annotation``: ``"[type:]key=value"`` entries, or a dict ``{key: value}``."""
    shm_size: Union[None, str, int]
    """``--shm-size`` of RUN steps: ``"128m"`` or bytes."""
    ulimits: Optional[_StrOrList]
    """``--ulimit`` entries: ``"nofile=1024:2048"``."""
    cgroup_parent: Optional[str]
    """``--cgroup-parent`` of RUN steps."""
