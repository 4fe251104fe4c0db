"""The submit API: routing, resources built on first use, and one error boundary.

functions-framework hands every request, whatever its path, to one function with a
``flask.Request``; :class:`SubmitApi` routes it by the one route table
(:data:`podscribe.api.routes.ROUTES`, as a werkzeug :class:`Map`) to the handler the route
names, so the same code runs under functions-framework locally, on Cloud Functions, and in a
plain WSGI test, and the OpenAPI document lists exactly what is dispatched.

Nothing connects at import or construction: the settings, the database engine, the Pub/Sub
publisher, the storage client and the rate limiter are built on the first request that needs
them, so importing ``functions/submit/main.py`` needs no credentials and no services.

Per request: the trace header tags every log line; a route marked ``auth`` is admitted
(:mod:`podscribe.api.admission`: limited per client IP or IPv6 /64 and per key, reads and
creates on separate budgets, one Redis round trip; then authenticated); a ``{job_id}`` is
parsed to a UUID when the handler reads it; the handler runs; any
:class:`~podscribe.errors.PodscribeError` becomes its problem document and anything else a
bare 500, logged with its stack trace here and never shown to the caller. Every answer,
problems and the framework's own errors included, leaves with the security headers
(:mod:`podscribe.api.headers`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from podscribe.api import web
from podscribe.api.admission import RateLimitExceededError, RequestContext, admit, admit_public
from podscribe.api.auth import Caller
from podscribe.api.csp_reports import CspReportStore, receive_reports
from podscribe.api.documents import job_document, job_model
from podscribe.api.headers import apply_security_headers
from podscribe.api.listing import encode_cursor, parse_list_query
from podscribe.api.models import Health, JobList, WebhookSecret
from podscribe.api.openapi import openapi_document
from podscribe.api.origin import base_url
from podscribe.api.problems import problem_response
from podscribe.api.responses import json_response, log_access
from podscribe.api.routes import ROUTES, Route, url_map
from podscribe.api.search import search_document
from podscribe.api.share_links import (
    create_link_response,
    list_links_response,
    revoke_link_response,
    shared_preflight_response,
    shared_transcript_response,
)
from podscribe.api.speakers import rename_speakers_response
from podscribe.api.submission import submit_response
from podscribe.api.transcripts import transcript_response
from podscribe.api.validation import parse_transcript_query
from podscribe.db import create_db_engine, transaction
from podscribe.errors import (
    DatabaseUnavailableError,
    InvalidRequestError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    PodscribeError,
    PublishError,
    RouteNotFoundError,
    WebhooksDisabledError,
)
from podscribe.jobs import (
    Job,
    get_job,
    list_jobs,
    remove_access,
)
from podscribe.jobs.outbox import webhook_state
from podscribe.jobs.share_links import list_share_links
from podscribe.jobs.webhooks import key_secret
from podscribe.log import configure_logging, parse_trace_header, trace_context
from podscribe.messaging import JobMessage, Publisher, publisher_for
from podscribe.ratelimit import RateLimiter
from podscribe.settings import Settings, get_settings
from podscribe.storage import TranscriptStore

__all__ = ["SubmitApi"]

log = logging.getLogger("podscribe.api")

_URLS = url_map(ROUTES)
_ROUTES_BY_OPERATION = {route.operation_id: route for route in ROUTES}
_READY_CACHE_SECONDS = 1.0
"""How long one readiness probe's answer is reused."""
_READY_VALUES = frozenset({"0", "1", "true", "false"})

_Handler = Callable[[RequestContext], Response]


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
        publisher: Publisher | None = None,
        store: TranscriptStore | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._publisher = publisher
        self._store = store
        self._limiter = limiter
        self._csp_store: CspReportStore | None = None
        self._lock = threading.RLock()
        self._logging_ready = False
        self._ready_lock = threading.Lock()
        # One entry, the last probe's answer, forgotten after a second.
        self._ready_cache: TTLCache[str, bool] = TTLCache(
            maxsize=1, ttl=_READY_CACHE_SECONDS, timer=time.monotonic
        )
        self._handlers: dict[str, _Handler] = {
            route.operation_id: getattr(self, f"_{route.handler}") for route in ROUTES
        }

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
    def publisher(self) -> Publisher:
        with self._lock:
            if self._publisher is None:
                settings = self.settings
                self._publisher = publisher_for(settings, timeout=settings.publish_timeout_seconds)
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

    @property
    def csp_reports(self) -> CspReportStore:
        with self._lock:
            if self._csp_store is None:
                self._csp_store = CspReportStore(self.settings)
            return self._csp_store

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
                route, values = self._route(request)
                caller, response = self._dispatch(request, route, values)
            except PodscribeError as error:
                response = problem_response(
                    error,
                    instance=request.path,
                    headers=error.headers if isinstance(error, RateLimitExceededError) else None,
                    streamed=isinstance(error, PayloadTooLargeError),
                )
                if error.http_status >= 500:
                    # An outage (503) is expected now and then; anything else is a fault.
                    level = logging.WARNING if error.http_status == 503 else logging.ERROR
                    log.log(level, "request failed: %s", error.message, extra={"code": error.code})
            except Exception:
                log.exception("unexpected error answering %s %s", request.method, request.path)
                response = problem_response(PodscribeError("unexpected error"))
            apply_security_headers(response, lambda: self.settings)
            log_access(request, response, caller, started)
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
        return apply_security_headers(problem_response(problem), lambda: self.settings)

    def _route(self, request: Request) -> tuple[Route, dict[str, Any]]:
        adapter = _URLS.bind_to_environ(request.environ)
        try:
            operation_id, values = adapter.match(request.path, method=request.method)
        except NotFound:
            raise RouteNotFoundError(f"no resource at {request.path}") from None
        except MethodNotAllowed as error:
            allowed = sorted(error.valid_methods or [])
            raise MethodNotAllowedError(
                f"{request.method} is not allowed here; use {', '.join(allowed)}", allowed
            ) from None
        return _ROUTES_BY_OPERATION[str(operation_id)], dict(values)

    def _dispatch(
        self, request: Request, route: Route, values: dict[str, Any]
    ) -> tuple[Caller | None, Response]:
        """Admit the request (for ``auth`` routes), parse the path, and run the handler."""
        if route.auth:
            context = admit(request, self.settings, self.limiter, self._base_url(request))
        elif route.budget is not None:
            context = admit_public(request, self.settings, self.limiter, route.budget)
        else:
            context = RequestContext(request)
        if "job_id" in values:
            context = replace(context, path_job_id=str(values["job_id"]))
        response = self._handlers[route.operation_id](context)
        if context.rate is not None:
            response.headers.update(context.rate.headers())
        return context.caller, response

    def _base_url(self, request: Request) -> str:
        return base_url(request, self.settings)

    # --- handlers (named by the route table) -----------------------------------------------
    def _healthz(self, context: RequestContext) -> Response:
        ready = context.request.args.get("ready", "0")
        if ready not in _READY_VALUES:
            raise InvalidRequestError("ready must be 0, 1, true or false")
        if ready in ("1", "true"):
            return self._readiness()
        return json_response(Health(status="ok").render())

    def _readyz(self, context: RequestContext) -> Response:
        return self._readiness()

    def _web_page(self, context: RequestContext) -> Response:
        return web.asset_response(context.request, web.INDEX)

    def _web_asset(self, context: RequestContext) -> Response:
        name = context.request.path.removeprefix(web.ASSET_PREFIX)
        return web.asset_response(context.request, name)

    def _openapi(self, context: RequestContext) -> Response:
        return json_response(openapi_document(self._base_url(context.request)))

    def _submit(self, context: RequestContext) -> Response:
        return submit_response(context, self.settings, self.engine, self._wake)

    def _wake(self, job_id: str) -> None:
        """Publish the wake-up; on failure the job stays queued for the sweep to re-send."""
        try:
            self.publisher.publish(JobMessage(job_id))
        except PublishError as error:
            log.warning(
                "wake-up not published; the sweep will send it",
                extra={"job_id": job_id, "error": error.message},
            )

    def _status(self, context: RequestContext) -> Response:
        with transaction(self.engine) as conn:
            job = get_job(conn, context.job, key_fingerprint=context.key.fingerprint)
            webhook = webhook_state(conn, job.id, context.key.fingerprint)
            links = list_share_links(conn, job.id, context.key.fingerprint)
        return json_response(job_document(job, context.links_base, webhook, links))

    def _webhook_secret(self, context: RequestContext) -> Response:
        secret = key_secret(self.settings, context.key.fingerprint)
        if secret is None:
            raise WebhooksDisabledError("no webhook secret is configured; webhooks are unsigned")
        # json_response answers Cache-Control: no-store, as a secret must be.
        return json_response(WebhookSecret(secret=secret).render())

    def _list(self, context: RequestContext) -> Response:
        query = parse_list_query(context.request.args)
        with transaction(self.engine) as conn:
            page = list_jobs(
                conn,
                key_fingerprint=context.key.fingerprint,
                status=query.status,
                limit=query.limit,
                after=query.after,
            )
        document = JobList(
            items=[job_model(job, context.links_base) for job in page.jobs],
            next_cursor=(
                encode_cursor(page.next_position, query.status) if page.next_position else None
            ),
        )
        return json_response(document.render())

    def _search(self, context: RequestContext) -> Response:
        document = search_document(self.engine, context.request.args, context.key.fingerprint)
        return json_response(document)

    def _delete(self, context: RequestContext) -> Response:
        with transaction(self.engine) as conn:
            removal = remove_access(conn, context.job, context.key.fingerprint)
            if removal.job_deleted:
                # Before the commit: should storage fail, the row stays and the caller may
                # ask again (503), rather than objects outliving every row that names them.
                self.store.delete_job_objects(removal.job.id, _recorded_objects(removal.job))
        log.info(
            "access removed",
            extra={
                "job_id": removal.job.id,
                "job_deleted": removal.job_deleted,
                "caller": context.key.short,
            },
        )
        response = Response(status=204)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _transcript(self, context: RequestContext) -> Response:
        query = parse_transcript_query(dict(context.request.args.items()))
        with transaction(self.engine) as conn:
            job = get_job(conn, context.job, key_fingerprint=context.key.fingerprint)
        return transcript_response(job, query, self.engine, self.store)

    def _rename_speakers(self, context: RequestContext) -> Response:
        return rename_speakers_response(context, self.settings, self.engine)

    def _create_link(self, context: RequestContext) -> Response:
        return create_link_response(context, self.settings, self.engine)

    def _list_links(self, context: RequestContext) -> Response:
        return list_links_response(context, self.engine)

    def _revoke_link(self, context: RequestContext) -> Response:
        return revoke_link_response(context, self.engine)

    def _shared_transcript(self, context: RequestContext) -> Response:
        return shared_transcript_response(context.request, self.settings, self.engine, self.store)

    def _shared_preflight(self, context: RequestContext) -> Response:
        return shared_preflight_response()

    def _csp_reports(self, context: RequestContext) -> Response:
        return receive_reports(context.request, self.csp_reports)

    def _readiness(self) -> Response:
        """Ready when the database answered a probe of the last :data:`_READY_CACHE_SECONDS`.

        The endpoint is unauthenticated: one probe per instance per interval, whatever the
        request rate (callers arriving during a probe wait for its answer), so readiness
        cannot be used to load the database; the outage's detail goes to the logs only.

        Raises:
            DatabaseUnavailableError: the last probe failed (with the code's generic message).
        """
        with self._ready_lock:
            ready = self._ready_cache.get("database")
            if ready is None:
                ready = self._probe_database()
                self._ready_cache["database"] = ready
        if not ready:
            raise DatabaseUnavailableError(DatabaseUnavailableError.public_message)
        return json_response(Health(status="ready", database="ok").render())

    def _probe_database(self) -> bool:
        try:
            with transaction(self.engine) as conn:
                conn.execute(sa.text("SELECT 1"))
        except DatabaseUnavailableError as error:
            log.warning("readiness probe failed", extra={"detail": error.message})
            return False
        return True


def _recorded_objects(job: Job) -> list[str]:
    """The object names a job's row points to."""
    recorded = list((job.transcript_objects or {}).values())
    return [*recorded, job.checkpoint_object] if job.checkpoint_object else recorded
