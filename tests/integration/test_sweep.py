"""The sweep in process: reconciliation with the launcher, expired leases, re-wakes.

Real PostgreSQL (a fresh database per test), the real aiplatform client against the fake
Vertex JobService, and the Pub/Sub emulator receiving the re-wakes on a pull subscription.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from google.cloud import aiplatform_v1, pubsub_v1
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import public_message
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.dispatcher import DispatchAction, dispatch_message
from podscribe.jobs.launchers.vertex import VertexLauncher
from podscribe.jobs.sweeper import run_sweep
from podscribe.messaging import JobMessage, publisher_for
from podscribe.settings import Settings
from tests.conftest import TEST_PROJECT
from tests.fakes.jobs import mark_resolved
from tests.fakes.vertex import FakeVertex
from tests.services import free_port

INSUFFICIENT = (
    "The following resources are insufficient in region: NVIDIA_L4 in us-central1-a. "
    "Please try another region."
)


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex() as fake:
        yield fake


@pytest.fixture
def sweep_settings(settings: Settings, vertex: FakeVertex, pubsub_emulator: str) -> Settings:
    return settings.model_copy(
        update={
            "project_id": TEST_PROJECT,
            "pubsub_topic": f"jobs-sweep-{uuid.uuid4().hex[:8]}",
            "vertex_image": "podscribe/vertex-job:test",
            "vertex_api_endpoint": vertex.endpoint,
            "max_attempts": 3,
            "requeue_after_seconds": 60,
        }
    )


@pytest.fixture
def wakeups(sweep_settings: Settings) -> str:
    """A pull subscription on the jobs topic: what the sweep published."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(TEST_PROJECT, sweep_settings.pubsub_topic)
    publisher.create_topic(name=topic)
    subscription = subscriber.subscription_path(TEST_PROJECT, f"{sweep_settings.pubsub_topic}-pull")
    subscriber.create_subscription(name=subscription, topic=topic)
    return str(subscription)


def published(subscription: str) -> list[str]:
    subscriber = pubsub_v1.SubscriberClient()
    response = subscriber.pull(subscription=subscription, max_messages=20, timeout=5)
    if response.received_messages:
        subscriber.acknowledge(
            subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
        )
    return sorted(JobMessage.from_bytes(m.message.data).job_id for m in response.received_messages)


def submit(engine: Engine) -> Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=7,
            episode_id=uuid.uuid4().int % 10**12,
            source_url="https://podcasts.apple.com/us/podcast/x/id7?i=1",
            key_fingerprint="k",
        )
        return mark_resolved(conn, job)


def launched(engine: Engine, settings: Settings, launcher: VertexLauncher) -> Job:
    job = submit(engine)
    outcome = dispatch_message(engine, settings, launcher, JobMessage(job.id))
    assert outcome.action is DispatchAction.LAUNCHED
    return read(engine, job.id)


def read(engine: Engine, job_id: str) -> Job:
    with transaction(engine) as conn:
        return jobs.get_job(conn, job_id)


PREEMPTED = "The replica workerpool0-0 was preempted: the spot VM was reclaimed by Compute Engine."


def test_a_preempted_or_crashed_launch_is_launched_again_once_and_the_last_attempt_fails(
    engine: Engine,
    sweep_settings: Settings,
    vertex: FakeVertex,
    wakeups: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="podscribe.jobs.transitions")
    launcher = VertexLauncher(sweep_settings)
    preempted = launched(engine, sweep_settings, launcher)
    stocked_out = launched(engine, sweep_settings, launcher)
    last_try = launched(engine, sweep_settings, launcher)
    healthy = launched(engine, sweep_settings, launcher)
    assert preempted.launcher_ref and stocked_out.launcher_ref
    assert last_try.launcher_ref and healthy.launcher_ref
    with transaction(engine) as conn:
        conn.execute(
            sa.text("UPDATE jobs SET attempts = 3 WHERE id = :id"), {"id": uuid.UUID(last_try.id)}
        )
    vertex.set_state(preempted.launcher_ref, aiplatform_v1.JobState.JOB_STATE_FAILED, PREEMPTED)
    vertex.set_state(
        stocked_out.launcher_ref, aiplatform_v1.JobState.JOB_STATE_FAILED, INSUFFICIENT
    )
    vertex.set_state(last_try.launcher_ref, aiplatform_v1.JobState.JOB_STATE_CANCELLED)
    vertex.set_state(healthy.launcher_ref, aiplatform_v1.JobState.JOB_STATE_RUNNING)

    outcome = run_sweep(engine, sweep_settings, launcher, publisher_for(sweep_settings))

    assert sorted(outcome.relaunched) == sorted([preempted.id, stocked_out.id])
    assert outcome.worker_failed == [last_try.id]
    assert sorted(outcome.republished) == sorted([preempted.id, stocked_out.id])
    for job in (preempted, stocked_out):
        requeued = read(engine, job.id)
        assert (requeued.status, requeued.attempts) == (JobStatus.QUEUED, 1)
    failed = read(engine, last_try.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == "worker_failed"
    # The launcher's reason (and its resource name) reach the logs, not the caller.
    assert failed.error_message == public_message("worker_failed")
    [logged] = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert "ended cancelled: Vertex AI reports JOB_STATE_CANCELLED" in logged.__dict__["detail"]
    assert read(engine, healthy.id).status is JobStatus.DISPATCHED
    assert published(wakeups) == sorted([preempted.id, stocked_out.id])

    # The re-woken job launches again (attempt 2, a new CustomJob: the old one is dead) ...
    again = dispatch_message(engine, sweep_settings, launcher, JobMessage(preempted.id))
    assert again.action is DispatchAction.LAUNCHED
    assert again.attempts == 2
    assert again.launcher_ref != preempted.launcher_ref
    assert len(vertex.creates_for(preempted.id)) == 2
    # ... once: a duplicate wake-up and a second sweep launch nothing more.
    duplicate = dispatch_message(engine, sweep_settings, launcher, JobMessage(preempted.id))
    assert duplicate.action is DispatchAction.SKIPPED
    run_sweep(engine, sweep_settings, launcher, publisher_for(sweep_settings))
    assert len(vertex.creates_for(preempted.id)) == 2


def test_expired_leases_are_requeued_or_failed_and_lost_wakeups_republished(
    engine: Engine, sweep_settings: Settings, wakeups: str
) -> None:
    launcher = VertexLauncher(sweep_settings)
    expired = launched(engine, sweep_settings, launcher)
    exhausted = launched(engine, sweep_settings, launcher)
    forgotten = submit(engine)
    fresh = submit(engine)
    with transaction(engine) as conn:
        conn.execute(
            sa.text(
                "UPDATE jobs SET lease_expires_at = now() - interval '1 second'"
                " WHERE id IN (:a, :b)"
            ),
            {"a": uuid.UUID(expired.id), "b": uuid.UUID(exhausted.id)},
        )
        conn.execute(
            sa.text("UPDATE jobs SET attempts = 3 WHERE id = :id"), {"id": uuid.UUID(exhausted.id)}
        )
        conn.execute(
            sa.text("UPDATE jobs SET queued_at = now() - interval '10 minutes' WHERE id = :id"),
            {"id": uuid.UUID(forgotten.id)},
        )

    outcome = run_sweep(engine, sweep_settings, launcher, publisher_for(sweep_settings))

    assert outcome.requeued == [expired.id]
    assert outcome.failed == [exhausted.id]
    assert sorted(outcome.republished) == sorted([expired.id, forgotten.id])
    assert published(wakeups) == sorted([expired.id, forgotten.id])
    assert read(engine, exhausted.id).error_code == "attempts_exhausted"
    assert read(engine, fresh.id).status is JobStatus.QUEUED  # too young to need a re-wake


def test_an_unreachable_launcher_or_topic_does_not_stop_the_sweep(
    engine: Engine, sweep_settings: Settings, wakeups: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    working = VertexLauncher(sweep_settings)
    job = launched(engine, sweep_settings, working)
    forgotten = submit(engine)
    with transaction(engine) as conn:
        conn.execute(
            sa.text("UPDATE jobs SET queued_at = now() - interval '10 minutes' WHERE id = :id"),
            {"id": uuid.UUID(forgotten.id)},
        )
    down = sweep_settings.model_copy(update={"vertex_api_endpoint": f"127.0.0.1:{free_port()}"})
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")

    outcome = run_sweep(engine, down, VertexLauncher(down), publisher_for(down, timeout=1))

    assert outcome.worker_failed == []
    assert outcome.unpublished == [forgotten.id]
    assert read(engine, job.id).status is JobStatus.DISPATCHED
