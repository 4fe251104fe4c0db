"""Dispatch decisions in process, against real PostgreSQL and real launchers' refusals."""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import CapacityError, LaunchError, public_message
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.dispatcher import DispatchAction, dispatch_message
from podscribe.jobs.launchers.kubernetes import KubernetesLauncher
from podscribe.jobs.launchers.local import LocalProcessLauncher
from podscribe.jobs.launchers.vertex import VertexLauncher
from podscribe.messaging import JobMessage
from podscribe.settings import Settings
from tests.fakes.jobs import mark_resolved
from tests.fakes.vertex import FakeVertex
from tests.unit.test_launchers_local import STAND_IN


@pytest.fixture(scope="module")
def vertex() -> Iterator[FakeVertex]:
    with FakeVertex() as fake:
        yield fake


def submit(engine: Engine) -> Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=9,
            episode_id=uuid.uuid4().int % 10**12,
            source_url="https://podcasts.apple.com/us/podcast/x/id9?i=1",
            key_fingerprint="k",
        )
        return mark_resolved(conn, job)


def read(engine: Engine, job_id: str) -> Job:
    with transaction(engine) as conn:
        return jobs.get_job(conn, job_id)


def test_a_wakeup_for_an_unknown_job_is_skipped(
    engine: Engine, settings: Settings, vertex: FakeVertex
) -> None:
    launcher = VertexLauncher(
        settings.model_copy(update={"vertex_image": "i", "vertex_api_endpoint": vertex.endpoint})
    )
    outcome = dispatch_message(engine, settings, launcher, JobMessage(str(uuid.uuid4())))
    assert outcome.action is DispatchAction.SKIPPED
    assert outcome.reason == "unknown job"


def test_no_capacity_anywhere_on_the_last_attempt_fails_the_job(
    engine: Engine, settings: Settings, vertex: FakeVertex, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="podscribe.jobs.transitions")
    configured = settings.model_copy(
        update={
            "vertex_image": "i",
            "vertex_api_endpoint": vertex.endpoint,
            "region": "southamerica-east1",
            "vertex_fallbacks": ["northamerica-northeast1/g2-standard-8/NVIDIA_L4"],
            "max_attempts": 2,
        }
    )
    vertex.refuse_region("southamerica-east1")
    vertex.refuse_region("northamerica-northeast1")
    launcher = VertexLauncher(configured)
    job = submit(engine)

    with pytest.raises(CapacityError):
        dispatch_message(engine, configured, launcher, JobMessage(job.id))
    assert (read(engine, job.id).status, read(engine, job.id).attempts) == (JobStatus.QUEUED, 1)
    with pytest.raises(CapacityError):
        dispatch_message(engine, configured, launcher, JobMessage(job.id))

    failed = read(engine, job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == "capacity_exhausted"
    # The row says the code's message; which regions refused is for the logs.
    assert failed.error_message == public_message("capacity_exhausted")
    [logged] = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert "launch failed 2 time(s)" in logged.__dict__["detail"]
    # A later delivery of the same message finds nothing to do.
    late = dispatch_message(engine, configured, launcher, JobMessage(job.id))
    assert late.action is DispatchAction.SKIPPED


def test_a_full_local_slot_defers_without_spending_an_attempt(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "vertex_job").mkdir()
    (tmp_path / "vertex_job" / "__main__.py").write_text(STAND_IN)
    (tmp_path / "plans").mkdir()
    configured = settings.model_copy(
        update={"local_state_dir": tmp_path / "state", "local_max_jobs": 1}
    )
    launcher = LocalProcessLauncher(configured, cwd=tmp_path)
    running, waiting = submit(engine), submit(engine)
    (tmp_path / "plans" / running.id).write_text("sleep 30")
    (tmp_path / "plans" / waiting.id).write_text("exit 0")
    try:
        first = dispatch_message(engine, configured, launcher, JobMessage(running.id))
        assert first.action is DispatchAction.LAUNCHED
        assert first.launcher_ref == f"local:{running.id}-a1"
        with pytest.raises(CapacityError, match="no free slot"):
            dispatch_message(engine, configured, launcher, JobMessage(waiting.id))
        deferred = read(engine, waiting.id)
        assert (deferred.status, deferred.attempts) == (JobStatus.QUEUED, 0)
        row = read(engine, running.id)
        assert (row.launcher, row.launcher_ref) == ("local", first.launcher_ref)
    finally:
        pid_file = tmp_path / "state" / "jobs" / f"{running.id}-a1.pid"
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def test_an_unexpected_launcher_error_requeues_and_is_reported_as_a_launch_error(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    template = tmp_path / "not-a-job.yaml"
    template.write_text("apiVersion: v1\nkind: Pod\nmetadata: {}\n")
    configured = settings.model_copy(
        update={"launcher": "kubernetes", "k8s_job_template": template}
    )
    job = submit(engine)
    with pytest.raises(LaunchError, match="not a batch/v1 Job"):
        dispatch_message(engine, configured, KubernetesLauncher(configured), JobMessage(job.id))
    row = read(engine, job.id)
    assert (row.status, row.attempts) == (JobStatus.QUEUED, 1)


def test_a_wakeup_reads_the_job_row_once(
    engine: Engine, settings: Settings, vertex: FakeVertex
) -> None:
    launcher = VertexLauncher(
        settings.model_copy(update={"vertex_image": "i", "vertex_api_endpoint": vertex.endpoint})
    )
    job = submit(engine)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        outcome = dispatch_message(engine, settings, launcher, JobMessage(job.id))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert outcome.action is DispatchAction.LAUNCHED
    # Counting the GPUs in use (active jobs and idle warm workers: the launch cap) reads no row.
    reads = [
        s
        for s in statements
        if s.startswith("SELECT")
        and "FROM jobs" in s
        and not s.startswith(("SELECT count(*)", "SELECT (SELECT count(*)"))
    ]
    assert len(reads) == 1, reads
    assert reads[0].endswith("FOR UPDATE")
