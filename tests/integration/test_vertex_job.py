"""The transcription job end to end: a loopback Apple stand-in serves the episode, the job
runs against real PostgreSQL, fake-gcs-server and faster-whisper (tiny.en, CPU int8).

Helpers here are shared with ``test_vertex_job_failures.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jiwer
import pytest
import srt
import webvtt
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.loopback_server import FixtureServer, Reply
from podscribe import jobs
from podscribe.db import transaction
from podscribe.jobs.worker import JobOutcome, RetryPolicy, run_job
from podscribe.podcasts import clear_lookup_cache
from podscribe.settings import Settings, load_settings
from podscribe.storage import (
    TRANSCRIPT_FORMATS,
    TranscriptStore,
    checkpoint_object_name,
    transcript_object_name,
)
from podscribe.transcription.formats import Transcript
from tests.fakes.speech import make_episode

REPO = Path(__file__).resolve().parents[2]
SHOW = FakeShow(name="The Loopback Hour")
BUCKET = "podscribe-job-tests"
FAST_RETRY = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.05)


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


@pytest.fixture(autouse=True)
def _fresh_lookup_cache() -> Iterator[None]:
    clear_lookup_cache()
    yield
    clear_lookup_cache()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str]]:
    """Encoded episodes made once per module: name -> (bytes, spoken text)."""
    folder = tmp_path_factory.mktemp("speech")
    made = {
        "mp3": make_episode(folder, seconds=45, codec="mp3", seed=1, name="short"),
        "m4a": make_episode(folder, seconds=25, codec="aac", seed=2, name="aac"),
        "long": make_episode(folder, seconds=90, codec="mp3", seed=3, name="long"),
    }
    return {name: (path.read_bytes(), text) for name, (path, text) in made.items()}


def job_settings(
    apple: FakeApplePodcasts, database_url: str, work_dir: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "bucket": BUCKET,
        "work_dir": work_dir,
        # A window holds whole batches of chunks (up to 30 s of speech each): batches of one
        # make 30-second windows, so short test audio still has several (progress, checkpoints).
        "checkpoint_audio_seconds": 10,
        "whisper_batch_size": 1,
        "progress_interval_seconds": 0.1,
        "db_wait_seconds": 5,
        **apple.settings_overrides(),
        **overrides,
    }
    return load_settings(env="local", **values)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The same configuration as environment variables, for ``python -m vertex_job``."""
    assert settings.database_url is not None
    return {
        **os.environ,
        "PODSCRIBE_ENV": settings.env,
        "PODSCRIBE_DATABASE_URL": settings.database_url.get_secret_value(),
        "PODSCRIBE_BUCKET": settings.bucket,
        "PODSCRIBE_WORK_DIR": str(settings.work_dir),
        "PODSCRIBE_ITUNES_API_BASE": settings.itunes_api_base,
        "PODSCRIBE_APPLE_WEB_BASE": settings.apple_web_base,
        "PODSCRIBE_SSRF_ALLOW": ",".join(settings.ssrf_allow),
        "PODSCRIBE_CHECKPOINT_AUDIO_SECONDS": str(settings.checkpoint_audio_seconds),
        "WHISPER_BATCH_SIZE": str(settings.whisper_batch_size),
        "PODSCRIBE_PROGRESS_INTERVAL_SECONDS": str(settings.progress_interval_seconds),
    }


def enqueue(engine: Engine, episode: FakeEpisode, *, max_attempts: int = 3) -> str:
    """Submit and claim a job, as the submit and dispatch functions would."""
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=SHOW.collection_id,
            episode_id=episode.episode_id,
            source_url=f"https://podcasts.apple.com/us/podcast/x/id{SHOW.collection_id}"
            f"?i={episode.episode_id}",
            key_fingerprint="test-key",
        )
        claimed = jobs.claim_for_dispatch(
            conn, job.id, lease_seconds=600, max_attempts=max_attempts
        )
    assert claimed is not None
    return job.id


def read_job(engine: Engine, job_id: str) -> jobs.Job:
    with transaction(engine) as conn:
        return jobs.get_job(conn, job_id)


@pytest.fixture
def store(gcs_emulator: str) -> TranscriptStore:
    store = TranscriptStore(load_settings(env="test", bucket=BUCKET))
    store.ensure_bucket()
    return store


def content_type_of(name: str) -> str:
    from google.cloud import storage

    blob = storage.Client(project="podscribe-test").bucket(BUCKET).get_blob(name)
    assert blob is not None, name
    return str(blob.content_type)


def assert_transcript_objects(
    store: TranscriptStore, job: jobs.Job, spoken: str, *, max_wer: float
) -> Transcript:
    """Every format exists with its content type and agrees with what was spoken."""
    assert job.transcript_objects == {
        fmt: transcript_object_name(job.id, fmt) for fmt in TRANSCRIPT_FORMATS
    }
    for fmt, name in job.transcript_objects.items():
        assert content_type_of(name).startswith(TRANSCRIPT_FORMATS[fmt])
    transcript = Transcript.from_json(store.get(job.transcript_objects["json"]))
    assert transcript.complete and transcript.language == "en"
    assert (transcript.model, transcript.device, transcript.compute_type) == (
        "tiny.en",
        "cpu",
        "int8",
    )
    assert {"resolve", "load_model", "download", "decode", "transcribe"} <= set(transcript.timings)
    assert transcript.episode is not None and transcript.episode["show"] == SHOW.name
    assert word_error_rate(spoken, " ".join(s.text for s in transcript.segments)) <= max_wer
    words = [w for s in transcript.segments for w in s.words]
    assert words and all(0 <= w.start <= w.end <= transcript.duration + 0.5 for w in words)
    assert all(0 < w.probability <= 1 for w in words)

    subtitles = list(srt.parse(store.get(job.transcript_objects["srt"]).decode()))
    captions = webvtt.from_string(store.get(job.transcript_objects["vtt"]).decode()).captions
    assert min(len(subtitles), len(captions)) >= len(transcript.segments)
    assert word_error_rate(spoken, " ".join(s.content for s in subtitles)) <= max_wer
    text = store.get(job.transcript_objects["txt"]).decode()
    assert word_error_rate(spoken, text) <= max_wer
    podcast = json.loads(store.get(job.transcript_objects["podcast-json"]))
    bodies = " ".join(item["body"] for item in podcast["segments"])
    assert podcast["version"] == "1.0.0" and word_error_rate(spoken, bodies) <= max_wer
    assert "<p>" in store.get(job.transcript_objects["html"]).decode()
    assert job.language == "en" and job.progress == 1.0
    assert job.duration_seconds == pytest.approx(transcript.duration)
    return transcript


def test_the_job_command_transcribes_an_mp3_episode_and_a_second_run_is_harmless(
    engine: Engine, database_url: str, store: TranscriptStore, speech, tmp_path: Path
):
    audio, spoken = speech["mp3"]
    episode = FakeEpisode(1000000001, "Bridges and Rivers", guid="g-1", audio=audio)
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        settings = job_settings(apple, database_url, tmp_path / "work")
        job_id = enqueue(engine, episode)
        command = [sys.executable, "-m", "vertex_job", "--job-id", job_id]
        process = subprocess.Popen(
            command, cwd=REPO, env=settings_environment(settings), stderr=subprocess.PIPE
        )
        seen: list[tuple[str, float]] = []
        while process.poll() is None:
            job = read_job(engine, job_id)
            seen.append((job.status.value, job.progress))
            time.sleep(0.05)
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr.decode()[-3000:]
        job = read_job(engine, job_id)
        assert job.status is jobs.JobStatus.SUCCEEDED
        assert_transcript_objects(store, job, spoken, max_wer=0.2)
        assert [r.path for r in apple.requests_to("/audio")] == [f"/audio/{episode.episode_id}.mp3"]

        # A caller polling saw the job run and its progress move (never backwards).
        running = [progress for status, progress in seen if status == "running"]
        assert any(0 < p < 1 for p in running), seen
        assert running == sorted(running)
        assert job.heartbeat_at is not None and job.started_at is not None
        assert job.heartbeat_at > job.started_at
        # 45 s of audio in 30 s windows: one checkpoint was written on the way.
        assert job.checkpoint_object == checkpoint_object_name(job_id)
        assert store.exists(job.checkpoint_object)
        assert list((tmp_path / "work").iterdir()) == []  # the download was cleaned up
        lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
        assert any(line["message"] == "job succeeded" for line in lines)

        again = subprocess.run(
            command,
            check=False,
            cwd=REPO,
            env=settings_environment(settings),
            capture_output=True,
            timeout=120,
        )
        assert again.returncode == 0
        assert "nothing to do" in again.stderr.decode()
        unchanged = read_job(engine, job_id)
        assert unchanged.updated_at == job.updated_at
        assert len(apple.requests_to("/audio")) == 1


def test_an_m4a_episode_in_process_and_running_twice_is_skipped(
    engine: Engine, database_url: str, store: TranscriptStore, speech, tmp_path: Path
):
    audio, spoken = speech["m4a"]
    episode = FakeEpisode(1000000002, "Fresh Bread", audio=audio, audio_type="audio/mp4")
    with FakeApplePodcasts(SHOW, [episode]) as apple, FixtureServer() as receiver:
        receiver.route("/done", Reply(status=204, content_type=None))
        allowed = [*apple.settings_overrides()["ssrf_allow"], receiver.host_port]
        settings = job_settings(apple, database_url, tmp_path, ssrf_allow=allowed)
        job_id = enqueue(engine, episode)
        with transaction(engine) as conn:  # a second caller asks for a webhook
            jobs.create_or_get_job(
                conn,
                collection_id=SHOW.collection_id,
                episode_id=episode.episode_id,
                source_url="https://podcasts.apple.com/x",
                key_fingerprint="hook-key",
                callback_url=receiver.url("/done"),
            )
        outcome = run_job(job_id, settings=settings, engine=engine, store=store, retry=FAST_RETRY)
        assert outcome is JobOutcome.SUCCEEDED
        [hook] = receiver.requests
        assert json.loads(hook.body)["type"] == "transcription.succeeded"
        assert json.loads(hook.body)["id"] == job_id
        job = read_job(engine, job_id)
        transcript = assert_transcript_objects(store, job, spoken, max_wer=0.2)
        assert transcript.episode is not None
        assert transcript.episode["title"] == "Fresh Bread"
        assert job.episode is not None and job.episode["audio_url"] == apple.audio_url(episode)
        assert job.checkpoint_object is None  # under one window: nothing to checkpoint
        with transaction(engine) as conn:
            history = [(e.from_status, e.to_status) for e in jobs.job_history(conn, job_id)]
        assert history[-2:] == [
            (jobs.JobStatus.DISPATCHED, jobs.JobStatus.RUNNING),
            (jobs.JobStatus.RUNNING, jobs.JobStatus.SUCCEEDED),
        ]
        again = run_job(job_id, settings=settings, engine=engine, store=store)
        assert again is JobOutcome.SKIPPED
        assert read_job(engine, job_id) == job


def test_a_preempted_attempt_resumes_from_its_checkpoint(  # noqa: PLR0917 - pytest fixtures
    engine: Engine,
    database_url: str,
    store: TranscriptStore,
    speech,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    audio, spoken = speech["long"]
    episode = FakeEpisode(1000000003, "The Old Harbor", audio=audio)
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        # Speakers off: diarization would split the kept segments compared below.
        settings = job_settings(apple, database_url, tmp_path, diarization="off")
        job_id = enqueue(engine, episode)
        process = subprocess.Popen(
            [sys.executable, "-m", "vertex_job", "--job-id", job_id],
            cwd=REPO,
            env=settings_environment(settings),
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while read_job(engine, job_id).checkpoint_object is None:
                assert process.poll() is None, "the job ended before its first checkpoint"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)  # the GPU is preempted
        finally:
            process.wait()
        first = read_job(engine, job_id)
        assert first.status is jobs.JobStatus.RUNNING and first.progress < 1
        checkpoint = Transcript.from_json(store.get(checkpoint_object_name(job_id)))
        assert not checkpoint.complete and checkpoint.transcribed_until is not None
        assert 0 < checkpoint.transcribed_until < checkpoint.duration

        # The lease runs out; the sweep re-queues the job and dispatch claims it again.
        with transaction(engine) as conn:
            conn.exec_driver_sql(
                "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
                (uuid.UUID(job_id),),
            )
            report = jobs.sweep(conn, max_attempts=3, requeue_after_seconds=60)
            assert report.requeued == [job_id]
            assert jobs.claim_for_dispatch(conn, job_id, lease_seconds=600, max_attempts=3)

        caplog.set_level("INFO", logger="podscribe.jobs.worker")
        outcome = run_job(job_id, settings=settings, engine=engine, store=store, retry=FAST_RETRY)
        assert outcome is JobOutcome.SUCCEEDED
        resumed = [r for r in caplog.records if r.getMessage() == "resuming from a checkpoint"]
        assert [r.__dict__["at"] for r in resumed] == [checkpoint.transcribed_until]
        job = read_job(engine, job_id)
        assert job.attempts == 2
        final = assert_transcript_objects(store, job, spoken, max_wer=0.2)
        # What the first attempt finished is kept as it was, not transcribed again.
        kept = final.segments[: len(checkpoint.segments)]
        assert kept == checkpoint.segments
        later = final.segments[len(checkpoint.segments) :]
        assert later and all(s.start >= checkpoint.transcribed_until - 0.5 for s in later)


def test_sigterm_unwinds_cleanly_and_leaves_the_job_to_the_sweep(
    engine: Engine, database_url: str, speech, tmp_path: Path
):
    audio, _ = speech["mp3"]
    episode = FakeEpisode(1000000004, "Cut Short", audio=audio)
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        settings = job_settings(apple, database_url, tmp_path / "work")
        job_id = enqueue(engine, episode)
        process = subprocess.Popen(
            [sys.executable, "-m", "vertex_job", "--job-id", job_id],
            cwd=REPO,
            env=settings_environment(settings),
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while not apple.requests_to("/audio"):  # it is past start-up and downloading
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)  # what Vertex sends before preempting
            assert process.wait(timeout=60) == 128 + signal.SIGTERM
        finally:
            process.kill()
            process.wait()
        job = read_job(engine, job_id)
        assert job.status is jobs.JobStatus.RUNNING  # the sweep reclaims it once the lease ends
        assert job.error_code is None
        assert list((tmp_path / "work").iterdir()) == []  # the temporary download is gone
