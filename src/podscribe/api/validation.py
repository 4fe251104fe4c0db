"""What a request must look like before anything acts on it.

Order matters and is cheap-first: media type (415), size (413, read with a cap so an
oversized or endless body never sits in memory), JSON syntax (400), fields (400), and only
then the episode link (422, by shape alone: the job resolves it, so submit makes no request
on the caller's behalf).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from podscribe.egress.guard import check_url
from podscribe.errors import (
    EpisodeLinkError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from podscribe.podcasts import EpisodeRef, parse_episode_url
from podscribe.settings import Settings
from podscribe.storage import TRANSCRIPT_FORMATS

__all__ = [
    "MAX_URL_LENGTH",
    "WHISPER_MODELS",
    "SubmitRequest",
    "TranscriptQuery",
    "client_ip",
    "parse_submit_request",
    "parse_transcript_query",
    "read_json_body",
]

MAX_URL_LENGTH = 2048
WHISPER_MODELS = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "distil-small.en",
    "medium",
    "medium.en",
    "distil-medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large",
    "distil-large-v2",
    "distil-large-v3",
    "large-v3-turbo",
    "turbo",
)
"""Model names a caller may ask for: faster-whisper's published names, never a path or a
repository (a caller must not make the job load arbitrary files or download arbitrary
weights)."""

_SUBMIT_FIELDS = frozenset({"url", "language", "model", "callback_url"})
_JSON_TYPES = ("application/json",)
_LANGUAGE_MAX = 3
_MAX_APPLE_ID = 2**63 - 1  # the jobs table stores them as bigint


@dataclass(frozen=True)
class SubmitRequest:
    """A validated ``POST /v1/transcriptions`` body.

    Attributes:
        url: the episode link as sent.
        episode: the Apple ids it names (the job's identity).
        language: the language asked for (ISO 639-1/3 code), or None to detect it.
        model: the faster-whisper model asked for, or None for the service default.
        callback_url: where to POST when the job finishes, or None.
    """

    url: str
    episode: EpisodeRef
    language: str | None = None
    model: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class TranscriptQuery:
    """The query of ``GET .../transcript``.

    Attributes:
        format: one of ``TRANSCRIPT_FORMATS``.
        partial: serve a running job's checkpoint (the segments done so far) instead.
    """

    format: str
    partial: bool = False


def read_json_body(request: Request, max_bytes: int) -> Any:
    """Check the media type and size of a JSON body, and parse it.

    Raises:
        UnsupportedMediaTypeError: the body is not ``application/json``.
        PayloadTooLargeError: the body is larger than ``max_bytes``.
        InvalidRequestError: the body is not UTF-8 JSON.
    """
    if request.mimetype not in _JSON_TYPES:
        raise UnsupportedMediaTypeError(
            f"send the body as application/json, not {request.mimetype or '(no content type)'}"
        )
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in {"utf-8", "utf8"}:
        raise UnsupportedMediaTypeError(f"send the body as UTF-8, not {charset}")
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise PayloadTooLargeError(f"the body is {declared} bytes; the limit is {max_bytes}")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"the body is larger than the limit of {max_bytes} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidRequestError(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidRequestError("the body is nested too deeply") from None


def parse_submit_request(request: Request, settings: Settings) -> SubmitRequest:
    """Validate a submission.

    Args:
        request: the HTTP request.
        settings: ``max_request_bytes`` and the SSRF guard's settings are read.

    Returns:
        The submission.

    Raises:
        UnsupportedMediaTypeError, PayloadTooLargeError, InvalidRequestError: see
            :func:`read_json_body`; also a body that is not an object, unknown or mistyped
            fields, or an unacceptable ``callback_url``.
        EpisodeLinkError: ``url`` names no Apple Podcasts episode (the subclasses
            ``NotApplePodcastsError`` and ``NotAnEpisodeError`` say why).
    """
    body = read_json_body(request, settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidRequestError('the body must be a JSON object like {"url": "..."}')
    unknown = sorted(set(body) - _SUBMIT_FIELDS)
    if unknown:
        raise InvalidRequestError(f"unknown field(s): {', '.join(unknown)}")
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequestError("'url' is required: an Apple Podcasts episode link")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequestError(f"'url' is longer than {MAX_URL_LENGTH} characters")
    language = _optional_string(body, "language")
    if language is not None and not (
        language.isascii() and language.isalpha() and 2 <= len(language) <= _LANGUAGE_MAX
    ):
        raise InvalidRequestError("'language' must be a 2- or 3-letter language code like 'en'")
    model = _optional_string(body, "model")
    if model is not None and model not in WHISPER_MODELS:
        raise InvalidRequestError(f"'model' must be one of: {', '.join(WHISPER_MODELS)}")
    if model is not None and model not in settings.allowed_models:
        served = ", ".join(settings.allowed_models) or "none (the deployment's default only)"
        raise InvalidRequestError(
            f"'model' {model!r} is not served here; models that may be asked for: {served}"
        )
    callback_url = _optional_string(body, "callback_url")
    if callback_url is not None:
        _check_callback_url(callback_url, settings)
    episode = parse_episode_url(url.strip())
    if max(episode.collection_id, episode.episode_id) > _MAX_APPLE_ID:
        raise EpisodeLinkError(f"the ids in {url.strip()!r:.200} are too large to be Apple ids")
    return SubmitRequest(
        url=url.strip(),
        episode=episode,
        language=language.lower() if language else None,
        model=model,
        callback_url=callback_url,
    )


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"'{name}' must be a non-empty string when given")
    return value


def _assume_public(host: str, port: int) -> list[str]:
    """A resolver that answers without asking DNS (see :func:`_check_callback_url`)."""
    return ["192.88.98.1"]  # a globally routable placeholder; the sender checks the real one


def _check_callback_url(url: str, settings: Settings) -> None:
    """The callback URL must be https and pass every check of the SSRF guard but DNS.

    Its host is looked up, and the answer checked, when the callback is sent; at submit time
    only its form is judged (no lookup: submit makes no request on a caller's behalf).
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequestError(f"'callback_url' is longer than {MAX_URL_LENGTH} characters")
    if not url.lower().startswith("https://"):
        raise InvalidRequestError("'callback_url' must be an https:// URL")
    decision = check_url(url, settings, resolver=_assume_public)
    if not decision.allowed:
        raise InvalidRequestError(f"'callback_url' is refused: {decision.reason}")


def parse_transcript_query(args: dict[str, str]) -> TranscriptQuery:
    """Validate ``?format=...&partial=...``.

    Raises:
        InvalidRequestError: an unknown format, or a malformed ``partial``.
    """
    fmt = args.get("format", "json")
    if fmt not in TRANSCRIPT_FORMATS:
        raise InvalidRequestError(
            f"format must be one of {', '.join(sorted(TRANSCRIPT_FORMATS))}, not {fmt!r:.40}"
        )
    partial_text = args.get("partial", "false").lower()
    if partial_text not in {"true", "false", "1", "0"}:
        raise InvalidRequestError("partial must be true or false")
    partial = partial_text in {"true", "1"}
    return TranscriptQuery(format=fmt, partial=partial)


def client_ip(request: Request, proxy_hops: int) -> str:
    """The caller's address, for per-IP limits.

    With ``proxy_hops`` trusted proxies in front, each appending the address it saw to
    ``X-Forwarded-For``, the client is that many entries from the end; entries further left
    are whatever the client chose to send and are ignored.

    Args:
        request: the HTTP request.
        proxy_hops: trusted proxies in front of the function (``settings.proxy_hops``).

    Returns:
        A normalised IP address string, or ``unknown``.
    """
    candidate: str | None = request.remote_addr
    if proxy_hops > 0:
        forwarded = [
            part.strip()
            for header in request.headers.getlist("X-Forwarded-For")
            for part in header.split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxy_hops:
            candidate = forwarded[-proxy_hops]
    try:
        return str(ipaddress.ip_address((candidate or "").strip("[]")))
    except ValueError:
        return "unknown"
