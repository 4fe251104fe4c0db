"""Settings every part shares: the deployment profile, the database, storage, messaging.

Each class is one group of :class:`podscribe.settings.Settings`; a component whose
signature names a group reads only that group's fields (mypy holds it to that).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

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


class StorageSettings(ProfileSettings):
    """The transcripts bucket (Cloud Storage, or its emulator)."""

    bucket: str = Field(
        "podscribe-transcripts",
        min_length=3,
        validation_alias=variable("PODSCRIBE_BUCKET"),
        description="Cloud Storage bucket for transcripts and checkpoints.",
    )
    storage_emulator_host: str | None = Field(
        None,
        validation_alias=variable("STORAGE_EMULATOR_HOST"),
        description="Cloud Storage emulator URL (local profile).",
    )


class MessagingSettings(ProfileSettings):
    """The Pub/Sub topic that wakes dispatch (or its emulator)."""

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
