"""Fixtures for the cicd_agents tests: the real test environment.

The environment (Docker daemon with embedded BuildKit, registry, git server,
busybox base image) comes from ``scripts/testenv.sh up``; its variables are
read from the process environment or, failing that, from
``/var/lib/cicd-agents-testenv/env``. Without it every test FAILS (it is not
skipped): these tests are meant to run against the real thing.
"""

import json
import os
import shlex
import socket
import subprocess
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest

import cicd_agents

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = Path(os.environ.get("CICD_TESTENV_DIR", "/var/lib/cicd-agents-testenv")) / "env"
REQUIRED = [
    "CICD_TESTENV_DOCKER_ADDR",
    "CICD_TESTENV_REGISTRY",
    "CICD_TESTENV_BASE_IMAGE",
    "CICD_TESTENV_GIT_URL",
    "CICD_TESTENV_GIT_TOKEN",
    "CICD_TESTENV_GIT_ROOT",
]
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _read_env_file(path):
    values = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :]
        if "=" not in line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        parts = shlex.split(value) if value else [""]
        values[name.strip()] = parts[0] if parts else ""
    return values


class TestEnv:
    """The test environment's coordinates."""

    def __init__(self, values):
        self.docker_addr = values["CICD_TESTENV_DOCKER_ADDR"]
        self.registry = values["CICD_TESTENV_REGISTRY"]
        self.base_image = values["CICD_TESTENV_BASE_IMAGE"]
        self.git_url = values["CICD_TESTENV_GIT_URL"].rstrip("/")
        self.git_token = values["CICD_TESTENV_GIT_TOKEN"]
        self.git_root = Path(values["CICD_TESTENV_GIT_ROOT"])

    def unique(self, prefix):
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def registry_digest(self, repository, tag):
        """The digest the registry serves for repository:tag (Docker-Content-Digest)."""
        request = urllib.request.Request(
            f"http://{self.registry}/v2/{repository}/manifests/{tag}",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers["Docker-Content-Digest"]

    def registry_manifest(self, repository, tag):
        request = urllib.request.Request(
            f"http://{self.registry}/v2/{repository}/manifests/{tag}",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def new_repo(self, name):
        """Creates a bare repository on the git server; returns (url, local path)."""
        script = REPO_ROOT / "scripts" / "testenv.sh"
        if script.is_file():
            url = subprocess.run(
                ["bash", str(script), "new-repo", name], check=True, capture_output=True, text=True
            ).stdout.strip()
        else:
            bare = self.git_root / f"{name}.git"
            git("init", "-q", "--bare", "--initial-branch=main", str(bare))
            git("-C", str(bare), "config", "http.receivepack", "true")
            url = f"{self.git_url}/{name}.git"
        return url, self.git_root / f"{name}.git"


class Relay:
    """A relay to the Docker daemon's embedded BuildKit that stands for a ``buildkitd``.

    Every accepted connection dials the Docker socket, sends ``POST /grpc`` upgraded to
    h2c (what buildx sends) and then copies bytes both ways. It listens on the unix
    socket ``path``, or on a fresh loopback TCP port when ``path`` is None (``addr`` is
    then ``tcp://127.0.0.1:PORT``). ``cut()`` closes the relayed connections,
    ``black_hole()`` stops forwarding while keeping them open, ``close()`` stops
    listening too (new connections are refused).
    """

    def __init__(self, docker_sock, path=None):
        self.docker_sock = docker_sock
        self.black_holed = False
        self._sockets = []
        self._lock = threading.Lock()
        if path is None:
            self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._listener.bind(("127.0.0.1", 0))
            self.addr = "tcp://127.0.0.1:%d" % self._listener.getsockname()[1]
        else:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(str(path))
            self.addr = f"unix://{path}"
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        docker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            docker.connect(self.docker_sock)
            docker.sendall(
                b"POST /grpc HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n"
                b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = docker.recv(4096)
                if not chunk:
                    raise OSError("the Docker daemon closed the connection before upgrading")
                head += chunk
        except OSError:
            client.close()
            docker.close()
            return
        head, _, rest = head.partition(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head
        with self._lock:
            self._sockets += [client, docker]
        if rest:
            client.sendall(rest)
        threading.Thread(target=self._pump, args=(client, docker), daemon=True).start()
        self._pump(docker, client)

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.black_holed:
                    continue
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Closes every relayed connection (both sides) and keeps listening."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def black_hole(self):
        """Stops forwarding in both directions; every socket stays open."""
        self.black_holed = True

    def close(self):
        """Stops listening (a blocked accept() keeps a closed socket listening on Linux
        unless it is shut down first) and cuts every relayed connection."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self.cut()


def git(*args, cwd=None):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "pytest",
        "GIT_AUTHOR_EMAIL": "pytest@example.invalid",
        "GIT_COMMITTER_NAME": "pytest",
        "GIT_COMMITTER_EMAIL": "pytest@example.invalid",
        "GIT_TERMINAL_PROMPT": "0",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="session")
def testenv():
    values = _read_env_file(ENV_FILE)
    values.update({k: v for k, v in os.environ.items() if k.startswith("CICD_TESTENV_")})
    missing = [name for name in REQUIRED if not values.get(name)]
    if missing:
        pytest.fail(
            "the test environment is not set up (missing "
            + ", ".join(missing)
            + "); run `eval \"$(scripts/testenv.sh up)\"` first",
            pytrace=False,
        )
    return TestEnv(values)


@pytest.fixture(scope="session")
def client(testenv):
    return cicd_agents.Client(testenv.docker_addr)


@pytest.fixture
def make_context(tmp_path, testenv):
    """make_context(dockerfile_body, files={}) -> directory with a Dockerfile FROM the base image.

    ``{base}`` in the body is replaced by the base image.
    """

    def make(body, files=None, name="ctx"):
        directory = tmp_path / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(body.replace("{base}", testenv.base_image))
        for relative, content in (files or {}).items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        return directory

    return make


@pytest.fixture
def make_relay(testenv):
    """make_relay(path=None) -> a started ``Relay`` (TCP unless a unix socket path is given),
    closed after the test."""
    docker_sock = testenv.docker_addr.split("unix://", 1)[1]
    relays = []

    def make(path=None):
        relay = Relay(docker_sock, path)
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.close()


def processes_with(marker):
    """PIDs whose command line contains ``marker`` (the daemon runs on this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found
