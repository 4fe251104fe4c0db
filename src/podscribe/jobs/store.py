"""The job table's state machine.

    queued ──claim──> dispatched ──start──> running ──succeed──> succeeded
      ^  \\               │  │                 │  │
      │   └──fail──┐      │  └──fail──┐        │  └──fail──> failed ──resubmit──┐
      └──release───┼──────┘           │        │                                │
      └──sweep─────┼──────────────────┼────────┘ (lease expired, attempts left) │
      └────────────┼──────────────────┼─────────────────────────────────────────┘
                   v                  v
                 failed             failed

Every transition is one conditional ``UPDATE ... WHERE id = :id AND status = :from RETURNING``;
when no row comes back, someone else moved the job first and the caller is told so
(:class:`JobStateConflictError`) rather than overwriting their work. Transitions outside
:data:`TRANSITIONS` are refused before touching the database. Each transition appends to
``job_events``, the job's history.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from podscribe.errors import (
    AttemptsExhaustedError,
    IllegalTransitionError,
    JobNotFoundError,
    JobStateConflictError,
    public_message,
)

log = logging.getLogger(__name__)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.DISPATCHED, JobStatus.FAILED}),
    JobStatus.DISPATCHED: frozenset({JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED}),
    # A succeeded job whose transcript was removed from storage fails as transcript_gone,
    # so that submitting the episode again transcribes it anew.
    JobStatus.SUCCEEDED: frozenset({JobStatus.FAILED}),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),
}

ACTIVE_STATUSES = frozenset({JobStatus.DISPATCHED, JobStatus.RUNNING})


class SubmitOutcome(enum.StrEnum):
    """What :func:`create_or_get_job` did."""

    CREATED = "created"
    EXISTING = "existing"
    REQUEUED = "requeued"


@dataclass(frozen=True)
class Job:
    """A row of ``jobs``."""

    id: str
    collection_id: int
    episode_id: int
    source_url: str
    status: JobStatus
    attempts: int
    progress: float
    created_at: datetime
    queued_at: datetime
    updated_at: datetime
    lease_expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    transcript_objects: dict[str, str] | None = None
    checkpoint_object: str | None = None
    requested_language: str | None = None
    requested_model: str | None = None
    episode: dict[str, Any] | None = None
    duration_seconds: float | None = None
    language: str | None = None
    model: str | None = None
    device: str | None = None
    compute_type: str | None = None
    launcher: str | None = None
    launcher_ref: str | None = None
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Job:
        values = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        values["id"] = str(values["id"])
        values["status"] = JobStatus(values["status"])
        if values.get("error_code"):
            # Rows failed before messages were public-only may hold raw detail: what a
            # caller reads is always derived from the code.
            values["error_message"] = public_message(values["error_code"])
        return cls(**values)

    @property
    def is_terminal(self) -> bool:
        return self.status is JobStatus.SUCCEEDED


@dataclass(frozen=True)
class JobEvent:
    """One line of a job's history."""

    seq: int
    job_id: str
    from_status: JobStatus | None
    to_status: JobStatus
    attempts: int
    detail: str | None
    at: datetime


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did.

    Attributes:
        requeued: jobs whose lease expired, returned to the queue (their launch to be redone).
        failed: jobs whose lease expired with no attempts left.
        rewake: queued jobs nobody picked up (a lost message): publish them again.
    """

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rewake: list[str] = field(default_factory=list)


_JOB_COLUMNS = "jobs.*"


def _parse_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        raise JobNotFoundError(f"no job {job_id!r}") from None


def _record_event(
    conn: Connection, job: Job, from_status: JobStatus | None, detail: str | None
) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO job_events (job_id, from_status, to_status, attempts, detail)"
            " VALUES (:id, :from_status, :to_status, :attempts, :detail)"
        ),
        {
            "id": uuid.UUID(job.id),
            "from_status": from_status.value if from_status else None,
            "to_status": job.status.value,
            "attempts": job.attempts,
            "detail": detail,
        },
    )


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
    # The common case, a repeat request, is read-only: no lock, no write, no commit flush.
    known = (
        conn.execute(
            sa.text(
                "SELECT jobs.*, job_access.key_fingerprint AS access_key,"
                " job_access.callback_url AS access_callback FROM jobs"
                " LEFT JOIN job_access ON job_access.job_id = jobs.id"
                " AND job_access.key_fingerprint = :fingerprint"
                " WHERE collection_id = :collection_id AND episode_id = :episode_id"
            ),
            {
                "fingerprint": key_fingerprint,
                "collection_id": collection_id,
                "episode_id": episode_id,
            },
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
    new_id = uuid.uuid4()
    row = (
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, collection_id, episode_id, source_url, requested_language,"
                " requested_model) VALUES (:id, :collection_id, :episode_id, :source_url,"
                " :requested_language, :requested_model)"
                " ON CONFLICT (collection_id, episode_id) DO NOTHING RETURNING *"
            ),
            {
                "id": new_id,
                "collection_id": collection_id,
                "episode_id": episode_id,
                "source_url": source_url,
                "requested_language": requested_language,
                "requested_model": requested_model,
            },
        )
        .mappings()
        .first()
    )
    if row is not None:
        job = Job.from_row(row)
        _record_event(conn, job, None, "submitted")
        outcome = SubmitOutcome.CREATED
    else:
        existing = (
            conn.execute(
                sa.text(
                    "SELECT * FROM jobs WHERE collection_id = :collection_id"
                    " AND episode_id = :episode_id FOR UPDATE"
                ),
                {"collection_id": collection_id, "episode_id": episode_id},
            )
            .mappings()
            .one()
        )
        job = Job.from_row(existing)
        outcome = SubmitOutcome.EXISTING
        if job.status is JobStatus.FAILED:
            job = transition(
                conn,
                job.id,
                JobStatus.FAILED,
                JobStatus.QUEUED,
                changes={
                    "attempts": 0,
                    "progress": 0.0,
                    "error_code": None,
                    "error_message": None,
                    "queued_at": sa.func.now(),
                    "finished_at": None,
                    "lease_expires_at": None,
                },
                detail="resubmitted",
            )
            outcome = SubmitOutcome.REQUEUED
    conn.execute(
        sa.text(
            "INSERT INTO job_access (job_id, key_fingerprint, callback_url)"
            " VALUES (:job_id, :fingerprint, :callback_url)"
            " ON CONFLICT (job_id, key_fingerprint) DO UPDATE"
            " SET callback_url = COALESCE(EXCLUDED.callback_url, job_access.callback_url)"
        ),
        {"job_id": uuid.UUID(job.id), "fingerprint": key_fingerprint, "callback_url": callback_url},
    )
    return job, outcome


def get_job(conn: Connection, job_id: str, *, key_fingerprint: str | None = None) -> Job:
    """Read one job; with a fingerprint, only if that key submitted it.

    Raises:
        JobNotFoundError: no such job, a malformed id, or not visible to the key.
    """
    parsed = _parse_id(job_id)
    if key_fingerprint is None:
        query = sa.text("SELECT * FROM jobs WHERE id = :id")
        params: dict[str, Any] = {"id": parsed}
    else:
        query = sa.text(
            "SELECT jobs.* FROM jobs JOIN job_access ON job_access.job_id = jobs.id"
            " WHERE jobs.id = :id AND job_access.key_fingerprint = :fingerprint"
        )
        params = {"id": parsed, "fingerprint": key_fingerprint}
    row = conn.execute(query, params).mappings().first()
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    return Job.from_row(row)


def job_history(conn: Connection, job_id: str) -> list[JobEvent]:
    """The job's transitions, oldest first."""
    rows = conn.execute(
        sa.text("SELECT * FROM job_events WHERE job_id = :id ORDER BY seq"),
        {"id": _parse_id(job_id)},
    ).mappings()
    return [
        JobEvent(
            seq=row["seq"],
            job_id=str(row["job_id"]),
            from_status=JobStatus(row["from_status"]) if row["from_status"] else None,
            to_status=JobStatus(row["to_status"]),
            attempts=row["attempts"],
            detail=row["detail"],
            at=row["at"],
        )
        for row in rows
    ]


def callback_urls(conn: Connection, job_id: str) -> list[str]:
    """Webhook URLs registered by the keys that asked for this job."""
    rows = conn.execute(
        sa.text(
            "SELECT callback_url FROM job_access WHERE job_id = :id"
            " AND callback_url IS NOT NULL ORDER BY created_at"
        ),
        {"id": _parse_id(job_id)},
    ).scalars()
    return list(rows)


def transition(
    conn: Connection,
    job_id: str,
    from_status: JobStatus,
    to_status: JobStatus,
    *,
    changes: Mapping[str, Any] | None = None,
    detail: str | None = None,
) -> Job:
    """Move a job from one status to another, only if it is still in ``from_status``.

    Args:
        changes: other columns to set in the same UPDATE (values or SQL expressions).
        detail: a note for the history.

    Raises:
        IllegalTransitionError: the state machine has no such edge.
        JobNotFoundError: no such job.
        JobStateConflictError: the job was not in ``from_status`` any more.
    """
    if to_status not in TRANSITIONS[from_status]:
        raise IllegalTransitionError(f"a {from_status} job cannot become {to_status}")
    if to_status in ACTIVE_STATUSES and "lease_expires_at" not in (changes or {}):
        # Without a lease the sweep could never reclaim the job: it would be stuck forever.
        raise IllegalTransitionError(f"a job becomes {to_status} only with a lease")
    row = _conditional_update(
        conn, job_id, from_status, {"status": to_status.value, **(changes or {})}
    )
    job = Job.from_row(row)
    _record_event(conn, job, from_status, detail)
    return job


def _conditional_update(
    conn: Connection, job_id: str, expected: JobStatus, values: Mapping[str, Any]
) -> Mapping[Any, Any]:
    jobs = sa.table("jobs", *(sa.column(name) for name in (*values, "id", "status", "updated_at")))
    statement = (
        sa.update(jobs)
        .where(jobs.c.id == _parse_id(job_id), jobs.c.status == expected.value)
        .values({**values, "updated_at": sa.func.now()})
        .returning(sa.text(_JOB_COLUMNS))
    )
    row = conn.execute(statement).mappings().first()
    if row is None:
        current = conn.execute(
            sa.text("SELECT status FROM jobs WHERE id = :id"), {"id": _parse_id(job_id)}
        ).scalar()
        if current is None:
            raise JobNotFoundError(f"no job {job_id}")
        raise JobStateConflictError(f"job {job_id} is {current}, not {expected}")
    return row


def _interval(seconds: float) -> Any:
    return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def claim_for_dispatch(
    conn: Connection, job_id: str, *, lease_seconds: float, max_attempts: int
) -> Job | None:
    """queued -> dispatched, counting an attempt.

    Returns:
        The claimed job; None when the job is not queued (a duplicate or late delivery:
        nothing to launch) or had used up its attempts (then it is failed here).
    """
    current = (
        conn.execute(
            sa.text("SELECT status, attempts FROM jobs WHERE id = :id FOR UPDATE"),
            {"id": _parse_id(job_id)},
        )
        .mappings()
        .first()
    )
    if current is None:
        raise JobNotFoundError(f"no job {job_id}")
    if current["status"] != JobStatus.QUEUED:
        return None
    if current["attempts"] >= max_attempts:
        fail(
            conn,
            job_id,
            JobStatus.QUEUED,
            code=AttemptsExhaustedError.code,
            message=f"launched {current['attempts']} time(s) without finishing; giving up",
        )
        return None
    return transition(
        conn,
        job_id,
        JobStatus.QUEUED,
        JobStatus.DISPATCHED,
        changes={
            "attempts": sa.text("attempts + 1"),
            "dispatched_at": sa.func.now(),
            "lease_expires_at": _interval(lease_seconds),
        },
        detail="claimed",
    )


def claim_next_queued(conn: Connection, *, lease_seconds: float, max_attempts: int) -> Job | None:
    """Claim the oldest queued job nobody else is claiming (``FOR UPDATE SKIP LOCKED``)."""
    job_id = conn.execute(
        sa.text(
            "SELECT id FROM jobs WHERE status = 'queued' ORDER BY queued_at"
            " LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
    ).scalar()
    if job_id is None:
        return None
    return claim_for_dispatch(
        conn, str(job_id), lease_seconds=lease_seconds, max_attempts=max_attempts
    )


def record_launch(conn: Connection, job_id: str, *, launcher: str, launcher_ref: str) -> Job:
    """Remember where a dispatched job was launched (e.g. the Vertex resource name)."""
    row = (
        conn.execute(
            sa.text(
                "UPDATE jobs SET launcher = :launcher, launcher_ref = :ref, updated_at = now()"
                " WHERE id = :id AND status IN ('dispatched', 'running') RETURNING *"
            ),
            {"id": _parse_id(job_id), "launcher": launcher, "ref": launcher_ref},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise JobStateConflictError(f"job {job_id} is no longer dispatched")
    return Job.from_row(row)


def release_to_queue(conn: Connection, job_id: str, *, reason: str) -> Job:
    """dispatched -> queued after a launch that did not happen."""
    return transition(
        conn,
        job_id,
        JobStatus.DISPATCHED,
        JobStatus.QUEUED,
        changes={"queued_at": sa.func.now(), "lease_expires_at": None},
        detail=reason,
    )


def start_running(
    conn: Connection,
    job_id: str,
    *,
    lease_seconds: float,
    model: str | None = None,
    device: str | None = None,
    compute_type: str | None = None,
) -> Job:
    """dispatched -> running, taking the lease the heartbeat renews."""
    return transition(
        conn,
        job_id,
        JobStatus.DISPATCHED,
        JobStatus.RUNNING,
        changes={
            "started_at": sa.func.now(),
            "heartbeat_at": sa.func.now(),
            "lease_expires_at": _interval(lease_seconds),
            "model": model,
            "device": device,
            "compute_type": compute_type,
        },
        detail="started",
    )


def heartbeat(
    conn: Connection,
    job_id: str,
    *,
    lease_seconds: float,
    progress: float | None = None,
    changes: Mapping[str, Any] | None = None,
) -> Job:
    """Renew a running job's lease, and record progress (never backwards).

    Raises:
        JobStateConflictError: the job is not running any more (the sweep took it back):
            the worker must stop.
    """
    values: dict[str, Any] = {
        "heartbeat_at": sa.func.now(),
        "lease_expires_at": _interval(lease_seconds),
        **(changes or {}),
    }
    if progress is not None:
        bounded = min(max(float(progress), 0.0), 1.0)
        values["progress"] = sa.func.greatest(sa.column("progress"), bounded)
    return Job.from_row(_conditional_update(conn, job_id, JobStatus.RUNNING, values))


def succeed(
    conn: Connection,
    job_id: str,
    *,
    transcript_objects: Mapping[str, str],
    changes: Mapping[str, Any] | None = None,
) -> Job:
    """running -> succeeded with the transcript's object names."""
    return transition(
        conn,
        job_id,
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
        changes={
            "transcript_objects": sa.cast(sa.literal(dict(transcript_objects), sa.JSON), sa.JSON),
            "progress": 1.0,
            "finished_at": sa.func.now(),
            "lease_expires_at": None,
            **(changes or {}),
        },
        detail="succeeded",
    )


def fail(conn: Connection, job_id: str, from_status: JobStatus, *, code: str, message: str) -> Job:
    """Fail a job with a stable code; the row keeps only that code's public message.

    Every failure is recorded here, so this is where internal detail stops: ``message`` (a
    guard refusal naming an address, a launcher's log line) is logged, and the row, the API
    and webhooks carry :func:`~podscribe.errors.public_message` of ``code`` instead.

    Args:
        code: the stable error code.
        message: what happened, for the logs only.
    """
    job = transition(
        conn,
        job_id,
        from_status,
        JobStatus.FAILED,
        changes={
            "error_code": code,
            "error_message": public_message(code),
            "finished_at": sa.func.now(),
            "lease_expires_at": None,
        },
        detail=code,
    )
    log.warning("job failed", extra={"job_id": job_id, "code": code, "detail": message[:2000]})
    return job


def update_job_fields(conn: Connection, job_id: str, values: Mapping[str, Any]) -> Job:
    """Set descriptive columns (episode metadata, duration) without changing the status."""
    allowed = {"episode", "duration_seconds", "language", "checkpoint_object", "launcher_ref"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not descriptive columns: {sorted(unknown)}")
    prepared = {
        name: sa.cast(sa.literal(value, sa.JSON), sa.JSON) if name == "episode" else value
        for name, value in values.items()
    }
    jobs = sa.table("jobs", *(sa.column(name) for name in (*prepared, "id", "updated_at")))
    row = (
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == _parse_id(job_id))
            .values({**prepared, "updated_at": sa.func.now()})
            .returning(sa.text(_JOB_COLUMNS))
        )
        .mappings()
        .first()
    )
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    return Job.from_row(row)


def sweep(conn: Connection, *, max_attempts: int, requeue_after_seconds: float) -> SweepReport:
    """Reclaim expired leases and find queued jobs whose wake-up was lost.

    A dispatched or running job whose lease expired goes back to ``queued`` while it has
    attempts left, else fails with ``attempts_exhausted``. Rows locked by someone else are
    skipped (``SKIP LOCKED``): the next sweep gets them.
    """
    report = SweepReport()
    expired = (
        conn.execute(
            sa.text(
                "SELECT id, status, attempts FROM jobs WHERE status IN ('dispatched', 'running')"
                " AND lease_expires_at < now() ORDER BY lease_expires_at FOR UPDATE SKIP LOCKED"
            )
        )
        .mappings()
        .all()
    )
    for row in expired:
        job_id, status = str(row["id"]), JobStatus(row["status"])
        if row["attempts"] >= max_attempts:
            fail(
                conn,
                job_id,
                status,
                code=AttemptsExhaustedError.code,
                message=f"the job stopped answering {row['attempts']} time(s); giving up",
            )
            report.failed.append(job_id)
        else:
            transition(
                conn,
                job_id,
                status,
                JobStatus.QUEUED,
                changes={"queued_at": sa.func.now(), "lease_expires_at": None},
                detail="lease expired",
            )
            report.requeued.append(job_id)
    forgotten = conn.execute(
        sa.text(
            "UPDATE jobs SET queued_at = now(), updated_at = now() WHERE id IN ("
            " SELECT id FROM jobs WHERE status = 'queued'"
            " AND queued_at < now() - make_interval(secs => :after)"
            " ORDER BY queued_at FOR UPDATE SKIP LOCKED) RETURNING id"
        ),
        {"after": requeue_after_seconds},
    ).scalars()
    report.rewake.extend(str(job_id) for job_id in forgotten)
    report.rewake.extend(report.requeued)
    return report
