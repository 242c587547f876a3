"""Faults between the client and the daemon: a connection cut mid-build and a
black-holed connection raise cicd_agents.ConnectionError with ``during`` naming
the stage, and ``Client(keepalive=...)`` bounds how long a silent connection
can hold a build.

A small relay in front of the Docker daemon's BuildKit (``POST /grpc`` upgraded
to h2c, then bytes copied both ways) stands for a ``buildkitd`` on a unix
socket; it can cut its connections or stop forwarding while keeping them open.
"""

import socket
import threading
import time
import uuid

import pytest

import cicd_agents


@pytest.fixture
def relay(make_relay, tmp_path):
    return make_relay(tmp_path / "buildkitd.sock")


def _sleeping_context(make_context):
    marker = f"cicd-py-fault-{uuid.uuid4().hex[:12]}"
    return make_context(f"FROM {{base}}\nRUN echo {marker} && sleep 60\n")


def _when_run_starts(action):
    def on_event(event):
        if event.kind == "vertex" and "sleep 60" in event.name and event.started:
            action()

    return on_event


def test_cut_mid_build_raises_connection_error_naming_the_stage(relay, make_context):
    client = cicd_agents.Client(relay.addr)
    context = _sleeping_context(make_context)
    with pytest.raises(cicd_agents.ConnectionError) as caught:
        client.build(context, network="host", progress=_when_run_starts(relay.cut))
    err = caught.value
    assert err.during == "solving", str(err)
    assert err.address == relay.addr
    assert "solving" in str(err) and relay.addr in str(err)
    # The client dials again by itself.
    assert client.info().version is not None


def test_black_holed_connection_fails_within_the_keepalive(relay, make_context):
    client = cicd_agents.Client(relay.addr, keepalive=(1, 2))
    context = _sleeping_context(make_context)
    outcome = {}

    def run():
        try:
            client.build(context, network="host", progress=_when_run_starts(relay.black_hole))
            outcome["result"] = "built"
        except Exception as err:  # noqa: BLE001 - the test inspects it
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    # The RUN step sleeps 60 s; only the 1 s + 2 s keepalive can end the build sooner.
    worker.join(40)
    assert not worker.is_alive(), "the black-holed build hung past 40 s with a 1 s + 2 s keepalive"
    err = outcome.get("error")
    assert isinstance(err, cicd_agents.ConnectionError), outcome
    assert err.during == "solving", str(err)
    assert "keep-alive" in str(err) or "keepalive" in str(err), str(err)


def test_connection_error_when_unreachable_has_no_stage(tmp_path):
    with pytest.raises(cicd_agents.ConnectionError) as caught:
        cicd_agents.Client(f"unix://{tmp_path}/nothing.sock", connect_timeout=2)
    assert caught.value.during is None


@pytest.mark.parametrize("value", [(0.01, 1), (1, 0), "15s", (1,)])
def test_bad_keepalive_is_an_invalid_option(testenv, value):
    with pytest.raises((cicd_agents.InvalidOption, TypeError)) as caught:
        cicd_agents.Client(testenv.docker_addr, keepalive=value)
    assert "keepalive" in str(caught.value)


def _ours(client, marker):
    return [b for b in client.active_builds() if b.frontend_attrs.get("label:marker") == marker]


def test_active_builds_shows_a_running_build_until_it_is_cancelled(client, make_context):
    marker = f"cicd-py-active-{uuid.uuid4().hex[:12]}"
    context = make_context(f"FROM {{base}}\nRUN echo {marker} && sleep 60\n")
    found = []
    with client.build_stream(context, network="host", labels={"marker": marker}) as stream:
        for event in stream:
            if event.kind == "vertex" and "sleep 60" in event.name and event.started:
                for _ in range(100):
                    found = _ours(client, marker)
                    if found:
                        break
                    time.sleep(0.2)
                stream.cancel()
                break
    assert found, "the running build was not among the daemon's active builds"
    assert found[0].frontend == "dockerfile.v0"
    assert found[0].build_ref
    # Cancelled: the daemon stops running it.
    deadline = time.monotonic() + 60
    while _ours(client, marker):
        assert time.monotonic() < deadline, "the cancelled build is still among the daemon's active builds"
        time.sleep(0.5)


def test_a_silent_daemon_fails_within_the_connect_timeout(tmp_path):
    """A listener that accepts and never answers: ``connect_timeout`` covers the
    daemon's first answer, so the client gives up after it, not after 25 s and more."""
    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)
    held = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(cicd_agents.ConnectionError) as caught:
            cicd_agents.Client(f"unix://{path}", connect_timeout=2).info()
    finally:
        listener.close()
    took = time.monotonic() - started
    assert took < 5, f"gave up after {took:.1f} s with connect_timeout=2"
    assert "no answer within 2s" in str(caught.value), str(caught.value)


def test_the_docker_socket_as_unix_says_to_use_docker(testenv):
    """The Docker API answers HTTP/1.1: the error says so and names the docker:// address."""
    address = testenv.docker_addr.removeprefix("docker://")
    assert address.startswith("unix://"), testenv.docker_addr
    with pytest.raises(cicd_agents.ConnectionError) as caught:
        cicd_agents.Client(address, connect_timeout=2).info()
    assert "HTTP/1.1" in str(caught.value), str(caught.value)
    assert f"docker://{address}" in str(caught.value), str(caught.value)
