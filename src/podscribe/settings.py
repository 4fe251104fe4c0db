"""The one configuration model of podscribe.

Every part (submit, dispatch, the Vertex job, the local profile) reads its configuration
through :func:`get_settings`; nothing else in the package reads the environment. Each field
names its environment variable explicitly (``PODSCRIBE_*`` for the service, ``WHISPER_*``
for the transcription engine, and the variables Google's own libraries honour), so the
README's configuration table, Terraform's function environments and the Kubernetes manifests
can all be checked against this one list.

Production reads the same names: Secret Manager values arrive as environment variables
(Cloud Functions ``secret_environment_variables``) or as files in ``PODSCRIBE_SECRETS_DIR``.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from podscribe.errors import SettingsError

Environment = Literal["local", "test", "production"]
Launcher = Literal["vertex", "local", "kubernetes"]
WhisperDevice = Literal["auto", "cpu", "cuda"]


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _env(name: str) -> Any:
    """Field alias helper: the environment variable a field is read from."""
    return AliasChoices(name)


class Settings(BaseSettings):
    """podscribe's configuration, one field per environment variable.

    Attributes are documented by their ``description``; ``tests/unit/test_readme_config.py``
    keeps the README's table equal to this model.
    """

    model_config = SettingsConfigDict(
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # --- profile -------------------------------------------------------------------------
    env: Environment = Field(
        "production",
        validation_alias=_env("PODSCRIBE_ENV"),
        description="Deployment profile: `production` (GCP), `local` (one machine) or `test`.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("PODSCRIBE_LOG_LEVEL"), description="Log level."
    )
    project_id: str = Field(
        "podscribe-local",
        validation_alias=_env("PODSCRIBE_PROJECT_ID"),
        description="Google Cloud project id (Pub/Sub, Vertex AI, Cloud Trace links).",
    )
    region: str = Field(
        "us-central1",
        validation_alias=_env("PODSCRIBE_REGION"),
        description="Region of the Vertex AI jobs and other regional resources.",
    )

    # --- database ------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_DATABASE_URL"),
        description="PostgreSQL URL `postgresql://user:pass@host:port/db` (local profile, tests).",
    )
    cloudsql_connection_name: str | None = Field(
        None,
        validation_alias=_env("CLOUDSQL_CONNECTION_NAME"),
        description="Cloud SQL instance `project:region:instance`; selects the connector.",
    )
    db_name: str = Field(
        "podscribe", validation_alias=_env("PODSCRIBE_DB_NAME"), description="Database name."
    )
    db_user: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_DB_USER"),
        description="Database user for the Cloud SQL connector (IAM: the service account email "
        "without `.gserviceaccount.com`).",
    )
    db_password: SecretStr | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_DB_PASSWORD"),
        description="Database password for the Cloud SQL connector; unset means IAM auth.",
    )
    db_ip_type: Literal["private", "public", "psc"] = Field(
        "private",
        validation_alias=_env("PODSCRIBE_DB_IP_TYPE"),
        description="Which Cloud SQL address the connector uses.",
    )
    sqladmin_api_endpoint: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_SQLADMIN_API_ENDPOINT"),
        description="Override of the Cloud SQL Admin API endpoint (tests point it at a fake).",
    )
    db_pool_size: int = Field(
        5,
        ge=1,
        le=100,
        validation_alias=_env("PODSCRIBE_DB_POOL_SIZE"),
        description="Connections kept per process.",
    )
    db_wait_seconds: float = Field(
        60.0,
        ge=0,
        validation_alias=_env("PODSCRIBE_DB_WAIT_SECONDS"),
        description="How long startup waits for a late database before failing.",
    )

    # --- jobs ----------------------------------------------------------------------------
    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        validation_alias=_env("PODSCRIBE_MAX_ATTEMPTS"),
        description="Launches a job gets before it fails for good.",
    )
    lease_seconds: int = Field(
        300,
        ge=10,
        validation_alias=_env("PODSCRIBE_LEASE_SECONDS"),
        description="A running job's lease; its heartbeat renews it, the sweep reclaims it.",
    )
    dispatch_lease_seconds: int = Field(
        1800,
        ge=10,
        validation_alias=_env("PODSCRIBE_DISPATCH_LEASE_SECONDS"),
        description="How long a launched job may take to start (GPU provisioning) before the "
        "sweep re-queues it.",
    )
    requeue_after_seconds: int = Field(
        120,
        ge=0,
        validation_alias=_env("PODSCRIBE_REQUEUE_AFTER_SECONDS"),
        description="A queued job older than this is re-woken by the sweep (lost message).",
    )

    # --- submit API ----------------------------------------------------------------------
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("PODSCRIBE_API_KEYS"),
        description="Accepted API keys, comma-separated (Secret Manager in production).",
    )
    max_request_bytes: int = Field(
        16_384,
        ge=256,
        validation_alias=_env("PODSCRIBE_MAX_REQUEST_BYTES"),
        description="Largest accepted request body.",
    )
    redis_url: str | None = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=_env("PODSCRIBE_REDIS_URL"),
        description="Redis for rate limits; unreachable means the in-memory backstop limits.",
    )
    rate_limit_per_key: int = Field(
        60,
        ge=1,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_PER_KEY"),
        description="Creating requests (POST, DELETE) per window per API key; reads have "
        "their own budget.",
    )
    rate_limit_per_ip: int = Field(
        120,
        ge=1,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_PER_IP"),
        description="Creating requests per window per client IPv4 address or IPv6 /64, and "
        "every request without a valid key (so guessing keys is held to it).",
    )
    rate_limit_reads_per_key: int = Field(
        600,
        ge=1,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_READS_PER_KEY"),
        description="Reads (GET) per window per API key: polling once a second fits many "
        "times over.",
    )
    rate_limit_reads_per_ip: int = Field(
        1200,
        ge=1,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_READS_PER_IP"),
        description="Reads (GET) with a valid key per window per client IPv4 address or IPv6 /64.",
    )
    rate_limit_window_seconds: int = Field(
        60,
        ge=1,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_WINDOW_SECONDS"),
        description="Sliding window length.",
    )
    rate_limit_backstop_keys: int = Field(
        10_000,
        ge=1,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_BACKSTOP_KEYS"),
        description="Most clients the in-memory backstop tracks (bounds its memory).",
    )
    rate_limit_prefix: str = Field(
        "podscribe:rl:",
        min_length=1,
        max_length=64,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_PREFIX"),
        description="Prefix of the rate-limit keys in Redis (lets deployments share one Redis).",
    )
    rate_limit_redis_timeout_seconds: float = Field(
        0.25,
        gt=0,
        le=5,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_REDIS_TIMEOUT_SECONDS"),
        description="Connect and read timeout of the rate-limit Redis client; an outage costs "
        "this much before the backstop takes over.",
    )
    rate_limit_redis_retry_seconds: float = Field(
        2.0,
        ge=0,
        validation_alias=_env("PODSCRIBE_RATE_LIMIT_REDIS_RETRY_SECONDS"),
        description="After Redis failed, how long the backstop alone limits before Redis is "
        "tried again.",
    )
    trusted_proxy_hops: int | None = Field(
        None,
        ge=0,
        le=10,
        validation_alias=_env("PODSCRIBE_TRUSTED_PROXY_HOPS"),
        description="Proxies in front of submit that append to `X-Forwarded-For` (the client "
        "IP is that many entries from the end); default 1 in production (Google's front end), "
        "0 elsewhere (the socket's peer).",
    )
    publish_timeout_seconds: float = Field(
        3.0,
        gt=0,
        validation_alias=_env("PODSCRIBE_PUBLISH_TIMEOUT_SECONDS"),
        description="How long submit waits for Pub/Sub to accept a wake-up before answering "
        "anyway (the sweep re-sends it).",
    )
    pubsub_topic: str = Field(
        "podscribe-jobs",
        validation_alias=_env("PODSCRIBE_PUBSUB_TOPIC"),
        description="Pub/Sub topic that wakes dispatch.",
    )
    public_base_url: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_PUBLIC_BASE_URL"),
        description="Base URL of every link returned to callers and of the OpenAPI `servers` "
        "entry; when set, no request header changes a link. Unset: the request's `Host` (and "
        "`X-Forwarded-Proto`/`X-Forwarded-Host` only from `PODSCRIBE_TRUSTED_PROXY_HOPS` "
        "proxies).",
    )

    webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_WEBHOOK_SECRET"),
        description="Signs webhook bodies (`Podscribe-Signature`, HMAC-SHA256); unset: unsigned.",
    )
    webhook_secret_version: str | None = Field(
        None,
        pattern=r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$",
        validation_alias=_env("PODSCRIBE_WEBHOOK_SECRET_VERSION"),
        description="Secret Manager version (`projects/P/secrets/S/versions/V`) holding the "
        "webhook secret, read at first use; for parts that cannot mount secrets (Vertex jobs).",
    )
    secret_manager_endpoint: str = Field(
        "https://secretmanager.googleapis.com",
        validation_alias=_env("PODSCRIBE_SECRET_MANAGER_ENDPOINT"),
        description="Secret Manager API endpoint (tests point it at a fake).",
    )
    webhook_attempts: int = Field(
        3,
        ge=1,
        le=10,
        validation_alias=_env("PODSCRIBE_WEBHOOK_ATTEMPTS"),
        description="Tries per webhook delivery (exponential backoff between).",
    )

    # --- storage -------------------------------------------------------------------------
    bucket: str = Field(
        "podscribe-transcripts",
        min_length=3,
        validation_alias=_env("PODSCRIBE_BUCKET"),
        description="Cloud Storage bucket for transcripts and checkpoints.",
    )

    # --- fetching on behalf of users (SSRF guard) -----------------------------------------
    ssrf_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("PODSCRIBE_SSRF_ALLOW"),
        description="Loopback `host:port` pairs the guard lets through; only with "
        "`PODSCRIBE_ENV=local`.",
    )
    allowed_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [80, 443],
        validation_alias=_env("PODSCRIBE_ALLOWED_PORTS"),
        description="Ports user-supplied URLs may use.",
    )
    itunes_api_base: str = Field(
        "https://itunes.apple.com",
        validation_alias=_env("PODSCRIBE_ITUNES_API_BASE"),
        description="Base URL of the iTunes lookup API.",
    )
    apple_web_base: str = Field(
        "https://podcasts.apple.com",
        validation_alias=_env("PODSCRIBE_APPLE_WEB_BASE"),
        description="Base URL of Apple's public episode pages (older episodes).",
    )
    lookup_cache_seconds: int = Field(
        900,
        ge=0,
        validation_alias=_env("PODSCRIBE_LOOKUP_CACHE_SECONDS"),
        description="How long an Apple lookup answer is reused.",
    )
    # Tracking prefixes (podtrac -> chartable -> podsights -> CDN -> signed URL) take 5-7 hops
    # on real episodes; 10 fits them with room and still stops a loop quickly.
    max_redirects: int = Field(
        10,
        ge=0,
        le=20,
        validation_alias=_env("PODSCRIBE_MAX_REDIRECTS"),
        description="Redirect hops a fetch may follow.",
    )
    max_download_bytes: int = Field(
        1_073_741_824,
        ge=1024,
        validation_alias=_env("PODSCRIBE_MAX_DOWNLOAD_BYTES"),
        description="Largest audio download.",
    )
    max_document_bytes: int = Field(
        10_485_760,
        ge=1024,
        validation_alias=_env("PODSCRIBE_MAX_DOCUMENT_BYTES"),
        description="Largest lookup answer, episode page or RSS feed.",
    )
    download_timeout_seconds: float = Field(
        1800.0,
        gt=0,
        validation_alias=_env("PODSCRIBE_DOWNLOAD_TIMEOUT_SECONDS"),
        description="Total time one download may take.",
    )
    idle_timeout_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("PODSCRIBE_IDLE_TIMEOUT_SECONDS"),
        description="Longest silence from a server before a fetch is abandoned.",
    )
    document_timeout_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("PODSCRIBE_DOCUMENT_TIMEOUT_SECONDS"),
        description="Total time fetching one lookup answer, episode page or RSS feed may take.",
    )
    max_episode_seconds: int = Field(
        6 * 3600,
        ge=60,
        validation_alias=_env("PODSCRIBE_MAX_EPISODE_SECONDS"),
        description="Longest episode accepted (`too_long` beyond).",
    )

    # --- launching the transcription job --------------------------------------------------
    launcher: Launcher = Field(
        "vertex",
        validation_alias=_env("PODSCRIBE_LAUNCHER"),
        description="How dispatch runs a job: `vertex`, `local` (a process) or `kubernetes`.",
    )
    vertex_image: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_VERTEX_IMAGE"),
        description="The job container image (Artifact Registry).",
    )
    vertex_machine_type: str = Field(
        "g2-standard-8",
        validation_alias=_env("PODSCRIBE_VERTEX_MACHINE_TYPE"),
        description="Worker machine type.",
    )
    vertex_accelerator_type: str = Field(
        "NVIDIA_L4",
        validation_alias=_env("PODSCRIBE_VERTEX_ACCELERATOR_TYPE"),
        description="GPU type (`NVIDIA_L4`, `NVIDIA_TESLA_T4`, ...).",
    )
    vertex_accelerator_count: int = Field(
        1,
        ge=0,
        validation_alias=_env("PODSCRIBE_VERTEX_ACCELERATOR_COUNT"),
        description="GPUs per worker.",
    )
    vertex_fallbacks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("PODSCRIBE_VERTEX_FALLBACKS"),
        description="Where to try when GPUs run out: comma-separated "
        "`region/machine_type/accelerator` entries, tried in order.",
    )
    vertex_service_account: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_VERTEX_SERVICE_ACCOUNT"),
        description="Service account the job runs as.",
    )
    vertex_persistent_resource_id: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_VERTEX_PERSISTENT_RESOURCE_ID"),
        description="Optional Vertex persistent resource that keeps warm GPUs.",
    )
    vertex_api_endpoint: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_VERTEX_API_ENDPOINT"),
        description="Override of the Vertex AI endpoint (tests point it at a fake).",
    )
    vertex_network: str | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_VERTEX_NETWORK"),
        description="VPC network the job joins to reach Cloud SQL's private IP.",
    )
    local_state_dir: Path = Field(
        Path(".podscribe-local"),
        validation_alias=_env("PODSCRIBE_LOCAL_STATE_DIR"),
        description="State folder of the local profile (PIDs, logs, data).",
    )
    local_max_jobs: int = Field(
        1,
        ge=1,
        validation_alias=_env("PODSCRIBE_LOCAL_MAX_JOBS"),
        description="Concurrent local-process jobs.",
    )
    local_submit_port: int = Field(
        8080,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_SUBMIT_PORT"),
        description="Local profile: submit's port on 127.0.0.1.",
    )
    local_dispatch_port: int = Field(
        8081,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_DISPATCH_PORT"),
        description="Local profile: dispatch's port (the push subscription's endpoint).",
    )
    local_sweep_port: int = Field(
        8082,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_SWEEP_PORT"),
        description="Local profile: the sweep function's port.",
    )
    local_pubsub_port: int = Field(
        8085,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_PUBSUB_PORT"),
        description="Local profile: the Pub/Sub emulator's port.",
    )
    local_gcs_port: int = Field(
        4443,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_GCS_PORT"),
        description="Local profile: fake-gcs-server's port.",
    )
    local_postgres_port: int = Field(
        5433,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_POSTGRES_PORT"),
        description="Local profile: port of the private PostgreSQL cluster, started only when "
        "`PODSCRIBE_DATABASE_URL` does not answer.",
    )
    local_redis_port: int = Field(
        6380,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_REDIS_PORT"),
        description="Local profile: port of the private redis-server, started only when "
        "`PODSCRIBE_REDIS_URL` does not answer.",
    )
    local_fixtures_port: int = Field(
        8090,
        ge=1,
        le=65535,
        validation_alias=_env("PODSCRIBE_LOCAL_FIXTURES_PORT"),
        description="Demo: port of the loopback Apple lookup, RSS feed and audio stand-in.",
    )
    local_sweep_interval_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS"),
        description="Local profile: how often the timer triggers the sweep.",
    )
    k8s_namespace: str = Field(
        "podscribe",
        validation_alias=_env("PODSCRIBE_K8S_NAMESPACE"),
        description="Namespace of the Kubernetes launcher's Jobs.",
    )
    k8s_job_template: Path | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_K8S_JOB_TEMPLATE"),
        description="YAML Job template the Kubernetes launcher fills in.",
    )

    # --- the transcription job -----------------------------------------------------------
    work_dir: Path = Field(
        Path("/tmp"),  # noqa: S108 - the job's explicit writable path, overridable
        validation_alias=_env("PODSCRIBE_WORK_DIR"),
        description="Where the job downloads audio (disk, not memory).",
    )
    checkpoint_audio_seconds: int = Field(
        300,
        ge=10,
        validation_alias=_env("PODSCRIBE_CHECKPOINT_AUDIO_SECONDS"),
        description=(
            "About how much audio is transcribed between checkpoints written to storage "
            "(rounded to whole batches of 30-second chunks)."
        ),
    )
    progress_interval_seconds: float = Field(
        3.0,
        gt=0,
        validation_alias=_env("PODSCRIBE_PROGRESS_INTERVAL_SECONDS"),
        description="Least time between progress/heartbeat updates of the job row.",
    )
    whisper_model: str | None = Field(
        None,
        validation_alias=_env("WHISPER_MODEL"),
        description="faster-whisper model name or path; default: the offline `tiny.en`.",
    )
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("PODSCRIBE_ALLOWED_MODELS"),
        description="faster-whisper models callers may ask for with `model` (comma-separated); "
        "empty: only `WHISPER_MODEL`.",
    )
    whisper_device: WhisperDevice = Field(
        "auto", validation_alias=_env("WHISPER_DEVICE"), description="`auto`, `cpu` or `cuda`."
    )
    whisper_compute_type: str | None = Field(
        None,
        validation_alias=_env("WHISPER_COMPUTE_TYPE"),
        description="CTranslate2 compute type; default `int8` on CPU, `float16` on CUDA.",
    )
    whisper_beam_size: int = Field(
        1,
        ge=1,
        le=10,
        validation_alias=_env("WHISPER_BEAM_SIZE"),
        description="Beam width; 1 is greedy, which measured as accurate as 5 on real speech "
        "(docs/transcription.md) at two thirds of the time.",
    )
    whisper_batch_size: int = Field(
        8,
        ge=0,
        le=64,
        validation_alias=_env("WHISPER_BATCH_SIZE"),
        description="Batch size of the batched pipeline; 0 selects sequential decoding.",
    )
    whisper_vad_filter: bool = Field(
        True,
        validation_alias=_env("WHISPER_VAD_FILTER"),
        description="Skip non-speech with Silero VAD.",
    )
    whisper_word_timestamps: bool = Field(
        True,
        validation_alias=_env("WHISPER_WORD_TIMESTAMPS"),
        description="Word-level timings in the JSON transcript.",
    )
    whisper_language: str | None = Field(
        None,
        validation_alias=_env("WHISPER_LANGUAGE"),
        description="Default language; detected when unset.",
    )
    whisper_cpu_threads: int = Field(
        0,
        ge=0,
        validation_alias=_env("WHISPER_CPU_THREADS"),
        description="CPU threads; 0 follows the cores available.",
    )
    whisper_model_cache_dir: Path | None = Field(
        None,
        validation_alias=_env("WHISPER_MODEL_CACHE_DIR"),
        description="Writable model cache on disk (read-only root filesystems).",
    )

    # --- the `podscribe` CLI (a client of any deployment) ----------------------------------
    api_url: str = Field(
        "http://127.0.0.1:8080",
        validation_alias=_env("PODSCRIBE_API_URL"),
        description="CLI: base URL of the submit API to talk to.",
    )
    api_key: SecretStr | None = Field(
        None,
        validation_alias=_env("PODSCRIBE_API_KEY"),
        description="CLI: the API key it sends as `Authorization: Bearer`.",
    )

    # --- Google emulators (read by Google's libraries; listed to be documented) -----------
    pubsub_emulator_host: str | None = Field(
        None,
        validation_alias=_env("PUBSUB_EMULATOR_HOST"),
        description="Pub/Sub emulator `host:port` (local profile).",
    )
    storage_emulator_host: str | None = Field(
        None,
        validation_alias=_env("STORAGE_EMULATOR_HOST"),
        description="Cloud Storage emulator URL (local profile).",
    )

    @field_validator(
        "api_keys",
        "ssrf_allow",
        "vertex_fallbacks",
        "allowed_ports",
        "allowed_models",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = urlsplit(value.get_secret_value()).scheme
            if scheme not in {"postgresql", "postgres", "postgresql+pg8000"}:
                raise ValueError("must be a postgresql:// URL")
        return value

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
    def _escape_hatch_only_locally(self) -> Settings:
        if self.ssrf_allow and self.env != "local":
            raise ValueError(
                "PODSCRIBE_SSRF_ALLOW is honoured only with PODSCRIBE_ENV=local; refusing to "
                f"start with it set under PODSCRIBE_ENV={self.env}"
            )
        return self

    # --- derived ---------------------------------------------------------------------------
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

    @property
    def whisper_compute_type_resolved(self) -> str | None:
        """The compute type to use, or None to let the device decide (int8 CPU, float16 CUDA)."""
        return self.whisper_compute_type


def env_name(field: str) -> str:
    """The environment variable a settings field is read from."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)  # noqa: S101 - every field declares one
    first = alias.choices[0]
    assert isinstance(first, str)  # noqa: S101
    return first


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = field if field.isupper() else _alias_for(field)
        lines.append(f"{name}: {item['msg']}" if name else str(item["msg"]))
    return "; ".join(lines)


def _alias_for(field: str) -> str:
    return env_name(field) if field in Settings.model_fields else field


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration from the environment (and ``PODSCRIBE_SECRETS_DIR`` files).

    Args:
        overrides: field values that win over the environment (tests, tools).

    Returns:
        The validated settings.

    Raises:
        SettingsError: a variable is missing or malformed; the message names it.
    """
    secrets_dir = os.environ.get("PODSCRIBE_SECRETS_DIR")
    try:
        if secrets_dir:
            return Settings(_secrets_dir=secrets_dir, **overrides)
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(f"invalid configuration: {_describe(error)}") from None
    except ValueError as error:
        raise SettingsError(f"invalid configuration: {error}") from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def settings_table() -> str:
    """The README's configuration table, generated from the model.

    ``tests/unit/test_readme.py`` keeps the README's copy equal to it.
    """
    rows = [
        "| Variable | Description | Default | Required |",
        "|----------|-------------|---------|:--------:|",
    ]
    for name, info in Settings.model_fields.items():
        if info.is_required():
            default = ""
        elif info.default_factory is not None:
            factory: Any = info.default_factory
            value = factory()
            default = f"`{','.join(map(str, value))}`" if value else "(empty)"
        elif info.default is None:
            default = "(unset)"
        elif isinstance(info.default, bool):
            default = f"`{str(info.default).lower()}`"
        else:
            default = f"`{info.default}`"
        description = (info.description or "").replace("|", "\\|")
        required = "yes" if info.is_required() else "no"
        rows.append(f"| `{env_name(name)}` | {description} | {default} | {required} |")
    return "\n".join(rows)
