"""Progress: callables, build_stream, stderr renderers."""

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading

import pytest

import cicd_agents


def test_callable_receives_typed_events(client, make_context, testenv):
    context = make_context("FROM {base}\nRUN echo progress-line-$RANDOM\n")
    events = []
    threads = set()

    def on_event(event):
        events.append(event)
        threads.add(threading.get_ident())

    client.build(context, network="host", no_cache=True, progress=on_event)
    kinds = {event.kind for event in events}
    assert {"vertex", "log"} <= kinds, kinds
    vertexes = [e for e in events if isinstance(e, cicd_agents.VertexEvent)]
    run = [v for v in vertexes if "RUN echo progress-line" in v.name]
    assert run and any(v.completed is not None for v in run)
    assert all(v.error is None for v in run)
    logs = [e for e in events if isinstance(e, cicd_agents.LogEvent)]
    assert any("progress-line-" in log.text for log in logs)
    assert all(isinstance(log.data, bytes) and log.stream in (1, 2) for log in logs)
    assert all(log.vertex for log in logs)
    as_dict = run[0].to_dict()
    assert as_dict["kind"] == "vertex" and as_dict["name"] == run[0].name
    json.dumps([e.to_dict() for e in events])  # JSON-compatible
    assert threading.get_ident() not in threads  # called from the runtime, not this thread


def test_callback_that_raises_cancels_the_build(client, make_context):
    context = make_context("FROM {base}\nRUN sleep 30\n")

    class Stop(Exception):
        pass

    def on_event(event):
        if event.kind == "vertex" and "sleep" in event.name and event.started:
            raise Stop("enough")

    with pytest.raises(Stop):
        client.build(context, network="host", no_cache=True, progress=on_event)


def test_build_stream_yields_events_then_the_result(client, make_context, testenv):
    context = make_context("FROM {base}\nRUN echo streamed-$RANDOM\n")
    repository = f"pytest/stream-{testenv.unique('s')}"
    stream = client.build_stream(
        context, network="host", no_cache=True, tags=f"{testenv.registry}/{repository}:1", push=True
    )
    assert stream.result is None
    events = list(stream)
    assert stream.done
    assert any(isinstance(e, cicd_agents.VertexEvent) for e in events)
    assert any(isinstance(e, cicd_agents.LogEvent) and "streamed-" in e.text for e in events)
    result = stream.result
    assert isinstance(result, cicd_agents.BuildResult)
    assert result.digest == testenv.registry_digest(repository, "1")
    assert stream.wait().digest == result.digest
    assert list(stream) == []


def test_build_stream_raises_the_build_error(client, make_context):
    context = make_context("FROM {base}\nRUN exit 3\n")
    seen = []
    with pytest.raises(cicd_agents.BuildError) as caught:
        for event in client.build_stream(context, network="host", no_cache=True):
            seen.append(event)
    assert caught.value.line == 2
    assert any(e.kind == "vertex" and e.error for e in seen)


def test_build_stream_cancel(client, make_context):
    context = make_context("FROM {base}\nRUN sleep 30\n")
    with client.build_stream(context, network="host", no_cache=True) as stream:
        for event in stream:
            if event.kind == "vertex" and "sleep" in event.name and event.started:
                stream.cancel()
                break
    assert stream.done
    assert stream.result is None
    with pytest.raises(cicd_agents.Cancelled):
        stream.wait()


@pytest.mark.parametrize("mode", ["plain", "rawjson", "quiet"])
def test_progress_modes_render_to_stderr(client, make_context, capfd, mode):
    context = make_context(f"FROM {{base}}\nRUN echo rendered-{mode}\n")
    client.build(context, network="host", no_cache=True, progress=mode)
    err = capfd.readouterr().err
    if mode == "quiet":
        assert f"rendered-{mode}" not in err
    elif mode == "rawjson":
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert lines and any(update.get("vertexes") for update in lines)
    else:
        assert f"rendered-{mode}" in err
        assert "RUN echo rendered-plain" in err


# Builds with ``progress="tty"`` in a child process whose stderr is what the test gives it.
_TTY_BUILD = """
import sys, cicd_agents
client = cicd_agents.Client(sys.argv[1])
try:
    client.build(sys.argv[2], progress="tty", network="host", no_cache=True)
except cicd_agents.InvalidOption as err:
    print("refused", err.option, err.value, "|", err, flush=True)
    sys.exit(3)
print("built", flush=True)
"""


def _tty_build(testenv, context, stderr):
    return subprocess.Popen(
        [sys.executable, "-c", _TTY_BUILD, testenv.docker_addr, str(context)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, "NO_COLOR": "1"},
        text=True,
    )


def test_tty_progress_without_a_terminal_is_refused_before_the_build(testenv, make_context):
    # As buildx ("failed to get console: provided file is not a console") and the command line.
    context = make_context("FROM {base}\nRUN echo never-built\n")
    child = _tty_build(testenv, context, subprocess.PIPE)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 3, (out, err)
    assert out.startswith("refused progress tty |"), out
    assert "not a terminal" in out and "--" not in out, out
    assert "never-built" not in err


def test_tty_progress_names_the_builder_as_the_command_line_does(testenv, make_context):
    context = make_context("FROM {base}\nRUN echo tty-view\n")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    chunks = []

    def pump():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        child = _tty_build(testenv, context, slave)
        os.close(slave)
        out, _ = child.communicate(timeout=300)
        reader.join(timeout=30)
    finally:
        os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert child.returncode == 0 and out.strip() == "built", (out, text)
    # The address the command line names: the connected client's, as ``Client.address`` says.
    address = cicd_agents.Client(testenv.docker_addr).address
    headers = [line for line in text.splitlines() if "[+] Building" in line]
    assert headers, text
    assert all(address in line for line in headers), (address, headers)
    assert "FINISHED" in headers[-1], headers
