"""Bad input raises the exception the command line's error corresponds to, never a panic.

``InvalidOption.option`` is the keyword argument at fault (``platforms``, not ``--platform``);
``InvalidPipeline`` and ``ValuesError`` carry the line and the key.
"""

import os
import socket

import pytest

import cicd_agents


def _no_panic(err):
    assert type(err).__name__ != "PanicException", err


@pytest.mark.parametrize(
    "address",
    ["bogus", "unix://", "tcp://host", "tcp://h:99999", "tcp://[zz]:1", "tcp://ho st:1", "tcp://höst:1"],
)
def test_malformed_addresses(address):
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        cicd_agents.Client(address)
    assert caught.value.option == "addr"
    assert repr(address) in str(caught.value) or address in str(caught.value)


def test_user_information_in_any_scheme_is_not_echoed():
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        cicd_agents.Client("ssh://me@host")
    assert "ssh://***@host" in str(caught.value)
    assert "me@" not in str(caught.value)


def test_an_address_with_a_password_is_refused_without_echoing_it():
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        cicd_agents.Client("tcp://ci:s3cr3tpw@127.0.0.1:1234")
    assert "s3cr3tpw" not in str(caught.value)
    assert "s3cr3tpw" not in repr(caught.value.args)


@pytest.mark.parametrize(
    "kwargs, option, needle",
    [
        ({"platforms": ["linux/amd65"]}, "platforms", "linux/amd65"),
        ({"platforms": ["amd65"]}, "platforms", "amd65"),
        ({"platforms": "linux/amd64,darwin/arm65"}, "platforms", "darwin/arm65"),
        ({"platforms": "linux/amd64,"}, "platforms", "empty platform"),
        ({"platforms": ["linux/arm/v7/x"]}, "platforms", "linux/arm/v7/x"),
        ({"network": "bridge2"}, "network", "bridge2"),
        ({"add_hosts": ["nohost"]}, "add_hosts", "nohost"),
        ({"build_args": ["=1"]}, "build_args", "=1"),
        ({"labels": ["=x"]}, "labels", "=x"),
        ({"outputs": "type="}, "outputs", "type="),
        ({"outputs": "type=tar"}, "outputs", "dest=FILE"),
        ({"outputs": ["-", "type=tar,dest=-"]}, "outputs", "stdout"),
        ({"cache_to": "type=registry,ref=r/a:c,mode=huge"}, "cache_to", "huge"),
        ({"cache_to": {"type": "floppy"}}, "cache_to", "floppy"),
        ({"cache_from": "type=registry"}, "cache_from", "ref="),
        ({"secrets": "id=npmrc,src=/nonexistent/npmrc"}, "secrets", "/nonexistent/npmrc"),
        ({"secrets": {"id": "npmrc", "src": "/nonexistent/npmrc"}}, "secrets", "npmrc"),
        ({"ssh": {"default": "/nonexistent/agent.sock"}}, "ssh", "/nonexistent/agent.sock"),
        ({"build_contexts": {"x": "/nonexistent/named"}}, "build_contexts", "/nonexistent/named"),
        ({"build_contexts": {"x": "https://u:tok@h/r.git"}}, "build_contexts", "credentials"),
        ({"file": "/nonexistent/Dockerfile.dev"}, "file", "/nonexistent/Dockerfile.dev"),
        ({"shared_key": "a b\n"}, "shared_key", "shared_key"),
        ({"progress": "sideways"}, "progress", "sideways"),
        ({"tags": ["Bad Tag!!"]}, "tags", "Bad Tag!!"),
        ({"tags": ["r/ok:1", "r/App:1"]}, "tags", "lowercase"),
    ],
)
def test_bad_build_options_name_the_keyword(client, make_context, kwargs, option, needle):
    context = make_context("FROM {base}\n")
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(context, **kwargs)
    _no_panic(caught.value)
    assert caught.value.option == option, caught.value
    assert needle in str(caught.value), caught.value
    assert caught.value.reason


def test_invalid_platform_names_the_field(client, make_context):
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(make_context("FROM {base}\n"), platforms=["linux/amd65"])
    assert caught.value.field == "platform"
    assert caught.value.value == "linux/amd65"
    assert "--" not in str(caught.value)


def test_normalize_platform():
    assert cicd_agents.normalize_platform("linux/x86_64") == "linux/amd64"
    assert cicd_agents.normalize_platform("linux/arm/v7") == "linux/arm/v7"
    # buildx's normalisation (containerd's): the default variants are implied.
    assert cicd_agents.normalize_platform("linux/armhf") == "linux/arm/v7"
    assert cicd_agents.normalize_platform("linux/arm64/v8") == "linux/arm64"
    assert cicd_agents.normalize_platform("local").count("/") >= 1
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        cicd_agents.normalize_platform("linux/amd65")
    assert caught.value.option == "platforms"
    assert "amd65" in str(caught.value)


def test_missing_context_a_file_as_context_and_a_directory_as_dockerfile(client, tmp_path, make_context):
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(tmp_path / "does-not-exist")
    assert caught.value.option == "context" and "does-not-exist" in str(caught.value)
    plain = tmp_path / "plain-file"
    plain.write_text("x")
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(plain)
    assert caught.value.option == "context" and "not a directory" in str(caught.value)
    context = make_context("FROM {base}\n")
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(context, file=tmp_path)
    assert caught.value.option == "file" and "is a directory" in str(caught.value)


def test_an_ssh_path_that_is_not_a_socket(client, make_context, tmp_path):
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.build(make_context("FROM {base}\n"), ssh={"default": tmp_path})
    assert caught.value.option == "ssh" and "not a unix socket" in str(caught.value)


def test_a_real_ssh_socket_passes_the_check(client, make_context, tmp_path, testenv):
    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        server.listen(1)
        context = make_context("FROM scratch\nCOPY Dockerfile /\n")
        # No RUN --mount=type=ssh: the agent is only offered, never used.
        client.build(context, ssh={"default": path}, outputs="type=cacheonly")
    finally:
        server.close()


@pytest.mark.parametrize("name", ["with space", "ünïcödé", "line\nbreak", "tab\tand \"quotes\""])
def test_contexts_with_odd_names_build(client, tmp_path, testenv, name):
    context = tmp_path / name
    context.mkdir()
    marker = testenv.unique("odd-name")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY m /m\n")
    (context / "m").write_text(marker)
    out = tmp_path / "out"
    client.build(context, outputs={"type": "local", "dest": out})
    assert (out / "m").read_text() == marker


def _pipeline(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


PIPELINE = (
    "name: demo\nsource:\n  git: https://git.example.com/app.git\nbuild:\n  images:\n"
    "    - r.example.com/app:${image-tag}\nparameters:\n  image-tag: latest\n"
)


@pytest.mark.parametrize(
    "text, line, key",
    [
        ("name: demo\nbuild: [x\n", 3, None),
        (PIPELINE.replace("  images:", "  imgaes:"), 5, "build.imgaes"),
        (PIPELINE + "name: again\n", 9, "name"),
        (PIPELINE.replace("build:\n", "build:\n  push: maybe\n"), 5, "build.push"),
        (b"name: \xff\xfe\n", None, None),
    ],
)
def test_bad_pipelines_raise_invalid_pipeline_with_line_and_key(tmp_path, text, line, key):
    path = _pipeline(tmp_path, "p.yaml", text)
    with pytest.raises(cicd_agents.InvalidPipeline) as caught:
        cicd_agents.Pipeline.from_file(path)
    _no_panic(caught.value)
    assert "p.yaml" in str(caught.value)
    if line is not None:
        assert caught.value.line == line, caught.value
    if key is not None:
        assert caught.value.key == key, caught.value


def test_a_missing_pipeline_file(tmp_path):
    with pytest.raises(cicd_agents.InvalidPipeline) as caught:
        cicd_agents.Pipeline.from_file(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(caught.value)


@pytest.mark.parametrize(
    "content, key, value, line, needle",
    [
        (b"image:\n  tag: [1\n", "image.tag", "2", 3, "not valid YAML"),
        (b"image:\n  tag: \xe9\n", "image.tag", "2", None, "UTF-8"),
        (b"image:\n  tag: a\n", "image.nope", "2", 2, "`nope` not found"),
        (b"image:\n  tag: a\n", "image", "2", 2, "not a scalar"),
        (b"image:\n  tag: a\n", "image..tag", "2", None, "invalid key path"),
        (b"image:\n  tag: a\n", "image.tag", "two\nlines", None, "invalid new value"),
    ],
)
def test_bad_values_files_and_key_paths(tmp_path, content, key, value, line, needle):
    path = tmp_path / "values.yaml"
    path.write_bytes(content)
    with pytest.raises(cicd_agents.ValuesError) as caught:
        cicd_agents.set_image(path, key, value)
    _no_panic(caught.value)
    assert needle in str(caught.value), caught.value
    if line is not None:
        assert caught.value.line == line, caught.value
    assert path.read_bytes() == content, "nothing may change"


def test_a_missing_values_file(tmp_path):
    with pytest.raises(cicd_agents.ValuesError) as caught:
        cicd_agents.set_image(tmp_path / "nope.yaml", "image.tag", "1")
    assert "nope.yaml" in str(caught.value)
    assert os.path.basename(caught.value.file or "") == "nope.yaml" or caught.value.file is None
