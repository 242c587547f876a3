"""Ctrl-C (KeyboardInterrupt) during a blocking build cancels it on the daemon."""

import _thread
import threading
import time
import uuid

import pytest

import cicd_agents

from conftest import processes_with


def test_keyboard_interrupt_cancels_a_long_build(client, make_context):
    marker = f"cicd-py-cancel-{uuid.uuid4().hex[:12]}"
    context = make_context(f"FROM {{base}}\nRUN sleep 60 && echo {marker}\n")

    step_started = threading.Event()
    in_build = threading.Event()
    seen_running = []

    def on_event(event):
        if event.kind == "vertex" and "sleep 60" in event.name and event.started:
            step_started.set()

    def interrupt():
        if not step_started.wait(60):
            return
        # Wait until the step's process runs on the daemon (it is on this machine),
        # so that the cancellation of a running command is what is tested.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not processes_with(marker):
            time.sleep(0.1)
        seen_running.extend(processes_with(marker))
        if in_build.is_set():
            _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    in_build.set()
    with pytest.raises(KeyboardInterrupt):
        try:
            client.build(context, network="host", no_cache=True, progress=on_event)
        finally:
            in_build.clear()
    interrupted_after = time.monotonic() - started
    assert step_started.is_set(), "the RUN step never started"
    assert interrupted_after < 40, f"build() returned only after {interrupted_after:.1f}s"

    # The daemon stopped the step: its process is gone well before `sleep 60` ends.
    if seen_running:
        deadline = time.monotonic() + 15
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_with(marker), "the RUN step kept running after the interrupt"

    # The client and the daemon are fine afterwards.
    fresh = make_context("FROM {base}\nRUN echo after-cancel\n", name="fresh")
    logs = []
    client.build(fresh, network="host", no_cache=True, progress=lambda e: logs.append(e) if e.kind == "log" else None)
    assert any("after-cancel" in log.text for log in logs)


def test_interrupt_returns_promptly(client, make_context):
    """The interrupt is noticed within a few hundred milliseconds of arriving."""
    context = make_context("FROM {base}\nRUN sleep 45\n")
    step_started = threading.Event()
    interrupted_at = []

    def on_event(event):
        if event.kind == "vertex" and "sleep 45" in event.name and event.started:
            step_started.set()

    def interrupt():
        if step_started.wait(60):
            time.sleep(0.5)
            interrupted_at.append(time.monotonic())
            _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        client.build(context, network="host", no_cache=True, progress=on_event)
    assert interrupted_at
    assert time.monotonic() - interrupted_at[0] < 6
    assert isinstance(client.info(), cicd_agents.DaemonInfo)
