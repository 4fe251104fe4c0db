"""The Kubernetes launcher through the real ``kubernetes`` client, against a fake API server.

The fake is a loopback HTTP server speaking the two batch/v1 routes the launcher uses (create
a Job, read its status); it records each Job body the client sends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from podscribe.errors import LaunchError, SettingsError
from podscribe.jobs.launchers import LauncherStatus
from podscribe.jobs.launchers.kubernetes import KubernetesLauncher, job_name, render_job_manifest
from podscribe.settings import load_settings
from tests.fakes.jobs import dispatched_job

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: ${JOB_NAME}
  labels: {app: podscribe-job}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: vertex-job
          image: podscribe/vertex-job:local
          args: ["--job-id", "${JOB_ID}"]
          envFrom: [{configMapRef: {name: podscribe-config}}]
          env: [{name: WHISPER_DEVICE, value: cpu}]
"""


class FakeKubernetes:
    """``POST .../namespaces/<ns>/jobs`` and ``GET .../jobs/<name>/status`` on 127.0.0.1."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")  # apis batch v1 namespaces NS jobs
                namespace = parts[4]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.fail_with:
                    self._send(fake.fail_with, {"kind": "Status", "message": "refused"})
                    return
                key = (namespace, body["metadata"]["name"])
                fake.created.append(body)
                if key in fake.jobs:
                    self._send(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
                    return
                fake.jobs[key] = {**body, "status": {}}
                self._send(201, fake.jobs[key])

            def do_GET(self) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                job = fake.jobs.get((parts[4], parts[6]))
                if job is None:
                    self._send(404, {"kind": "Status", "reason": "NotFound", "code": 404})
                else:
                    self._send(200, job)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def make_launcher(kube: FakeKubernetes, tmp_path: Path, text: str = TEMPLATE) -> KubernetesLauncher:
    template = tmp_path / "job-template.yaml"
    template.write_text(text)
    settings = load_settings(
        env="test", launcher="kubernetes", k8s_job_template=template, k8s_namespace="podscribe"
    )
    configuration = client.Configuration()
    configuration.host = kube.url
    return KubernetesLauncher(settings, api_client=client.ApiClient(configuration))


def test_a_launch_creates_the_templated_job(kube: FakeKubernetes, tmp_path: Path) -> None:
    job = dispatched_job(attempts=2)
    result = make_launcher(kube, tmp_path).launch(job)

    assert result.ref == f"podscribe/podscribe-{job.id}-a2"
    assert not result.adopted
    [body] = kube.created
    assert body["metadata"]["name"] == f"podscribe-{job.id}-a2"
    assert body["metadata"]["labels"] == {
        "app": "podscribe-job",
        "podscribe-job-id": job.id,
        "podscribe-attempt": "2",
    }
    [container] = body["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--job-id", job.id]
    assert container["image"] == "podscribe/vertex-job:local"
    assert body["spec"]["backoffLimit"] == 0


def test_a_repeated_launch_of_the_same_attempt_adopts_the_job(
    kube: FakeKubernetes, tmp_path: Path
) -> None:
    launcher = make_launcher(kube, tmp_path)
    job = dispatched_job()
    first = launcher.launch(job)
    again = launcher.launch(job)
    assert again.adopted
    assert again.ref == first.ref
    assert len(kube.jobs) == 1


def test_a_refusal_is_a_launch_error(kube: FakeKubernetes, tmp_path: Path) -> None:
    kube.fail_with = 403
    with pytest.raises(LaunchError, match="403"):
        make_launcher(kube, tmp_path).launch(dispatched_job())


def test_status_follows_the_jobs_conditions(kube: FakeKubernetes, tmp_path: Path) -> None:
    launcher = make_launcher(kube, tmp_path)
    job = dispatched_job()
    ref = launcher.launch(job).ref
    stored = kube.jobs[("podscribe", job_name(job))]
    assert launcher.status(ref).state is LauncherStatus.PENDING
    stored["status"] = {"active": 1}
    assert launcher.status(ref).state is LauncherStatus.RUNNING
    stored["status"] = {
        "failed": 1,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        ],
    }
    failed = launcher.status(ref)
    assert failed.state is LauncherStatus.FAILED
    assert failed.message == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    stored["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    assert launcher.status(ref).state is LauncherStatus.SUCCEEDED
    assert launcher.status("podscribe/gone").state is LauncherStatus.CANCELLED


def test_a_template_that_is_not_a_job_is_refused(kube: FakeKubernetes, tmp_path: Path) -> None:
    launcher = make_launcher(kube, tmp_path, "apiVersion: v1\nkind: Pod\nmetadata: {}\n")
    with pytest.raises(SettingsError, match="not a batch/v1 Job"):
        launcher.launch(dispatched_job())


K3S_TEMPLATE = REPO / "local_emulators" / "k3s" / "job-template.yaml"


def test_the_k3s_profiles_template_renders_to_a_valid_job() -> None:
    import kubernetes_validate

    job = dispatched_job()
    manifest = render_job_manifest(K3S_TEMPLATE.read_text(), job)
    kubernetes_validate.validate(manifest, "1.30", strict=True)
    containers = manifest["spec"]["template"]["spec"]["containers"]
    assert any(
        container.get("args", [])[-2:] == ["--job-id", job.id]
        or container.get("command", [])[-2:] == ["--job-id", job.id]
        for container in containers
    )
    assert "${" not in json.dumps(manifest)
