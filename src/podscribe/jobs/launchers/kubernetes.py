"""The k3s profile's launcher: a batch/v1 Job per launch, from a YAML template.

The template (``PODSCRIBE_K8S_JOB_TEMPLATE``, e.g. ``local_emulators/k3s/job-template.yaml``)
is a whole Job manifest: image, non-root security context, read-only root filesystem, the
environment from the profile's ConfigMap and Secret. Two placeholders are filled in:
``${JOB_ID}`` (the job's id, for ``--job-id`` and labels) and ``${JOB_NAME}`` (the Job's
name, ``podscribe-<job id>-a<attempt>``: one Job per attempt, so a repeated create of the
same attempt is a 409 that we adopt rather than a second Job). ``backoffLimit`` belongs in
the template at 0: retries are the sweep's business, as on Vertex.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from string import Template
from typing import Any

import yaml

from podscribe.errors import LaunchError, SettingsError
from podscribe.jobs.launchers import LauncherState, LauncherStatus, LaunchResult
from podscribe.jobs.model import Job
from podscribe.settings import LaunchSettings, env_name

log = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 30


def job_name(job: Job) -> str:
    """``podscribe-<job id>-a<attempt>``: a DNS label (<= 63 characters)."""
    return f"podscribe-{job.id}-a{job.attempts}".lower()[:63]


def render_job_manifest(template_text: str, job: Job) -> dict[str, Any]:
    """The template with ``${JOB_ID}`` and ``${JOB_NAME}`` filled in, parsed.

    Raises:
        SettingsError: the result is not a batch/v1 Job.
    """
    text = Template(template_text).safe_substitute(JOB_ID=job.id, JOB_NAME=job_name(job))
    manifest = yaml.safe_load(text)
    if (
        not isinstance(manifest, dict)
        or manifest.get("kind") != "Job"
        or manifest.get("apiVersion") != "batch/v1"
    ):
        raise SettingsError(f"{env_name('k8s_job_template')}: not a batch/v1 Job manifest")
    manifest.setdefault("metadata", {})["name"] = job_name(job)
    labels = manifest["metadata"].setdefault("labels", {})
    labels["podscribe-job-id"] = job.id.lower()[:63]
    labels["podscribe-attempt"] = str(job.attempts)
    return manifest


class KubernetesLauncher:
    """Creates Jobs in ``PODSCRIBE_K8S_NAMESPACE`` from ``PODSCRIBE_K8S_JOB_TEMPLATE``.

    Args:
        settings: namespace and template path.
        api_client: a ``kubernetes.client.ApiClient`` (default: in-cluster configuration,
            else the kubeconfig).
    """

    name = "kubernetes"

    def __init__(self, settings: LaunchSettings, *, api_client: Any | None = None) -> None:
        template = settings.k8s_job_template
        if template is None:
            raise SettingsError(
                f"{env_name('k8s_job_template')}: required by the kubernetes launcher"
            )
        try:
            self._template = Path(template).read_text(encoding="utf-8")
        except OSError as error:
            raise SettingsError(f"{env_name('k8s_job_template')}: {error}") from None
        self._namespace = settings.k8s_namespace
        self._api_client = api_client
        self._batch: Any | None = None

    def _api(self) -> Any:
        if self._batch is None:
            from kubernetes import client, config

            api_client = self._api_client
            if api_client is None:
                try:
                    config.load_incluster_config()  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    config.load_kube_config()  # type: ignore[no-untyped-call]
                api_client = client.ApiClient()
            self._batch = client.BatchV1Api(api_client)
        return self._batch

    def exclusive(self) -> AbstractContextManager[None]:
        """Nothing to serialise: the service counts its own capacity."""
        return nullcontext()

    def has_capacity(self) -> bool:
        """Always: the scheduler queues Pods the cluster cannot place yet."""
        return True

    def launch(self, job: Job) -> LaunchResult:
        """Create the Job; an existing Job of the same attempt is adopted.

        Raises:
            LaunchError: the API server refused or could not be reached.
        """
        from kubernetes.client.exceptions import ApiException

        manifest = render_job_manifest(self._template, job)
        name = manifest["metadata"]["name"]
        ref = f"{self._namespace}/{name}"
        try:
            self._api().create_namespaced_job(
                namespace=self._namespace, body=manifest, _request_timeout=_TIMEOUT_SECONDS
            )
        except ApiException as error:
            if error.status == 409:
                log.warning("the Job exists already; adopting it", extra={"launcher_ref": ref})
                return LaunchResult(ref=ref, adopted=True)
            raise LaunchError(
                f"Kubernetes refused Job {ref}: {error.status} {error.reason}"
            ) from error
        except OSError as error:  # urllib3 connection errors derive from OSError
            raise LaunchError(f"Kubernetes API unreachable: {error}") from error
        return LaunchResult(ref=ref, detail=f"namespace {self._namespace}")

    def status(self, ref: str) -> LauncherState:
        """From the Job's status: succeeded, failed (with its condition's message), or live.

        Raises:
            LaunchError: the API server could not be asked.
        """
        from kubernetes.client.exceptions import ApiException

        namespace, _, name = ref.partition("/")
        try:
            found = self._api().read_namespaced_job_status(
                name=name, namespace=namespace, _request_timeout=_TIMEOUT_SECONDS
            )
        except ApiException as error:
            if error.status == 404:
                return LauncherState(LauncherStatus.CANCELLED, f"Job {ref} no longer exists")
            raise LaunchError(f"reading Job {ref} failed: {error.status} {error.reason}") from error
        except OSError as error:
            raise LaunchError(f"Kubernetes API unreachable: {error}") from error
        status = found.status
        for condition in status.conditions or []:
            if condition.type == "Failed" and condition.status == "True":
                reason = ": ".join(part for part in (condition.reason, condition.message) if part)
                return LauncherState(LauncherStatus.FAILED, reason or "the Job failed")
            if condition.type == "Complete" and condition.status == "True":
                return LauncherState(LauncherStatus.SUCCEEDED)
        if status.succeeded:
            return LauncherState(LauncherStatus.SUCCEEDED)
        if status.active:
            return LauncherState(LauncherStatus.RUNNING)
        return LauncherState(LauncherStatus.PENDING)
