"""Type stubs of cicd_agents (the native module cicd_agents._native, re-exported)."""

import os
from datetime import datetime, timedelta
from typing import (
    Any,
    Callable,
    Coroutine,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    final,
    overload,
)

from typing_extensions import Literal, Unpack

__version__: str

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

from . import k8s as k8s
from ._options import BuildOptions as BuildOptions

_Path = Union[str, "os.PathLike[str]"]
# A build context: a directory or URL, or bytes read as `docker buildx build -` reads
# stdin (a tar archive, plain or compressed, is the context; anything else is a
# Dockerfile built with an empty context).
_Context = Union[_Path, bytes]
_SpecValue = Union[str, bool, int, float, "os.PathLike[str]"]
_Spec = Union[str, Mapping[str, _SpecValue]]
_Specs = Union[_Spec, Sequence[_Spec]]
_StrOrList = Union[str, Sequence[str]]
_KeyValues = Union[Mapping[str, str], Sequence[str]]
_Secret = Union[str, Mapping[str, Union[str, bytes, "os.PathLike[str]"]]]
_Seconds = Union[int, float, timedelta]
_Edits = Union[Mapping[str, str], Iterable[Tuple[str, str]]]

_Event = Union["VertexEvent", "StatusEvent", "LogEvent", "WarningEvent"]
_ProgressArg = Union[None, str, Callable[[_Event], Any]]

# ---------------------------------------------------------------- errors

class Error(Exception):
    """Base class of every error raised by cicd_agents. The message is what the command line prints."""

    error_kind: Optional[str]
    """The library's error kind (``"invalid input"``, ``"connection"``, ``"remote"``,
    ``"build failed"``, ``"cancelled"``, ``"io"``, ``"internal"``) for errors of the BuildKit
    client; the class follows it. None for the others."""

class ConnectionError(Error):
    """The BuildKit daemon cannot be reached, or the connection broke while something was
    under way. Not the builtin ConnectionError."""

    address: Optional[str]
    during: Optional[str]
    """What was happening when the connection broke ("uploading the build context",
    "solving", "exporting/pushing", "reading progress", "calling Info", ...); None when the
    daemon could not be reached at all."""

class InvalidOption(Error):
    """An argument cannot be used (malformed spec, missing context, bad address, ...).

    ``option`` is the keyword argument at fault (``"platforms"``, ``"cache_to"``, ``"file"``,
    ``"context"``, ``"addr"``, ``"addresses"`` of a ``BuilderPool``); ``field`` (for build
    options) is the library's neutral name for it (``"platform"``) and ``value`` the value at
    fault (may be empty); ``flag`` (where set) is the command line's name for it (``"--addr"``,
    ``"--pool"``); ``reason`` says what is wrong.
    """

    option: str
    reason: str
    field: Optional[str]
    value: Optional[str]
    flag: Optional[str]

@final
class RegistryFailure:
    """Where a build failed talking to a registry (``BuildError.registry``)."""

    @property
    def registry(self) -> str:
        """The registry's ``host[:port]`` (never with credentials)."""
    @property
    def operation(self) -> str:
        """``push``, ``cache export``, ``cache import`` or ``pull``."""
    @property
    def status(self) -> Optional[int]:
        """The HTTP status the registry answered, or None (e.g. unreachable)."""
    @property
    def kind(self) -> str:
        """``auth``, ``server``, ``unreachable`` or ``other``."""
    @property
    def reason(self) -> str:
        """A short cause: ``401 Unauthorized``, ``connection refused``, ..."""

class BuildError(Error):
    """The build failed; ``str(err)`` is the command line's report.

    When it failed talking to a registry, ``registry`` says which, what for and how, and
    the report's first line names them (``pushing to registry HOST failed: 401 Unauthorized``).
    """

    message: str
    step: Optional[str]
    file: Optional[str]
    line: Optional[int]
    source_lines: List[str]
    log_tail: List[str]
    registry: Optional[RegistryFailure]
    exit_code: Optional[int]
    """The exit code of the failed step's process (``RUN exit 3`` gives 3), else None."""

class AuthError(Error):
    """Credentials were refused (daemon call, registry or git server)."""

class RegistryAuthError(BuildError, AuthError):
    """A registry refused the build's credentials (HTTP 401/403); ``registry`` is set."""

    registry: RegistryFailure

class Cancelled(Error):
    """The operation was cancelled."""

class ValuesError(Error):
    """A values file could not be edited; nothing was changed."""

    file: Optional[str]
    key: Optional[str]
    line: Optional[int]

class GitError(Error):
    """The git write-back failed. Server errors (5xx) and an unreachable server are retried
    with backoff before this is raised; ``attempts`` then says how many were made."""

    kind: str
    """``auth``, ``server``, ``unreachable``, ``not_found``, ``rejected`` or ``other``."""
    url: Optional[str]
    """The repository URL, without credentials."""
    operation: Optional[str]
    """``clone``, ``fetch``, ``ls-remote`` or ``push``."""
    status: Optional[int]
    """The HTTP status the git server answered, when known."""

class GitAuthError(GitError, AuthError):
    """The git server refused the token (HTTP 401/403)."""

class GitPushRejected(GitError):
    """The push was rejected (hook, protected branch, or the branch kept moving)."""

    url: str
    branch: str
    reason: str
    attempts: Optional[int]

class InvalidPipeline(Error):
    """A pipeline definition (or a parameter override) is invalid."""

    line: Optional[int]
    key: Optional[str]

class PoolError(Error):
    """A builder pool could not run the call. A build that ran on a pool daemon and failed
    raises the build's own class (``BuildError``, ...) with ``address`` and ``passed_over`` set."""

class PoolUnavailable(PoolError):
    """No daemon of a builder pool could be used."""

    key: str
    tried: List["Attempt"]

class K8sError(Error):
    """A Kubernetes manifest could not be rendered or read back (``cicd_agents.k8s``)."""

    index: Optional[int]

# ---------------------------------------------------------------- control API

@final
class BuildkitVersion:
    """A BuildKit release stamp."""

    @property
    def package(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def revision(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class DaemonInfo:
    """Which BuildKit the daemon is (``Client.info()``)."""

    @property
    def address(self) -> str: ...
    @property
    def version(self) -> str:
        """The version users should read, e.g. ``v0.13.2`` or ``v0.13.x``."""
    @property
    def version_source(self) -> str:
        """``"info"``, ``"worker"``, ``"docker-engine"`` or ``"unknown"``."""
    @property
    def reported(self) -> Optional[BuildkitVersion]: ...
    @property
    def docker_engine(self) -> Optional[str]: ...
    def version_display(self) -> str: ...
    def minor_version(self) -> Optional[Tuple[int, int]]: ...
    def at_least(self, major: int, minor: int) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class GcPolicy:
    """One garbage-collection rule of a worker."""

    @property
    def all(self) -> bool: ...
    @property
    def keep_duration_seconds(self) -> int: ...
    @property
    def reserved_space(self) -> int: ...
    @property
    def max_used_space(self) -> int: ...
    @property
    def min_free_space(self) -> int: ...
    @property
    def filters(self) -> List[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class ActiveBuild:
    """A build the daemon is running (``Client.active_builds()``)."""

    @property
    def build_ref(self) -> str: ...
    @property
    def frontend(self) -> str: ...
    @property
    def frontend_attrs(self) -> Dict[str, str]: ...
    @property
    def created_at(self) -> Optional[datetime]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class Worker:
    """One worker of the daemon."""

    @property
    def id(self) -> str: ...
    @property
    def platforms(self) -> List[str]: ...
    @property
    def labels(self) -> Dict[str, str]: ...
    @property
    def gc_policies(self) -> List[GcPolicy]: ...
    @property
    def buildkit_version(self) -> Optional[BuildkitVersion]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class UsageRecord:
    """One build cache record."""

    @property
    def id(self) -> str: ...
    @property
    def mutable(self) -> bool: ...
    @property
    def in_use(self) -> bool: ...
    @property
    def size(self) -> int: ...
    @property
    def parents(self) -> List[str]: ...
    @property
    def created_at(self) -> Optional[datetime]: ...
    @property
    def last_used_at(self) -> Optional[datetime]: ...
    @property
    def usage_count(self) -> int: ...
    @property
    def description(self) -> str: ...
    @property
    def record_type(self) -> str: ...
    @property
    def shared(self) -> bool: ...
    def to_dict(self) -> Dict[str, Any]: ...

# ---------------------------------------------------------------- progress

@final
class VertexEvent:
    """A build step started, finished, was cached or failed."""

    @property
    def kind(self) -> Literal["vertex"]:
        """Always ``"vertex"``: tests on ``kind`` narrow ``_Event`` to this class."""
    @property
    def digest(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> List[str]: ...
    @property
    def cached(self) -> bool: ...
    @property
    def started(self) -> Optional[datetime]: ...
    @property
    def completed(self) -> Optional[datetime]: ...
    @property
    def error(self) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class StatusEvent:
    """Progress of a counter within a step (bytes transferred, layers pushed)."""

    @property
    def kind(self) -> Literal["status"]:
        """Always ``"status"``: tests on ``kind`` narrow ``_Event`` to this class."""
    @property
    def id(self) -> str: ...
    @property
    def vertex(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def current(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def started(self) -> Optional[datetime]: ...
    @property
    def timestamp(self) -> Optional[datetime]: ...
    @property
    def completed(self) -> Optional[datetime]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class LogEvent:
    """Output a step printed."""

    @property
    def kind(self) -> Literal["log"]:
        """Always ``"log"``: tests on ``kind`` narrow ``_Event`` to this class."""
    @property
    def vertex(self) -> str: ...
    @property
    def stream(self) -> int:
        """1 for stdout, 2 for stderr."""
    @property
    def data(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    @property
    def timestamp(self) -> Optional[datetime]: ...
    def to_dict(self) -> Dict[str, Any]: ...

@final
class WarningEvent:
    """A warning about a step or the Dockerfile."""

    @property
    def kind(self) -> Literal["warning"]:
        """Always ``"warning"``: tests on ``kind`` narrow ``_Event`` to this class."""
    @property
    def vertex(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def short(self) -> str: ...
    @property
    def detail(self) -> List[str]: ...
    @property
    def url(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...

# ---------------------------------------------------------------- builds

@final
class BuildResult:
    """A finished build."""

    @property
    def build_ref(self) -> str: ...
    @property
    def digest(self) -> Optional[str]:
        """The image manifest (or index) digest, ``containerimage.digest``."""
    @property
    def config_digest(self) -> Optional[str]: ...
    @property
    def image_id(self) -> Optional[str]: ...
    @property
    def image_names(self) -> List[str]: ...
    @property
    def exporter_response(self) -> Dict[str, str]: ...
    @property
    def timings(self) -> Dict[str, float]:
        """Where the build's time went, measured by the client, in seconds:
        ``connect``, ``session_start``, ``context_walk``, ``context_transfer``,
        ``solve``, ``export`` and ``total``."""
    def metadata(self) -> Dict[str, Any]:
        """What ``docker buildx build --metadata-file`` writes."""
    def to_dict(self) -> Dict[str, Any]: ...

@final
class BuildStream(Iterator[_Event]):
    """A running build; iterate it for progress events, then read ``result``.

    A failed build raises its error from the iteration and from every ``wait()``;
    ``repr()`` says ``running``, ``done``, ``failed`` or ``cancelled``."""

    def __iter__(self) -> "BuildStream": ...
    def __next__(self) -> _Event: ...
    @property
    def result(self) -> Optional[BuildResult]: ...
    @property
    def done(self) -> bool: ...
    def wait(self) -> BuildResult: ...
    def cancel(self) -> None: ...
    def __enter__(self) -> "BuildStream": ...
    def __exit__(self, *args: Any) -> bool: ...

@final
class Client:
    """A connection to a BuildKit daemon. Blocking methods release the GIL; Ctrl-C cancels them."""

    def __new__(
        cls,
        addr: Optional[str] = None,
        *,
        tls_ca: Optional[_Path] = None,
        tls_cert: Optional[_Path] = None,
        tls_key: Optional[_Path] = None,
        tls_server_name: Optional[str] = None,
        connect_timeout: Optional[_Seconds] = None,
        keepalive: Optional[Tuple[_Seconds, _Seconds]] = None,
        tls_skip_verify: Optional[bool] = None,
    ) -> "Client": ...
    @staticmethod
    def connect_async(
        addr: Optional[str] = None,
        *,
        tls_ca: Optional[_Path] = None,
        tls_cert: Optional[_Path] = None,
        tls_key: Optional[_Path] = None,
        tls_server_name: Optional[str] = None,
        connect_timeout: Optional[_Seconds] = None,
        keepalive: Optional[Tuple[_Seconds, _Seconds]] = None,
        tls_skip_verify: Optional[bool] = None,
    ) -> Coroutine[Any, Any, "Client"]: ...
    @property
    def address(self) -> str: ...
    @property
    def buildx(self) -> "Client":
        """This client: python-on-whales' ``docker.buildx.build(...)`` runs unchanged on it."""
    def info(self) -> DaemonInfo: ...
    def info_async(self) -> Coroutine[Any, Any, DaemonInfo]: ...
    def workers(self) -> List[Worker]: ...
    def workers_async(self) -> Coroutine[Any, Any, List[Worker]]: ...
    def active_builds(self) -> List[ActiveBuild]: ...
    def active_builds_async(self) -> Coroutine[Any, Any, List[ActiveBuild]]: ...
    def disk_usage(self, filters: Optional[_StrOrList] = None) -> List[UsageRecord]: ...
    def disk_usage_async(self, filters: Optional[_StrOrList] = None) -> Coroutine[Any, Any, List[UsageRecord]]: ...
    def prune(
        self,
        all: bool = False,
        keep_duration: Optional[_Seconds] = None,
        keep_storage: Optional[int] = None,
        filters: Optional[_StrOrList] = None,
        *,
        max_used_space: Optional[int] = None,
        min_free_space: Optional[int] = None,
    ) -> List[UsageRecord]: ...
    def prune_async(
        self,
        all: bool = False,
        keep_duration: Optional[_Seconds] = None,
        keep_storage: Optional[int] = None,
        filters: Optional[_StrOrList] = None,
        *,
        max_used_space: Optional[int] = None,
        min_free_space: Optional[int] = None,
    ) -> Coroutine[Any, Any, List[UsageRecord]]: ...
    @overload
    def build(
        self,
        context: Optional[_Context] = None,
        *,
        stream_logs: Literal[False] = False,
        **options: Unpack[BuildOptions],
    ) -> BuildResult:
        """Runs a build and returns its result; ``options``: see ``BuildOptions``."""
    @overload
    def build(
        self,
        context: Optional[_Context] = None,
        *,
        stream_logs: Literal[True],
        **options: Unpack[BuildOptions],
    ) -> Iterator[str]:
        """python-on-whales' ``stream_logs=True``: the plain progress output's lines."""
    def build_async(
        self, context: Optional[_Context] = None, **options: Unpack[BuildOptions]
    ) -> Coroutine[Any, Any, BuildResult]:
        """``build()`` as a coroutine: nothing starts until it is awaited."""
    def build_stream(
        self, context: Optional[_Context] = None, **options: Unpack[BuildOptions]
    ) -> BuildStream: ...

# ---------------------------------------------------------------- builder pool

@final
class Attempt:
    """A daemon the pool passed over, and why."""

    @property
    def address(self) -> str: ...
    @property
    def reason(self) -> str: ...
    def to_dict(self) -> Dict[str, str]: ...

@final
class PooledBuild:
    """A build a BuilderPool ran: its result, the daemon that ran it and those passed over."""

    @property
    def result(self) -> BuildResult: ...
    @property
    def address(self) -> str: ...
    @property
    def passed_over(self) -> List[Attempt]: ...

@final
class EndpointHealth:
    """The health of one daemon of a pool."""

    @property
    def address(self) -> str: ...
    @property
    def healthy(self) -> bool: ...
    @property
    def workers(self) -> Optional[int]: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def latency(self) -> float: ...

def resolve_address(addr: Optional[str] = None) -> str:
    """The address Client(addr) would dial (BUILDKIT_HOST, DOCKER_HOST, sockets); nothing is dialled."""

def routing_key(context: _Path) -> str:
    """The repository URL without its #ref:subdir, or the context directory's absolute path."""

@final
class BuilderPool:
    """A client over several BuildKit daemons: sticky routing, health checks, failover."""

    def __new__(
        cls,
        addresses: Sequence[str],
        *,
        tls_ca: Optional[_Path] = None,
        tls_cert: Optional[_Path] = None,
        tls_key: Optional[_Path] = None,
        tls_server_name: Optional[str] = None,
        tls_skip_verify: bool = False,
        health_timeout: Optional[_Seconds] = None,
        connect_timeout: Optional[_Seconds] = None,
        retry_after: Optional[_Seconds] = None,
        refresh_interval: Optional[_Seconds] = None,
    ) -> "BuilderPool": ...
    @property
    def addresses(self) -> List[str]: ...
    @property
    def dns_addresses(self) -> List[str]: ...
    def discover(self) -> List[str]: ...
    def rank(self, key: str) -> List[str]: ...
    def candidates(self, key: str) -> List[str]: ...
    def health(self) -> List[EndpointHealth]: ...
    def health_async(self) -> Coroutine[Any, Any, List[EndpointHealth]]: ...
    def client_for(self, key: str) -> Tuple[Client, str]: ...
    def client_for_async(self, key: str) -> Coroutine[Any, Any, Tuple[Client, str]]: ...
    def build(
        self, context: Optional[_Context] = None, *, key: Optional[str] = None, **options: Unpack[BuildOptions]
    ) -> PooledBuild:
        """Runs a build on the daemon ``key`` (default ``routing_key(context)``) prefers."""
    def build_async(
        self, context: Optional[_Context] = None, *, key: Optional[str] = None, **options: Unpack[BuildOptions]
    ) -> Coroutine[Any, Any, PooledBuild]:
        """``build()`` as a coroutine: nothing starts until it is awaited."""

# ---------------------------------------------------------------- values files and git write-back

@final
class Change:
    """The outcome of one values edit."""

    @property
    def path(self) -> str: ...
    @property
    def document(self) -> int: ...
    @property
    def line(self) -> int: ...
    @property
    def old_value(self) -> str: ...
    @property
    def new_value(self) -> str: ...
    @property
    def old_style(self) -> str: ...
    @property
    def new_style(self) -> str: ...
    @property
    def changed(self) -> bool: ...

@final
class FileEdit:
    """The result of ``edit_values_file()``."""

    @property
    def changes(self) -> List[Change]: ...
    @property
    def changed(self) -> bool: ...

@final
class ValuesDocument:
    """A values file held as text, edited in place (format-preserving)."""

    def __new__(cls, text: str, origin: Optional[str] = None) -> "ValuesDocument": ...
    @property
    def text(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def document_count(self) -> int: ...
    def get(self, path: str, document: int = 0) -> str: ...
    def set(self, path: str, value: str, document: int = 0) -> Change: ...
    def set_all(self, edits: _Edits) -> List[Change]: ...

@final
class WriteBackOutcome:
    """The result of ``update_values()``."""

    @property
    def commit(self) -> Optional[str]: ...
    @property
    def parent(self) -> str: ...
    @property
    def branch(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def files(self) -> List[str]: ...
    @property
    def message(self) -> Optional[str]: ...
    @property
    def changed(self) -> bool: ...

def normalize_platform(platform: str) -> str:
    """Checks ``os/arch[/variant]`` and returns it normalised as buildx does (``linux/x86_64`` -> ``linux/amd64``, ``linux/armhf`` -> ``linux/arm/v7``, ``local`` -> this machine's platform); raises InvalidOption."""

def set_image(path: _Path, key: Union[str, _Edits], value: Optional[str] = None) -> bool:
    """Sets ``key`` to ``value`` (or several edits) in a values file, format-preserving; returns whether it changed."""

def validate_tag(tag: str) -> None:
    """Raises InvalidOption unless tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}."""

def parse_tag_ref(text: str) -> Tuple[str, Optional[str]]:
    """Splits "tag@sha256:..." into (tag, digest or None), validating both."""

def edit_values_file(path: _Path, edits: _Edits, *, name: Optional[str] = None) -> FileEdit:
    """Applies several edits to a values file, all or nothing."""

def update_values(
    url: str,
    branch: str,
    updates: Mapping[str, _Edits],
    *,
    author: Tuple[str, str],
    token: Optional[str] = None,
    token_username: Optional[str] = None,
    push_branch: Optional[str] = None,
    message: Optional[str] = None,
    image: Optional[str] = None,
    digest: Optional[str] = None,
    source_commit: Optional[str] = None,
    old_tag: Optional[str] = None,
    new_tag: Optional[str] = None,
    retry_timeout: Optional[_Seconds] = None,
    allow_insecure_http: bool = False,
    git_program: Optional[_Path] = None,
) -> WriteBackOutcome:
    """Edits values files in a git repository, commits and pushes; a push that lost a race is re-applied on the new tip until ``retry_timeout`` (default 2 minutes) has passed."""

# ---------------------------------------------------------------- pipelines

@final
class RunReport:
    """A pipeline run's report."""

    @property
    def pipeline(self) -> str: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def success(self) -> bool: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def parameters(self) -> Dict[str, str]: ...
    @property
    def digest(self) -> Optional[str]: ...
    @property
    def images(self) -> List[str]: ...
    @property
    def builder(self) -> Optional[str]: ...
    @property
    def passed_over(self) -> List[Tuple[str, str]]: ...
    @property
    def source_commit(self) -> Optional[str]: ...
    @property
    def chart_commit(self) -> Optional[str]: ...
    @property
    def diff(self) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...

_Overrides = Union[Mapping[str, str], Sequence[str]]

@final
class Pipeline:
    """A pipeline definition: build an image from a source and update a chart.

    A failed ``run()`` raises the error of its cause with the report as ``err.report``.
    """

    @staticmethod
    def from_file(path: _Path) -> "Pipeline": ...
    @staticmethod
    def from_yaml(text: str, origin: str = "<input>", *, base_dir: Optional[_Path] = None) -> "Pipeline": ...
    @staticmethod
    def from_dict(data: Mapping[str, Any], origin: str = "<dict>", *, base_dir: Optional[_Path] = None) -> "Pipeline": ...
    @property
    def origin(self) -> str: ...
    @property
    def parameters(self) -> Dict[str, str]: ...
    def resolve(self, overrides: Optional[_Overrides] = None) -> Dict[str, Any]: ...
    def run(
        self,
        client: Union[Client, "BuilderPool", str, None] = None,
        *,
        overrides: Optional[_Overrides] = None,
        dry_run: bool = False,
        progress: _ProgressArg = None,
        events: Optional[Callable[[Dict[str, Any]], Any]] = None,
        retry_timeout: Optional[_Seconds] = None,
        allow_insecure_http: bool = False,
    ) -> RunReport: ...
    def run_async(
        self,
        client: Union[Client, "BuilderPool", str, None] = None,
        *,
        overrides: Optional[_Overrides] = None,
        dry_run: bool = False,
        progress: _ProgressArg = None,
        events: Optional[Callable[[Dict[str, Any]], Any]] = None,
        retry_timeout: Optional[_Seconds] = None,
        allow_insecure_http: bool = False,
    ) -> Coroutine[Any, Any, RunReport]: ...
