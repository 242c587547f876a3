"""What a Python user trips over (issue 14): type errors that name the argument, BuildStream
after a failure or a cancel, output destinations checked before anything is sent, and the
build keywords parsed in one place (unknown keywords refused)."""

import json
import os

import pytest

import cicd_agents

from conftest import processes_with


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"target": 3}, "target"),
        ({"no_cache": "yes"}, "no_cache"),
        ({"push": 1}, "push"),
        ({"network": 5}, "network"),
        ({"shared_key": 7}, "shared_key"),
        ({"cache": "no"}, "cache"),
        ({"load": "yes"}, "load"),
        ({"pull": 0}, "pull"),
        ({"stream_logs": "yes"}, "stream_logs"),
        ({"builder": 4}, "builder"),
        ({"tags": 5}, "tags"),
        ({"file": 5}, "file"),
        ({"metadata_file": 5}, "metadata_file"),
    ],
)
def test_type_errors_name_the_keyword(client, make_context, kwargs, name):
    context = make_context("FROM {base}\n")
    for call in (client.build, client.build_stream, client.build_async):
        with pytest.raises(TypeError) as caught:
            call(context, **kwargs)
        assert name in str(caught.value), (call.__name__, str(caught.value))


def test_type_errors_of_plain_arguments_name_them(tmp_path):
    with pytest.raises(TypeError) as caught:
        cicd_agents.Client(1234)
    assert "addr" in str(caught.value)
    with pytest.raises(TypeError) as caught:
        cicd_agents.Client("unix:///nonexistent.sock", tls_skip_verify="yes")
    assert "tls_skip_verify" in str(caught.value)
    values = tmp_path / "values.yaml"
    values.write_text("image:\n  tag: a\n")
    with pytest.raises(TypeError) as caught:
        cicd_agents.set_image(values, "image.tag", 5)
    assert "value" in str(caught.value)
    with pytest.raises(TypeError) as caught:
        cicd_agents.set_image(5, "image.tag", "b")
    assert "path" in str(caught.value)


def test_unknown_keywords_are_refused(client, testenv, make_context):
    context = make_context("FROM {base}\n")
    with pytest.raises(TypeError) as caught:
        client.build(context, no_cahce=True)
    assert "no_cahce" in str(caught.value)
    pool = cicd_agents.BuilderPool([testenv.docker_addr])
    with pytest.raises(TypeError) as caught:
        pool.build(context, tag="x")
    assert "'tag'" in str(caught.value)


def test_the_stub_declares_exactly_the_keywords_the_parser_takes():
    from cicd_agents import _native

    declared = set(cicd_agents.BuildOptions.__annotations__) | {"stream_logs"}
    assert declared == set(_native._BUILD_KEYWORDS)


def test_build_stream_wait_after_a_failed_iteration_raises_the_build_error(client, make_context):
    context = make_context("FROM {base}\nRUN exit 7\n")
    stream = client.build_stream(context, network="host", no_cache=True)
    with pytest.raises(cicd_agents.BuildError):
        for _ in stream:
            pass
    assert repr(stream) == "BuildStream(failed)"
    with pytest.raises(cicd_agents.BuildError) as caught:
        stream.wait()
    assert caught.value.line == 2
    assert caught.value.exit_code == 7


def test_build_stream_repr_after_cancel_says_cancelled(client, make_context):
    context = make_context("FROM {base}\nRUN sleep 60\n")
    stream = client.build_stream(context, network="host", no_cache=True)
    assert repr(stream) == "BuildStream(running)"
    stream.cancel()
    assert repr(stream) == "BuildStream(cancelled)"
    with pytest.raises(cicd_agents.Cancelled):
        stream.wait()


@pytest.mark.parametrize("where", ["under-a-file", "is-a-dir"])
def test_metadata_file_is_checked_before_the_build(client, testenv, make_context, tmp_path, where):
    marker = testenv.unique("cicd-py-meta")
    context = make_context(f"FROM {{base}}\nRUN sleep 30 && echo {marker}\n")
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "meta.json" if where == "under-a-file" else tmp_path
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(context, network="host", no_cache=True, metadata_file=target)
    assert caught.value.option == "metadata_file"
    assert str(target) in str(caught.value)
    assert not processes_with(marker), "the build ran although its metadata_file is unusable"


def test_metadata_file_in_a_missing_directory_is_refused_before_the_build(client, make_context, tmp_path):
    # As the command line: buildx would fail writing it after the build (and the push); we refuse
    # before anything is sent, naming the keyword and the directory.
    context = make_context("FROM {base}\nRUN echo meta > /meta\n")
    target = tmp_path / "new" / "dirs" / "meta.json"
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(context, network="host", outputs="type=cacheonly", metadata_file=target)
    assert "metadata_file" in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert not target.parent.exists()


def test_output_destinations_are_checked_before_the_build(client, make_context, tmp_path):
    context = make_context("FROM {base}\n")
    (tmp_path / "file").write_text("x")
    for spec, needle in (
        (f"type=local,dest={tmp_path}/file/out", "is not a directory"),
        (f"type=tar,dest={tmp_path}/file/out.tar", "is not a directory"),
        (f"type=tar,dest={tmp_path}", "is a directory"),
        (f"type=local,dest={tmp_path}/file", "is not a directory"),
    ):
        with pytest.raises(cicd_agents.InvalidOption) as caught:
            client.build(context, outputs=spec)
        assert caught.value.option == "outputs", spec
        assert needle in str(caught.value), spec


def test_workers_platforms_have_no_duplicates(client):
    for worker in client.workers():
        assert len(worker.platforms) == len(set(worker.platforms)), worker.platforms


def test_build_error_has_the_exit_code(client, make_context):
    context = make_context("FROM {base}\nRUN exit 42\n")
    with pytest.raises(cicd_agents.BuildError) as caught:
        client.build(context, network="host", no_cache=True)
    assert caught.value.exit_code == 42
    assert os.fspath(context)  # the context is still there


def test_the_exception_class_follows_the_library_error_kind(client, make_context):
    with pytest.raises(cicd_agents.InvalidOption) as invalid:
        cicd_agents.Client("bogus")
    assert invalid.value.error_kind == "invalid input"
    with pytest.raises(cicd_agents.ConnectionError) as unreachable:
        cicd_agents.Client("unix:///nonexistent/cicd-agents.sock", connect_timeout=2)
    assert unreachable.value.error_kind == "connection"
    with pytest.raises(cicd_agents.BuildError) as failed:
        client.build(make_context("FROM {base}\nRUN exit 5\n"), network="host", no_cache=True)
    assert failed.value.error_kind == "build failed"
    assert cicd_agents.ValuesError("x").error_kind is None


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"attests": "type=floppy"}, "attests"),
        ({"attest": {"type": "floppy"}}, "attests"),
        ({"provenance": "mode=max,disabled=maybe"}, "attests"),
        ({"annotations": "no-value"}, "annotations"),
        ({"shm_size": "lots"}, "shm_size"),
        ({"ulimits": "nofile"}, "ulimits"),
    ],
)
def test_buildx_flag_keywords_are_checked_before_the_build(client, make_context, kwargs, option):
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(make_context("FROM {base}\n"), **kwargs)
    assert caught.value.option == option, str(caught.value)
