"""A key's own jobs: listing them page by page, and giving one up.

Pages are a keyset, not an offset: newest first by the caller's access time
(``job_access.created_at``), then job id, each page starting strictly after the last row of
the one before. Jobs that arrive while a caller walks the list are newer than every position
already handed out, so they never shift a later page (no gaps, no repeats) and appear first on
a fresh walk. The index of migration ``0003`` serves exactly this order.

A job is one row whoever asked for it; a key giving it up removes only that key's
``job_access`` row. When no key has access any more the row goes too (its events cascade)
and the caller is told so, because the transcript objects in storage must then go as well.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from podscribe.errors import JobActiveError, JobNotFoundError
from podscribe.jobs.model import ACTIVE_STATUSES, Job, JobId, JobStatus, parse_job_id
from podscribe.jobs.submissions import seen_by_key
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import jobs_table as _jobs


@dataclass(frozen=True)
class ListPosition:
    """Where a page of :func:`list_jobs` ended: the last row's access time and job id.

    Attributes:
        created_at: when the key was granted access to that job.
        job_id: that job's id (breaks ties between grants of the same instant).
    """

    created_at: datetime
    job_id: uuid.UUID


@dataclass(frozen=True)
class JobPage:
    """One page of a key's jobs.

    Attributes:
        jobs: the jobs, newest grant first.
        next_position: where the next page starts, or None when this was the last one.
    """

    jobs: list[Job]
    next_position: ListPosition | None


@dataclass(frozen=True)
class AccessRemoval:
    """What :func:`remove_access` did.

    Attributes:
        job: the job as it was when the access went.
        job_deleted: no key has access any more, so the row was deleted: its transcript
            objects (``job.transcript_objects``, ``job.checkpoint_object``) must go too.
    """

    job: Job
    job_deleted: bool


def list_jobs(
    conn: Connection,
    *,
    key_fingerprint: str,
    status: JobStatus | None = None,
    limit: int,
    after: ListPosition | None = None,
) -> JobPage:
    """One page of the jobs a key may see, newest grant first.

    Args:
        conn: the connection (one statement; no lock is taken).
        key_fingerprint: whose jobs.
        status: only jobs in this status, when given.
        limit: at most this many jobs (at least 1).
        after: the previous page's :attr:`JobPage.next_position`, or None for the first page.

    Returns:
        The page (each job with the key's own ``source_url``), and where the next one starts
        (None when no job follows).

    Raises:
        ValueError: ``limit`` is below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    granted = _access.c.created_at.label("access_created_at")
    own_link = _access.c.source_url.label("access_source_url")
    own_speakers = _access.c.speakers.label("access_speakers")
    own_names = _access.c.speaker_names.label("access_speaker_names")
    query = (
        sa.select(_jobs, granted, own_link, own_speakers, own_names)
        .select_from(_jobs.join(_access, _access.c.job_id == _jobs.c.id))
        .where(_access.c.key_fingerprint == key_fingerprint)
        .order_by(_access.c.created_at.desc(), _access.c.job_id.desc())
        # One row more than asked for says whether another page follows.
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(_jobs.c.status == status.value)
    if after is not None:
        query = query.where(
            sa.tuple_(_access.c.created_at, _access.c.job_id)
            < sa.tuple_(
                sa.literal(after.created_at, type_=_access.c.created_at.type),
                sa.literal(after.job_id, type_=_access.c.job_id.type),
            )
        )
    rows = list(conn.execute(query).mappings())
    page, more = rows[:limit], len(rows) > limit
    next_position = (
        ListPosition(page[-1]["access_created_at"], page[-1]["id"]) if more and page else None
    )
    jobs = [seen_by_key(Job.from_row(row), row) for row in page]
    return JobPage(jobs, next_position)


def remove_access(conn: Connection, job_id: JobId, key_fingerprint: str) -> AccessRemoval:
    """Take a key's access to a job away; delete the job when it was the last key's.

    The job row is locked first, so a concurrent claim, transition or grant to another key
    waits and then sees the outcome. The last key may not delete a job that is dispatched
    or running: its worker would go on writing transcripts no row points to. The access
    stays, and the caller may ask again once the job has ended.

    Args:
        conn: the connection; the caller's transaction commits the removal.
        job_id: the job.
        key_fingerprint: whose access goes.

    Returns:
        The job, and whether its row was deleted.

    Raises:
        JobNotFoundError: no such job, a malformed id, or not visible to the key.
        JobActiveError: the key is the job's last and the job is dispatched or running.
    """
    row_id = parse_job_id(job_id)
    row = conn.execute(sa.select(_jobs).where(_jobs.c.id == row_id).with_for_update())
    found = row.mappings().first()
    holders = set(
        conn.execute(
            sa.select(_access.c.key_fingerprint).where(_access.c.job_id == row_id)
        ).scalars()
    )
    if found is None or key_fingerprint not in holders:
        raise JobNotFoundError(f"no job {job_id}")
    job = Job.from_row(found)
    last = holders == {key_fingerprint}
    if last and job.status in ACTIVE_STATUSES:
        raise JobActiveError(
            f"job {job.id} is {job.status.value}; it can be deleted once it has ended"
        )
    if last:
        # job_access and job_events rows cascade.
        conn.execute(sa.delete(_jobs).where(_jobs.c.id == row_id))
    else:
        conn.execute(
            sa.delete(_access).where(
                _access.c.job_id == row_id, _access.c.key_fingerprint == key_fingerprint
            )
        )
    return AccessRemoval(job, job_deleted=last)
