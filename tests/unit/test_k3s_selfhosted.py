"""The k3s stack runs on real servers only: PostgreSQL, Redis and MinIO, no emulator or fake.

What the rendered manifests (and the Job the launcher makes from the template) must show:
no image, command or variable of the Pub/Sub emulator, fake-gcs-server or moto; the settings
point storage at MinIO over the S3 API and wake-ups at a Redis stream that dispatch consumes;
each server keeps its data on a volume; the pods that need a server wait for it with a
bounded budget; the job's model cache is on disk and large enough; the GPU variant documented
in the template is a valid Job.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from podscribe.jobs import Job
from podscribe.jobs.launchers.kubernetes import render_job_manifest
from podscribe.settings import load_settings
from tests.fakes.jobs import dispatched_job
from tests.unit.test_k3s_manifests import (
    KUBERNETES_VERSIONS,
    NAME_LABEL,
    REGISTRY,
    TEMPLATE,
    Workload,
    container_problems,
    launched_job,
    objects,
    quantity,
    rendered,
    the,
    workloads,
)

__all__ = ["launched_job", "objects", "rendered", "workloads"]  # shared module fixtures

EMULATOR_MARKS = ("pubsub-emulator", "fake-gcs", "moto", "emulators", "google-cloud-cli")
EMULATOR_VARIABLES = {"PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
MIN_MODEL_CACHE = 4 * 2**30
"""The production model (large-v3-turbo, 1.6 GB) plus room for another and a download."""


def words_of(document: dict[str, Any]) -> list[str]:
    """Every image, command word, argument and variable (name and value) in a document."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"image", "command", "args"}:
                    found.extend([value] if isinstance(value, str) else value)
                elif key in {"env", "data", "stringData"}:
                    pairs = (
                        value
                        if isinstance(value, list)
                        else [{"name": k, "value": v} for k, v in value.items()]
                    )
                    for pair in pairs:
                        found.append(pair["name"])
                        found.append(str(pair.get("value", "")))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: value for key, value in document.items() if key != "metadata"})
    return found


def emulator_traces(documents: list[dict[str, Any]]) -> list[str]:
    traces = []
    for document in documents:
        where = f"{document['kind']}/{document['metadata']['name']}"
        for word in words_of(document):  # the scripts' and the template's text included
            if word in EMULATOR_VARIABLES or any(mark in word for mark in EMULATOR_MARKS):
                traces.append(f"{where}: {word}")
    return traces


def test_no_emulator_or_fake_is_in_the_rendered_stack(objects: list[dict[str, Any]]) -> None:
    assert emulator_traces(objects) == []
    names = {document["metadata"]["name"] for document in objects}
    assert not names & {"pubsub", "fake-gcs", "provision-pubsub", "provision-gcs"}


def test_the_check_would_catch_an_emulator(objects: list[dict[str, Any]]) -> None:
    pubsub = {
        "kind": "Deployment",
        "metadata": {"name": "pubsub"},
        "spec": {"template": {"spec": {"containers": [{
            "image": "gcr.io/google.com/cloudsdktool/google-cloud-cli:528.0.0-emulators",
            "command": ["gcloud", "beta", "emulators", "pubsub", "start"],
        }]}}},
    }  # fmt: skip
    config = yaml.safe_load(yaml.safe_dump(the(objects, "ConfigMap", "podscribe-config")))
    config["data"]["STORAGE_EMULATOR_HOST"] = "http://fake-gcs:4443"
    assert emulator_traces([pubsub, config]) == [
        "Deployment/pubsub: gcr.io/google.com/cloudsdktool/google-cloud-cli:528.0.0-emulators",
        "Deployment/pubsub: emulators",
        "ConfigMap/podscribe-config: STORAGE_EMULATOR_HOST",
        "ConfigMap/podscribe-config: http://fake-gcs:4443",
    ]


def test_storage_is_minio_over_s3_and_wake_ups_a_redis_stream(
    rendered: list[dict[str, Any]],
) -> None:
    config = the(rendered, "ConfigMap", "podscribe-config")["data"]
    settings = load_settings(
        env="local",
        storage_backend=config["PODSCRIBE_STORAGE_BACKEND"],
        s3_endpoint_url=config["PODSCRIBE_S3_ENDPOINT_URL"],
        wakeup_backend=config["PODSCRIBE_WAKEUP_BACKEND"],
        redis_url=config["PODSCRIBE_REDIS_URL"],
    )
    assert (settings.storage_backend, settings.wakeup_backend) == ("s3", "redis-streams")
    # Each URL names a Service that selects the real server's pods on the server's port.
    for url, name, port in (
        (settings.s3_endpoint_url, "minio", 9000),
        (settings.redis_url, "redis", 6379),
    ):
        assert url is not None and f"//{name}:{port}" in url
        service = the(rendered, "Service", name)
        assert service["spec"]["selector"] == {NAME_LABEL: name}
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
    minio = the(rendered, "StatefulSet", "minio")["spec"]["template"]["spec"]
    [container] = minio["containers"]
    assert container["image"].startswith("quay.io/minio/minio:RELEASE.")
    assert container["readinessProbe"]["httpGet"]["path"] == "/minio/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/minio/health/live"
    # MinIO's root keys are the keys the application signs with: one value, one place.
    keys = {
        variable["name"]: variable["valueFrom"]["secretKeyRef"]["key"]
        for variable in container["env"]
        if "valueFrom" in variable
    }
    assert keys == {
        "MINIO_ROOT_USER": "AWS_ACCESS_KEY_ID",
        "MINIO_ROOT_PASSWORD": "AWS_SECRET_ACCESS_KEY",
    }


def test_dispatch_is_a_long_running_stream_consumer(rendered: list[dict[str, Any]]) -> None:
    pod = the(rendered, "Deployment", "dispatch")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["python", "-m", "podscribe.jobs.stream_consumer"]
    assert "ports" not in container  # nothing calls it...
    assert not [
        d for d in rendered if d["kind"] == "Service" and d["metadata"]["name"] == "dispatch"
    ]
    assert "livenessProbe" not in container  # ...and it has no HTTP server to probe
    config = the(rendered, "ConfigMap", "podscribe-config")["data"]
    settings = load_settings(env="local", wakeup_backend=config["PODSCRIBE_WAKEUP_BACKEND"])
    # SIGTERM finishes the wake-up in hand; one dispatch stays under the claim idle time.
    assert pod["terminationGracePeriodSeconds"] > settings.wakeup_claim_idle_seconds


def test_each_server_keeps_its_data_on_a_volume(rendered: list[dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "minio"):
        spec = the(rendered, "StatefulSet", name)["spec"]
        [claim] = spec["volumeClaimTemplates"]
        assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 2**30, name
        [container] = spec["template"]["spec"]["containers"]
        mounted = {mount["name"] for mount in container["volumeMounts"]}
        assert claim["metadata"]["name"] in mounted, name
    [redis] = the(rendered, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"]
    command = redis["command"]
    # Pending wake-ups survive a restart: the append-only file is on.
    assert command[command.index("--appendonly") + 1] == "yes"


EXPECTED_WAITS = {
    "submit": {"redis:6379", "minio:9000"},
    "dispatch": {"redis:6379", "minio:9000"},
    "sweep": {"redis:6379"},
    "podscribe-job": {"postgres:5432", "minio:9000"},
}


def test_pods_wait_for_their_servers_with_a_bounded_budget(workloads: list[Workload]) -> None:
    waits = {}
    for workload in workloads:
        for init in workload.pod.get("initContainers", []):
            if init["command"][-1].endswith("/wait-for.sh"):
                env = {variable["name"]: variable["value"] for variable in init["env"]}
                waits[workload.label] = set(env["WAIT_FOR"].split())
                # Longer than a NetworkPolicy sync window, short enough to surface a failure.
                assert 60 <= int(env["WAIT_SECONDS"]) <= 300, workload.label
                assert not container_problems(workload, init)  # Restricted like the rest
    assert waits == EXPECTED_WAITS
    # PostgreSQL is waited for by migrate.sh (bounded retries) where it comes first.
    for workload in workloads:
        if workload.label in {"submit", "dispatch", "sweep"}:
            assert workload.pod["initContainers"][0]["name"] == "migrate"


def test_the_job_keeps_a_model_cache_big_enough_for_the_production_model(
    launched_job: tuple[Job, dict[str, Any]],
) -> None:
    pod = launched_job[1]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    cache = volumes["model-cache"]["emptyDir"]
    assert "medium" not in cache  # on disk, not counted against the memory limit
    assert quantity(cache["sizeLimit"]) >= MIN_MODEL_CACHE
    resources = container["resources"]
    assert quantity(resources["requests"]["ephemeral-storage"]) >= quantity(cache["sizeLimit"])
    on_disk = sum(quantity(v["emptyDir"]["sizeLimit"]) for v in volumes.values() if "emptyDir" in v)
    assert quantity(resources["limits"]["ephemeral-storage"]) >= on_disk
    # Off by default: the stack runs on a CPU-only k3s.
    assert "runtimeClassName" not in pod
    assert "nvidia.com/gpu" not in resources["limits"]


def gpu_template() -> str:
    """The template with its two marked GPU blocks uncommented, as docs/k3s.md says."""
    text = TEMPLATE.read_text(encoding="utf-8")
    for line in ("runtimeClassName: nvidia", "nvidia.com/gpu: 1"):
        assert text.count(f"# {line}") == 1, line
        text = text.replace(f"# {line}", line)
    return text.replace("value: cpu", "value: cuda").replace("value: int8", "value: float16")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_documented_gpu_variant_is_a_valid_gpu_job(version: str) -> None:
    manifest = render_job_manifest(gpu_template(), dispatched_job())
    kubernetes_validate.validate(manifest, version, strict=True)
    pod = manifest["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["runtimeClassName"] == "nvidia"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert (env["WHISPER_DEVICE"], env["WHISPER_COMPUTE_TYPE"]) == ("cuda", "float16")


def test_our_images_come_from_the_registry_mirror(workloads: list[Workload]) -> None:
    ours = {
        container["image"]
        for workload in workloads
        for container in workload.containers()
        if "podscribe-" in container["image"]
    }
    assert ours == {f"{REGISTRY}/podscribe-functions:dev", f"{REGISTRY}/podscribe-job:dev"}
