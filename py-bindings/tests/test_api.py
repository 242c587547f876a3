"""The public surface: stubs match the module, and the small helpers mirroring Rust functions."""

import ast
from pathlib import Path

import pytest

import cicd_agents
from cicd_agents import k8s

PACKAGE = Path(cicd_agents.__file__).parent


def stub_names(stub):
    tree = ast.parse((PACKAGE / stub).read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("_"):
            # `from ._options import BuildOptions as BuildOptions`: an explicit re-export.
            names.update(alias.asname for alias in node.names if alias.asname == alias.name)
    return {n for n in names if not n.startswith("_")}


def test_the_stubs_declare_exactly_what_the_module_exports():
    exported = set(cicd_agents.__all__) - {"__version__", "k8s"}
    assert stub_names("__init__.pyi") == exported
    for name in exported:
        assert hasattr(cicd_agents, name), name
    assert stub_names("k8s.pyi") == set(k8s.__all__)
    for name in k8s.__all__:
        assert hasattr(k8s, name), name


def test_resolve_address_follows_buildkit_host(testenv, monkeypatch):
    assert cicd_agents.resolve_address("tcp://buildkitd:1234") == "tcp://buildkitd:1234"
    monkeypatch.setenv("BUILDKIT_HOST", testenv.docker_addr)
    resolved = cicd_agents.resolve_address()
    assert resolved.startswith("docker://")
    assert cicd_agents.Client(resolved).address == resolved
    with pytest.raises(cicd_agents.InvalidOption):
        cicd_agents.resolve_address("ftp://nowhere")


def test_validate_tag_and_parse_tag_ref():
    cicd_agents.validate_tag("1.10")
    with pytest.raises(cicd_agents.InvalidOption) as info:
        cicd_agents.validate_tag("1.0 ; rm")
    assert info.value.option == "tag"
    digest = "sha256:" + "ab" * 32
    assert cicd_agents.parse_tag_ref(f"1.2.3@{digest}") == ("1.2.3", digest)
    assert cicd_agents.parse_tag_ref("latest") == ("latest", None)
    with pytest.raises(cicd_agents.InvalidOption):
        cicd_agents.parse_tag_ref("1.2.3@sha256:short")


def test_the_installed_extension_is_stripped_and_small():
    """scripts/test-python.sh installs the wheel built in the python-release profile (no debug
    info, stripped): the extension stays under 15 MB (it was 97.5 MB unstripped)."""
    native = Path(cicd_agents._native.__file__)
    size = native.stat().st_size
    assert size < 15 * 1024 * 1024, f"{native} is {size / 1e6:.1f} MB"
    assert native.name.endswith(".abi3.so"), native.name
