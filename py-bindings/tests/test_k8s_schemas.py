"""The rendered manifests against the real schemas, not just golden files.

A matrix of kinds and option combinations (including values a YAML 1.1 reader would misread
unquoted: ``no``, ``yes``, ``on``, ``1e3``) is rendered, read back with PyYAML (a YAML 1.1
reader, as kubectl is) and compared with the objects, then validated in strict mode
(unknown fields are errors) with ``kubernetes-validate`` against Kubernetes 1.30 (the floor
the README states) and the newest version it ships; the WorkflowTemplate is read with Argo's
models from ``hera`` and each of its containers is validated as a Pod's. The packages are
installed into the test venv by scripts/test-python.sh; without them this module fails.
"""

import copy

import kubernetes_validate
import pytest
import yaml
from hera.workflows.models import WorkflowTemplate as ArgoWorkflowTemplate

from cicd_agents import k8s

VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]

GIT = "https://git.example.com:8443/org/app.git"
TOKEN = k8s.SecretKeyRef("git-token", "token")
CHART = k8s.ChartUpdate("https://git.example.com/org/charts.git", "main", "charts/app/values.yaml",
                        "image.tag", "registry.example.com/cicd-agents:0.1.0")
RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}


def matrix():
    jit = k8s.SecretKeyRef("gha-jit", "jitconfig")
    circle = k8s.SecretKeyRef("circleci", "token")
    return {
        "job-defaults": [k8s.BuildJob("build-app", GIT, "docker.io/org/app").build()],
        "job-odd-values": [k8s.BuildJob(
            "build-", GIT, "registry.ci.svc:5000/org/app", namespace="no", generate_name=True, tag="yes",
            git_ref="refs/tags/v1.0", context_subdir="services/api", dockerfile="docker/Dockerfile.prod",
            cache_ref="registry.ci.svc:5000/org/app:buildcache", insecure_cache_registry=True,
            insecure_registry=True, git_token=TOKEN, sys_admin=True, resources=RESOURCES,
            service_account="builder", labels={"team": "on", "example.com/tier": "1e3"},
        ).build()],
        "job-anonymous-no-push": [k8s.BuildJob("b", GIT, "app", push=False, registry_secret=None, tag="1.10",
                                               security=k8s.BuilderSecurity(allow_privilege_escalation=False)).build()],
        "deployment": k8s.BuildkitDaemon("buildkitd", namespace="on", replicas=2, registry_secret="regcred",
                                         resources=RESOURCES, labels={"y": "n"}).manifests(),
        "pool": k8s.BuildkitPool("buildkitd-pool", namespace="on", replicas=3, registry_secret="regcred",
                                 cache_size="1e3", storage_class="fast", resources=RESOURCES,
                                 labels={"y": "n"}).manifests(),
        "pool-defaults": k8s.BuildkitPool().manifests(),
        "workflow-template": [k8s.BuildAndUpdateChart(
            "build-and-deploy", GIT, "docker.io/org/app", CHART, namespace="ci", default_tag="on",
            default_git_ref="refs/heads/main", cache_ref="registry.ci.svc:5000/org/app:cache",
            insecure_cache_registry=True, insecure_registry=True, git_token=TOKEN,
            service_account="argo-workflow", resources=RESOURCES, labels={"off": "yes"},
        ).build()],
        "job-kaniko": [k8s.BuildJob(
            "build-", GIT, "registry.ci.svc:5000/org/app", builder="kaniko", namespace="no",
            generate_name=True, tag="yes", git_ref="refs/tags/v1.0", context_subdir="services/api",
            cache_ref="registry.ci.svc:5000/org/app:buildcache", insecure_registry=True, git_token=TOKEN,
            resources=RESOURCES,
        ).build()],
        "workflow-template-kaniko": [k8s.BuildAndUpdateChart(
            "build-and-deploy", GIT, "docker.io/org/app", CHART, builder="kaniko", namespace="ci",
            default_tag="on", cache_ref="registry.ci.svc:5000/org/app:cache", git_token=TOKEN,
        ).build()],
        "github-runner-buildkit": [k8s.RunnerJob.github("gha-runner-", jit, namespace="ci", generate_name=True,
                                                        workspace_size="1e3", storage_class="fast").build()],
        "github-runner-buildah": [k8s.RunnerJob.github("gha", jit, builder="buildah", workspace_size="20Gi",
                                                       runner_resources=RESOURCES).build()],
        "circleci-runner": [k8s.RunnerJob.circleci("circleci-runner", circle, builder="buildkit",
                                                   registry_secret=None, service_account="runner").build()],
        "circleci-runner-buildah": [k8s.RunnerJob.circleci("c", circle, builder="buildah",
                                                           storage_driver="overlay").build()],
    }


CASES = matrix()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_yaml_1_1_reader_reads_back_exactly_the_objects(case):
    manifests = CASES[case]
    text = k8s.render_yaml(manifests)
    read = list(yaml.safe_load_all(text))
    assert read == [m.to_dict() for m in manifests]


def as_pods(template):
    """Each container template of a WorkflowTemplate as the Pod Argo would make of it."""
    pods = []
    for t in template["spec"]["templates"]:
        if "container" not in t:
            continue
        spec = {"containers": [t["container"]], "restartPolicy": "Never"}
        if t.get("volumes"):
            spec["volumes"] = t["volumes"]
        if t.get("securityContext"):
            spec["securityContext"] = t["securityContext"]
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": t["name"]}, "spec": spec})
    assert pods
    return pods


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_manifest_passes_the_kubernetes_schema_in_strict_mode(case, version):
    for manifest in CASES[case]:
        obj = yaml.safe_load(manifest.to_yaml())
        objects = as_pods(obj) if manifest.kind == "WorkflowTemplate" else [obj]
        for each in objects:
            kubernetes_validate.validate(each, version, strict=True)


def drop_none(value):
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


@pytest.mark.parametrize("case", ["workflow-template", "workflow-template-kaniko"])
def test_the_workflow_template_matches_argos_models(case):
    manifest = CASES[case][0]
    obj = yaml.safe_load(manifest.to_yaml())
    model = ArgoWorkflowTemplate.model_validate(copy.deepcopy(obj))
    # Nothing was dropped (unknown field) or coerced (a bool where a string belongs).
    dumped = drop_none(model.model_dump(by_alias=True, exclude_none=True, mode="json"))
    assert dumped == obj


def test_the_schema_checks_can_fail():
    # A check that cannot fail is a defect: the unquoted forms the issue found are refused.
    job = yaml.safe_load(CASES["job-odd-values"][0].to_yaml())
    job["metadata"]["namespace"] = False  # what `namespace: no` reads as in YAML 1.1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, "1.30.0", strict=True)
    job = yaml.safe_load(CASES["job-defaults"][0].to_yaml())
    job["spec"]["template"]["spec"]["containers"][0]["unknownField"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[-1], strict=True)
    workflow = yaml.safe_load(CASES["workflow-template"][0].to_yaml())
    workflow["spec"]["arguments"]["parameters"][0]["value"] = True  # `value: on` in YAML 1.1
    with pytest.raises(Exception):
        model = ArgoWorkflowTemplate.model_validate(workflow)
        assert drop_none(model.model_dump(by_alias=True, exclude_none=True, mode="json")) == workflow
