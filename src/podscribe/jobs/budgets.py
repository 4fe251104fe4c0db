"""A key's GPU budget: how many of its jobs may be active, and how many it may start per hour.

Checked in the transaction of the submission that would start a job (create it, or queue a
failed one again), after the row is written: over a limit, the error rolls that write back.
A transaction-level advisory lock per key makes the count and the charge one step, so ten
parallel submissions of one key cannot all see the last free slot. Joining a job that
another key started costs nothing and is never refused.

Started jobs are remembered in ``key_launch_requests`` (not cascaded from ``jobs``: deleting a
job does not refund its start); the sweep purges rows past the hour they count for.
"""

from __future__ import annotations

import math
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from podscribe.errors import LaunchBudgetExhaustedError, TooManyActiveJobsError
from podscribe.jobs.model import JobId, JobStatus, parse_job_id
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.tables import key_launch_requests_table as _launches
from podscribe.settings import BudgetSettings

__all__ = ["BUDGET_WINDOW_SECONDS", "charge_job_start", "purge_launch_requests"]

BUDGET_WINDOW_SECONDS = 3600
# A busy key learns nothing sharper about when one of its jobs ends: poll, or use webhooks.
_ACTIVE_RETRY_AFTER_SECONDS = 60
_PENDING = (JobStatus.QUEUED, JobStatus.DISPATCHED, JobStatus.RUNNING)


def _window() -> sa.ColumnElement[datetime]:
    return sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, BUDGET_WINDOW_SECONDS)


def charge_job_start(
    conn: Connection, *, key_fingerprint: str, job_id: JobId, settings: BudgetSettings
) -> None:
    """Count a job the key's submission started against its limits, or refuse it.

    Args:
        conn: the submission's transaction (already holding the job's row and access).
        key_fingerprint: whose budget.
        job_id: the job just created or queued again.
        settings: ``key_max_active_jobs`` and ``key_launches_per_hour``.

    Raises:
        TooManyActiveJobsError: the key would have more active jobs than allowed.
        LaunchBudgetExhaustedError: the key started its hour's worth of jobs already.
    """
    conn.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key_fingerprint, 0)))
    )
    active = conn.execute(
        sa.select(sa.func.count())
        .select_from(_access.join(_jobs, _jobs.c.id == _access.c.job_id))
        .where(
            _access.c.key_fingerprint == key_fingerprint,
            _jobs.c.status.in_([status.value for status in _PENDING]),
        )
    ).scalar_one()
    if active > settings.key_max_active_jobs:
        raise TooManyActiveJobsError(
            f"this key has {active - 1} jobs queued or running; the limit is "
            f"{settings.key_max_active_jobs} (PODSCRIBE_KEY_MAX_ACTIVE_JOBS)",
            _ACTIVE_RETRY_AFTER_SECONDS,
        )
    started, wait = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.extract(
                "epoch",
                sa.func.min(_launches.c.requested_at)
                + sa.func.make_interval(0, 0, 0, 0, 0, 0, BUDGET_WINDOW_SECONDS)
                - sa.func.now(),
            ),
        ).where(
            _launches.c.key_fingerprint == key_fingerprint, _launches.c.requested_at > _window()
        )
    ).one()
    if started >= settings.key_launches_per_hour:
        retry_after = max(1, math.ceil(float(wait))) if wait is not None else BUDGET_WINDOW_SECONDS
        raise LaunchBudgetExhaustedError(
            f"this key started {started} jobs in the last hour; the limit is "
            f"{settings.key_launches_per_hour} (PODSCRIBE_KEY_LAUNCHES_PER_HOUR)",
            retry_after,
        )
    conn.execute(
        sa.insert(_launches).values(key_fingerprint=key_fingerprint, job_id=parse_job_id(job_id))
    )


def purge_launch_requests(conn: Connection) -> int:
    """Forget started jobs older than the budget's hour; returns how many rows went."""
    result = conn.execute(sa.delete(_launches).where(_launches.c.requested_at <= _window()))
    return int(result.rowcount or 0)
