"""Pipelines end to end: build from git, push with cache, update the chart, commit and push."""

import pytest

import cicd_agents

from conftest import git

CHART_VALUES = """\
# Chart values.
image:
  repository: example/app   # set by the pipeline
  tag: "0.1.0"
  digest: ""
replicas: 1
"""


def _seed(testenv, tmp_path, name, files):
    url, bare = testenv.new_repo(name)
    work = tmp_path / f"{name}-seed"
    for relative, content in files.items():
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git("init", "-q", "--initial-branch=main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "seed", cwd=work)
    git("push", "-q", str(bare), "HEAD:main", cwd=work)
    return url, bare


@pytest.fixture
def repos(testenv, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_CICD_GIT_TOKEN", testenv.git_token)
    prefix = testenv.unique("py-pl")
    app_url, app_bare = _seed(
        testenv,
        tmp_path,
        f"{prefix}-app",
        {
            "svc/Dockerfile": "ARG BASE_IMAGE\nFROM $BASE_IMAGE\nRUN echo built > /built.txt\nCOPY app.txt /app.txt\n",
            "svc/app.txt": f"app {prefix}\n",
        },
    )
    chart_url, chart_bare = _seed(testenv, tmp_path, f"{prefix}-chart", {"charts/app/values.yaml": CHART_VALUES})
    return {
        "app_url": app_url,
        "app_bare": app_bare,
        "chart_url": chart_url,
        "chart_bare": chart_bare,
        "image_repo": f"pytest/{prefix}",
    }


def _definition(testenv, repos):
    return {
        "name": "py-e2e",
        "parameters": {"registry": testenv.registry},
        "source": {"git": repos["app_url"], "context": "svc", "token-env": "PYTEST_CICD_GIT_TOKEN"},
        "build": {
            "images": ["${registry}/" + repos["image_repo"]],
            "cache": "${registry}/" + repos["image_repo"] + ":buildcache",
            "network": "host",
            "build-args": {"BASE_IMAGE": testenv.base_image},
        },
        "chart": {
            "repo": repos["chart_url"],
            "token-env": "PYTEST_CICD_GIT_TOKEN",
            "author": {"name": "py tests", "email": "py@cicd-agents.invalid"},
            "message": "deploy {image}:{new_tag}",
            "values": [
                {
                    "file": "charts/app/values.yaml",
                    "images": [{"repository": "image.repository", "tag": "image.tag", "digest": "image.digest"}],
                }
            ],
        },
    }


def test_pipeline_run_end_to_end(client, testenv, repos):
    pipeline = cicd_agents.Pipeline.from_dict(_definition(testenv, repos))
    assert pipeline.parameters["registry"] == testenv.registry
    assert pipeline.parameters["image-tag"] == "latest"

    events = []
    report = pipeline.run(client, overrides={"image-tag": "1.10"}, events=events.append)
    assert report.success, report.to_json()
    assert report.digest == testenv.registry_digest(repos["image_repo"], "1.10")
    testenv.registry_manifest(repos["image_repo"], "buildcache")  # the cache was exported
    assert report.source_commit == git("--git-dir", str(repos["app_bare"]), "rev-parse", "main").strip()
    assert report.chart_commit == git("--git-dir", str(repos["chart_bare"]), "rev-parse", "main").strip()
    values = git("--git-dir", str(repos["chart_bare"]), "show", "main:charts/app/values.yaml")
    assert values == (
        CHART_VALUES.replace("example/app ", f"{testenv.registry}/{repos['image_repo']} ")
        .replace('"0.1.0"', '"1.10"')
        .replace('digest: ""', f'digest: "{report.digest}"')
    )
    subject = git("--git-dir", str(repos["chart_bare"]), "log", "-1", "--format=%s", "main").strip()
    assert subject == f"deploy {testenv.registry}/{repos['image_repo']}:1.10"

    kinds = [e["event"] for e in events]
    assert kinds[0] == "run-started"
    assert "image-built" in kinds and "step-finished" in kinds
    assert report.to_dict()["success"] is True
    assert "1.10" in str(report)

    # The same run again changes nothing in the chart.
    again = pipeline.run(client, overrides=["image-tag=1.10"])
    assert again.success and again.chart_commit is None


def test_pipeline_dry_run_and_file(testenv, repos, tmp_path):
    import json

    path = tmp_path / "pipeline.json.yaml"
    path.write_text(json.dumps(_definition(testenv, repos), indent=2))
    pipeline = cicd_agents.Pipeline.from_file(path)
    assert pipeline.origin == str(path)
    report = pipeline.run(dry_run=True, overrides={"image-tag": "2.0.0"})
    assert report.dry_run and report.success
    assert report.digest is None and report.chart_commit is None
    assert '+  tag: "2.0.0"' in report.diff
    resolved = pipeline.resolve({"image-tag": "2.0.0"})
    assert resolved["build"]["images"] == [f"{testenv.registry}/{repos['image_repo']}:2.0.0"]


def test_invalid_pipeline_definitions():
    text = "source:\n  git: https://git.example.com/app.git\nbuild:\n  imgaes: [app]\n"
    with pytest.raises(cicd_agents.InvalidPipeline) as caught:
        cicd_agents.Pipeline.from_yaml(text, "pipeline.yaml")
    assert str(caught.value).startswith("pipeline.yaml:4:3: unknown key `build.imgaes`")
    assert caught.value.line == 4
    assert caught.value.key == "build.imgaes"
    ok = cicd_agents.Pipeline.from_yaml("source:\n  git: https://git.example.com/app.git\nbuild:\n  images: [app]\n")
    with pytest.raises(cicd_agents.InvalidPipeline):
        ok.resolve({"no-such-parameter": "1"})
    with pytest.raises(cicd_agents.InvalidPipeline):
        ok.run(dry_run=True, overrides=["image-tag"])
    with pytest.raises(cicd_agents.InvalidPipeline):
        cicd_agents.Pipeline.from_file("/does/not/exist.yaml")
    with pytest.raises(TypeError):
        cicd_agents.Pipeline.from_dict(["not", "a", "dict"])


def test_failed_build_raises_with_the_report(client, testenv, repos):
    definition = _definition(testenv, repos)
    definition["build"]["build-args"]["BASE_IMAGE"] = f"{testenv.registry}/pytest/does-not-exist:1"
    pipeline = cicd_agents.Pipeline.from_dict(definition)
    with pytest.raises(cicd_agents.BuildError) as caught:
        pipeline.run(client)
    # The failing step and its Dockerfile line survive the pipeline layer.
    assert caught.value.line == 2, str(caught.value)
    assert caught.value.file == "Dockerfile"
    report = caught.value.report
    assert isinstance(report, cicd_agents.RunReport)
    assert not report.success and report.error
    # A failed build never touches the chart.
    values = git("--git-dir", str(repos["chart_bare"]), "show", "main:charts/app/values.yaml")
    assert values == CHART_VALUES


def _pool_pipeline(testenv, tmp_path, pool=None):
    """A pipeline building a local context (``build.pool`` set when ``pool`` is given)."""
    unique = testenv.unique("py-pl-pool")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {testenv.base_image}\nRUN echo {unique} > /id\n")
    build = {"images": [f"{testenv.registry}/pytest/{unique}"], "network": "host", "push": True}
    if pool is not None:
        build["pool"] = pool
    definition = {"name": "py-pool", "source": {"local": str(tmp_path), "context": "ctx"}, "build": build}
    return cicd_agents.Pipeline.from_dict(definition), context, unique


def test_run_on_the_definitions_pool_fails_over_past_a_stopped_daemon(testenv, tmp_path, make_relay):
    relays = [make_relay() for _ in range(3)]
    addresses = [r.addr for r in relays]
    pipeline, context, unique = _pool_pipeline(testenv, tmp_path, pool=addresses)
    # The daemon the project's routing key prefers is the one that is down.
    preferred = cicd_agents.BuilderPool(addresses).rank(cicd_agents.routing_key(context))[0]
    relays[addresses.index(preferred)].close()

    report = pipeline.run(overrides={"image-tag": "pool"}, progress=lambda event: None)
    assert report.success, report.to_json()
    assert report.builder in addresses and report.builder != preferred
    assert [address for address, _ in report.passed_over] == [preferred]
    assert all(reason for _, reason in report.passed_over)
    assert report.digest == testenv.registry_digest(f"pytest/{unique}", "pool")
    assert report.to_dict()["build"]["builder"] == report.builder


def test_run_on_a_builder_pool_given_as_client(testenv, tmp_path, make_relay):
    relays = [make_relay() for _ in range(2)]
    pool = cicd_agents.BuilderPool([r.addr for r in relays], connect_timeout=2, retry_after=60)
    # The definition's own pool is unreachable: the given pool wins.
    pipeline, context, unique = _pool_pipeline(testenv, tmp_path, pool=["tcp://127.0.0.1:9"])
    preferred = pool.rank(cicd_agents.routing_key(context))[0]
    next(r for r in relays if r.addr == preferred).close()

    report = pipeline.run(pool, overrides={"image-tag": "given"})
    assert report.success, report.to_json()
    assert report.builder == next(r.addr for r in relays if r.addr != preferred)
    assert [address for address, _ in report.passed_over] == [preferred]
    assert report.digest == testenv.registry_digest(f"pytest/{unique}", "given")


def test_run_with_every_pool_daemon_down_raises_pool_unavailable(testenv, tmp_path, make_relay):
    relays = [make_relay() for _ in range(2)]
    addresses = [r.addr for r in relays]
    for relay in relays:
        relay.close()
    pipeline, context, _ = _pool_pipeline(testenv, tmp_path, pool=addresses)
    with pytest.raises(cicd_agents.PoolUnavailable) as caught:
        pipeline.run(overrides={"image-tag": "down"})
    err = caught.value
    assert isinstance(err, cicd_agents.PoolError)
    assert err.key == cicd_agents.routing_key(context)
    assert sorted(a.address for a in err.tried) == sorted(addresses)
    for address in addresses:
        assert address in str(err)
    report = err.report
    assert isinstance(report, cicd_agents.RunReport) and not report.success and report.error

    # The same with a BuilderPool passed as the client.
    pool = cicd_agents.BuilderPool(addresses, connect_timeout=2)
    with pytest.raises(cicd_agents.PoolUnavailable) as caught:
        pipeline.run(pool, overrides={"image-tag": "down"})
    assert sorted(a.address for a in caught.value.tried) == sorted(addresses)


@pytest.mark.parametrize("awaited", [False, True])
@pytest.mark.parametrize("callback", ["progress", "events"])
def test_a_raising_callback_stops_the_run_and_re_raises_with_its_traceback(client, testenv, tmp_path, callback, awaited):
    import asyncio
    import time

    class Stop(Exception):
        pass

    marker = testenv.unique("py-pl-stop")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {testenv.base_image}\nRUN echo {marker} && sleep 60\n")
    definition = {
        "name": "py-stop",
        "source": {"local": str(tmp_path), "context": "ctx"},
        "build": {
            "images": [f"{testenv.registry}/pytest/{marker}"],
            "network": "host",
            "no-cache": True,
            "labels": {"marker": marker},
        },
    }
    pipeline = cicd_agents.Pipeline.from_dict(definition)

    def stop_on_progress(event):
        if event.kind == "vertex" and marker in event.name and event.started:
            raise Stop("enough progress")

    def stop_on_event(event):
        # The base image's step is done while RUN sleeps.
        if event["event"] == "step-progress" and "FROM" in event["message"]:
            raise Stop("enough events")

    kwargs = {"progress": stop_on_progress} if callback == "progress" else {"events": stop_on_event}
    started = time.monotonic()
    with pytest.raises(Stop) as caught:
        if awaited:
            asyncio.run(pipeline.run_async(client, **kwargs))
        else:
            pipeline.run(client, **kwargs)
    assert time.monotonic() - started < 45, "the run went on to the build's end"
    # The callback's own exception, raised where the callback raised it.
    names = [entry.name for entry in caught.traceback]
    assert ("stop_on_progress" if callback == "progress" else "stop_on_event") in names, names
    # And the build was cancelled on the daemon.
    ours = lambda: [b for b in client.active_builds() if b.frontend_attrs.get("label:marker") == marker]  # noqa: E731
    deadline = time.monotonic() + 20
    while ours() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ours(), "the build still runs on the daemon"
