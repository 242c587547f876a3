"""A build's client-side timings (BuildResult.timings), as the Rust result has them."""

import time

import cicd_agents

NAMES = ["connect", "session_start", "context_walk", "context_transfer", "solve", "export", "total"]


def test_a_build_reports_where_its_time_went(testenv, make_context):
    context = make_context("FROM scratch\nCOPY . /ctx\n", files={"a.txt": testenv.unique("timings")})
    started = time.monotonic()
    client = cicd_agents.Client(testenv.docker_addr)
    result = client.build(context, outputs="type=cacheonly")
    wall = time.monotonic() - started
    timings = result.timings
    assert sorted(timings) == sorted(NAMES), timings
    assert all(isinstance(timings[name], float) and timings[name] >= 0.0 for name in NAMES), timings
    assert timings["solve"] > 0.0 and timings["context_walk"] > 0.0, timings
    assert timings["connect"] + timings["session_start"] + timings["solve"] <= timings["total"] + 1e-9
    assert timings["total"] <= wall, (timings, wall)
    assert result.to_dict()["timings"] == timings
