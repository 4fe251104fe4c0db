"""``GET /v1/transcriptions/{job_id}/transcript``: a succeeded job's file, or a running one's
checkpoint, as the caller sees it.

Every format is stored when a job succeeds, rendered with the labels (``S1``, ...) and the
formats' default line limits: that file is streamed as is when it is what the caller asked
for. A caller who named speakers, turned them off (``"speakers": false``) or asked for other
line limits gets the format rendered for them from the JSON of record
(:func:`~podscribe.transcription.formats.render`), as does a format the job's row names no
file of (jobs that succeeded before it existed). Share links (:mod:`podscribe.api.share_links`)
render the same way with their owner's view.

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
from podscribe.transcription.formats import RenderOptions, Transcript, render

__all__ = ["caller_options", "media_type", "transcript_bytes", "transcript_response"]

log = logging.getLogger("podscribe.api")

_TEXT_TYPES = frozenset(
    {"text/plain", "text/vtt", "text/html", "application/x-subrip", "application/json"}
)
_RECORD = "json"
"""The format of record: every other one renders from it."""


def caller_options(
    job: Job, max_line_chars: int | None = None, max_lines: int | None = None
) -> RenderOptions:
    """How the key ``job`` was read for sees its transcript: its names, its speakers flag."""
    return RenderOptions(
        speaker_names=dict(job.speaker_names),
        speakers=job.speakers,
        max_line_chars=max_line_chars,
        max_lines=max_lines,
    )


def media_type(fmt: str) -> str:
    """The ``Content-Type`` a format is answered with (text ones in UTF-8)."""
    content_type = TRANSCRIPT_FORMATS[fmt]
    return f"{content_type}; charset=utf-8" if content_type in _TEXT_TYPES else content_type


def _as_stored(job: Job, options: RenderOptions) -> bool:
    """Whether the stored file (labels, default limits) is what ``options`` ask for."""
    if options.max_line_chars is not None or options.max_lines is not None:
        return False
    return not job.speaker_labels or (options.speakers and not options.speaker_names)


def transcript_response(
    job: Job, query: TranscriptQuery, engine: Engine, store: TranscriptStore
) -> Response:
    """The transcript of ``job`` in the format asked for, as the caller sees it.

    Args:
        job: the job, already checked to be the caller's (with its names and flag).
        query: the format, the line limits, and whether the running job's checkpoint is
            wanted.
        engine: the database (to fail a job whose transcript is gone).
        store: where transcripts and checkpoints are.

    Returns:
        The response: the stored file streamed, or the rendered one.

    Raises:
        TranscriptNotReadyError: the job has not succeeded (or, for ``partial``, is not
            running with a checkpoint).
        TranscriptGoneError: the file is no longer in storage (the job is failed for it).
        StorageError: the row names no transcript of record, or storage is unavailable.
    """
    options = caller_options(job, query.max_line_chars, query.max_lines)
    chunks: Iterator[bytes]
    if query.partial:
        if job.status is not JobStatus.RUNNING or not job.checkpoint_object:
            raise TranscriptNotReadyError(
                f"job {job.id} is {job.status.value}; a partial transcript exists only "
                "while it runs and has written a checkpoint"
            )
        chunks = _partial(store, job.id, job.checkpoint_object, query.format, options)
        filename = f"{job.id}.partial.{query.format}"
    else:
        _require_succeeded(job)
        filename = f"{job.id}.{query.format}"
        stored = (job.transcript_objects or {}).get(query.format)
        if stored and _as_stored(job, options):
            try:
                chunks = store.stream(stored)
            except FileNotFoundError:
                raise _transcript_gone(job, engine) from None
        else:
            chunks = iter([transcript_bytes(job, query.format, options, engine, store)])
    response = Response(chunks, status=200, content_type=media_type(query.format))
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # Names may change at any time (PATCH .../speakers): a copy is checked before reuse.
    response.headers["Cache-Control"] = "private, no-cache" if not query.partial else "no-store"
    return response


def transcript_bytes(
    job: Job, fmt: str, options: RenderOptions, engine: Engine, store: TranscriptStore
) -> bytes:
    """A succeeded job's transcript in ``fmt`` as ``options`` shape it, whole.

    The stored file when it is what ``options`` ask for, else rendered from the JSON of
    record.

    Raises:
        TranscriptNotReadyError: the job has not succeeded.
        TranscriptGoneError: the file is no longer in storage (the job is failed for it).
        StorageError: the row names no transcript of record, or storage is unavailable.
    """
    _require_succeeded(job)
    objects = job.transcript_objects or {}
    as_stored = bool(objects.get(fmt)) and _as_stored(job, options)
    name = objects.get(fmt) if as_stored else objects.get(_RECORD)
    if not name:
        raise StorageError(f"job {job.id} has no {_RECORD} transcript recorded")
    try:
        payload = store.get(name)
    except FileNotFoundError:
        raise _transcript_gone(job, engine) from None
    if as_stored:
        return payload
    return render(Transcript.from_json(payload), fmt, options).encode("utf-8")


def _require_succeeded(job: Job) -> None:
    if job.status is not JobStatus.SUCCEEDED:
        detail = f"job {job.id} is {job.status.value}"
        if job.status is JobStatus.FAILED:
            detail += f" ({job.error_code}); submit the episode again to retry"
        raise TranscriptNotReadyError(detail)


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


def _partial(
    store: TranscriptStore, job_id: str, checkpoint: str, fmt: str, options: RenderOptions
) -> Iterator[bytes]:
    """A running job's checkpoint (the segments done so far), rendered in ``fmt``.

    Checkpoints carry no speaker labels (diarization runs once the audio is transcribed), so
    only the line limits shape them; the JSON of record is served as written.
    """
    try:
        payload = store.get(checkpoint)
    except FileNotFoundError:
        raise TranscriptNotReadyError(
            f"job {job_id} moved on since its checkpoint was written; ask again"
        ) from None
    if fmt == _RECORD:
        return iter([payload])
    return iter([render(Transcript.from_json(payload), fmt, options).encode("utf-8")])
