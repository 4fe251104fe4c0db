"""``POST /v1/csp-reports``: what browsers report of Content-Security-Policy violations.

Browsers send these without our API key (the page's policy names the endpoint: ``report-uri``
for the old ``application/csp-report`` body, one report ``{"csp-report": {...}}``, and
``report-to`` for the Reporting API's ``application/reports+json``, a list of reports). So the
route is unauthenticated, rate-limited per client address on a budget of its own
(:func:`podscribe.api.admission.admit_public`), and everything about it is bounded:

- the body: at most :data:`MAX_BODY_BYTES`, read with a cap, and at most
  :data:`MAX_REPORTS_PER_BODY` reports in it;
- each stored report: a small normalised JSON object (the document's origin and path, never
  its query; the violated directive; the blocked resource's scheme and host; the time it
  arrived), each field cut to :data:`MAX_FIELD_CHARS` and the whole to :data:`MAX_ENTRY_CHARS`;
- the store: a Redis list capped at ``PODSCRIBE_CSP_REPORTS_MAX`` (``LPUSH`` and ``LTRIM`` in
  one ``MULTI``, so no reader ever sees it longer), under the rate-limit prefix; while Redis
  cannot be reached, a ``deque`` with that ``maxlen`` in this process. A flood replaces old
  reports with new ones; it never grows either.

Each request's reports are logged at WARNING, in one line with the same fields (at most
:data:`MAX_LOGGED_REPORTS` of them, and their count), so a deployment sees violations in Cloud
Logging without reading Redis.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, urlsplit

from werkzeug.wrappers import Request, Response

from podscribe.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from podscribe.settings import Settings

if TYPE_CHECKING:
    import redis

__all__ = [
    "CSP_REPORT_TYPE",
    "MAX_BODY_BYTES",
    "MAX_ENTRY_CHARS",
    "MAX_FIELD_CHARS",
    "MAX_LOGGED_REPORTS",
    "MAX_REPORTS_PER_BODY",
    "REPORTS_TYPE",
    "REPORT_SCHEMAS",
    "CspReportStore",
    "encode_report",
    "normalise_report",
    "parse_reports",
    "receive_reports",
]

log = logging.getLogger(__name__)

CSP_REPORT_TYPE = "application/csp-report"
"""The ``report-uri`` body: ``{"csp-report": {...}}``."""
REPORTS_TYPE = "application/reports+json"
"""The Reporting API body: a list of ``{"type", "url", "body", ...}``."""
MAX_BODY_BYTES = 8192
"""Largest accepted report body (a real report is well under 2 KiB)."""
MAX_REPORTS_PER_BODY = 100
"""Most reports one Reporting API body may carry."""
MAX_LOGGED_REPORTS = 10
"""Most reports of one request written to its log line (the count says how many came)."""
MAX_FIELD_CHARS = 256
"""Longest stored value of one field."""
MAX_ENTRY_CHARS = 1024
"""Longest stored report, as JSON."""
REPORT_SCHEMAS: dict[str, dict[str, Any]] = {
    CSP_REPORT_TYPE: {
        "type": "object",
        "required": ["csp-report"],
        "properties": {"csp-report": {"type": "object"}},
    },
    REPORTS_TYPE: {
        "type": "array",
        "maxItems": MAX_REPORTS_PER_BODY,
        "items": {
            "type": "object",
            "required": ["type", "body"],
            "properties": {"type": {"type": "string"}, "body": {"type": "object"}},
        },
    },
}
"""The request bodies, for the OpenAPI document (what :func:`parse_reports` enforces)."""

_CSP_VIOLATION = "csp-violation"
_KEY_SUFFIX = "csp-reports"


def receive_reports(request: Request, store: CspReportStore) -> Response:
    """Parse, store and log the reports of one request; answer ``204``.

    Raises:
        UnsupportedMediaTypeError: neither report media type (415).
        PayloadTooLargeError: the body is over :data:`MAX_BODY_BYTES` (413).
        InvalidRequestError: not JSON, or not the shape of its media type (400).
    """
    reports = parse_reports(request)
    if reports:
        store.add(reports)
        # One line per request, not per report, and a bounded one: a batch of a hundred
        # reports must not become a hundred log lines.
        log.warning(
            "content security policy violation",
            extra={"csp_reports": reports[:MAX_LOGGED_REPORTS], "report_count": len(reports)},
        )
    response = Response(status=204)
    response.headers["Cache-Control"] = "no-store"
    return response


def parse_reports(request: Request, *, now: datetime | None = None) -> list[dict[str, str]]:
    """The normalised CSP violation reports of a request body (other report types dropped).

    Args:
        request: the request.
        now: the time recorded as the reports' arrival (default: now).

    Returns:
        The reports, as :func:`normalise_report` makes them.

    Raises:
        UnsupportedMediaTypeError: neither report media type.
        PayloadTooLargeError: the body is over :data:`MAX_BODY_BYTES`.
        InvalidRequestError: not JSON, or not the shape of its media type.
    """
    mimetype = request.mimetype
    if mimetype not in REPORT_SCHEMAS:
        raise UnsupportedMediaTypeError(
            f"send reports as {CSP_REPORT_TYPE} or {REPORTS_TYPE}, "
            f"not {mimetype or '(no content type)'}"
        )
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body is larger than the limit of {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidRequestError("the body is not valid JSON") from None
    received = now or datetime.now(UTC)
    if mimetype == CSP_REPORT_TYPE:
        if not isinstance(data, dict) or not isinstance(data.get("csp-report"), dict):
            raise InvalidRequestError('a csp-report body is {"csp-report": {...}}')
        return [normalise_report(data["csp-report"], received)]
    if not isinstance(data, list) or len(data) > MAX_REPORTS_PER_BODY:
        raise InvalidRequestError(
            f"a reports+json body is a list of at most {MAX_REPORTS_PER_BODY} reports"
        )
    reports = []
    for item in data:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("body"), dict)
        ):
            raise InvalidRequestError('each report is {"type": ..., "body": {...}}')
        if item["type"] == _CSP_VIOLATION:
            reports.append(normalise_report(item["body"], received, url=item.get("url")))
    return reports


def normalise_report(
    raw: Mapping[str, Any], received: datetime, *, url: Any = None
) -> dict[str, str]:
    """A report reduced to what is worth keeping, small and free of users' data.

    Reads both spellings (``document-uri``/``violated-directive``/``blocked-uri`` of
    ``report-uri``; ``documentURL``/``effectiveDirective``/``blockedURL`` of the Reporting
    API). A document's query and fragment can hold anything (tokens, search terms) and are
    dropped, as is a blocked URL's path.

    Args:
        raw: the report's body.
        received: when it arrived.
        url: the Reporting API report's own ``url`` (the document), when the body has none.

    Returns:
        ``document_uri``, ``violated_directive``, ``blocked_uri`` and ``time``.
    """
    document = _text(raw.get("document-uri")) or _text(raw.get("documentURL")) or _text(url)
    directive = (
        _text(raw.get("violated-directive"))
        or _text(raw.get("effective-directive"))
        or _text(raw.get("effectiveDirective"))
    )
    blocked = _text(raw.get("blocked-uri")) or _text(raw.get("blockedURL"))
    return {
        "document_uri": _clip(_origin_and_path(document)),
        "violated_directive": _clip(directive),
        "blocked_uri": _clip(_scheme_and_host(blocked)),
        "time": received.astimezone(UTC).isoformat(timespec="seconds"),
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _clip(value: str) -> str:
    # Control characters have no business in a URL or a directive; dropping them keeps the
    # stored JSON and the log line one short line each.
    printable = "".join(char for char in value[: MAX_FIELD_CHARS * 2] if char.isprintable())
    return printable[:MAX_FIELD_CHARS]


def _origin_and_path(value: str) -> str:
    parts = _split(value)
    if parts is None or not parts.netloc:
        return value.split("?", 1)[0].split("#", 1)[0]
    return f"{parts.scheme}://{_host(parts)}{parts.path}"


def _scheme_and_host(value: str) -> str:
    parts = _split(value)
    if parts is None or not parts.scheme:
        return value  # a keyword: inline, eval, self, data, ...
    if not parts.netloc:
        return f"{parts.scheme}:"  # data:, blob:, about:
    return f"{parts.scheme}://{_host(parts)}"


def _split(value: str) -> SplitResult | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    return parts


def _host(parts: SplitResult) -> str:
    # Never the userinfo: a URL may carry credentials.
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port is not None else host


def encode_report(report: Mapping[str, str]) -> str:
    """The stored form of a report: compact JSON of at most :data:`MAX_ENTRY_CHARS`."""
    fields = dict(report)
    entry = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    while len(entry) > MAX_ENTRY_CHARS:
        # Escaping can lengthen a field: halve the longest until the whole fits.
        longest = max(fields, key=lambda name: len(fields[name]))
        fields[longest] = fields[longest][: len(fields[longest]) // 2]
        entry = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return entry


class CspReportStore:
    """The last ``csp_reports_max`` reports: a capped Redis list, or a bounded deque.

    Args:
        settings: ``csp_reports_max``, ``redis_url``, ``rate_limit_prefix`` and the rate
            limiter's Redis timeouts and retry pause are read.
        client: a ``redis.Redis`` client; built from ``redis_url`` when omitted.
        monotonic: monotonic seconds for the retry pause; injectable.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_reports = settings.csp_reports_max
        self.key = f"{settings.rate_limit_prefix}{_KEY_SUFFIX}"
        self._retry_seconds = settings.rate_limit_redis_retry_seconds
        self._client = client if client is not None else _build_client(settings)
        self._monotonic = monotonic
        # The backstop: a full deque drops its oldest entry on every append.
        self.memory: deque[str] = deque(maxlen=self.max_reports)
        self._down_until: float | None = None
        self._lock = threading.Lock()

    def add(self, reports: Sequence[Mapping[str, str]]) -> Literal["redis", "memory", "none"]:
        """Store ``reports``, newest first; returns where they went."""
        if not reports:
            return "none"
        entries = [encode_report(report) for report in reports][: self.max_reports]
        if self._client is not None and self._redis_due():
            try:
                pipe = self._client.pipeline(transaction=True)
                pipe.lpush(self.key, *entries)
                pipe.ltrim(self.key, 0, self.max_reports - 1)
                pipe.execute()
            except Exception as error:  # noqa: BLE001 - any Redis failure: keep them here
                self._mark_down(error)
            else:
                self._mark_up()
                return "redis"
        with self._lock:
            self.memory.extendleft(entries)  # newest first, as LPUSH
        return "memory"

    def recent(self, limit: int = 100) -> list[dict[str, str]]:
        """The newest stored reports (from Redis when it answers, else this process's)."""
        if self._client is not None and self._redis_due():
            try:
                raw = self._client.lrange(self.key, 0, limit - 1)
            except Exception as error:  # noqa: BLE001 - as in add
                self._mark_down(error)
            else:
                return [json.loads(item) for item in raw]
        with self._lock:
            return [json.loads(item) for item in list(self.memory)[:limit]]

    def _redis_due(self) -> bool:
        with self._lock:
            return self._down_until is None or self._monotonic() >= self._down_until

    def _mark_down(self, error: Exception) -> None:
        with self._lock:
            first = self._down_until is None
            self._down_until = self._monotonic() + self._retry_seconds
        if first:
            log.warning(
                "Redis unreachable: CSP reports are kept in memory",
                extra={"error": f"{type(error).__name__}: {error}"},
            )

    def _mark_up(self) -> None:
        with self._lock:
            self._down_until = None


def _build_client(settings: Settings) -> redis.Redis | None:
    if not settings.redis_url:
        return None
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeout = settings.rate_limit_redis_timeout_seconds
    client: redis.Redis = redis_lib.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # no hidden retries: the deque is the fallback
        health_check_interval=0,
    )
    return client
