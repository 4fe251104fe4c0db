"""The k3s helpers' scripts against the real services they provision.

- provision-pubsub.sh builds the topic, the dead-letter topic and subscription, and the push
  subscription in the real Pub/Sub emulator; a message published to the topic is then pushed
  to a functions-framework server, which hands its target the CloudEvent of the jobs topic
  (the wiring dispatch relies on in the cluster);
- provision-gcs.sh creates the bucket in the real fake-gcs-server;
- migrate.sh migrates a real, empty PostgreSQL database.
Each is run twice: the Jobs may be rerun, so the scripts must be idempotent.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from podscribe.db import applied_migrations, create_db_engine, load_migrations
from podscribe.settings import load_settings
from tests.services import throwaway_database
from tests.unit.test_k3s_scripts import run_script, sweep_target

__all__ = ["sweep_target"]  # the recording functions-framework server fixture

RECORDER_TARGET = "sweep"  # the recording server's target; any CloudEvent target will do


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def publish(emulator: str, topic_path: str, payload: dict[str, Any]) -> None:
    body = json.dumps(
        {"messages": [{"data": base64.b64encode(json.dumps(payload).encode()).decode()}]}
    ).encode()
    request = urllib.request.Request(
        f"http://{emulator}/v1/{topic_path}:publish",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def provision_pubsub(
    emulator: str, project: str, push_base: str
) -> subprocess.CompletedProcess[str]:
    return run_script(
        "provision-pubsub.sh",
        {
            "PUBSUB_EMULATOR_HOST": emulator,
            "PODSCRIBE_PROJECT_ID": project,
            "PODSCRIBE_PUBSUB_TOPIC": "podscribe-jobs",
            "DISPATCH_PUSH_BASE_URL": push_base,
            "PROVISION_ATTEMPTS": "3",
            "PROVISION_BACKOFF_SECONDS": "1",
        },
    )


def test_pubsub_provisioning_wires_the_push_to_a_functions_framework_target(
    pubsub_emulator: str, sweep_target: tuple[str, Path]
) -> None:
    push_base, record = sweep_target
    project = f"k3s-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        result = provision_pubsub(pubsub_emulator, project, push_base)
        assert result.returncode == 0, result.stderr

    api = f"http://{pubsub_emulator}/v1/projects/{project}"
    subscription = get_json(f"{api}/subscriptions/podscribe-dispatch")
    assert subscription["topic"] == f"projects/{project}/topics/podscribe-jobs"
    assert subscription["pushConfig"]["pushEndpoint"] == (
        f"{push_base}/projects/{project}/topics/podscribe-jobs"
    )
    assert subscription["ackDeadlineSeconds"] == 120
    assert subscription["retryPolicy"] == {"minimumBackoff": "10s", "maximumBackoff": "600s"}
    assert subscription["deadLetterPolicy"] == {
        "deadLetterTopic": f"projects/{project}/topics/podscribe-jobs-dead-letter",
        "maxDeliveryAttempts": 10,
    }
    dead_letters = get_json(f"{api}/subscriptions/podscribe-jobs-dead-letter")
    assert dead_letters["topic"] == f"projects/{project}/topics/podscribe-jobs-dead-letter"

    publish(pubsub_emulator, f"projects/{project}/topics/podscribe-jobs", {"job_id": "j-1"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (record.exists() and record.read_text()):
        time.sleep(0.2)
    [event, *_redeliveries] = [json.loads(line) for line in record.read_text().splitlines()]
    assert event["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert event["source"] == (f"//pubsub.googleapis.com/projects/{project}/topics/podscribe-jobs")
    data = base64.b64decode(event["data"]["message"]["data"])
    assert json.loads(data) == {"job_id": "j-1"}


def test_gcs_provisioning_creates_the_bucket(gcs_emulator: str) -> None:
    bucket = f"k3s-{uuid.uuid4().hex[:8]}"
    outputs = []
    for _ in range(2):
        result = run_script(
            "provision-gcs.sh",
            {
                "STORAGE_EMULATOR_HOST": gcs_emulator,
                "PODSCRIBE_PROJECT_ID": "podscribe-test",
                "PODSCRIBE_BUCKET": bucket,
            },
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert "(HTTP 200)" in outputs[0]
    assert "(HTTP 409)" in outputs[1]
    assert get_json(f"{gcs_emulator}/storage/v1/b/{bucket}")["name"] == bucket


def test_the_migrations_wrapper_migrates_an_empty_database() -> None:
    with throwaway_database() as url:
        for _ in range(2):
            result = run_script(
                "migrate.sh", {"PODSCRIBE_DATABASE_URL": url, "PODSCRIBE_DB_WAIT_SECONDS": "10"}
            )
            assert result.returncode == 0, result.stderr
        engine = create_db_engine(load_settings(database_url=url))
        try:
            assert applied_migrations(engine) == [m.name for m in load_migrations()]
        finally:
            engine.dispose()
