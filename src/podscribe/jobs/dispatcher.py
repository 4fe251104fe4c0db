"""Dispatch: one wake-up message in, at most one launch out.

    message -> decode -> no episode yet? resolve it and probe its audio (CPU; failing here
            costs no GPU, see podscribe.jobs.preflight) -> the deployment's slot lock, then
            the row (not queued: nothing to do) -> an idle warm worker? claim and hand it
            over, no launch (podscribe.jobs.workers) -> a free slot
            (PODSCRIBE_MAX_CONCURRENT_JOBS counts GPUs: active jobs and idle warm workers;
            and the launcher's own)? -> claim -> launch -> record the launcher's ref

The claim is the conditional ``queued -> dispatched`` update of
:mod:`podscribe.jobs.claims`, on the row locked once per message: of five deliveries
of the same message (or five messages for the same job) exactly one wins; the others find
the job dispatched and acknowledge. The launch happens outside any transaction
(a GPU request may take seconds; no row lock is held that long).

A launch that fails puts the job back to ``queued`` and raises, so the function answers an
error and Pub/Sub redelivers with backoff. Each claim counts an attempt; the failure that uses
the last one fails the job (``launch_failed``, or ``capacity_exhausted``) and still raises,
so that with the subscription's ``max_delivery_attempts`` equal to ``PODSCRIBE_MAX_ATTEMPTS``
the message ends in the dead-letter topic. A launcher without a free slot is asked before the
claim, so waiting for capacity spends no attempt.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import (
    CapacityError,
    JobNotFoundError,
    JobStateConflictError,
    LaunchError,
    PodscribeError,
)
from podscribe.jobs import workers
from podscribe.jobs.launchers import Launcher, LaunchResult
from podscribe.jobs.model import JobStatus
from podscribe.jobs.preflight import resolve_before_launch
from podscribe.jobs.webhooks import notify_finished
from podscribe.messaging import JobMessage
from podscribe.settings import Settings

log = logging.getLogger(__name__)


class DispatchAction(enum.StrEnum):
    """What dispatching one message did."""

    LAUNCHED = "launched"
    ADOPTED = "adopted"
    HANDED_OVER = "handed_over"  # an idle warm worker took it: no launch
    SUCCEEDED = "succeeded"  # the publisher's transcript finished it: no launch
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class DispatchOutcome:
    """The result of handling one wake-up.

    Attributes:
        job_id: the job the message named.
        action: launched, adopted (an earlier launch still lives), handed over (an idle warm
            worker runs it, no launch), skipped (not queued, or unknown), failed (out of
            attempts), or succeeded (the publisher's transcript finished it before any launch).
        attempts: the job's attempts after this delivery, when known.
        launcher_ref: where it was launched.
        reason: why it was skipped or failed.
    """

    job_id: str
    action: DispatchAction
    attempts: int | None = None
    launcher_ref: str | None = None
    reason: str | None = None


def dispatch_message(
    engine: Engine, settings: Settings, launcher: Launcher, message: JobMessage
) -> DispatchOutcome:
    """Claim the message's job and launch it, at most once however often it is delivered.

    Args:
        engine: the database.
        settings: ``max_attempts``, ``dispatch_lease_seconds``, ``max_concurrent_jobs`` and
            the fetch settings (to resolve the episode) are read.
        launcher: where the job runs.
        message: the decoded wake-up.

    Returns:
        What happened; a duplicate, a late redelivery or an unknown job is ``skipped``; an
        episode that cannot be transcribed (not found, refused, not audio) is ``failed``
        without a launch.

    Raises:
        CapacityError: the deployment or the launcher has no free slot now (nothing claimed,
            no attempt spent).
        FetchError: resolving the episode failed transiently (nothing recorded).
        LaunchError: the launch failed; the job is back in the queue, or failed when that was
            its last attempt. Either way the message should be retried (or dead-lettered).
        DatabaseUnavailableError: the database could not be reached.
    """
    job_id = message.job_id
    found = _claim_and_launch(engine, settings, launcher, job_id, resolved=False)
    if isinstance(found, _Unresolved):
        # Outside every lock: a lookup and a probe take seconds, and cost no GPU.
        resolved = resolve_before_launch(engine, settings, found.job)
        if resolved is None:
            return DispatchOutcome(
                job_id, DispatchAction.FAILED, found.job.attempts, reason="failed before launch"
            )
        if resolved.status is JobStatus.SUCCEEDED:
            return DispatchOutcome(
                job_id, DispatchAction.SUCCEEDED, resolved.attempts, reason="publisher transcript"
            )
        found = _claim_and_launch(engine, settings, launcher, job_id, resolved=True)
    if isinstance(found, DispatchOutcome):
        return found
    if isinstance(found, _Unresolved):  # only ever returned when not resolved=True
        return DispatchOutcome(job_id, DispatchAction.SKIPPED, reason="episode unresolved")
    claimed, result = found
    with transaction(engine) as conn:
        try:
            jobs.record_launch(conn, claimed.id, launcher=launcher.name, launcher_ref=result.ref)
        except JobStateConflictError:
            # The job already finished (a fast local run) or was swept: nothing to record.
            log.info("the job moved on before its launch was recorded", extra={"job_id": job_id})
    action = DispatchAction.ADOPTED if result.adopted else DispatchAction.LAUNCHED
    log.info(
        "job launched",
        extra={
            "job_id": job_id,
            "attempt": claimed.attempts,
            "launcher": launcher.name,
            "launcher_ref": result.ref,
            "placement": result.detail,
            "adopted": result.adopted,
        },
    )
    return DispatchOutcome(job_id, action, claimed.attempts, result.ref)


@dataclass(frozen=True)
class _Unresolved:
    """A queued job whose episode dispatch must resolve before claiming it."""

    job: jobs.Job


def _claim_and_launch(
    engine: Engine, settings: Settings, launcher: Launcher, job_id: str, *, resolved: bool
) -> tuple[jobs.Job, LaunchResult] | DispatchOutcome | _Unresolved:
    """Claim the job and launch it, under the launcher's lock.

    The capacity check, the claim and the launch happen under the launcher's lock, and the
    claim's transaction inside it (never the other way round: two dispatches would each
    hold what the other waits for). The row is read once, locked, for the claim.

    Args:
        resolved: the episode was just resolved: claim even if the row shows none.
    """
    with launcher.exclusive():
        claimed = _claim_if_capacity(engine, settings, launcher, job_id, resolved=resolved)
        if isinstance(claimed, DispatchOutcome | _Unresolved):
            return claimed
        try:
            return claimed, launcher.launch(claimed)
        except Exception as error:
            _launch_failed(engine, settings, claimed, error)
            if isinstance(error, LaunchError):
                raise
            raise LaunchError(f"launching job {job_id} failed: {error}") from error


def _claim_if_capacity(
    engine: Engine, settings: Settings, launcher: Launcher, job_id: str, *, resolved: bool
) -> jobs.Job | DispatchOutcome | _Unresolved:
    """The claimed job, the outcome when there is nothing to launch, or the job when its
    episode must be resolved first (nothing claimed).

    Called under ``launcher.exclusive()``: the capacity seen here is still there at launch.
    A job that is not queued is skipped before capacity is asked about, so a duplicate
    delivery is acknowledged even when every slot is taken.

    Raises:
        CapacityError: no free slot (nothing claimed, no attempt spent).
    """
    with transaction(engine) as conn:
        # The slot lock first, then the row: every dispatch takes them in this order.
        jobs.hold_launch_slots(conn)
        try:
            current = jobs.lock_job(conn, job_id)
        except JobNotFoundError:
            log.warning("wake-up for an unknown job; acknowledging", extra={"job_id": job_id})
            return DispatchOutcome(job_id, DispatchAction.SKIPPED, reason="unknown job")
        if current.status is not JobStatus.QUEUED:
            return _not_claimed(job_id, DispatchAction.SKIPPED, current)
        if not current.episode and not resolved:
            return _Unresolved(current)
        handover = workers.hand_over(conn, current, settings=settings)
        if handover is not None:
            log.info(
                "job handed to a warm worker",
                extra={"job_id": job_id, "worker_id": handover.worker_id},
            )
            return DispatchOutcome(
                job_id,
                DispatchAction.HANDED_OVER,
                handover.job.attempts,
                handover.launcher_ref,
            )
        in_use = workers.gpus_in_use(conn, live_seconds=settings.lease_seconds)
        if in_use >= settings.max_concurrent_jobs:
            raise CapacityError(
                f"{in_use} GPUs are in use (jobs dispatched or running, idle warm workers); "
                f"PODSCRIBE_MAX_CONCURRENT_JOBS={settings.max_concurrent_jobs}: retry later"
            )
        if not launcher.has_capacity():
            raise CapacityError(f"the {launcher.name} launcher has no free slot; retry later")
        claim = jobs.claim(
            conn,
            current,
            lease_seconds=settings.dispatch_lease_seconds,
            max_attempts=settings.max_attempts,
        )
    if claim.claimed:
        return claim.job
    # Queued, not claimed: the claim found its attempts used up and failed it.
    return _not_claimed(job_id, DispatchAction.FAILED, claim.job)


def _not_claimed(job_id: str, action: DispatchAction, job: jobs.Job) -> DispatchOutcome:
    return DispatchOutcome(job_id, action, job.attempts, job.launcher_ref, job.status)


def _launch_failed(engine: Engine, settings: Settings, claimed: jobs.Job, error: Exception) -> None:
    """Back to the queue while attempts remain, else failed with the launch's error code."""
    code = error.code if isinstance(error, PodscribeError) else LaunchError.code
    last = claimed.attempts >= settings.max_attempts
    log.warning(
        "launch failed" + ("; no attempts left" if last else "; back to the queue"),
        extra={
            "job_id": claimed.id,
            "attempt": claimed.attempts,
            "code": code,
            "error": str(error),
        },
    )
    with transaction(engine) as conn:
        try:
            if last:
                jobs.fail(
                    conn,
                    claimed.id,
                    JobStatus.DISPATCHED,
                    code=code,
                    message=f"launch failed {claimed.attempts} time(s); last error: {error}",
                )
            else:
                # The history keeps the code; the error's text is in the log line above.
                jobs.requeue(
                    conn, claimed.id, JobStatus.DISPATCHED, reason=f"launch failed ({code})"
                )
        except JobStateConflictError:
            log.warning("the job moved during a failed launch", extra={"job_id": claimed.id})
            return
    if last:
        notify_finished(engine, settings, [claimed.id])
