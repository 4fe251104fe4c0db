"""``GET /v1/transcriptions``: its query, and the cursor that carries a walk from page to page.

A cursor is opaque to callers: URL-safe base64 (unpadded) of a small JSON document holding
the keyset position a page ended at (:class:`~podscribe.jobs.listing.ListPosition`) and the
``status`` filter it was made under. A cursor used with another filter would page through a
different list from a position in this one, so it is refused (``400 invalid_request``), as is
anything that is not a cursor this API wrote. It is not signed and needs not be: whatever
position a caller forges, the list only ever holds that caller's own jobs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from werkzeug.datastructures import MultiDict

from podscribe.errors import InvalidRequestError
from podscribe.jobs import JobStatus, ListPosition

__all__ = [
    "CURSOR_PATTERN",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ListQuery",
    "decode_cursor",
    "encode_cursor",
    "parse_list_query",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,512}$"
"""What a cursor looks like (the OpenAPI parameter's pattern too); longer ones are not ours."""

_CURSOR_VERSION = 1
_CURSOR_FORM = re.compile(CURSOR_PATTERN)
_LIMIT_FORM = re.compile(r"^[0-9]{1,4}$")
_STATUSES = tuple(status.value for status in JobStatus)
_PARAMETERS = ("status", "limit", "cursor")


@dataclass(frozen=True)
class ListQuery:
    """The query of ``GET /v1/transcriptions``.

    Attributes:
        status: only jobs in this status, or None for all.
        limit: page size, 1 to :data:`MAX_LIMIT`.
        after: where the page starts (from ``cursor``), or None for the first page.
    """

    status: JobStatus | None = None
    limit: int = DEFAULT_LIMIT
    after: ListPosition | None = None


def encode_cursor(position: ListPosition, status: JobStatus | None) -> str:
    """The cursor of the page that starts after ``position`` under the ``status`` filter.

    Args:
        position: where the previous page ended.
        status: the filter the walk is made under (None for all jobs).

    Returns:
        URL-safe base64 without padding.
    """
    document = {
        "v": _CURSOR_VERSION,
        "t": position.created_at.isoformat(),
        "id": str(position.job_id),
        "s": status.value if status is not None else None,
    }
    raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, status: JobStatus | None) -> ListPosition:
    """The position a cursor names, if it was made for the same ``status`` filter.

    Args:
        cursor: what the caller sent as ``cursor``.
        status: the filter of this request (None for all jobs).

    Returns:
        The position the page starts after.

    Raises:
        InvalidRequestError: not a cursor of this API, or made under another filter.
    """
    document = _cursor_document(cursor)
    made_for = document.get("s")
    if made_for != (status.value if status is not None else None):
        shown = f"status={made_for}" if made_for else "no status filter"
        raise InvalidRequestError(
            f"this cursor was made for {shown}; use it with the same filter or start afresh"
        )
    try:
        created_at = datetime.fromisoformat(str(document["t"]))
        job_id = uuid.UUID(str(document["id"]))
    except (KeyError, ValueError):
        raise _not_a_cursor() from None
    if created_at.tzinfo is None:
        raise _not_a_cursor()
    return ListPosition(created_at=created_at, job_id=job_id)


def _cursor_document(cursor: str) -> dict[str, Any]:
    if not _CURSOR_FORM.match(cursor):
        raise _not_a_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _not_a_cursor() from None
    if not isinstance(document, dict) or document.get("v") != _CURSOR_VERSION:
        raise _not_a_cursor()
    made_for = document.get("s")
    if made_for is not None and made_for not in _STATUSES:
        raise _not_a_cursor()
    return document


def _not_a_cursor() -> InvalidRequestError:
    return InvalidRequestError(
        "cursor is not one this API gave out; pass next_cursor from a previous page as is"
    )


def parse_list_query(args: MultiDict[str, str]) -> ListQuery:
    """Validate ``?status=...&limit=...&cursor=...``.

    Each parameter may be given once, and no other: ``status`` a job status, ``limit`` an
    integer from 1 to :data:`MAX_LIMIT` (default :data:`DEFAULT_LIMIT`), ``cursor`` a
    ``next_cursor`` made under the same ``status``.

    Args:
        args: the request's query arguments.

    Returns:
        The query.

    Raises:
        InvalidRequestError: an unknown or repeated parameter, an unknown status, a limit
            out of range or not an integer, or a cursor that is not one of ours or was made
            for another status.
    """
    unknown = sorted(set(args) - set(_PARAMETERS))
    if unknown:
        # Refused like unknown body fields: a typo such as ``state=`` must not list everything.
        names = ", ".join(repr(name)[:40] for name in unknown[:5])
        raise InvalidRequestError(f"unknown query parameter(s): {names}")
    for name in _PARAMETERS:
        if len(args.getlist(name)) > 1:
            raise InvalidRequestError(f"{name} may be given once")
    status_text = args.get("status")
    status: JobStatus | None = None
    if status_text is not None:
        if status_text not in _STATUSES:
            raise InvalidRequestError(
                f"status must be one of {', '.join(_STATUSES)}, not {status_text!r:.40}"
            )
        status = JobStatus(status_text)
    limit_text = args.get("limit")
    limit = DEFAULT_LIMIT
    if limit_text is not None:
        if not _LIMIT_FORM.match(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise InvalidRequestError(
                f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit_text!r:.40}"
            )
        limit = int(limit_text)
    cursor = args.get("cursor")
    after = decode_cursor(cursor, status) if cursor is not None else None
    return ListQuery(status=status, limit=limit, after=after)
