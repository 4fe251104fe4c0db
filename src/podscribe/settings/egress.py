"""Settings of every fetch made on a user's behalf (the SSRF guard and its caps).

Each class is one group of :class:`podscribe.settings.Settings`; a component whose
signature names a group reads only that group's fields (mypy holds it to that).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from podscribe.settings.base import (
    split_csv,
    variable,
)
from podscribe.settings.platform import ProfileSettings

__all__ = ["FetchSettings"]


class FetchSettings(ProfileSettings):
    """Fetching on users' behalf: the SSRF guard, Apple's endpoints, byte and time caps."""

    ssrf_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=variable("PODSCRIBE_SSRF_ALLOW"),
        description="Loopback `host:port` pairs the guard lets through; only with "
        "`PODSCRIBE_ENV=local`.",
    )
    allowed_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [80, 443],
        validation_alias=variable("PODSCRIBE_ALLOWED_PORTS"),
        description="Ports user-supplied URLs may use.",
    )
    itunes_api_base: str = Field(
        "https://itunes.apple.com",
        validation_alias=variable("PODSCRIBE_ITUNES_API_BASE"),
        description="Base URL of the iTunes lookup API.",
    )
    apple_web_base: str = Field(
        "https://podcasts.apple.com",
        validation_alias=variable("PODSCRIBE_APPLE_WEB_BASE"),
        description="Base URL of Apple's public episode pages (older episodes).",
    )
    lookup_cache_seconds: int = Field(
        900,
        ge=0,
        validation_alias=variable("PODSCRIBE_LOOKUP_CACHE_SECONDS"),
        description="How long an Apple lookup answer is reused.",
    )
    # Tracking prefixes (podtrac -> chartable -> podsights -> CDN -> signed URL) take 5-7 hops
    # on real episodes; 10 fits them with room and still stops a loop quickly.
    max_redirects: int = Field(
        10,
        ge=0,
        le=20,
        validation_alias=variable("PODSCRIBE_MAX_REDIRECTS"),
        description="Redirect hops a fetch may follow.",
    )
    max_download_bytes: int = Field(
        1_073_741_824,
        ge=1024,
        validation_alias=variable("PODSCRIBE_MAX_DOWNLOAD_BYTES"),
        description="Largest audio download.",
    )
    max_document_bytes: int = Field(
        10_485_760,
        ge=1024,
        validation_alias=variable("PODSCRIBE_MAX_DOCUMENT_BYTES"),
        description="Largest lookup answer, episode page or RSS feed.",
    )
    max_publisher_transcript_bytes: int = Field(
        5_242_880,
        ge=1024,
        validation_alias=variable("PODSCRIBE_MAX_PUBLISHER_TRANSCRIPT_BYTES"),
        description="Largest publisher's transcript (`<podcast:transcript>`) read; a larger "
        "one is refused and the episode is transcribed instead.",
    )
    download_timeout_seconds: float = Field(
        1800.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_DOWNLOAD_TIMEOUT_SECONDS"),
        description="Total time one download may take.",
    )
    idle_timeout_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_IDLE_TIMEOUT_SECONDS"),
        description="Longest silence from a server before a fetch is abandoned.",
    )
    document_timeout_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_DOCUMENT_TIMEOUT_SECONDS"),
        description="Total time fetching one lookup answer, episode page or RSS feed may take.",
    )
    max_episode_seconds: int = Field(
        6 * 3600,
        ge=60,
        validation_alias=variable("PODSCRIBE_MAX_EPISODE_SECONDS"),
        description="Longest episode accepted (`too_long` beyond).",
    )

    @field_validator("ssrf_allow", "allowed_ports", mode="before")
    @classmethod
    def _fetch_lists(cls, value: Any) -> Any:
        return split_csv(value)

    @field_validator("ssrf_allow")
    @classmethod
    def _loopback_pairs(cls, value: list[str]) -> list[str]:
        for pair in value:
            host, sep, port = pair.rpartition(":")
            host = host.strip("[]")
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{pair!r} is not host:port")
            if host != "localhost":
                try:
                    is_loopback = ipaddress.ip_address(host).is_loopback
                except ValueError:
                    is_loopback = False
                if not is_loopback:
                    raise ValueError(f"{pair!r}: only loopback hosts may be allowed")
        return value

    @model_validator(mode="after")
    def _escape_hatch_only_locally(self) -> Self:
        if self.ssrf_allow and self.env != "local":
            raise ValueError(
                "PODSCRIBE_SSRF_ALLOW is honoured only with PODSCRIBE_ENV=local; refusing to "
                f"start with it set under PODSCRIBE_ENV={self.env}"
            )
        return self
