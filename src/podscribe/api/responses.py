"""The JSON answers of the API, and its access log line."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from podscribe.api.auth import Caller

__all__ = ["json_response", "log_access"]

log = logging.getLogger("podscribe.api")


def json_response(body: Any, *, status: int = 200) -> Response:
    """``application/json``, compact, never cached (documents change as jobs move)."""
    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    response = Response(payload, status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def log_access(request: Request, response: Response, caller: Caller | None, started: float) -> None:
    """One Cloud Logging ``httpRequest`` line per answer.

    The Authorization header and the body are never logged; the caller appears only as a
    fingerprint prefix.
    """
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "httpRequest": {
                "requestMethod": request.method,
                "requestUrl": request.path,
                "status": response.status_code,
                "latency": f"{time.perf_counter() - started:.6f}s",
                "remoteIp": request.remote_addr,
                "userAgent": request.headers.get("User-Agent", "")[:200],
            },
            "caller": caller.short if caller else None,
        },
    )
