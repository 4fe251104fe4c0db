"""One transcription job, start to finish: what ``python -m vertex_job --job-id`` runs.

    dispatched --start--> running: the episode (resolved by dispatch before the launch)
        -> download (disk; the model loads meanwhile) -> decode
        -> transcribe window by window (progress + heartbeat; a checkpoint after each window)
        -> speakers over the whole episode (never fails the job)
        -> every transcript format (json, srt, vtt, txt, html, podcast-json) to storage -> succeeded
                                 \\-> failed with a stable code (permanent faults)
                                 \\-> queued again (transient faults that outlasted the retries)

The row is the source of truth: a job that is not ``dispatched`` is left alone (a second
launch, or a late one, exits 0), and a job the sweep took back mid-run is abandoned without
touching the row. Transient faults (a storage 503, a dropped connection, a 5xx from the audio
host) are retried here with backoff; if they persist, the job goes back to the queue while it
has attempts left, so the next attempt resumes from the last checkpoint.
"""

from __future__ import annotations

import enum
import functools
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.egress.fetcher import DownloadedAudio, SafeFetcher
from podscribe.errors import (
    DatabaseUnavailableError,
    JobStateConflictError,
    PodscribeError,
    TranscriptionFailedError,
)
from podscribe.jobs.lease import Heartbeat
from podscribe.jobs.preflight import check_declared_length
from podscribe.jobs.search import index_transcript
from podscribe.jobs.webhooks import notify_finished
from podscribe.podcasts import Episode, EpisodeRef, resolve_episode
from podscribe.retry import retrying
from podscribe.settings import JobSettings, Settings
from podscribe.speakers import diarize, label_segments
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore, transcript_object_name
from podscribe.transcription.audio import decode_audio_file
from podscribe.transcription.checkpoints import load_checkpoint, resumable, save_checkpoint
from podscribe.transcription.engine import Transcriber
from podscribe.transcription.formats import Transcript, render
from podscribe.transcription.model import EngineConfig
from podscribe.transcription.segments import Segment
from podscribe.transcription.windows import SAMPLE_RATE

__all__ = ["JobOutcome", "RetryPolicy", "episode_prompt", "run_job"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_PROMPT_CHARS = 200  # Whisper's prompt is capped at half its 448-token context anyway


def episode_prompt(show: str, title: str) -> str:
    """The initial prompt: the show and the title, so the names in them are spelled right."""
    return f"{show}. {title}."[:_PROMPT_CHARS]


class JobOutcome(enum.StrEnum):
    """How a run ended; the process exit code follows from it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REQUEUED = "requeued"
    SKIPPED = "skipped"  # not dispatched: a duplicate or late launch
    LOST = "lost"  # the sweep took the job back while it ran


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient faults within one attempt.

    Attributes:
        attempts: tries per step.
        initial_seconds: first wait; doubles each time.
        max_seconds: longest wait.
    """

    attempts: int = 4
    initial_seconds: float = 1.0
    max_seconds: float = 20.0

    def call(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``, retrying transient podscribe errors; the last one propagates."""
        return retrying(
            attempts=self.attempts,
            initial_seconds=self.initial_seconds,
            max_seconds=self.max_seconds,
            log=log,
            what=what,
        )(action)


def run_job(
    job_id: str,
    *,
    settings: Settings,
    engine: Engine,
    store: TranscriptStore | None = None,
    retry: RetryPolicy | None = None,
) -> JobOutcome:
    """Run one job: claim it for running, transcribe it, record the outcome.

    Args:
        job_id: the job (it must be ``dispatched``).
        settings: the configuration.
        engine: the database.
        store: the transcripts bucket; built from settings when omitted.
        retry: backoff for transient faults.

    Returns:
        What happened; every outcome is already recorded in the row.

    Raises:
        DatabaseUnavailableError: the database could not be reached to record anything.
    """
    store = store or TranscriptStore(settings)
    retry = retry or RetryPolicy()
    with transaction(engine) as conn:
        job = jobs.get_job(conn, job_id)
    if job.status is not jobs.JobStatus.DISPATCHED:
        log.info(
            "job is not dispatched; nothing to do", extra={"job_id": job_id, "status": job.status}
        )
        return JobOutcome.SKIPPED
    config = EngineConfig.from_settings(
        settings, language=job.requested_language, model=job.requested_model
    )
    try:
        with transaction(engine) as conn:
            job = jobs.start_running(
                conn,
                job_id,
                lease_seconds=settings.lease_seconds,
                model=config.model_name,
                device=config.device,
                compute_type=config.compute_type,
            )
    except JobStateConflictError:
        log.info("another run started this job first; nothing to do", extra={"job_id": job_id})
        return JobOutcome.SKIPPED
    log.info("job running", extra={"job_id": job_id, "attempt": job.attempts})
    work = _Work(job, settings=settings, engine=engine, store=store, retry=retry, config=config)
    try:
        with Heartbeat(
            engine,
            job_id,
            lease_seconds=settings.lease_seconds,
            interval_seconds=settings.progress_interval_seconds,
        ) as heartbeat:
            work.run(heartbeat)
    except JobStateConflictError:
        log.warning("job taken back while running; abandoning it", extra={"job_id": job_id})
        return JobOutcome.LOST
    except PodscribeError as error:
        outcome = _record_failure(engine, job, error, settings)
    except Exception as error:
        log.exception("job failed unexpectedly", extra={"job_id": job_id})
        outcome = _record_failure(engine, job, PodscribeError(f"internal error: {error}"), settings)
    else:
        outcome = JobOutcome.SUCCEEDED
    if outcome in (JobOutcome.SUCCEEDED, JobOutcome.FAILED):
        notify_finished(engine, settings, [job_id])
    return outcome


class _Work:
    """The steps of one attempt, sharing what they learn."""

    def __init__(
        self,
        job: jobs.Job,
        *,
        settings: Settings,
        engine: Engine,
        store: TranscriptStore,
        retry: RetryPolicy,
        config: EngineConfig,
    ) -> None:
        self.job, self.settings, self.engine, self.store = job, settings, engine, store
        self.retry, self.config = retry, config
        self.timings: dict[str, float] = {}

    def run(self, heartbeat: Heartbeat) -> None:
        with self._timed("resolve"):
            episode = self._resolve()
        heartbeat.check()
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="podscribe-", dir=self.settings.work_dir) as tmp:
            # The audio downloads in a thread while the model loads here: on a GPU a large
            # model takes a while. The model must load in the thread that uses it: CTranslate2
            # created from another thread ran 5-10x slower on the CPU (measured).
            with ThreadPoolExecutor(1, thread_name_prefix="download") as pool:
                download = pool.submit(self._download, episode, Path(tmp) / "audio")
                with self._timed("load_model"):
                    transcriber = _load(self.config)
                with self._timed("download"):
                    downloaded = download.result()
            heartbeat.check()
            with self._timed("decode"):
                audio = self._decode(downloaded)
        duration = audio.shape[0] / SAMPLE_RATE
        self._update(duration_seconds=round(duration, 3))
        with self._timed("transcribe"):
            segments, language = self._transcribe(transcriber, audio, episode, heartbeat)
        with self._timed("speakers"):
            segments = self._label_speakers(audio, segments)
        heartbeat.check()
        transcript = self._transcript(segments, language, duration, episode)
        with self._timed("upload"):
            objects = self._upload(transcript)

        def succeed() -> None:
            with transaction(self.engine) as conn:
                jobs.succeed(
                    conn,
                    self.job.id,
                    transcript_objects=objects,
                    changes={
                        "language": language,
                        "duration_seconds": round(duration, 3),
                        "transcript_source": "model",
                        "provenance": None,
                    },
                )
                # In the status change's transaction: a succeeded job is always searchable.
                index_transcript(conn, self.job.id, transcript.segments)

        self._write("record success", succeed)
        log.info(
            "job succeeded",
            extra={"job_id": self.job.id, "audio_seconds": duration, "timings": self.timings},
        )

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[step] = time.perf_counter() - started

    def _update(self, **values: object) -> None:
        def update() -> None:
            with transaction(self.engine) as conn:
                jobs.update_job_fields(conn, self.job.id, values)

        self._write("update the job", update)

    def _write(self, what: str, action: Callable[[], T]) -> T:
        """Write the job's row, waiting out a database outage as start-up would (up to
        ``PODSCRIBE_DB_WAIT_SECONDS``) while the heartbeat keeps trying to hold the lease.

        Without it a restart of PostgreSQL while a job ran threw the attempt away (the write
        after decoding, or the final one, failed; so did recording the failure) and the job
        waited for its lease to lapse before a second attempt did it all again.
        """
        return retrying(
            within_seconds=self.settings.db_wait_seconds,
            initial_seconds=0.5,
            max_seconds=5,
            retry_on=lambda error: isinstance(error, DatabaseUnavailableError),
            log=log,
            what=what,
        )(action)

    def _resolve(self) -> Episode:
        """The episode dispatch resolved before the launch, else (older rows) resolved now."""
        recorded = self.job.episode
        try:
            episode = Episode.from_dict(recorded) if recorded else None
        except (KeyError, TypeError, ValueError):
            episode = None
        if episode is None:
            ref = EpisodeRef(self.job.collection_id, self.job.episode_id)
            with SafeFetcher(self.settings) as fetcher:
                episode = self.retry.call(
                    "resolve", lambda: resolve_episode(ref, self.settings, fetcher=fetcher)
                )
            self._update(episode=episode.to_dict())
        check_declared_length(episode, self.settings)
        return episode

    def _download(self, episode: Episode, destination: Path) -> DownloadedAudio:
        """Stream the audio to disk through the guard, retrying transient faults."""
        with SafeFetcher(self.settings) as fetcher:
            downloaded = self.retry.call(
                "download", lambda: fetcher.download_audio(episode.audio_url, destination)
            )
        log.info(
            "audio downloaded",
            extra={
                "job_id": self.job.id,
                "bytes": downloaded.size_bytes,
                "format": downloaded.audio_format,
            },
        )
        return downloaded

    def _decode(self, downloaded: DownloadedAudio) -> np.ndarray:
        """Decode to 16 kHz mono, refusing a declared or decoded length past the limit.

        The decoder stops at the limit itself: a file without a declared duration (or with a
        false one) must not decode to gigabytes before its length is known.
        """
        return decode_audio_file(downloaded.path, max_seconds=self.settings.max_episode_seconds)

    def _transcribe(
        self, transcriber: Transcriber, audio: np.ndarray, episode: Episode, heartbeat: Heartbeat
    ) -> tuple[list[Segment], str]:
        duration = audio.shape[0] / SAMPLE_RATE
        checkpoint = None
        saved = self.job.checkpoint_object
        if saved:
            checkpoint = self.retry.call(
                "read checkpoint", lambda: load_checkpoint(self.store, saved)
            )
        start = resumable(checkpoint, model=self.config.model_name, duration=duration)
        segments: list[Segment] = list(checkpoint.segments) if checkpoint and start else []
        language = checkpoint.language if checkpoint and start else None
        if start:
            log.info("resuming from a checkpoint", extra={"job_id": self.job.id, "at": start})
            heartbeat.report(start / duration)
        prompt = episode_prompt(episode.show, episode.title)
        try:
            for window in transcriber.windows(
                audio,
                start_seconds=start,
                window_seconds=self.settings.checkpoint_audio_seconds,
                initial_prompt=prompt,
                language=language,
            ):
                language = window.language
                for segment in window.segments:
                    segments.append(segment)
                    heartbeat.report(segment.end / duration)
                heartbeat.report(window.end / duration)
                if window.end < duration:
                    self._checkpoint(segments, language, duration, episode, window.end)
        except (PodscribeError, JobStateConflictError):
            raise
        except (RuntimeError, ValueError, MemoryError) as error:
            raise TranscriptionFailedError(f"faster-whisper failed: {error}") from error
        return segments, language or self.config.language or "en"

    def _label_speakers(self, audio: np.ndarray, segments: list[Segment]) -> list[Segment]:
        """The segments with speakers, split where the speaker changes; as they were on failure.

        Diarization runs once over the whole decoded episode, after transcription, so a job
        resumed from a checkpoint labels exactly as one that ran through: clusters depend on
        all of the audio. That is also why checkpoints (partial transcripts) stay unlabelled:
        labels drawn from part of an episode would be renumbered when the rest arrives. Speakers
        are an extra: whatever goes wrong here is logged, and the job succeeds without them.
        """
        if self.settings.diarization == "off":
            return segments
        try:
            turns = diarize(audio, expected=self.job.speakers_expected)
            return label_segments(segments, turns)
        except Exception as error:  # noqa: BLE001 - speakers must never fail the job
            log.warning(
                "diarization failed; the transcript has no speakers",
                extra={"job_id": self.job.id, "error": f"{type(error).__name__}: {error}"},
            )
            return segments

    def _checkpoint(
        self, segments: list[Segment], language: str, duration: float, episode: Episode, end: float
    ) -> None:
        partial = self._transcript(segments, language, duration, episode, until=end)
        name = self.retry.call(
            "write checkpoint", lambda: save_checkpoint(self.store, self.job.id, partial)
        )
        self._update(checkpoint_object=name)

    def _transcript(
        self,
        segments: list[Segment],
        language: str,
        duration: float,
        episode: Episode,
        *,
        until: float | None = None,
    ) -> Transcript:
        return Transcript(
            segments=tuple(segments),
            language=language,
            duration=duration,
            model=self.config.model_name,
            device=self.config.device,
            compute_type=self.config.compute_type,
            timings=dict(self.timings),
            episode=episode.to_dict(),
            complete=until is None,
            transcribed_until=until,
        )

    def _upload(self, transcript: Transcript) -> dict[str, str]:
        objects: dict[str, str] = {}
        for fmt, content_type in TRANSCRIPT_FORMATS.items():
            objects[fmt] = self.retry.call(
                f"upload {fmt}",
                functools.partial(
                    self.store.put,
                    transcript_object_name(self.job.id, fmt),
                    render(transcript, fmt),
                    f"{content_type}; charset=utf-8",
                ),
            )
        return objects


def _load(config: EngineConfig) -> Transcriber:
    """The transcriber with its model loaded, or why it could not be."""
    try:
        return Transcriber(config)
    except (RuntimeError, ValueError, OSError) as error:
        raise TranscriptionFailedError(
            f"could not load the model {config.model_name!r} on {config.device} "
            f"({config.compute_type}): {error}"
        ) from error


def _record_failure(
    engine: Engine, job: jobs.Job, error: PodscribeError, settings: JobSettings
) -> JobOutcome:
    """Fail the job (permanent fault, or transient with no attempts left) or requeue it."""
    requeue = error.transient and job.attempts < settings.max_attempts
    log.warning(
        "job attempt ended with an error",
        extra={"job_id": job.id, "code": error.code, "error": error.message, "requeue": requeue},
    )
    try:
        with transaction(engine) as conn:
            if requeue:
                # The history keeps codes; the detail is logged above.
                jobs.requeue(conn, job.id, jobs.JobStatus.RUNNING, reason=error.code)
                return JobOutcome.REQUEUED
            jobs.fail(conn, job.id, jobs.JobStatus.RUNNING, code=error.code, message=error.message)
    except JobStateConflictError:
        log.warning("job taken back before its failure was recorded", extra={"job_id": job.id})
        return JobOutcome.LOST
    return JobOutcome.FAILED
