"""The local profile's path: Pub/Sub push -> dispatch (local-process launcher) -> vertex_job.

Two real episodes (synthesized speech) served by the loopback Apple stand-in, the Pub/Sub
emulator pushing to a functions-framework dispatch process whose launcher runs
``python -m vertex_job`` as detached processes, at most one at a time, transcribing with
faster-whisper (tiny.en, CPU int8) into fake-gcs-server and real PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.processes import stop_group
from podscribe import jobs
from podscribe.db import transaction
from podscribe.jobs import JobStatus
from podscribe.jobs.launchers import LauncherStatus
from podscribe.jobs.launchers.local import LocalProcessLauncher
from podscribe.messaging import JobMessage, publisher_for
from podscribe.settings import Settings, env_name, load_settings
from podscribe.storage import TranscriptStore
from tests.conftest import TEST_PROJECT
from tests.fakes.speech import make_episode
from tests.integration.dispatch_support import start_function
from tests.integration.test_dispatch_pubsub import eventually, log_entries
from tests.integration.test_vertex_job import word_error_rate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHOW = FakeShow(name="The Loopback Hour")
BUCKET = "podscribe-dispatch-local"


def environment(settings: Settings, pubsub_emulator: str) -> dict[str, str]:
    """The settings as the environment variables a process reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODSCRIBE_", "WHISPER_"))}
    for field in settings.model_fields_set:
        value: Any = getattr(settings, field)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(str(item) for item in value)
        env[env_name(field)] = str(value)
    env["PUBSUB_EMULATOR_HOST"] = pubsub_emulator
    return env


def test_dispatch_runs_vertex_job_locally_to_succeeded_one_at_a_time(
    pubsub_emulator: str,
    gcs_emulator: str,
    database_url: str,
    engine: Engine,
    tmp_path: Path,
) -> None:
    TranscriptStore(load_settings(env="test", bucket=BUCKET)).ensure_bucket()
    spoken: dict[int, str] = {}
    episodes = []
    for index, seed in enumerate((11, 12)):
        path, text = make_episode(tmp_path, seconds=12, seed=seed, name=f"episode-{index}")
        episode = FakeEpisode(2_000_000_000 + index, f"Episode {index}", audio=path.read_bytes())
        episodes.append(episode)
        spoken[episode.episode_id] = text
    topic = f"jobs-local-{uuid.uuid4().hex[:8]}"
    state_dir = tmp_path / "state"

    with FakeApplePodcasts(SHOW, episodes) as apple:
        settings = load_settings(
            env="local",
            database_url=database_url,
            project_id=TEST_PROJECT,
            pubsub_topic=topic,
            bucket=BUCKET,
            launcher="local",
            local_state_dir=state_dir,
            local_max_jobs=1,
            work_dir=tmp_path / "work",
            db_wait_seconds=10,
            **apple.settings_overrides(),
        )
        env = environment(settings, pubsub_emulator)
        env["STORAGE_EMULATOR_HOST"] = gcs_emulator
        dispatch, port = start_function("dispatch-local", "dispatch", env, tmp_path)
        try:
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
            topic_path = publisher.topic_path(TEST_PROJECT, topic)
            publisher.create_topic(name=topic_path)
            subscriber.create_subscription(
                request={
                    "name": subscriber.subscription_path(TEST_PROJECT, f"{topic}-dispatch"),
                    "topic": topic_path,
                    "push_config": {
                        "push_endpoint": f"http://127.0.0.1:{port}"
                        f"/projects/{TEST_PROJECT}/topics/{topic}"
                    },
                    "ack_deadline_seconds": 60,
                    "retry_policy": {"minimum_backoff": duration_pb2.Duration(seconds=1)},
                }
            )
            job_ids = []
            with transaction(engine) as conn:
                for episode in episodes:
                    job, _ = jobs.create_or_get_job(
                        conn,
                        collection_id=SHOW.collection_id,
                        episode_id=episode.episode_id,
                        source_url=apple.episode_link(episode),
                        key_fingerprint="test-key",
                    )
                    job_ids.append(job.id)
            wake = publisher_for(settings)
            for job_id in job_ids:
                wake.publish(JobMessage(job_id))

            def finished() -> list[jobs.Job] | None:
                with transaction(engine) as conn:
                    rows = [jobs.get_job(conn, job_id) for job_id in job_ids]
                if any(row.status is JobStatus.FAILED for row in rows):
                    raise AssertionError([(r.error_code, r.error_message) for r in rows])
                done = all(row.status is JobStatus.SUCCEEDED for row in rows)
                return rows if done else None

            rows = eventually("both jobs succeeded", finished, timeout=240)
        finally:
            stop_group(dispatch.pid)

    store = TranscriptStore(load_settings(env="test", bucket=BUCKET))
    launcher = LocalProcessLauncher(settings)
    for row in rows:
        assert row.attempts == 1  # waiting for the slot spent no attempt
        assert row.launcher == "local"
        assert row.launcher_ref is not None
        assert launcher.status(row.launcher_ref).state is LauncherStatus.SUCCEEDED
        assert "job succeeded" in launcher.log_path(row.launcher_ref).read_text()
        assert row.transcript_objects is not None
        text = store.get(row.transcript_objects["txt"]).decode()
        assert word_error_rate(spoken[row.episode_id], text) <= 0.3
        assert (row.device, row.compute_type) == ("cpu", "int8")
    # The cap: one job at a time, the second started after the first had finished.
    first, second = sorted(rows, key=lambda row: row.started_at or row.created_at)
    assert first.finished_at is not None and second.started_at is not None
    assert second.started_at >= first.finished_at
    assert launcher.running() == 0
    # The second wake-up found the slot taken and was retried by Pub/Sub.
    refusals = [
        entry
        for entry in log_entries(dispatch)
        if "has no free slot" in str(entry.get("message", ""))
    ]
    assert refusals
