"""Property: whatever sequence of operations runs, every job stays in a legal state and its
history is a chain of legal, ordered transitions. Real PostgreSQL, hypothesis-driven."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import IllegalTransitionError, JobStateConflictError
from podscribe.jobs import TRANSITIONS, JobStatus

MAX_ATTEMPTS = 2
OPERATIONS = [
    "submit",
    "claim",
    "release",
    "start",
    "heartbeat",
    "expire_and_sweep",
    "succeed",
    "fail",
    "arbitrary",
]
_episodes = itertools.count(1)

operation = st.tuples(
    st.sampled_from(OPERATIONS),
    st.integers(0, 2),
    st.sampled_from(list(JobStatus)),
    st.sampled_from(list(JobStatus)),
)


def apply(
    engine: Engine, ids: list[str], base: int, op: tuple[str, int, JobStatus, JobStatus]
) -> None:
    name, index, source, target = op
    job_id = ids[index % len(ids)]
    with transaction(engine) as conn:
        try:
            if name == "submit":
                jobs.create_or_get_job(
                    conn,
                    collection_id=1,
                    episode_id=base + index % len(ids),
                    source_url="https://x",
                    key_fingerprint="k",
                )
            elif name == "claim":
                jobs.claim_for_dispatch(conn, job_id, lease_seconds=60, max_attempts=MAX_ATTEMPTS)
            elif name == "release":
                jobs.requeue(conn, job_id, JobStatus.DISPATCHED, reason="launch failed")
            elif name == "start":
                jobs.start_running(conn, job_id, lease_seconds=60)
            elif name == "heartbeat":
                jobs.heartbeat(conn, job_id, lease_seconds=60, progress=0.5)
            elif name == "expire_and_sweep":
                conn.exec_driver_sql(
                    "UPDATE jobs SET lease_expires_at = now() - interval '1 second'"
                    " WHERE id = %s AND status IN ('dispatched', 'running')",
                    (job_id,),
                )
                jobs.sweep(conn, max_attempts=MAX_ATTEMPTS, requeue_after_seconds=0)
            elif name == "succeed":
                jobs.succeed(conn, job_id, transcript_objects={"txt": "t"})
            elif name == "fail":
                current = jobs.get_job(conn, job_id).status
                jobs.fail(conn, job_id, current, code="transcription_failed", message="x")
            else:
                jobs.transition(conn, job_id, source, target, changes={"error_code": "x"})
        except (IllegalTransitionError, JobStateConflictError):
            pass


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(operation, min_size=1, max_size=25))
def test_any_sequence_leaves_legal_states_and_monotone_histories(
    engine: Engine, ops: list[tuple[str, int, JobStatus, JobStatus]]
) -> None:
    base = next(_episodes) * 10
    ids = []
    with transaction(engine) as conn:
        for offset in range(3):
            job, _ = jobs.create_or_get_job(
                conn,
                collection_id=1,
                episode_id=base + offset,
                source_url="https://x",
                key_fingerprint="k",
            )
            ids.append(job.id)
    for op in ops:
        apply(engine, ids, base, op)
    with transaction(engine) as conn:
        for job_id in ids:
            job = jobs.get_job(conn, job_id)
            history = jobs.job_history(conn, job_id)
            assert history[0].from_status is None and history[0].to_status is JobStatus.QUEUED
            for before, after in itertools.pairwise(history):
                assert after.seq > before.seq
                assert after.at >= before.at
                assert after.from_status is before.to_status
                assert after.to_status in TRANSITIONS[before.to_status]
            assert history[-1].to_status is job.status
            assert 0 <= job.attempts <= MAX_ATTEMPTS
            assert 0.0 <= job.progress <= 1.0
            if job.status is JobStatus.FAILED:
                assert job.error_code
            if job.status is JobStatus.SUCCEEDED:
                assert job.transcript_objects and job.progress == 1.0
            if job.status in (JobStatus.DISPATCHED, JobStatus.RUNNING):
                assert job.lease_expires_at is not None
