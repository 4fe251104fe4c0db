"""The one route table: what :class:`~podscribe.api.app.SubmitApi` dispatches from and what
:mod:`podscribe.api.openapi` renders ``paths`` from.

A route names its handler (a method of ``SubmitApi``, looked up once when the API is built),
its OpenAPI operation (id, summary, parameters, body model, answers) and whether it is
authenticated. An authenticated route is also rate-limited, so the renderer adds its 401, 429
and 503 answers; path parameters come from the template (``{job_id}``).

A new endpoint is one more :class:`Route` here and one handler: the dispatcher, the werkzeug
rules and the OpenAPI document follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from werkzeug.routing import Map, Rule

from podscribe.api.csp_reports import MAX_BODY_BYTES, REPORT_SCHEMAS
from podscribe.api.idempotency import IDEMPOTENCY_HEADER, KEY_PATTERN, MAX_KEY_LENGTH
from podscribe.api.listing import CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT
from podscribe.api.models import (
    Health,
    Job,
    JobList,
    Problem,
    SearchResults,
    ShareLink,
    ShareLinkList,
    WebhookSecret,
)
from podscribe.api.request_bodies import SpeakerNamesRequest, SubmitRequest
from podscribe.api.search import MAX_LIMIT as SEARCH_MAX_LIMIT
from podscribe.api.search import MAX_QUERY_LENGTH
from podscribe.errors import (
    IdempotencyKeyInUseError,
    InvalidLineLimitsError,
    InvalidSpeakerNameError,
    JobActiveError,
    JobNotFoundError,
    PodscribeError,
    RateLimitedError,
    RouteNotFoundError,
    ShareLinkNotFoundError,
    TooManyShareLinksError,
    TranscriptNotReadyError,
    UnknownSpeakerError,
    WebhooksDisabledError,
)
from podscribe.jobs import JobStatus
from podscribe.storage import TRANSCRIPT_FORMATS

__all__ = ["RATE_HEADERS", "ROUTES", "Parameter", "Reply", "Route", "url_map"]

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")
"""The ``components.headers`` every admitted answer carries."""


@dataclass(frozen=True)
class Reply:
    """One documented answer of an operation.

    Attributes:
        status: the HTTP status.
        description: what it means (a problem's codes are appended when rendered).
        model: the JSON body's model (``Problem`` answers are ``application/problem+json``).
        content_types: media types of a body that is not a model (transcripts).
        content_schema: the JSON schema of such a body (any, unless given).
        headers: ``components.headers`` names the answer carries.
        location: it carries ``Location`` (the job's URL).
        errors: the errors a problem answer may be (all of the API's with its status, unless
            given).
    """

    status: int
    description: str
    model: type[BaseModel] | None = None
    content_types: tuple[str, ...] = ()
    content_schema: dict[str, Any] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    location: bool = False
    errors: tuple[type[PodscribeError], ...] = ()


@dataclass(frozen=True)
class Parameter:
    """A query or header parameter: its name, JSON schema, description and whether it must
    be given."""

    name: str
    schema: dict[str, Any]
    description: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One operation of the API.

    Attributes:
        method: the HTTP method.
        path: the OpenAPI path template (``/v1/transcriptions/{job_id}``).
        handler: the ``SubmitApi`` method that answers it.
        operation_id: the OpenAPI ``operationId``.
        summary: the OpenAPI summary.
        replies: the answers it documents (the admission's 401/429/503 are added for ``auth``).
        auth: rate-limited and authenticated (Bearer key) before the handler runs.
        budget: for a route without ``auth``: the settings field of its own per-address rate
            limit (``rate_limit_..._per_ip``); None: not limited.
        description: a longer OpenAPI description.
        body: the model of the JSON request body.
        body_content: a request body that is not a model: media types to JSON schemas.
        query: the query parameters.
        headers: the request header parameters.
        documented: listed in the OpenAPI document (the web app's page and files are not
            API operations).
    """

    method: str
    path: str
    handler: str
    operation_id: str
    summary: str
    replies: tuple[Reply, ...]
    auth: bool = True
    budget: str | None = None
    description: str | None = None
    body: type[BaseModel] | None = None
    body_content: dict[str, dict[str, Any]] = field(default_factory=dict)
    query: tuple[Parameter, ...] = field(default=())
    headers: tuple[Parameter, ...] = field(default=())
    documented: bool = True

    @property
    def path_parameters(self) -> list[str]:
        """The names of the path template's parameters."""
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def rule(self) -> str:
        """The werkzeug rule of the path template (``{job_id}`` becomes ``<job_id>``)."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


_NOT_FOUND = Reply(
    404,
    "No such job, or not visible to this key",
    Problem,
    errors=(JobNotFoundError, RouteNotFoundError),
)
_RATE = RATE_HEADERS

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/transcriptions",
        handler="submit",
        operation_id="submitTranscription",
        summary="Ask for an episode's transcript (or get the existing job)",
        body=SubmitRequest,
        headers=(
            Parameter(
                IDEMPOTENCY_HEADER,
                {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_LENGTH,
                    "pattern": KEY_PATTERN,
                },
                "1-255 visible ASCII characters (a UUID is typical), scoped to the API key: a "
                "repeat of the same request within PODSCRIBE_IDEMPOTENCY_TTL_HOURS gets the "
                "first 2xx answer again, with `Idempotent-Replayed: true`, and does nothing "
                "else. Refused answers are not stored.",
            ),
        ),
        replies=(
            Reply(
                200, "The episode already has a job: that job.", Job, headers=_RATE, location=True
            ),
            Reply(202, "A new (or retried) job, queued.", Job, headers=_RATE, location=True),
            Reply(400, "Malformed body or fields", Problem),
            Reply(413, "Body larger than PODSCRIBE_MAX_REQUEST_BYTES", Problem),
            Reply(415, "Body is not application/json", Problem),
            Reply(
                409,
                "The first request with this Idempotency-Key is still being processed; wait "
                "Retry-After seconds",
                Problem,
                headers=("Retry-After",),
                errors=(IdempotencyKeyInUseError,),
            ),
            Reply(
                422,
                "The url names no Apple Podcasts episode, the model cannot transcribe the "
                "language asked for, or the Idempotency-Key was sent with another request",
                Problem,
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/transcriptions",
        handler="list",
        operation_id="listTranscriptions",
        summary="The caller's jobs, newest first, a page at a time",
        description="Only the jobs this key submitted (and has not deleted), newest "
        "submission first. Pass a page's `next_cursor` as `cursor` for the next one, with "
        "the same `status`; jobs submitted meanwhile do not shift later pages.",
        query=(
            Parameter(
                "status",
                {"type": "string", "enum": [status.value for status in JobStatus]},
                "Only jobs in this status.",
            ),
            Parameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                f"Jobs per page (default {DEFAULT_LIMIT}).",
            ),
            Parameter(
                "cursor",
                {"type": "string", "pattern": CURSOR_PATTERN},
                "A previous page's `next_cursor`, made under the same `status`.",
            ),
        ),
        replies=(
            Reply(200, "A page of jobs.", JobList, headers=_RATE),
            Reply(400, "Unknown status, limit out of range, or a foreign cursor", Problem),
        ),
    ),
    Route(
        "GET",
        "/v1/transcriptions/{job_id}",
        handler="status",
        operation_id="getTranscription",
        summary="A job's status, progress, episode, timings and links",
        replies=(Reply(200, "The job.", Job, headers=_RATE), _NOT_FOUND),
    ),
    Route(
        "DELETE",
        "/v1/transcriptions/{job_id}",
        handler="delete",
        operation_id="deleteTranscription",
        summary="Give up this key's access to a job",
        description="Other keys that submitted the episode keep theirs. When no key has "
        "access any more the job and its transcripts are deleted; the last key cannot "
        "delete a job while it is dispatched or running (409: ask again once it ended).",
        replies=(
            Reply(204, "This key's access is gone.", headers=_RATE),
            _NOT_FOUND,
            Reply(
                409,
                "The job is dispatched or running and this key is its last",
                Problem,
                errors=(JobActiveError,),
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/transcriptions/{job_id}/transcript",
        handler="transcript",
        operation_id="getTranscript",
        summary="The transcript of a succeeded job, streamed",
        query=(
            Parameter(
                "format",
                {"type": "string", "enum": sorted(TRANSCRIPT_FORMATS)},
                "Transcript format (default json).",
            ),
            Parameter(
                "partial",
                {"type": "boolean"},
                "A running job's transcript so far (its last checkpoint).",
            ),
            Parameter(
                "max_line_chars",
                {"type": "integer", "minimum": 0},
                "The longest caption line (srt, vtt); the format's default when absent.",
            ),
            Parameter(
                "max_lines",
                {"type": "integer", "minimum": 0},
                "Lines per caption (srt, vtt); the format's default when absent.",
            ),
        ),
        replies=(
            Reply(
                200,
                "The transcript.",
                content_types=tuple(sorted(set(TRANSCRIPT_FORMATS.values()))),
            ),
            Reply(400, "Unknown format, or a line limit that is not a whole number", Problem),
            _NOT_FOUND,
            Reply(
                409, "The job has not succeeded (yet)", Problem, errors=(TranscriptNotReadyError,)
            ),
            Reply(
                422,
                "A line limit outside what the caption formats allow",
                Problem,
                errors=(InvalidLineLimitsError,),
            ),
            Reply(
                410,
                "The transcript was removed from storage; the job is now failed as "
                "`transcript_gone` and submitting the episode again transcribes it anew",
                Problem,
            ),
        ),
    ),
    Route(
        "PATCH",
        "/v1/transcriptions/{job_id}/speakers",
        handler="rename_speakers",
        operation_id="renameSpeakers",
        summary="Name the transcript's speakers, for this key",
        description="Gives names to speaker labels (`S1`, ...) or takes them away (null); "
        "labels not sent keep theirs. Only this key's transcripts and share links show them; "
        "every format renders with them from then on. The job document's `speaker_names` are "
        "the feed's hosts and guests, offered as names.",
        body=SpeakerNamesRequest,
        replies=(
            Reply(200, "The job, with the names.", Job, headers=_RATE),
            Reply(400, "Not a JSON object of the form `{names: {...}}`", Problem),
            _NOT_FOUND,
            Reply(
                409, "The job has not succeeded (yet)", Problem, errors=(TranscriptNotReadyError,)
            ),
            Reply(413, "Body larger than PODSCRIBE_MAX_REQUEST_BYTES", Problem),
            Reply(415, "Body is not application/json", Problem),
            Reply(
                422,
                "A label the transcript does not have, or a name that is empty, longer than 80 "
                "characters or holds control characters",
                Problem,
                errors=(UnknownSpeakerError, InvalidSpeakerNameError),
            ),
        ),
    ),
    Route(
        "POST",
        "/v1/transcriptions/{job_id}/links",
        handler="create_link",
        operation_id="createShareLink",
        summary="Make a public, revocable link per format of the transcript",
        description="The URLs (`/t/<token>.<ext>`) need no key and may be loaded from any "
        "origin (CORS `*`); they render with this key's speaker names. `podcast_transcript` "
        "holds the `<podcast:transcript>` lines to paste into the feed. Answers are cached "
        "publicly for PODSCRIBE_SHARE_LINK_MAX_AGE_SECONDS: a revoked link 404s here at once, "
        "but a CDN in front must be purged. At most PODSCRIBE_SHARE_LINKS_PER_JOB live links "
        "per key and job.",
        replies=(
            Reply(201, "The link.", ShareLink, headers=_RATE),
            _NOT_FOUND,
            Reply(
                409,
                "The job has not succeeded (yet), or the key has the most live links allowed",
                Problem,
                errors=(TranscriptNotReadyError, TooManyShareLinksError),
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/transcriptions/{job_id}/links",
        handler="list_links",
        operation_id="listShareLinks",
        summary="This key's live share links of the job",
        replies=(Reply(200, "The links, oldest first.", ShareLinkList, headers=_RATE), _NOT_FOUND),
    ),
    Route(
        "DELETE",
        "/v1/transcriptions/{job_id}/links/{link_id}",
        handler="revoke_link",
        operation_id="revokeShareLink",
        summary="Revoke a share link: every URL of it is 404 from now on",
        replies=(
            Reply(204, "Revoked.", headers=_RATE),
            Reply(
                404,
                "No such job or link, or not this key's",
                Problem,
                errors=(JobNotFoundError, ShareLinkNotFoundError, RouteNotFoundError),
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/search",
        handler="search",
        operation_id="searchTranscripts",
        summary="Search what was said across the caller's succeeded transcripts",
        description="Segments of this key's succeeded jobs that match `q`, best first "
        '(`ts_rank_cd`): words are ANDed and English-stemmed, `"quoted words"` are a phrase, '
        "a trailing `*` makes a word a prefix; nothing else is an operator. Each hit's "
        "`snippet` is HTML-escaped text whose only markup is `<mark>` around the matches. "
        "Pass `next_cursor` as `cursor`, with the same `q`, for the next page.",
        query=(
            Parameter(
                "q",
                {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH},
                'The query: `river bank`, `"fellow americans"`, `transcri*`.',
                required=True,
            ),
            Parameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": SEARCH_MAX_LIMIT},
                "Hits per page (default 20).",
            ),
            Parameter(
                "cursor",
                {"type": "string", "pattern": CURSOR_PATTERN},
                "A previous page's `next_cursor`, made for the same `q`.",
            ),
        ),
        replies=(
            Reply(200, "A page of hits.", SearchResults, headers=_RATE),
            Reply(
                400,
                "q missing, empty, too long, with control characters or no word; limit out "
                "of range; or a foreign cursor",
                Problem,
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/webhook-secret",
        handler="webhook_secret",
        operation_id="getWebhookSecret",
        summary="This key's webhook signing secret",
        description="The Standard Webhooks secret (`whsec_...`) that verifies the deliveries "
        "to this key's `callback_url`s; derived from the deployment's master secret, so it "
        "changes only when that is rotated. Answered with `Cache-Control: no-store`.",
        replies=(
            Reply(200, "The secret.", WebhookSecret, headers=_RATE),
            Reply(
                404,
                "No master secret is configured: webhooks are sent unsigned",
                Problem,
                errors=(WebhooksDisabledError,),
            ),
        ),
    ),
    Route(
        "POST",
        "/v1/csp-reports",
        handler="csp_reports",
        operation_id="reportCspViolation",
        summary="Where browsers report Content-Security-Policy violations",
        description="Named by the policy every answer carries (`report-uri`, and `report-to` "
        "through `Reporting-Endpoints`); browsers send reports without a key, so it is "
        "limited per client address on a budget of its own "
        "(PODSCRIBE_RATE_LIMIT_CSP_REPORTS_PER_IP). Bodies of at most "
        f"{MAX_BODY_BYTES} bytes; the last PODSCRIBE_CSP_REPORTS_MAX reports are kept, "
        "normalised (document origin and path, directive, blocked scheme and host, time).",
        auth=False,
        budget="rate_limit_csp_reports_per_ip",
        body_content=REPORT_SCHEMAS,
        replies=(
            Reply(204, "Received.", headers=_RATE),
            Reply(400, "Not JSON, or not the shape of its media type", Problem),
            Reply(413, f"Body larger than {MAX_BODY_BYTES} bytes", Problem),
            Reply(415, "Neither application/csp-report nor application/reports+json", Problem),
            Reply(
                429,
                "Too many reports from this IPv4 address or IPv6 /64; wait Retry-After seconds",
                Problem,
                headers=("Retry-After", *_RATE),
                errors=(RateLimitedError,),
            ),
        ),
    ),
    Route(
        "GET",
        "/v1/openapi.json",
        handler="openapi",
        operation_id="getOpenApi",
        summary="This document",
        auth=False,
        replies=(
            Reply(
                200,
                "The OpenAPI document.",
                content_types=("application/json",),
                content_schema={"type": "object"},
            ),
        ),
    ),
    Route(
        "GET",
        "/healthz",
        handler="healthz",
        operation_id="health",
        summary="Liveness; with `ready=1`, readiness (the database answers)",
        auth=False,
        query=(Parameter("ready", {"type": "string", "enum": ["0", "1", "true", "false"]}),),
        replies=(
            Reply(200, "Alive (or ready).", Health),
            Reply(400, "Unknown value of ready", Problem),
            Reply(503, "The database or storage is unavailable", Problem, headers=("Retry-After",)),
        ),
    ),
    Route(
        "GET",
        "/readyz",
        handler="readyz",
        operation_id="ready",
        summary="Readiness: the database answers",
        description="Unauthenticated; the database is probed at most once a second "
        "per instance, other requests reuse that answer.",
        auth=False,
        replies=(
            Reply(200, "Ready.", Health),
            Reply(503, "The database or storage is unavailable", Problem, headers=("Retry-After",)),
        ),
    ),
    # Share links (podscribe.api.share_links): public URLs for feeds and players, outside the
    # API (docs/api.md describes them): every refusal is the same 404.
    Route(
        "GET",
        "/t/{file}",
        handler="shared_transcript",
        operation_id="sharedTranscript",
        summary="A share link's transcript (no key; CORS *)",
        auth=False,
        budget="rate_limit_share_links_per_ip",
        documented=False,
        replies=(Reply(200, "The transcript.", content_types=("text/vtt",)),),
    ),
    Route(
        "OPTIONS",
        "/t/{file}",
        handler="shared_preflight",
        operation_id="sharedTranscriptPreflight",
        summary="The CORS preflight of a share link",
        auth=False,
        documented=False,
        replies=(Reply(204, "Any origin may GET it."),),
    ),
    # The web app (podscribe.api.web): on the API's origin, not part of the API. /assets/,
    # not /static/: Flask (under functions-framework) claims /static/ for itself.
    Route(
        "GET",
        "/",
        handler="web_page",
        operation_id="webApp",
        summary="The web app's page",
        auth=False,
        documented=False,
        replies=(Reply(200, "The page.", content_types=("text/html",)),),
    ),
    Route(
        "GET",
        "/assets/{name}",
        handler="web_asset",
        operation_id="webAsset",
        summary="One of the web app's scripts or its style sheet",
        auth=False,
        documented=False,
        replies=(
            Reply(200, "The file.", content_types=("text/javascript", "text/css")),
            Reply(404, "No such file", Problem, errors=(RouteNotFoundError,)),
        ),
    ),
)
"""Every operation of the API, in the order the OpenAPI document lists them (those
``documented``)."""


def url_map(routes: tuple[Route, ...] = ROUTES) -> Map:
    """The werkzeug :class:`Map` of ``routes``; each rule's endpoint is its ``operation_id``."""
    return Map(
        [Rule(route.rule, methods=[route.method], endpoint=route.operation_id) for route in routes],
        strict_slashes=False,
        merge_slashes=False,
    )
