"""A wake-up consumer that stops mid-message: ``python -m tests.fakes.wakeup_consumer MARKER NAME``.

It runs the real :class:`~podscribe.jobs.stream_consumer.StreamConsumer` loop (settings from
the environment) with a launcher whose ``exclusive()`` writes MARKER and then never returns:
the wake-up has been read with ``XREADGROUP`` and not acknowledged, the job is still queued.
A test kills the process there, as an OOM kill or a lost node would.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from podscribe.db import create_db_engine
from podscribe.jobs.launchers import LauncherState, LauncherStatus, LaunchResult
from podscribe.jobs.model import Job
from podscribe.jobs.stream_consumer import StreamConsumer
from podscribe.settings import load_settings


class StuckLauncher:
    """Marks that dispatch reached it, then holds dispatch there until the process dies."""

    name = "stuck"

    def __init__(self, marker: Path) -> None:
        self._marker = marker

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self._marker.write_text("in dispatch\n")
        threading.Event().wait()  # never set: dispatch stays here until the process is killed
        yield

    def has_capacity(self) -> bool:
        return True

    def launch(self, job: Job) -> LaunchResult:
        raise AssertionError("a stuck consumer never launches")

    def status(self, ref: str) -> LauncherState:
        return LauncherState(LauncherStatus.UNKNOWN)


def main() -> None:
    marker, name = Path(sys.argv[1]), sys.argv[2]
    settings = load_settings()
    engine = create_db_engine(settings)
    StreamConsumer(engine, settings, StuckLauncher(marker), name=name).run(threading.Event())


if __name__ == "__main__":
    main()
