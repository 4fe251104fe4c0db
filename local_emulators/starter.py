"""Starting the local profile's parts one by one, each recorded in the state file as it runs.

The functions run under functions-framework as in Cloud Functions; on ``--stack selfhosted``
dispatch is the Redis stream consumer instead (:mod:`local_emulators.stacks`).
"""

from __future__ import annotations

import secrets
import shutil
import sys
from functools import partial
from pathlib import Path

from local_emulators.processes import (
    Started,
    StartupError,
    http_status,
    port_open,
    start_process,
    wait_until,
)
from local_emulators.stacks import consumer_argv, consumer_serving
from local_emulators.state import ProfileState, process_record, state_path
from local_emulators.topics import SWEEP_TOPIC
from podscribe.settings import Settings

__all__ = ["ROOT", "PartStarter"]

ROOT = Path(__file__).resolve().parents[1]


def _functions_framework() -> str:
    candidate = Path(sys.executable).with_name("functions-framework")
    found = str(candidate) if candidate.exists() else shutil.which("functions-framework")
    if not found:
        raise StartupError("functions-framework is not installed (pip install -e '.[dev]')")
    return found


def _answers_200(url: str) -> bool:
    return http_status(url) == 200


class PartStarter:
    """Starts parts one by one, recording each in the state file as soon as it runs."""

    def __init__(self, settings: Settings, state: ProfileState, directory: Path) -> None:
        self.settings = settings
        self.state = state
        self.logs = directory / "logs"
        self.environment: dict[str, str] | None = None

    def remember(self, started: Started, argv: list[str], port: int | None) -> None:
        self.state.processes.append(process_record(started, argv, port))
        self.state.save(state_path(self.settings))  # saved as we go: `down` works after a crash

    def start(self, name: str, argv: list[str], port: int | None) -> Started:
        started = start_process(
            name, argv, log_path=self.logs / f"{name}.log", env=self.environment, cwd=ROOT
        )
        self.remember(started, argv, port)
        return started

    def functions(self) -> None:
        framework = _functions_framework()
        settings = self.settings
        targets = [
            ("submit", "functions/submit/main.py", settings.local_submit_port, "http"),
            ("dispatch", "functions/dispatch/main.py", settings.local_dispatch_port, "cloudevent"),
            ("sweep", "functions/dispatch/main.py", settings.local_sweep_port, "cloudevent"),
        ]
        if self.state.stack == "selfhosted":
            del targets[1]  # dispatch is the stream consumer there
        started = []
        for target, source, port, signature in targets:
            argv = [
                framework,
                "--target",
                target,
                "--source",
                str(ROOT / source),
                "--signature-type",
                signature,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            started.append((self.start(target, argv, port), port))
        for process, port in started:
            if process.name == "submit":
                ready = partial(_answers_200, f"http://127.0.0.1:{port}/healthz")
            else:
                ready = partial(port_open, "127.0.0.1", port)
            wait_until(f"{process.name} on 127.0.0.1:{port}", ready, timeout=60, started=process)

    def consumer(self) -> None:
        """Dispatch as the Redis stream consumer; up once its consumer group exists."""
        if (self.settings.wakeup_redis_url or self.state.redis_url) is None:
            raise StartupError(
                "--stack selfhosted carries wake-ups on a Redis stream: set PODSCRIBE_REDIS_URL "
                "or install redis-server"
            )
        name = f"local-{secrets.token_hex(4)}"  # fresh each time: an earlier line never counts
        process = self.start("dispatch", consumer_argv(name), None)
        ready = partial(consumer_serving, process.log_path, name)
        wait_until("the dispatch stream consumer", ready, timeout=60, started=process)

    def fixtures(self) -> None:
        port = self.settings.local_fixtures_port
        argv = [sys.executable, "-m", "local_emulators.fixtures", "--port", str(port)]
        process = self.start("fixtures", argv, port)
        wait_until(
            "the demo fixtures", partial(port_open, "127.0.0.1", port), timeout=20, started=process
        )

    def sweep_timer(self) -> None:
        settings = self.settings
        url = (
            f"http://127.0.0.1:{settings.local_sweep_port}/projects/{settings.project_id}"
            f"/topics/{SWEEP_TOPIC}"
        )
        argv = [
            sys.executable,
            "-m",
            "local_emulators.sweep_timer",
            "--url",
            url,
            "--interval",
            str(settings.local_sweep_interval_seconds),
        ]
        self.start("sweep-timer", argv, None)
