"""The k3s manifests: they render, every object passes the offline schemas, and every workload
keeps Restricted Pod Security, its configuration within the settings model, and only the
network flows of the design.

The objects are those ``kubectl kustomize local_emulators/k3s`` renders, plus the Job the
Kubernetes launcher makes from ``job-template.yaml`` (through the launcher's own
``render_job_manifest``), so what is checked is what a cluster would receive.
"""

from __future__ import annotations

import base64
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from podscribe.jobs import Job
from podscribe.jobs.launchers.kubernetes import job_name, render_job_manifest
from podscribe.settings import Settings, env_name, load_settings
from tests.fakes.jobs import dispatched_job
from tests.services import missing_service

REPO = Path(__file__).resolve().parents[2]
K3S = REPO / "local_emulators" / "k3s"
TEMPLATE = K3S / "job-template.yaml"
NAMESPACE = "podscribe"
# k3s v1.30 is the oldest release the manifests target; the newest schemas catch removals.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
NAME_LABEL = "app.kubernetes.io/name"
DISPATCH_ACCOUNT = "podscribe-dispatch"
CHECKED_PREFIXES = ("PODSCRIBE_", "WHISPER_")
CHECKED_NAMES = {
    "CLOUDSQL_CONNECTION_NAME",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
METADATA_RANGE = "169.254.0.0/16"
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "secret",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "downwardAPI",
}
THIRD_PARTY_IMAGES = {
    "postgres:15.8",
    "redis:7.4.1",
    "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
    "curlimages/curl:8.10.1",
    "nginxinc/nginx-unprivileged:1.26.2-alpine",
}
REGISTRY = "registry.localhost:5000"
"""The local registry our images are pushed to (k3s mirrors it: docs/k3s.md)."""
OUR_IMAGES = {f"{REGISTRY}/podscribe-functions:dev", f"{REGISTRY}/podscribe-job:dev"}

# (from, to, port): every flow between pods of the namespace that the design needs.
EXPECTED_FLOWS = {
    ("frontend", "submit", 8080),
    ("submit", "postgres", 5432),
    ("submit", "redis", 6379),
    ("submit", "minio", 9000),
    ("dispatch", "postgres", 5432),
    ("dispatch", "redis", 6379),
    ("dispatch", "minio", 9000),
    ("sweep-trigger", "sweep", 8080),
    ("sweep", "postgres", 5432),
    ("sweep", "redis", 6379),
    ("podscribe-job", "postgres", 5432),
    ("podscribe-job", "minio", 9000),
    ("provision-bucket", "minio", 9000),
}
NEEDS_DNS = {
    "frontend",
    "submit",
    "dispatch",
    "sweep",
    "sweep-trigger",
    "podscribe-job",
    "provision-bucket",
}
WORKLOADS = NEEDS_DNS | {"postgres", "redis", "minio"}
IMAGE_USERS = {"frontend": 101}
"""Workloads that run as their image's own fixed user (nginx-unprivileged's is 101) rather
than an id >= 10000 of ours."""
TMP = "/tmp"  # noqa: S108 - the path every pod must mount as an emptyDir


@dataclass(frozen=True)
class Workload:
    """A pod template and where it came from."""

    kind: str
    name: str
    metadata: dict[str, Any]
    pod_labels: dict[str, str]
    pod: dict[str, Any]

    @property
    def label(self) -> str:
        return self.pod_labels[NAME_LABEL]

    def containers(self) -> Iterator[dict[str, Any]]:
        yield from self.pod.get("initContainers", [])
        yield from self.pod["containers"]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing_service("kubectl (client only) renders the kustomization")
    result = subprocess.run(
        [str(kubectl), "kustomize", str(K3S)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def launched_job() -> tuple[Job, dict[str, Any]]:
    job = dispatched_job()
    return job, render_job_manifest(TEMPLATE.read_text(encoding="utf-8"), job)


@pytest.fixture(scope="module")
def objects(
    rendered: list[dict[str, Any]], launched_job: tuple[Job, dict[str, Any]]
) -> list[dict[str, Any]]:
    return [*rendered, launched_job[1]]


def pod_of(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(pod template metadata, pod spec) of a workload object, or None."""
    spec = document.get("spec", {})
    if document["kind"] in {"Deployment", "StatefulSet", "Job"}:
        template = spec["template"]
    elif document["kind"] == "CronJob":
        template = spec["jobTemplate"]["spec"]["template"]
    else:
        return None
    return template.get("metadata", {}), template["spec"]


@pytest.fixture(scope="module")
def workloads(objects: list[dict[str, Any]]) -> list[Workload]:
    found = []
    for document in objects:
        pod = pod_of(document)
        if pod is not None:
            metadata, spec = pod
            found.append(
                Workload(
                    kind=document["kind"],
                    name=document["metadata"]["name"],
                    metadata=document["metadata"],
                    pod_labels=metadata.get("labels", {}),
                    pod=spec,
                )
            )
    return found


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in objects if document["kind"] == kind]


def the(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [
        document
        for document in objects
        if document["kind"] == kind and document["metadata"]["name"] == name
    ]
    return found


def configmap_named(objects: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    """A generated ConfigMap carries a content hash after its name."""
    [found] = [
        document
        for document in by_kind(objects, "ConfigMap")
        if document["metadata"]["name"] == prefix
        or document["metadata"]["name"].startswith(f"{prefix}-")
    ]
    return found


def quantity(value: str | int) -> float:
    """A Kubernetes quantity in base units (bytes, cores)."""
    text = str(value)
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3}
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


# --- rendering and schemas -------------------------------------------------------------------


def test_the_kustomization_renders_every_part(rendered: list[dict[str, Any]]) -> None:
    kinds = {(document["kind"], document["metadata"]["name"]) for document in rendered}
    for expected in [
        ("Namespace", NAMESPACE),
        ("Deployment", "submit"),
        ("Deployment", "frontend"),
        ("Service", "frontend"),
        ("Deployment", "dispatch"),
        ("Deployment", "sweep"),
        ("StatefulSet", "redis"),
        ("StatefulSet", "minio"),
        ("Service", "minio"),
        ("StatefulSet", "postgres"),
        ("CronJob", "sweep-trigger"),
        ("Job", "provision-bucket"),
        ("Ingress", "frontend"),
        ("Role", "podscribe-job-launcher"),
        ("RoleBinding", "podscribe-job-launcher"),
        ("NetworkPolicy", "default-deny"),
    ]:
        assert expected in kinds
    # The template is data for the launcher, never applied on its own.
    assert not [d for d in rendered if d["kind"] == "Job" and "JOB" in d["metadata"]["name"]]
    for document in rendered:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == NAMESPACE, document["metadata"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_the_strict_offline_schema(
    objects: list[dict[str, Any]], version: str
) -> None:
    problems = []
    for document in objects:
        where = f"{document['kind']}/{document['metadata']['name']}"
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{where}: {error.message}")
    assert not problems, "\n".join(problems)
    assert len(objects) > 30


def test_the_validator_would_catch_a_mistake(rendered: list[dict[str, Any]]) -> None:
    """The strict schema is really applied: an unknown field in a pod spec is refused."""
    broken = yaml.safe_load(yaml.safe_dump(the(rendered, "Deployment", "submit")))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


# --- Restricted Pod Security -----------------------------------------------------------------


def test_the_namespace_enforces_restricted_pod_security(rendered: list[dict[str, Any]]) -> None:
    labels = the(rendered, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_every_workload_is_covered(workloads: list[Workload]) -> None:
    assert {workload.label for workload in workloads} == WORKLOADS
    kinds = {workload.kind for workload in workloads}
    assert kinds == {"Deployment", "StatefulSet", "Job", "CronJob"}


def pod_problems(workload: Workload) -> list[str]:
    """What keeps a pod spec from Restricted Pod Security (and our own stricter rules)."""
    where = f"{workload.kind}/{workload.name}"
    pod = workload.pod
    problems = []
    context = pod.get("securityContext", {})
    if context.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod runAsNonRoot")
    for field in ("runAsUser", "runAsGroup", "fsGroup"):
        if workload.label in IMAGE_USERS:
            if context.get(field) != IMAGE_USERS[workload.label]:
                problems.append(f"{where}: pod {field} must be the image's own user")
        elif not isinstance(context.get(field), int) or context[field] < 10000:
            problems.append(f"{where}: pod {field} must be an explicit id >= 10000")
    if context.get("seccompProfile") != {"type": "RuntimeDefault"}:
        problems.append(f"{where}: pod seccompProfile")
    problems += [
        f"{where}: {name}" for name in ("hostNetwork", "hostPID", "hostIPC") if pod.get(name)
    ]
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"{where}: volume {volume['name']} is {kinds}")
        empty_dir = volume.get("emptyDir")
        if empty_dir is not None and empty_dir.get("medium") == "Memory":
            problems.append(f"{where}: emptyDir {volume['name']} is in memory")
        if empty_dir is not None and "sizeLimit" not in empty_dir:
            problems.append(f"{where}: emptyDir {volume['name']} has no sizeLimit")
    return problems


def container_problems(workload: Workload, container: dict[str, Any]) -> list[str]:
    """What keeps one container (or initContainer) from the Restricted profile."""
    where = f"{workload.kind}/{workload.name}/{container['name']}"
    problems = []
    security = container.get("securityContext", {})
    expected = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    problems += [
        f"{where}: securityContext.{field}"
        for field, value in expected.items()
        if security.get(field) != value
    ]
    if security.get("privileged"):
        problems.append(f"{where}: privileged")
    resources = container.get("resources", {})
    problems += [
        f"{where}: no {bound}.{resource}"
        for bound in ("requests", "limits")
        for resource in ("cpu", "memory", "ephemeral-storage")
        if resource not in resources.get(bound, {})
    ]
    volumes = {volume["name"]: volume for volume in workload.pod.get("volumes", [])}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    tmp = volumes.get(mounts.get(TMP, ""))
    if tmp is None or "emptyDir" not in tmp:
        problems.append(f"{where}: {TMP} is not an emptyDir")
    return problems


def test_every_pod_runs_restricted(workloads: list[Workload]) -> None:
    problems: list[str] = []
    containers = 0
    for workload in workloads:
        problems += pod_problems(workload)
        for container in workload.containers():
            containers += 1
            problems += container_problems(workload, container)
    assert not problems, "\n".join(problems)
    # with the initContainers: migrate and wait in submit, dispatch and sweep, wait in the job
    assert containers >= len(WORKLOADS) + 7


def test_the_check_catches_a_drifting_container(workloads: list[Workload]) -> None:
    [submit] = [w for w in workloads if w.label == "submit"]
    drifted = yaml.safe_load(yaml.safe_dump(submit.pod["initContainers"][0]))
    drifted["securityContext"]["readOnlyRootFilesystem"] = False
    del drifted["resources"]["limits"]["ephemeral-storage"]
    assert container_problems(submit, drifted) == [
        "Deployment/submit/migrate: securityContext.readOnlyRootFilesystem",
        "Deployment/submit/migrate: no limits.ephemeral-storage",
    ]


def test_only_the_launcher_identity_holds_an_api_token(
    rendered: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    for account in by_kind(rendered, "ServiceAccount"):
        name = account["metadata"]["name"]
        assert account["automountServiceAccountToken"] is (name == DISPATCH_ACCOUNT), name
    launchers = set()
    for workload in workloads:
        account_name = workload.pod.get("serviceAccountName")
        assert account_name, workload.name
        assert workload.pod["automountServiceAccountToken"] is (account_name == DISPATCH_ACCOUNT)
        if account_name == DISPATCH_ACCOUNT:
            launchers.add(workload.label)
    assert launchers == {"dispatch", "sweep"}


def test_the_launcher_may_only_manage_jobs_in_its_namespace(
    rendered: list[dict[str, Any]],
) -> None:
    assert not by_kind(rendered, "ClusterRole")
    assert not by_kind(rendered, "ClusterRoleBinding")
    [role] = by_kind(rendered, "Role")
    rules = {
        (tuple(rule["apiGroups"]), tuple(rule["resources"])): set(rule["verbs"])
        for rule in role["rules"]
    }
    assert rules == {
        (("batch",), ("jobs",)): {"create", "get", "list", "watch", "delete"},
        (("batch",), ("jobs/status",)): {"get"},
    }
    [binding] = by_kind(rendered, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [
        ("ServiceAccount", DISPATCH_ACCOUNT)
    ]


ALLOWED_SKIPS = {
    "CKV_K8S_15": "imagePullPolicy Always: images are imported into k3s, offline",
    "CKV_K8S_21": "default namespace: only the template, which the launcher places",
    "CKV_K8S_35": "secrets as files: podscribe reads env vars, as in GCP",
    "CKV_K8S_38": "service account token: only the launcher identity",
    "CKV_K8S_40": "high UID: only nginx-unprivileged, whose image's user is 101",
    "CKV_K8S_43": "image digests: pinned version tags, digests unresolvable offline",
    "CKV_K8S_8": "liveness probe: only dispatch, a stream consumer with no HTTP server",
    "CKV_K8S_9": "readiness probe: only dispatch, a stream consumer with no HTTP server",
}


def test_every_checkov_skip_is_justified_in_place(objects: list[dict[str, Any]]) -> None:
    skips = []
    for document in objects:
        annotations = document["metadata"].get("annotations", {})
        for key, value in annotations.items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert len(reason.split()) >= 6, f"{document['metadata']['name']}: {value}"
                skips.append(check)
    assert set(skips) == set(ALLOWED_SKIPS)
    token_holders = [
        document["metadata"]["name"]
        for document in objects
        if any(
            value.startswith("CKV_K8S_38=")
            for value in document["metadata"].get("annotations", {}).values()
        )
    ]
    assert sorted(token_holders) == ["dispatch", "sweep"]
    probeless = [
        document["metadata"]["name"]
        for document in objects
        for value in document["metadata"].get("annotations", {}).values()
        if value.startswith(("CKV_K8S_8=", "CKV_K8S_9="))
    ]
    assert probeless == ["dispatch", "dispatch"]


def test_images_are_pinned(workloads: list[Workload]) -> None:
    images = {container["image"] for w in workloads for container in w.containers()}
    assert images == THIRD_PARTY_IMAGES | OUR_IMAGES
    for workload in workloads:
        for container in workload.containers():
            assert container["imagePullPolicy"] == "IfNotPresent"


# --- configuration ---------------------------------------------------------------------------


def checked(name: str) -> bool:
    return name.startswith(CHECKED_PREFIXES) or name in CHECKED_NAMES


def environment_of(
    container: dict[str, Any], objects: list[dict[str, Any]]
) -> dict[str, str | None]:
    """Every variable a container gets: its envFrom sources, then its own env (None: a ref)."""
    found: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = the(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
            found.update(data)
        if "secretRef" in source:
            secret = the(objects, "Secret", source["secretRef"]["name"])
            found.update(secret.get("stringData", {}))
            found.update(
                {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
            )
    for variable in container.get("env", []):
        found[variable["name"]] = variable.get("value")
    return found


def test_every_configured_variable_is_a_setting(
    objects: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    aliases = {env_name(field) for field in Settings.model_fields}
    configured: set[str] = set()
    for workload in workloads:
        for container in workload.containers():
            configured |= {name for name in environment_of(container, objects) if checked(name)}
    for configmap in by_kind(objects, "ConfigMap"):
        configured |= {name for name in configmap.get("data", {}) if checked(name)}
    for secret in by_kind(objects, "Secret"):
        configured |= {name for name in secret.get("stringData", {}) if checked(name)}
    assert configured, "nothing was collected"
    assert configured - aliases == set()
    # The variables the local Kubernetes profile rests on are there.
    assert {
        "PODSCRIBE_ENV",
        "PODSCRIBE_LAUNCHER",
        "PODSCRIBE_K8S_NAMESPACE",
        "PODSCRIBE_K8S_JOB_TEMPLATE",
        "PODSCRIBE_API_KEYS",
        "PODSCRIBE_DATABASE_URL",
        "WHISPER_DEVICE",
        "WHISPER_COMPUTE_TYPE",
        "PODSCRIBE_PUBLIC_BASE_URL",  # links never follow a request's Host header
        "PODSCRIBE_TRUSTED_PROXY_HOPS",
    } <= configured


def test_every_podscribe_container_gets_valid_settings(
    objects: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    """The values, not only the names, pass the settings model (what the pods would load)."""
    field_of = {env_name(field): field for field in Settings.model_fields}
    secret = the(objects, "Secret", "podscribe-secrets")["stringData"]
    seen = {}
    for workload in workloads:
        for container in workload.containers():
            if "/podscribe-" not in container["image"] or not container.get("envFrom"):
                continue  # not ours, or an init wait that loads no settings
            overrides: dict[str, Any] = {}
            for variable in container.get("envFrom", []):
                data = the(objects, "ConfigMap", variable["configMapRef"]["name"])["data"]
                overrides |= {field_of[k]: v for k, v in data.items() if checked(k)}
            for variable in container.get("env", []):
                name = variable["name"]
                if not checked(name):
                    continue
                ref = variable.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    overrides[field_of[name]] = secret[ref["secretKeyRef"]["key"]]
                elif "fieldRef" in ref:
                    assert ref["fieldRef"]["fieldPath"] == "metadata.namespace"
                    overrides[field_of[name]] = NAMESPACE
                else:
                    overrides[field_of[name]] = variable["value"]
            settings = load_settings(**overrides)
            assert settings.env == "local"
            if workload.label != "provision-bucket":  # it only talks to MinIO
                assert settings.database_url is not None
            seen[f"{workload.label}/{container['name']}"] = settings
    job = seen["podscribe-job/transcribe"]
    assert (job.whisper_device, job.whisper_compute_type) == ("cpu", "int8")
    for launcher in ("dispatch/dispatch", "sweep/sweep"):
        assert seen[launcher].launcher == "kubernetes"
        assert seen[launcher].k8s_namespace == NAMESPACE
        assert str(seen[launcher].k8s_job_template) == "/etc/podscribe/job-template.yaml"
    assert seen["submit/submit"].api_key_values
    # Every part that sends webhooks signs them (an unsigned webhook cannot be trusted).
    for sender in ("dispatch/dispatch", "sweep/sweep", "podscribe-job/transcribe"):
        secret_value = seen[sender].webhook_secret
        assert secret_value is not None and secret_value.get_secret_value(), sender


def test_secrets_never_travel_as_plain_values(
    objects: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    sensitive = {
        "PODSCRIBE_API_KEYS",
        "PODSCRIBE_DATABASE_URL",
        "PODSCRIBE_DB_PASSWORD",
        "PODSCRIBE_WEBHOOK_SECRET",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    for configmap in by_kind(objects, "ConfigMap"):
        assert not sensitive & set(configmap.get("data", {})), configmap["metadata"]["name"]
    for workload in workloads:
        for container in workload.containers():
            for variable in container.get("env", []):
                name = variable["name"]
                if name in sensitive or name.endswith("PASSWORD"):
                    assert "value" not in variable, (workload.name, name)
    values = the(objects, "Secret", "podscribe-secrets")["stringData"].values()
    assert all("not-secret" in value for value in values)  # visibly development values


# --- the job template ------------------------------------------------------------------------


def test_the_launcher_fills_in_the_template(launched_job: tuple[Job, dict[str, Any]]) -> None:
    job, manifest = launched_job
    assert manifest["metadata"]["name"] == job_name(job)
    assert "namespace" not in manifest["metadata"]  # the launcher's namespace applies
    assert manifest["spec"]["backoffLimit"] == 0
    pod = manifest["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["image"] == f"{REGISTRY}/podscribe-job:dev"
    assert container["command"] == ["python", "-m", "vertex_job"]
    assert container["args"] == ["--job-id", job.id]
    assert "${" not in yaml.safe_dump(manifest)


def test_the_job_keeps_its_model_cache_and_work_on_disk(
    objects: list[dict[str, Any]], launched_job: tuple[Job, dict[str, Any]]
) -> None:
    pod = launched_job[1]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
    env = environment_of(container, objects)
    for variable in ("WHISPER_MODEL_CACHE_DIR", "PODSCRIBE_WORK_DIR"):
        path = Path(str(env[variable]))
        [volume] = [
            volume
            for mount_path, volume in mounts.items()
            if path == Path(mount_path) or Path(mount_path) in path.parents
        ]
        assert "medium" not in volume["emptyDir"], variable
    total = sum(
        quantity(volume["emptyDir"]["sizeLimit"])
        for volume in volumes.values()
        if "emptyDir" in volume
    )
    limit = quantity(container["resources"]["limits"]["ephemeral-storage"])
    assert total <= limit


def test_dispatch_and_the_sweep_mount_the_template_the_kustomization_ships(
    rendered: list[dict[str, Any]],
) -> None:
    configmap = configmap_named(rendered, "podscribe-job-template")
    assert configmap["data"]["job-template.yaml"] == TEMPLATE.read_text(encoding="utf-8")
    for name in ("dispatch", "sweep"):
        pod = the(rendered, "Deployment", name)["spec"]["template"]["spec"]
        [container] = pod["containers"]
        env = {variable["name"]: variable for variable in container["env"]}
        template_path = Path(env["PODSCRIBE_K8S_JOB_TEMPLATE"]["value"])
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        [mount] = [
            m for m in container["volumeMounts"] if Path(m["mountPath"]) == template_path.parent
        ]
        assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
        assert template_path.name in configmap["data"]


# --- start-up and one-shot work --------------------------------------------------------------


def test_the_database_users_migrate_first_with_a_bounded_wait(
    rendered: list[dict[str, Any]],
) -> None:
    scripts = configmap_named(rendered, "podscribe-scripts")
    assert scripts["data"]["migrate.sh"] == (K3S / "scripts" / "migrate.sh").read_text()
    for name in ("submit", "dispatch", "sweep"):
        pod = the(rendered, "Deployment", name)["spec"]["template"]["spec"]
        init = pod["initContainers"][0]  # first: the others may need the schema
        assert init["command"] == ["/bin/sh", "/opt/podscribe/scripts/migrate.sh"]
        config = the(rendered, "ConfigMap", "podscribe-config")["data"]
        assert 0 < float(config["PODSCRIBE_DB_WAIT_SECONDS"]) <= 120


def test_one_shot_work_is_bounded(rendered: list[dict[str, Any]]) -> None:
    for job in by_kind(rendered, "Job"):
        assert 0 < job["spec"]["backoffLimit"] <= 6
        assert job["spec"]["activeDeadlineSeconds"] > 0
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    cron = the(rendered, "CronJob", "sweep-trigger")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert 0 < cron["jobTemplate"]["spec"]["backoffLimit"] <= 6
    assert cron["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0


# --- NetworkPolicies -------------------------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def policies_for(policies: list[dict[str, Any]], labels: dict[str, str], kind: str) -> list[Any]:
    return [
        policy
        for policy in policies
        if kind in policy["spec"]["policyTypes"] and selects(policy["spec"]["podSelector"], labels)
    ]


def ports_of(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(port.get("protocol", "TCP"), port["port"]) for port in rule.get("ports", [])}


def pod_flows(
    policies: list[dict[str, Any]], workloads: list[Workload], direction: str
) -> set[tuple[str, str, int]]:
    """(from, to, port) flows within the namespace one direction's rules allow."""
    flows = set()
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for subject in workloads:
        for policy in policies_for(policies, subject.pod_labels, direction):
            for rule in policy["spec"].get(key, []):
                for peer in rule.get(peers_key, []):
                    if "ipBlock" in peer or "namespaceSelector" in peer:
                        continue
                    for other in workloads:
                        if not selects(peer["podSelector"], other.pod_labels):
                            continue
                        for protocol, port in ports_of(rule):
                            assert protocol == "TCP"
                            pair = (subject.label, other.label)
                            if direction == "Ingress":
                                pair = (other.label, subject.label)
                            flows.add((*pair, port))
    return flows


def ip_egress_allowed(
    policies: list[dict[str, Any]], labels: dict[str, str], address: str, port: int
) -> bool:
    ip = ipaddress.ip_address(address)
    for policy in policies_for(policies, labels, "Egress"):
        for rule in policy["spec"].get("egress", []):
            if ("TCP", port) not in ports_of(rule):
                continue
            for peer in rule.get("to", []):
                block = peer.get("ipBlock")
                if block is None or ip not in ipaddress.ip_network(block["cidr"]):
                    continue
                if not any(ip in ipaddress.ip_network(e) for e in block.get("except", [])):
                    return True
    return False


@pytest.fixture(scope="module")
def policies(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_kind(rendered, "NetworkPolicy")


def test_everything_is_denied_by_default(policies: list[dict[str, Any]]) -> None:
    [deny] = [p for p in policies if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]


def test_every_workload_has_its_own_two_way_policy(
    policies: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    named = {policy["metadata"]["name"]: policy for policy in policies}
    for workload in workloads:
        policy = named[workload.label]
        assert policy["spec"]["podSelector"] == {"matchLabels": {NAME_LABEL: workload.label}}
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_pods_talk_along_the_designed_flows_only(
    policies: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    # Both ends must agree: a rule without its twin is a flow that silently does not work.
    assert pod_flows(policies, workloads, "Egress") == EXPECTED_FLOWS
    assert pod_flows(policies, workloads, "Ingress") == EXPECTED_FLOWS


def test_from_outside_only_traefik_reaches_the_front_end(
    policies: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    outside = []
    for workload in workloads:
        for policy in policies_for(policies, workload.pod_labels, "Ingress"):
            for rule in policy["spec"].get("ingress", []):
                assert rule.get("from"), f"{policy['metadata']['name']}: ingress from anywhere"
                for peer in rule["from"]:
                    assert "ipBlock" not in peer
                    if "namespaceSelector" in peer:
                        outside.append((workload.label, peer, ports_of(rule)))
    assert outside == [
        (
            "frontend",
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
            },
            {("TCP", 8080)},
        )
    ]


def test_dns_is_open_to_the_pods_that_resolve_names(
    policies: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    resolvers = set()
    for workload in workloads:
        for policy in policies_for(policies, workload.pod_labels, "Egress"):
            for rule in policy["spec"].get("egress", []):
                for peer in rule.get("to", []):
                    if "namespaceSelector" not in peer:
                        continue
                    assert peer == {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                    assert ports_of(rule) == {("UDP", 53), ("TCP", 53)}
                    resolvers.add(workload.label)
    assert resolvers == NEEDS_DNS


def test_the_job_reaches_the_internet_but_not_the_cluster_or_metadata(
    policies: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    [job] = [w for w in workloads if w.label == "podscribe-job"]
    blocks = [
        peer["ipBlock"]
        for policy in policies_for(policies, job.pod_labels, "Egress")
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]
    [block] = blocks
    assert block["cidr"] == "0.0.0.0/0"
    assert {*PRIVATE_RANGES, METADATA_RANGE} <= set(block["except"])

    def allowed(address: str, port: int) -> bool:
        return ip_egress_allowed(policies, job.pod_labels, address, port)

    assert allowed("93.184.215.14", 443)
    assert allowed("151.101.1.1", 80)
    assert not allowed("93.184.215.14", 22)  # only the ports the SSRF guard allows
    for address in (
        "10.43.0.1",
        "10.42.0.7",
        "172.17.0.1",
        "192.168.1.10",
        "100.64.0.1",
        "169.254.169.254",
        "127.0.0.1",
    ):
        for port in (80, 443, 6443):
            assert not allowed(address, port), (address, port)


def test_only_the_launchers_reach_the_kubernetes_api(
    policies: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    api_addresses = [("10.43.0.1", 443), ("192.168.1.10", 6443), ("10.0.0.5", 6443)]
    for workload in workloads:
        reach = [ip_egress_allowed(policies, workload.pod_labels, a, p) for a, p in api_addresses]
        if workload.label in {"dispatch", "sweep"}:
            assert all(reach), workload.label
            # ...webhooks to public addresses, and nothing else outside the namespace.
            assert ip_egress_allowed(policies, workload.pod_labels, "93.184.215.14", 443)
            assert not ip_egress_allowed(policies, workload.pod_labels, "93.184.215.14", 22)
            assert not ip_egress_allowed(policies, workload.pod_labels, "169.254.169.254", 80)
            assert not ip_egress_allowed(policies, workload.pod_labels, "10.0.0.5", 443)
        else:
            assert not any(reach), workload.label
        if workload.label not in {"dispatch", "sweep", "podscribe-job"}:
            for address, port in (("93.184.215.14", 443), ("169.254.169.254", 80)):
                assert not ip_egress_allowed(policies, workload.pod_labels, address, port)


# --- the front end ---------------------------------------------------------------------------


def test_the_front_end_is_nginx_unprivileged_in_front_of_submit(
    rendered: list[dict[str, Any]], workloads: list[Workload]
) -> None:
    [frontend] = [w for w in workloads if w.label == "frontend"]
    [container] = frontend.pod["containers"]
    assert container["image"].startswith("nginxinc/nginx-unprivileged:")
    security = container["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (101, 101)
    assert [port["containerPort"] for port in container["ports"]] == [8080]
    volumes = {volume["name"]: volume for volume in frontend.pod["volumes"]}
    mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
    # The root filesystem is read-only: nginx writes its cache and temp files here only.
    assert "emptyDir" in mounts["/var/cache/nginx"]
    assert "emptyDir" in mounts[TMP]
    configmap = configmap_named(rendered, "podscribe-frontend")
    assert mounts["/etc/nginx/nginx.conf"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert "nginx.conf" in configmap["data"]
    # The Ingress sends everything to the front end, which the frontend Service selects.
    [ingress] = by_kind(rendered, "Ingress")
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert (path["path"], path["backend"]["service"]["name"]) == ("/", "frontend")
    service = the(rendered, "Service", "frontend")
    assert service["spec"]["selector"] == {NAME_LABEL: "frontend"}
    assert [port["port"] for port in service["spec"]["ports"]] == [8080]


def test_submit_trusts_both_proxies_in_front_of_it(rendered: list[dict[str, Any]]) -> None:
    # Traefik appends the caller, nginx appends Traefik: the caller is two from the end.
    config = the(rendered, "ConfigMap", "podscribe-config")["data"]
    assert config["PODSCRIBE_TRUSTED_PROXY_HOPS"] == "2"
