"""The sweep: the periodic repair that makes lost messages and dead workers harmless.

Four steps, each safe to run twice or concurrently (the second also marks warm workers whose
heartbeat is older than a lease exited, :func:`podscribe.jobs.workers.sweep_workers`):

1. Reconcile with the launcher: a dispatched or running job whose launch the launcher reports
   FAILED or CANCELLED (a crashed or OOM-killed container, a preempted VM, a CustomJob refused
   for capacity after creation) goes back to the queue while it has attempts left, to resume
   from its last checkpoint; on its last attempt it fails with code ``worker_failed``.
2. :func:`podscribe.jobs.claims.sweep`: expired leases back to the queue (or failed past the attempt
   limit), and queued jobs whose wake-up was lost.
3. Publish a wake-up for every job that is queued again, so dispatch launches it.
4. Send every due webhook delivery of the outbox again
   (:func:`~podscribe.jobs.webhooks.deliver_due`).

Triggered by Cloud Scheduler through a Pub/Sub topic in GCP, by a timer in the local profile.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.api.idempotency import entry_ttl, purge_expired
from podscribe.db import transaction
from podscribe.errors import JobStateConflictError, LaunchError, PublishError, WorkerFailedError
from podscribe.jobs.budgets import purge_launch_requests
from podscribe.jobs.launchers import Launcher
from podscribe.jobs.model import Job
from podscribe.jobs.webhooks import deliver_due, notify_finished
from podscribe.jobs.workers import sweep_workers
from podscribe.messaging import JobMessage, Publisher
from podscribe.settings import JobSettings, Settings

log = logging.getLogger(__name__)

_RECONCILE_BATCH = 500
_CAPACITY = re.compile(r"resources are insufficient|insufficient resources|stockout", re.I)


@dataclass(frozen=True)
class SweepOutcome:
    """What one sweep did.

    Attributes:
        worker_failed: jobs failed because their launch ended badly on their last attempt.
        relaunched: jobs returned to the queue because their launch ended badly (a
            crash, a preemption, no GPU) with attempts left.
        requeued: jobs whose lease expired, back in the queue.
        failed: jobs whose lease expired with no attempts left.
        republished: jobs a wake-up was published for.
        unpublished: jobs whose wake-up could not be published (the next sweep retries).
        webhooks_delivered: webhook deliveries (by id) delivered by the sweep's retry round.
        workers_exited: warm workers marked exited because their heartbeat went stale.
    """

    worker_failed: list[str] = field(default_factory=list)
    relaunched: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)
    webhooks_delivered: list[str] = field(default_factory=list)
    workers_exited: list[str] = field(default_factory=list)


def _launched_jobs(engine: Engine, launcher_name: str) -> list[Job]:
    with transaction(engine) as conn:
        return jobs.launched_jobs(conn, launcher=launcher_name, limit=_RECONCILE_BATCH)


def reconcile(
    engine: Engine, settings: JobSettings, launcher: Launcher
) -> tuple[list[str], list[str]]:
    """Requeue (or, out of attempts, fail) jobs whose launch the launcher reports ended badly.

    Returns:
        The ids failed with ``worker_failed``, and those requeued for another attempt.
    """
    failed: list[str] = []
    requeued: list[str] = []
    for job in _launched_jobs(engine, launcher.name):
        ref = job.launcher_ref or ""
        try:
            state = launcher.status(ref)
        except LaunchError as error:
            log.warning("could not ask the launcher", extra={"job_id": job.id, "error": str(error)})
            continue
        if not state.state.ended_badly:
            continue
        reason = state.message or state.state.value
        # A crash, an OOM kill, a preempted VM or a GPU that never came: the job did not
        # record an outcome itself, so it gets another attempt (resuming from its
        # checkpoint) while it has attempts left.
        retry = job.attempts < settings.max_attempts
        note = "no capacity" if _CAPACITY.search(reason) else "worker_failed"
        with transaction(engine) as conn:
            try:
                if retry:
                    # The launcher's reason is logged below; the history keeps the outcome.
                    jobs.requeue(conn, job.id, job.status, reason=note)
                    requeued.append(job.id)
                else:
                    jobs.fail(
                        conn,
                        job.id,
                        job.status,
                        code=WorkerFailedError.code,
                        message=f"{launcher.name} job {ref} ended {state.state.value}: {reason}",
                    )
                    failed.append(job.id)
            except JobStateConflictError:
                continue  # it moved meanwhile (finished, or failed by itself): its own story
        log.warning(
            "launched job ended badly",
            extra={"job_id": job.id, "launcher_ref": ref, "state": state.state, "reason": reason},
        )
    return failed, requeued


def run_sweep(
    engine: Engine, settings: Settings, launcher: Launcher, publisher: Publisher
) -> SweepOutcome:
    """Reconcile, reclaim expired leases, and re-wake queued jobs.

    Args:
        engine: the database.
        settings: ``max_attempts`` and ``requeue_after_seconds`` are read.
        launcher: asked about the jobs it launched.
        publisher: publishes the wake-ups (Pub/Sub or the Redis stream).

    Returns:
        What the sweep did.

    Raises:
        DatabaseUnavailableError: the database could not be reached.
    """
    worker_failed, relaunched = reconcile(engine, settings, launcher)
    with transaction(engine) as conn:
        report = jobs.sweep(
            conn,
            max_attempts=settings.max_attempts,
            requeue_after_seconds=settings.requeue_after_seconds,
        )
        purge_launch_requests(conn)  # starts past the hour a key's budget counts
        purge_expired(conn, entry_ttl(settings))  # Idempotency-Keys past their TTL
        workers_exited = sweep_workers(conn, stale_seconds=settings.lease_seconds)
    outcome = SweepOutcome(
        worker_failed=worker_failed,
        relaunched=relaunched,
        requeued=list(report.requeued),
        failed=list(report.failed),
        workers_exited=workers_exited,
    )
    notify_finished(engine, settings, [*worker_failed, *report.failed])
    for job_id in dict.fromkeys([*report.rewake, *relaunched]):
        try:
            publisher.publish(JobMessage(job_id))
            outcome.republished.append(job_id)
        except PublishError as error:
            log.warning("could not re-wake a job", extra={"job_id": job_id, "error": str(error)})
            outcome.unpublished.append(job_id)
    # Every due webhook delivery: retries with backoff, and first tries a crash left behind.
    outcome.webhooks_delivered.extend(deliver_due(engine, settings).delivered)
    log.info(
        "sweep done",
        extra={
            "worker_failed": len(outcome.worker_failed),
            "relaunched": len(outcome.relaunched),
            "requeued": len(outcome.requeued),
            "failed": len(outcome.failed),
            "republished": len(outcome.republished),
            "unpublished": len(outcome.unpublished),
            "webhooks_delivered": len(outcome.webhooks_delivered),
            "workers_exited": len(outcome.workers_exited),
        },
    )
    return outcome
