"""The job state machine against a real PostgreSQL: races, refusals, the sweep."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import IllegalTransitionError, JobNotFoundError, JobStateConflictError
from podscribe.jobs import JobStatus, SubmitOutcome
from podscribe.settings import Settings

T = TypeVar("T")


def submit(engine: Engine, episode_id: int = 1000, fingerprint: str = "key-a") -> jobs.Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=42,
            episode_id=episode_id,
            source_url=f"https://podcasts.apple.com/us/podcast/x/id42?i={episode_id}",
            key_fingerprint=fingerprint,
        )
    return job


def race(count: int, action: Callable[[], T]) -> list[T | BaseException]:
    """Run ``action`` in ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)
    results: list[T | BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            outcome: T | BaseException = action()
        except BaseException as error:  # noqa: BLE001 - returned to the test
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def wide_engine(settings: Settings, engine: Engine) -> Engine:
    engine.dispose()
    return sa.create_engine(engine.url, pool_size=20, max_overflow=5)


def test_twenty_racing_claims_one_wins(wide_engine: Engine) -> None:
    job = submit(wide_engine)

    def claim() -> jobs.Job | None:
        with transaction(wide_engine) as conn:
            return jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)

    results = race(20, claim)
    winners = [result for result in results if isinstance(result, jobs.Job)]
    assert len(results) == 20
    assert all(result is None or isinstance(result, jobs.Job) for result in results)
    assert len(winners) == 1
    assert winners[0].status is JobStatus.DISPATCHED
    assert winners[0].attempts == 1
    with transaction(wide_engine) as conn:
        history = jobs.job_history(conn, job.id)
    assert [(e.from_status, e.to_status) for e in history] == [
        (None, JobStatus.QUEUED),
        (JobStatus.QUEUED, JobStatus.DISPATCHED),
    ]


def test_twenty_racing_submissions_make_one_row(wide_engine: Engine) -> None:
    def create() -> tuple[jobs.Job, SubmitOutcome]:
        with transaction(wide_engine) as conn:
            return jobs.create_or_get_job(
                conn,
                collection_id=7,
                episode_id=8,
                source_url="https://podcasts.apple.com/x",
                key_fingerprint="key-a",
            )

    results = race(20, create)
    assert not [result for result in results if isinstance(result, BaseException)]
    ids = {result[0].id for result in results if isinstance(result, tuple)}
    outcomes = [result[1] for result in results if isinstance(result, tuple)]
    assert len(ids) == 1
    assert outcomes.count(SubmitOutcome.CREATED) == 1
    assert outcomes.count(SubmitOutcome.EXISTING) == 19
    with wide_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar() == 1


def test_claim_next_queued_skips_locked_rows(engine: Engine) -> None:
    first, second = submit(engine, 1), submit(engine, 2)
    with transaction(engine) as holder:
        claimed = jobs.claim_next_queued(holder, lease_seconds=60, max_attempts=3)
        assert claimed is not None and claimed.id == first.id
        with transaction(engine) as other:
            # first is locked by the open transaction: the other claimer gets the next one
            taken = jobs.claim_next_queued(other, lease_seconds=60, max_attempts=3)
            assert taken is not None and taken.id == second.id
            assert jobs.claim_next_queued(other, lease_seconds=60, max_attempts=3) is None


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (JobStatus.QUEUED, JobStatus.RUNNING),
        (JobStatus.QUEUED, JobStatus.QUEUED),
        (JobStatus.DISPATCHED, JobStatus.SUCCEEDED),
        (JobStatus.SUCCEEDED, JobStatus.DISPATCHED),
        (JobStatus.SUCCEEDED, JobStatus.RUNNING),
        (JobStatus.FAILED, JobStatus.RUNNING),
        (JobStatus.FAILED, JobStatus.SUCCEEDED),
        (JobStatus.RUNNING, JobStatus.DISPATCHED),
    ],
)
def test_illegal_transitions_are_refused(
    engine: Engine, start: JobStatus, target: JobStatus
) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        with pytest.raises(IllegalTransitionError):
            jobs.transition(conn, job.id, start, target)
        assert jobs.get_job(conn, job.id).status is JobStatus.QUEUED


def test_becoming_active_without_a_lease_is_refused(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        with pytest.raises(IllegalTransitionError, match="only with a lease"):
            jobs.transition(conn, job.id, JobStatus.QUEUED, JobStatus.DISPATCHED)
        assert jobs.get_job(conn, job.id).status is JobStatus.QUEUED
    with (
        pytest.raises(sa.exc.DBAPIError, match="jobs_active_has_lease"),
        transaction(engine) as conn,
    ):
        conn.execute(sa.text("UPDATE jobs SET status = 'running' WHERE id = :id"), {"id": job.id})


def test_a_transition_from_the_wrong_state_is_a_conflict(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn, pytest.raises(JobStateConflictError, match="is queued"):
        jobs.start_running(conn, job.id, lease_seconds=60)
    with transaction(engine) as conn:
        assert jobs.get_job(conn, job.id).status is JobStatus.QUEUED


def test_full_life_and_history(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.record_launch(conn, job.id, launcher="local", launcher_ref="pid:1")
        running = jobs.start_running(
            conn, job.id, lease_seconds=60, model="tiny.en", device="cpu", compute_type="int8"
        )
        assert running.started_at is not None and running.lease_expires_at is not None
        jobs.heartbeat(conn, job.id, lease_seconds=60, progress=0.5)
        again = jobs.heartbeat(conn, job.id, lease_seconds=60, progress=0.2)
        assert again.progress == 0.5  # never backwards
        done = jobs.succeed(
            conn,
            job.id,
            transcript_objects={"json": f"transcripts/{job.id}/transcript.json"},
        )
    assert done.status is JobStatus.SUCCEEDED
    assert done.progress == 1.0
    assert done.transcript_objects == {"json": f"transcripts/{job.id}/transcript.json"}
    assert (done.model, done.device, done.compute_type) == ("tiny.en", "cpu", "int8")
    assert done.launcher_ref == "pid:1"
    assert done.finished_at is not None and done.finished_at >= done.started_at  # type: ignore[operator]
    with transaction(engine) as conn:
        history = jobs.job_history(conn, job.id)
    assert [e.to_status for e in history] == [
        JobStatus.QUEUED,
        JobStatus.DISPATCHED,
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
    ]


def test_heartbeat_after_the_sweep_took_the_job_back_tells_the_worker(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job.id, lease_seconds=0)
    with transaction(engine) as conn:
        report = jobs.sweep(conn, max_attempts=3, requeue_after_seconds=60)
    assert report.requeued == [job.id]
    with transaction(engine) as conn, pytest.raises(JobStateConflictError):
        jobs.heartbeat(conn, job.id, lease_seconds=60, progress=0.9)


def test_sweep_requeues_an_expired_lease_and_fails_past_the_limit(engine: Engine) -> None:
    alive, expired, exhausted = submit(engine, 1), submit(engine, 2), submit(engine, 3)
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, alive.id, lease_seconds=600, max_attempts=3)
        jobs.claim_for_dispatch(conn, expired.id, lease_seconds=600, max_attempts=3)
        jobs.start_running(conn, expired.id, lease_seconds=0)
        for attempt in range(3):
            jobs.claim_for_dispatch(conn, exhausted.id, lease_seconds=0, max_attempts=3)
            if attempt < 2:
                jobs.requeue(conn, exhausted.id, JobStatus.DISPATCHED, reason="launch failed")
    with transaction(engine) as conn:
        report = jobs.sweep(conn, max_attempts=3, requeue_after_seconds=3600)
        assert report.requeued == [expired.id]
        assert report.failed == [exhausted.id]
        assert report.rewake == [expired.id]
        requeued = jobs.get_job(conn, expired.id)
        assert requeued.status is JobStatus.QUEUED and requeued.attempts == 1
        failed = jobs.get_job(conn, exhausted.id)
        assert failed.status is JobStatus.FAILED
        assert failed.error_code == "attempts_exhausted"
        assert failed.attempts == 3
        assert jobs.get_job(conn, alive.id).status is JobStatus.DISPATCHED


def test_a_claim_past_the_attempt_limit_fails_the_job(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        for _ in range(2):
            assert jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=2)
            jobs.requeue(conn, job.id, JobStatus.DISPATCHED, reason="launch failed")
        assert jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=2) is None
        failed = jobs.get_job(conn, job.id)
    assert (failed.status, failed.error_code, failed.attempts) == (
        JobStatus.FAILED,
        "attempts_exhausted",
        2,
    )


def test_sweep_rewakes_forgotten_queued_jobs_once(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        assert jobs.sweep(conn, max_attempts=3, requeue_after_seconds=3600).rewake == []
        assert jobs.sweep(conn, max_attempts=3, requeue_after_seconds=0).rewake == [job.id]


def test_resubmitting_a_failed_job_requeues_it(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.fail(conn, job.id, JobStatus.DISPATCHED, code="launch_failed", message="boom")
    with transaction(engine) as conn:
        again, outcome = jobs.create_or_get_job(
            conn,
            collection_id=42,
            episode_id=1000,
            source_url="https://x",
            key_fingerprint="b",
        )
    assert outcome is SubmitOutcome.REQUEUED
    assert again.id == job.id
    assert again.status is JobStatus.QUEUED
    assert (again.attempts, again.error_code, again.error_message) == (0, None, None)


def test_jobs_are_visible_only_to_keys_that_submitted_them(engine: Engine) -> None:
    job = submit(engine, fingerprint="key-a")
    with transaction(engine) as conn:
        assert jobs.get_job(conn, job.id, key_fingerprint="key-a").id == job.id
        with pytest.raises(JobNotFoundError):
            jobs.get_job(conn, job.id, key_fingerprint="key-b")
    submit(engine, fingerprint="key-b")  # asking for the same episode grants access
    with transaction(engine) as conn:
        assert jobs.get_job(conn, job.id, key_fingerprint="key-b").id == job.id


@pytest.mark.parametrize("bad_id", ["nope", "", "123", "00000000-0000-0000-0000-000000000000"])
def test_unknown_or_malformed_ids_are_not_found(engine: Engine, bad_id: str) -> None:
    with transaction(engine) as conn, pytest.raises(JobNotFoundError):
        jobs.get_job(conn, bad_id)


def test_the_schema_refuses_a_failed_job_without_a_reason(engine: Engine) -> None:
    job = submit(engine)
    with (
        pytest.raises(sa.exc.DBAPIError, match="jobs_failed_has_reason"),
        transaction(engine) as conn,
    ):
        conn.execute(sa.text("UPDATE jobs SET status = 'failed' WHERE id = :id"), {"id": job.id})


def test_a_claim_returns_the_row_as_it_left_it(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        won = jobs.claim(conn, jobs.lock_job(conn, job.id), lease_seconds=60, max_attempts=3)
    assert won.claimed
    assert (won.job.id, won.job.status, won.job.attempts) == (job.id, JobStatus.DISPATCHED, 1)
    assert won.job.lease_expires_at is not None
    with transaction(engine) as conn:
        again = jobs.claim(conn, jobs.lock_job(conn, job.id), lease_seconds=60, max_attempts=3)
    assert not again.claimed
    assert again.job == won.job


def test_a_claim_past_the_limit_returns_the_failed_row(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=1)
        jobs.requeue(conn, job.id, JobStatus.DISPATCHED, reason="launch failed")
        outcome = jobs.claim(conn, jobs.lock_job(conn, job.id), lease_seconds=60, max_attempts=1)
    assert not outcome.claimed
    assert (outcome.job.status, outcome.job.error_code) == (JobStatus.FAILED, "attempts_exhausted")


def test_ids_are_accepted_as_uuids_or_their_strings(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        assert jobs.get_job(conn, uuid.UUID(job.id)) == jobs.get_job(conn, job.id)
        claimed = jobs.claim_for_dispatch(conn, uuid.UUID(job.id), lease_seconds=60, max_attempts=3)
    assert claimed is not None
    assert claimed.id == job.id


def test_requeue_keeps_attempts_and_afresh_clears_them(engine: Engine) -> None:
    job = submit(engine)
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job.id, lease_seconds=60)
        jobs.heartbeat(conn, job.id, lease_seconds=60, progress=0.4)
        back = jobs.requeue(conn, job.id, JobStatus.RUNNING, reason="storage_unavailable")
        assert (back.status, back.attempts, back.progress) == (JobStatus.QUEUED, 1, 0.4)
        assert back.lease_expires_at is None
        with pytest.raises(JobStateConflictError):
            jobs.requeue(conn, job.id, JobStatus.DISPATCHED, reason="late")
        with pytest.raises(IllegalTransitionError):
            jobs.requeue(conn, job.id, JobStatus.QUEUED, reason="never")
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.fail(conn, job.id, JobStatus.DISPATCHED, code="launch_failed", message="boom")
        fresh = jobs.requeue(conn, job.id, JobStatus.FAILED, reason="resubmitted", afresh=True)
        history = jobs.job_history(conn, job.id)
    assert (fresh.attempts, fresh.progress, fresh.error_code, fresh.finished_at) == (
        0,
        0.0,
        None,
        None,
    )
    assert [event.detail for event in history][-3:] == ["claimed", "launch_failed", "resubmitted"]
