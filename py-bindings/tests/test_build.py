"""Builds: push with registry cache, results, failures, option conversion, bad input."""

import json

import pytest

import cicd_agents

from conftest import git


def test_push_with_registry_cache_returns_the_registry_digest(client, testenv, make_context, tmp_path):
    context = make_context(
        "FROM {base}\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\nCOPY app.txt /app.txt\n",
        files={"app.txt": "app\n"},
    )
    repository = f"pytest/push-{testenv.unique('app')}"
    tag = "1.0.0"
    cache_ref = f"{testenv.registry}/{repository}:buildcache"
    metadata_file = tmp_path / "metadata.json"
    result = client.build(
        context,
        tags=[f"{testenv.registry}/{repository}:{tag}", f"{testenv.registry}/{repository}:latest"],
        push=True,
        network="host",
        build_args={"GREETING": "hello"},
        labels={"org.example.test": "py"},
        cache_to=f"type=registry,ref={cache_ref},mode=max",
        metadata_file=metadata_file,
        # The test daemon has the containerd image store, so buildx's default provenance would
        # make the pushed digest an index's, which has no config digest.
        provenance=False,
    )
    assert result.digest and result.digest.startswith("sha256:")
    assert result.config_digest and result.config_digest.startswith("sha256:")
    assert result.digest == testenv.registry_digest(repository, tag)
    assert result.digest == testenv.registry_digest(repository, "latest")
    assert result.image_names == [f"{testenv.registry}/{repository}:{tag}", f"{testenv.registry}/{repository}:latest"]
    assert result.exporter_response["containerimage.digest"] == result.digest
    # The registry cache was exported next to the image.
    cache = testenv.registry_manifest(repository, "buildcache")
    assert cache.get("layers") or cache.get("manifests"), cache

    metadata = result.metadata()
    assert metadata["containerimage.digest"] == result.digest
    assert metadata["containerimage.descriptor"]["digest"] == result.digest
    assert metadata["buildx.build.ref"].endswith(result.build_ref)
    assert json.loads(metadata_file.read_text()) == metadata
    assert result.to_dict()["digest"] == result.digest

    # Importing the cache: a rebuild elsewhere reuses every step.
    vertexes = []
    rebuilt = client.build(
        context,
        tags=f"{testenv.registry}/{repository}:rebuilt",
        push=True,
        network="host",
        build_args=["GREETING=hello"],
        labels=["org.example.test=py"],
        cache_from={"type": "registry", "ref": cache_ref},
        progress=lambda event: vertexes.append(event) if event.kind == "vertex" else None,
        provenance=False,
    )
    assert rebuilt.config_digest == result.config_digest
    assert any(v.cached and "RUN" in v.name for v in vertexes), [(v.name, v.cached) for v in vertexes]


def test_dict_outputs_and_cache_specs(client, testenv, make_context):
    context = make_context("FROM {base}\nRUN echo dict > /dict\n")
    repository = f"pytest/dict-{testenv.unique('out')}"
    result = client.build(
        context,
        network="host",
        outputs={"type": "image", "name": f"{testenv.registry}/{repository}:v1", "push": True},
        cache_to=[{"type": "inline"}],
    )
    assert result.digest == testenv.registry_digest(repository, "v1")


def test_local_output(client, make_context, tmp_path):
    context = make_context("FROM {base} AS build\nRUN echo built > /out.txt\nFROM scratch\nCOPY --from=build /out.txt /\n")
    dest = tmp_path / "out"
    result = client.build(context, network="host", outputs=f"type=local,dest={dest}")
    assert (dest / "out.txt").read_text() == "built\n"
    assert result.digest is None


def test_failing_dockerfile_raises_build_error_with_its_line(client, make_context):
    context = make_context("FROM {base}\nRUN echo about to fail && exit 3\nRUN echo never\n")
    with pytest.raises(cicd_agents.BuildError) as caught:
        client.build(context, network="host", no_cache=True)
    error = caught.value
    assert error.line == 2
    assert error.file == "Dockerfile"
    assert error.step and "exit 3" in error.step
    assert "about to fail" in error.log_tail
    assert "exit code: 3" in error.message
    assert error.source_lines == ["RUN echo about to fail && exit 3"]
    text = str(error)
    assert "Dockerfile:2" in text and "exit code: 3" in text and "about to fail" in text
    assert isinstance(error, cicd_agents.Error)


def test_secrets_as_specs_and_dicts(client, make_context, tmp_path, monkeypatch):
    secret_file = tmp_path / "file-secret"
    secret_file.write_text("from-file")
    monkeypatch.setenv("PYTEST_CICD_SECRET", "from-env")
    context = make_context(
        "FROM {base} AS build\n"
        "RUN --mount=type=secret,id=a --mount=type=secret,id=b --mount=type=secret,id=c "
        "cat /run/secrets/a /run/secrets/b /run/secrets/c > /out.txt\n"
        "FROM scratch\nCOPY --from=build /out.txt /\n"
    )
    dest = tmp_path / "out"
    client.build(
        context,
        network="host",
        no_cache=True,
        secrets=[
            f"id=a,src={secret_file}",
            {"id": "b", "env": "PYTEST_CICD_SECRET"},
            {"id": "c", "value": "from-value"},
        ],
        outputs={"type": "local", "dest": dest},
    )
    assert (dest / "out.txt").read_text() == "from-filefrom-envfrom-value"


def test_git_context_with_auth_token(client, testenv, tmp_path):
    name = testenv.unique("py-ctx")
    url, bare = testenv.new_repo(name)
    work = tmp_path / "work"
    work.mkdir()
    (work / "Dockerfile").write_text(f"FROM {testenv.base_image}\nCOPY hello.txt /hello.txt\n")
    (work / "hello.txt").write_text("from git\n")
    git("init", "-q", "--initial-branch=main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "context", cwd=work)
    git("push", "-q", str(bare), "HEAD:main", cwd=work)

    dest = tmp_path / "out"
    client.build(
        f"{url}#main",
        outputs={"type": "local", "dest": dest},
        git_auth_tokens={"127.0.0.1": testenv.git_token},
    )
    assert (dest / "hello.txt").read_text() == "from git\n"


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"outputs": "type=floppy"}, "outputs"),
        ({"outputs": {"type": "floppy"}}, "outputs"),
        ({"outputs": {"dest": "/tmp/x"}}, "outputs"),
        ({"cache_to": "type=floppy"}, "cache_to"),
        ({"cache_to": "type=registry"}, "cache_to"),
        ({"cache_from": {"type": "local", "src": "/tmp"}}, "cache_from"),
        ({"secrets": "id=a,bogus=1"}, "secrets"),
        ({"secrets": {"id": "a"}}, "secrets"),
        ({"secrets": {"id": "a", "env": "X", "value": "y"}}, "secrets"),
        ({"progress": "loud"}, "progress"),
        ({"build_contexts": {"x": "oci-layout://foo"}}, "build_contexts"),
        ({"build_args": ["=1"]}, "build_args"),
        ({"push": True}, "push"),
    ],
)
def test_bad_options_raise_invalid_option(client, make_context, kwargs, option):
    context = make_context("FROM {base}\n")
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(context, **kwargs)
    assert caught.value.option == option, caught.value


def test_missing_context_dir_and_dockerfile(client, tmp_path):
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(tmp_path / "does-not-exist")
    assert "does-not-exist" in str(caught.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(tmp_path / "empty")
    assert "Dockerfile" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"outputs": 3},
        {"tags": 3},
        {"tags": ["ok", 3]},
        {"build_args": {"A": 1}},
        {"secrets": 3},
        {"progress": 3},
        {"build_contexts": ["a"]},
        {"registry_auth": {"r": 3}},
        {"file": 3},
    ],
)
def test_wrong_types_are_type_errors_not_panics(client, make_context, kwargs):
    context = make_context("FROM {base}\n")
    try:
        client.build(context, **kwargs)
    except BaseException as err:  # noqa: B902 - PanicException derives from BaseException
        assert type(err).__name__ != "PanicException"
        assert isinstance(err, (TypeError, cicd_agents.Error)), repr(err)
    else:
        pytest.fail(f"{kwargs} was accepted")


def test_dockerfile_content_and_context_bytes_follow_buildx_stdin(client, testenv, make_context, tmp_path):
    import io
    import tarfile

    marker = testenv.unique("stdin")
    # dockerfile_content=: the Dockerfile's text (`-f -`), with a directory context.
    context = make_context("FROM scratch\n", files={"foo": marker})
    out = tmp_path / "out-file"
    client.build(context, dockerfile_content="FROM scratch\nCOPY foo /bar\n", outputs=f"type=local,dest={out}")
    assert (out / "bar").read_text() == marker
    # context= as a tar archive (`-` with a tar on stdin).
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY foo /foo\n"), ("foo", marker.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    out = tmp_path / "out-tar"
    client.build(buffer.getvalue(), outputs=f"type=local,dest={out}")
    assert (out / "foo").read_text() == marker
    # context= as anything else: a Dockerfile with an empty context; an oci output's image ID.
    result = client.build(
        f"FROM scratch\nLABEL marker={marker}\n".encode(),
        outputs=f"type=oci,dest={tmp_path / 'image.tar'}",
    )
    assert result.image_id == result.config_digest
    assert result.image_id and result.image_id.startswith("sha256:")
    # Both given as Dockerfiles: refused, naming the keyword.
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(b"FROM scratch\n", dockerfile_content=b"FROM scratch\n")
    assert caught.value.option == "dockerfile_content", caught.value
    with pytest.raises(TypeError, match="dockerfile_content"):
        client.build(context, dockerfile_content=3)
