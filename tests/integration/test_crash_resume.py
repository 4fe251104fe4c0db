"""A job process SIGKILLed mid-transcription, in the real local profile: it costs a retry, not
the job.

``python -m local_emulators up`` runs submit, dispatch, the sweep, the Pub/Sub emulator and
fake-gcs-server; the test's own loopback Apple stand-in serves a conversation of real speech
(about two and a half minutes, so the job writes checkpoints). Once the job has written a
checkpoint its ``vertex_job`` process is killed with SIGKILL, as the OOM killer or a lost
node would. The sweep timer is set to an hour and the lease to ten minutes, so what brings
the job back within the test's time is the local launcher noticing its child's death at
once. The job ends ``succeeded`` on attempt 2, resumed from the checkpoint, and its
transcript equals that of the same audio transcribed without interruption.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from podscribe.client import PodscribeClient
from podscribe.db import create_db_engine, transaction
from podscribe.jobs import JobStatus, get_job, job_history
from podscribe.settings import load_settings
from tests.fakes.realspeech import build_episode, load_utterances, write_mp3
from tests.services import REDIS_URL, free_port, throwaway_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOW = FakeShow(collection_id=4_300_000_001, name="The Crash Test Hour", artist="podscribe")
KILLED_ID, CONTROL_ID = 1_000_011, 1_000_012


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    utterances = load_utterances()[:16]
    episode = build_episode("crash", utterances, seed=7, pauses=(0.5, 2.0))
    assert episode.samples.shape[0] / 16_000 > 100  # long enough for several windows
    return write_mp3(episode, tmp_path_factory.mktemp("crash")).read_bytes()


@pytest.fixture
def apple(audio: bytes) -> Iterator[FakeApplePodcasts]:
    # One title for both: the title is the opening chunk's prompt.
    episodes = [
        FakeEpisode(episode_id, "A conversation", audio=audio, duration_seconds=160)
        for episode_id in (KILLED_ID, CONTROL_ID)
    ]
    with FakeApplePodcasts(SHOW, episodes) as stand_in:
        yield stand_in


@pytest.fixture
def profile(tmp_path: Path, apple: FakeApplePodcasts) -> Iterator[dict[str, str]]:
    with throwaway_database() as database_url:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PODSCRIBE_", "WHISPER_", "PUBSUB_", "STORAGE_EMULATOR"))
        }
        environment |= {
            "PODSCRIBE_LOCAL_STATE_DIR": str(tmp_path / "state"),
            "PODSCRIBE_DATABASE_URL": database_url,
            "PODSCRIBE_REDIS_URL": REDIS_URL,
            "PODSCRIBE_PROJECT_ID": f"podscribe-crash-{uuid.uuid4().hex[:6]}",
            "PODSCRIBE_ITUNES_API_BASE": apple.server.base_url,
            "PODSCRIBE_APPLE_WEB_BASE": apple.server.base_url,
            "PODSCRIBE_ENV": "local",
            "PODSCRIBE_SSRF_ALLOW": apple.server.host_port,
            # Only the launcher's own notice can bring the job back in time.
            "PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS": "3600",
            "PODSCRIBE_LEASE_SECONDS": "600",
            # Windows of about a minute: checkpoints well before the end.
            "PODSCRIBE_CHECKPOINT_AUDIO_SECONDS": "30",
            "WHISPER_BATCH_SIZE": "2",
        }
        for name in ("SUBMIT", "DISPATCH", "SWEEP", "PUBSUB", "GCS", "FIXTURES"):
            environment[f"PODSCRIBE_LOCAL_{name}_PORT"] = str(free_port())
        yield environment
        run_profile(environment, "down")


def run_profile(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_emulators", *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def wait_for(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def job_process(state: Path, job_id: str) -> psutil.Process:
    """The ``python -m vertex_job`` process of the job's first attempt (the shell's child)."""
    shell = psutil.Process(int((state / "jobs" / f"{job_id}-a1.pid").read_text()))
    [python] = [c for c in shell.children() if "vertex_job" in " ".join(c.cmdline())]
    return python


def segments(client: PodscribeClient, job_id: str) -> list[tuple[str, float, float]]:
    document = json.loads(client.transcript(job_id, "json"))
    return [(s["text"], s["start"], s["end"]) for s in document["segments"]]


def test_a_job_killed_mid_transcription_resumes_and_matches_an_uninterrupted_run(
    profile: dict[str, str], apple: FakeApplePodcasts
) -> None:
    started = run_profile(profile, "up")
    assert started.returncode == 0, started.stdout + started.stderr
    api_key = next(
        line.split()[-1] for line in started.stdout.splitlines() if line.startswith("API key:")
    )
    submit_url = f"http://127.0.0.1:{profile['PODSCRIBE_LOCAL_SUBMIT_PORT']}"
    state = Path(profile["PODSCRIBE_LOCAL_STATE_DIR"])
    engine = create_db_engine(load_settings(database_url=profile["PODSCRIBE_DATABASE_URL"]))
    killed_link = f"https://podcasts.apple.com/us/podcast/x/id{SHOW.collection_id}?i={KILLED_ID}"
    control_link = f"https://podcasts.apple.com/us/podcast/x/id{SHOW.collection_id}?i={CONTROL_ID}"

    def row(job_id: str) -> Any:
        with transaction(engine) as conn:
            return get_job(conn, job_id)

    try:
        with PodscribeClient(submit_url, api_key) as client:
            job_id = client.submit(killed_link)["id"]
            checkpointed = wait_for(
                "a checkpoint of the running job",
                lambda: (
                    (r := row(job_id)).status is JobStatus.RUNNING and r.checkpoint_object and r
                ),
                timeout=180,
            )
            assert checkpointed.progress < 1.0
            victim = job_process(state, job_id)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)

            done = client.wait(job_id, timeout=240, interval=0.5)
            assert done["status"] == "succeeded", done
            assert done["attempts"] == 2
            resumed_log = (state / "logs" / f"{job_id}-a2.log").read_text()
            assert "resuming from a checkpoint" in resumed_log
            with transaction(engine) as conn:
                notes = [event.detail for event in job_history(conn, job_id)]
            assert "worker_failed" in notes  # the reaper's requeue, not the lease's
            assert "lease expired" not in notes

            control_id = client.submit(control_link)["id"]
            control = client.wait(control_id, timeout=240, interval=0.5)
            assert (control["status"], control["attempts"]) == ("succeeded", 1)

            resumed, uninterrupted = segments(client, job_id), segments(client, control_id)
    finally:
        engine.dispose()
    assert [text for text, _, _ in resumed] == [text for text, _, _ in uninterrupted]
    for (_, start, end), (_, start_0, end_0) in zip(resumed, uninterrupted, strict=True):
        assert start == pytest.approx(start_0, abs=0.05)
        assert end == pytest.approx(end_0, abs=0.05)
