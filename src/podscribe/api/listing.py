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
from collections.abc import Iterable, Mapping
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
    "not_a_cursor",
    "only_parameters",
    "pack_cursor",
    "parse_limit",
    "parse_list_query",
    "unpack_cursor",
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
    return pack_cursor(
        {
            "t": position.created_at.isoformat(),
            "id": str(position.job_id),
            "s": status.value if status is not None else None,
        }
    )


def pack_cursor(document: Mapping[str, Any]) -> str:
    """A cursor carrying ``document`` (JSON, with this API's cursor version added).

    Args:
        document: JSON-ready position fields (``v`` is reserved for the version).

    Returns:
        URL-safe base64 without padding.
    """
    raw = json.dumps({"v": _CURSOR_VERSION, **document}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unpack_cursor(cursor: str) -> dict[str, Any]:
    """The document a :func:`pack_cursor` cursor carries; its fields are the caller's to check.

    Raises:
        InvalidRequestError: not a cursor of this API (form, base64, JSON or version).
    """
    if not _CURSOR_FORM.match(cursor):
        raise not_a_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise not_a_cursor() from None
    if not isinstance(document, dict) or document.get("v") != _CURSOR_VERSION:
        raise not_a_cursor()
    return document


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
        raise not_a_cursor() from None
    if created_at.tzinfo is None:
        raise not_a_cursor()
    return ListPosition(created_at=created_at, job_id=job_id)


def _cursor_document(cursor: str) -> dict[str, Any]:
    document = unpack_cursor(cursor)
    made_for = document.get("s")
    if made_for is not None and made_for not in _STATUSES:
        raise not_a_cursor()
    return document


def not_a_cursor() -> InvalidRequestError:
    """The refusal of a cursor this API did not write."""
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
    only_parameters(args, _PARAMETERS)
    status_text = args.get("status")
    status: JobStatus | None = None
    if status_text is not None:
        if status_text not in _STATUSES:
            raise InvalidRequestError(
                f"status must be one of {', '.join(_STATUSES)}, not {status_text!r:.40}"
            )
        status = JobStatus(status_text)
    limit = parse_limit(args.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    cursor = args.get("cursor")
    after = decode_cursor(cursor, status) if cursor is not None else None
    return ListQuery(status=status, limit=limit, after=after)


def only_parameters(args: MultiDict[str, str], names: Iterable[str]) -> None:
    """Refuse a query with a parameter not in ``names``, or one of them given twice.

    Raises:
        InvalidRequestError: an unknown or repeated parameter.
    """
    allowed = tuple(names)
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        # Refused like unknown body fields: a typo such as ``state=`` must not list everything.
        shown = ", ".join(repr(name)[:40] for name in unknown[:5])
        raise InvalidRequestError(f"unknown query parameter(s): {shown}")
    for name in allowed:
        if len(args.getlist(name)) > 1:
            raise InvalidRequestError(f"{name} may be given once")


def parse_limit(text: str | None, *, default: int, maximum: int) -> int:
    """A page size: ``default`` when absent, else an integer from 1 to ``maximum``.

    Raises:
        InvalidRequestError: not such an integer.
    """
    if text is None:
        return default
    if not _LIMIT_FORM.match(text) or not 1 <= int(text) <= maximum:
        raise InvalidRequestError(f"limit must be an integer from 1 to {maximum}, not {text!r:.40}")
    return int(text)
