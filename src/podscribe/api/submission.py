"""``POST /v1/transcriptions``: validate, honour an ``Idempotency-Key``, create or join the job.

The request is validated cheap-first (:func:`~podscribe.api.validation.parse_submit_request`);
the job is created, joined or queued again in one transaction that also charges the key's
budget and stores an idempotent answer; the wake-up is published after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Engine
from werkzeug.wrappers import Response

from podscribe.api import idempotency
from podscribe.api.admission import RequestContext
from podscribe.api.documents import job_document, job_path
from podscribe.api.problems import problem_response
from podscribe.api.request_bodies import SubmitRequest
from podscribe.api.responses import json_response
from podscribe.api.validation import Submission, parse_submit_request
from podscribe.db import transaction
from podscribe.errors import IdempotencyKeyInUseError
from podscribe.jobs import SubmitOutcome, create_or_get_job
from podscribe.settings import Settings

__all__ = ["submit_response"]

log = logging.getLogger("podscribe.api")


def submit_response(
    context: RequestContext, settings: Settings, engine: Engine, wake: Callable[[str], None]
) -> Response:
    """Answer ``POST /v1/transcriptions``: the job created, joined or queued again.

    With an ``Idempotency-Key``, the first answer is stored in the job's own transaction and
    replayed to a repeat (:mod:`podscribe.api.idempotency`).

    Args:
        context: the admitted request.
        settings: validation, budgets and the idempotency entries' lifetime.
        engine: the database.
        wake: publishes a job's wake-up (never raises; the sweep covers a lost one).
    """
    key = idempotency.parse_idempotency_key(
        context.request.headers.getlist(idempotency.IDEMPOTENCY_HEADER)
    )
    submission = parse_submit_request(context.request, settings)
    reservation: idempotency.Reservation | None = None
    if key is not None:
        held = _hold_idempotency_key(context, key, submission, settings, engine)
        if isinstance(held, Response):
            return held  # the first answer replayed, or 409 while it is in flight
        reservation = held
    try:
        with transaction(engine) as conn:
            job, outcome = create_or_get_job(
                conn,
                collection_id=submission.episode.collection_id,
                episode_id=submission.episode.episode_id,
                source_url=submission.url,
                key_fingerprint=context.key.fingerprint,
                transcript_model=submission.transcript_model,
                transcript_language=submission.transcript_language,
                requested_language=submission.language,
                requested_model=submission.model,
                callback_url=submission.callback_url,
                speakers=submission.speakers,
                speakers_expected=submission.speakers_expected,
                force=submission.force,
                failed_retry_after_seconds=settings.failed_retry_after_seconds,
                budget=settings,
            )
            status = 200 if outcome is SubmitOutcome.EXISTING else 202
            body = job_document(job, context.links_base)
            location = f"{context.links_base}{job_path(job.id)}"
            # In the job's transaction: the answer is stored exactly when its effect is.
            if reservation is not None and not idempotency.complete(
                conn, reservation, status=status, body=body, location=location
            ):
                log.warning("idempotency key taken over meanwhile; answer not stored")
    except Exception:
        if reservation is not None:
            # Only successes are stored: the caller may fix this and send the key again.
            idempotency.release(engine, reservation)
        raise
    if outcome is not SubmitOutcome.EXISTING:
        wake(job.id)
    log.info(
        "submission %s",
        outcome.value,
        extra={"job_id": job.id, "outcome": outcome.value, "caller": context.key.short},
    )
    response = json_response(body, status=status)
    response.headers["Location"] = location
    return response


def _hold_idempotency_key(
    context: RequestContext, key: str, submission: Submission, settings: Settings, engine: Engine
) -> idempotency.Reservation | Response:
    """Reserve a submission's ``Idempotency-Key``, or answer for it: the key's first
    answer replayed, or ``409 idempotency_key_in_use`` while that is still in flight.

    Raises:
        IdempotencyKeyReusedError: the key was sent with another request (422).
    """
    fields = {name: getattr(submission, name) for name in SubmitRequest.model_fields}
    try:
        held = idempotency.reserve(
            engine,
            key_fingerprint=context.key.fingerprint,
            idempotency_key=key,
            request_hash=idempotency.request_hash(
                context.request.method, context.request.path, fields
            ),
            ttl=idempotency.entry_ttl(settings),
        )
    except IdempotencyKeyInUseError as error:
        retry = {"Retry-After": str(idempotency.IN_USE_RETRY_AFTER)}
        return problem_response(error, instance=context.request.path, headers=retry)
    if isinstance(held, idempotency.Reservation):
        return held
    log.info("submission replayed", extra={"caller": context.key.short})
    response = json_response(held.body, status=held.status)
    if held.location:
        response.headers["Location"] = held.location
    response.headers[idempotency.REPLAYED_HEADER] = "true"
    return response
