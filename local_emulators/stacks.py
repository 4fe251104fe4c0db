"""The two stacks the local profile can run: what stores transcripts and what carries wake-ups.

``gcp`` (the default) mirrors Google Cloud: the gcloud Pub/Sub emulator pushes wake-ups to the
dispatch function under functions-framework, and fake-gcs-server stores the transcripts.

``selfhosted`` mirrors the k3s stack of real servers: wake-ups go through a Redis stream that
``python -m podscribe.jobs.stream_consumer`` consumes as a supervised process, and an S3 API
stores the transcripts. MinIO's server cannot be installed from a package registry, so the
S3 server here is moto's (``moto[server]``), which speaks the same wire protocol and keeps
objects in memory: they last until ``down``. No Pub/Sub emulator and no fake-gcs-server run.

Each state folder gets a stream of its own (its instance id in the name), so two profiles
sharing one Redis never dispatch each other's jobs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

from local_emulators.emulators import start_fake_gcs, start_moto_s3, start_pubsub_emulator
from local_emulators.processes import Started, command_line
from podscribe.settings import Settings

__all__ = [
    "STACKS",
    "Stack",
    "as_stack",
    "consumer_argv",
    "consumer_serving",
    "stack_ports",
    "stack_wiring",
    "start_stack_services",
    "wakeup_stream_name",
]

Stack = Literal["gcp", "selfhosted"]
STACKS: tuple[Stack, ...] = get_args(Stack)

_S3_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "podscribe-local",
    "AWS_SECRET_ACCESS_KEY": "podscribe-local-secret",
}
"""moto checks no signature; the pair only has to be present so boto3 signs at all."""

Remember = Callable[[Started, list[str], int | None], None]
"""Records a started process in the state file (``PartStarter.remember``)."""


def wakeup_stream_name(instance_id: str) -> str:
    """The Redis stream of one state folder's profile."""
    return f"podscribe:jobs:local-{instance_id}"


def stack_ports(settings: Settings, stack: Stack) -> dict[str, tuple[int, str]]:
    """The ports the stack's own parts listen on, each with its setting's variable."""
    if stack == "selfhosted":
        return {"moto's S3 server": (settings.local_s3_port, "PODSCRIBE_LOCAL_S3_PORT")}
    return {
        "dispatch": (settings.local_dispatch_port, "PODSCRIBE_LOCAL_DISPATCH_PORT"),
        "the Pub/Sub emulator": (settings.local_pubsub_port, "PODSCRIBE_LOCAL_PUBSUB_PORT"),
        "fake-gcs-server": (settings.local_gcs_port, "PODSCRIBE_LOCAL_GCS_PORT"),
    }


def stack_wiring(settings: Settings, stack: Stack, instance_id: str) -> dict[str, str]:
    """The variables that point every part at the stack's storage and wake-ups.

    Both backends are named explicitly, so a ``PODSCRIBE_STORAGE_BACKEND`` or
    ``PODSCRIBE_WAKEUP_BACKEND`` left in the caller's shell cannot split the parts.
    """
    if stack == "selfhosted":
        return {
            "PODSCRIBE_STORAGE_BACKEND": "s3",
            "PODSCRIBE_S3_ENDPOINT_URL": f"http://127.0.0.1:{settings.local_s3_port}",
            "PODSCRIBE_S3_REGION": settings.s3_region,
            **_S3_TEST_CREDENTIALS,
            "PODSCRIBE_WAKEUP_BACKEND": "redis-streams",
            "PODSCRIBE_WAKEUP_STREAM": wakeup_stream_name(instance_id),
        }
    return {
        "PODSCRIBE_STORAGE_BACKEND": "gcs",
        "PODSCRIBE_WAKEUP_BACKEND": "pubsub",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{settings.local_pubsub_port}",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{settings.local_gcs_port}",
    }


def start_stack_services(
    settings: Settings, stack: Stack, directory: Path, remember: Remember
) -> None:
    """Start the stack's storage (and, for ``gcp``, the Pub/Sub emulator); each is recorded
    as soon as it runs and answers."""
    logs = directory / "logs"
    if stack == "selfhosted":
        s3 = start_moto_s3(settings.local_s3_port, logs / "s3.log")
        remember(s3, command_line(s3.pid), settings.local_s3_port)
        return
    pubsub = start_pubsub_emulator(
        settings.local_pubsub_port,
        directory / "pubsub",
        logs / "pubsub.log",
        project=settings.project_id,
    )
    remember(pubsub, command_line(pubsub.pid), settings.local_pubsub_port)
    gcs = start_fake_gcs(settings.local_gcs_port, directory / "gcs", logs / "gcs.log")
    remember(gcs, command_line(gcs.pid), settings.local_gcs_port)


def consumer_argv(name: str) -> list[str]:
    """The dispatch consumer's command line, under this interpreter."""
    return [sys.executable, "-m", "podscribe.jobs.stream_consumer", "--name", name]


def consumer_serving(log_path: Path, name: str) -> bool:
    """Whether consumer ``name`` logged that it consumes (its group exists by then).

    The consumer creates the stream and group before it says so, and the group starts at
    the stream's beginning: from then on no wake-up is missed, even one added earlier. (A
    group lists a member only once it was delivered something, so that cannot tell.)
    """
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return False
    return any(_ready_record(line, name) for line in lines)


def _ready_record(line: str, name: str) -> bool:
    """Whether a (JSON) log line is consumer ``name``'s "consuming wake-ups"."""
    if "consuming wake-ups" not in line:
        return False
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return bool(record.get("message") == "consuming wake-ups" and record.get("consumer") == name)


def as_stack(value: str) -> Stack:
    """``value`` as a stack name (a state file's, say).

    Raises:
        ValueError: not one of :data:`STACKS`.
    """
    for stack in STACKS:
        if value == stack:
            return stack
    raise ValueError(f"unknown stack {value!r}: one of {', '.join(STACKS)}")
