"""Structured logging that Cloud Logging understands, one setup for every part.

Each record becomes one JSON line on stderr: ``severity`` and ``message`` are the fields
Cloud Logging reads from a function's or a Vertex job's output, ``logging.googleapis.com/trace``
ties the line to the request's trace, and anything passed in ``extra=`` rides along as
``jsonPayload`` fields. The standard library does the work; this module only formats.

Credentials never reach a line: the formatter passes the message, every string field and
any stack trace through :func:`mask_credentials` (URL passwords, ``token=``-like parameters,
bearer tokens), whoever logged them. Code that logs a URL a caller gave (a webhook's, which
may carry a token in its path) logs :func:`url_host` of it instead.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from podscribe.settings import ProfileSettings

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("podscribe_trace", default=None)
_span: contextvars.ContextVar[str | None] = contextvars.ContextVar("podscribe_span", default=None)

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
# Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?")
_MASK = "***"
# scheme://user:password@  (also scheme://:password@, Redis's form)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:'\"]*):[^\s/?#@'\"]*@")
_SECRET_PARAM = re.compile(
    r"(?i)\b((?:[a-z0-9_-]*?)(?:password|passwd|pwd|token|secret|api[_-]?key|apikey|"
    r"signature|sig|auth|credential|key))=[^&\s'\"<>;,]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def mask_credentials(text: str) -> str:
    """``text`` with passwords in URLs, secret-looking parameters and bearer tokens masked.

    Args:
        text: anything about to be logged or printed.

    Returns:
        The same text, each credential replaced by ``***``.
    """
    text = _USERINFO.sub(rf"\1:{_MASK}@", text)
    text = _SECRET_PARAM.sub(rf"\1={_MASK}", text)
    return _BEARER.sub(rf"\1 {_MASK}", text)


def url_host(url: str) -> str:
    """Only the scheme, host and port of ``url``: no userinfo, path, query or fragment.

    For URLs whose path or query may itself be a credential (webhook callbacks).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<invalid url>"
    if not host:
        return "<invalid url>"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port else "")


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging structured JSON line."""

    def __init__(self, project_id: str) -> None:
        super().__init__()
        self.project_id = project_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = f"projects/{self.project_id}/traces/{trace}"
            span = _span.get()
            if span:
                entry["logging.googleapis.com/spanId"] = span
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            # Cloud Error Reporting picks stack traces out of the message field.
            entry["message"] += "\n" + self.formatException(record.exc_info)
        return json.dumps(_masked(entry), default=lambda value: mask_credentials(str(value)))


def configure_logging(settings: ProfileSettings) -> None:
    """Send every logger's records, as JSON lines, to stderr. Safe to call repeatedly."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_podscribe", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CloudLoggingFormatter(settings.project_id))
    handler._podscribe = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for noisy in ("urllib3", "google.auth", "google.api_core", "grpc", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def parse_trace_header(
    traceparent: str | None, cloud_trace_context: str | None
) -> tuple[str | None, str | None]:
    """Trace and span ids from a W3C ``traceparent`` or ``X-Cloud-Trace-Context`` header."""
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match:
            return match.group(1), match.group(2)
    if cloud_trace_context:
        match = _CLOUD_TRACE.match(cloud_trace_context.strip())
        if match:
            span = f"{int(match.group(2)):016x}" if match.group(2) else None
            return match.group(1).lower(), span
    return None, None


@contextmanager
def trace_context(trace_id: str | None, span_id: str | None = None) -> Iterator[None]:
    """Tag every log line written inside the block with this trace."""
    trace_token = _trace.set(trace_id)
    span_token = _span.set(span_id)
    try:
        yield
    finally:
        _trace.reset(trace_token)
        _span.reset(span_token)
