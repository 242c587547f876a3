"""asyncio: build_async and friends; cancelling the task cancels the build."""

import asyncio
import inspect
import sys
import time
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


# ---- every *_async is a real coroutine: nothing starts until awaited


def _slow_build(client, make_context, marker, name="slow"):
    context = make_context(f"FROM {{base}}\nRUN sleep 60 && echo {marker}\n", name=name)
    return client.build_async(context, network="host", no_cache=True)


def _wait_for_process(marker, present, seconds):
    for _ in range(int(seconds * 10)):
        if bool(processes_with(marker)) == present:
            return True
        time.sleep(0.1)
    return False


def test_build_async_is_a_coroutine_that_starts_nothing_until_awaited(client, make_context):
    marker = f"cicd-py-unawaited-{uuid.uuid4().hex[:12]}"
    coroutine = _slow_build(client, make_context, marker)
    assert inspect.iscoroutine(coroutine) and asyncio.iscoroutine(coroutine)
    time.sleep(3)
    try:
        assert not processes_with(marker), "an un-awaited build_async started the build"
        assert not any(
            marker in " ".join(b.frontend_attrs.values()) for b in client.active_builds()
        )
    finally:
        coroutine.close()


def test_asyncio_run_of_build_async(client, make_context):
    context = make_context("FROM {base}\nRUN echo run > /run.txt\n")
    result = asyncio.run(client.build_async(context, network="host", outputs="type=cacheonly"))
    assert result.build_ref


@pytest.mark.parametrize("form", ["create_task", "gather", "wait_for", "taskgroup"])
def test_build_async_in_every_asyncio_form(client, make_context, form):
    context = make_context(f"FROM {{base}}\nRUN echo {form} > /form\n")

    async def main():
        coroutine = client.build_async(context, network="host", outputs="type=cacheonly")
        if form == "create_task":
            return await asyncio.create_task(coroutine)
        if form == "gather":
            return (await asyncio.gather(coroutine))[0]
        if form == "wait_for":
            return await asyncio.wait_for(coroutine, timeout=120)
        if sys.version_info < (3, 11):
            coroutine.close()
            return await client.build_async(context, network="host", outputs="type=cacheonly")
        async with asyncio.TaskGroup() as group:
            task = group.create_task(coroutine)
        return task.result()

    assert asyncio.run(main()).build_ref


def test_wait_for_timeout_cancels_the_build_on_the_daemon(client, make_context):
    marker = f"cicd-py-waitfor-{uuid.uuid4().hex[:12]}"

    async def main():
        coroutine = _slow_build(client, make_context, marker)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(coroutine, timeout=8)

    asyncio.run(main())
    assert _wait_for_process(marker, False, 15), "the RUN step kept running after wait_for timed out"


def test_every_async_method_returns_a_coroutine(client, testenv, tmp_path):
    pool = cicd_agents.BuilderPool([testenv.docker_addr])
    pipeline = cicd_agents.Pipeline.from_yaml(
        "source:\n  git: https://git.example.com/app.git\nbuild:\n  images: [app]\n"
    )
    calls = {
        "connect_async": lambda: cicd_agents.Client.connect_async(testenv.docker_addr),
        "info_async": client.info_async,
        "workers_async": client.workers_async,
        "active_builds_async": client.active_builds_async,
        "disk_usage_async": lambda: client.disk_usage_async("id==nothing-has-this-id"),
        "prune_async": lambda: client.prune_async(filters="id==nothing-has-this-id"),
        "pool.health_async": pool.health_async,
        "pool.client_for_async": lambda: pool.client_for_async("key"),
        "pool.build_async": lambda: pool.build_async(tmp_path),
        "pipeline.run_async": lambda: pipeline.run_async(client, dry_run=True),
    }
    for name, call in calls.items():
        coroutine = call()
        assert inspect.iscoroutine(coroutine), name
        coroutine.close()

    async def main():
        connected = await cicd_agents.Client.connect_async(testenv.docker_addr)
        assert (await connected.info_async()).version
        assert await connected.workers_async()
        assert isinstance(await connected.active_builds_async(), list)
        assert await connected.disk_usage_async("id==nothing-has-this-id") == []
        assert await connected.prune_async(filters="id==nothing-has-this-id") == []
        assert (await pool.health_async())[0].healthy
        assert (await pool.client_for_async("key"))[1] == pool.addresses[0]

    asyncio.run(main())
