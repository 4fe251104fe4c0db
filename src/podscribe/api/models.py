"""The API's documents as pydantic models: what is accepted, what is answered, what is sent.

The request body (:class:`SubmitRequest`), the job (:class:`Job`, not the row
:class:`podscribe.jobs.model.Job` it shows), the list of jobs
(:class:`JobList`), the error (:class:`Problem`, RFC 9457), the webhook event
(:class:`WebhookEvent`) and the health answer (:class:`Health`) are each written once, here;
validation (:mod:`podscribe.api.validation`), rendering and the OpenAPI document
(:mod:`podscribe.api.openapi`, from ``model_json_schema``) all come from them, so the three can
no longer drift apart.

Responses are rendered with ``render()`` (``model_dump(mode="json")``). A few keys are absent
rather than null when they do not apply (a job's transcript links before it succeeded, a
problem's ``instance``, a webhook's ``error`` or ``transcripts``): ``render`` drops exactly
those.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from podscribe.egress.guard import check_url
from podscribe.jobs import JobStatus
from podscribe.settings import Settings

__all__ = [
    "MAX_URL_LENGTH",
    "WHISPER_MODELS",
    "AppleIds",
    "Health",
    "Job",
    "JobError",
    "JobLinks",
    "JobList",
    "JobTimings",
    "PartialTranscript",
    "Problem",
    "RequestedSettings",
    "SearchResult",
    "SearchResults",
    "SubmitRequest",
    "TranscriptFormat",
    "TranscriptionSettings",
    "WebhookDelivery",
    "WebhookError",
    "WebhookEvent",
    "WebhookSecret",
    "WhisperModel",
]

MAX_URL_LENGTH = 2048

WhisperModel = Literal[
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
]
"""Model names a caller may ask for: faster-whisper's published names, never a path or a
repository (a caller must not make the job load arbitrary files or download arbitrary
weights)."""

WHISPER_MODELS: tuple[str, ...] = get_args(WhisperModel)

TranscriptFormat = Literal["json", "srt", "vtt", "txt"]
"""The keys of :data:`podscribe.storage.TRANSCRIPT_FORMATS` (a unit test keeps them equal)."""

Uri = Annotated[str, Field(json_schema_extra={"format": "uri"})]
Timestamp = Annotated[
    datetime,
    # Python's isoformat ("+00:00"), as the API always wrote it, not pydantic's "Z".
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Document(BaseModel):
    """A response document: every field is required in its schema unless listed as absent.

    Attributes:
        _absent_when_none: fields left out of the rendered document (not null) when None.
    """

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)
    _absent_when_none: ClassVar[frozenset[str]] = frozenset()

    def render(self) -> dict[str, Any]:
        """The document as JSON-ready data, without the keys that do not apply."""
        return self.model_dump(mode="json", exclude=self._absent())

    def _absent(self) -> dict[Any, Any]:
        """The ``exclude`` argument that leaves out the absent keys, nested documents too."""
        absent: dict[Any, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None and name in self._absent_when_none:
                absent[name] = True
            elif isinstance(value, _Document) and (inner := value._absent()):
                absent[name] = inner
            elif isinstance(value, list):
                items = {
                    index: inner
                    for index, item in enumerate(value)
                    if isinstance(item, _Document) and (inner := item._absent())
                }
                if items:
                    absent[name] = items
        return absent


class SubmitRequest(BaseModel):
    """The body of ``POST /v1/transcriptions``.

    Validated with ``context={"settings": ...}``: the checks that depend on the deployment (the
    models it serves, the SSRF guard on ``callback_url``) read it. The episode link itself is
    judged afterwards by :func:`podscribe.api.validation.parse_submit_request` (its own 422s).
    Messages of the checks written here travel as ``podscribe_invalid`` errors;
    :mod:`podscribe.api.validation` maps pydantic's own errors to our messages.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        pattern=r"\S",
        description="An Apple Podcasts episode link "
        "(`https://podcasts.apple.com/<cc>/podcast/<slug>/id<show>?i=<episode>`).",
        examples=["https://podcasts.apple.com/us/podcast/the-daily/id1200361736?i=1000650000000"],
    )
    language: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2,3}$",
        description="Spoken language (ISO 639 code); detected when absent.",
    )
    model: WhisperModel | None = Field(
        default=None, description="faster-whisper model; the service default when absent."
    )
    callback_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        json_schema_extra={"format": "uri"},
        description="https URL that receives a POST when the job finishes. "
        "Internal addresses are refused (SSRF guard).",
    )
    speakers: bool = Field(
        default=True,
        description="Label who speaks when (diarization). `false`: this caller's transcript "
        "files carry no speaker labels.",
    )
    speakers_expected: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="How many speakers the episode has, when known; estimated when absent. "
        "Taken from the first request for the episode.",
    )
    force: bool = Field(
        default=False,
        description="Transcribe even when the feed carries the publisher's own transcript "
        "(`<podcast:transcript>`), which is otherwise used as is, with no GPU.",
    )

    @field_validator("url")
    @classmethod
    def _strip_url(cls, url: str) -> str:
        return url.strip()

    @field_validator("language")
    @classmethod
    def _lower_language(cls, language: str | None) -> str | None:
        return language.lower() if language else None

    @field_validator("model")
    @classmethod
    def _served_model(cls, model: str | None, info: ValidationInfo) -> str | None:
        settings = _settings(info)
        if model is not None and model not in settings.allowed_models:
            served = ", ".join(settings.allowed_models) or "none (the deployment's default only)"
            raise _invalid(
                f"'model' {model!r} is not served here; models that may be asked for: {served}"
            )
        return model

    @field_validator("callback_url")
    @classmethod
    def _guarded_callback(cls, url: str | None, info: ValidationInfo) -> str | None:
        """The callback URL must be https and pass every check of the SSRF guard but DNS.

        Its host is looked up, and the answer checked, when the callback is sent; at submit
        time only its form is judged (no lookup: submit makes no request on a caller's behalf).
        """
        if url is None:
            return None
        if not url.lower().startswith("https://"):
            raise _invalid("'callback_url' must be an https:// URL")
        decision = check_url(url, _settings(info), resolver=_assume_public)
        if not decision.allowed:
            raise _invalid(f"'callback_url' is refused: {decision.reason}")
        return url


def _settings(info: ValidationInfo) -> Settings:
    context = info.context or {}
    settings = context.get("settings")
    if not isinstance(settings, Settings):
        raise TypeError("SubmitRequest is validated with context={'settings': Settings}")
    return settings


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("podscribe_invalid", "{message}", {"message": message})


def _assume_public(host: str, port: int) -> list[str]:
    """A resolver that answers without asking DNS (see ``SubmitRequest._guarded_callback``)."""
    return ["192.88.98.1"]  # a globally routable placeholder; the sender checks the real one


class AppleIds(_Document):
    """The Apple ids a job is for (its identity)."""

    collection_id: int
    episode_id: int


class RequestedSettings(_Document):
    """What the caller asked for."""

    language: str | None
    model: str | None


class TranscriptionSettings(_Document):
    """What transcribed it; filled in as the job runs."""

    language: str | None
    model: str | None
    device: str | None
    compute_type: str | None
    duration_seconds: float | None


class JobTimings(_Document):
    """When the job moved (ISO 8601)."""

    created_at: Timestamp | None
    queued_at: Timestamp | None
    dispatched_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    updated_at: Timestamp | None


class JobError(_Document):
    """Why a failed job failed."""

    code: str
    message: str = Field(description="Fixed per code; the detail is logged.")


class PartialTranscript(_Document):
    """Whether a running job has a checkpoint to read early (``links.partial_transcript``)."""

    available: bool


class JobLinks(_Document):
    """The job's own URL, and its transcripts' once there are any."""

    _absent_when_none = frozenset({"transcripts", "partial_transcript"})
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    self: Uri
    transcripts: dict[TranscriptFormat, Uri] | None = None
    partial_transcript: Uri | None = None


class WebhookDelivery(_Document):
    """The caller's own webhook for a job: where it goes and how its delivery stands."""

    url: str
    status: Literal["none", "pending", "delivered", "abandoned"] = Field(
        description="`none` until the job ends; `pending` while tried (with backoff, for "
        "`PODSCRIBE_WEBHOOK_RETRY_HOURS`); `delivered` once a 2xx came back (never sent "
        "again); `abandoned` when given up."
    )
    attempts: int = Field(ge=0, description="Delivery rounds so far.")
    last_status: int | None = Field(description="The receiver's last HTTP status.")
    next_attempt_at: Timestamp | None = Field(description="When a pending delivery is tried next.")
    delivered_at: Timestamp | None


class WebhookSecret(_Document):
    """The caller's webhook signing secret (``GET /v1/webhook-secret``)."""

    secret: str = Field(
        description="`whsec_<base64>`: verifies this key's deliveries (Standard Webhooks)."
    )


class Job(_Document):
    """A job as the API shows it (``POST`` and ``GET`` alike)."""

    id: uuid.UUID
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    attempts: int = Field(ge=0)
    source_url: str
    apple: AppleIds
    episode: dict[str, Any] | None = Field(
        description="The resolved episode (show, title, audio_url, guid, published_at, "
        "feed_url...); null until the job has resolved it."
    )
    requested: RequestedSettings
    transcription: TranscriptionSettings
    timings: JobTimings
    error: JobError | None = Field(description="Why a failed job failed; null otherwise.")
    partial_transcript: PartialTranscript
    links: JobLinks
    webhook: WebhookDelivery | None = Field(
        None,
        description="This key's webhook (``GET`` only; null in the ``POST`` answer, and when "
        "the key registered no `callback_url`).",
    )


class JobList(_Document):
    """A page of the caller's jobs (``GET /v1/transcriptions``, design contract 9)."""

    items: list[Job]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page.")


class SearchResult(_Document):
    """One segment that matched a search (``GET /v1/search``, design contract 9)."""

    id: uuid.UUID = Field(description="The job whose transcript holds the segment.")
    title: str = Field(description="The episode's title.")
    show: str = Field(description="The show's name (empty when unknown).")
    start: float = Field(description="Seconds from the start of the episode.")
    end: float = Field(description="Seconds from the start of the episode.")
    snippet: str = Field(
        description="The segment's text, HTML-escaped, with each match in "
        "`<mark>...</mark>`: the only markup it holds."
    )


class SearchResults(_Document):
    """A page of search hits, best first (``GET /v1/search``)."""

    items: list[SearchResult]
    next_cursor: str | None = Field(description="Pass as ``cursor`` (with the same ``q``).")


class Problem(_Document):
    """RFC 9457 problem details with a stable ``code``."""

    _absent_when_none = frozenset({"instance"})
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    type: Uri
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(
        description="What was wrong with the request (4xx); for other codes the code's fixed "
        "message, never internal detail."
    )
    code: str
    instance: str | None = None


class WebhookError(_Document):
    """A failed job's code and its public message."""

    code: str | None
    message: str | None


class WebhookEvent(_Document):
    """What a ``callback_url`` receives when the job ends: ``error`` or ``transcripts``."""

    _absent_when_none = frozenset({"error", "transcripts"})
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    type: str = Field(description="`transcription.succeeded` or `transcription.failed`.")
    id: uuid.UUID
    status: JobStatus
    finished_at: Timestamp | None
    error: WebhookError | None = None
    transcripts: dict[TranscriptFormat, Uri] | None = None


class Health(_Document):
    """The answer of ``/healthz`` and ``/readyz``."""

    _absent_when_none = frozenset({"database"})
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    status: str
    database: str | None = None
