"""``Idempotency-Key`` on ``POST /v1/transcriptions``: a repeated key gets the first answer.

After the IETF draft "The Idempotency-Key HTTP Header Field" and Stripe's behaviour. A key
is 1-255 visible ASCII characters, scoped to the caller's API key (its fingerprint). Its
first request *reserves* a row (``INSERT ... ON CONFLICT DO NOTHING`` in a short transaction
of its own), is processed as usual, and *completes* the row with its answer (status, JSON
body, ``Location``) in the transaction that makes the job, so an answer is stored exactly
when its effect is committed. A later request with the key:

* the same request (SHA-256 of method, path and canonical body): the stored answer, with
  ``Idempotent-Replayed: true``, and nothing is done again (no job, no requeue, no publish);
* another request: 422 ``idempotency_key_reused``;
* while the first is still in flight: 409 ``idempotency_key_in_use`` (``Retry-After: 1``).

Only 2xx answers are stored: a refused first request *releases* its row, so the caller may
fix the request and send it again with the same key. Entries expire after
``PODSCRIBE_IDEMPOTENCY_TTL_HOURS``; an expired row is taken over by the next request with
its key, and the sweep deletes the rest (:func:`purge_expired`).

No werkzeug here: the sweep imports :func:`purge_expired` in processes without the web stack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine

from podscribe.db import transaction
from podscribe.errors import (
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    PodscribeError,
)
from podscribe.jobs.tables import metadata
from podscribe.settings import ApiSettings

__all__ = [
    "ABANDONED_AFTER",
    "IDEMPOTENCY_HEADER",
    "IN_USE_RETRY_AFTER",
    "KEY_PATTERN",
    "MAX_KEY_LENGTH",
    "REPLAYED_HEADER",
    "Reservation",
    "StoredAnswer",
    "complete",
    "entry_ttl",
    "idempotency_keys_table",
    "parse_idempotency_key",
    "purge_expired",
    "release",
    "request_hash",
    "reserve",
]

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_PATTERN = f"^[!-~]{{1,{MAX_KEY_LENGTH}}}$"
"""The header's value: visible ASCII (``%x21-7E``), as a JSON Schema (ECMA 262) pattern."""
IN_USE_RETRY_AFTER = 1
"""Seconds a request that met its key in flight is asked to wait."""
ABANDONED_AFTER = timedelta(minutes=2)
"""A reservation still in flight this long was left by a process that died mid-request (a
submit answers in seconds): the next request with its key takes it over rather than being
told 409 until the entry expires."""

_KEY = re.compile(f"[!-~]{{1,{MAX_KEY_LENGTH}}}")
_RESERVE_TRIES = 3

idempotency_keys_table = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key_fingerprint", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("body", JSONB(none_as_null=True)),
    sa.Column("location", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
_table = idempotency_keys_table


@dataclass(frozen=True)
class Reservation:
    """A key this request holds while it is processed.

    Attributes:
        key_fingerprint: the caller's fingerprint.
        idempotency_key: the header's value.
        request_hash: the request's fingerprint (:func:`request_hash`).
        reserved_at: the row's ``created_at``: only this reservation may complete or release
            it (one taken over after :data:`ABANDONED_AFTER` is no longer ours).
    """

    key_fingerprint: str
    idempotency_key: str
    request_hash: str
    reserved_at: datetime

    def _is_ours(self) -> Any:
        return sa.and_(
            _table.c.key_fingerprint == self.key_fingerprint,
            _table.c.idempotency_key == self.idempotency_key,
            _table.c.status.is_(None),
            _table.c.created_at == self.reserved_at,
        )


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a key, to be replayed.

    Attributes:
        status: its HTTP status (2xx).
        body: its JSON body.
        location: its ``Location`` header, if it had one.
    """

    status: int
    body: Any
    location: str | None


def entry_ttl(settings: ApiSettings) -> timedelta:
    """How long an entry is kept: ``PODSCRIBE_IDEMPOTENCY_TTL_HOURS``."""
    return timedelta(hours=settings.idempotency_ttl_hours)


def parse_idempotency_key(values: Sequence[str]) -> str | None:
    """The ``Idempotency-Key`` of a request, checked.

    Args:
        values: every ``Idempotency-Key`` header the request carries (none: no key).

    Returns:
        The key, or None when the request has none.

    Raises:
        InvalidRequestError: sent twice, empty, longer than 255 characters, or not visible
            ASCII (spaces, control characters and non-ASCII are refused).
    """
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequestError(f"send one {IDEMPOTENCY_HEADER} header, not {len(values)}")
    value = values[0]
    if not value:
        raise InvalidRequestError(f"{IDEMPOTENCY_HEADER} is empty; send 1-255 characters")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidRequestError(
            f"{IDEMPOTENCY_HEADER} is {len(value)} characters long; the limit is "
            f"{MAX_KEY_LENGTH} (a UUID is typical)"
        )
    if _KEY.fullmatch(value) is None:
        raise InvalidRequestError(
            f"{IDEMPOTENCY_HEADER} must be visible ASCII characters (no spaces, control "
            "characters or non-ASCII), such as a UUID"
        )
    return value


def request_hash(method: str, path: str, body: Mapping[str, Any]) -> str:
    """The fingerprint of a request: SHA-256 of its method, path and canonical JSON body.

    Canonical: keys sorted, no insignificant whitespace, a field sent as ``null`` the same
    as one left out, and a trailing slash of the path ignored, so the same request spelt
    differently is still the same request.

    Args:
        method: the HTTP method.
        path: the request path.
        body: the request's fields, as validated.

    Returns:
        64 hex digits.
    """
    fields = {name: value for name, value in body.items() if value is not None}
    canonical = json.dumps(
        [method.upper(), path.rstrip("/") or "/", fields],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def reserve(
    engine: Engine,
    *,
    key_fingerprint: str,
    idempotency_key: str,
    request_hash: str,
    ttl: timedelta,
) -> Reservation | StoredAnswer:
    """Hold a key for this request, or learn the first request's answer.

    In a transaction of its own, committed before the request is processed, so a concurrent
    request with the key sees the reservation at once.

    Args:
        engine: the database.
        key_fingerprint: the caller's fingerprint.
        idempotency_key: the header's value (:func:`parse_idempotency_key`).
        request_hash: this request's fingerprint (:func:`request_hash`).
        ttl: how long an entry is kept; an older one is replaced.

    Returns:
        A reservation (process the request, then :func:`complete` or :func:`release` it),
        or the stored answer of an earlier identical request (replay it; do nothing else).

    Raises:
        IdempotencyKeyReusedError: the key was used for another request.
        IdempotencyKeyInUseError: the key's first request is still being processed.
        DatabaseUnavailableError: the database could not be reached.
    """
    pk = (
        _table.c.key_fingerprint == key_fingerprint,
        _table.c.idempotency_key == idempotency_key,
    )
    for _ in range(_RESERVE_TRIES):
        with transaction(engine) as conn:
            reserved_at = conn.execute(
                insert(_table)
                .values(
                    key_fingerprint=key_fingerprint,
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                )
                .on_conflict_do_nothing()
                .returning(_table.c.created_at)
            ).scalar()
            if reserved_at is None:
                # Expired (whatever it held), or abandoned in flight: ours now. A concurrent
                # takeover waits for this row lock and then finds it neither.
                reserved_at = conn.execute(
                    sa.update(_table)
                    .where(
                        *pk,
                        sa.or_(
                            _table.c.created_at < sa.func.now() - ttl,
                            sa.and_(
                                _table.c.status.is_(None),
                                _table.c.created_at < sa.func.now() - ABANDONED_AFTER,
                            ),
                        ),
                    )
                    .values(
                        request_hash=request_hash,
                        status=None,
                        body=None,
                        location=None,
                        created_at=sa.func.now(),
                    )
                    .returning(_table.c.created_at)
                ).scalar()
            if reserved_at is not None:
                return Reservation(key_fingerprint, idempotency_key, request_hash, reserved_at)
            row = conn.execute(sa.select(_table).where(*pk)).mappings().first()
        if row is None:
            continue  # released or purged since our insert met it: try again
        if row["request_hash"] != request_hash:
            raise IdempotencyKeyReusedError(
                f"this {IDEMPOTENCY_HEADER} was used for a different request; send a new key "
                "for a new request"
            )
        if row["status"] is None:
            raise IdempotencyKeyInUseError(
                f"a request with this {IDEMPOTENCY_HEADER} is still being processed; try "
                f"again in {IN_USE_RETRY_AFTER}s"
            )
        return StoredAnswer(status=row["status"], body=row["body"], location=row["location"])
    # Reserved and released by others three times over between our statements.
    raise IdempotencyKeyInUseError(
        f"a request with this {IDEMPOTENCY_HEADER} is being processed; try again in "
        f"{IN_USE_RETRY_AFTER}s"
    )


def complete(
    conn: Connection,
    reservation: Reservation,
    *,
    status: int,
    body: Any,
    location: str | None,
) -> bool:
    """Store a 2xx answer for its key, in the caller's transaction (the one with the effect).

    Args:
        conn: the transaction that made the answer's effect (the job).
        reservation: what :func:`reserve` returned.
        status: the HTTP status (2xx).
        body: the JSON body.
        location: the ``Location`` header, if any.

    Returns:
        Whether it was stored: False when the reservation was taken over meanwhile (it had
        been in flight for longer than :data:`ABANDONED_AFTER`).

    Raises:
        ValueError: ``status`` is not 2xx (only successes are stored).
    """
    if not 200 <= status < 300:
        raise ValueError(f"only 2xx answers are stored, not {status}")
    stored = conn.execute(
        sa.update(_table)
        .where(reservation._is_ours())
        .values(status=status, body=body, location=location)
    )
    return bool(stored.rowcount)


def release(engine: Engine, reservation: Reservation) -> None:
    """Give a key back after a refused (non-2xx) or failed request; never raises.

    The caller may then fix the request and send it again with the same key. Should the
    database be down, the reservation stays and is taken over after :data:`ABANDONED_AFTER`.
    """
    try:
        with transaction(engine) as conn:
            conn.execute(sa.delete(_table).where(reservation._is_ours()))
    except (PodscribeError, sa.exc.SQLAlchemyError) as error:
        # The request's own error is what the caller must see, not this one.
        log.warning(
            "idempotency key not released; it is taken over once abandoned",
            extra={"error": str(error)},
        )


def purge_expired(conn: Connection, ttl: timedelta) -> int:
    """Delete the entries older than ``ttl`` (the sweep calls this).

    Args:
        conn: a connection in a transaction.
        ttl: ``PODSCRIBE_IDEMPOTENCY_TTL_HOURS``.

    Returns:
        How many were deleted.
    """
    deleted = conn.execute(sa.delete(_table).where(_table.c.created_at < sa.func.now() - ttl))
    return int(deleted.rowcount)
