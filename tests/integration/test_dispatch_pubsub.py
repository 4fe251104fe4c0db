"""Dispatch end to end: the Pub/Sub emulator pushes to real functions-framework processes.

One jobs topic with a push subscription to ``functions-framework --target dispatch`` (with a
dead-letter policy), one sweep topic pushed to ``--target sweep``, the real aiplatform client
in the dispatch process talking to the fake Vertex JobService at the wire, and one real
PostgreSQL database shared by the module (the processes read it from their environment).
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from google.cloud import aiplatform_v1, pubsub_v1
from google.protobuf import duration_pb2
from sqlalchemy.engine import Engine

from local_emulators.processes import Started, stop_group
from podscribe import jobs
from podscribe.db import create_db_engine, transaction
from podscribe.errors import public_message
from podscribe.jobs import Job, JobStatus
from podscribe.messaging import JobMessage, publisher_for
from podscribe.settings import Settings, load_settings
from tests.conftest import TEST_PROJECT
from tests.fakes.jobs import mark_resolved
from tests.fakes.vertex import UNAVAILABLE, FakeVertex
from tests.integration.dispatch_support import (
    create_push_subscription,
    push_endpoint,
    start_function,
)
from tests.services import throwaway_database

pytestmark = pytest.mark.timeout(180)

IMAGE = "us-central1-docker.pkg.dev/podscribe-test/podscribe/vertex-job:test"
SERVICE_ACCOUNT = "vertex-job@podscribe-test.iam.gserviceaccount.com"
MAX_ATTEMPTS = 5  # Pub/Sub's smallest max_delivery_attempts: the two limits agree


@dataclass(frozen=True)
class Stack:
    """Everything the module started, and how to reach it."""

    settings: Settings
    engine: Engine
    vertex: FakeVertex
    dispatch: Started
    sweep: Started
    dispatch_url: str
    jobs_topic: str
    sweep_topic: str
    dead_letters: str  # a pull subscription on the dead-letter topic


@pytest.fixture(scope="module")
def stack(
    pubsub_emulator: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    jobs_topic, sweep_topic = f"jobs-{suffix}", f"sweep-{suffix}"
    log_dir = tmp_path_factory.mktemp("dispatch")
    with throwaway_database(template=migrated_template) as url, FakeVertex() as vertex:
        variables = {
            "PODSCRIBE_ENV": "test",
            "PODSCRIBE_DATABASE_URL": url,
            "PODSCRIBE_PROJECT_ID": TEST_PROJECT,
            "PODSCRIBE_PUBSUB_TOPIC": jobs_topic,
            "PODSCRIBE_LAUNCHER": "vertex",
            "PODSCRIBE_VERTEX_IMAGE": IMAGE,
            "PODSCRIBE_VERTEX_API_ENDPOINT": vertex.endpoint,
            "PODSCRIBE_VERTEX_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
            "PODSCRIBE_BUCKET": "podscribe-test-transcripts",
            "PODSCRIBE_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "PODSCRIBE_REQUEUE_AFTER_SECONDS": "600",
            "PODSCRIBE_DB_WAIT_SECONDS": "10",
            # The fake's CustomJobs never end: without room, earlier tests' would fill it.
            "PODSCRIBE_MAX_CONCURRENT_JOBS": "1000",
            "PUBSUB_EMULATOR_HOST": pubsub_emulator,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PODSCRIBE_", "WHISPER_"))}
        env.update(variables)
        dispatch, dispatch_port = start_function("dispatch", "dispatch", env, log_dir)
        sweep, sweep_port = start_function("sweep", "sweep", env, log_dir)
        settings = load_settings(
            env="test",
            database_url=url,
            project_id=TEST_PROJECT,
            pubsub_topic=jobs_topic,
            max_attempts=MAX_ATTEMPTS,
        )
        engine = create_db_engine(settings)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        dead_topic = publisher.topic_path(TEST_PROJECT, f"jobs-dead-{suffix}")
        dead_letters = subscriber.subscription_path(TEST_PROJECT, f"jobs-dead-{suffix}-pull")
        for topic in (jobs_topic, sweep_topic):
            publisher.create_topic(name=publisher.topic_path(TEST_PROJECT, topic))
        publisher.create_topic(name=dead_topic)
        subscriber.create_subscription(name=dead_letters, topic=dead_topic)
        create_push_subscription(
            subscriber,
            TEST_PROJECT,
            jobs_topic,
            f"{jobs_topic}-dispatch",
            dispatch_port,
            retry_policy={
                "minimum_backoff": duration_pb2.Duration(seconds=1),
                "maximum_backoff": duration_pb2.Duration(seconds=10),
            },
            dead_letter_policy={
                "dead_letter_topic": dead_topic,
                "max_delivery_attempts": MAX_ATTEMPTS,
            },
        )
        create_push_subscription(
            subscriber, TEST_PROJECT, sweep_topic, f"{sweep_topic}-sweep", sweep_port
        )
        try:
            yield Stack(
                settings,
                engine,
                vertex,
                dispatch,
                sweep,
                push_endpoint(TEST_PROJECT, jobs_topic, dispatch_port),
                jobs_topic,
                sweep_topic,
                dead_letters,
            )
        finally:
            engine.dispose()
            stop_group(dispatch.pid)
            stop_group(sweep.pid)


# --- helpers ---------------------------------------------------------------------------------
def eventually(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def new_job(stack: Stack, *, duration: float | None = None) -> Job:
    with transaction(stack.engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=1_000_000 + uuid.uuid4().int % 1_000_000,
            episode_id=uuid.uuid4().int % 10**12,
            source_url="https://podcasts.apple.com/us/podcast/show/id1?i=2",
            key_fingerprint="test-key",
        )
        if duration is not None:
            job = jobs.update_job_fields(conn, job.id, {"duration_seconds": duration})
        return mark_resolved(conn, job)


def read_job(stack: Stack, job_id: str) -> Job:
    with transaction(stack.engine) as conn:
        return jobs.get_job(conn, job_id)


def publish(stack: Stack, job_id: str) -> str:
    return publisher_for(stack.settings).publish(JobMessage(job_id))


def trigger_sweep(stack: Stack) -> None:
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(TEST_PROJECT, stack.sweep_topic)
    publisher.publish(topic, b'{"scheduler": "podscribe-sweep"}').result(timeout=10)


def log_entries(started: Started) -> list[dict[str, Any]]:
    entries = []
    for line in started.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries


def handled(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in log_entries(stack.dispatch)
        if entry.get("message") == "wake-up handled" and entry.get("job_id") == job_id
    ]


def dead_lettered(stack: Stack, timeout: float = 3.0) -> list[pubsub_v1.types.ReceivedMessage]:
    subscriber = pubsub_v1.SubscriberClient()
    response = subscriber.pull(
        subscription=stack.dead_letters, max_messages=50, timeout=timeout, return_immediately=False
    )
    if response.received_messages:
        subscriber.acknowledge(
            subscription=stack.dead_letters,
            ack_ids=[received.ack_id for received in response.received_messages],
        )
    return list(response.received_messages)


# --- the tests -------------------------------------------------------------------------------
def test_one_submit_is_one_custom_job_with_its_fields(stack: Stack) -> None:
    job = new_job(stack, duration=2700.0)
    publish(stack, job.id)

    launched = eventually("the launch recorded", lambda: read_job(stack, job.id).launcher_ref)

    [create] = stack.vertex.creates_for(job.id)
    assert create.parent == f"projects/{TEST_PROJECT}/locations/us-central1"
    custom = create.custom_job
    assert custom.display_name == f"podscribe-{job.id}-a1"
    assert custom.labels["podscribe-job-id"] == job.id
    [pool] = custom.job_spec.worker_pool_specs
    assert pool.replica_count == 1
    assert pool.machine_spec.machine_type == "g2-standard-8"
    assert pool.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType.NVIDIA_L4
    assert pool.machine_spec.accelerator_count == 1
    assert pool.container_spec.image_uri == IMAGE
    assert list(pool.container_spec.args) == ["--job-id", job.id]
    env = {variable.name: variable.value for variable in pool.container_spec.env}
    assert env["WHISPER_DEVICE"] == "cuda"
    assert env["WHISPER_COMPUTE_TYPE"] == "float16"
    assert env["PODSCRIBE_ENV"] == "production"
    assert env["PODSCRIBE_PROJECT_ID"] == TEST_PROJECT
    assert env["PODSCRIBE_BUCKET"] == "podscribe-test-transcripts"
    assert env["PODSCRIBE_DB_NAME"] == "podscribe"
    assert env["PODSCRIBE_DB_IP_TYPE"] == "private"
    assert not any("PASSWORD" in name or "DATABASE_URL" in name for name in env)
    assert custom.job_spec.service_account == SERVICE_ACCOUNT
    assert custom.job_spec.scheduling.timeout.total_seconds() == 2700 + 1200
    assert custom.job_spec.scheduling.restart_job_on_worker_restart is False

    row = read_job(stack, job.id)
    assert row.status is JobStatus.DISPATCHED
    assert row.attempts == 1
    assert row.launcher == "vertex"
    assert launched == stack.vertex.job(launched).name


def test_the_same_message_five_times_launches_once(stack: Stack) -> None:
    job = new_job(stack)
    # One Pub/Sub message delivered five times at once (at-least-once delivery), exactly as
    # the emulator's push body looks...
    push_body = {
        "subscription": f"projects/{TEST_PROJECT}/subscriptions/{stack.jobs_topic}-dispatch",
        "message": {
            "data": base64.b64encode(JobMessage(job.id).to_bytes()).decode(),
            "messageId": "4711",
            "publishTime": "2026-11-25T03:00:00.000Z",
            "attributes": {"job_id": job.id},
        },
    }
    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(
            pool.map(
                lambda _: httpx.post(stack.dispatch_url, json=push_body, timeout=30).status_code,
                range(5),
            )
        )
    assert statuses == [200] * 5
    # ...and then five more messages for the same job through the emulator.
    publisher = publisher_for(stack.settings)
    for _ in range(5):
        publisher.publish(JobMessage(job.id))

    eventually("ten deliveries handled", lambda: len(handled(stack, job.id)) >= 10)
    actions = sorted(entry["action"] for entry in handled(stack, job.id))
    assert actions == ["launched"] + ["skipped"] * 9
    assert len(stack.vertex.creates_for(job.id, accepted_only=False)) == 1
    row = read_job(stack, job.id)
    assert row.attempts == 1
    assert row.status is JobStatus.DISPATCHED


def test_a_launch_failing_twice_is_retried_by_pubsub_and_launches_once(stack: Stack) -> None:
    job = new_job(stack)
    stack.vertex.refuse_creates(job.id, UNAVAILABLE, UNAVAILABLE)
    publish(stack, job.id)

    eventually("the third attempt's launch", lambda: read_job(stack, job.id).launcher_ref)

    tried = stack.vertex.creates_for(job.id, accepted_only=False)
    assert [create.refused is not None for create in tried] == [True, True, False]
    assert [create.custom_job.display_name for create in tried] == [
        f"podscribe-{job.id}-a{attempt}" for attempt in (1, 2, 3)
    ]
    row = read_job(stack, job.id)
    assert row.status is JobStatus.DISPATCHED
    assert row.attempts == 3
    with transaction(stack.engine) as conn:
        history = jobs.job_history(conn, job.id)
    released = [event for event in history if event.from_status is JobStatus.DISPATCHED]
    assert len(released) == 2
    assert all("launch failed (launch_failed)" in (event.detail or "") for event in released)


def test_a_poison_message_is_acknowledged_and_logged_once(stack: Stack) -> None:
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(TEST_PROJECT, stack.jobs_topic)
    message_id = publisher.publish(topic, b"{not json at all").result(timeout=10)

    def poison_lines() -> list[dict[str, Any]]:
        return [
            entry
            for entry in log_entries(stack.dispatch)
            if entry.get("message_id") == message_id and entry.get("code") == "malformed_message"
        ]

    eventually("the poison message logged", poison_lines)
    time.sleep(5)  # longer than the emulator's redelivery interval (1-3 s)
    [line] = poison_lines()
    assert line["severity"] == "ERROR"
    assert "not JSON" in line["error"]
    assert not [
        received
        for received in dead_lettered(stack, timeout=1)
        if received.message.message_id == message_id
    ]


def test_after_the_last_attempt_the_job_fails_and_the_message_is_dead_lettered(
    stack: Stack,
) -> None:
    job = new_job(stack)
    stack.vertex.refuse_creates(job.id, *[UNAVAILABLE] * (MAX_ATTEMPTS + 2))
    publish(stack, job.id)

    failed = eventually(
        "the job failed",
        lambda: (row := read_job(stack, job.id)).status is JobStatus.FAILED and row,
        timeout=60,
    )
    assert failed.attempts == MAX_ATTEMPTS
    assert failed.error_code == "launch_failed"
    # The launcher's last error is in dispatch's log; the row holds the code's message.
    assert failed.error_message == public_message("launch_failed")
    assert len(stack.vertex.creates_for(job.id, accepted_only=False)) == MAX_ATTEMPTS

    def dead() -> list[Any]:
        return [
            received
            for received in dead_lettered(stack)
            if JobMessage.from_bytes(received.message.data).job_id == job.id
        ]

    assert eventually("the message in the dead-letter topic", dead, timeout=30)


def test_a_lost_message_is_found_by_the_sweep_and_launched(stack: Stack) -> None:
    job = new_job(stack)  # its wake-up is never published
    with transaction(stack.engine) as conn:
        conn.execute(
            sa.text("UPDATE jobs SET queued_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": uuid.UUID(job.id)},
        )
    time.sleep(1)
    assert stack.vertex.creates_for(job.id) == []

    trigger_sweep(stack)

    eventually("the swept job launched", lambda: read_job(stack, job.id).launcher_ref)
    [create] = stack.vertex.creates_for(job.id)
    assert list(create.custom_job.job_spec.worker_pool_specs[0].container_spec.args) == [
        "--job-id",
        job.id,
    ]
    assert read_job(stack, job.id).attempts == 1


def test_a_custom_job_that_fails_on_its_last_attempt_fails_the_job_with_its_reason(
    stack: Stack,
) -> None:
    job = new_job(stack)
    publish(stack, job.id)
    ref = eventually("the launch", lambda: read_job(stack, job.id).launcher_ref)
    with transaction(stack.engine) as conn:  # earlier attempts crashed the same way
        conn.execute(
            sa.text("UPDATE jobs SET attempts = :n WHERE id = :id"),
            {"n": MAX_ATTEMPTS, "id": uuid.UUID(job.id)},
        )
    reason = "The replica workerpool0-0 exited with a non-zero status of 137 (out of memory)."
    stack.vertex.set_state(ref, aiplatform_v1.JobState.JOB_STATE_FAILED, reason)

    trigger_sweep(stack)

    failed = eventually(
        "the job failed",
        lambda: (row := read_job(stack, job.id)).status is JobStatus.FAILED and row,
    )
    assert failed.error_code == "worker_failed"
    # The worker's exit line and the Vertex resource name are logged, never shown.
    assert failed.error_message == public_message("worker_failed")
    assert reason not in (failed.error_message or "") and ref not in (failed.error_message or "")
    assert ref in stack.vertex.gets


def test_an_eventarc_cloudevent_is_dispatched_and_logged_under_its_trace(stack: Stack) -> None:
    job = new_job(stack)
    trace_id = uuid.uuid4().hex
    # What Eventarc delivers in GCP: a binary-mode CloudEvent carrying the Pub/Sub message.
    response = httpx.post(
        stack.dispatch_url.split("/projects/")[0] + "/",
        headers={
            "ce-specversion": "1.0",
            "ce-id": "eventarc-1",
            "ce-source": f"//pubsub.googleapis.com/projects/{TEST_PROJECT}/topics/jobs",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            "content-type": "application/json",
        },
        json={
            "message": {
                "data": base64.b64encode(JobMessage(job.id).to_bytes()).decode(),
                "messageId": "eventarc-1",
            },
            "subscription": f"projects/{TEST_PROJECT}/subscriptions/eventarc-dispatch",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert read_job(stack, job.id).launcher_ref
    [entry] = handled(stack, job.id)
    assert entry["action"] == "launched"
    assert entry["logging.googleapis.com/trace"] == f"projects/{TEST_PROJECT}/traces/{trace_id}"
