"""Vertex AI CustomJobs: the production launcher.

One worker pool, one GPU machine, the job image with ``--job-id <id>``. The display name
``podscribe-<job id>-a<attempt>`` and the ``podscribe-job-id`` label make every launch of a
job findable: a retried launch first looks for a live CustomJob of the same job (a create whose
answer was lost) and adopts it instead of paying for a second GPU.

GPUs run out ("resources are insufficient", quota): such a refusal moves on to the next
``region/machine_type/accelerator`` of ``PODSCRIBE_VERTEX_FALLBACKS``; a different region
means a client bound to that region's endpoint. Only when every placement refused is the
launch a :class:`CapacityError`. Other refusals are :class:`LaunchError`s: dispatch returns the
job to the queue and Pub/Sub redelivers with backoff. The client's own retries are off, so
one ``launch`` is at most one create per placement: a blind retry of a create that reached
the server would start the job twice.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import aiplatform_v1

from podscribe.errors import CapacityError, LaunchError, SettingsError
from podscribe.jobs.launchers import LauncherState, LauncherStatus, LaunchResult
from podscribe.jobs.model import Job
from podscribe.settings import LaunchSettings, Settings, env_name

log = logging.getLogger(__name__)

JOB_ID_LABEL = "podscribe-job-id"
ATTEMPT_LABEL = "podscribe-attempt"
_CALL_TIMEOUT_SECONDS = 60.0
# Start-up (image pull, model load) and the download, on top of the transcription itself.
_TIMEOUT_OVERHEAD_SECONDS = 1200
# Vertex refuses timeouts beyond 7 days.
_MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
_CAPACITY_MESSAGE = re.compile(
    r"resources are insufficient|insufficient resources|quota|stockout|out of capacity",
    re.IGNORECASE,
)
_STATES = {
    aiplatform_v1.JobState.JOB_STATE_QUEUED: LauncherStatus.PENDING,
    aiplatform_v1.JobState.JOB_STATE_PENDING: LauncherStatus.PENDING,
    aiplatform_v1.JobState.JOB_STATE_RUNNING: LauncherStatus.RUNNING,
    aiplatform_v1.JobState.JOB_STATE_UPDATING: LauncherStatus.RUNNING,
    aiplatform_v1.JobState.JOB_STATE_SUCCEEDED: LauncherStatus.SUCCEEDED,
    aiplatform_v1.JobState.JOB_STATE_FAILED: LauncherStatus.FAILED,
    aiplatform_v1.JobState.JOB_STATE_EXPIRED: LauncherStatus.FAILED,
    aiplatform_v1.JobState.JOB_STATE_CANCELLING: LauncherStatus.CANCELLED,
    aiplatform_v1.JobState.JOB_STATE_CANCELLED: LauncherStatus.CANCELLED,
}
_LIVE = {LauncherStatus.PENDING, LauncherStatus.RUNNING}


@dataclass(frozen=True)
class Placement:
    """Where a job may run: a region and a GPU machine there.

    Attributes:
        region: Vertex AI region, e.g. ``us-central1``.
        machine_type: worker machine type, e.g. ``g2-standard-8``.
        accelerator_type: ``AcceleratorType`` name, e.g. ``NVIDIA_L4``.
    """

    region: str
    machine_type: str
    accelerator_type: str

    @classmethod
    def parse(cls, entry: str) -> Placement:
        """From a ``region/machine_type/accelerator`` fallback entry.

        Raises:
            SettingsError: not three non-empty parts, or an unknown accelerator.
        """
        parts = [part.strip() for part in entry.split("/")]
        if len(parts) != 3 or not all(parts):
            raise SettingsError(
                f"{env_name('vertex_fallbacks')}: {entry!r} is not region/machine_type/accelerator"
            )
        placement = cls(parts[0], parts[1], parts[2].upper())
        _accelerator(placement.accelerator_type)
        return placement

    def __str__(self) -> str:
        return f"{self.region}/{self.machine_type}/{self.accelerator_type}"


def placements(settings: Settings) -> list[Placement]:
    """The configured placement first, then the fallbacks, in order, without repeats."""
    found = [
        Placement(settings.region, settings.vertex_machine_type, settings.vertex_accelerator_type)
    ]
    for entry in settings.vertex_fallbacks:
        placement = Placement.parse(entry)
        if placement not in found:
            found.append(placement)
    return found


def _accelerator(name: str) -> aiplatform_v1.AcceleratorType:
    try:
        accelerator: aiplatform_v1.AcceleratorType = aiplatform_v1.AcceleratorType.__members__[name]
    except KeyError:
        raise SettingsError(f"unknown Vertex accelerator type {name!r}") from None
    return accelerator


def episode_duration_seconds(job: Job) -> float | None:
    """The episode's length when known: the row's column, else the resolver's metadata."""
    if job.duration_seconds:
        return float(job.duration_seconds)
    episode = job.episode or {}
    for key in ("duration_seconds", "duration"):
        value = episode.get(key)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def job_timeout_seconds(job: Job, settings: Settings) -> int:
    """A timeout scaled to the episode: real time (a slow GPU's worst case) plus start-up.

    An unknown duration is bounded by the longest episode accepted. A warm worker
    (``PODSCRIBE_WORKER_IDLE_SECONDS`` above 0) takes episodes for up to
    ``PODSCRIBE_WORKER_MAX_SECONDS``, finishes the last (the longest accepted, at worst) and
    idles once more: Vertex must not cut it short, so its timeout covers all of that.
    """
    duration = episode_duration_seconds(job) or float(settings.max_episode_seconds)
    bounded = int(min(duration, float(settings.max_episode_seconds)))
    if settings.worker_idle_seconds > 0:
        bounded = settings.worker_max_seconds + settings.max_episode_seconds
        bounded += settings.worker_idle_seconds
    return min(bounded + _TIMEOUT_OVERHEAD_SECONDS, _MAX_TIMEOUT_SECONDS)


def display_name(job: Job) -> str:
    """``podscribe-<job id>-a<attempt>``: one name per launch attempt."""
    return f"podscribe-{job.id}-a{job.attempts}"


def job_environment(settings: Settings) -> dict[str, str]:
    """The job container's environment: GPU decoding, the database and the bucket.

    Secrets (a database password) never travel here: the job authenticates to Cloud SQL as
    its service account (IAM), so its database user is that account, not dispatch's own.
    """
    values: dict[str, str | None] = {
        "PODSCRIBE_ENV": "production",
        env_name("project_id"): settings.project_id,
        env_name("region"): settings.region,
        env_name("bucket"): settings.bucket,
        env_name("cloudsql_connection_name"): settings.cloudsql_connection_name,
        env_name("db_user"): _iam_database_user(settings.vertex_service_account)
        or settings.db_user,
        env_name("db_name"): settings.db_name,
        env_name("db_ip_type"): settings.db_ip_type,
        env_name("lease_seconds"): str(settings.lease_seconds),
        env_name("log_level"): settings.log_level,
        "WHISPER_DEVICE": "cuda",
        "WHISPER_COMPUTE_TYPE": "float16",
        env_name("whisper_model"): settings.whisper_model,
        # A resource name, not the secret: the job reads it from Secret Manager itself.
        env_name("webhook_secret_version"): settings.webhook_secret_version,
        env_name("public_base_url"): settings.public_base_url,
        env_name("allowed_models"): ",".join(settings.allowed_models) or None,
        env_name("diarization"): settings.diarization,
        # Warm workers: how long a job stays for the next episode (dispatch hands them over).
        env_name("worker_idle_seconds"): str(settings.worker_idle_seconds),
        env_name("worker_max_seconds"): str(settings.worker_max_seconds),
        env_name("worker_poll_seconds"): str(settings.worker_poll_seconds),
    }
    return {name: value for name, value in values.items() if value is not None}


def _iam_database_user(service_account: str | None) -> str | None:
    """Cloud SQL's IAM user name for a service account: the email without the domain suffix."""
    if service_account is None:
        return None
    return service_account.removesuffix(".gserviceaccount.com")


def build_custom_job(job: Job, settings: Settings, placement: Placement) -> aiplatform_v1.CustomJob:
    """The CustomJob that transcribes ``job`` at ``placement``.

    Raises:
        SettingsError: no image configured, an unknown accelerator, or both a peered network
            and a network attachment (Vertex takes one or the other).
    """
    if not settings.vertex_image:
        raise SettingsError(f"{env_name('vertex_image')}: required by the vertex launcher")
    if settings.vertex_network and settings.vertex_network_attachment:
        raise SettingsError(
            f"{env_name('vertex_network')} and {env_name('vertex_network_attachment')} are "
            "exclusive: a job either peers with the network or joins it through the attachment"
        )
    machine = aiplatform_v1.MachineSpec(machine_type=placement.machine_type)
    if settings.vertex_accelerator_count > 0:
        machine.accelerator_type = _accelerator(placement.accelerator_type)
        machine.accelerator_count = settings.vertex_accelerator_count
    container = aiplatform_v1.ContainerSpec(
        image_uri=settings.vertex_image,
        args=["--job-id", job.id],
        env=[
            aiplatform_v1.EnvVar(name=name, value=value)
            for name, value in job_environment(settings).items()
        ],
    )
    spec = aiplatform_v1.CustomJobSpec(
        worker_pool_specs=[
            aiplatform_v1.WorkerPoolSpec(
                machine_spec=machine, replica_count=1, container_spec=container
            )
        ],
        scheduling=aiplatform_v1.Scheduling(
            timeout=timedelta(seconds=job_timeout_seconds(job, settings)),
            # A preempted worker is not restarted in place: the lease runs out and the sweep
            # relaunches the job, which resumes from its checkpoint.
            restart_job_on_worker_restart=False,
        ),
    )
    if settings.vertex_service_account:
        spec.service_account = settings.vertex_service_account
    if settings.vertex_network_attachment:
        # A PSC interface on the attachment of the placement's region (Vertex resolves the
        # name there): an address in the VPC, whose private services access peering then
        # reaches Cloud SQL's private IP, which a peered job could not.
        spec.psc_interface_config = aiplatform_v1.PscInterfaceConfig(
            network_attachment=settings.vertex_network_attachment
        )
    elif settings.vertex_network:
        spec.network = settings.vertex_network
    # A persistent resource lives in one region: it serves only the configured placement.
    if settings.vertex_persistent_resource_id and placement.region == settings.region:
        spec.persistent_resource_id = settings.vertex_persistent_resource_id
    return aiplatform_v1.CustomJob(
        display_name=display_name(job),
        job_spec=spec,
        labels={
            "app": "podscribe",
            JOB_ID_LABEL: job.id.lower()[:63],
            ATTEMPT_LABEL: str(job.attempts),
        },
    )


def is_capacity_refusal(error: google_exceptions.GoogleAPICallError) -> bool:
    """RESOURCE_EXHAUSTED, or a message about insufficient resources or quota."""
    return isinstance(error, google_exceptions.ResourceExhausted) or bool(
        _CAPACITY_MESSAGE.search(error.message or "")
    )


def _is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]") if ":" in endpoint else endpoint
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_client_factory(
    settings: LaunchSettings,
) -> Callable[[str], aiplatform_v1.JobServiceClient]:
    """Clients per region: ``<region>-aiplatform.googleapis.com``, or the override.

    An override on a loopback address (a fake in tests, never Google) is spoken to in plain
    gRPC without credentials, as the Google libraries do for their emulators.
    """

    def build(region: str) -> aiplatform_v1.JobServiceClient:
        endpoint = settings.vertex_api_endpoint or f"{region}-aiplatform.googleapis.com"
        if _is_loopback(endpoint):
            import grpc
            from google.cloud.aiplatform_v1.services.job_service.transports.grpc import (
                JobServiceGrpcTransport,
            )

            transport = JobServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
            return aiplatform_v1.JobServiceClient(transport=transport)
        return aiplatform_v1.JobServiceClient(client_options={"api_endpoint": endpoint})

    return build


class VertexLauncher:
    """Launches the job image as a Vertex AI CustomJob.

    Args:
        settings: project, region, image, machine, fallbacks, service account, network.
        client_factory: builds a ``JobServiceClient`` for a region (default: the real one,
            at the configured endpoint).
    """

    name = "vertex"

    def __init__(
        self,
        settings: Settings,
        *,
        client_factory: Callable[[str], aiplatform_v1.JobServiceClient] | None = None,
    ) -> None:
        if not settings.vertex_image:
            raise SettingsError(f"{env_name('vertex_image')}: required by the vertex launcher")
        self._settings = settings
        self._placements = placements(settings)
        self._factory = client_factory or default_client_factory(settings)
        self._clients: dict[str, aiplatform_v1.JobServiceClient] = {}

    def _client(self, region: str) -> aiplatform_v1.JobServiceClient:
        if region not in self._clients:
            self._clients[region] = self._factory(region)
        return self._clients[region]

    def _parent(self, region: str) -> str:
        return f"projects/{self._settings.project_id}/locations/{region}"

    def exclusive(self) -> AbstractContextManager[None]:
        """Nothing to serialise: the service counts its own capacity."""
        return nullcontext()

    def has_capacity(self) -> bool:
        """Always: Vertex says itself when it has no GPUs."""
        return True

    def launch(self, job: Job) -> LaunchResult:
        """Create the CustomJob, trying each placement in turn while capacity is refused.

        Raises:
            CapacityError: every placement refused for capacity or quota.
            LaunchError: another refusal (unavailable, permission, invalid request).
        """
        if job.attempts > 1:
            adopted = self._find_live_launch(job)
            if adopted is not None:
                return adopted
        refusals: list[str] = []
        for placement in self._placements:
            custom_job = build_custom_job(job, self._settings, placement)
            try:
                created = self._client(placement.region).create_custom_job(
                    parent=self._parent(placement.region),
                    custom_job=custom_job,
                    retry=None,
                    timeout=_CALL_TIMEOUT_SECONDS,
                )
            except google_exceptions.GoogleAPICallError as error:
                if is_capacity_refusal(error):
                    log.warning(
                        "no capacity for the job here; trying the next placement",
                        extra={"job_id": job.id, "placement": str(placement), "error": str(error)},
                    )
                    refusals.append(f"{placement}: {error.message}")
                    continue
                raise LaunchError(f"Vertex AI refused the job at {placement}: {error}") from error
            except (google_exceptions.RetryError, ValueError) as error:
                raise LaunchError(f"Vertex AI call failed at {placement}: {error}") from error
            return LaunchResult(ref=str(created.name), detail=str(placement))
        raise CapacityError("no accelerator capacity in any placement: " + "; ".join(refusals))

    def _find_live_launch(self, job: Job) -> LaunchResult | None:
        """A pending or running CustomJob of this job from an earlier attempt, if recent."""
        newest_allowed = datetime.now(UTC) - timedelta(
            seconds=self._settings.dispatch_lease_seconds
        )
        for region in dict.fromkeys(placement.region for placement in self._placements):
            try:
                pager = self._client(region).list_custom_jobs(
                    request=aiplatform_v1.ListCustomJobsRequest(
                        parent=self._parent(region),
                        filter=f'labels.{JOB_ID_LABEL}="{job.id.lower()}"',
                    ),
                    retry=None,
                    timeout=_CALL_TIMEOUT_SECONDS,
                )
                found = list(pager)
            except google_exceptions.GoogleAPICallError as error:
                # Not knowing risks a duplicate (the sweep's reconciliation still sees it);
                # refusing to launch would block every retry on a missing permission.
                log.warning(
                    "could not look for an earlier launch; creating a new one",
                    extra={"job_id": job.id, "region": region, "error": str(error)},
                )
                continue
            for existing in found:
                state = _STATES.get(existing.state, LauncherStatus.UNKNOWN)
                created_at: Any = existing.create_time
                recent = created_at is None or created_at >= newest_allowed
                if state in _LIVE and recent:
                    log.warning(
                        "adopting a live CustomJob of an earlier attempt instead of a new one",
                        extra={"job_id": job.id, "launcher_ref": existing.name},
                    )
                    return LaunchResult(ref=str(existing.name), adopted=True, detail=region)
        return None

    def status(self, ref: str) -> LauncherState:
        """The CustomJob's state and, when it failed, Vertex's reason.

        Raises:
            LaunchError: Vertex AI could not be asked.
        """
        match = re.match(r"^projects/[^/]+/locations/([^/]+)/customJobs/[^/]+$", ref)
        if match is None:
            return LauncherState(LauncherStatus.UNKNOWN, f"not a CustomJob name: {ref!r}")
        try:
            found = self._client(match.group(1)).get_custom_job(
                name=ref, timeout=_CALL_TIMEOUT_SECONDS
            )
        except google_exceptions.NotFound:
            return LauncherState(LauncherStatus.CANCELLED, f"CustomJob {ref} no longer exists")
        except google_exceptions.GoogleAPICallError as error:
            raise LaunchError(f"reading {ref} from Vertex AI failed: {error}") from error
        state = _STATES.get(found.state, LauncherStatus.UNKNOWN)
        message = found.error.message if found.error and found.error.message else None
        if message is None and state.ended_badly:
            message = f"Vertex AI reports {found.state.name}"
        return LauncherState(state, message)
