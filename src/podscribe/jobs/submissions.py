"""Submitting and reading jobs: what the API and the webhooks ask of the table.

Listing a key's jobs and giving one up are :mod:`podscribe.jobs.listing`.

The same episode is one row whoever asks (``UNIQUE (collection_id, episode_id)``); each key
that asks is granted access in ``job_access``, with its callback URL.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from podscribe.errors import JobNotFoundError
from podscribe.jobs.model import Job, JobEvent, JobId, JobStatus, SubmitOutcome, parse_job_id
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import job_events_table as _events
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.transitions import record_event, requeue


def create_or_get_job(
    conn: Connection,
    *,
    collection_id: int,
    episode_id: int,
    source_url: str,
    key_fingerprint: str,
    requested_language: str | None = None,
    requested_model: str | None = None,
    callback_url: str | None = None,
) -> tuple[Job, SubmitOutcome]:
    """Insert the job for an episode, or return the one that exists.

    The same episode is one job whoever asks; every key that asks is granted access to it.
    A failed job asked for again goes back to the queue with fresh attempts.

    Returns:
        The job and what happened to it.
    """
    episode = (_jobs.c.collection_id == collection_id, _jobs.c.episode_id == episode_id)
    # The common case, a repeat request, is read-only: no lock, no write, no commit flush.
    known = (
        conn.execute(
            sa.select(
                _jobs,
                _access.c.key_fingerprint.label("access_key"),
                _access.c.callback_url.label("access_callback"),
            )
            .select_from(
                _jobs.outerjoin(
                    _access,
                    sa.and_(
                        _access.c.job_id == _jobs.c.id,
                        _access.c.key_fingerprint == key_fingerprint,
                    ),
                )
            )
            .where(*episode)
        )
        .mappings()
        .first()
    )
    if (
        known is not None
        and known["status"] != JobStatus.FAILED
        and known["access_key"] is not None
        and callback_url in (None, known["access_callback"])
    ):
        return Job.from_row(known), SubmitOutcome.EXISTING
    row = (
        conn.execute(
            insert(_jobs)
            .values(
                id=uuid.uuid4(),
                collection_id=collection_id,
                episode_id=episode_id,
                source_url=source_url,
                requested_language=requested_language,
                requested_model=requested_model,
            )
            .on_conflict_do_nothing(index_elements=[_jobs.c.collection_id, _jobs.c.episode_id])
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
        existing = conn.execute(sa.select(_jobs).where(*episode).with_for_update()).mappings()
        found = existing.first()
        if found is None:
            # Its last key deleted it between our insert and this read: insert it afresh.
            return create_or_get_job(
                conn,
                collection_id=collection_id,
                episode_id=episode_id,
                source_url=source_url,
                key_fingerprint=key_fingerprint,
                requested_language=requested_language,
                requested_model=requested_model,
                callback_url=callback_url,
            )
        job = Job.from_row(found)
        outcome = SubmitOutcome.EXISTING
        if job.status is JobStatus.FAILED:
            job = requeue(conn, job.id, JobStatus.FAILED, reason="resubmitted", afresh=True)
            outcome = SubmitOutcome.REQUEUED
    grant = insert(_access).values(
        job_id=uuid.UUID(job.id), key_fingerprint=key_fingerprint, callback_url=callback_url
    )
    conn.execute(
        grant.on_conflict_do_update(
            index_elements=[_access.c.job_id, _access.c.key_fingerprint],
            set_={
                "callback_url": sa.func.coalesce(
                    grant.excluded.callback_url, _access.c.callback_url
                )
            },
        )
    )
    return job, outcome


def get_job(conn: Connection, job_id: JobId, *, key_fingerprint: str | None = None) -> Job:
    """Read one job; with a fingerprint, only if that key submitted it.

    Raises:
        JobNotFoundError: no such job, a malformed id, or not visible to the key.
    """
    query = sa.select(_jobs).where(_jobs.c.id == parse_job_id(job_id))
    if key_fingerprint is not None:
        query = query.join(_access, _access.c.job_id == _jobs.c.id).where(
            _access.c.key_fingerprint == key_fingerprint
        )
    row = conn.execute(query).mappings().first()
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    return Job.from_row(row)


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
