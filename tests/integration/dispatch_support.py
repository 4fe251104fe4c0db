"""Dispatch and sweep as real ``functions-framework`` processes, pushed to by the Pub/Sub emulator.

Shared by the dispatch end-to-end tests and the load drill (``tests/drills/test_load.py``):
the command line Cloud Functions runs, on a free loopback port, and the push subscription
the emulator delivers a topic's messages through (as Eventarc does in GCP).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from local_emulators.processes import Started, port_open, start_process, wait_until
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
DISPATCH_SOURCE = ROOT / "functions" / "dispatch" / "main.py"


def start_function(
    name: str, target: str, env: dict[str, str], log_dir: Path
) -> tuple[Started, int]:
    """Start ``functions-framework --target <target>`` of the dispatch source; (process, port)."""
    port = free_port()
    started = start_process(
        name,
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            target,
            "--source",
            str(DISPATCH_SOURCE),
            "--signature-type",
            "cloudevent",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        log_path=log_dir / f"{name}.log",
        env={**env, "PORT": str(port)},
        cwd=ROOT,
    )
    wait_until(name, lambda: port_open("127.0.0.1", port), timeout=60, started=started)
    return started, port


def push_endpoint(project: str, topic: str, port: int) -> str:
    """Where the emulator pushes ``topic``'s messages for a function on ``port``."""
    return f"http://127.0.0.1:{port}/projects/{project}/topics/{topic}"


def create_push_subscription(
    subscriber: Any, project: str, topic: str, name: str, port: int, **request: Any
) -> str:
    """A push subscription ``name`` on ``topic`` to the function on ``port``; its path.

    ``request`` adds fields of the CreateSubscription request (retry and dead-letter policies).
    """
    path = str(subscriber.subscription_path(project, name))
    subscriber.create_subscription(
        request={
            "name": path,
            "topic": f"projects/{project}/topics/{topic}",
            "push_config": {"push_endpoint": push_endpoint(project, topic, port)},
            "ack_deadline_seconds": 60,
            **request,
        }
    )
    return path
