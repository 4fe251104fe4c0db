"""The submit API: routing, resources built on first use, and one error boundary.

functions-framework hands every request, whatever its path, to one function with a
``flask.Request``; :class:`SubmitApi` routes it with a werkzeug :class:`Map`, so the same code
runs under functions-framework locally, on Cloud Functions, and in a plain WSGI test.

Nothing connects at import or construction: the settings, the database engine, the Pub/Sub
publisher, the storage client and the rate limiter are built on the first request that needs
them, so importing ``functions/submit/main.py`` needs no credentials and no services.

Per request: the trace header tags every log line; ``/v1/transcriptions`` requests are limited
(per client IP or IPv6 /64, and per key once authenticated; reads and creates on separate
budgets; one Redis round trip) and authenticated; the handler runs; any
:class:`~podscribe.errors.PodscribeError` becomes its problem document and anything else a
bare 500, logged with its stack trace here and never shown to the caller.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from podscribe.api.auth import Caller, authenticate
from podscribe.api.documents import job_document, job_path
from podscribe.api.openapi import openapi_document
from podscribe.api.origin import base_url
from podscribe.api.problems import problem_response
from podscribe.api.validation import (
    client_ip,
    parse_submit_request,
    parse_transcript_query,
)
from podscribe.db import create_db_engine, transaction
from podscribe.errors import (
    DatabaseUnavailableError,
    InvalidRequestError,
    JobStateConflictError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    PodscribeError,
    PublishError,
    RateLimitedError,
    RouteNotFoundError,
    StorageError,
    TranscriptGoneError,
    TranscriptNotReadyError,
    UnauthorizedError,
)
from podscribe.jobs.store import Job, JobStatus, SubmitOutcome, create_or_get_job, fail, get_job
from podscribe.log import configure_logging, parse_trace_header, trace_context
from podscribe.messaging import JobMessage, JobPublisher
from podscribe.ratelimit import Bucket, RateDecision, RateLimiter, address_identity
from podscribe.settings import Settings, get_settings
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore
from podscribe.transcription.formats import RENDERERS, Transcript

__all__ = ["SubmitApi"]

log = logging.getLogger("podscribe.api")

_ROUTES = Map(
    [
        Rule("/v1/transcriptions", methods=["POST"], endpoint="submit"),
        Rule("/v1/transcriptions/<job_id>", methods=["GET"], endpoint="status"),
        Rule("/v1/transcriptions/<job_id>/transcript", methods=["GET"], endpoint="transcript"),
        Rule("/v1/openapi.json", methods=["GET"], endpoint="openapi"),
        Rule("/healthz", methods=["GET"], endpoint="healthz"),
        Rule("/readyz", methods=["GET"], endpoint="readyz"),
    ],
    strict_slashes=False,
    merge_slashes=False,
)
_READY_CACHE_SECONDS = 1.0
"""How long one readiness probe's answer is reused."""
_READY_VALUES = frozenset({"0", "1", "true", "false"})
_READ_METHODS = frozenset({"GET", "HEAD"})
"""Methods limited by the read budget; every other one by the create budget."""
_TEXT_TYPES = frozenset({"text/plain", "text/vtt", "application/x-subrip", "application/json"})


@dataclass(frozen=True)
class _Context:
    """What a handler knows about its request."""

    request: Request
    caller: Caller
    base_url: str
    rate: RateDecision


class _RateLimitExceededError(RateLimitedError):
    """A refusal that carries its ``RateLimit-*`` headers to the problem response."""

    def __init__(self, decision: RateDecision) -> None:
        super().__init__(
            f"too many requests; try again in {decision.retry_after}s", decision.retry_after
        )
        self.headers = decision.headers()


class SubmitApi:
    """The HTTP API of the submit function.

    Args:
        settings: the configuration; read with :func:`get_settings` on first use when omitted.
        engine: a database engine to use instead of building one from settings.
        publisher: a publisher to use instead of building one.
        store: a transcript store to use instead of building one.
        limiter: a rate limiter to use instead of building one.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        publisher: JobPublisher | None = None,
        store: TranscriptStore | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._publisher = publisher
        self._store = store
        self._limiter = limiter
        self._lock = threading.RLock()
        self._logging_ready = False
        self._ready_lock = threading.Lock()
        self._ready_probed: float | None = None
        self._ready = False

    # --- resources, built on first use ---------------------------------------------------
    @property
    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                self._settings = get_settings()
            if not self._logging_ready:
                configure_logging(self._settings)
                self._logging_ready = True
            return self._settings

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = create_db_engine(self.settings)
            return self._engine

    @property
    def publisher(self) -> JobPublisher:
        with self._lock:
            if self._publisher is None:
                settings = self.settings
                self._publisher = JobPublisher(settings, timeout=settings.publish_timeout_seconds)
            return self._publisher

    @property
    def store(self) -> TranscriptStore:
        with self._lock:
            if self._store is None:
                self._store = TranscriptStore(self.settings)
            return self._store

    @property
    def limiter(self) -> RateLimiter:
        with self._lock:
            if self._limiter is None:
                self._limiter = RateLimiter(self.settings)
            return self._limiter

    # --- the entry point -------------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        """Answer one request (the functions-framework target calls this).

        Args:
            request: the request (a ``flask.Request`` under functions-framework).

        Returns:
            The response; never raises.
        """
        started = time.perf_counter()
        trace_id, span_id = parse_trace_header(
            request.headers.get("traceparent"), request.headers.get("X-Cloud-Trace-Context")
        )
        with trace_context(trace_id, span_id):
            caller: Caller | None = None
            try:
                endpoint, values = self._route(request)
                caller, response = self._dispatch(request, endpoint, values)
            except PodscribeError as error:
                response = problem_response(
                    error,
                    instance=request.path,
                    headers=error.headers if isinstance(error, _RateLimitExceededError) else None,
                    streamed=isinstance(error, PayloadTooLargeError),
                )
                if error.http_status >= 500:
                    # An outage (503) is expected now and then; anything else is a fault.
                    level = logging.WARNING if error.http_status == 503 else logging.ERROR
                    log.log(level, "request failed: %s", error.message, extra={"code": error.code})
            except Exception:
                log.exception("unexpected error answering %s %s", request.method, request.path)
                response = problem_response(PodscribeError("unexpected error"))
            self._log_access(request, response, caller, started)
            return response

    def framework_error(self, error: HTTPException) -> Response:
        """Answer an error raised before the target runs, as a problem document.

        functions-framework routes every path to the target, except those its own rules do
        not match (a path with a newline, ``/favicon.ico``): Flask would answer those with
        an HTML page. The entry point registers this with ``functions_framework.errorhandler``.

        Args:
            error: the HTTP error Flask raised.

        Returns:
            The problem response.
        """
        problem: PodscribeError
        if error.code == 404:
            problem = RouteNotFoundError("no resource at this path")
        elif error.code == 413:
            problem = PayloadTooLargeError("the body is too large")
        elif error.code == 400:
            problem = InvalidRequestError("the request is malformed")
        else:
            problem = PodscribeError(f"{error.code} {error.name}")
        return problem_response(problem)

    def _route(self, request: Request) -> tuple[str, dict[str, Any]]:
        adapter = _ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match(request.path, method=request.method)
        except NotFound:
            raise RouteNotFoundError(f"no resource at {request.path}") from None
        except MethodNotAllowed as error:
            allowed = sorted(error.valid_methods or [])
            raise MethodNotAllowedError(
                f"{request.method} is not allowed here; use {', '.join(allowed)}", allowed
            ) from None
        return str(endpoint), dict(values)

    def _dispatch(
        self, request: Request, endpoint: str, values: dict[str, Any]
    ) -> tuple[Caller | None, Response]:
        if endpoint == "healthz":
            ready = request.args.get("ready", "0")
            if ready not in _READY_VALUES:
                raise InvalidRequestError("ready must be 0, 1, true or false")
            if ready in ("1", "true"):
                return None, self._readiness()
            return None, _json_response({"status": "ok"})
        if endpoint == "readyz":
            return None, self._readiness()
        if endpoint == "openapi":
            return None, _json_response(openapi_document(self._base_url(request)))
        context = self._admit(request)
        if endpoint == "submit":
            response = self._submit(context)
        elif endpoint == "status":
            response = self._status(context, values["job_id"])
        else:
            response = self._transcript(context, values["job_id"])
        response.headers.update(context.rate.headers())
        return context.caller, response

    def _admit(self, request: Request) -> _Context:
        """Rate-limit (IP, and key when valid) and authenticate, in one Redis round trip."""
        settings = self.settings
        unauthorized: UnauthorizedError | None = None
        try:
            caller: Caller | None = authenticate(request.headers.get("Authorization"), settings)
        except UnauthorizedError as error:
            caller, unauthorized = None, error
        address = address_identity(client_ip(request, settings.proxy_hops))
        if caller is not None and request.method in _READ_METHODS:
            # Polling is cheap and expected: reads get a budget of their own, so a client
            # polling once a second never eats into what it may submit.
            buckets = [
                Bucket(f"ip:read:{address}", settings.rate_limit_reads_per_ip),
                Bucket(f"key:read:{caller.fingerprint}", settings.rate_limit_reads_per_key),
            ]
        else:
            # Creates, and every request without a valid key (key guessing) whatever its
            # method, share the tighter budget.
            buckets = [Bucket(f"ip:{address}", settings.rate_limit_per_ip)]
            if caller is not None:
                buckets.append(Bucket(f"key:{caller.fingerprint}", settings.rate_limit_per_key))
        rate = self.limiter.hit(buckets)
        if not rate.allowed:
            raise _RateLimitExceededError(rate)
        if unauthorized is not None or caller is None:
            raise unauthorized or UnauthorizedError("authentication required")
        return _Context(request, caller, self._base_url(request), rate)

    def _base_url(self, request: Request) -> str:
        return base_url(request, self.settings)

    # --- handlers --------------------------------------------------------------------------
    def _submit(self, context: _Context) -> Response:
        submission = parse_submit_request(context.request, self.settings)
        with transaction(self.engine) as conn:
            job, outcome = create_or_get_job(
                conn,
                collection_id=submission.episode.collection_id,
                episode_id=submission.episode.episode_id,
                source_url=submission.url,
                key_fingerprint=context.caller.fingerprint,
                requested_language=submission.language,
                requested_model=submission.model,
                callback_url=submission.callback_url,
            )
        if outcome is not SubmitOutcome.EXISTING:
            self._wake(job.id)
        log.info(
            "submission %s",
            outcome.value,
            extra={"job_id": job.id, "outcome": outcome.value, "caller": context.caller.short},
        )
        status = 200 if outcome is SubmitOutcome.EXISTING else 202
        response = _json_response(job_document(job, context.base_url), status=status)
        response.headers["Location"] = f"{context.base_url}{job_path(job.id)}"
        return response

    def _wake(self, job_id: str) -> None:
        """Publish the wake-up; on failure the job stays queued for the sweep to re-send."""
        try:
            self.publisher.publish(JobMessage(job_id))
        except PublishError as error:
            log.warning(
                "wake-up not published; the sweep will send it",
                extra={"job_id": job_id, "error": error.message},
            )

    def _status(self, context: _Context, job_id: str) -> Response:
        with transaction(self.engine) as conn:
            job = get_job(conn, job_id, key_fingerprint=context.caller.fingerprint)
        return _json_response(job_document(job, context.base_url))

    def _transcript(self, context: _Context, job_id: str) -> Response:
        query = parse_transcript_query(dict(context.request.args.items()))
        with transaction(self.engine) as conn:
            job = get_job(conn, job_id, key_fingerprint=context.caller.fingerprint)
        name: str | None
        if query.partial:
            if job.status is not JobStatus.RUNNING or not job.checkpoint_object:
                raise TranscriptNotReadyError(
                    f"job {job.id} is {job.status.value}; a partial transcript exists only "
                    "while it runs and has written a checkpoint"
                )
            chunks = self._partial(job.id, job.checkpoint_object, query.format)
            filename = f"{job.id}.partial.{query.format}"
        else:
            if job.status is not JobStatus.SUCCEEDED:
                detail = f"job {job.id} is {job.status.value}"
                if job.status is JobStatus.FAILED:
                    detail += f" ({job.error_code}); submit the episode again to retry"
                raise TranscriptNotReadyError(detail)
            name = (job.transcript_objects or {}).get(query.format)
            if not name:
                raise StorageError(f"job {job.id} has no {query.format} transcript recorded")
            filename = f"{job.id}.{query.format}"
            try:
                chunks = self.store.stream(name)
            except FileNotFoundError:
                raise self._transcript_gone(job) from None
        content_type = TRANSCRIPT_FORMATS[query.format]
        if content_type in _TEXT_TYPES:
            content_type += "; charset=utf-8"
        response = Response(chunks, status=200, content_type=content_type)
        response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
        response.headers["Cache-Control"] = (
            "private, max-age=3600" if not query.partial else "no-store"
        )
        return response

    def _transcript_gone(self, job: Job) -> TranscriptGoneError:
        """Fail the job as ``transcript_gone``: a new submission then transcribes it again."""
        message = (
            f"the transcript of job {job.id} is no longer in storage (removed by a retention "
            "rule or by hand); submit the episode again to transcribe it anew"
        )
        try:
            with transaction(self.engine) as conn:
                fail(
                    conn,
                    job.id,
                    JobStatus.SUCCEEDED,
                    code=TranscriptGoneError.code,
                    message=message,
                )
        except JobStateConflictError:
            pass  # submitted again meanwhile: it is already on its way back
        log.warning(
            "a succeeded job's transcript is missing from storage", extra={"job_id": job.id}
        )
        return TranscriptGoneError(message)

    def _partial(self, job_id: str, checkpoint: str, fmt: str) -> Iterator[bytes]:
        """A running job's checkpoint (the segments done so far), rendered in ``fmt``."""
        try:
            payload = self.store.get(checkpoint)
        except FileNotFoundError:
            raise TranscriptNotReadyError(
                f"job {job_id} moved on since its checkpoint was written; ask again"
            ) from None
        if fmt == "json":
            return iter([payload])
        return iter([RENDERERS[fmt](Transcript.from_json(payload)).encode("utf-8")])

    def _readiness(self) -> Response:
        """Ready when the database answered a probe of the last :data:`_READY_CACHE_SECONDS`.

        The endpoint is unauthenticated: one probe per instance per interval, whatever the
        request rate (callers arriving during a probe wait for its answer), so readiness
        cannot be used to load the database; the outage's detail goes to the logs only.

        Raises:
            DatabaseUnavailableError: the last probe failed (with the code's generic message).
        """
        with self._ready_lock:
            now = time.monotonic()
            if self._ready_probed is None or now - self._ready_probed >= _READY_CACHE_SECONDS:
                try:
                    with transaction(self.engine) as conn:
                        conn.execute(sa.text("SELECT 1"))
                    self._ready = True
                except DatabaseUnavailableError as error:
                    log.warning("readiness probe failed", extra={"detail": error.message})
                    self._ready = False
                self._ready_probed = time.monotonic()
            ready = self._ready
        if not ready:
            raise DatabaseUnavailableError(DatabaseUnavailableError.public_message)
        return _json_response({"status": "ready", "database": "ok"})

    # --- logging ---------------------------------------------------------------------------
    def _log_access(
        self, request: Request, response: Response, caller: Caller | None, started: float
    ) -> None:
        # The Authorization header and the body are never logged; the caller appears only
        # as a fingerprint prefix.
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


def _json_response(body: Any, *, status: int = 200) -> Response:
    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    response = Response(payload, status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
