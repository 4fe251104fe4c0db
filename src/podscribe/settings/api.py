"""Settings of the submit API and its clients: keys, links, rate limits, webhooks, the CLI.

Each class is one group of :class:`podscribe.settings.Settings`; a component whose
signature names a group reads only that group's fields (mypy holds it to that).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from podscribe.settings.base import (
    SettingsGroup,
    split_csv,
    variable,
)
from podscribe.settings.platform import ProfileSettings

__all__ = ["ApiSettings", "CliSettings", "RateLimitSettings", "WebhookSettings"]


class ApiSettings(ProfileSettings):
    """The submit API: keys, request bounds, links and proxies."""

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        validation_alias=variable("PODSCRIBE_API_KEYS"),
        description="Accepted API keys, comma-separated (Secret Manager in production).",
    )
    max_request_bytes: int = Field(
        16_384,
        ge=256,
        validation_alias=variable("PODSCRIBE_MAX_REQUEST_BYTES"),
        description="Largest accepted request body.",
    )
    trusted_proxy_hops: int | None = Field(
        None,
        ge=0,
        le=10,
        validation_alias=variable("PODSCRIBE_TRUSTED_PROXY_HOPS"),
        description="Proxies in front of submit that append to `X-Forwarded-For` (the client "
        "IP is that many entries from the end); default 1 in production (Google's front end), "
        "0 elsewhere (the socket's peer).",
    )
    public_base_url: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_PUBLIC_BASE_URL"),
        description="Base URL of every link returned to callers and of the OpenAPI `servers` "
        "entry; when set, no request header changes a link. Unset: the request's `Host` (and "
        "`X-Forwarded-Proto`/`X-Forwarded-Host` only from `PODSCRIBE_TRUSTED_PROXY_HOPS` "
        "proxies).",
    )
    idempotency_ttl_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 30,
        validation_alias=variable("PODSCRIBE_IDEMPOTENCY_TTL_HOURS"),
        description="How long a `POST`'s `Idempotency-Key` and its stored answer are kept "
        "(a repeat within it gets the first answer); the sweep deletes older ones.",
    )
    csp_reports_max: int = Field(
        1000,
        ge=1,
        le=100_000,
        validation_alias=variable("PODSCRIBE_CSP_REPORTS_MAX"),
        description="Most CSP violation reports kept (`POST /v1/csp-reports`): a Redis list "
        "capped at this length, or, while Redis is down, as many in each submit instance's "
        "memory; newer reports replace the oldest.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_lists(cls, value: Any) -> Any:
        return split_csv(value)

    @property
    def api_key_values(self) -> list[str]:
        """The accepted API keys in clear (only for constant-time comparison)."""
        return [key.get_secret_value() for key in self.api_keys]

    @property
    def proxy_hops(self) -> int:
        """``X-Forwarded-For`` entries appended by trusted proxies (see ``trusted_proxy_hops``)."""
        if self.trusted_proxy_hops is not None:
            return self.trusted_proxy_hops
        return 1 if self.env == "production" else 0


class RateLimitSettings(SettingsGroup):
    """Rate limits: Redis, the budgets and the in-memory backstop."""

    redis_url: str | None = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=variable("PODSCRIBE_REDIS_URL"),
        description="Redis for rate limits; unreachable means the in-memory backstop limits.",
    )
    rate_limit_per_key: int = Field(
        60,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_PER_KEY"),
        description="Creating requests (POST, DELETE) per window per API key; reads have "
        "their own budget.",
    )
    rate_limit_per_ip: int = Field(
        120,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_PER_IP"),
        description="Creating requests per window per client IPv4 address or IPv6 /64, and "
        "every request without a valid key (so guessing keys is held to it).",
    )
    rate_limit_reads_per_key: int = Field(
        600,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_READS_PER_KEY"),
        description="Reads (GET) per window per API key: polling once a second fits many "
        "times over.",
    )
    rate_limit_reads_per_ip: int = Field(
        1200,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_READS_PER_IP"),
        description="Reads (GET) with a valid key per window per client IPv4 address or IPv6 /64.",
    )
    rate_limit_csp_reports_per_ip: int = Field(
        60,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_CSP_REPORTS_PER_IP"),
        description="CSP violation reports (`POST /v1/csp-reports`, sent by browsers without "
        "a key) per window per client IPv4 address or IPv6 /64; a budget of their own.",
    )
    rate_limit_share_links_per_ip: int = Field(
        300,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_SHARE_LINKS_PER_IP"),
        description="Share link reads (`GET /t/<token>.<ext>`, public, no key) per window per "
        "client IPv4 address or IPv6 /64; a budget of their own.",
    )
    share_link_max_age_seconds: int = Field(
        86_400,
        ge=0,
        le=31_536_000,
        validation_alias=variable("PODSCRIBE_SHARE_LINK_MAX_AGE_SECONDS"),
        description="`Cache-Control: public, max-age` of share link answers. A revoked link "
        "404s here at once, but caches (a CDN in front, players) may serve their copy this "
        "long: purge the CDN on revoke.",
    )
    share_links_per_job: int = Field(
        10,
        ge=1,
        le=100,
        validation_alias=variable("PODSCRIBE_SHARE_LINKS_PER_JOB"),
        description="Live share links one key may have for one job.",
    )
    rate_limit_window_seconds: int = Field(
        60,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_WINDOW_SECONDS"),
        description="Sliding window length.",
    )
    rate_limit_backstop_keys: int = Field(
        10_000,
        ge=1,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_BACKSTOP_KEYS"),
        description="Most clients the in-memory backstop tracks (bounds its memory).",
    )
    rate_limit_prefix: str = Field(
        "podscribe:rl:",
        min_length=1,
        max_length=64,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_PREFIX"),
        description="Prefix of the rate-limit keys in Redis (lets deployments share one Redis).",
    )
    rate_limit_redis_timeout_seconds: float = Field(
        0.25,
        gt=0,
        le=5,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_REDIS_TIMEOUT_SECONDS"),
        description="Connect and read timeout of the rate-limit Redis client; an outage costs "
        "this much before the backstop takes over.",
    )
    rate_limit_redis_retry_seconds: float = Field(
        2.0,
        ge=0,
        validation_alias=variable("PODSCRIBE_RATE_LIMIT_REDIS_RETRY_SECONDS"),
        description="After Redis failed, how long the backstop alone limits before Redis is "
        "tried again.",
    )


class WebhookSettings(SettingsGroup):
    """Webhooks: the master signing secret, delivery tries and the retry horizon."""

    webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_WEBHOOK_SECRET"),
        description="Master webhook secret: each API key's signing secret (Standard Webhooks, "
        "`whsec_...`) is derived from it, so rotating it rotates every key's; unset: unsigned.",
    )
    webhook_secret_version: str | None = Field(
        None,
        pattern=r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$",
        validation_alias=variable("PODSCRIBE_WEBHOOK_SECRET_VERSION"),
        description="Secret Manager version (`projects/P/secrets/S/versions/V`) holding the "
        "master webhook secret, read at first use; for parts that cannot mount secrets "
        "(Vertex jobs).",
    )
    secret_manager_endpoint: str = Field(
        "https://secretmanager.googleapis.com",
        validation_alias=variable("PODSCRIBE_SECRET_MANAGER_ENDPOINT"),
        description="Secret Manager API endpoint (tests point it at a fake).",
    )
    webhook_attempts: int = Field(
        3,
        ge=1,
        le=10,
        validation_alias=variable("PODSCRIBE_WEBHOOK_ATTEMPTS"),
        description="Quick tries per delivery round (0.5 s doubling to 10 s between); a round "
        "that fails waits for the sweep's next one.",
    )
    webhook_retry_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 14,
        validation_alias=variable("PODSCRIBE_WEBHOOK_RETRY_HOURS"),
        description="How long a failing delivery is retried (by the sweep) before it is "
        "abandoned, counted from the job's end.",
    )
    webhook_backoff_initial_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_WEBHOOK_BACKOFF_INITIAL_SECONDS"),
        description="Wait after a delivery's first failed round; each later wait doubles.",
    )
    webhook_backoff_max_seconds: float = Field(
        3600.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_WEBHOOK_BACKOFF_MAX_SECONDS"),
        description="Longest wait between a delivery's rounds.",
    )


class CliSettings(SettingsGroup):
    """The `podscribe` CLI, a client of any deployment."""

    api_url: str = Field(
        "http://127.0.0.1:8080",
        validation_alias=variable("PODSCRIBE_API_URL"),
        description="CLI: base URL of the submit API to talk to.",
    )
    api_key: SecretStr | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_API_KEY"),
        description="CLI: the API key it sends as `Authorization: Bearer`.",
    )
