"""The JSON a caller sees for a job.

One function shapes a :class:`~podscribe.jobs.store.Job` for both ``POST`` and ``GET``, so the two
can never drift apart; the OpenAPI document's ``Job`` schema describes exactly this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from podscribe.jobs.store import Job, JobStatus
from podscribe.storage import TRANSCRIPT_FORMATS

__all__ = ["job_document", "job_path"]


def job_path(job_id: str) -> str:
    """``/v1/transcriptions/<id>``."""
    return f"/v1/transcriptions/{quote(job_id, safe='')}"


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _episode(job: Job) -> dict[str, Any] | None:
    """The resolved episode's metadata, as the job recorded it (show, title, audio_url...)."""
    return dict(job.episode) if job.episode else None


def job_document(job: Job, base_url: str) -> dict[str, Any]:
    """The API representation of a job.

    Args:
        job: the row.
        base_url: scheme and host links are built on (no trailing slash).

    Returns:
        ``id``, ``status``, ``progress``, ``attempts``, ``source_url``, ``apple`` ids,
        ``episode`` (once resolved), ``requested``/``transcription`` settings, ``timings``,
        ``error`` (failed jobs), ``partial_transcript`` (running jobs with a checkpoint) and
        ``links`` (self, and each transcript format once succeeded).
    """
    self_url = f"{base_url}{job_path(job.id)}"
    transcript_url = f"{self_url}/transcript"
    links: dict[str, Any] = {"self": self_url}
    if job.status is JobStatus.SUCCEEDED:
        links["transcripts"] = {fmt: f"{transcript_url}?format={fmt}" for fmt in TRANSCRIPT_FORMATS}
    partial_available = job.status is JobStatus.RUNNING and bool(job.checkpoint_object)
    if partial_available:
        links["partial_transcript"] = f"{transcript_url}?format=json&partial=true"
    document: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "progress": round(float(job.progress), 4),
        "attempts": job.attempts,
        "source_url": job.source_url,
        "apple": {"collection_id": job.collection_id, "episode_id": job.episode_id},
        "episode": _episode(job),
        "requested": {"language": job.requested_language, "model": job.requested_model},
        "transcription": {
            "language": job.language,
            "model": job.model,
            "device": job.device,
            "compute_type": job.compute_type,
            "duration_seconds": job.duration_seconds,
        },
        "timings": {
            "created_at": _time(job.created_at),
            "queued_at": _time(job.queued_at),
            "dispatched_at": _time(job.dispatched_at),
            "started_at": _time(job.started_at),
            "finished_at": _time(job.finished_at),
            "updated_at": _time(job.updated_at),
        },
        "error": (
            {"code": job.error_code, "message": job.error_message or ""}
            if job.status is JobStatus.FAILED
            else None
        ),
        "partial_transcript": {"available": partial_available},
        "links": links,
    }
    return document
