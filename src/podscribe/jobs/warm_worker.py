"""A job process that stays warm: after its episode it takes the next, until idle too long.

``python -m vertex_job --job-id X`` runs X (:func:`podscribe.jobs.worker.run_job`), then, when
``PODSCRIBE_WORKER_IDLE_SECONDS`` is above 0, goes on as a warm worker (its row and the
handshake with dispatch are :mod:`podscribe.jobs.workers`)::

    run X -> idle -> every PODSCRIBE_WORKER_POLL_SECONDS: heartbeat; a job handed over by
             dispatch, else the oldest queued resolved one -> run it -> idle -> ...
          -> idle for PODSCRIBE_WORKER_IDLE_SECONDS, or past PODSCRIBE_WORKER_MAX_SECONDS
             -> exited (unless dispatch handed it a job meanwhile: that one runs first)

The second episode costs neither a launch (minutes of GPU provisioning on Vertex) nor a model
load: :func:`podscribe.transcription.model.load_model` caches the model per process. Each
episode is a run of its own with its own lease and heartbeat, so everything the sweep does
for a launched job holds for each. A thread renews the worker's heartbeat while an episode
runs, so a long one does not look like a dead worker. On SIGTERM (preemption) the row goes
``exited`` (best effort) and the running job is left to the sweep, as without warm workers.
With the default of 0 the process runs its one job and exits, as it always did, with no row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe.db import transaction
from podscribe.errors import PodscribeError
from podscribe.jobs import workers
from podscribe.jobs.lease import Beating
from podscribe.jobs.worker import JobOutcome, run_job
from podscribe.settings import Settings
from podscribe.storage import TranscriptStore

__all__ = ["serve"]

log = logging.getLogger(__name__)

# A busy worker's heartbeat: often enough inside the staleness the sweep allows (the lease).
_MAX_PULSE_SECONDS = 10.0


def serve(
    first_job_id: str,
    *,
    settings: Settings,
    engine: Engine,
    store: TranscriptStore | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> JobOutcome:
    """Run the job the process was launched for, then, while warm, the ones it is given.

    Args:
        first_job_id: the job of the launch (``--job-id``).
        settings: the configuration (``worker_*`` decide whether and how long it stays).
        engine: the database.
        store: the transcripts bucket; built from settings when omitted.
        clock: seconds, monotonic (for the idle and working time).

    Returns:
        The outcome of the last job run; it decides the exit code.

    Raises:
        JobNotFoundError: the first job does not exist.
        DatabaseUnavailableError: the database could not be reached.
    """
    store = store or TranscriptStore(settings)
    if settings.worker_idle_seconds <= 0:
        return run_job(first_job_id, settings=settings, engine=engine, store=store)
    started = clock()
    with transaction(engine) as conn:
        worker_id = workers.register(conn, launcher=settings.launcher, job_id=first_job_id)
    log.info("warm worker started", extra={"worker_id": worker_id, "job_id": first_job_id})
    served = 0
    try:
        with _Pulse(engine, worker_id, min(settings.lease_seconds / 4, _MAX_PULSE_SECONDS)):
            outcome = run_job(first_job_id, settings=settings, engine=engine, store=store)
            served = 1
            idle = _Idle(
                worker_id,
                first_job_id=first_job_id,
                settings=settings,
                engine=engine,
                clock=clock,
                started=started,
            )
            while (job_id := idle.next_job()) is not None:
                outcome = run_job(job_id, settings=settings, engine=engine, store=store)
                served += 1
    finally:
        _retire_anyway(engine, worker_id)
    log.info(
        "warm worker exited",
        extra={"worker_id": worker_id, "jobs": served, "seconds": round(clock() - started, 1)},
    )
    return outcome


class _Idle:
    """The worker between jobs: it waits for one, or exits."""

    def __init__(
        self,
        worker_id: str,
        *,
        first_job_id: str,
        settings: Settings,
        engine: Engine,
        clock: Callable[[], float],
        started: float,
    ) -> None:
        self._id, self._first_job_id = worker_id, first_job_id
        self._settings, self._engine, self._clock = settings, engine, clock
        self._deadline = started + settings.worker_max_seconds
        self._launch_known = False

    def next_job(self) -> str | None:
        """The next job to run (already the worker's, ``dispatched``), or None: exited."""
        if self._clock() >= self._deadline:
            # Still busy: dispatch hands jobs to idle workers only, so nothing can be stranded.
            self._retire()
            return None
        with transaction(self._engine) as conn:
            workers.become_idle(conn, self._id)
        idle_from = self._clock()
        while True:
            with transaction(self._engine) as conn:
                if not self._launch_known:
                    self._launch_known = (
                        workers.learn_launch(conn, self._id, self._first_job_id) is not None
                    )
                job_id = workers.take_job(conn, self._id, settings=self._settings)
            if job_id is not None:
                log.info("warm worker took a job", extra={"worker_id": self._id, "job_id": job_id})
                return job_id
            now = self._clock()
            if now - idle_from >= self._settings.worker_idle_seconds or now >= self._deadline:
                if self._retire():
                    return None
                continue  # dispatch handed it a job meanwhile: the next poll takes it
            time.sleep(self._settings.worker_poll_seconds)

    def _retire(self) -> bool:
        with transaction(self._engine) as conn:
            return workers.retire(conn, self._id)


def _retire_anyway(engine: Engine, worker_id: str) -> None:
    """Best effort on the way out (SIGTERM, a database gone): the row must not look idle.

    A job assigned in the last instant stays ``dispatched`` with a running job's lease: the
    sweep requeues it (at once where the launcher reports this launch failed).
    """
    try:
        with transaction(engine) as conn:
            workers.mark_exited(conn, worker_id)
    except (PodscribeError, sa.exc.SQLAlchemyError) as error:
        log.warning("could not record the worker's exit", extra={"error": str(error)})


class _Pulse(Beating):
    """A thread renewing the worker's heartbeat while it is busy (or idle) until stopped."""

    def __init__(self, engine: Engine, worker_id: str, interval_seconds: float) -> None:
        super().__init__(interval_seconds=interval_seconds, name="worker-pulse")
        self._engine, self._worker_id = engine, worker_id

    def _beat(self) -> bool:
        try:
            with transaction(self._engine) as conn:
                workers.beat(conn, self._worker_id)
        except (PodscribeError, sa.exc.SQLAlchemyError) as error:
            # Staleness is judged over a whole lease: the next beat tries again.
            log.warning("worker heartbeat failed", extra={"error": str(error)})
        return True
