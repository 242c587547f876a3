"""cicd_agents.k8s: the Kubernetes manifests, byte-identical to the Rust crate's golden files."""

import pytest

import cicd_agents
from cicd_agents import k8s

from conftest import REPO_ROOT

GOLDEN = REPO_ROOT / "k8s" / "tests" / "golden"


def chart():
    return k8s.ChartUpdate(
        repo="https://github.com/example-org/charts.git",
        branch="main",
        file="charts/app/values.yaml",
        key="image.tag",
        tool_image="registry.example.com/cicd-agents:0.1.0",
    )


def cases():
    """The same cases as k8s/tests/manifests.rs, through the Python API."""
    app = "https://github.com/example-org/app.git"
    build_job = k8s.BuildJob(
        "build-app", app, "docker.io/example/app",
        namespace="ci", git_ref="refs/heads/main", tag="1.4.2",
        cache_ref="local-registry:5000/app:buildcache", insecure_cache_registry=True,
    ).build()
    build_job_sys_admin = k8s.BuildJob(
        "build-app", app, "docker.io/example/app",
        namespace="ci", generate_name=True, dockerfile="docker/Dockerfile", context_subdir="services/api",
        git_token=k8s.SecretKeyRef("github-token", "token"), sys_admin=True,
    ).build()
    daemon = k8s.BuildkitDaemon("buildkitd", namespace="ci", replicas=2).manifests()
    pool = k8s.BuildkitPool("buildkitd-pool", namespace="ci", replicas=3, cache_size="100Gi").manifests()
    workflow = k8s.BuildAndUpdateChart(
        "build-and-deploy", app, "docker.io/example/app", chart(),
        namespace="argo", cache_ref="local-registry:5000/app:buildcache", insecure_cache_registry=True,
    ).build()
    jit = k8s.SecretKeyRef("gha-jit-config", "jitconfig")
    github = k8s.RunnerJob.github("gha-runner", jit, namespace="ci", generate_name=True).build()
    github_buildah = k8s.RunnerJob.github(
        "gha-runner", jit, namespace="ci", builder="buildah", workspace_size="20Gi", storage_class="fast-ssd"
    ).build()
    token = k8s.SecretKeyRef("circleci-runner-token", "token")
    circleci = k8s.RunnerJob.circleci(
        "circleci-runner", token, namespace="ci", generate_name=True, builder="buildah"
    ).build()
    circleci_buildkit = k8s.RunnerJob.circleci("circleci-runner", token, namespace="ci").build()
    return [
        ("buildkit-job.yaml", [build_job]),
        ("buildkit-job-sys-admin.yaml", [build_job_sys_admin]),
        ("buildkitd-deployment.yaml", daemon),
        ("buildkitd-pool.yaml", pool),
        ("workflow-template.yaml", [workflow]),
        ("github-runner.yaml", [github]),
        ("github-runner-buildah.yaml", [github_buildah]),
        ("circleci-runner.yaml", [circleci]),
        ("circleci-runner-buildkit.yaml", [circleci_buildkit]),
    ]


@pytest.mark.parametrize("file,manifests", cases(), ids=[name for name, _ in cases()])
def test_rendering_is_byte_identical_to_the_rust_golden_files(file, manifests):
    golden = (GOLDEN / file).read_bytes()
    assert k8s.render_yaml(manifests).encode() == golden


@pytest.mark.parametrize("file,manifests", cases(), ids=[name for name, _ in cases()])
def test_golden_files_parse_back_into_the_same_manifests(file, manifests):
    parsed = k8s.parse_yaml((GOLDEN / file).read_text())
    assert parsed == manifests
    assert [m.kind for m in parsed] == [m.kind for m in manifests]
    for manifest in parsed:
        assert k8s.Manifest.from_dict(manifest.to_dict()) == manifest
        assert manifest.to_yaml() in k8s.render_yaml(manifests)


def test_manifest_accessors_and_dicts():
    job = k8s.BuildJob("build-app", "https://github.com/org/app.git", "docker.io/org/app",
                       namespace="ci", tag="2.0.0", labels={"team": "web"},
                       resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}).build()
    assert (job.kind, job.name, job.namespace) == ("Job", "build-app", "ci")
    data = job.to_dict()
    assert data["apiVersion"] == "batch/v1" and data["kind"] == "Job"
    assert data["metadata"]["labels"]["team"] == "web"
    container = data["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["IMAGE_TAG"] == "2.0.0"
    assert "2.0.0" not in container["args"][0], "values must not appear in the script"
    assert container["args"][0] == k8s.BUILD_SCRIPT
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    security = container["securityContext"]
    assert security["privileged"] is False and security["runAsUser"] == k8s.BUILDKIT_UID
    assert "capabilities" not in security
    assert k8s.render_yaml(job) == k8s.render_yaml([job])


def test_security_options_reach_the_builder():
    hardened = k8s.BuilderSecurity(sys_admin=True, allow_privilege_escalation=False)
    assert (hardened.sys_admin, hardened.allow_privilege_escalation) == (True, False)
    job = k8s.RunnerJob.github("gha", k8s.SecretKeyRef("jit", "config"), security=hardened).build()
    pod = job.to_dict()["spec"]["template"]["spec"]
    builder = pod["initContainers"][0]
    assert builder["restartPolicy"] == "Always"
    assert builder["securityContext"]["capabilities"] == {"add": ["SYS_ADMIN"]}
    assert builder["securityContext"]["allowPrivilegeEscalation"] is False
    runner = pod["containers"][0]
    assert runner["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_daemon_address_and_parts():
    daemon = k8s.BuildkitDaemon("buildkitd", namespace="ci", port=4321)
    assert daemon.address == "tcp://buildkitd.ci.svc:4321"
    assert [m.kind for m in daemon.manifests()] == ["Deployment", "Service"]
    assert daemon.manifests() == [daemon.deployment(), daemon.service()]
    assert k8s.BuildkitDaemon("b").address == "tcp://b:1234"


def test_pool_address_members_and_parts():
    pool = k8s.BuildkitPool(namespace="ci", replicas=2, port=4321)
    assert pool.address == "dns+tcp://buildkitd-pool.ci.svc:4321"
    assert pool.member_addresses == [
        "tcp://buildkitd-pool-0.buildkitd-pool.ci.svc:4321",
        "tcp://buildkitd-pool-1.buildkitd-pool.ci.svc:4321",
    ]
    assert "*.buildkitd-pool.ci.svc.cluster.local" in pool.certificate_dns_names
    assert [m.kind for m in pool.manifests()] == ["Service", "StatefulSet"]
    assert pool.manifests() == [pool.service(), pool.statefulset()]
    for bad, option in [({"cache_size": "1.2.3Gi"}, "cache size"), ({"replicas": 0}, "replicas"),
                        ({"storage_class": "Fast SSD"}, "storage class")]:
        with pytest.raises(cicd_agents.InvalidOption) as info:
            k8s.BuildkitPool("pool", **bad).manifests()
        assert info.value.option == option, bad


def test_invalid_values_name_the_option():
    job = k8s.BuildJob("build-app", "https://github.com/org/app.git", "docker.io/org/app", tag="1.0,push=false")
    with pytest.raises(cicd_agents.InvalidOption) as info:
        job.build()
    assert info.value.option == "tag"
    assert "1.0,push=false" in str(info.value)
    with pytest.raises(cicd_agents.InvalidOption) as info:
        k8s.BuildkitDaemon("Bad_Name").manifests()
    assert info.value.option == "name"
    with pytest.raises(cicd_agents.InvalidOption) as info:
        k8s.RunnerJob.circleci("runner", k8s.SecretKeyRef("tok", "token"), builder="kaniko")
    assert info.value.option == "builder"
    with pytest.raises(TypeError):
        k8s.BuildJob("a", "https://x/y.git", "docker.io/x/y", resources="2Gi")


def test_parse_errors_name_the_document():
    text = k8s.render_yaml(k8s.BuildkitDaemon("buildkitd").manifests()) + "---\napiVersion: v1\nkind: ConfigMap\n"
    with pytest.raises(k8s.K8sError) as info:
        k8s.parse_yaml(text)
    assert info.value.index == 3
    assert "ConfigMap" in str(info.value)
    assert isinstance(info.value, cicd_agents.Error)
    assert k8s.K8sError is cicd_agents.K8sError
    with pytest.raises(k8s.K8sError):
        k8s.Manifest.from_dict({"apiVersion": "v1", "kind": "Pod"})


def test_the_readme_example_renders_parseable_yaml(capsys):
    import re

    readme = (REPO_ROOT / "py-bindings" / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "from cicd_agents import k8s" in b)
    exec(compile(block, "README.md", "exec"), {})
    manifests = k8s.parse_yaml(capsys.readouterr().out)
    assert [m.kind for m in manifests] == ["Job", "Job", "Deployment", "Service"]
    assert manifests[1].name == "gha-runner-"


def _env(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_git_token_is_scoped_and_a_plain_http_registry_can_be_pushed_to():
    token = k8s.SecretKeyRef("git-token", "token")
    job = k8s.BuildJob("build-app", "https://git.example.com:8443/org/app.git", "registry.ci.svc:5000/app",
                       git_token=token, insecure_registry=True).build().to_dict()
    env = _env(job["spec"]["template"]["spec"]["containers"][0])
    assert env["GIT_AUTH_HOST"] == "git.example.com:8443"
    assert env["PUSH_INSECURE"] == "true"
    assert "id=GIT_AUTH_TOKEN.${GIT_AUTH_HOST},env=GIT_AUTH_TOKEN" in k8s.BUILD_SCRIPT
    chart = k8s.ChartUpdate("https://git.example.com/org/charts.git", "main", "values.yaml", "image.tag", "tool:1")
    workflow = k8s.BuildAndUpdateChart("build-and-deploy", "https://git.example.com/org/app.git", "app", chart,
                                       git_token=token, insecure_registry=True).build().to_dict()
    build = next(t for t in workflow["spec"]["templates"] if t["name"] == "build")
    env = _env(build["container"])
    assert env["GIT_AUTH_HOST"] == "git.example.com" and env["PUSH_INSECURE"] == "true"
    update = next(t for t in workflow["spec"]["templates"] if t["name"] == "update-chart")
    assert "--value=$(IMAGE_TAG)" in update["container"]["args"]
    assert k8s.DEFAULT_BUILDKIT_IMAGE.startswith("docker.io/moby/buildkit:v0.26.")


def test_kubernetes_names_and_quantities_are_checked():
    for make, option in [
        (lambda: k8s.BuildkitDaemon("1buildkitd").manifests(), "name"),
        (lambda: k8s.BuildJob("a" * 64, "https://x/y.git", "app").build(), "name"),
        (lambda: k8s.RunnerJob.github("r", k8s.SecretKeyRef("s", "k"), workspace_size="1.2.3Gi").build(), "workspace size"),
        (lambda: k8s.RunnerJob.github("r", k8s.SecretKeyRef("s", "k"), workspace_size="0").build(), "workspace size"),
        (lambda: k8s.BuildJob("b", "https://x/{{workflow.name}}.git", "app").build(), "git url"),
    ]:
        with pytest.raises(cicd_agents.InvalidOption) as info:
            make()
        assert info.value.option == option
    job = k8s.BuildJob("build-", "https://x/y.git", "app", generate_name=True).build().to_dict()
    assert job["metadata"]["generateName"] == "build-"
    assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "build"
    runner = k8s.RunnerJob.github("r", k8s.SecretKeyRef("s", "k"), workspace_size="1e3").build()
    assert "storage: '1e3'" in runner.to_yaml()
