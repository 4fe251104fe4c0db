"""Wake-ups on a Redis stream, against real Redis and real PostgreSQL.

Duplicate, lost, abandoned, poisonous and overabundant wake-ups: in every case each job is
launched exactly once, and nothing is left pending. Each test has a stream of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe import jobs
from podscribe.db import transaction
from podscribe.errors import PublishError
from podscribe.jobs import Job, JobStatus
from podscribe.jobs.launchers import LauncherState, LauncherStatus, LaunchResult
from podscribe.jobs.stream_consumer import StreamConsumer
from podscribe.jobs.sweeper import run_sweep
from podscribe.messaging import JobMessage, publisher_for
from podscribe.settings import Settings
from podscribe.wakeup_streams import StreamPublisher
from tests.fakes.jobs import mark_resolved
from tests.services import REDIS_URL, free_port, missing_service

REPO = Path(__file__).resolve().parents[2]
PATIENCE_SECONDS = 60.0
"""A generous cap on waiting for a subprocess or a retry: a bound, never a measured time."""


class CountingLauncher:
    """Launches nothing; counts what dispatch asked it to launch."""

    name = "counting"

    def __init__(self, *, capacity: bool = True) -> None:
        self.launched: list[str] = []
        self._capacity = capacity
        self._lock = threading.Lock()

    def exclusive(self) -> AbstractContextManager[None]:
        return nullcontext()

    def has_capacity(self) -> bool:
        return self._capacity

    def launch(self, job: Job) -> LaunchResult:
        with self._lock:
            self.launched.append(job.id)
        return LaunchResult(ref=f"counting:{job.id}")

    def status(self, ref: str) -> LauncherState:
        return LauncherState(LauncherStatus.RUNNING)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        connection.ping()
    except redis.RedisError as error:
        missing_service(f"Redis at {REDIS_URL}: {error}")
    yield connection
    connection.close()


@pytest.fixture
def stream_settings(settings: Settings, client: redis.Redis) -> Iterator[Settings]:
    """The Redis Streams backend on a stream of this test's own, with quick retries."""
    stream = f"podscribe-test:jobs:{uuid.uuid4().hex}"
    yield settings.model_copy(
        update={
            "wakeup_backend": "redis-streams",
            "wakeup_redis_url": REDIS_URL,
            "wakeup_stream": stream,
            "wakeup_block_seconds": 0.2,
            "wakeup_claim_idle_seconds": 0.5,
            "requeue_after_seconds": 60,
        }
    )
    client.delete(stream)


def submit(engine: Engine) -> Job:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=11,
            episode_id=uuid.uuid4().int % 10**12,
            source_url="https://podcasts.apple.com/us/podcast/x/id11?i=1",
            key_fingerprint="k",
        )
        return mark_resolved(conn, job)


def read(engine: Engine, job_id: str) -> Job:
    with transaction(engine) as conn:
        return jobs.get_job(conn, job_id)


def pending(client: redis.Redis, settings: Settings) -> int:
    summary = client.xpending(settings.wakeup_stream, settings.wakeup_consumer_group)
    return int(summary["pending"])


def consume_until(consumer: StreamConsumer, done: Callable[[], bool]) -> None:
    """Poll the stream until ``done`` (or fail after :data:`PATIENCE_SECONDS`)."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not done():
        assert time.monotonic() < deadline, "the consumer never got there"
        consumer.poll_once()


def test_three_wakeups_for_one_job_launch_it_once(
    engine: Engine, stream_settings: Settings, client: redis.Redis
) -> None:
    job = submit(engine)
    launcher = CountingLauncher()
    consumer = StreamConsumer(engine, stream_settings, launcher, name="only")
    consumer.ensure_group()
    publisher = publisher_for(stream_settings)
    assert isinstance(publisher, StreamPublisher)
    for _ in range(3):
        publisher.publish(JobMessage(job.id))

    handled = 0
    while handled < 3:
        handled += consumer.poll_once()

    assert launcher.launched == [job.id]
    assert read(engine, job.id).status is JobStatus.DISPATCHED
    assert pending(client, stream_settings) == 0


def test_a_lost_wakeup_is_sent_again_by_the_sweep_and_launched_once(
    engine: Engine, stream_settings: Settings, client: redis.Redis
) -> None:
    job = submit(engine)  # queued, and nothing in the stream: its wake-up was lost
    with transaction(engine) as conn:
        conn.execute(
            sa.text("UPDATE jobs SET queued_at = now() - interval '10 minutes' WHERE id = :id"),
            {"id": uuid.UUID(job.id)},
        )
    launcher = CountingLauncher()
    consumer = StreamConsumer(engine, stream_settings, launcher, name="only")
    consumer.ensure_group()

    outcome = run_sweep(engine, stream_settings, launcher, publisher_for(stream_settings))

    assert outcome.republished == [job.id]
    assert client.xlen(stream_settings.wakeup_stream) == 1
    consume_until(consumer, lambda: bool(launcher.launched))
    assert launcher.launched == [job.id]
    assert run_sweep(engine, stream_settings, launcher, publisher_for(stream_settings)) == (
        type(outcome)()
    )
    assert pending(client, stream_settings) == 0


def test_a_consumer_whose_group_was_lost_makes_it_again_and_launches_the_wakeup(
    engine: Engine, stream_settings: Settings, client: redis.Redis
) -> None:
    # A Redis restarted with nothing on disk has lost the stream and its group; the sweep's
    # re-wake makes the stream again, but only the consumer can make its group: it used to
    # answer NOGROUP forever ("Redis unavailable") and dispatch nothing.
    launcher = CountingLauncher()
    consumer = StreamConsumer(engine, stream_settings, launcher, name="only")
    stop = threading.Event()
    running = threading.Thread(target=consumer.run, args=(stop,))
    running.start()
    try:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while not client.exists(stream_settings.wakeup_stream):
            assert time.monotonic() < deadline, "the consumer never made its group"
            time.sleep(0.05)
        client.delete(stream_settings.wakeup_stream)  # the data lost, the consumer still up
        job = submit(engine)
        publisher_for(stream_settings).publish(JobMessage(job.id))
        while not launcher.launched:
            assert time.monotonic() < deadline, "the wake-up was never launched"
            time.sleep(0.05)
    finally:
        stop.set()
        running.join(timeout=PATIENCE_SECONDS)
    assert launcher.launched == [job.id]
    assert pending(client, stream_settings) == 0


def _consumer_environment(settings: Settings) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PODSCRIBE_")}
    database_url = settings.database_url
    assert database_url is not None
    env.update(
        {
            "PODSCRIBE_ENV": "test",
            "PODSCRIBE_DATABASE_URL": database_url.get_secret_value(),
            "PODSCRIBE_WAKEUP_BACKEND": "redis-streams",
            "PODSCRIBE_WAKEUP_REDIS_URL": REDIS_URL,
            "PODSCRIBE_WAKEUP_STREAM": settings.wakeup_stream,
            "PODSCRIBE_WAKEUP_BLOCK_SECONDS": str(settings.wakeup_block_seconds),
            "PODSCRIBE_LAUNCHER": "local",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def _wait_for(what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not ready():
        assert process.poll() is None, f"the consumer exited before {what}"
        assert time.monotonic() < deadline, f"no {what} in {PATIENCE_SECONDS} s"
        time.sleep(0.05)


def test_a_wakeup_whose_consumer_was_killed_mid_message_is_taken_over_and_launched_once(
    engine: Engine,
    stream_settings: Settings,
    client: redis.Redis,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="podscribe.jobs.stream_consumer")
    job = submit(engine)
    StreamConsumer(engine, stream_settings, CountingLauncher(), name="setup").ensure_group()
    publisher_for(stream_settings).publish(JobMessage(job.id))
    marker = tmp_path / "in-dispatch"
    with (tmp_path / "doomed.log").open("wb") as output:
        doomed = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.wakeup_consumer", str(marker), "doomed"],
            cwd=REPO,
            env=_consumer_environment(stream_settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for("wake-up in dispatch", marker.exists, doomed)
        [entry] = client.xpending_range(
            stream_settings.wakeup_stream, stream_settings.wakeup_consumer_group, "-", "+", 10
        )
        assert (entry["consumer"], entry["times_delivered"]) == (b"doomed", 1)
        doomed.send_signal(signal.SIGKILL)  # read, not acknowledged, the job not yet claimed
        doomed.wait(timeout=PATIENCE_SECONDS)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
    assert read(engine, job.id).status is JobStatus.QUEUED

    launcher = CountingLauncher()
    survivor = StreamConsumer(engine, stream_settings, launcher, name="survivor")
    consume_until(survivor, lambda: bool(launcher.launched))

    assert launcher.launched == [job.id]
    launched = read(engine, job.id)
    assert (launched.status, launched.attempts) == (JobStatus.DISPATCHED, 1)
    claimed = [r for r in caplog.records if r.getMessage() == "wake-up claimed again"]
    assert [getattr(r, "deliveries", None) for r in claimed] == [2]
    assert pending(client, stream_settings) == 0


def test_poison_entries_are_acknowledged_and_logged_and_the_next_wakeup_still_runs(
    engine: Engine,
    stream_settings: Settings,
    client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="podscribe.jobs.stream_consumer")
    job = submit(engine)
    launcher = CountingLauncher()
    consumer = StreamConsumer(engine, stream_settings, launcher, name="only")
    consumer.ensure_group()
    stream = stream_settings.wakeup_stream
    client.xadd(stream, {"data": b"\xff\xfe not even text"})
    client.xadd(stream, {"data": b'{"job_id": "not-a-uuid"}'})
    client.xadd(stream, {"data": b"[1, 2, 3]"})
    client.xadd(stream, {"something": b"else entirely"})
    publisher_for(stream_settings).publish(JobMessage(job.id))

    consume_until(consumer, lambda: bool(launcher.launched))

    assert launcher.launched == [job.id]
    dropped = [r for r in caplog.records if r.getMessage().startswith("malformed wake-up")]
    assert len(dropped) == 4
    assert {getattr(r, "code", None) for r in dropped} == {"malformed_message"}
    assert pending(client, stream_settings) == 0


def test_a_wakeup_delivered_too_often_is_dead_lettered_and_its_job_stays_queued(
    engine: Engine,
    stream_settings: Settings,
    client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="podscribe.jobs.stream_consumer")
    settings = stream_settings.model_copy(update={"wakeup_max_deliveries": 2})
    job = submit(engine)
    launcher = CountingLauncher(capacity=False)  # every delivery: CapacityError, retry later
    consumer = StreamConsumer(engine, settings, launcher, name="only")
    consumer.ensure_group()
    publisher_for(settings).publish(JobMessage(job.id))

    def dead_lettered() -> bool:
        return any("dead-lettered" in r.getMessage() for r in caplog.records)

    consume_until(consumer, dead_lettered)

    retried = [r for r in caplog.records if r.getMessage().startswith("dispatch failed")]
    assert [getattr(r, "code", None) for r in retried] == ["capacity_exhausted"] * 2
    assert pending(client, settings) == 0
    unchanged = read(engine, job.id)
    assert (unchanged.status, unchanged.attempts) == (JobStatus.QUEUED, 0)
    assert launcher.launched == []


def test_the_stream_stays_bounded_however_many_wakeups_are_added(
    stream_settings: Settings, client: redis.Redis
) -> None:
    settings = stream_settings.model_copy(update={"wakeup_stream_max_length": 100})
    publisher = publisher_for(settings)
    for _ in range(2_000):
        publisher.publish(JobMessage(str(uuid.uuid4())))
    # MAXLEN ~ trims whole nodes (100 entries each by default): about the cap, never 2,000.
    assert 100 <= client.xlen(settings.wakeup_stream) < 300


def test_publishing_to_an_unreachable_redis_is_a_publish_error(stream_settings: Settings) -> None:
    nowhere = stream_settings.model_copy(
        update={"wakeup_redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    with pytest.raises(PublishError, match="Redis stream"):
        publisher_for(nowhere, timeout=1).publish(JobMessage(str(uuid.uuid4())))


def test_the_consumer_command_stops_cleanly_on_sigterm(
    stream_settings: Settings, client: redis.Redis, tmp_path: Path
) -> None:
    log = tmp_path / "consumer.log"
    with log.open("wb") as output:
        command = subprocess.Popen(
            [sys.executable, "-m", "podscribe.jobs.stream_consumer", "--name", "graceful"],
            cwd=REPO,
            env=_consumer_environment(stream_settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def reading() -> bool:
        return "consuming wake-ups" in log.read_text()

    try:
        _wait_for("consumer reading", reading, command)
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=PATIENCE_SECONDS) == 0
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert "stopped consuming wake-ups" in log.read_text()
    members = client.xinfo_consumers(
        stream_settings.wakeup_stream, stream_settings.wakeup_consumer_group
    )
    assert [m["name"] for m in members] == []  # it held nothing, and left the group


def test_the_consumer_command_refuses_to_run_for_the_pubsub_backend(
    stream_settings: Settings,
) -> None:
    env = _consumer_environment(stream_settings) | {"PODSCRIBE_WAKEUP_BACKEND": "pubsub"}
    finished = subprocess.run(  # noqa: PLW1510 - the status is the assertion
        [sys.executable, "-m", "podscribe.jobs.stream_consumer"],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=PATIENCE_SECONDS,
    )
    assert finished.returncode == 2
    assert b"not redis-streams" in finished.stderr
