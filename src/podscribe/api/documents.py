"""The JSON a caller sees for a job, rendered from :class:`podscribe.api.models.Job`.

One function shapes a :class:`~podscribe.jobs.model.Job` row for both ``POST`` and ``GET``, so
the two can never drift apart; the OpenAPI document's ``Job`` schema is that model's schema.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from podscribe.api import models
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.outbox import WebhookState
from podscribe.jobs.share_links import ShareLink
from podscribe.jobs.speaker_names import speaker_suggestions
from podscribe.storage import TRANSCRIPT_FORMATS

__all__ = [
    "SHARE_FORMATS",
    "job_document",
    "job_model",
    "job_path",
    "share_link_model",
    "share_path",
    "transcript_links",
]

SHARE_FORMATS: dict[str, tuple[str, str]] = {
    "vtt": ("vtt", "text/vtt"),
    "srt": ("srt", "application/x-subrip"),
    "json": ("podcast-json", "application/json"),
    "html": ("html", "text/html"),
    "txt": ("txt", "text/plain"),
}
"""A share link's extensions: the transcript format each serves and its type (the podcast
namespace's ``<podcast:transcript type>``)."""
_CAPTIONS = frozenset({"vtt", "srt"})


def job_path(job_id: str | uuid.UUID) -> str:
    """``/v1/transcriptions/<id>``."""
    return f"/v1/transcriptions/{quote(str(job_id), safe='')}"


def transcript_links(job_id: str | uuid.UUID, base_url: str) -> dict[str, str]:
    """The URL of each transcript format of a job (also what its webhook names)."""
    transcript_url = f"{base_url}{job_path(job_id)}/transcript"
    return {fmt: f"{transcript_url}?format={fmt}" for fmt in TRANSCRIPT_FORMATS}


def share_path(token: str, extension: str) -> str:
    """``/t/<token>.<ext>``: a share link's URL path."""
    return f"/t/{token}.{extension}"


def share_link_model(link: ShareLink, base_url: str, language: str | None) -> models.ShareLink:
    """The API model of a share link: its URLs and their ``<podcast:transcript>`` lines.

    Args:
        link: the link.
        base_url: scheme and host the URLs are built on.
        language: the transcript's language, named in the snippet when known.
    """
    urls = {ext: f"{base_url}{share_path(link.token, ext)}" for ext in SHARE_FORMATS}
    lang = f' language="{html.escape(language)}"' if language else ""
    lines = [
        f'<podcast:transcript url="{html.escape(url)}" type="{SHARE_FORMATS[ext][1]}"{lang}'
        + (' rel="captions"' if ext in _CAPTIONS else "")
        + " />"
        for ext, url in urls.items()
    ]
    return models.ShareLink(
        id=uuid.UUID(link.id),
        token=link.token,
        urls=urls,
        created_at=link.created_at,
        podcast_transcript="\n".join(lines),
    )


def job_model(
    job: Job,
    base_url: str,
    webhook: WebhookState | None = None,
    share_links: Sequence[ShareLink] | None = None,
) -> models.Job:
    """The API model of a job row.

    Args:
        job: the row, as the caller sees it (its speakers flag and names).
        base_url: scheme and host links are built on (no trailing slash).
        webhook: the caller's webhook (:func:`podscribe.jobs.outbox.webhook_state`), if any.
        share_links: the caller's live share links (single-job answers only).

    Returns:
        ``id``, ``status``, ``progress``, ``attempts``, ``source_url``, ``apple`` ids,
        ``episode`` (once resolved), ``requested``/``transcription`` settings, ``timings``,
        ``error`` (failed jobs), ``partial_transcript`` (running jobs with a checkpoint),
        ``links`` (self, and each transcript format once succeeded), ``webhook``,
        ``speakers`` (labels, the caller's names, whether it sees them), ``speaker_names``
        (the feed's hosts and guests) and ``share_links``.
    """
    succeeded = job.status is JobStatus.SUCCEEDED
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
            source=job.transcript_source if job.status is JobStatus.SUCCEEDED else None,
            provenance=(
                dict(job.provenance)
                if job.provenance and job.transcript_source == "publisher"
                else None
            ),
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
        speakers=models.Speakers(
            enabled=job.speakers,
            labels=list(job.speaker_labels) if succeeded else [],
            names=dict(job.speaker_names),
        ),
        speaker_names=[
            models.SpeakerSuggestion.model_validate(item)
            for item in speaker_suggestions(job.episode)
        ],
        share_links=(
            [share_link_model(link, base_url, job.language) for link in share_links]
            if share_links is not None
            else None
        ),
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


def job_document(
    job: Job,
    base_url: str,
    webhook: WebhookState | None = None,
    share_links: Sequence[ShareLink] | None = None,
) -> dict[str, Any]:
    """The API representation of a job, as JSON-ready data (see :func:`job_model`)."""
    return job_model(job, base_url, webhook, share_links).render()
