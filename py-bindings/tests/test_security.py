"""Security: TLS verification and its explicit opt-out, and credentials that
never show up in errors or reprs."""

import os
import socket
import ssl
import subprocess
import threading
import uuid
import warnings
from pathlib import Path

import pytest

import cicd_agents

ENV_FILE = Path(os.environ.get("CICD_TESTENV_DIR", "/var/lib/cicd-agents-testenv")) / "env"


def env_value(name):
    if os.environ.get(name):
        return os.environ[name]
    for line in ENV_FILE.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip().removeprefix("export ").strip() == name:
            return value.strip().strip("'\"")
    pytest.fail(f"{name} is not set; run scripts/testenv.sh up", pytrace=False)


def _pump(source, target):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class TlsRelay:
    """A TLS endpoint with a self-signed certificate that forwards each
    connection into the Docker daemon's BuildKit (/grpc upgrade)."""

    def __init__(self, tmp_path, docker_sock):
        # A CA and a server certificate it signs, for localhost and 127.0.0.1.
        self.ca = tmp_path / "ca.pem"
        self.cert = tmp_path / "cert.pem"
        key = tmp_path / "key.pem"
        ext = tmp_path / "server.ext"
        ext.write_text(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for command in (
            ["openssl", "req", "-x509", *ec, "-keyout", str(tmp_path / "ca.key"), "-out", str(self.ca),
             "-days", "1", "-subj", "/CN=pytest CA"],
            ["openssl", "req", *ec, "-keyout", str(key), "-out", str(tmp_path / "server.csr"), "-subj", "/CN=localhost"],
            ["openssl", "x509", "-req", "-in", str(tmp_path / "server.csr"), "-CA", str(self.ca),
             "-CAkey", str(tmp_path / "ca.key"), "-CAcreateserial", "-out", str(self.cert), "-days", "1",
             "-extfile", str(ext)],
        ):
            subprocess.run(command, check=True, capture_output=True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.cert, key)
        self.context.set_alpn_protocols(["h2"])
        self.docker_sock = docker_sock
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.addr = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        daemon = socket.socket(socket.AF_UNIX)
        daemon.connect(self.docker_sock)
        daemon.sendall(b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = daemon.recv(1)
            if not chunk:
                client.close()
                return
            head += chunk
        threading.Thread(target=_pump, args=(daemon, client), daemon=True).start()
        _pump(client, daemon)

    def close(self):
        self.listener.close()


@pytest.fixture
def tls_relay(tmp_path, testenv):
    sock = testenv.docker_addr.removeprefix("docker://").removeprefix("unix://")
    relay = TlsRelay(tmp_path, sock)
    yield relay
    relay.close()


def test_the_daemon_certificate_is_verified_by_default(tls_relay):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verification on: no warning at all
        with pytest.raises(cicd_agents.Error) as caught:
            cicd_agents.Client(tls_relay.addr, tls_ca=tls_relay.ca, tls_server_name="not-the-daemon.example")
    message = str(caught.value)
    assert "certificate could not be verified" in message, message
    assert "127.0.0.1" in message and "not-the-daemon.example" in message, message
    # The right CA and name: connects without any warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = cicd_agents.Client(tls_relay.addr, tls_ca=tls_relay.ca)
        assert client.info().version


def test_tls_skip_verify_warns_and_connects(tls_relay):
    with pytest.warns(RuntimeWarning, match="NOT verified"):
        client = cicd_agents.Client(tls_relay.addr, tls_skip_verify=True, tls_server_name="not-the-daemon.example")
    assert client.workers()


@pytest.mark.asyncio
async def test_tls_skip_verify_warns_in_connect_async_too(tls_relay):
    with pytest.warns(RuntimeWarning, match="NOT verified"):
        pending = cicd_agents.Client.connect_async(tls_relay.addr, tls_skip_verify=True)
    client = await pending
    assert client.address == tls_relay.addr


def test_credentials_never_appear_in_errors_or_reprs(client, make_context, testenv):
    marker = uuid.uuid4().hex[:10]
    registry = env_value("CICD_TESTENV_AUTH_REGISTRY")
    user = env_value("CICD_TESTENV_AUTH_USER")
    wrong_password = f"wrong-password-{marker}"
    build_secret = f"py-build-secret-{marker}"
    secrets = [wrong_password, build_secret, env_value("CICD_TESTENV_AUTH_PASSWORD"), testenv.git_token]

    def check(text, what):
        for value in secrets:
            assert value not in text, f"{what} shows a secret"

    context = make_context(f"FROM {{base}}\nRUN echo {marker} > /m\n")
    with pytest.raises(cicd_agents.BuildError) as caught:
        client.build(context, tags=[f"{registry}/py/{marker}:1"], push=True, network="host",
                     registry_auth={registry: (user, wrong_password)})
    check(str(caught.value) + repr(caught.value) + repr(caught.value.args), "a failed push")

    failing = make_context(
        f"FROM {{base}}\nRUN --mount=type=secret,id=token test \"$(cat /run/secrets/token)\" = nope-{marker}\n",
        name="failing",
    )
    with pytest.raises(cicd_agents.BuildError) as caught:
        client.build(failing, network="host", secrets=[{"id": "token", "value": build_secret}],
                     git_auth_tokens={"127.0.0.1": testenv.git_token})
    check(str(caught.value) + repr(caught.value) + repr(caught.value.args), "a failed secret use")
    check(repr(client), "repr(Client)")


def test_a_pipelines_pool_uses_its_pool_tls(tls_relay, testenv, tmp_path):
    unique = testenv.unique("py-pool-tls")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {testenv.base_image}\nRUN echo {unique} > /id\n")
    build = {"images": [f"{testenv.registry}/pytest/{unique}"], "network": "host", "pool": [tls_relay.addr]}
    definition = {"name": "py-pool-tls", "source": {"local": ".", "context": "ctx"}, "build": build}
    # Without TLS the daemon cannot be reached.
    plain = cicd_agents.Pipeline.from_dict(definition, base_dir=tmp_path)
    with pytest.raises(cicd_agents.PoolUnavailable):
        plain.run(overrides={"image-tag": "plain"})
    # `ca` relative to the definition's directory, as every path in it.
    assert tls_relay.ca.parent == tmp_path
    build["pool-tls"] = {"ca": tls_relay.ca.name}
    pipeline = cicd_agents.Pipeline.from_dict(definition, base_dir=tmp_path)
    assert pipeline.resolve()["build"]["pool"]["tls"]["ca_cert"] == str(tls_relay.ca)
    report = pipeline.run(overrides={"image-tag": "tls"})
    assert report.success and report.builder == tls_relay.addr, report.to_json()
    # A bad value is refused at its line.
    build["pool-tls"] = {"server-name": "not a name"}
    with pytest.raises(cicd_agents.InvalidPipeline) as caught:
        cicd_agents.Pipeline.from_dict(definition).resolve()
    assert caught.value.key == "build.pool-tls.server-name", caught.value
