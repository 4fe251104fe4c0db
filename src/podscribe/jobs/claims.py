"""Who holds a job: dispatch's claims, and the sweep's reclaims.

A claim locks the row (``FOR UPDATE``), so of many deliveries of one wake-up exactly one
claims; the sweep skips rows others hold (``SKIP LOCKED``) and the next sweep gets them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from podscribe.errors import AttemptsExhaustedError
from podscribe.jobs.model import ACTIVE_STATUSES, Claim, Job, JobId, JobStatus, SweepReport
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.transitions import (
    fail,
    lease_from_now,
    lock_job,
    requeue,
    transition,
)


def claim(
    conn: Connection,
    current: Job,
    *,
    lease_seconds: float,
    max_attempts: int,
    detail: str = "claimed",
) -> Claim:
    """queued -> dispatched, counting an attempt, for a row read under :func:`lock_job`.

    Args:
        current: the job as read (and locked) in this transaction.
        lease_seconds: how long dispatch may take before the sweep reclaims the job.
        max_attempts: a job launched this often already fails instead.
        detail: the history's note (a warm worker's claim names the worker).

    Returns:
        The row as the claim left it: claimed (``dispatched``), or as it was when it is not
        queued (a duplicate or late delivery: nothing to launch), or ``failed`` when its
        attempts were used up.
    """
    if current.status is not JobStatus.QUEUED:
        return Claim(current, claimed=False)
    if current.attempts >= max_attempts:
        failed = fail(
            conn,
            current.id,
            JobStatus.QUEUED,
            code=AttemptsExhaustedError.code,
            message=f"launched {current.attempts} time(s) without finishing; giving up",
        )
        return Claim(failed, claimed=False)
    claimed = transition(
        conn,
        current.id,
        JobStatus.QUEUED,
        JobStatus.DISPATCHED,
        changes={
            "attempts": _jobs.c.attempts + 1,
            "dispatched_at": sa.func.now(),
            "lease_expires_at": lease_from_now(lease_seconds),
        },
        detail=detail,
    )
    return Claim(claimed, claimed=True)


def claim_for_dispatch(
    conn: Connection, job_id: JobId, *, lease_seconds: float, max_attempts: int
) -> Job | None:
    """Lock a job's row and :func:`claim` it.

    Returns:
        The claimed job; None when it was not claimed (see :func:`claim`).

    Raises:
        JobNotFoundError: no such job.
    """
    outcome = claim(
        conn, lock_job(conn, job_id), lease_seconds=lease_seconds, max_attempts=max_attempts
    )
    return outcome.job if outcome.claimed else None


def claim_next_queued(conn: Connection, *, lease_seconds: float, max_attempts: int) -> Job | None:
    """Claim the oldest queued job nobody else is claiming (``FOR UPDATE SKIP LOCKED``)."""
    query = (
        sa.select(_jobs)
        .where(_jobs.c.status == JobStatus.QUEUED.value)
        .order_by(_jobs.c.queued_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    outcome = claim(conn, Job.from_row(row), lease_seconds=lease_seconds, max_attempts=max_attempts)
    return outcome.job if outcome.claimed else None


# One advisory lock id for the deployment's launch slots ("podlnc"), apart from migrations'.
_LAUNCH_SLOTS_LOCK = 0x706F_646C_6E63


def hold_launch_slots(conn: Connection) -> None:
    """Take the deployment's launch-slot lock until the transaction ends.

    Every claim made under this lock sees every earlier claim committed: with
    :func:`count_active` checked and the claim made in the same transaction, no two
    dispatches can take the last slot, whatever the launcher.
    """
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LAUNCH_SLOTS_LOCK)))


def count_active(conn: Connection) -> int:
    """How many jobs are dispatched or running now."""
    active = sa.select(sa.func.count()).where(
        _jobs.c.status.in_([status.value for status in ACTIVE_STATUSES])
    )
    return int(conn.execute(active).scalar_one())


def launched_jobs(conn: Connection, *, launcher: str, limit: int) -> list[Job]:
    """Active jobs that ``launcher`` launched (they have a ref), oldest dispatch first."""
    query = (
        sa.select(_jobs)
        .where(
            _jobs.c.status.in_([status.value for status in ACTIVE_STATUSES]),
            _jobs.c.launcher == launcher,
            _jobs.c.launcher_ref.is_not(None),
        )
        .order_by(_jobs.c.dispatched_at)
        .limit(limit)
    )
    return [Job.from_row(row) for row in conn.execute(query).mappings()]


def sweep(conn: Connection, *, max_attempts: int, requeue_after_seconds: float) -> SweepReport:
    """Reclaim expired leases and find queued jobs whose wake-up was lost.

    A dispatched or running job whose lease expired goes back to ``queued`` while it has
    attempts left, else fails with ``attempts_exhausted``. Rows locked by someone else are
    skipped (``SKIP LOCKED``): the next sweep gets them.
    """
    report = SweepReport()
    expired = conn.execute(
        sa.select(_jobs.c.id, _jobs.c.status, _jobs.c.attempts)
        .where(
            _jobs.c.status.in_([status.value for status in ACTIVE_STATUSES]),
            _jobs.c.lease_expires_at < sa.func.now(),
        )
        .order_by(_jobs.c.lease_expires_at)
        .with_for_update(skip_locked=True)
    ).all()
    for job_uuid, status, attempts in expired:
        job_id = str(job_uuid)
        if attempts >= max_attempts:
            fail(
                conn,
                job_uuid,
                JobStatus(status),
                code=AttemptsExhaustedError.code,
                message=f"the job stopped answering {attempts} time(s); giving up",
            )
            report.failed.append(job_id)
        else:
            requeue(conn, job_uuid, JobStatus(status), reason="lease expired")
            report.requeued.append(job_id)
    stale = (
        sa.select(_jobs.c.id)
        .where(
            _jobs.c.status == JobStatus.QUEUED.value,
            _jobs.c.queued_at
            < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, requeue_after_seconds),
        )
        .order_by(_jobs.c.queued_at)
        .with_for_update(skip_locked=True)
    )
    forgotten = conn.execute(
        sa.update(_jobs)
        .where(_jobs.c.id.in_(stale.scalar_subquery()))
        .values(queued_at=sa.func.now(), updated_at=sa.func.now())
        .returning(_jobs.c.id)
    ).scalars()
    report.rewake.extend(str(job_id) for job_id in forgotten)
    report.rewake.extend(report.requeued)
    return report
