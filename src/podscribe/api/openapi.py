"""The OpenAPI 3.1 document of the submit API, served at ``GET /v1/openapi.json``.

Built in Python rather than kept as a file so that the lists it shares with the code (the
job statuses, the transcript formats and their content types, the model names, the error
codes with their statuses) come from the code itself. Schemathesis runs it against the live
API in ``tests/integration/test_openapi_conformance.py``, which keeps its descriptions true.
"""

from __future__ import annotations

from typing import Any

from podscribe import __version__
from podscribe.api.problems import PROBLEM_CONTENT_TYPE
from podscribe.api.validation import MAX_URL_LENGTH, WHISPER_MODELS
from podscribe.errors import (
    DatabaseUnavailableError,
    EpisodeLinkError,
    InvalidRequestError,
    JobNotFoundError,
    MethodNotAllowedError,
    NotAnEpisodeError,
    NotApplePodcastsError,
    PayloadTooLargeError,
    PodscribeError,
    RateLimitedError,
    RouteNotFoundError,
    StorageError,
    TranscriptGoneError,
    TranscriptNotReadyError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from podscribe.jobs.store import JobStatus
from podscribe.storage import TRANSCRIPT_FORMATS

__all__ = ["API_ERRORS", "openapi_document"]

API_ERRORS: tuple[type[PodscribeError], ...] = (
    InvalidRequestError,
    UnauthorizedError,
    JobNotFoundError,
    RouteNotFoundError,
    MethodNotAllowedError,
    TranscriptNotReadyError,
    TranscriptGoneError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    NotApplePodcastsError,
    NotAnEpisodeError,
    EpisodeLinkError,
    RateLimitedError,
    PodscribeError,
    DatabaseUnavailableError,
    StorageError,
)
"""Every error the API answers with (``PodscribeError`` itself is ``internal_error``)."""

_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _codes(status: int) -> list[str]:
    return sorted({error.code for error in API_ERRORS if error.http_status == status})


def _problem(status: int, description: str, *, headers: list[str] | None = None) -> dict[str, Any]:
    codes = ", ".join(f"`{code}`" for code in _codes(status))
    response: dict[str, Any] = {
        "description": f"{description} (code: {codes})" if codes else description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": _ref("Problem")}},
    }
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response


_RATE_HEADERS = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"]


def _rate_limited() -> dict[str, Any]:
    return _problem(
        429,
        "Too many requests (reads and creates have separate budgets, per key and per IPv4 "
        "address or IPv6 /64); wait Retry-After seconds",
        headers=["Retry-After", *_RATE_HEADERS],
    )


def _unavailable() -> dict[str, Any]:
    return _problem(503, "The database or storage is unavailable", headers=["Retry-After"])


def _job_response(description: str, *, location: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {
        name: {"$ref": f"#/components/headers/{name}"} for name in _RATE_HEADERS
    }
    if location:
        headers["Location"] = {
            "description": "The job's URL.",
            "schema": {"type": "string", "format": "uri"},
        }
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": _ref("Job")}},
    }


def _schemas() -> dict[str, Any]:
    return {
        "SubmitRequest": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_URL_LENGTH,
                    "pattern": r"\S",
                    "description": "An Apple Podcasts episode link "
                    "(`https://podcasts.apple.com/<cc>/podcast/<slug>/id<show>?i=<episode>`).",
                    "examples": [
                        "https://podcasts.apple.com/us/podcast/the-daily/id1200361736?i=1000650000000"
                    ],
                },
                "language": {
                    "type": ["string", "null"],
                    "pattern": "^[A-Za-z]{2,3}$",
                    "description": "Spoken language (ISO 639 code); detected when absent.",
                },
                "model": {
                    "type": ["string", "null"],
                    "enum": [*WHISPER_MODELS, None],
                    "description": "faster-whisper model; the service default when absent.",
                },
                "callback_url": {
                    "type": ["string", "null"],
                    "format": "uri",
                    "maxLength": MAX_URL_LENGTH,
                    "description": "https URL that receives a POST when the job finishes. "
                    "Internal addresses are refused (SSRF guard).",
                },
            },
        },
        "Job": {
            "type": "object",
            "required": [
                "id",
                "status",
                "progress",
                "attempts",
                "source_url",
                "apple",
                "episode",
                "requested",
                "transcription",
                "timings",
                "error",
                "partial_transcript",
                "links",
            ],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": [status.value for status in JobStatus]},
                "progress": {"type": "number", "minimum": 0, "maximum": 1},
                "attempts": {"type": "integer", "minimum": 0},
                "source_url": {"type": "string"},
                "apple": {
                    "type": "object",
                    "required": ["collection_id", "episode_id"],
                    "properties": {
                        "collection_id": {"type": "integer"},
                        "episode_id": {"type": "integer"},
                    },
                },
                "episode": {
                    "type": ["object", "null"],
                    "description": "The resolved episode (show, title, audio_url, guid, "
                    "published_at, feed_url...); null until the job has resolved it.",
                    "additionalProperties": True,
                },
                "requested": {
                    "type": "object",
                    "properties": {"language": _NULLABLE_STRING, "model": _NULLABLE_STRING},
                },
                "transcription": {
                    "type": "object",
                    "description": "What transcribed it; filled in as the job runs.",
                    "properties": {
                        "language": _NULLABLE_STRING,
                        "model": _NULLABLE_STRING,
                        "device": _NULLABLE_STRING,
                        "compute_type": _NULLABLE_STRING,
                        "duration_seconds": {"type": ["number", "null"]},
                    },
                },
                "timings": {
                    "type": "object",
                    "properties": {
                        name: _TIME
                        for name in (
                            "created_at",
                            "queued_at",
                            "dispatched_at",
                            "started_at",
                            "finished_at",
                            "updated_at",
                        )
                    },
                },
                "error": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {
                                    "type": "string",
                                    "description": "Fixed per code; the detail is logged.",
                                },
                            },
                        },
                    ],
                    "description": "Why a failed job failed; null otherwise.",
                },
                "partial_transcript": {
                    "type": "object",
                    "required": ["available"],
                    "properties": {"available": {"type": "boolean"}},
                    "description": "Whether a running job has a checkpoint to read early "
                    "(`links.partial_transcript`).",
                },
                "links": {
                    "type": "object",
                    "required": ["self"],
                    "properties": {
                        "self": {"type": "string", "format": "uri"},
                        "transcripts": {
                            "type": "object",
                            "properties": {
                                fmt: {"type": "string", "format": "uri"}
                                for fmt in TRANSCRIPT_FORMATS
                            },
                        },
                        "partial_transcript": {"type": "string", "format": "uri"},
                    },
                },
            },
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details with a stable `code`.",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string", "format": "uri"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {
                    "type": "string",
                    "description": "What was wrong with the request (4xx); for other codes "
                    "the code's fixed message, never internal detail.",
                },
                "code": {
                    "type": "string",
                    "enum": sorted({error.code for error in API_ERRORS}),
                },
                "instance": {"type": "string"},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}, "database": {"type": "string"}},
        },
    }


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


def _job_id_parameter() -> dict[str, Any]:
    return {
        "name": "job_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The job's id (a UUID); anything else is 404.",
    }


def _paths() -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    common = {
        "401": _problem(401, "Missing or unknown API key"),
        "429": _rate_limited(),
        "503": _unavailable(),
    }
    return {
        "/v1/transcriptions": {
            "post": {
                "operationId": "submitTranscription",
                "summary": "Ask for an episode's transcript (or get the existing job)",
                "security": secured,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SubmitRequest")}},
                },
                "responses": {
                    "200": _job_response("The episode already has a job: that job.", location=True),
                    "202": _job_response("A new (or retried) job, queued.", location=True),
                    "400": _problem(400, "Malformed body or fields"),
                    **common,
                    "413": _problem(413, "Body larger than PODSCRIBE_MAX_REQUEST_BYTES"),
                    "415": _problem(415, "Body is not application/json"),
                    "422": _problem(422, "The url names no Apple Podcasts episode"),
                },
            }
        },
        "/v1/transcriptions/{job_id}": {
            "get": {
                "operationId": "getTranscription",
                "summary": "A job's status, progress, episode, timings and links",
                "security": secured,
                "parameters": [_job_id_parameter()],
                "responses": {
                    "200": _job_response("The job."),
                    **common,
                    "404": _problem(404, "No such job, or not visible to this key"),
                },
            }
        },
        "/v1/transcriptions/{job_id}/transcript": {
            "get": {
                "operationId": "getTranscript",
                "summary": "The transcript of a succeeded job, streamed",
                "security": secured,
                "parameters": [
                    _job_id_parameter(),
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": sorted(TRANSCRIPT_FORMATS)},
                        "description": "Transcript format (default json).",
                    },
                    {
                        "name": "partial",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean"},
                        "description": "A running job's transcript so far (its last checkpoint).",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The transcript.",
                        "content": {
                            content_type: {"schema": {}}
                            for content_type in sorted(set(TRANSCRIPT_FORMATS.values()))
                        },
                    },
                    "400": _problem(400, "Unknown format"),
                    **common,
                    "404": _problem(404, "No such job, or not visible to this key"),
                    "409": _problem(409, "The job has not succeeded (yet)"),
                    "410": _problem(
                        410,
                        "The transcript was removed from storage; the job is now failed as "
                        "`transcript_gone` and submitting the episode again transcribes it anew",
                    ),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness; with `ready=1`, readiness (the database answers)",
                "security": [],
                "parameters": [
                    {
                        "name": "ready",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Alive (or ready).",
                        "content": {"application/json": {"schema": _ref("Health")}},
                    },
                    "400": _problem(400, "Unknown value of ready"),
                    "503": _unavailable(),
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: the database answers",
                "description": "Unauthenticated; the database is probed at most once a second "
                "per instance, other requests reuse that answer.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Ready.",
                        "content": {"application/json": {"schema": _ref("Health")}},
                    },
                    "503": _unavailable(),
                },
            }
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
