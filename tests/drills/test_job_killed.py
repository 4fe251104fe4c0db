"""The job process SIGKILLed mid-transcription, in the real local profile: a retry, not the job.

``python -m local_emulators up`` runs submit, dispatch, the sweep, the Pub/Sub emulator and
fake-gcs-server; a loopback Apple stand-in serves a conversation of real speech (about two
and a half minutes, so the job writes checkpoints). Once the job has written a checkpoint its
``vertex_job`` process is killed with SIGKILL, as the OOM killer or a lost node would. The
sweep timer is set to an hour and the lease to ten minutes, so what brings the job back within
the drill's time is the local launcher noticing its child's death at once. The job ends
``succeeded`` on attempt 2, resumed from the checkpoint, with the transcript of the same audio
transcribed without interruption. A second job is killed on every attempt: it ends ``failed``
with ``worker_failed`` once ``PODSCRIBE_MAX_ATTEMPTS`` launches have died, never launched more.
"""

from __future__ import annotations

import functools
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from podscribe.client import PodscribeClient
from podscribe.db import transaction
from podscribe.jobs import Job, JobStatus, get_job, job_history
from tests.drills.figures import Recorder
from tests.drills.profile_support import Profile, local_profile, wait_for
from tests.fakes.realspeech import build_episode, load_utterances, write_mp3

SHOW = FakeShow(collection_id=4_300_000_001, name="The Crash Test Hour", artist="podscribe")
KILLED_ID, CONTROL_ID, DOOMED_ID = 1_000_011, 1_000_012, 1_000_013
MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    utterances = load_utterances()[:16]
    episode = build_episode("crash", utterances, seed=7, pauses=(0.5, 2.0))
    assert episode.samples.shape[0] / 16_000 > 100  # long enough for several windows
    return write_mp3(episode, tmp_path_factory.mktemp("crash")).read_bytes()


@pytest.fixture
def apple(audio: bytes) -> Iterator[FakeApplePodcasts]:
    # One title for all: the title is the opening chunk's prompt.
    episodes = [
        FakeEpisode(episode_id, "A conversation", audio=audio, duration_seconds=160)
        for episode_id in (KILLED_ID, CONTROL_ID, DOOMED_ID)
    ]
    with FakeApplePodcasts(SHOW, episodes) as stand_in:
        yield stand_in


@pytest.fixture
def profile(tmp_path: Path, apple: FakeApplePodcasts) -> Iterator[Profile]:
    with local_profile(
        tmp_path,
        PODSCRIBE_ITUNES_API_BASE=apple.server.base_url,
        PODSCRIBE_APPLE_WEB_BASE=apple.server.base_url,
        PODSCRIBE_SSRF_ALLOW=apple.server.host_port,
        # Only the launcher's own notice can bring the job back in time.
        PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS="3600",
        PODSCRIBE_LEASE_SECONDS="600",
        PODSCRIBE_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        # Windows of about a minute: checkpoints well before the end.
        PODSCRIBE_CHECKPOINT_AUDIO_SECONDS="30",
        WHISPER_BATCH_SIZE="2",
    ) as started:
        started.up()
        yield started


def link(episode_id: int) -> str:
    return f"https://podcasts.apple.com/us/podcast/x/id{SHOW.collection_id}?i={episode_id}"


def job_process(state: Path, job_id: str, attempt: int) -> psutil.Process | None:
    """The attempt's ``python -m vertex_job`` process (the launcher shell's child), if it runs."""
    pid_file = state / "jobs" / f"{job_id}-a{attempt}.pid"
    try:
        shell = psutil.Process(int(pid_file.read_text()))
        children = shell.children()
    except (OSError, ValueError, psutil.NoSuchProcess):
        return None
    return next((c for c in children if "vertex_job" in " ".join(c.cmdline())), None)


def segments(client: PodscribeClient, job_id: str) -> list[tuple[str, float, float]]:
    document = json.loads(client.transcript(job_id, "json"))
    return [(s["text"], s["start"], s["end"]) for s in document["segments"]]


def test_a_job_killed_mid_transcription_resumes_and_matches_an_uninterrupted_run(
    profile: Profile, figures: Recorder
) -> None:
    row = figures(
        "Job process SIGKILLed",
        "the running job's `vertex_job` process SIGKILLed after its first checkpoint",
        bound="succeeded on attempt 2, resumed, transcript = an uninterrupted run's",
    )

    def job(job_id: str) -> Job:
        with transaction(profile.engine) as conn:
            return get_job(conn, job_id)

    with PodscribeClient(profile.submit_url, profile.api_key) as client:
        job_id = client.submit(link(KILLED_ID))["id"]

        def checkpointed_job() -> Job | None:
            found = job(job_id)
            running = found.status is JobStatus.RUNNING and found.checkpoint_object
            return found if running else None

        checkpointed = wait_for("a checkpoint of the running job", checkpointed_job, timeout=180)
        victim = job_process(profile.state_dir, job_id, 1)
        assert victim is not None
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        done = client.wait(job_id, timeout=240, interval=0.5)
        resumed_log = (profile.state_dir / "logs" / f"{job_id}-a2.log").read_text()
        with transaction(profile.engine) as conn:
            notes = [event.detail for event in job_history(conn, job_id)]

        control_id = client.submit(link(CONTROL_ID))["id"]
        control = client.wait(control_id, timeout=240, interval=0.5)
        resumed, uninterrupted = segments(client, job_id), segments(client, control_id)

    row.observed.update(
        {
            "killed at progress": round(checkpointed.progress, 2),
            "outcome": done["status"],
            "attempts": done["attempts"],
            "launches": profile.launches()[job_id],
            "segments": len(resumed),
            "segments as uninterrupted": [t for t, _, _ in resumed]
            == [t for t, _, _ in uninterrupted],
        }
    )
    row.save()
    assert checkpointed.progress < 1.0
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert profile.launches()[job_id] == 2
    assert "resuming from a checkpoint" in resumed_log
    assert "worker_failed" in notes  # the launcher's requeue, not the lease's
    assert "lease expired" not in notes
    assert (control["status"], control["attempts"]) == ("succeeded", 1)
    assert [text for text, _, _ in resumed] == [text for text, _, _ in uninterrupted]
    for (_, start, end), (_, start_0, end_0) in zip(resumed, uninterrupted, strict=True):
        assert start == pytest.approx(start_0, abs=0.05)
        assert end == pytest.approx(end_0, abs=0.05)


def test_a_job_killed_on_every_attempt_fails_after_the_limit_with_a_clear_code(
    profile: Profile, figures: Recorder
) -> None:
    row = figures(
        "Job process SIGKILLed on every attempt",
        f"each launch's `vertex_job` SIGKILLed as soon as it runs (PODSCRIBE_MAX_ATTEMPTS="
        f"{MAX_ATTEMPTS})",
        bound=f"failed, code worker_failed, exactly {MAX_ATTEMPTS} launches",
    )
    with PodscribeClient(profile.submit_url, profile.api_key) as client:
        job_id = client.submit(link(DOOMED_ID))["id"]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            victim = wait_for(
                f"attempt {attempt}'s job process",
                functools.partial(job_process, profile.state_dir, job_id, attempt),
                timeout=120,
            )
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
        done = client.wait(job_id, timeout=120, interval=0.5)
        problem = done.get("error") or {}
    row.observed.update(
        {
            "outcome": done["status"],
            "code": problem.get("code"),
            "attempts": done["attempts"],
            "launches": profile.launches()[job_id],
        }
    )
    row.save()
    assert done["status"] == "failed", done
    assert problem.get("code") == "worker_failed", done
    assert done["attempts"] == MAX_ATTEMPTS
    assert profile.launches()[job_id] == MAX_ATTEMPTS
    # No further launch: the launcher's directory holds no attempt past the limit.
    assert not (profile.state_dir / "jobs" / f"{job_id}-a{MAX_ATTEMPTS + 1}.pid").exists()
