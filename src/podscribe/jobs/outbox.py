"""The webhook outbox: deliveries as rows, so an event outlives the process that ended the job.

A job's end and its deliveries commit together: :func:`enqueue_deliveries` runs inside
:func:`~podscribe.jobs.transitions.succeed` and :func:`~podscribe.jobs.transitions.fail`,
writing one ``pending`` row per key that registered a ``callback_url``. Senders
(:mod:`podscribe.jobs.webhooks`) then :func:`claim_due` rows, send them, and record the answer
(:func:`mark_delivered`, :func:`mark_failed`). A row's ``id`` is the Standard Webhooks
``webhook-id``, the same on every retry, so receivers can drop duplicates.

- *At most one success*: claiming pushes ``next_attempt_at`` a lease ahead in its own
  transaction (``FOR UPDATE SKIP LOCKED``), so concurrent sweeps never send the same row at
  once; only a ``pending`` row can become ``delivered``, and a delivered row is never claimed.
- *Retries*: a failed round waits ``initial * 2^(round-1)`` seconds, capped, and a row still
  failing once its horizon has passed (``created_at`` + ``PODSCRIBE_WEBHOOK_RETRY_HOURS``) is
  ``abandoned``; so is one the SSRF guard refuses, at once.
- *One event per key and type*: ``(job_id, key_fingerprint, event_type)`` is unique. A job
  that ends that way again (failed, submitted again, failed again) is a new event: the row
  starts over with a new id.

This module imports no transitions (they import it).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from podscribe.jobs.model import Job, JobId, JobStatus, parse_job_id
from podscribe.jobs.tables import job_access_table as _access
from podscribe.jobs.tables import webhook_deliveries_table as _deliveries

__all__ = [
    "Backoff",
    "DeliveryStatus",
    "OutboxDelivery",
    "WebhookState",
    "claim_due",
    "enqueue_deliveries",
    "event_type",
    "mark_delivered",
    "mark_failed",
    "webhook_state",
]


class DeliveryStatus(enum.StrEnum):
    """Where a delivery stands (``none``: a callback is registered, nothing is due yet)."""

    NONE = "none"
    PENDING = "pending"
    DELIVERED = "delivered"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class OutboxDelivery:
    """One row of ``webhook_deliveries``."""

    id: str
    job_id: str
    key_fingerprint: str
    url: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> OutboxDelivery:
        """Build from a database row (ids become strings)."""
        values = dict(row)
        values["id"], values["job_id"] = str(values["id"]), str(values["job_id"])
        values["status"] = DeliveryStatus(values["status"])
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class WebhookState:
    """What a key's job document says about its webhook.

    Attributes:
        url: where it goes (shown to the key that registered it only).
        status: ``none`` until the job ends, then the delivery's status.
        attempts: delivery rounds so far.
        last_status: the receiver's last HTTP status, if it answered.
        next_attempt_at: when a pending delivery is tried next.
        delivered_at: when the receiver took it.
    """

    url: str
    status: DeliveryStatus
    attempts: int = 0
    last_status: int | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Backoff:
    """How failed deliveries wait and when they are given up.

    Attributes:
        initial_seconds: the wait after the first failed round; each later one doubles.
        max_seconds: the longest wait.
        horizon_seconds: a delivery failing this long after it was enqueued is abandoned.
    """

    initial_seconds: float
    max_seconds: float
    horizon_seconds: float


def event_type(status: JobStatus) -> str:
    """``transcription.succeeded`` or ``transcription.failed``."""
    return f"transcription.{status.value}"


def _seconds(value: Any) -> Any:
    return sa.func.make_interval(0, 0, 0, 0, 0, 0, value)


def enqueue_deliveries(conn: Connection, job: Job, *, key_fingerprint: str | None = None) -> int:
    """One pending delivery of ``job``'s end per key with a ``callback_url``.

    Call it in the transaction that ended the job: the event commits with the status or not
    at all. The body is not stored; it is rendered from the job row when sent.

    Args:
        key_fingerprint: only this key's delivery (a key that registered its callback after
            the job had ended; the sweep sends it).

    Returns:
        How many deliveries were enqueued (or started over).
    """
    if job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        return 0
    callers = sa.select(
        _access.c.job_id,
        _access.c.key_fingerprint,
        _access.c.callback_url,
        sa.literal(event_type(job.status)),
    ).where(_access.c.job_id == parse_job_id(job.id), _access.c.callback_url.is_not(None))
    if key_fingerprint is not None:
        callers = callers.where(_access.c.key_fingerprint == key_fingerprint)
    statement = insert(_deliveries).from_select(
        ["job_id", "key_fingerprint", "url", "event_type"], callers
    )
    # The same end again is a new event: a new webhook-id, tried afresh.
    statement = statement.on_conflict_do_update(
        constraint="webhook_deliveries_event_key",
        set_={
            "id": sa.func.gen_random_uuid(),
            "url": statement.excluded.url,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": sa.func.now(),
            "last_status": None,
            "last_error": None,
            "created_at": sa.func.now(),
            "delivered_at": None,
        },
    )
    return conn.execute(statement).rowcount


def claim_due(
    conn: Connection,
    *,
    limit: int,
    lease_seconds: float,
    job_ids: Iterable[JobId] | None = None,
) -> list[OutboxDelivery]:
    """Take up to ``limit`` due pending deliveries for one round of sending.

    Each is pushed ``lease_seconds`` ahead and its round counted before anything is sent:
    commit this before sending, and no other sender takes the row until the lease ends
    (rows another transaction holds are skipped, not waited for).

    Args:
        job_ids: only these jobs' deliveries (a job that just ended); every job's if None.

    Returns:
        The claimed deliveries, ``attempts`` already counting this round.
    """
    due = (
        sa.select(_deliveries.c.id)
        .where(
            _deliveries.c.status == DeliveryStatus.PENDING.value,
            _deliveries.c.next_attempt_at <= sa.func.now(),
        )
        .order_by(_deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if job_ids is not None:
        due = due.where(_deliveries.c.job_id.in_([parse_job_id(job) for job in job_ids]))
    claimed = due.cte("due")
    statement = (
        sa.update(_deliveries)
        .where(_deliveries.c.id == claimed.c.id)
        .values(
            attempts=_deliveries.c.attempts + 1,
            next_attempt_at=sa.func.now() + _seconds(lease_seconds),
        )
        .returning(*_deliveries.c)
    )
    rows = conn.execute(statement).mappings().all()
    return [OutboxDelivery.from_row(row) for row in rows]


def mark_delivered(conn: Connection, delivery_id: str, *, status: int) -> bool:
    """Record a 2xx answer: the delivery is done for good.

    Returns:
        False when the row was no longer pending (started over or removed meanwhile).
    """
    statement = (
        sa.update(_deliveries)
        .where(
            _deliveries.c.id == uuid.UUID(delivery_id),
            _deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        .values(
            status=DeliveryStatus.DELIVERED.value,
            delivered_at=sa.func.now(),
            last_status=status,
            last_error=None,
        )
    )
    return conn.execute(statement).rowcount == 1


def mark_failed(
    conn: Connection,
    delivery_id: str,
    *,
    backoff: Backoff,
    error: str,
    status: int | None = None,
    abandon: bool = False,
) -> DeliveryStatus | None:
    """Record a failed round: wait (exponential backoff) or, past the horizon, give up.

    Args:
        backoff: the waits and the horizon.
        error: a podscribe error code (never a URL or a receiver's text).
        status: the receiver's HTTP status, if it answered.
        abandon: give up now (the SSRF guard refused the URL).

    Returns:
        The row's new status, or None when it was no longer pending.
    """
    attempts = _deliveries.c.attempts
    wait = sa.func.least(
        backoff.initial_seconds * sa.func.power(2.0, sa.func.greatest(attempts - 1, 0)),
        backoff.max_seconds,
    )
    expired = sa.func.now() >= _deliveries.c.created_at + _seconds(backoff.horizon_seconds)
    new_status: Any = (
        DeliveryStatus.ABANDONED.value
        if abandon
        else sa.case((expired, DeliveryStatus.ABANDONED.value), else_=DeliveryStatus.PENDING.value)
    )
    statement = (
        sa.update(_deliveries)
        .where(
            _deliveries.c.id == uuid.UUID(delivery_id),
            _deliveries.c.status == DeliveryStatus.PENDING.value,
        )
        .values(
            status=new_status,
            next_attempt_at=sa.func.now() + _seconds(wait),
            last_status=status,
            last_error=error,
        )
        .returning(_deliveries.c.status)
    )
    value = conn.execute(statement).scalar()
    return DeliveryStatus(value) if value is not None else None


def webhook_state(conn: Connection, job_id: JobId, key_fingerprint: str) -> WebhookState | None:
    """The webhook of one key's job, for its job document.

    Returns:
        The latest delivery of the job to this key; ``none`` when the key registered a
        callback and the job has not ended; None when it registered none.
    """
    parsed = parse_job_id(job_id)
    latest = (
        sa.select(_deliveries)
        .where(_deliveries.c.job_id == parsed, _deliveries.c.key_fingerprint == key_fingerprint)
        .order_by(_deliveries.c.created_at.desc())
        .limit(1)
    )
    row = conn.execute(latest).mappings().first()
    if row is not None:
        delivery = OutboxDelivery.from_row(row)
        pending = delivery.status is DeliveryStatus.PENDING
        return WebhookState(
            url=delivery.url,
            status=delivery.status,
            attempts=delivery.attempts,
            last_status=delivery.last_status,
            next_attempt_at=delivery.next_attempt_at if pending else None,
            delivered_at=delivery.delivered_at,
        )
    callback = conn.execute(
        sa.select(_access.c.callback_url).where(
            _access.c.job_id == parsed, _access.c.key_fingerprint == key_fingerprint
        )
    ).scalar()
    return WebhookState(url=callback, status=DeliveryStatus.NONE) if callback else None
