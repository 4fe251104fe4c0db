"""Launchers: how dispatch starts a transcription job, behind one small interface.

A launcher starts ``python -m vertex_job --job-id <id>`` somewhere and later answers what
became of it. Three implementations, chosen by ``PODSCRIBE_LAUNCHER``:

- ``vertex``: a Vertex AI CustomJob on a GPU (production), :mod:`podscribe.jobs.launchers.vertex`;
- ``local``: a detached process on this machine (the local profile),
  :mod:`podscribe.jobs.launchers.local`;
- ``kubernetes``: a batch/v1 Job from a template (the k3s profile),
  :mod:`podscribe.jobs.launchers.kubernetes`.

Each module imports its heavy client (grpc, aiplatform, kubernetes) only when built, so the
dispatch function pays only for the launcher it uses.
"""

from __future__ import annotations

import enum
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from podscribe.jobs.model import Job
from podscribe.settings import Settings


class LauncherStatus(enum.StrEnum):
    """Where a launched job stands, as its launcher reports it."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def ended_badly(self) -> bool:
        """The job stopped without succeeding: our row should fail with its reason."""
        return self in {LauncherStatus.FAILED, LauncherStatus.CANCELLED}


@dataclass(frozen=True)
class LaunchResult:
    """A launch that happened.

    Attributes:
        ref: the launcher's own name for it (Vertex resource name, PID file, Job name),
            stored on the row by ``jobs.record_launch``.
        adopted: True when an identical launch already existed and was reused instead of
            starting a second one.
        detail: where it went (region, machine, accelerator), for logs and history.
    """

    ref: str
    adopted: bool = False
    detail: str | None = None


@dataclass(frozen=True)
class LauncherState:
    """What the launcher says about a launched job.

    Attributes:
        state: normalised status.
        message: the launcher's reason, e.g. Vertex's ``error.message``.
    """

    state: LauncherStatus
    message: str | None = None


@runtime_checkable
class Launcher(Protocol):
    """Starts jobs and reports on them.

    Attributes:
        name: stored in ``jobs.launcher`` next to the ref.
    """

    name: str

    def exclusive(self) -> AbstractContextManager[None]:
        """Held by dispatch from the capacity check to the launch (a no-op where capacity
        is not ours to count), so two dispatches cannot both take the last slot."""
        ...

    def has_capacity(self) -> bool:
        """Whether a launch now could start at once (checked before an attempt is spent)."""
        ...

    def launch(self, job: Job) -> LaunchResult:
        """Start the transcription of ``job`` (already claimed: ``dispatched``).

        Raises:
            LaunchError: it did not start; trying again later may work.
            CapacityError: no capacity anywhere it is allowed to look.
        """
        ...

    def status(self, ref: str) -> LauncherState:
        """What became of a launch, by the ref its ``launch`` returned."""
        ...


def launcher_for(settings: Settings) -> Launcher:
    """The launcher ``PODSCRIBE_LAUNCHER`` names, built from the settings.

    Raises:
        SettingsError: its required settings are missing.
    """
    if settings.launcher == "vertex":
        from podscribe.jobs.launchers.vertex import VertexLauncher

        return VertexLauncher(settings)
    if settings.launcher == "local":
        from podscribe.jobs.launchers.local import LocalProcessLauncher

        return LocalProcessLauncher(settings)
    from podscribe.jobs.launchers.kubernetes import KubernetesLauncher

    return KubernetesLauncher(settings)


__all__ = ["LaunchResult", "Launcher", "LauncherState", "LauncherStatus", "launcher_for"]
