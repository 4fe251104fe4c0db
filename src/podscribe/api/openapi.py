"""The OpenAPI 3.1 document of the submit API, served at ``GET /v1/openapi.json``.

Generated, not written: ``paths`` from the route table (:data:`podscribe.api.routes.ROUTES`),
``components.schemas`` from the pydantic models (:mod:`podscribe.api.models`; OpenAPI 3.1 is
JSON Schema 2020-12, which is what pydantic writes), and the error codes listed with each
status from the errors themselves. Schemathesis runs it against the live API in
``tests/drills/test_hostile_input.py``, which keeps the two in agreement.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from podscribe import __version__
from podscribe.api.models import (
    Health,
    Job,
    JobList,
    Problem,
    SearchResults,
    ShareLink,
    ShareLinkList,
    WebhookEvent,
    WebhookSecret,
)
from podscribe.api.problems import PROBLEM_CONTENT_TYPE
from podscribe.api.request_bodies import SpeakerNamesRequest, SubmitRequest
from podscribe.api.routes import RATE_HEADERS, ROUTES, Parameter, Reply, Route
from podscribe.errors import (
    DatabaseUnavailableError,
    EpisodeLinkError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidLineLimitsError,
    InvalidRequestError,
    InvalidSpeakerNameError,
    JobActiveError,
    JobNotFoundError,
    LaunchBudgetExhaustedError,
    MethodNotAllowedError,
    NotAnEpisodeError,
    NotApplePodcastsError,
    PayloadTooLargeError,
    PodscribeError,
    RateLimitedError,
    RouteNotFoundError,
    ShareLinkNotFoundError,
    StorageError,
    TooManyActiveJobsError,
    TooManyShareLinksError,
    TranscriptGoneError,
    TranscriptNotReadyError,
    UnauthorizedError,
    UnknownSpeakerError,
    UnsupportedLanguageError,
    UnsupportedMediaTypeError,
    WebhooksDisabledError,
)

__all__ = ["API_ERRORS", "openapi_document"]

API_ERRORS: tuple[type[PodscribeError], ...] = (
    InvalidRequestError,
    UnauthorizedError,
    JobNotFoundError,
    RouteNotFoundError,
    WebhooksDisabledError,
    ShareLinkNotFoundError,
    MethodNotAllowedError,
    TranscriptNotReadyError,
    JobActiveError,
    TooManyShareLinksError,
    TranscriptGoneError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    NotApplePodcastsError,
    NotAnEpisodeError,
    EpisodeLinkError,
    UnsupportedLanguageError,
    UnknownSpeakerError,
    InvalidSpeakerNameError,
    InvalidLineLimitsError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    RateLimitedError,
    TooManyActiveJobsError,
    LaunchBudgetExhaustedError,
    PodscribeError,
    DatabaseUnavailableError,
    StorageError,
)
"""Every error the API answers with (``PodscribeError`` itself is ``internal_error``)."""

_MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (SubmitRequest, "validation"),
    (SpeakerNamesRequest, "validation"),
    (ShareLink, "serialization"),
    (ShareLinkList, "serialization"),
    (Job, "serialization"),
    (JobList, "serialization"),
    (SearchResults, "serialization"),
    (Problem, "serialization"),
    (WebhookEvent, "serialization"),
    (WebhookSecret, "serialization"),
    (Health, "serialization"),
)
_REF = "#/components/schemas/{model}"
_ADMISSION = (
    Reply(401, "Missing or unknown API key", Problem),
    Reply(
        429,
        "Too many requests (reads and creates have separate budgets, per key and per IPv4 "
        "address or IPv6 /64), or, for a submission that would start a job, past the key's "
        "active jobs or launches per hour; wait Retry-After seconds",
        Problem,
        headers=("Retry-After", *RATE_HEADERS),
    ),
    Reply(503, "The database or storage is unavailable", Problem, headers=("Retry-After",)),
)
"""What every authenticated route may answer before its handler runs."""


_PATH_PARAMETERS = {
    "job_id": "The job's id (a UUID); anything else is 404.",
    "link_id": "The share link's id (a UUID); anything else is 404.",
}


def _schemas() -> dict[str, Any]:
    _, definitions = models_json_schema(_MODELS, ref_template=_REF)
    schemas: dict[str, Any] = definitions["$defs"]
    # The codes are the errors' own, not a list kept in the model.
    schemas["Problem"]["properties"]["code"]["enum"] = sorted({e.code for e in API_ERRORS})
    return schemas


def _reply(reply: Reply) -> dict[str, Any]:
    description = reply.description
    if reply.model is Problem:
        errors = reply.errors or API_ERRORS
        codes = sorted({e.code for e in errors if e.http_status == reply.status})
        if codes:
            description += f" (code: {', '.join(f'`{code}`' for code in codes)})"
    rendered: dict[str, Any] = {"description": description}
    headers: dict[str, Any] = {
        name: {"$ref": f"#/components/headers/{name}"} for name in reply.headers
    }
    if reply.location:
        headers["Location"] = {
            "description": "The job's URL.",
            "schema": {"type": "string", "format": "uri"},
        }
    if headers:
        rendered["headers"] = headers
    links = _links(reply)
    if links:
        rendered["links"] = links
    if reply.model is not None:
        media = PROBLEM_CONTENT_TYPE if reply.model is Problem else "application/json"
        rendered["content"] = {media: {"schema": {"$ref": _REF.format(model=reply.model.__name__)}}}
    elif reply.content_types:
        rendered["content"] = {
            media: {"schema": dict(reply.content_schema)} for media in reply.content_types
        }
    return rendered


def _links(reply: Reply) -> dict[str, Any]:
    """OpenAPI ``links`` of an answer: the operations the ids in its body address.

    A job (submitted, fetched or renamed) leads to every operation on
    ``/v1/transcriptions/{job_id}``; a new share link to its revocation. Clients and
    schemathesis' stateful tests follow them from one call to the next.
    """
    if reply.model is Job:
        return {
            route.operation_id: {
                "operationId": route.operation_id,
                "parameters": {"job_id": "$response.body#/id"},
            }
            for route in ROUTES
            if route.documented and route.path_parameters == ["job_id"]
        }
    if reply.model is ShareLink:
        return {
            "revokeShareLink": {
                "operationId": "revokeShareLink",
                "parameters": {"job_id": "$request.path.job_id", "link_id": "$response.body#/id"},
            }
        }
    return {}


def _query(parameter: Parameter, where: str = "query") -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "name": parameter.name,
        "in": where,
        "required": parameter.required,
        "schema": parameter.schema,
    }
    if parameter.description:
        rendered["description"] = parameter.description
    return rendered


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "security": [{"bearer": []}] if route.auth else [],
    }
    if route.description:
        operation["description"] = route.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": _PATH_PARAMETERS[name],
        }
        for name in route.path_parameters
    ]
    parameters += [_query(parameter) for parameter in route.query]
    parameters += [_query(parameter, "header") for parameter in route.headers]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=route.body.__name__)}}
            },
        }
    elif route.body_content:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media, schema in route.body_content.items()},
        }
    replies = sorted((*route.replies, *(_ADMISSION if route.auth else ())), key=_status)
    operation["responses"] = {str(reply.status): _reply(reply) for reply in replies}
    return operation


def _status(reply: Reply) -> int:
    return reply.status


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in (route for route in ROUTES if route.documented):
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return paths


def _headers() -> dict[str, Any]:
    integer = {"schema": {"type": "string", "pattern": "^[0-9]+$"}}
    return {
        "Retry-After": {"description": "Seconds to wait before trying again.", **integer},
        "RateLimit-Limit": {"description": "Requests per window (tightest limit).", **integer},
        "RateLimit-Remaining": {"description": "Requests left in the window.", **integer},
        "RateLimit-Reset": {"description": "Seconds until a request is admitted again.", **integer},
        "RateLimit-Policy": {
            "description": "`<limit>;w=<window seconds>`.",
            "schema": {"type": "string"},
        },
    }


def openapi_document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document.

    Args:
        server_url: the API's base URL, listed as its one server.

    Returns:
        The document as a JSON-ready dict.
    """
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "podscribe",
            "version": __version__,
            "description": "Podcast episodes in, transcripts out. Every error is "
            "`application/problem+json` with a stable `code`.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "headers": _headers(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from PODSCRIBE_API_KEYS.",
                }
            },
        },
    }
