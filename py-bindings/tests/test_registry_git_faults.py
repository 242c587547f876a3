"""Registry and git faults reach Python as typed errors with the registry / remote named.

No proxy here: a registry that refuses the password is the test environment's login
registry, and a server that is down is a loopback port nothing listens on.
"""

import os
import socket

import pytest

import cicd_agents
from conftest import ENV_FILE, _read_env_file


def _auth_registry():
    values = _read_env_file(ENV_FILE)
    values.update({k: v for k, v in os.environ.items() if k.startswith("CICD_TESTENV_")})
    names = ["CICD_TESTENV_AUTH_REGISTRY", "CICD_TESTENV_AUTH_USER", "CICD_TESTENV_AUTH_PASSWORD"]
    missing = [n for n in names if not values.get(n)]
    if missing:
        pytest.fail("the test environment is not set up (missing " + ", ".join(missing) + ")", pytrace=False)
    return [values[n] for n in names]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _context(tmp_path, testenv):
    marker = testenv.unique("pyfault")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY marker.txt /\n")
    (tmp_path / "marker.txt").write_text(marker)
    return marker


def test_registry_refusing_the_password_raises_registry_auth_error(client, testenv, tmp_path):
    registry, user, password = _auth_registry()
    marker = _context(tmp_path, testenv)
    wrong = "wrong-password-" + marker
    with pytest.raises(cicd_agents.RegistryAuthError) as caught:
        client.build(
            str(tmp_path),
            tags=[f"{registry}/tests/{marker}:1"],
            push=True,
            registry_auth={registry: (user, wrong)},
        )
    err = caught.value
    assert isinstance(err, cicd_agents.BuildError) and isinstance(err, cicd_agents.AuthError)
    failure = err.registry
    assert (failure.registry, failure.operation, failure.status, failure.kind) == (registry, "push", 401, "auth")
    assert str(err).splitlines()[0].startswith(f"pushing to registry {registry} failed: 401")
    shown = f"{err} {err!r} {failure!r} {failure}"
    assert wrong not in shown and password not in shown


def test_cache_export_to_a_registry_that_is_down(client, testenv, tmp_path):
    marker = _context(tmp_path, testenv)
    registry = f"127.0.0.1:{_closed_port()}"
    cache = f"type=registry,ref={registry}/tests/{marker}:cache,mode=max"
    with pytest.raises(cicd_agents.BuildError) as caught:
        client.build(str(tmp_path), outputs="type=cacheonly", cache_to=cache)
    err = caught.value
    assert not isinstance(err, cicd_agents.AuthError)
    assert err.registry is not None
    assert (err.registry.registry, err.registry.operation, err.registry.kind) == (registry, "cache export", "unreachable")
    assert err.registry.status is None
    assert str(err).splitlines()[0].startswith(f"exporting cache to registry {registry} failed: cannot reach it")

    # ignore-error=true: the failing export does not fail the build.
    client.build(str(tmp_path), outputs="type=cacheonly", cache_to=cache + ",ignore-error=true")


def test_git_errors_carry_kind_url_operation_and_status(testenv, tmp_path):
    author = ("cicd-agents", "cicd-agents@example.invalid")
    updates = {"charts/app/values.yaml": {"image.tag": "9.9.9"}}
    name = testenv.unique("py-fault")
    url, _ = testenv.new_repo(name)

    with pytest.raises(cicd_agents.GitAuthError) as caught:
        cicd_agents.update_values(url, "main", updates, author=author, token="wrong-token-" + name)
    err = caught.value
    assert isinstance(err, cicd_agents.GitError) and isinstance(err, cicd_agents.AuthError)
    assert (err.kind, err.url, err.operation, err.status) == ("auth", url, "clone", 401)
    assert "wrong-token-" not in str(err) and testenv.git_token not in str(err)

    down = f"http://127.0.0.1:{_closed_port()}/{name}.git"
    with pytest.raises(cicd_agents.GitError) as caught:
        cicd_agents.update_values(down, "main", updates, author=author, token=testenv.git_token, retry_timeout=1.5)
    err = caught.value
    assert not isinstance(err, cicd_agents.AuthError)
    assert (err.kind, err.url, err.operation, err.status) == ("unreachable", down, "clone", None)
    assert err.attempts >= 2, err.attempts
    assert "cannot reach the git server" in str(err)
    assert testenv.git_token not in str(err)
