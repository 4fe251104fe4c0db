"""Warm workers' rows: one job process, many episodes, one GPU provisioning and model load.

A Vertex CustomJob pays minutes of GPU provisioning and a model load before its first word.
With ``PODSCRIBE_WORKER_IDLE_SECONDS`` above 0 the process that ran its episode stays for the
next (:mod:`podscribe.jobs.warm_worker`), and keeps a row in ``workers`` (migration 0010)::

    busy --its job ended--> idle --dispatch handed it a job--> assigned --it took it--> busy
                             |  \\--it claimed the oldest queued, resolved job----------> busy
                             \\--idle too long, or past PODSCRIBE_WORKER_MAX_SECONDS--> exited

Each episode keeps its own lease and heartbeat, as if launched on its own: a worker that dies
mid-episode leaves a job the sweep takes back. Every writer locks the worker's row first:

- only dispatch moves idle -> assigned (:func:`hand_over`), in the transaction that claims
  the job, taking the worker ``FOR UPDATE``: a worker holds its own row only for a poll's
  few statements and never waits for a job row or lock dispatch holds, so the wait is short
  and cannot deadlock;
- only the worker leaves idle (:func:`take_job`, :func:`retire`); :func:`retire` refuses
  while a job is assigned, so a job handed to a worker is never stranded by its exit;
- a worker claims a queued job itself ``FOR UPDATE SKIP LOCKED`` with the claim's rules
  (:func:`podscribe.jobs.claims.claim`): of two workers, or a worker and dispatch, exactly
  one claims each job.

GPUs in use (:func:`gpus_in_use`, dispatch's ``PODSCRIBE_MAX_CONCURRENT_JOBS``) are the
dispatched and running jobs plus the live workers holding no active job: an idle worker
keeps its GPU.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from podscribe.jobs.claims import claim
from podscribe.jobs.model import ACTIVE_STATUSES, Job, JobStatus
from podscribe.jobs.tables import jobs_table as _jobs
from podscribe.jobs.tables import workers_table as _workers
from podscribe.settings import JobSettings

__all__ = [
    "Handover",
    "Worker",
    "WorkerState",
    "beat",
    "become_idle",
    "gpus_in_use",
    "hand_over",
    "handover_window_seconds",
    "learn_launch",
    "mark_exited",
    "register",
    "retire",
    "sweep_workers",
    "take_job",
]

# Exited rows stay this long for whoever investigates, then the sweep deletes them.
_KEEP_EXITED_SECONDS = 86_400
_ACTIVE = [status.value for status in ACTIVE_STATUSES]


class WorkerState(enum.StrEnum):
    """Where a warm worker stands (the ``workers.state`` column)."""

    BUSY = "busy"
    IDLE = "idle"
    ASSIGNED = "assigned"
    EXITED = "exited"


@dataclass(frozen=True)
class Worker:
    """A row of ``workers``.

    Attributes:
        id: the worker's UUID, as a string.
        launcher: the launcher that started its process (``vertex``, ``local``, ...).
        launcher_ref: that launch's ref (the first job's), once dispatch recorded it.
        state: busy, idle, assigned or exited.
        job_id: the job it runs, was handed, or ran last.
    """

    id: str
    launcher: str
    launcher_ref: str | None
    state: WorkerState
    job_id: str | None

    @classmethod
    def from_row(cls, row: Any) -> Worker:
        """The worker a ``workers`` row describes."""
        return cls(
            id=str(row["id"]),
            launcher=row["launcher"],
            launcher_ref=row["launcher_ref"],
            state=WorkerState(row["state"]),
            job_id=str(row["job_id"]) if row["job_id"] else None,
        )


@dataclass(frozen=True)
class Handover:
    """A queued job dispatch claimed and handed to an idle worker, with no launch.

    Attributes:
        job: the job, ``dispatched`` (its attempt counted).
        worker_id: the worker that will run it.
        launcher_ref: the worker's launch, now recorded on the job too.
    """

    job: Job
    worker_id: str
    launcher_ref: str | None


def handover_window_seconds(settings: JobSettings) -> float:
    """How recent an idle worker's heartbeat must be for dispatch to hand it a job.

    An idle worker beats at every poll, so a few missed polls mean it is gone (killed without
    saying so): a job handed to it would wait out its lease instead of starting elsewhere.
    """
    return max(10.0, 5 * settings.worker_poll_seconds)


def _seconds_ago(seconds: float) -> Any:
    return sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def register(conn: Connection, *, launcher: str, job_id: str) -> str:
    """Record a new worker, busy with the job it was launched for; returns its id.

    The launch's ref comes from the job row when dispatch recorded it already; else
    :func:`learn_launch` fills it in later.
    """
    worker_id = uuid.uuid4()
    conn.execute(
        sa.insert(_workers).values(
            id=worker_id, launcher=launcher, state=WorkerState.BUSY.value, job_id=job_id
        )
    )
    learn_launch(conn, str(worker_id), job_id)
    return str(worker_id)


def learn_launch(conn: Connection, worker_id: str, job_id: str) -> str | None:
    """Copy the launcher and ref dispatch recorded on the worker's first job; the ref or None."""
    recorded = conn.execute(
        sa.select(_jobs.c.launcher, _jobs.c.launcher_ref).where(_jobs.c.id == job_id)
    ).first()
    if recorded is None or recorded.launcher_ref is None:
        return None
    conn.execute(
        sa.update(_workers)
        .where(_workers.c.id == worker_id)
        .values(
            launcher=recorded.launcher or _workers.c.launcher,
            launcher_ref=recorded.launcher_ref,
            updated_at=sa.func.now(),
        )
    )
    return str(recorded.launcher_ref)


def beat(conn: Connection, worker_id: str) -> None:
    """Renew the worker's heartbeat: it is alive (idle or not)."""
    conn.execute(
        sa.update(_workers).where(_workers.c.id == worker_id).values(heartbeat_at=sa.func.now())
    )


def become_idle(conn: Connection, worker_id: str) -> None:
    """busy -> idle: its job ended; dispatch may hand it the next one from now on."""
    conn.execute(
        sa.update(_workers)
        .where(_workers.c.id == worker_id)
        .values(
            state=WorkerState.IDLE.value,
            idle_since=sa.func.now(),
            heartbeat_at=sa.func.now(),
            updated_at=sa.func.now(),
        )
    )


def _lock(conn: Connection, worker_id: str) -> Worker | None:
    row = (
        conn.execute(sa.select(_workers).where(_workers.c.id == worker_id).with_for_update())
        .mappings()
        .first()
    )
    return Worker.from_row(row) if row else None


def _set_busy(conn: Connection, worker_id: str, job_id: str) -> None:
    conn.execute(
        sa.update(_workers)
        .where(_workers.c.id == worker_id)
        .values(
            state=WorkerState.BUSY.value,
            job_id=job_id,
            idle_since=None,
            heartbeat_at=sa.func.now(),
            updated_at=sa.func.now(),
        )
    )


def _record_on_job(conn: Connection, job_id: str, worker: Worker) -> None:
    """The job runs in the worker's launch: the sweep asks the launcher about that one."""
    conn.execute(
        sa.update(_jobs)
        .where(_jobs.c.id == job_id)
        .values(
            launcher=worker.launcher, launcher_ref=worker.launcher_ref, updated_at=sa.func.now()
        )
    )


def take_job(conn: Connection, worker_id: str, *, settings: JobSettings) -> str | None:
    """An idle worker's poll: the job dispatch handed it (or launched onto its process),
    else the oldest it can claim.

    A claimable job is queued with its episode resolved (so dispatch's pre-flight and the
    publisher's check were done) and attempts left (one without is dispatch's to fail, with
    its webhooks). The job is claimed as dispatch would (an attempt counted, history noted)
    with a running job's lease: the worker starts it at once. Either way the worker is busy
    with the job when this returns it. A worker the sweep wrote off (a database outage
    outlasted its heartbeat) is idle again: it is alive.

    Returns:
        The job to run now (``dispatched``), or None.
    """
    worker = _lock(conn, worker_id)
    if worker is None:
        return None
    if worker.state is WorkerState.ASSIGNED and worker.job_id:
        _set_busy(conn, worker_id, worker.job_id)
        return worker.job_id
    if worker.state is WorkerState.EXITED:
        become_idle(conn, worker_id)
    adopted = _adopted_job(conn, worker)
    if adopted is not None:
        _set_busy(conn, worker_id, adopted)
        return adopted
    row = (
        conn.execute(
            sa.select(_jobs)
            .where(
                _jobs.c.status == JobStatus.QUEUED.value,
                _jobs.c.episode.is_not(None),
                _jobs.c.attempts < settings.max_attempts,
            )
            .order_by(_jobs.c.queued_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        .mappings()
        .first()
    )
    if row is None:
        beat(conn, worker_id)
        return None
    claimed = claim(
        conn,
        Job.from_row(row),
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        detail=f"claimed by warm worker {worker_id}",
    )
    _set_busy(conn, worker_id, claimed.job.id)
    _record_on_job(conn, claimed.job.id, worker)
    return claimed.job.id


def _adopted_job(conn: Connection, worker: Worker) -> str | None:
    """A job dispatch launched onto this worker's own launch while it ran another.

    The local launcher adopts a live process of an earlier attempt of the same job rather
    than starting a second; when that process is this warm worker, the new attempt is
    ``dispatched`` with this worker's ref and no one else will run it.
    """
    if worker.launcher_ref is None:
        return None
    job_id = conn.execute(
        sa.select(_jobs.c.id)
        .where(
            _jobs.c.status == JobStatus.DISPATCHED.value,
            _jobs.c.launcher_ref == worker.launcher_ref,
        )
        .order_by(_jobs.c.dispatched_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar()
    return str(job_id) if job_id else None


def retire(conn: Connection, worker_id: str) -> bool:
    """The worker exits: its row goes ``exited``, unless dispatch assigned it a job.

    Returns:
        False when a job is assigned to it: run that first, then try again.
    """
    worker = _lock(conn, worker_id)
    if worker is None:
        return True
    if worker.state is WorkerState.ASSIGNED:
        return False
    conn.execute(
        sa.update(_workers)
        .where(_workers.c.id == worker_id)
        .values(state=WorkerState.EXITED.value, idle_since=None, updated_at=sa.func.now())
    )
    return True


def mark_exited(conn: Connection, worker_id: str) -> None:
    """The worker is going whatever its state (SIGTERM, a fault): it must not look idle."""
    conn.execute(
        sa.update(_workers)
        .where(_workers.c.id == worker_id)
        .values(state=WorkerState.EXITED.value, idle_since=None, updated_at=sa.func.now())
    )


def hand_over(conn: Connection, current: Job, *, settings: JobSettings) -> Handover | None:
    """Claim a queued job for an idle worker with a fresh heartbeat, if there is one.

    For dispatch, on the job row it locked (:func:`podscribe.jobs.transitions.lock_job`).
    The most recently idle worker gets it: the others idle on and exit sooner, giving their
    GPUs back. A worker polling right now is waited for (a few statements; the locks it takes
    meanwhile skip what dispatch holds), not passed over: after its poll it is idle still, or
    busy with a job of its own (then none is handed over and dispatch launches). The job gets
    a running job's lease (the worker starts it within a poll), and the worker's launch as its
    launcher and ref.

    Returns:
        The handover; None when no worker is idle, or the job has no attempt left (dispatch
        fails it as usual).
    """
    if current.status is not JobStatus.QUEUED or current.attempts >= settings.max_attempts:
        return None
    row = (
        conn.execute(
            sa.select(_workers)
            .where(
                _workers.c.state == WorkerState.IDLE.value,
                _workers.c.heartbeat_at > _seconds_ago(handover_window_seconds(settings)),
            )
            .order_by(_workers.c.idle_since.desc())
            .limit(1)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    worker = Worker.from_row(row)
    claimed = claim(
        conn,
        current,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        detail=f"handed to warm worker {worker.id}",
    )
    conn.execute(
        sa.update(_workers)
        .where(_workers.c.id == worker.id)
        .values(state=WorkerState.ASSIGNED.value, job_id=claimed.job.id, updated_at=sa.func.now())
    )
    _record_on_job(conn, claimed.job.id, worker)
    return Handover(claimed.job, worker.id, worker.launcher_ref)


def gpus_in_use(conn: Connection, *, live_seconds: float) -> int:
    """Dispatched and running jobs, plus live workers that hold no active job: idle ones, and
    busy ones between two jobs (one statement, so one snapshot: a worker claiming a job moves
    from one term to the other, never both or neither).

    Args:
        live_seconds: a worker whose heartbeat is older is taken for gone.
    """
    active_jobs = sa.select(sa.func.count()).where(_jobs.c.status.in_(_ACTIVE)).scalar_subquery()
    holds_active_job = (
        sa.select(_jobs.c.id)
        .where(_jobs.c.id == _workers.c.job_id, _jobs.c.status.in_(_ACTIVE))
        .exists()
    )
    # An idle worker's job_id is the job it ran last, which may be running elsewhere now.
    idle_workers = (
        sa.select(sa.func.count())
        .select_from(_workers)
        .where(
            _workers.c.state != WorkerState.EXITED.value,
            _workers.c.heartbeat_at > _seconds_ago(live_seconds),
            sa.or_(_workers.c.state == WorkerState.IDLE.value, ~holds_active_job),
        )
        .scalar_subquery()
    )
    return int(conn.execute(sa.select(active_jobs + idle_workers)).scalar_one())


def sweep_workers(conn: Connection, *, stale_seconds: float) -> list[str]:
    """Mark workers whose heartbeat is older than ``stale_seconds`` exited; forget old ones.

    A worker that died while assigned leaves a dispatched job: its lease (a running job's)
    expires and the sweep's requeue takes it back, as for any launch that never started.

    Returns:
        The ids of the workers marked exited now.
    """
    gone = conn.execute(
        sa.update(_workers)
        .where(
            _workers.c.state != WorkerState.EXITED.value,
            _workers.c.heartbeat_at < _seconds_ago(stale_seconds),
        )
        .values(state=WorkerState.EXITED.value, idle_since=None, updated_at=sa.func.now())
        .returning(_workers.c.id)
    ).scalars()
    marked = [str(worker_id) for worker_id in gone]
    conn.execute(
        sa.delete(_workers).where(
            _workers.c.state == WorkerState.EXITED.value,
            _workers.c.updated_at < _seconds_ago(_KEEP_EXITED_SECONDS),
        )
    )
    return marked
