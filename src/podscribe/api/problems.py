"""Problem documents (RFC 9457): how every error leaves the API.

Each :class:`~podscribe.errors.PodscribeError` carries a stable ``code``, an HTTP status and
a title; this module turns one into ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail``, ``code`` and ``instance``. ``detail`` is the error's
``caller_message``: the message itself only for errors about the caller's own input, else the
code's fixed public message, so an outage never names a database host and a refused fetch never
names an address. Nothing else about the error (its cause, a stack trace, a SQL statement)
reaches the caller: anything that is not a PodscribeError is answered as a bare
``internal_error`` and logged on our side only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

from podscribe.api.models import Problem
from podscribe.errors import (
    MethodNotAllowedError,
    PodscribeError,
    RateLimitedError,
)

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "RETRY_AFTER_UNAVAILABLE",
    "problem_body",
    "problem_response",
    "problem_type",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"
RETRY_AFTER_UNAVAILABLE = 5
"""Seconds a caller is asked to wait after a 503 (a database or storage outage)."""


def problem_type(code: str) -> str:
    """The problem ``type`` URI of an error code (a stable URN; the README lists them)."""
    return f"urn:podscribe:problem:{code}"


def problem_body(error: PodscribeError, instance: str | None) -> dict[str, Any]:
    """The problem document of ``error`` as JSON-ready data (a ``models.Problem``)."""
    return Problem(
        type=problem_type(error.code),
        title=error.title,
        status=error.http_status,
        detail=error.caller_message,
        code=error.code,
        instance=instance or None,
    ).render()


def problem_response(
    error: PodscribeError,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    streamed: bool = False,
) -> Response:
    """An ``application/problem+json`` response for ``error``.

    Args:
        error: what went wrong; its ``http_status``, ``title``, ``code`` and
            ``caller_message`` are used.
        instance: the request path the problem is about.
        headers: extra headers (rate-limit headers, for one).
        streamed: send the body as an iterable. functions-framework reads the whole request
            body after every non-streamed response; a streamed 413 lets an oversized body be
            discarded by the server instead of being read into memory.

    Returns:
        The response.
    """
    payload = json.dumps(problem_body(error, instance), separators=(",", ":")).encode("utf-8")
    response = Response(
        iter([payload]) if streamed else payload,
        status=error.http_status,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    response.headers["Content-Length"] = str(len(payload))
    response.headers["Cache-Control"] = "no-store"
    if headers:
        response.headers.update(headers)
    if isinstance(error, RateLimitedError):
        response.headers["Retry-After"] = str(error.retry_after)
    elif error.http_status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    if isinstance(error, MethodNotAllowedError):
        response.headers["Allow"] = ", ".join(error.allowed)
    return response
