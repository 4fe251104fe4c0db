"""The publisher's transcript first: a job that needs no GPU at all.

    preflight resolved the episode -> the feed item lists <podcast:transcript>s
        -> the best readable one, fetched through the guard (size-capped) -> parsed and
           normalised (podscribe.transcription.publisher) -> every format stored
        -> queued -> succeeded in one transaction, indexed for search, webhooks enqueued
        \\-> refused, hostile, unreadable or unreachable: logged, and the job goes on to be
           transcribed as if the feed had no transcript

Only one transcript is fetched per job (the best type the item offers), so a feed cannot make
dispatch fetch more than one file beyond the feed itself. A caller who wants our own
transcription anyway says ``"force": true`` (``jobs.skip_publisher``).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from podscribe.db import transaction
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import JobStateConflictError, PodscribeError
from podscribe.jobs.model import Job
from podscribe.jobs.search import index_transcript
from podscribe.jobs.transitions import succeed_from_publisher
from podscribe.jobs.webhooks import notify_finished
from podscribe.podcasts import Episode
from podscribe.podcasts.podcast_namespace import PublisherTranscriptRef
from podscribe.settings import Settings
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore, transcript_object_name
from podscribe.transcription.formats import Transcript, render
from podscribe.transcription.publisher import (
    PREFERRED_TYPES,
    parse_publisher_transcript,
    timestamp_limit,
    transcript_kind,
)

__all__ = ["PUBLISHER_MODEL", "best_transcript", "take_publisher_transcript"]

log = logging.getLogger(__name__)

PUBLISHER_MODEL = "publisher"
"""The ``model`` a publisher's transcript records: nothing here transcribed it."""
_ACCEPT = (
    "application/json, text/vtt, application/x-subrip, application/srt, text/html;q=0.8, */*;q=0.1"
)
_RANK = {kind: rank for rank, kind in enumerate(PREFERRED_TYPES)}


def best_transcript(episode: Episode) -> PublisherTranscriptRef | None:
    """The publisher's transcript worth fetching: the best type we read, first listed wins."""
    readable = [ref for ref in episode.transcripts if ref.type in _RANK]
    return min(readable, key=lambda ref: _RANK[ref.type], default=None)


def take_publisher_transcript(
    engine: Engine,
    settings: Settings,
    job: Job,
    episode: Episode,
    *,
    fetcher: SafeFetcher,
    store: TranscriptStore | None = None,
) -> bool:
    """Finish a queued job with the publisher's transcript, when its feed item has one.

    Args:
        engine: the database.
        settings: the fetch caps (``max_publisher_transcript_bytes``), the storage bucket.
        job: the queued job (``skip_publisher`` already checked by the caller).
        episode: its resolved episode, with the feed item's transcripts.
        fetcher: the guarded fetcher.
        store: the transcripts bucket; built from settings when omitted.

    Returns:
        True when the job succeeded here (stored, indexed, webhooks sent); False when the
        episode is to be transcribed (no transcript, or one refused: logged).

    Raises:
        StorageError: storage failed transiently (nothing recorded; the wake-up is retried).
    """
    ref = best_transcript(episode)
    if ref is None:
        return False
    try:
        transcript = _read(settings, job, episode, ref, fetcher)
    except PodscribeError as error:
        log.info(
            "the publisher's transcript was refused; transcribing instead",
            extra={"job_id": job.id, "url": ref.url[:500], "code": error.code,
                   "detail": error.message[:500]},
        )  # fmt: skip
        return False
    store = store or TranscriptStore(settings)
    objects = {
        fmt: store.put(
            transcript_object_name(job.id, fmt),
            render(transcript, fmt),
            f"{content_type}; charset=utf-8",
        )
        for fmt, content_type in TRANSCRIPT_FORMATS.items()
    }
    try:
        with transaction(engine) as conn:
            succeed_from_publisher(
                conn,
                job.id,
                transcript_objects=objects,
                changes={
                    "episode": episode.to_dict(),
                    "language": transcript.language,
                    "duration_seconds": round(transcript.duration, 3),
                    "model": PUBLISHER_MODEL,
                    "transcript_source": "publisher",
                    "provenance": dict(transcript.provenance or {}),
                },
            )
            index_transcript(conn, job.id, transcript.segments)
    except JobStateConflictError:
        log.info("the job moved on while the publisher's transcript was read",
                 extra={"job_id": job.id})  # fmt: skip
        return True
    log.info(
        "job succeeded from the publisher's transcript; no GPU spent",
        extra={"job_id": job.id, "segments": len(transcript.segments), "type": ref.type},
    )
    notify_finished(engine, settings, [job.id])
    return True


def _read(
    settings: Settings, job: Job, episode: Episode, ref: PublisherTranscriptRef,
    fetcher: SafeFetcher,
) -> Transcript:  # fmt: skip
    """Fetch, check and normalise one publisher's transcript.

    Raises:
        PodscribeError: the fetch was refused or failed, or the file was (see
            :func:`~podscribe.transcription.publisher.parse_publisher_transcript`).
    """
    document = fetcher.get_document(
        ref.url, max_bytes=settings.max_publisher_transcript_bytes, accept=_ACCEPT
    )
    kind = transcript_kind(ref.type, document.content) or PREFERRED_TYPES[ref.type]
    limit = timestamp_limit(episode.duration_seconds, settings.max_episode_seconds)
    segments = parse_publisher_transcript(document.content, kind, max_seconds=limit)
    provenance: dict[str, Any] = {
        "url": ref.url,
        "final_url": document.url,
        "type": ref.type,
        "format": kind,
        "language": ref.language,
        "sha256": hashlib.sha256(document.content).hexdigest(),
        "bytes": len(document.content),
        "fetched_at": datetime.now(UTC).isoformat(),
        "audio_duration_seconds": episode.duration_seconds,
    }
    return Transcript(
        segments=segments,
        language=_language(ref.language, job.requested_language),
        duration=episode.duration_seconds or segments[-1].end,
        model=PUBLISHER_MODEL,
        device="",
        compute_type="",
        episode=episode.to_dict(),
        source="publisher",
        provenance=provenance,
    )


def _language(declared: str | None, requested: str | None) -> str:
    """``en`` of ``en-US``: the primary subtag the job document shows, else what was asked."""
    primary = (declared or "").replace("_", "-").split("-", maxsplit=1)[0].strip().lower()
    if primary.isalpha() and 2 <= len(primary) <= 3:
        return primary
    return requested or "en"
