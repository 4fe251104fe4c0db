"""The bodies the API accepts, as pydantic models: validation and the OpenAPI schemas both
come from them.

:class:`SubmitRequest` (``POST /v1/transcriptions``) is validated with
``context={"settings": ...}``: the checks that depend on the deployment (the models it serves,
the SSRF guard on ``callback_url``) read it. :class:`SpeakerNamesRequest` is the body of
``PATCH /v1/transcriptions/{job_id}/speakers``. What the API answers is
:mod:`podscribe.api.models`.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from podscribe.egress.guard import check_url
from podscribe.settings import Settings

__all__ = [
    "MAX_URL_LENGTH",
    "WHISPER_MODELS",
    "SpeakerNamesRequest",
    "SubmitRequest",
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

    @field_validator("speakers_expected", mode="before")
    @classmethod
    def _whole_speakers(cls, value: object) -> object:
        """``3.0`` is the integer 3 in JSON Schema (and so in the OpenAPI document): taken as
        such; any other float is still refused by the strict model."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

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


class SpeakerNamesRequest(BaseModel):
    """The body of ``PATCH /v1/transcriptions/{job_id}/speakers``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    names: dict[str, str | None] = Field(
        max_length=100,
        description="Label (`S1`, ...) to a name (trimmed, 1-80 characters, no control "
        "characters), or null to remove the label's name; labels not sent keep theirs.",
        examples=[{"S1": "Ann Example", "S2": None}],
    )
