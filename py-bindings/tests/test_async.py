"""asyncio: build_async and friends; cancelling the task cancels the build."""

import asyncio
import uuid

import pytest

import cicd_agents

from conftest import processes_with


@pytest.mark.asyncio
async def test_build_async_pushes(testenv, make_context):
    client = await cicd_agents.Client.connect_async(testenv.docker_addr)
    info = await client.info_async()
    assert info.version
    assert await client.workers_async()
    context = make_context("FROM {base}\nRUN echo async > /async\n")
    repository = f"pytest/async-{testenv.unique('a')}"
    events = []
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    tick_task = asyncio.ensure_future(ticker())
    try:
        result = await client.build_async(
            context,
            network="host",
            no_cache=True,
            tags=f"{testenv.registry}/{repository}:async",
            push=True,
            progress=events.append,
        )
    finally:
        tick_task.cancel()
    assert result.digest == testenv.registry_digest(repository, "async")
    assert any(e.kind == "vertex" for e in events)
    assert ticks > 0, "the event loop was blocked during the build"


@pytest.mark.asyncio
async def test_build_async_failure_and_bad_input(client, make_context):
    context = make_context("FROM {base}\nRUN exit 3\n")
    with pytest.raises(cicd_agents.BuildError) as caught:
        await client.build_async(context, network="host", no_cache=True)
    assert caught.value.line == 2
    with pytest.raises(cicd_agents.InvalidOption):
        await client.build_async(context, outputs="type=floppy")


@pytest.mark.asyncio
async def test_cancelling_the_task_cancels_the_build(client, make_context):
    marker = f"cicd-py-async-{uuid.uuid4().hex[:12]}"
    context = make_context(f"FROM {{base}}\nRUN sleep 60 && echo {marker}\n")
    task = asyncio.ensure_future(client.build_async(context, network="host", no_cache=True))
    for _ in range(300):
        if processes_with(marker):
            break
        await asyncio.sleep(0.1)
    running = bool(processes_with(marker))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if running:
        for _ in range(150):
            if not processes_with(marker):
                break
            await asyncio.sleep(0.1)
        assert not processes_with(marker), "the RUN step kept running after the task was cancelled"
