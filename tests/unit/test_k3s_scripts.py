"""The shell the k3s helpers run (local_emulators/k3s/scripts/), run here as the pods run it.

- the sweep tick reaches a real functions-framework server as the Pub/Sub CloudEvent the
  `sweep` target takes in GCP;
- the migrations wrapper, the bucket provisioning and the init wait give up after a bounded
  number of tries or seconds and say so; a bucket request the server refuses fails at once;
- every variable a script requires is given to it by its container in the manifests.

Servers bind to 127.0.0.1; unreachable targets are closed loopback ports.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from functions_framework import create_app
from werkzeug.serving import make_server

from tests.services import free_port
from tests.unit.test_k3s_manifests import (
    K3S,
    TEMPLATE,
    configmap_named,
    environment_of,
    rendered,
)

SCRIPTS = K3S / "scripts"
VENV_BIN = Path(sys.executable).parent
SH = "/bin/sh"
__all__ = ["rendered"]  # the module fixture, shared with the manifest tests

RECORDER = """
import json

import functions_framework

RECORD = {record!r}


@functions_framework.cloud_event
def sweep(event):
    with open(RECORD, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({{"type": event["type"], "source": event["source"],
                                  "data": event.data}}) + "\\n")
"""


def run_script(
    name: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    return subprocess.run(
        [SH, str(SCRIPTS / name)],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def sweep_target(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A functions-framework server with a recording `sweep` CloudEvent target."""
    record = tmp_path / "events.jsonl"
    source = tmp_path / "main.py"
    source.write_text(RECORDER.format(record=str(record)), encoding="utf-8")
    app = create_app(target="sweep", source=str(source), signature_type="cloudevent")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", record
    server.shutdown()


def test_a_sweep_tick_arrives_as_the_pubsub_cloudevent(sweep_target: tuple[str, Path]) -> None:
    url, record = sweep_target
    result = run_script(
        "sweep-trigger.sh", {"SWEEP_URL": url, "PODSCRIBE_PROJECT_ID": "podscribe-local"}
    )
    assert result.returncode == 0, result.stderr
    [event] = [json.loads(line) for line in record.read_text().splitlines()]
    assert event["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert (
        event["source"] == "//pubsub.googleapis.com/projects/podscribe-local/topics/podscribe-sweep"
    )
    message = event["data"]["message"]
    assert json.loads(base64.b64decode(message["data"])) == {"reason": "sweep"}
    assert message["messageId"].startswith("sweep-")


def test_a_sweep_tick_that_cannot_be_delivered_fails_the_job() -> None:
    result = run_script(
        "sweep-trigger.sh",
        {
            "SWEEP_URL": f"http://127.0.0.1:{free_port()}",
            "PODSCRIBE_PROJECT_ID": "p",
            "SWEEP_RETRY_DELAY_SECONDS": "1",
        },
    )
    assert result.returncode != 0
    assert "Failed to connect" in result.stderr
    assert "tick delivered" not in result.stdout


def test_migrations_give_up_after_their_attempts() -> None:
    result = run_script(
        "migrate.sh",
        {
            "PODSCRIBE_DATABASE_URL": f"postgresql://podscribe@127.0.0.1:{free_port()}/podscribe",
            "PODSCRIBE_DB_WAIT_SECONDS": "0",
            "MIGRATE_ATTEMPTS": "3",
            "MIGRATE_BACKOFF_SECONDS": "0",
        },
    )
    assert result.returncode == 1
    # Each attempt is a fresh `python -m podscribe.db migrate` that names what it waited for.
    assert result.stderr.count("waiting for") == 3, result.stderr
    assert "attempt 1 of 3 failed" in result.stderr
    assert "attempt 2 of 3 failed" in result.stderr
    assert "attempt 3 of 3 failed" not in result.stderr  # no pointless last sleep
    assert result.stderr.rstrip().endswith("migrate: gave up after 3 attempts")


BUCKET_ENV = {
    "PODSCRIBE_ENV": "local",
    "PODSCRIBE_STORAGE_BACKEND": "s3",
    "PODSCRIBE_BUCKET": "podscribe-transcripts",
    "AWS_ACCESS_KEY_ID": "test-access-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key",
}


def test_bucket_provisioning_backs_off_exponentially_then_gives_up() -> None:
    result = run_script(
        "provision-bucket.sh",
        BUCKET_ENV
        | {
            "PODSCRIBE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "PROVISION_ATTEMPTS": "4",
            "PROVISION_BACKOFF_SECONDS": "1",
            "PROVISION_MAX_DELAY_SECONDS": "2",
        },
    )
    assert result.returncode == 1
    assert result.stderr.count("Could not connect to the endpoint URL") == 4, result.stderr
    # 1 s, doubled, capped at 2 s; no pointless sleep after the last try.
    assert "try 1 of 4 failed; retrying in 1s" in result.stderr
    assert "try 2 of 4 failed; retrying in 2s" in result.stderr
    assert "try 3 of 4 failed; retrying in 2s" in result.stderr
    assert "try 4 of 4 failed" not in result.stderr
    assert result.stderr.rstrip().endswith("provision-bucket: gave up after 4 tries")


def test_a_broken_bucket_configuration_fails_at_once() -> None:
    result = run_script(
        "provision-bucket.sh",
        BUCKET_ENV
        | {
            "PODSCRIBE_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "PODSCRIBE_BUCKET": "Not_A_Bucket",  # not an S3 bucket name: no try can succeed
            "PROVISION_ATTEMPTS": "5",
        },
    )
    assert result.returncode == 2
    assert "configuration refused" in result.stderr
    assert "is not an S3 bucket name" in result.stderr
    assert "retrying in" not in result.stderr


def test_the_init_wait_gives_up_after_its_budget_naming_what_it_waited_for() -> None:
    closed = free_port()
    result = run_script(
        "wait-for.sh", {"WAIT_FOR": f"127.0.0.1:{closed}", "WAIT_SECONDS": "2"}, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.count(f"127.0.0.1:{closed}: ") >= 2, result.stderr  # not one check
    assert "gave up after" in result.stderr


def test_the_init_wait_waits_for_a_server_that_comes_up_late() -> None:
    port = free_port()
    waiting = subprocess.Popen(
        [SH, str(SCRIPTS / "wait-for.sh")],
        env={
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "WAIT_FOR": f"127.0.0.1:{port}",
            "WAIT_SECONDS": "60",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        first_refusal = waiting.stderr.readline()  # it has tried, and failed, at least once
        assert f"127.0.0.1:{port}" in first_refusal
        server = ThreadingHTTPServer(("127.0.0.1", port), RefusingHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            stdout, _ = waiting.communicate(timeout=60)
        finally:
            server.shutdown()
            server.server_close()
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0
    assert f"wait-for: 127.0.0.1:{port} reachable after" in stdout


class RefusingHandler(BaseHTTPRequestHandler):
    """Answers every request 400, counting them."""

    requests = 0

    def _refuse(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"error": {"code": 400, "message": "bad name"}}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self._refuse()

    def do_HEAD(self) -> None:
        type(self).requests += 1
        self.send_response(400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._refuse()

    def do_PUT(self) -> None:
        self._refuse()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_refused_bucket_request_fails_at_once() -> None:
    """A 4xx from the S3 API (here 400 to everything) is not retried."""
    RefusingHandler.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_script(
            "provision-bucket.sh",
            BUCKET_ENV
            | {
                "PODSCRIBE_S3_ENDPOINT_URL": f"http://127.0.0.1:{server.server_port}",
                "PROVISION_ATTEMPTS": "5",
                "PROVISION_BACKOFF_SECONDS": "0",
            },
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 2, result.stderr
    assert "refused; not retrying" in result.stderr
    assert RefusingHandler.requests <= 2  # HEAD, then at most the CREATE: one try
    assert "retrying in" not in result.stderr


def required_variables(script: Path) -> set[str]:
    return set(re.findall(r'^: "\$\{([A-Z0-9_]+):\?', script.read_text(), flags=re.MULTILINE))


def test_every_script_gets_the_variables_it_requires(rendered: list[dict[str, Any]]) -> None:
    scripts = (
        configmap_named(rendered, "podscribe-scripts")["data"]
        | configmap_named(rendered, "podscribe-wait")["data"]
    )
    assert set(scripts) == {path.name for path in SCRIPTS.glob("*.sh")}
    runs: dict[str, list[str]] = {}
    for document in [*rendered, launched_manifest()]:
        spec = document.get("spec", {})
        if document["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        pod = spec.get("template", {}).get("spec")
        if pod is None:
            continue
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            command = container.get("command", [])
            if command[:1] != ["/bin/sh"]:
                continue
            name = Path(command[1]).name
            assert scripts[name] == (SCRIPTS / name).read_text()
            given = set(environment_of(container, rendered))
            missing = required_variables(SCRIPTS / name) - given
            assert not missing, f"{document['metadata']['name']} runs {name} without {missing}"
            runs.setdefault(name, []).append(document["metadata"]["name"])
    assert {name: sorted(names) for name, names in runs.items()} == {
        "migrate.sh": ["dispatch", "submit", "sweep"],
        "wait-for.sh": ["dispatch", "podscribe-${JOB_ID}", "submit", "sweep"],
        "provision-bucket.sh": ["provision-bucket"],
        "sweep-trigger.sh": ["sweep-trigger"],
    }
    assert required_variables(SCRIPTS / "provision-bucket.sh") >= {"PODSCRIBE_S3_ENDPOINT_URL"}


def launched_manifest() -> dict[str, Any]:
    """The job template as a document (the launcher fills in the name; the wait is the same)."""
    template = TEMPLATE.read_text(encoding="utf-8").replace("${JOB_NAME}", "podscribe-${JOB_ID}")
    document: dict[str, Any] = yaml.safe_load(template)
    return document
