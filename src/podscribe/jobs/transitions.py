"""The transitions: one conditional update per move of the state machine.

Every transition is one conditional ``UPDATE ... WHERE id = :id AND status = :from RETURNING``;
when no row comes back, someone else moved the job first and the caller is told so
(:class:`JobStateConflictError`) rather than overwriting their work. Transitions outside
:data:`~podscribe.jobs.model.TRANSITIONS` are refused before touching the database. Each
transition appends to ``job_events``, the job's history.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from podscribe.errors import (
    IllegalTransitionError,
    JobNotFoundError,
    JobStateConflictError,
    public_message,
)
from podscribe.jobs.model import (
    ACTIVE_STATUSES,
    TRANSITIONS,
    Job,
    JobId,
    JobStatus,
    parse_job_id,
)
from podscribe.jobs.outbox import enqueue_deliveries
from podscribe.jobs.tables import job_events_table as _events
from podscribe.jobs.tables import jobs_table as _jobs

log = logging.getLogger(__name__)

_DESCRIPTIVE = frozenset(
    {"episode", "duration_seconds", "language", "checkpoint_object", "launcher_ref"}
)


def lease_from_now(seconds: float) -> Any:
    """``now() + seconds``, computed by the database (one clock for every lease)."""
    return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def record_event(
    conn: Connection, job: Job, from_status: JobStatus | None, detail: str | None
) -> None:
    """Append the move that left ``job`` as it is to its history."""
    conn.execute(
        sa.insert(_events).values(
            job_id=uuid.UUID(job.id),
            from_status=from_status.value if from_status else None,
            to_status=job.status.value,
            attempts=job.attempts,
            detail=detail,
        )
    )


def lock_job(conn: Connection, job_id: JobId) -> Job:
    """Read one job and lock its row until the transaction ends (``FOR UPDATE``).

    Raises:
        JobNotFoundError: no such job, or a malformed id.
    """
    query = sa.select(_jobs).where(_jobs.c.id == parse_job_id(job_id)).with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    return Job.from_row(row)


def transition(
    conn: Connection,
    job_id: JobId,
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
    if to_status is JobStatus.SUCCEEDED and not (changes or {}).get("transcript_objects"):
        # queued -> succeeded is legal only with the publisher's transcript stored.
        raise IllegalTransitionError("a job succeeds only with its transcript stored")
    values = {"status": to_status.value, **(changes or {})}
    job = _conditional_update(conn, job_id, from_status, values)
    record_event(conn, job, from_status, detail)
    return job


def _conditional_update(
    conn: Connection, job_id: JobId, expected: JobStatus, values: Mapping[str, Any]
) -> Job:
    parsed = parse_job_id(job_id)
    statement = (
        sa.update(_jobs)
        .where(_jobs.c.id == parsed, _jobs.c.status == expected.value)
        .values({**values, "updated_at": sa.func.now()})
        .returning(*_jobs.c)
    )
    row = conn.execute(statement).mappings().first()
    if row is None:
        current = conn.execute(sa.select(_jobs.c.status).where(_jobs.c.id == parsed)).scalar()
        if current is None:
            raise JobNotFoundError(f"no job {job_id}")
        raise JobStateConflictError(f"job {job_id} is {current}, not {expected}")
    return Job.from_row(row)


def requeue(
    conn: Connection, job_id: JobId, from_status: JobStatus, *, reason: str, afresh: bool = False
) -> Job:
    """Back to ``queued``: the one way a job returns to the queue.

    A launch that did not happen or found no capacity (from ``dispatched``), an expired
    lease or a transient fault that outlasted the retries (from ``dispatched`` or
    ``running``), and a failed job submitted again (from ``failed``, ``afresh``).

    Args:
        from_status: where the job must still be.
        reason: the history's note (a code or a few words; detail belongs in the logs).
        afresh: start over: attempts, progress and the error are cleared.

    Raises:
        IllegalTransitionError: ``from_status`` has no way back to the queue.
        JobNotFoundError: no such job.
        JobStateConflictError: the job was not in ``from_status`` any more.
    """
    changes: dict[str, Any] = {"queued_at": sa.func.now(), "lease_expires_at": None}
    if afresh:
        changes |= {
            "attempts": 0,
            "progress": 0.0,
            "error_code": None,
            "error_message": None,
            "finished_at": None,
        }
    return transition(conn, job_id, from_status, JobStatus.QUEUED, changes=changes, detail=reason)


def record_launch(conn: Connection, job_id: JobId, *, launcher: str, launcher_ref: str) -> Job:
    """Remember where a dispatched job was launched (e.g. the Vertex resource name).

    Raises:
        JobStateConflictError: the job is no longer dispatched or running.
    """
    statement = (
        sa.update(_jobs)
        .where(
            _jobs.c.id == parse_job_id(job_id),
            _jobs.c.status.in_([status.value for status in ACTIVE_STATUSES]),
        )
        .values(launcher=launcher, launcher_ref=launcher_ref, updated_at=sa.func.now())
        .returning(*_jobs.c)
    )
    row = conn.execute(statement).mappings().first()
    if row is None:
        raise JobStateConflictError(f"job {job_id} is no longer dispatched")
    return Job.from_row(row)


def start_running(
    conn: Connection,
    job_id: JobId,
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
            "lease_expires_at": lease_from_now(lease_seconds),
            "model": model,
            "device": device,
            "compute_type": compute_type,
        },
        detail="started",
    )


def heartbeat(
    conn: Connection,
    job_id: JobId,
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
        "lease_expires_at": lease_from_now(lease_seconds),
        **(changes or {}),
    }
    if progress is not None:
        bounded = min(max(float(progress), 0.0), 1.0)
        values["progress"] = sa.func.greatest(_jobs.c.progress, bounded)
    return _conditional_update(conn, job_id, JobStatus.RUNNING, values)


def succeed(
    conn: Connection,
    job_id: JobId,
    *,
    transcript_objects: Mapping[str, str],
    changes: Mapping[str, Any] | None = None,
) -> Job:
    """running -> succeeded with the transcript's object names (and its webhooks enqueued)."""
    return _succeed(
        conn, job_id, JobStatus.RUNNING, transcript_objects, changes=changes, detail="succeeded"
    )


def succeed_from_publisher(
    conn: Connection,
    job_id: JobId,
    *,
    transcript_objects: Mapping[str, str],
    changes: Mapping[str, Any] | None = None,
) -> Job:
    """queued -> succeeded with the publisher's transcript, stored: no launch at all.

    Its webhooks are enqueued in the same transaction, as for :func:`succeed`.

    Args:
        transcript_objects: the stored formats' object names.
        changes: the episode, language, length, ``transcript_source`` and ``provenance``.
    """
    detail = "succeeded from the publisher's transcript"
    return _succeed(
        conn, job_id, JobStatus.QUEUED, transcript_objects, changes=changes, detail=detail
    )


def _succeed(
    conn: Connection,
    job_id: JobId,
    from_status: JobStatus,
    transcript_objects: Mapping[str, str],
    *,
    changes: Mapping[str, Any] | None,
    detail: str,
) -> Job:
    job = transition(
        conn,
        job_id,
        from_status,
        JobStatus.SUCCEEDED,
        changes={
            "transcript_objects": dict(transcript_objects),
            "progress": 1.0,
            "finished_at": sa.func.now(),
            "lease_expires_at": None,
            **(changes or {}),
        },
        detail=detail,
    )
    # In this transaction: the event commits with the job's end, or neither does.
    enqueue_deliveries(conn, job)
    return job


def requeue_to_transcribe(conn: Connection, job_id: JobId) -> Job:
    """succeeded from the publisher's transcript -> queued, to be transcribed here.

    What a ``"force": true`` submission does: the job starts afresh with ``skip_publisher``
    set, and its publisher transcript's record goes (the transcription replaces it).

    Raises:
        JobStateConflictError: the job was not succeeded any more.
    """
    changes = {
        "queued_at": sa.func.now(),
        "lease_expires_at": None,
        "attempts": 0,
        "progress": 0.0,
        "finished_at": None,
        "skip_publisher": True,
        "transcript_source": None,
        "provenance": None,
        "transcript_objects": None,
    }
    return transition(
        conn, job_id, JobStatus.SUCCEEDED, JobStatus.QUEUED, changes=changes, detail="forced"
    )


def skip_publisher_transcript(conn: Connection, job_id: JobId) -> Job:
    """Mark a queued job to be transcribed even if its feed carries a transcript.

    Raises:
        JobStateConflictError: the job is not queued any more.
    """
    return _conditional_update(conn, job_id, JobStatus.QUEUED, {"skip_publisher": True})


def fail(
    conn: Connection, job_id: JobId, from_status: JobStatus, *, code: str, message: str
) -> Job:
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
    if from_status is not JobStatus.SUCCEEDED:
        # The job's end, with its webhooks in the same transaction. A succeeded job whose
        # transcript went missing had its end (and webhook) already.
        enqueue_deliveries(conn, job)
    log.warning("job failed", extra={"job_id": job.id, "code": code, "detail": message[:2000]})
    return job


def update_job_fields(conn: Connection, job_id: JobId, values: Mapping[str, Any]) -> Job:
    """Set descriptive columns (episode metadata, duration) without changing the status.

    Raises:
        ValueError: a column that is not descriptive.
        JobNotFoundError: no such job.
    """
    unknown = set(values) - _DESCRIPTIVE
    if unknown:
        raise ValueError(f"not descriptive columns: {sorted(unknown)}")
    statement = (
        sa.update(_jobs)
        .where(_jobs.c.id == parse_job_id(job_id))
        .values({**values, "updated_at": sa.func.now()})
        .returning(*_jobs.c)
    )
    row = conn.execute(statement).mappings().first()
    if row is None:
        raise JobNotFoundError(f"no job {job_id}")
    return Job.from_row(row)
