"""BuilderPool against the real environment: the test daemon plus an unreachable unix:// one."""

import asyncio
import time

import pytest

import cicd_agents


@pytest.fixture
def unreachable(tmp_path):
    return f"unix://{tmp_path / 'missing' / 'buildkitd.sock'}"


def make_pool(testenv, unreachable):
    return cicd_agents.BuilderPool(
        [unreachable, testenv.docker_addr], connect_timeout=2, health_timeout=10, retry_after=60
    )


def key_preferring(pool, address):
    for n in range(1000):
        key = f"https://git.example.com/org/project-{n}.git"
        if pool.rank(key)[0] == address:
            return key
    raise AssertionError(f"no key prefers {address}")


def test_routing_key_ignores_the_ref_and_resolves_directories(tmp_path, monkeypatch):
    assert cicd_agents.routing_key("https://github.com/org/app.git#refs/heads/feature:svc") == "https://github.com/org/app.git"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app").mkdir()
    assert cicd_agents.routing_key("app") == str((tmp_path / "app").resolve())
    assert cicd_agents.routing_key(tmp_path / "app") == str((tmp_path / "app").resolve())


def test_ranking_is_deterministic():
    addresses = ["tcp://a:1234", "tcp://b:1234", "tcp://c:1234"]
    one = cicd_agents.BuilderPool(addresses)
    other = cicd_agents.BuilderPool(list(reversed(addresses)))
    firsts = set()
    for n in range(50):
        key = f"/work/project-{n}"
        assert one.rank(key) == other.rank(key)
        assert sorted(one.rank(key)) == addresses
        assert one.candidates(key) == one.rank(key), "nothing is down yet"
        firsts.add(one.rank(key)[0])
    assert len(firsts) == 3


def test_bad_pools_are_refused():
    with pytest.raises(cicd_agents.InvalidOption):
        cicd_agents.BuilderPool([])
    with pytest.raises(cicd_agents.InvalidOption) as info:
        cicd_agents.BuilderPool(["tcp://a:1", "bogus"])
    assert "bogus" in str(info.value)
    with pytest.raises(cicd_agents.InvalidOption) as info:
        cicd_agents.BuilderPool(["tcp://a:1", "tcp://a:1/"])
    assert "twice" in str(info.value)
    # The keyword at fault is `addresses`; where the reason lists the schemes that would do,
    # the discovery form is among them.
    for bad, scheme in [("ftp://h:1", 'unknown scheme "ftp"'), ("ssh://h", "ssh:// transport"), ("h:1234", "missing scheme")]:
        with pytest.raises(cicd_agents.InvalidOption) as info:
            cicd_agents.BuilderPool(["tcp://a:1", bad])
        err = info.value
        assert (err.option, err.flag, err.address) == ("addresses", "--pool", bad)
        assert scheme in err.reason and "dns+tcp://" in err.reason, err.reason


def test_a_build_skips_the_unreachable_daemon_and_says_so(testenv, unreachable, make_context):
    pool = make_pool(testenv, unreachable)
    dead, alive = pool.addresses
    key = key_preferring(pool, dead)
    context = make_context(f"FROM {{base}}\nRUN echo {testenv.unique('pool')} > /id\n")
    events = []
    pooled = pool.build(context, key=key, network="host", progress=events.append)
    assert pooled.address == alive
    assert [a.address for a in pooled.passed_over] == [dead]
    assert pooled.passed_over[0].reason and not pooled.passed_over[0].reason.startswith("lost during")
    assert pooled.passed_over[0].to_dict() == {"address": dead, "reason": pooled.passed_over[0].reason}
    assert isinstance(pooled.result, cicd_agents.BuildResult) and pooled.result.build_ref
    assert events, "no progress reached the callback"
    # The unreachable daemon is tried last now, and the key goes straight to the live one.
    assert pool.candidates(key) == [alive, dead]
    client, address = pool.client_for(key)
    assert address == alive and isinstance(client, cicd_agents.Client)
    assert client.workers()

    health = {h.address: h for h in pool.health()}
    assert health[alive].healthy and health[alive].workers >= 1 and health[alive].error is None
    assert not health[dead].healthy and health[dead].workers is None and health[dead].error
    assert health[dead].latency >= 0


def test_plain_progress_names_the_daemon_that_builds_and_those_passed_over(testenv, unreachable, make_context, capfd):
    pool = make_pool(testenv, unreachable)
    dead, alive = pool.addresses
    key = key_preferring(pool, dead)
    context = make_context(f"FROM {{base}}\nRUN echo {testenv.unique('pool-plain')} > /id\n")
    pool.build(context, key=key, network="host", progress="plain")
    err = capfd.readouterr().err
    passed = err.index(f"#0 passed over {dead}: ")
    building = err.index(f"#0 building on {alive}\n")
    assert passed < building < err.index("#1 "), err


def test_the_default_key_is_the_context_and_sticks(testenv, unreachable, make_context):
    pool = make_pool(testenv, unreachable)
    context = make_context(f"FROM {{base}}\nRUN echo {testenv.unique('pool')} > /id\n")
    key = cicd_agents.routing_key(context)
    first = pool.build(context, network="host")
    assert first.address == pool.addresses[1]
    # Whichever way the key ranks the daemons, the unreachable one is passed over only if
    # it came first.
    skipped = [a.address for a in first.passed_over]
    assert skipped == ([pool.addresses[0]] if pool.rank(key)[0] == pool.addresses[0] else [])


def test_with_every_daemon_down_the_error_names_each_one(tmp_path, make_context):
    down = [f"unix://{tmp_path / 'a.sock'}", f"unix://{tmp_path / 'b.sock'}"]
    pool = cicd_agents.BuilderPool(down, connect_timeout=2)
    with pytest.raises(cicd_agents.PoolUnavailable) as info:
        pool.client_for("https://git.example.com/org/app.git")
    err = info.value
    assert isinstance(err, cicd_agents.PoolError) and isinstance(err, cicd_agents.Error)
    assert err.key == "https://git.example.com/org/app.git"
    assert sorted(a.address for a in err.tried) == sorted(pool.addresses)
    for address in pool.addresses:
        assert address in str(err)
    with pytest.raises(cicd_agents.PoolUnavailable):
        pool.build(make_context("FROM {base}\n"))


def test_a_failing_build_is_a_build_error_naming_the_daemon(testenv, unreachable, make_context):
    pool = make_pool(testenv, unreachable)
    dead, alive = pool.addresses
    key = key_preferring(pool, dead)
    context = make_context(f"FROM {{base}}\nRUN echo {testenv.unique('pool')} && exit 3\n")
    with pytest.raises(cicd_agents.BuildError) as info:
        pool.build(context, key=key, network="host")
    err = info.value
    assert err.address == alive
    assert [a.address for a in err.passed_over] == [dead]
    assert alive in str(err)
    assert err.line == 2


@pytest.mark.asyncio
async def test_build_async_and_health_async(testenv, unreachable, make_context):
    pool = make_pool(testenv, unreachable)
    dead, alive = pool.addresses
    key = key_preferring(pool, dead)
    context = make_context(f"FROM {{base}}\nRUN echo {testenv.unique('pool')} > /id\n")
    pooled = await pool.build_async(context, key=key, network="host")
    assert pooled.address == alive
    assert [a.address for a in pooled.passed_over] == [dead]
    health = await pool.health_async()
    assert [h.healthy for h in health] == [False, True]
    client, address = await pool.client_for_async(key)
    assert address == alive
    assert await asyncio.wait_for(client.workers_async(), 30)


def test_the_dns_form_discovers_members_from_the_system_resolver():
    # `localhost` has no replica names (localhost-0.localhost), so its addresses are members by IP.
    pool = cicd_agents.BuilderPool(["dns+tcp://localhost:1234"], refresh_interval=0)
    assert pool.dns_addresses == ["dns+tcp://localhost:1234"]
    assert pool.addresses == []
    members = pool.discover()
    assert "tcp://127.0.0.1:1234" in members, members
    for bad in ["dns+tcp://pool.ci.svc", "dns+tcp://10.0.0.1:1234"]:
        with pytest.raises(cicd_agents.InvalidOption) as info:
            cicd_agents.BuilderPool([bad])
        assert bad in str(info.value)


def _ours(client, marker):
    return [b for b in client.active_builds() if b.frontend_attrs.get("label:marker") == marker]


@pytest.mark.parametrize("awaited", [False, True])
def test_a_raising_progress_callback_cancels_the_pool_build_and_re_raises(testenv, unreachable, make_context, awaited):
    class Stop(Exception):
        pass

    pool = make_pool(testenv, unreachable)
    marker = testenv.unique("pool-stop")
    context = make_context(f"FROM {{base}}\nRUN echo {marker} && sleep 60\n")

    labels = {"marker": marker}

    def stop_when_running(event):
        if event.kind == "vertex" and marker in event.name and event.started:
            raise Stop("enough")

    started = time.monotonic()
    with pytest.raises(Stop):
        if awaited:
            asyncio.run(pool.build_async(context, network="host", labels=labels, progress=stop_when_running))
        else:
            pool.build(context, network="host", labels=labels, progress=stop_when_running)
    assert time.monotonic() - started < 45, "the build ran to its end"
    client = cicd_agents.Client(testenv.docker_addr)
    deadline = time.monotonic() + 20
    while _ours(client, marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ours(client, marker), "the build still runs on the daemon"
