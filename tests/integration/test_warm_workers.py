"""Warm workers: one job process, several episodes; dispatch hands jobs over instead of launching.

Real PostgreSQL (a fresh database per test), real ``python -m vertex_job`` processes started
by the local launcher, transcribing synthesized speech served by the loopback Apple stand-in
with faster-whisper (tiny.en, CPU int8) into fake-gcs-server. The claim races run the real
claim functions from threads with their own connections.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import CapacityError
from podscribe.jobs import Job, JobStatus, workers
from podscribe.jobs.dispatcher import DispatchAction, dispatch_message
from podscribe.jobs.launchers import LauncherState, LauncherStatus, LaunchResult
from podscribe.jobs.launchers.local import LocalProcessLauncher
from podscribe.jobs.preflight import resolve_before_launch
from podscribe.jobs.tables import job_events_table, workers_table
from podscribe.messaging import JobMessage
from podscribe.settings import Settings, env_name, load_settings
from podscribe.storage import TranscriptStore
from tests.fakes.jobs import mark_resolved
from tests.fakes.speech import make_episode

SHOW = FakeShow(name="The Loopback Hour")
BUCKET = "podscribe-warm-workers"


# --- helpers -------------------------------------------------------------------------------


def eventually(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Poll ``check`` until it returns something truthy (a cap on waiting, not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def read(engine: Engine, job_id: str) -> Job:
    with transaction(engine) as conn:
        return jobs.get_job(conn, job_id)


def worker_rows(engine: Engine) -> list[workers.Worker]:
    with transaction(engine) as conn:
        rows = conn.execute(sa.select(workers_table)).mappings().all()
    return [workers.Worker.from_row(row) for row in rows]


def dispatched_events(engine: Engine) -> Counter[str]:
    with transaction(engine) as conn:
        job_ids = conn.execute(
            sa.select(job_events_table.c.job_id).where(
                job_events_table.c.to_status == JobStatus.DISPATCHED.value
            )
        ).scalars()
        return Counter(str(job_id) for job_id in job_ids)


def lock_waits(engine: Engine) -> int:
    """Sessions of this database waiting for a row lock."""
    with transaction(engine) as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def new_job(engine: Engine, *, resolved: bool = True) -> Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=7,
            episode_id=uuid.uuid4().int % 10**12,
            source_url="https://podcasts.apple.com/us/podcast/x/id7?i=1",
            key_fingerprint="k",
        )
        return mark_resolved(conn, job) if resolved else job


def idle_worker(engine: Engine, *, launch_of: Job | None = None) -> str:
    """A worker row as a process leaves it after its first episode."""
    first = launch_of or new_job(engine, resolved=False)  # not one a worker may claim
    with transaction(engine) as conn:
        worker_id = workers.register(conn, launcher="recording", job_id=first.id)
        workers.become_idle(conn, worker_id)
    return worker_id


class RecordingLauncher:
    """Launches nothing; records what dispatch asked it to launch."""

    name = "recording"

    def __init__(self) -> None:
        self.launched: list[str] = []
        self._lock = threading.Lock()

    def exclusive(self) -> AbstractContextManager[None]:
        return nullcontext()

    def has_capacity(self) -> bool:
        return True

    def launch(self, job: Job) -> LaunchResult:
        with self._lock:
            self.launched.append(job.id)
        return LaunchResult(ref=f"recording:{job.id}")

    def status(self, ref: str) -> LauncherState:
        return LauncherState(LauncherStatus.RUNNING)


@pytest.fixture
def job_environment(
    monkeypatch: pytest.MonkeyPatch, gcs_emulator: str
) -> Callable[[Settings], None]:
    """Put settings into this process's environment: the local launcher's children inherit it."""

    def apply(settings: Settings) -> None:
        for name in list(os.environ):
            if name.startswith(("PODSCRIBE_", "WHISPER_")):
                monkeypatch.delenv(name)
        for field in settings.model_fields_set:
            value: Any = getattr(settings, field)
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            if isinstance(value, list):
                value = ",".join(str(item) for item in value)
            monkeypatch.setenv(env_name(field), str(value))
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)

    return apply


@pytest.fixture
def podcasts(tmp_path: Path) -> Iterator[tuple[FakeApplePodcasts, list[FakeEpisode]]]:
    episodes = []
    for index, seed in enumerate((21, 22, 23)):
        path, _ = make_episode(tmp_path, seconds=8, seed=seed, name=f"warm-{index}")
        episodes.append(
            FakeEpisode(2_100_000_000 + index, f"Warm {index}", audio=path.read_bytes())
        )
    with FakeApplePodcasts(SHOW, episodes) as apple:
        yield apple, episodes


def local_settings(
    apple: FakeApplePodcasts, database_url: str, tmp_path: Path, **overrides: Any
) -> Settings:
    TranscriptStore(load_settings(env="test", bucket=BUCKET)).ensure_bucket()
    return load_settings(
        env="local",
        database_url=database_url,
        bucket=BUCKET,
        launcher="local",
        local_state_dir=tmp_path / "state",
        local_max_jobs=2,
        work_dir=tmp_path / "work",
        db_wait_seconds=10,
        diarization="off",
        worker_poll_seconds=0.2,
        **apple.settings_overrides(),
        **overrides,
    )


def submit(engine: Engine, apple: FakeApplePodcasts, episode: FakeEpisode) -> Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=SHOW.collection_id,
            episode_id=episode.episode_id,
            source_url=apple.episode_link(episode),
            key_fingerprint="test-key",
        )
    return job


def succeeded(engine: Engine, job_id: str) -> Job | None:
    row = read(engine, job_id)
    if row.status is JobStatus.FAILED:
        raise AssertionError((row.error_code, row.error_message))
    return row if row.status is JobStatus.SUCCEEDED else None


def the_idle_worker(engine: Engine) -> workers.Worker | None:
    idle = [row for row in worker_rows(engine) if row.state is workers.WorkerState.IDLE]
    return idle[0] if idle else None


def job_process(launcher_ref: str, settings: Settings) -> psutil.Process:
    """The ``python -m vertex_job`` process of a local launch (the child of its shell)."""
    stem = launcher_ref.removeprefix("local:")
    shell = int((settings.local_state_dir / "jobs" / f"{stem}.pid").read_text().strip())
    [child] = psutil.Process(shell).children()
    return child


# --- real processes ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_warm_worker_takes_the_next_jobs_without_a_new_launch(
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    podcasts: tuple[FakeApplePodcasts, list[FakeEpisode]],
    job_environment: Callable[[Settings], None],
) -> None:
    apple, episodes = podcasts
    settings = local_settings(apple, database_url, tmp_path, worker_idle_seconds=30)
    job_environment(settings)
    launcher = LocalProcessLauncher(settings)

    first = submit(engine, apple, episodes[0])
    launch = dispatch_message(engine, settings, launcher, JobMessage(first.id))
    assert launch.action is DispatchAction.LAUNCHED
    eventually("the first job succeeded", lambda: succeeded(engine, first.id))
    worker = eventually("the worker idles", lambda: the_idle_worker(engine))
    assert worker.launcher == "local"
    assert worker.launcher_ref == launch.launcher_ref

    # Dispatch hands the second job to the idle worker: no launch.
    second = submit(engine, apple, episodes[1])
    handed = dispatch_message(engine, settings, launcher, JobMessage(second.id))
    assert handed.action is DispatchAction.HANDED_OVER
    assert handed.launcher_ref == launch.launcher_ref
    eventually("the second job succeeded", lambda: succeeded(engine, second.id))

    # A job queued with its episode resolved (dispatch found no slot, say) is claimed by the
    # worker itself, with no wake-up at all.
    third = submit(engine, apple, episodes[2])
    assert resolve_before_launch(engine, settings, third) is not None
    eventually("the third job succeeded", lambda: succeeded(engine, third.id))

    rows = [read(engine, job.id) for job in (first, second, third)]
    assert {row.launcher_ref for row in rows} == {launch.launcher_ref}
    assert {row.launcher for row in rows} == {"local"}
    assert all(row.attempts == 1 for row in rows)
    assert len(list((settings.local_state_dir / "jobs").glob("*.pid"))) == 1  # launched once
    with transaction(engine) as conn:
        details = {
            job.id: [event.detail for event in jobs.job_history(conn, job.id)]
            for job in (second, third)
        }
    assert f"handed to warm worker {worker.id}" in details[second.id]
    assert f"claimed by warm worker {worker.id}" in details[third.id]
    # One process ran all three.
    log = launcher.log_path(launch.launcher_ref or "").read_text()
    assert log.count("job succeeded") == 3

    # Preemption (SIGTERM) while idle: the row goes exited, nothing is left to it.
    process = job_process(launch.launcher_ref or "", settings)
    process.terminate()
    process.wait(timeout=30)
    [gone] = worker_rows(engine)
    assert gone.state is workers.WorkerState.EXITED
    assert launcher.running() == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_past_its_idle_time_exits_and_releases_its_lease(
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    podcasts: tuple[FakeApplePodcasts, list[FakeEpisode]],
    job_environment: Callable[[Settings], None],
) -> None:
    apple, episodes = podcasts
    settings = local_settings(apple, database_url, tmp_path, worker_idle_seconds=2)
    job_environment(settings)
    launcher = LocalProcessLauncher(settings)
    job = submit(engine, apple, episodes[0])
    launch = dispatch_message(engine, settings, launcher, JobMessage(job.id))
    ref = launch.launcher_ref or ""

    def exited() -> LauncherState | None:
        state = launcher.status(ref)
        return None if state.state is LauncherStatus.RUNNING else state

    state = eventually("the worker process exited", exited)
    assert state.state is LauncherStatus.SUCCEEDED, state.message  # exit status 0
    [worker] = worker_rows(engine)
    assert worker.state is workers.WorkerState.EXITED
    assert worker.job_id == job.id
    row = read(engine, job.id)
    assert row.status is JobStatus.SUCCEEDED
    with transaction(engine) as conn:
        assert jobs.count_active(conn) == 0
        assert workers.gpus_in_use(conn, live_seconds=settings.lease_seconds) == 0
    assert launcher.running() == 0


# --- the handshake and the claim race, in process ------------------------------------------


def test_an_exiting_worker_runs_the_job_handed_to_it_at_the_last_moment(
    engine: Engine, settings: Settings
) -> None:
    worker_id = idle_worker(engine)
    job = new_job(engine)
    with transaction(engine) as conn:
        handover = workers.hand_over(conn, jobs.lock_job(conn, job.id), settings=settings)
    assert handover is not None and handover.worker_id == worker_id
    with transaction(engine) as conn:
        assert not workers.retire(conn, worker_id)  # assigned: it may not leave
    with transaction(engine) as conn:
        assert workers.take_job(conn, worker_id, settings=settings) == job.id
    with transaction(engine) as conn:
        assert workers.retire(conn, worker_id)  # busy with nothing assigned: it may
    assert read(engine, job.id).status is JobStatus.DISPATCHED


def test_two_workers_never_take_the_same_job(engine: Engine, settings: Settings) -> None:
    settings = settings.model_copy(update={"max_concurrent_jobs": 1000})
    queued = [new_job(engine) for _ in range(60)]
    worker_ids = [idle_worker(engine) for _ in range(3)]
    expected = {job.id for job in queued}
    taken: dict[str, list[str]] = {worker_id: [] for worker_id in worker_ids}
    launcher = RecordingLauncher()
    done = threading.Event()
    errors: list[BaseException] = []

    def work(worker_id: str) -> None:
        try:
            while not done.is_set():
                with transaction(engine) as conn:
                    job_id = workers.take_job(conn, worker_id, settings=settings)
                    if job_id is not None:
                        workers.become_idle(conn, worker_id)  # "ran" it: next one
                if job_id is not None:
                    taken[worker_id].append(job_id)
        except Exception as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    def dispatch() -> None:
        try:
            for job in queued:  # every wake-up, while the workers claim on their own
                dispatch_message(engine, settings, launcher, JobMessage(job.id))
        except Exception as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker_id,)) for worker_id in worker_ids]
    threads.append(threading.Thread(target=dispatch))
    for thread in threads:
        thread.start()

    def drained() -> bool:
        with transaction(engine) as conn:
            waiting = conn.execute(
                sa.select(sa.func.count())
                .select_from(workers_table)
                .where(workers_table.c.state == "assigned")
            ).scalar_one()
        took = sum(len(ids) for ids in taken.values()) + len(launcher.launched)
        return not threads[-1].is_alive() and waiting == 0 and took >= len(expected)

    try:
        eventually("every job was taken", drained, timeout=120)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    everything = [job_id for ids in taken.values() for job_id in ids] + launcher.launched
    assert Counter(everything) == Counter(expected)  # each exactly once, none lost
    assert all(taken.values())  # every worker got some
    events = dispatched_events(engine)
    assert set(events) == expected and set(events.values()) == {1}
    assert all(read(engine, job_id).status is JobStatus.DISPATCHED for job_id in expected)


def test_dispatch_hands_over_to_an_idle_worker_and_counts_idle_workers_as_gpus(
    engine: Engine, settings: Settings
) -> None:
    settings = settings.model_copy(update={"max_concurrent_jobs": 2})
    launcher = RecordingLauncher()

    # No worker: a launch, as always.
    launched = new_job(engine)
    outcome = dispatch_message(engine, settings, launcher, JobMessage(launched.id))
    assert outcome.action is DispatchAction.LAUNCHED and launcher.launched == [launched.id]

    # An idle worker: handed over, no launch; the job runs in the worker's launch.
    worker_id = idle_worker(engine, launch_of=read(engine, launched.id))
    handed = new_job(engine)
    outcome = dispatch_message(engine, settings, launcher, JobMessage(handed.id))
    assert outcome.action is DispatchAction.HANDED_OVER
    assert outcome.launcher_ref == f"recording:{launched.id}"
    assert launcher.launched == [launched.id]
    row = read(engine, handed.id)
    assert row.status is JobStatus.DISPATCHED
    assert (row.launcher, row.launcher_ref) == ("recording", f"recording:{launched.id}")
    [worker] = worker_rows(engine)
    assert (worker.id, worker.state, worker.job_id) == (
        worker_id,
        workers.WorkerState.ASSIGNED,
        handed.id,
    )

    # GPUs: two active jobs (the worker holds one of them) and one worker: 2.
    with transaction(engine) as conn:
        assert workers.gpus_in_use(conn, live_seconds=settings.lease_seconds) == 2
    # Both jobs finish; the worker idles but has missed its polls (a database hiccup): it is
    # handed nothing, yet still holds its GPU until the sweep says it is gone: 1 GPU in use,
    # so one launch fits, the next does not.
    with transaction(engine) as conn:
        for job_id in (launched.id, handed.id):
            jobs.fail(conn, job_id, JobStatus.DISPATCHED, code="test", message="ended")
        workers.become_idle(conn, worker_id)
        conn.execute(
            sa.update(workers_table)
            .where(workers_table.c.id == worker_id)
            .values(heartbeat_at=sa.func.now() - sa.text("interval '60 seconds'"))
        )
    first, second = new_job(engine), new_job(engine)
    outcome = dispatch_message(engine, settings, launcher, JobMessage(first.id))
    assert outcome.action is DispatchAction.LAUNCHED
    with pytest.raises(CapacityError, match="2 GPUs are in use"):
        dispatch_message(engine, settings, launcher, JobMessage(second.id))
    assert read(engine, second.id).status is JobStatus.QUEUED  # no attempt spent
    # The worker polls again (its heartbeat): the waiting job goes to it.
    with transaction(engine) as conn:
        workers.beat(conn, worker_id)
    outcome = dispatch_message(engine, settings, launcher, JobMessage(second.id))
    assert outcome.action is DispatchAction.HANDED_OVER


def test_dispatch_waits_for_a_worker_in_the_middle_of_its_poll(
    engine: Engine, settings: Settings
) -> None:
    worker_id = idle_worker(engine)
    job = new_job(engine)
    outcomes: list[DispatchAction] = []
    with engine.connect() as polling, polling.begin():
        polling.execute(  # the worker's poll holds its row
            sa.select(workers_table).where(workers_table.c.id == worker_id).with_for_update()
        )
        dispatch = threading.Thread(
            target=lambda: outcomes.append(
                dispatch_message(engine, settings, RecordingLauncher(), JobMessage(job.id)).action
            )
        )
        dispatch.start()
        eventually("dispatch waits for the worker's row", lambda: lock_waits(engine) == 1)
        assert outcomes == []
    dispatch.join(timeout=30)
    assert outcomes == [DispatchAction.HANDED_OVER]  # waited for, not passed over


def test_the_sweep_marks_workers_with_a_stale_heartbeat_exited(
    engine: Engine, settings: Settings
) -> None:
    alive, dead = idle_worker(engine), idle_worker(engine)
    with transaction(engine) as conn:
        conn.execute(
            sa.update(workers_table)
            .where(workers_table.c.id == dead)
            .values(heartbeat_at=sa.func.now() - sa.text("interval '1 hour'"))
        )
        assert workers.gpus_in_use(conn, live_seconds=settings.lease_seconds) == 1
        assert workers.sweep_workers(conn, stale_seconds=settings.lease_seconds) == [dead]
    states = {row.id: row.state for row in worker_rows(engine)}
    assert states == {alive: workers.WorkerState.IDLE, dead: workers.WorkerState.EXITED}
    # A dead worker is never handed a job.
    job = new_job(engine)
    with transaction(engine) as conn:
        handover = workers.hand_over(conn, jobs.lock_job(conn, job.id), settings=settings)
    assert handover is not None and handover.worker_id == alive


def test_a_job_launched_onto_a_warm_workers_process_is_run_by_it(
    engine: Engine, settings: Settings
) -> None:
    # The local launcher adopts a live process of an earlier attempt of the same job; when
    # that process has become a warm worker, the new attempt is the worker's to run.
    job = new_job(engine, resolved=False)
    ref = f"local:{job.id}-a1"
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.record_launch(conn, job.id, launcher="local", launcher_ref=ref)
        jobs.requeue(conn, job.id, JobStatus.DISPATCHED, reason="test")
    worker_id = idle_worker(engine, launch_of=job)
    with transaction(engine) as conn:
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.record_launch(conn, job.id, launcher="local", launcher_ref=ref)  # adopted
    with transaction(engine) as conn:
        assert workers.take_job(conn, worker_id, settings=settings) == job.id
    [worker] = worker_rows(engine)
    assert (worker.state, worker.job_id, worker.launcher_ref) == (
        workers.WorkerState.BUSY,
        job.id,
        ref,
    )
