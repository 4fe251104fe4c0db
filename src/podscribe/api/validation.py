"""What a request must look like before anything acts on it.

Order matters and is cheap-first: media type (415), size (413, read with a cap so an
oversized or endless body never sits in memory), JSON syntax (400), and only then the fields
(400, by the pydantic model :class:`~podscribe.api.request_bodies.SubmitRequest`, its errors
mapped to our messages by :func:`request_error`) and the episode link (422, by shape alone: the job
resolves it, so submit makes no request on the caller's behalf).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from werkzeug.wrappers import Request

from podscribe.api.request_bodies import MAX_URL_LENGTH, WHISPER_MODELS, SubmitRequest
from podscribe.errors import (
    EpisodeLinkError,
    InvalidLineLimitsError,
    InvalidRequestError,
    PayloadTooLargeError,
    UnsupportedLanguageError,
    UnsupportedMediaTypeError,
)
from podscribe.podcasts import EpisodeRef, parse_episode_url
from podscribe.settings import Settings
from podscribe.storage import TRANSCRIPT_FORMATS
from podscribe.transcription.formats import RenderOptions
from podscribe.transcription.languages import LANGUAGE_LIST_URL, model_languages
from podscribe.transcription.model import served_model_name

__all__ = [
    "MAX_URL_LENGTH",
    "WHISPER_MODELS",
    "Submission",
    "TranscriptQuery",
    "client_ip",
    "parse_submit_request",
    "parse_transcript_query",
    "read_json_body",
    "request_error",
]

_JSON_TYPES = ("application/json",)
_MAX_APPLE_ID = 2**63 - 1  # the jobs table stores them as bigint


@dataclass(frozen=True)
class Submission:
    """A validated ``POST /v1/transcriptions`` body.

    Attributes:
        url: the episode link as sent (stripped).
        episode: the Apple ids it names (the job's identity).
        language: the language asked for (ISO 639-1/3 code, lower case), or None to detect it.
        model: the faster-whisper model asked for, or None for the service default.
        callback_url: where to POST when the job finishes, or None.
        transcript_model: the model the job will run (what the deployment serves for
            ``model``): with the episode and ``transcript_language``, the job's identity.
        transcript_language: the language the transcript will be in, ``""`` when it is to
            be detected (an English-only model's is always ``en``).
        speakers: whether this caller's transcript files carry speaker labels.
        speakers_expected: the caller's hint of the number of speakers, or None.
        force: transcribe even when the feed carries the publisher's transcript.
    """

    url: str
    episode: EpisodeRef
    language: str | None = None
    model: str | None = None
    callback_url: str | None = None
    transcript_model: str = ""
    transcript_language: str = ""
    speakers: bool = True
    speakers_expected: int | None = None
    force: bool = False


@dataclass(frozen=True)
class TranscriptQuery:
    """The query of ``GET .../transcript``.

    Attributes:
        format: one of ``TRANSCRIPT_FORMATS``.
        partial: serve a running job's checkpoint (the segments done so far) instead.
        max_line_chars: the longest caption line asked for (None: the format's own).
        max_lines: lines per caption asked for (None: the format's own).
    """

    format: str
    partial: bool = False
    max_line_chars: int | None = None
    max_lines: int | None = None


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


def parse_submit_request(request: Request, settings: Settings) -> Submission:
    """Validate a submission.

    Args:
        request: the HTTP request.
        settings: ``max_request_bytes``, the models served (``allowed_models``,
            ``WHISPER_MODEL``) and the SSRF guard's settings are read.

    Returns:
        The submission.

    Raises:
        UnsupportedMediaTypeError, PayloadTooLargeError, InvalidRequestError: see
            :func:`read_json_body`; also a body that is not an object, unknown or mistyped
            fields, or an unacceptable ``callback_url``.
        UnsupportedLanguageError: the model the job would run cannot transcribe ``language``.
        EpisodeLinkError: ``url`` names no Apple Podcasts episode (the subclasses
            ``NotApplePodcastsError`` and ``NotAnEpisodeError`` say why).
    """
    body = read_json_body(request, settings.max_request_bytes)
    try:
        fields = SubmitRequest.model_validate(body, context={"settings": settings})
    except ValidationError as error:
        raise request_error(error) from None
    episode = parse_episode_url(fields.url)
    if max(episode.collection_id, episode.episode_id) > _MAX_APPLE_ID:
        raise EpisodeLinkError(f"the ids in {fields.url!r:.200} are too large to be Apple ids")
    model = served_model_name(settings, fields.model)
    _check_language(fields.language, model)
    languages = model_languages(model)
    only = next(iter(languages)) if len(languages) == 1 else None
    return Submission(
        url=fields.url,
        episode=episode,
        language=fields.language,
        model=fields.model,
        callback_url=fields.callback_url,
        transcript_model=model,
        # Asking an English-only model for "en" or for nothing is the same transcript.
        transcript_language=fields.language or only or "",
        speakers=fields.speakers,
        speakers_expected=fields.speakers_expected,
        force=fields.force,
    )


def _check_language(language: str | None, model: str) -> None:
    """A language the model cannot transcribe would spend a GPU on the wrong transcript."""
    if language is None:
        return
    known = model_languages(model)
    if language not in known:
        listed = ", ".join(sorted(known)) if len(known) <= 3 else f"{len(known)} languages"
        raise UnsupportedLanguageError(
            f"'language' {language!r} is not one {model} transcribes ({listed}; the codes: "
            f"{LANGUAGE_LIST_URL})"
        )


_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})
_FIELD_ORDER = tuple(SubmitRequest.model_fields)


def request_error(error: ValidationError) -> InvalidRequestError:
    """The one translation of pydantic's complaints into our ``invalid_request`` messages.

    The first problem is reported, in the order the checks were always made: the body's type,
    unknown fields (all named), then each field in turn.

    Args:
        error: what ``SubmitRequest.model_validate`` raised.

    Returns:
        The error to raise, with the message the hand-written checks gave.
    """
    problems = error.errors(include_url=False)
    if any(problem["type"] in _NOT_AN_OBJECT for problem in problems):
        return InvalidRequestError('the body must be a JSON object like {"url": "..."}')
    unknown = sorted(
        str(problem["loc"][0]) for problem in problems if problem["type"] == "extra_forbidden"
    )
    if unknown:
        return InvalidRequestError(f"unknown field(s): {', '.join(unknown)}")
    first = min(problems, key=lambda problem: _position(problem["loc"]))
    return InvalidRequestError(_field_message(first))


def _position(loc: tuple[int | str, ...]) -> int:
    name = loc[0] if loc else ""
    return _FIELD_ORDER.index(name) if name in _FIELD_ORDER else len(_FIELD_ORDER)


_FIELD_RULES = {
    "language": "'language' must be a 2- or 3-letter language code like 'en'",
    "model": f"'model' must be one of: {', '.join(WHISPER_MODELS)}",
}


_NOT_STRINGS = {
    "speakers_expected": "'speakers_expected' must be a whole number from 1 to 10 when given",
    "speakers": "'speakers' must be true or false",
    "force": "'force' must be true or false",
}
"""The fields that are not strings, whatever pydantic found wrong with them."""


def _field_message(problem: ErrorDetails) -> str:
    name = str(problem["loc"][0]) if problem["loc"] else "body"
    kind = problem["type"]
    given = problem.get("input")
    if kind == "podscribe_invalid":
        return str(problem["msg"])
    if kind == "string_too_long":
        return f"'{name}' is longer than {MAX_URL_LENGTH} characters"
    if name == "url":
        return "'url' is required: an Apple Podcasts episode link"
    if name in _NOT_STRINGS:
        return _NOT_STRINGS[name]
    if kind in {"string_type", "string_too_short"} or not isinstance(given, str) or not given:
        return f"'{name}' must be a non-empty string when given"
    return _FIELD_RULES.get(name, f"'{name}' is invalid: {problem['msg']}")


def parse_transcript_query(args: dict[str, str]) -> TranscriptQuery:
    """Validate ``?format=...&partial=...&max_line_chars=...&max_lines=...``.

    Raises:
        InvalidRequestError: an unknown format, a malformed ``partial``, or a line limit
            that is not a whole number.
        InvalidLineLimitsError: a line limit outside what the caption formats allow
            (:class:`~podscribe.transcription.formats.RenderOptions` judges).
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
    max_line_chars, max_lines = _line_limit(args, "max_line_chars"), _line_limit(args, "max_lines")
    try:
        RenderOptions(speaker_names={}, max_line_chars=max_line_chars, max_lines=max_lines)
    except ValueError as error:
        raise InvalidLineLimitsError(str(error)) from None
    return TranscriptQuery(
        format=fmt, partial=partial, max_line_chars=max_line_chars, max_lines=max_lines
    )


_WHOLE_NUMBER = re.compile(r"[0-9]+")
_OUT_OF_ANY_RANGE = 10**9
"""What a limit of 10 digits or more is judged as: out of every range whatever its digits
(never converted digit by digit)."""


def _line_limit(args: dict[str, str], name: str) -> int | None:
    """A line limit as a whole number (0, 1, 2, ...) of any size: ``RenderOptions`` judges
    the range (422); only what is not a whole number is 400."""
    text = args.get(name)
    if text is None:
        return None
    if not _WHOLE_NUMBER.fullmatch(text):
        raise InvalidRequestError(f"{name} must be a whole number, not {text!r:.20}")
    return int(text) if len(text) < 10 else _OUT_OF_ANY_RANGE


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
