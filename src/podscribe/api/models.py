"""The API's documents as pydantic models: what is answered and what is sent.

The job (:class:`Job`, not the row
:class:`podscribe.jobs.model.Job` it shows), the list of jobs
(:class:`JobList`), the error (:class:`Problem`, RFC 9457), the webhook event
(:class:`WebhookEvent`) and the health answer (:class:`Health`) are each written once, here
(the bodies accepted are :mod:`podscribe.api.request_bodies`);
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
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from podscribe.jobs import JobStatus

__all__ = [
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
    "ShareFormat",
    "ShareLink",
    "ShareLinkList",
    "SpeakerSuggestion",
    "Speakers",
    "TranscriptFormat",
    "TranscriptionSettings",
    "WebhookDelivery",
    "WebhookError",
    "WebhookEvent",
    "WebhookSecret",
]

TranscriptFormat = Literal["json", "srt", "vtt", "txt", "html", "podcast-json"]
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

    _absent_when_none = frozenset({"provenance"})
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    language: str | None
    model: str | None
    device: str | None
    compute_type: str | None
    duration_seconds: float | None
    source: Literal["model", "publisher"] | None = Field(
        description="`model` (transcribed here) or `publisher` (the feed's own "
        "`<podcast:transcript>`, normalised); null until the job succeeds.",
    )
    provenance: dict[str, Any] | None = Field(
        None,
        description="A publisher's transcript only: its `url`, declared `type`, `sha256`, "
        "`bytes`, `fetched_at` and `audio_duration_seconds` (the episode's declared length "
        "then).",
    )


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


ShareFormat = Literal["vtt", "srt", "json", "html", "txt"]
"""The extensions of a share link's URLs (``json`` is the Podcasting 2.0 JSON transcript)."""


class Speakers(_Document):
    """Who speaks in the transcript, as this key sees it."""

    enabled: bool = Field(
        description="Whether this key's transcripts carry speakers (a submission with "
        "`speakers: false` turns them off)."
    )
    labels: list[str] = Field(
        description="The transcript's speaker labels in order of first appearance; empty "
        "until it succeeded, or when no voices were told apart."
    )
    names: dict[str, str] = Field(description="The names this key gave labels.")


class SpeakerSuggestion(_Document):
    """A host or guest the feed names (``<podcast:person>``): a name to give a label."""

    name: str
    role: Literal["host", "guest"]


class ShareLink(_Document):
    """A public, revocable URL per format of this key's view of a transcript."""

    id: uuid.UUID
    token: str = Field(description="The unguessable part of the URLs (256 random bits).")
    urls: dict[ShareFormat, Uri] = Field(
        description="`/t/<token>.<ext>` per format, no key needed; `json` is the "
        "Podcasting 2.0 JSON transcript."
    )
    created_at: Timestamp
    podcast_transcript: str = Field(
        description="`<podcast:transcript>` elements of the URLs, ready to paste into the "
        "feed's `<item>`."
    )


class ShareLinkList(_Document):
    """This key's live share links of a job, oldest first."""

    items: list[ShareLink]


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
    speakers: Speakers
    speaker_names: list[SpeakerSuggestion] = Field(
        description="The feed's hosts and guests (`<podcast:person>`), offered as names for "
        "the labels; never put on them by themselves."
    )
    share_links: list[ShareLink] | None = Field(
        None,
        description="This key's live share links (``GET`` and ``PATCH .../speakers`` only; "
        "null in the ``POST`` answer and in lists).",
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
