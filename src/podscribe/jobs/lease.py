"""The running job's lease, kept by a heartbeat thread that also writes progress.

Some steps block for minutes (a large download, decoding hours of audio, loading a large
model onto a GPU) while the lease is only a few minutes long, so the lease is renewed by a
background thread rather than between steps. The main thread only records how far it got
(:meth:`Heartbeat.report`); the thread writes it to the row at most every
``progress_interval_seconds``. When the row says the job is no longer running (the sweep took
it back), the thread stops and :meth:`Heartbeat.check` tells the main thread to stop too.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import JobStateConflictError, PodscribeError

log = logging.getLogger(__name__)


class Beating:
    """A daemon thread that calls :meth:`_beat` every ``interval_seconds`` until stopped
    (leaving the ``with`` block) or until a beat returns False.

    Args:
        interval_seconds: the time between two beats.
        name: the thread's name, for logs and stack dumps.
    """

    def __init__(self, *, interval_seconds: float, name: str) -> None:
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._beat():
                return

    def _beat(self) -> bool:
        """One beat; False stops the thread."""
        raise NotImplementedError


class Heartbeat(Beating):
    """Renew a running job's lease and record its progress until stopped.

    Args:
        engine: the database.
        job_id: the running job.
        lease_seconds: the lease each beat renews.
        interval_seconds: least time between two writes.
    """

    def __init__(
        self, engine: Engine, job_id: str, *, lease_seconds: float, interval_seconds: float
    ) -> None:
        self._engine = engine
        self._job_id = job_id
        self._lease_seconds = lease_seconds
        # Beat well inside the lease even when progress is configured to be written rarely.
        super().__init__(
            interval_seconds=min(interval_seconds, lease_seconds / 4), name=f"heartbeat-{job_id}"
        )
        self._progress = 0.0
        self._written: float | None = None
        self._lost: JobStateConflictError | None = None
        self.beats = 0

    def report(self, progress: float) -> None:
        """Record how far the job got (0..1); written on the next beat.

        Raises:
            JobStateConflictError: the job is not running any more: stop working on it.
        """
        self._progress = max(self._progress, min(max(progress, 0.0), 1.0))
        self.check()

    def check(self) -> None:
        """Raise if the heartbeat found the job taken away.

        Raises:
            JobStateConflictError: the job is not running any more.
        """
        if self._lost is not None:
            raise self._lost

    def _beat(self) -> bool:
        progress = self._progress
        try:
            with transaction(self._engine) as conn:
                jobs.heartbeat(
                    conn,
                    self._job_id,
                    lease_seconds=self._lease_seconds,
                    progress=progress if progress != self._written else None,
                )
            self._written = progress
            self.beats += 1
        except JobStateConflictError as error:
            log.warning("the job was taken back; stopping", extra={"job_id": self._job_id})
            self._lost = error
            return False
        except (PodscribeError, sa.exc.SQLAlchemyError) as error:
            # The lease outlasts a short database outage; the next beat tries again.
            log.warning("heartbeat failed", extra={"job_id": self._job_id, "error": str(error)})
        return True
