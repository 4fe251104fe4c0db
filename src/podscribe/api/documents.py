"""The JSON a caller sees for a job, rendered from :class:`podscribe.api.models.Job`.

One function shapes a :class:`~podscribe.jobs.model.Job` row for both ``POST`` and ``GET``, so
the two can never drift apart; the OpenAPI document's ``Job`` schema is that model's schema.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from podscribe.api import models
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.outbox import WebhookState
from podscribe.storage import TRANSCRIPT_FORMATS

__all__ = ["job_document", "job_model", "job_path", "transcript_links"]


def job_path(job_id: str | uuid.UUID) -> str:
    """``/v1/transcriptions/<id>``."""
    return f"/v1/transcriptions/{quote(str(job_id), safe='')}"


def transcript_links(job_id: str | uuid.UUID, base_url: str) -> dict[str, str]:
    """The URL of each transcript format of a job (also what its webhook names)."""
    transcript_url = f"{base_url}{job_path(job_id)}/transcript"
    return {fmt: f"{transcript_url}?format={fmt}" for fmt in TRANSCRIPT_FORMATS}


def job_model(job: Job, base_url: str, webhook: WebhookState | None = None) -> models.Job:
    """The API model of a job row.

    Args:
        job: the row.
        base_url: scheme and host links are built on (no trailing slash).
        webhook: the caller's webhook (:func:`podscribe.jobs.outbox.webhook_state`), if any.

    Returns:
        ``id``, ``status``, ``progress``, ``attempts``, ``source_url``, ``apple`` ids,
        ``episode`` (once resolved), ``requested``/``transcription`` settings, ``timings``,
        ``error`` (failed jobs), ``partial_transcript`` (running jobs with a checkpoint),
        ``links`` (self, and each transcript format once succeeded) and ``webhook``.
    """
    self_url = f"{base_url}{job_path(job.id)}"
    partial_available = job.status is JobStatus.RUNNING and bool(job.checkpoint_object)
    return models.Job(
        id=uuid.UUID(str(job.id)),
        status=job.status,
        progress=round(float(job.progress), 4),
        attempts=job.attempts,
        source_url=job.source_url,
        apple=models.AppleIds(collection_id=job.collection_id, episode_id=job.episode_id),
        episode=dict(job.episode) if job.episode else None,
        requested=models.RequestedSettings(
            language=job.requested_language, model=job.requested_model
        ),
        transcription=models.TranscriptionSettings(
            language=job.language,
            model=job.model,
            device=job.device,
            compute_type=job.compute_type,
            duration_seconds=job.duration_seconds,
        ),
        timings=models.JobTimings(
            created_at=job.created_at,
            queued_at=job.queued_at,
            dispatched_at=job.dispatched_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
        ),
        error=(
            models.JobError(code=job.error_code or "", message=job.error_message or "")
            if job.status is JobStatus.FAILED
            else None
        ),
        partial_transcript=models.PartialTranscript(available=partial_available),
        links=models.JobLinks(
            self=self_url,
            transcripts=(
                transcript_links(job.id, base_url) if job.status is JobStatus.SUCCEEDED else None
            ),
            partial_transcript=(
                f"{self_url}/transcript?format=json&partial=true" if partial_available else None
            ),
        ),
        webhook=_webhook_model(webhook),
    )


def _webhook_model(state: WebhookState | None) -> models.WebhookDelivery | None:
    if state is None:
        return None
    return models.WebhookDelivery(
        url=state.url,
        status=state.status.value,
        attempts=state.attempts,
        last_status=state.last_status,
        next_attempt_at=state.next_attempt_at,
        delivered_at=state.delivered_at,
    )


def job_document(job: Job, base_url: str, webhook: WebhookState | None = None) -> dict[str, Any]:
    """The API representation of a job, as JSON-ready data (see :func:`job_model`)."""
    return job_model(job, base_url, webhook).render()
