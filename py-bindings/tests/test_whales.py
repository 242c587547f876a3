"""python-on-whales compatibility: its documented ``docker.buildx.build(...)`` calls run through
``cicd_agents`` with only the line that makes ``docker`` changed, against the real daemon.

The examples are the ones python-on-whales' ``buildx.build`` documentation gives (its
docstring, which its documentation site renders), on small contexts of the test environment
(RUN steps need ``network="host"`` there: the test daemon has no bridge network).
"""

import inspect
import json
import subprocess
import sys
import textwrap

import pytest

import cicd_agents
from cicd_agents import _native

# python-on-whales keywords not taken (none).
NOT_YET: set = set()


def test_every_python_on_whales_build_keyword_is_taken():
    from python_on_whales.components.buildx.cli_wrapper import BuildxCLI

    theirs = set(inspect.signature(BuildxCLI.build).parameters) - {"self"}
    ours = set(_native._BUILD_KEYWORDS)
    assert theirs - ours == NOT_YET, sorted(theirs - ours)


EXAMPLES = """
from python_on_whales import docker

# Tags, build arguments, labels, a target stage and a Dockerfile elsewhere.
docker.buildx.build(
    context_path=CONTEXT,
    tags=[f"{REGISTRY}/{REPO}:1.0", f"{REGISTRY}/{REPO}:latest"],
    build_args={"PY_VERSION": "3.7.8", "UBUNTU_VERSION": "20.04"},
    labels={"very-secure": "1", "needs-gpu": "0"},
    target="final",
    file=f"{CONTEXT}/Dockerfile",
    push=True,
    progress=False,
)

# Extra hosts, entitlements, a named context, no cache, always pull, a secret.
docker.buildx.build(
    CONTEXT,
    add_hosts={"my_host1": "192.168.32.35"},
    allow=["network.host"],
    build_contexts={"project2": PROJECT2},
    cache=False,
    pull=True,
    network="host",
    secrets=f"id=aws,src={SECRET_FILE}",
    platforms=["linux/amd64"],
    target="with-run",
)

# A registry cache exported and imported (the string and the dict forms).
docker.buildx.build(CONTEXT, cache_to=f"type=registry,ref={REGISTRY}/{REPO}:cache,mode=max")
docker.buildx.build(CONTEXT, cache_from=dict(type="registry", ref=f"{REGISTRY}/{REPO}:cache"))

# An output directory, and the metadata file.
docker.buildx.build(CONTEXT, output={"type": "local", "dest": OUT_DIR}, metadata_file=METADATA)

# Loaded into the Docker daemon.
docker.buildx.build(CONTEXT, tags=f"{REPO}:loaded", load=True)

# The logs as they arrive.
for line in docker.buildx.build(CONTEXT, stream_logs=True, cache=False, progress="plain"):
    print("LOG", line)

# Attestations: provenance (dict form) and no SBOM, pushed with the image.
docker.buildx.build(
    CONTEXT,
    tags=f"{REGISTRY}/{REPO}:attested",
    push=True,
    provenance=dict(mode="max"),
    sbom=False,
)

# The builder named explicitly.
docker.buildx.build(CONTEXT, builder=ADDRESS)
"""


def test_documented_examples_run_with_only_the_import_changed(testenv, make_context, tmp_path):
    repo = f"pytest/whales-{testenv.unique('w')}"
    context = make_context(
        "FROM {base} AS with-run\n"
        "COPY --from=project2 p2.txt /p2.txt\n"
        "RUN --mount=type=secret,id=aws test -s /run/secrets/aws && grep -q my_host1 /etc/hosts\n"
        "FROM {base} AS final\n"
        "ARG PY_VERSION\n"
        "LABEL py=$PY_VERSION\n"
        "COPY hello.txt /hello.txt\n",
        files={"hello.txt": f"hi {repo}\n"},
    )
    project2 = tmp_path / "project2"
    project2.mkdir()
    (project2 / "p2.txt").write_text("two\n")
    secret_file = tmp_path / "credentials"
    secret_file.write_text("[default]\naws_access_key_id = x\n")
    ours = EXAMPLES.replace(
        "from python_on_whales import docker",
        "import cicd_agents; docker = cicd_agents.Client(ADDRESS)",
    )
    assert ours.count("\n") == EXAMPLES.count("\n") and ours != EXAMPLES
    names = {
        "CONTEXT": str(context),
        "REGISTRY": testenv.registry,
        "REPO": repo,
        "PROJECT2": str(project2),
        "SECRET_FILE": str(secret_file),
        "OUT_DIR": str(tmp_path / "out"),
        "METADATA": str(tmp_path / "metadata.json"),
        "ADDRESS": testenv.docker_addr,
    }
    prelude = "".join(f"{name} = {value!r}\n" for name, value in names.items())
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(ours)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert testenv.registry_digest(repo, "1.0") == testenv.registry_digest(repo, "latest")
    assert testenv.registry_manifest(repo, "cache")
    attested = testenv.registry_manifest(repo, "attested")
    kinds = [m.get("annotations", {}).get("vnd.docker.reference.type") for m in attested.get("manifests", [])]
    assert "attestation-manifest" in kinds, attested
    assert (tmp_path / "out" / "hello.txt").read_text() == f"hi {repo}\n"
    assert "buildx.build.ref" in json.loads((tmp_path / "metadata.json").read_text())
    logs = [line for line in done.stdout.splitlines() if line.startswith("LOG ")]
    assert any("COPY hello.txt" in line for line in logs), done.stdout


def test_a_builder_that_is_not_this_daemon_is_refused(client, make_context):
    context = make_context("FROM {base}\n")
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        client.buildx.build(context, builder="my-remote-builder")
    assert caught.value.option == "builder"
    assert "my-remote-builder" in str(caught.value)
