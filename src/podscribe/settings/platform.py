"""Settings every part shares: the deployment profile, the database, storage, messaging.

Each class is one group of :class:`podscribe.settings.Settings`; a component whose
signature names a group reads only that group's fields (mypy holds it to that).
"""

from __future__ import annotations

import re
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from podscribe.settings.base import (
    Environment,
    SettingsGroup,
    variable,
)

__all__ = ["DatabaseSettings", "MessagingSettings", "ProfileSettings", "StorageSettings"]


class ProfileSettings(SettingsGroup):
    """Which deployment this is: profile, logging, project and region."""

    env: Environment = Field(
        "production",
        validation_alias=variable("PODSCRIBE_ENV"),
        description="Deployment profile: `production` (GCP), `local` (one machine) or `test`.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=variable("PODSCRIBE_LOG_LEVEL"), description="Log level."
    )
    project_id: str = Field(
        "podscribe-local",
        validation_alias=variable("PODSCRIBE_PROJECT_ID"),
        description="Google Cloud project id (Pub/Sub, Vertex AI, Cloud Trace links).",
    )
    region: str = Field(
        "us-central1",
        validation_alias=variable("PODSCRIBE_REGION"),
        description="Region of the Vertex AI jobs and other regional resources.",
    )


class DatabaseSettings(SettingsGroup):
    """The PostgreSQL database: a URL locally, the Cloud SQL connector in GCP."""

    database_url: SecretStr | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_DATABASE_URL"),
        description="PostgreSQL URL `postgresql://user:pass@host:port/db` (local profile, tests).",
    )
    cloudsql_connection_name: str | None = Field(
        None,
        validation_alias=variable("CLOUDSQL_CONNECTION_NAME"),
        description="Cloud SQL instance `project:region:instance`; selects the connector.",
    )
    db_name: str = Field(
        "podscribe", validation_alias=variable("PODSCRIBE_DB_NAME"), description="Database name."
    )
    db_user: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_DB_USER"),
        description="Database user for the Cloud SQL connector (IAM: the service account email "
        "without `.gserviceaccount.com`).",
    )
    db_password: SecretStr | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_DB_PASSWORD"),
        description="Database password for the Cloud SQL connector; unset means IAM auth.",
    )
    db_ip_type: Literal["private", "public", "psc"] = Field(
        "private",
        validation_alias=variable("PODSCRIBE_DB_IP_TYPE"),
        description="Which Cloud SQL address the connector uses.",
    )
    sqladmin_api_endpoint: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_SQLADMIN_API_ENDPOINT"),
        description="Override of the Cloud SQL Admin API endpoint (tests point it at a fake).",
    )
    db_pool_size: int = Field(
        5,
        ge=1,
        le=100,
        validation_alias=variable("PODSCRIBE_DB_POOL_SIZE"),
        description="Connections kept per process.",
    )
    db_wait_seconds: float = Field(
        60.0,
        ge=0,
        validation_alias=variable("PODSCRIBE_DB_WAIT_SECONDS"),
        description="How long startup waits for a late database before failing.",
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = urlsplit(value.get_secret_value()).scheme
            if scheme not in {"postgresql", "postgres", "postgresql+pg8000"}:
                raise ValueError("must be a postgresql:// URL")
        return value


_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class StorageSettings(ProfileSettings):
    """The transcripts bucket: Cloud Storage (or its emulator), or any S3 API (AWS, MinIO)."""

    # The S3 credentials are optional fields under the standard AWS names so that they can also
    # come from PODSCRIBE_SECRETS_DIR files; left unset, boto3's own chain finds them
    # (AWS_SHARED_CREDENTIALS_FILE, a web identity token, an instance role).

    storage_backend: Literal["gcs", "s3"] = Field(
        "gcs",
        validation_alias=variable("PODSCRIBE_STORAGE_BACKEND"),
        description="Where transcripts are stored: `gcs` (Cloud Storage, fake-gcs-server "
        "locally) or `s3` (AWS S3, MinIO or any S3 API).",
    )
    bucket: str = Field(
        "podscribe-transcripts",
        min_length=3,
        max_length=222,
        validation_alias=variable("PODSCRIBE_BUCKET"),
        description="Bucket for transcripts and checkpoints (Cloud Storage or S3).",
    )
    storage_emulator_host: str | None = Field(
        None,
        validation_alias=variable("STORAGE_EMULATOR_HOST"),
        description="Cloud Storage emulator URL (local profile).",
    )
    s3_endpoint_url: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_S3_ENDPOINT_URL"),
        description="S3 API endpoint `http(s)://host[:port]` (MinIO, moto); unset means AWS. "
        "When set, requests use path-style addressing.",
    )
    s3_region: str = Field(
        "us-east-1",
        pattern=r"^[a-z]{2}(-[a-z0-9]+)+$",
        validation_alias=variable("PODSCRIBE_S3_REGION"),
        description="S3 region (signing, and where a bucket `ensure_bucket` creates lives).",
    )
    aws_access_key_id: SecretStr | None = Field(
        None,
        validation_alias=variable("AWS_ACCESS_KEY_ID"),
        description="S3 access key id; unset means boto3's own credential chain.",
    )
    aws_secret_access_key: SecretStr | None = Field(
        None,
        validation_alias=variable("AWS_SECRET_ACCESS_KEY"),
        description="S3 secret access key, given with `AWS_ACCESS_KEY_ID`.",
    )
    aws_session_token: SecretStr | None = Field(
        None,
        validation_alias=variable("AWS_SESSION_TOKEN"),
        description="S3 session token for temporary credentials (optional).",
    )

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError("must be an http(s)://host[:port] URL")
            if parts.path.strip("/") or parts.query or parts.fragment:
                raise ValueError("must name only scheme, host and port (no path)")
        return value

    @model_validator(mode="after")
    def _s3_bucket_and_credentials(self) -> Self:
        if self.storage_backend == "s3" and not _S3_BUCKET.fullmatch(self.bucket):
            raise ValueError(
                f"PODSCRIBE_BUCKET {self.bucket!r} is not an S3 bucket name (3-63 lowercase "
                "letters, digits, dots and hyphens, starting and ending with a letter or digit)"
            )
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both or neither"
            )
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ValueError("AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        return self


class MessagingSettings(ProfileSettings):
    """Wake-ups for dispatch: a Pub/Sub topic (or its emulator), or a Redis stream."""

    wakeup_backend: Literal["pubsub", "redis-streams"] = Field(
        "pubsub",
        validation_alias=variable("PODSCRIBE_WAKEUP_BACKEND"),
        description="What carries wake-ups to dispatch: `pubsub` (GCP, the emulator locally) "
        "or `redis-streams` (the self-hosted stack; dispatch runs as "
        "`python -m podscribe.jobs.stream_consumer`).",
    )
    wakeup_redis_url: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_WAKEUP_REDIS_URL"),
        description="Redis holding the wake-up stream (`redis-streams`); unset: "
        "`PODSCRIBE_REDIS_URL`.",
    )
    wakeup_stream: str = Field(
        "podscribe:jobs",
        min_length=1,
        max_length=200,
        validation_alias=variable("PODSCRIBE_WAKEUP_STREAM"),
        description="Redis stream key the wake-ups are added to (`redis-streams`).",
    )
    wakeup_stream_max_length: int = Field(
        10_000,
        ge=100,
        le=10_000_000,
        validation_alias=variable("PODSCRIBE_WAKEUP_STREAM_MAX_LENGTH"),
        description="Approximate cap on the stream's entries (`XADD MAXLEN ~`): older "
        "wake-ups are trimmed, and the sweep re-wakes a queued job whose wake-up was lost so.",
    )
    wakeup_consumer_group: str = Field(
        "podscribe-dispatch",
        min_length=1,
        max_length=200,
        validation_alias=variable("PODSCRIBE_WAKEUP_CONSUMER_GROUP"),
        description="Consumer group the dispatch consumers share (each wake-up goes to one).",
    )
    wakeup_block_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        validation_alias=variable("PODSCRIBE_WAKEUP_BLOCK_SECONDS"),
        description="How long one `XREADGROUP` waits for a wake-up; also how soon a consumer "
        "notices SIGTERM and looks for abandoned wake-ups.",
    )
    wakeup_batch_size: int = Field(
        10,
        ge=1,
        le=1000,
        validation_alias=variable("PODSCRIBE_WAKEUP_BATCH_SIZE"),
        description="Wake-ups one read or takeover fetches at most (`COUNT`): bounds a "
        "consumer's memory.",
    )
    wakeup_claim_idle_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        validation_alias=variable("PODSCRIBE_WAKEUP_CLAIM_IDLE_SECONDS"),
        description="A wake-up unacknowledged this long (its dispatch failed transiently, or "
        "its consumer died) is claimed by a consumer again (`XAUTOCLAIM`): the retry backoff. "
        "Keep it above the slowest dispatch (an episode lookup and probe).",
    )
    wakeup_max_deliveries: int = Field(
        10,
        ge=2,
        le=1000,
        validation_alias=variable("PODSCRIBE_WAKEUP_MAX_DELIVERIES"),
        description="Deliveries of one wake-up before it is acknowledged as dead-lettered "
        "(logged; the sweep re-wakes its job while it is queued), as Pub/Sub's "
        "`max_delivery_attempts`.",
    )

    publish_timeout_seconds: float = Field(
        3.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_PUBLISH_TIMEOUT_SECONDS"),
        description="How long submit waits for Pub/Sub to accept a wake-up before answering "
        "anyway (the sweep re-sends it).",
    )
    pubsub_topic: str = Field(
        "podscribe-jobs",
        validation_alias=variable("PODSCRIBE_PUBSUB_TOPIC"),
        description="Pub/Sub topic that wakes dispatch.",
    )
    pubsub_emulator_host: str | None = Field(
        None,
        validation_alias=variable("PUBSUB_EMULATOR_HOST"),
        description="Pub/Sub emulator `host:port` (local profile).",
    )
