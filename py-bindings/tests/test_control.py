"""The Control API: Client, info, workers, disk usage, prune; connection errors."""

import datetime

import pytest

import cicd_agents


def test_info(client, testenv):
    info = client.info()
    assert info.address == testenv.docker_addr == client.address
    assert info.version.startswith("v"), info.version
    assert info.version_source in ("info", "worker", "docker-engine", "unknown")
    assert info.at_least(0, 1)
    assert isinstance(info.version_display(), str)
    as_dict = info.to_dict()
    assert as_dict["version"] == info.version
    assert as_dict["address"] == info.address
    assert "DaemonInfo(" in repr(info)


def test_workers(client):
    workers = client.workers()
    assert workers, "the daemon has no workers"
    worker = workers[0]
    assert worker.id
    assert any(p.startswith("linux/") for p in worker.platforms), worker.platforms
    assert isinstance(worker.labels, dict)
    for policy in worker.gc_policies:
        assert isinstance(policy.keep_duration_seconds, int)
        assert isinstance(policy.to_dict(), dict)
    assert worker.to_dict()["id"] == worker.id


def test_disk_usage_and_prune(client):
    records = client.disk_usage()
    assert isinstance(records, list)
    for record in records[:5]:
        assert isinstance(record.size, int)
        assert record.created_at is None or isinstance(record.created_at, datetime.datetime)
        assert record.to_dict()["id"] == record.id
    # A filter that matches nothing frees nothing (and leaves the other tests' cache alone).
    assert client.disk_usage(filters="id==does-not-exist") == []
    assert client.prune(filters=["id==does-not-exist"], keep_duration=datetime.timedelta(hours=1)) == []


def test_connection_error_names_the_address(tmp_path):
    missing = tmp_path / "no.sock"
    with pytest.raises(cicd_agents.ConnectionError) as caught:
        cicd_agents.Client(f"unix://{missing}")
    assert str(missing) in str(caught.value)
    assert caught.value.address == f"unix://{missing}"
    assert isinstance(caught.value, cicd_agents.Error)
    # Not the builtin: callers catch it as cicd_agents.ConnectionError.
    assert cicd_agents.ConnectionError is not ConnectionError


@pytest.mark.parametrize(
    "address",
    ["bogus://x", "tcp://host", "unix://relative.sock", "docker://docker.sock"],
)
def test_invalid_address_is_invalid_option(address):
    with pytest.raises(cicd_agents.InvalidOption) as caught:
        cicd_agents.Client(address)
    assert address in str(caught.value)
    assert caught.value.option == "addr"


def test_tls_files_that_do_not_exist(tmp_path):
    with pytest.raises(cicd_agents.Error) as caught:
        cicd_agents.Client("tcp://127.0.0.1:1", tls_ca=tmp_path / "ca.pem")
    assert "ca.pem" in str(caught.value)


def test_bad_argument_types_are_type_errors(client):
    with pytest.raises(TypeError):
        client.disk_usage(filters=3)
    with pytest.raises(TypeError):
        client.prune(keep_duration="1h")
    with pytest.raises(cicd_agents.InvalidOption):
        client.prune(keep_duration=-5)
