"""``GET /v1/transcriptions/{job_id}/transcript``: a succeeded job's file, or a running one's
checkpoint, streamed from storage.

A succeeded job whose file is no longer in storage (a retention rule, a hand) is failed as
``transcript_gone`` on the spot, so submitting the episode again transcribes it anew instead
of answering with the same missing file forever.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from sqlalchemy.engine import Engine
from werkzeug.wrappers import Response

from podscribe.api.validation import TranscriptQuery
from podscribe.db import transaction
from podscribe.errors import (
    JobStateConflictError,
    StorageError,
    TranscriptGoneError,
    TranscriptNotReadyError,
)
from podscribe.jobs import Job, JobStatus, fail
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore
from podscribe.transcription.formats import RENDERERS, Transcript

__all__ = ["transcript_response"]

log = logging.getLogger("podscribe.api")

_TEXT_TYPES = frozenset({"text/plain", "text/vtt", "application/x-subrip", "application/json"})


def transcript_response(
    job: Job, query: TranscriptQuery, engine: Engine, store: TranscriptStore
) -> Response:
    """The transcript of ``job`` in the format asked for, streamed.

    Args:
        job: the job, already checked to be the caller's.
        query: the format, and whether the running job's checkpoint is wanted.
        engine: the database (to fail a job whose transcript is gone).
        store: where transcripts and checkpoints are.

    Returns:
        The response.

    Raises:
        TranscriptNotReadyError: the job has not succeeded (or, for ``partial``, is not
            running with a checkpoint).
        TranscriptGoneError: the file is no longer in storage (the job is failed for it).
        StorageError: the row names no file of that format, or storage is unavailable.
    """
    name: str | None
    if query.partial:
        if job.status is not JobStatus.RUNNING or not job.checkpoint_object:
            raise TranscriptNotReadyError(
                f"job {job.id} is {job.status.value}; a partial transcript exists only "
                "while it runs and has written a checkpoint"
            )
        chunks = _partial(store, job.id, job.checkpoint_object, query.format)
        filename = f"{job.id}.partial.{query.format}"
    else:
        if job.status is not JobStatus.SUCCEEDED:
            detail = f"job {job.id} is {job.status.value}"
            if job.status is JobStatus.FAILED:
                detail += f" ({job.error_code}); submit the episode again to retry"
            raise TranscriptNotReadyError(detail)
        name = (job.transcript_objects or {}).get(query.format)
        if not name:
            raise StorageError(f"job {job.id} has no {query.format} transcript recorded")
        filename = f"{job.id}.{query.format}"
        try:
            chunks = store.stream(name)
        except FileNotFoundError:
            raise _transcript_gone(job, engine) from None
    content_type = TRANSCRIPT_FORMATS[query.format]
    if content_type in _TEXT_TYPES:
        content_type += "; charset=utf-8"
    response = Response(chunks, status=200, content_type=content_type)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "private, max-age=3600" if not query.partial else "no-store"
    return response


def _transcript_gone(job: Job, engine: Engine) -> TranscriptGoneError:
    """Fail the job as ``transcript_gone``: a new submission then transcribes it again."""
    message = (
        f"the transcript of job {job.id} is no longer in storage (removed by a retention "
        "rule or by hand); submit the episode again to transcribe it anew"
    )
    try:
        with transaction(engine) as conn:
            fail(
                conn,
                uuid.UUID(str(job.id)),
                JobStatus.SUCCEEDED,
                code=TranscriptGoneError.code,
                message=message,
            )
    except JobStateConflictError:
        pass  # submitted again meanwhile: it is already on its way back
    log.warning("a succeeded job's transcript is missing from storage", extra={"job_id": job.id})
    return TranscriptGoneError(message)


def _partial(store: TranscriptStore, job_id: str, checkpoint: str, fmt: str) -> Iterator[bytes]:
    """A running job's checkpoint (the segments done so far), rendered in ``fmt``."""
    try:
        payload = store.get(checkpoint)
    except FileNotFoundError:
        raise TranscriptNotReadyError(
            f"job {job_id} moved on since its checkpoint was written; ask again"
        ) from None
    if fmt == "json":
        return iter([payload])
    return iter([RENDERERS[fmt](Transcript.from_json(payload)).encode("utf-8")])
