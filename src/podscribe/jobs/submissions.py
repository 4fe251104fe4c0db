"""Submitting and reading jobs: what the API and the webhooks ask of the table.

Listing a key's jobs and giving one up are :mod:`podscribe.jobs.listing`.

The same episode with the same options (model, language) is one row whoever asks
(``jobs_identity_key``); each key that asks is granted access in ``job_access``, with the link
it sent and its callback URL.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from podscribe.errors import JobNotFoundError, is_episode_fault
from podscribe.jobs.budgets import charge_job_start
from podscribe.jobs.model import Job, JobEvent, JobId, JobStatus, SubmitOutcome, parse_job_id
from podscribe.jobs.outbox import enqueue_deliveries
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import job_events_table as _events
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.transitions import (
    record_event,
    requeue,
    requeue_to_transcribe,
    skip_publisher_transcript,
)
from podscribe.settings import BudgetSettings


def create_or_get_job(
    conn: Connection,
    *,
    collection_id: int,
    episode_id: int,
    source_url: str,
    key_fingerprint: str,
    transcript_model: str = "",
    transcript_language: str = "",
    requested_language: str | None = None,
    requested_model: str | None = None,
    callback_url: str | None = None,
    speakers: bool = True,
    speakers_expected: int | None = None,
    force: bool = False,
    failed_retry_after_seconds: float = 0.0,
    budget: BudgetSettings | None = None,
) -> tuple[Job, SubmitOutcome]:
    """Insert the job for an episode and options, or return the one that exists.

    A job is the episode with what shapes its transcript (``transcript_model``,
    ``transcript_language``): the same from any key or link spelling is one job, and every
    key that asks is granted access to it, with its own ``source_url`` and callback. A failed
    job asked for again goes back to the queue with fresh attempts, unless it failed for a
    reason of the episode's own (:func:`~podscribe.errors.is_episode_fault`) less than
    ``failed_retry_after_seconds`` ago: then the failure is the answer.

    Args:
        transcript_model: the model the job runs (the served name, not the one asked for).
        transcript_language: the language asked for, ``""`` when it is to be detected.
        speakers: whether this key's transcript files carry speaker labels.
        speakers_expected: the speaker count hint, recorded when this creates the job.
        force: transcribe even when the feed carries the publisher's transcript.
        failed_retry_after_seconds: the cool-down of a job failed by its episode's fault.
        budget: when given, a submission that starts a job (creates it, or queues it again)
            is charged to the key (:func:`~podscribe.jobs.budgets.charge_job_start`).

    Raises:
        TooManyActiveJobsError: over the key's active jobs (the caller's transaction must
            roll back).
        LaunchBudgetExhaustedError: over the key's starts per hour (likewise).

    Returns:
        The job (with this key's ``source_url``) and what happened to it.
    """
    identity = (
        _jobs.c.collection_id == collection_id,
        _jobs.c.episode_id == episode_id,
        _jobs.c.transcript_model == transcript_model,
        _jobs.c.transcript_language == transcript_language,
    )
    # The common case, a repeat request, is read-only: no lock, no write, no commit flush.
    known = conn.execute(_with_access(sa.select(_jobs), key_fingerprint).where(*identity))
    found = known.mappings().first()
    if (
        found is not None
        and found["access_key"] is not None
        and callback_url in (None, found["access_callback"])
        and speakers == found["access_speakers"]
        and (
            found["status"] != JobStatus.FAILED
            or _answer_failure(conn, found, failed_retry_after_seconds)
        )
        and not (force and _forcing_changes(found))
    ):
        return _as_seen_by(found), SubmitOutcome.EXISTING
    row = (
        conn.execute(
            insert(_jobs)
            .values(
                id=uuid.uuid4(),
                collection_id=collection_id,
                episode_id=episode_id,
                source_url=source_url,
                transcript_model=transcript_model,
                transcript_language=transcript_language,
                requested_language=requested_language,
                requested_model=requested_model,
                speakers_expected=speakers_expected,
                skip_publisher=force,
            )
            .on_conflict_do_nothing(constraint="jobs_identity_key")
            .returning(*_jobs.c)
        )
        .mappings()
        .first()
    )
    if row is not None:
        job = Job.from_row(row)
        record_event(conn, job, None, "submitted")
        outcome = SubmitOutcome.CREATED
    else:
        existing = conn.execute(sa.select(_jobs).where(*identity).with_for_update()).mappings()
        locked = existing.first()
        if locked is None:
            # Its last key deleted it between our insert and this read: insert it afresh.
            return create_or_get_job(
                conn,
                collection_id=collection_id,
                episode_id=episode_id,
                source_url=source_url,
                key_fingerprint=key_fingerprint,
                transcript_model=transcript_model,
                transcript_language=transcript_language,
                requested_language=requested_language,
                requested_model=requested_model,
                callback_url=callback_url,
                speakers=speakers,
                speakers_expected=speakers_expected,
                force=force,
                failed_retry_after_seconds=failed_retry_after_seconds,
                budget=budget,
            )
        job = Job.from_row(locked)
        outcome = SubmitOutcome.EXISTING
        if job.status is JobStatus.FAILED and not _answer_failure(
            conn, locked, failed_retry_after_seconds
        ):
            job = requeue(conn, job.id, JobStatus.FAILED, reason="resubmitted", afresh=True)
            outcome = SubmitOutcome.REQUEUED
        if force and job.status is JobStatus.SUCCEEDED and job.transcript_source == "publisher":
            job = requeue_to_transcribe(conn, job.id)
            outcome = SubmitOutcome.REQUEUED
        elif force and job.status is JobStatus.QUEUED and not job.skip_publisher:
            job = skip_publisher_transcript(conn, job.id)
    grant = insert(_access).values(
        job_id=uuid.UUID(job.id),
        key_fingerprint=key_fingerprint,
        callback_url=callback_url,
        source_url=source_url,
        speakers=speakers,
    )
    conn.execute(
        grant.on_conflict_do_update(
            index_elements=[_access.c.job_id, _access.c.key_fingerprint],
            set_={
                "callback_url": sa.func.coalesce(
                    grant.excluded.callback_url, _access.c.callback_url
                ),
                "speakers": grant.excluded.speakers,
            },
        )
    )
    if callback_url is not None and outcome is SubmitOutcome.EXISTING and job.status in _ENDED:
        # The job ended before this key asked: its webhook is owed all the same.
        enqueue_deliveries(conn, job, key_fingerprint=key_fingerprint)
    if budget is not None and outcome is not SubmitOutcome.EXISTING:
        charge_job_start(conn, key_fingerprint=key_fingerprint, job_id=job.id, settings=budget)
    return _visible_as(job, conn, key_fingerprint), outcome


_ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def _forcing_changes(row: Mapping[Any, Any]) -> bool:
    """Whether ``"force": true`` changes this job: it took, or may still take, the
    publisher's transcript instead of being transcribed here."""
    if row["status"] == JobStatus.SUCCEEDED:
        return bool(row["transcript_source"] == "publisher")
    return row["status"] in (JobStatus.QUEUED, JobStatus.FAILED) and not row["skip_publisher"]


def _answer_failure(conn: Connection, row: Mapping[Any, Any], cool_down_seconds: float) -> bool:
    """Whether a failed job is answered with its failure instead of being tried again."""
    if not is_episode_fault(row["error_code"]) or row["finished_at"] is None:
        return False
    age = conn.execute(sa.select(sa.func.now() - row["finished_at"])).scalar_one()
    return bool(age.total_seconds() < cool_down_seconds)


def _with_access(query: sa.Select[Any], key_fingerprint: str) -> sa.Select[Any]:
    """``query`` over jobs, with this key's access row (NULLs when it has none) beside."""
    return query.add_columns(
        _access.c.key_fingerprint.label("access_key"),
        _access.c.callback_url.label("access_callback"),
        _access.c.source_url.label("access_source_url"),
        _access.c.speakers.label("access_speakers"),
        _access.c.speaker_names.label("access_speaker_names"),
    ).select_from(
        _jobs.outerjoin(
            _access,
            sa.and_(_access.c.job_id == _jobs.c.id, _access.c.key_fingerprint == key_fingerprint),
        )
    )


def _as_seen_by(row: Mapping[Any, Any]) -> Job:
    """The job of a :func:`_with_access` row, with the key's own ``source_url`` and speaker
    settings."""
    return seen_by_key(Job.from_row(row), row)


def seen_by_key(job: Job, access: Mapping[Any, Any]) -> Job:
    """``job`` as the key of an access row sees it: its own link, speakers flag and names.

    Args:
        job: the job.
        access: a row with ``access_source_url``, ``access_speakers`` and
            ``access_speaker_names`` (NULLs when the key has no access: the job as it is).
    """
    own = access.get("access_source_url")
    if not own:
        return job
    return dataclasses.replace(
        job,
        source_url=own,
        speakers=bool(access["access_speakers"]),
        speaker_names=dict(access["access_speaker_names"] or {}),
    )


def _visible_as(job: Job, conn: Connection, key_fingerprint: str) -> Job:
    job_uuid = uuid.UUID(job.id)
    own = conn.execute(
        sa.select(
            _access.c.source_url.label("access_source_url"),
            _access.c.speakers.label("access_speakers"),
            _access.c.speaker_names.label("access_speaker_names"),
        ).where(_access.c.job_id == job_uuid, _access.c.key_fingerprint == key_fingerprint)
    )
    access = own.mappings().first()
    return seen_by_key(job, access) if access is not None else job


def get_job(conn: Connection, job_id: JobId, *, key_fingerprint: str | None = None) -> Job:
    """Read one job; with a fingerprint, only if that key submitted it, as it sees it (its
    own ``source_url``).

    Raises:
        JobNotFoundError: no such job, a malformed id, or not visible to the key.
    """
    query = sa.select(_jobs).where(_jobs.c.id == parse_job_id(job_id))
    if key_fingerprint is not None:
        query = _with_access(query, key_fingerprint).where(_access.c.key_fingerprint.is_not(None))
    row = conn.execute(query).mappings().first()
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    return _as_seen_by(row)


def job_history(conn: Connection, job_id: JobId) -> list[JobEvent]:
    """The job's transitions, oldest first."""
    query = sa.select(_events).where(_events.c.job_id == parse_job_id(job_id))
    rows = conn.execute(query.order_by(_events.c.seq)).mappings()
    return [JobEvent.from_row(row) for row in rows]


def callback_urls(conn: Connection, job_id: JobId) -> list[str]:
    """Webhook URLs registered by the keys that asked for this job."""
    query = (
        sa.select(_access.c.callback_url)
        .where(_access.c.job_id == parse_job_id(job_id), _access.c.callback_url.is_not(None))
        .order_by(_access.c.created_at)
    )
    return list(conn.execute(query).scalars())
