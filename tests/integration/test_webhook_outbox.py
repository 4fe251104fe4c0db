"""The webhook outbox against real receivers on 127.0.0.1 and real PostgreSQL: a receiver that
is down gets the event exactly once when it comes back, concurrent sweeps send once, and a
delivery is given up after its horizon.

"Ten minutes" pass in the outbox's clock (:func:`advance` moves every row's times back), with
the default backoff, or in real time with backoff settings of a fraction of a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from standardwebhooks import Webhook

from local_emulators.loopback_server import FixtureServer, RecordedRequest, Reply
from podscribe import jobs
from podscribe.db import transaction
from podscribe.jobs import JobStatus
from podscribe.jobs.launchers.local import LocalProcessLauncher
from podscribe.jobs.outbox import DeliveryStatus
from podscribe.jobs.sweeper import run_sweep
from podscribe.jobs.webhooks import ID_HEADER, deliver_due, notify_finished, secret_for_key
from podscribe.messaging import publisher_for
from tests.conftest import TEST_PROJECT
from tests.integration.webhook_support import (
    MASTER,
    advance,
    deliveries,
    ended_job,
    hook_settings,
)

MINUTE = 60.0


@pytest.fixture
def receiver() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


def test_a_receiver_down_for_ten_minutes_gets_the_event_once_it_is_back(
    engine: Engine,
) -> None:
    # The receiver's port is closed (connection refused) for ten minutes of the outbox's
    # clock; the sweep runs every minute with the default backoff (30 s doubling).
    with FixtureServer() as gone:
        port, url = gone.port, gone.url("/hook")
    settings = hook_settings(gone, webhook_attempts=1)
    job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": url})
    notify_finished(engine, settings, [job.id])  # the first try, at the job's end
    rounds = []
    for _ in range(10):
        advance(engine, MINUTE)
        deliver_due(engine, settings)
        [delivery] = deliveries(engine, job.id)
        rounds.append(delivery.attempts)
        assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "fetch_failed")
    # Tries at 0, 1, 2, 4 and 8 minutes (30 s doubling, at the next sweep): not every sweep.
    assert rounds == [2, 3, 3, 4, 4, 4, 4, 5, 5, 5]
    with FixtureServer(port=port) as back:
        back.route("/hook", Reply(status=204, content_type=None))
        for _ in range(30):  # the next try is due 8 min after the last; then more sweeps
            advance(engine, MINUTE)
            deliver_due(engine, settings)
        advance(engine, 30 * 3600)
        deliver_due(engine, settings)
        [request] = back.requests
    [delivery] = deliveries(engine, job.id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 6)
    assert request.headers[ID_HEADER] == delivery.id  # the id every try carried
    Webhook(secret_for_key(MASTER, "key-a")).verify(request.body, request.headers)


def test_a_receiver_answering_503_gets_the_event_once_it_recovers(
    engine: Engine, receiver: FixtureServer
) -> None:
    # Real time, short backoff: the receiver is down for its first four requests.
    answers: list[int] = []

    def answer(_request: RecordedRequest) -> Reply:
        answers.append(503 if len(answers) < 4 else 200)
        return Reply(status=answers[-1])

    receiver.route("/hook", answer)
    settings = hook_settings(
        receiver,
        webhook_attempts=1,
        webhook_backoff_initial_seconds=0.05,
        webhook_backoff_max_seconds=0.2,
    )
    job = ended_job(engine, JobStatus.FAILED, {"key-a": receiver.url("/hook")})
    notify_finished(engine, settings, [job.id])
    deadline = time.monotonic() + 10
    while 200 not in answers and time.monotonic() < deadline:
        deliver_due(engine, settings)
        time.sleep(0.05)
    for _ in range(5):  # later sweeps, past any backoff: nothing more is sent
        time.sleep(0.25)
        deliver_due(engine, settings)
    assert answers == [503, 503, 503, 503, 200]
    assert len({request.headers[ID_HEADER] for request in receiver.requests}) == 1
    [delivery] = deliveries(engine, job.id)
    assert (delivery.status, delivery.last_status) == (DeliveryStatus.DELIVERED, 200)


def test_concurrent_sweeps_send_a_delivery_once(engine: Engine, receiver: FixtureServer) -> None:
    def slow(_request: RecordedRequest) -> Reply:
        time.sleep(0.5)  # both sweeps are running while the first one is sending
        return Reply(status=200)

    receiver.route("/hook", slow)
    settings = hook_settings(receiver, webhook_attempts=1)
    for episode in range(3):
        ended_job(engine, JobStatus.SUCCEEDED, {"key-a": receiver.url("/hook")}, episode_id=episode)
    start = threading.Barrier(4)
    results = []

    def sweep() -> None:
        start.wait()
        results.append(deliver_due(engine, settings))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(receiver.requests) == 3
    assert sorted(d for result in results for d in result.delivered) == sorted(
        d.id for d in deliveries(engine)
    )
    assert {d.status for d in deliveries(engine)} == {DeliveryStatus.DELIVERED}
    assert {r.headers[ID_HEADER] for r in receiver.requests} == {d.id for d in deliveries(engine)}


def test_a_delivery_is_abandoned_after_its_horizon(engine: Engine, receiver: FixtureServer) -> None:
    receiver.route("/hook", Reply(status=500))
    settings = hook_settings(receiver, webhook_attempts=1, webhook_retry_hours=24)
    job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": receiver.url("/hook")})
    notify_finished(engine, settings, [job.id])
    advance(engine, 23 * 3600)  # still within the day: tried again, still pending
    deliver_due(engine, settings)
    assert deliveries(engine, job.id)[0].status is DeliveryStatus.PENDING
    advance(engine, 2 * 3600)
    assert deliver_due(engine, settings).abandoned == [deliveries(engine, job.id)[0].id]
    advance(engine, 48 * 3600)
    deliver_due(engine, settings)
    assert len(receiver.requests) == 3
    [delivery] = deliveries(engine, job.id)
    # A 5xx is reported as fetch_failed (the fetcher's code for it, without the status).
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.ABANDONED, "fetch_failed")


def test_the_sweep_retries_what_the_first_round_could_not_deliver(
    engine: Engine,
    receiver: FixtureServer,
    pubsub_emulator: str,
    tmp_path: Path,
) -> None:
    answers = iter([503, 200])
    receiver.route("/hook", lambda _request: Reply(status=next(answers)))
    swept = hook_settings(
        receiver,
        webhook_attempts=1,
        local_state_dir=tmp_path,
        project_id=TEST_PROJECT,
    )
    job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": receiver.url("/hook")})
    notify_finished(engine, swept, [job.id])
    advance(engine, MINUTE)
    outcome = run_sweep(engine, swept, LocalProcessLauncher(swept), publisher_for(swept))
    [delivery] = deliveries(engine, job.id)
    assert outcome.webhooks_delivered == [delivery.id]
    assert delivery.status is DeliveryStatus.DELIVERED
    advance(engine, 3600)
    assert run_sweep(engine, swept, LocalProcessLauncher(swept), publisher_for(swept)) == (
        type(outcome)()
    )
    assert len(receiver.requests) == 2


def test_the_event_commits_with_the_jobs_end_or_not_at_all(
    engine: Engine, receiver: FixtureServer
) -> None:
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=1,
            episode_id=7,
            source_url="https://x",
            key_fingerprint="key-a",
            callback_url=receiver.url("/hook"),
        )
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job.id, lease_seconds=60)

    class CrashError(Exception):
        pass

    def end_then_crash() -> None:
        with transaction(engine) as conn:
            jobs.succeed(conn, job.id, transcript_objects={"txt": "t"})
            assert deliveries(engine) == []  # not visible before the commit
            raise CrashError

    with pytest.raises(CrashError):
        end_then_crash()
    assert deliveries(engine) == []
    with transaction(engine) as conn:
        jobs.succeed(conn, job.id, transcript_objects={"txt": "t"})
    assert [d.status for d in deliveries(engine)] == [DeliveryStatus.PENDING]


def test_ending_again_is_a_new_event(engine: Engine, receiver: FixtureServer) -> None:
    receiver.route("/hook", Reply(status=200))
    settings = hook_settings(receiver)
    job = ended_job(engine, JobStatus.FAILED, {"key-a": receiver.url("/hook")})
    notify_finished(engine, settings, [job.id])
    [first] = deliveries(engine, job.id)
    with transaction(engine) as conn:  # submitted again, and it fails again
        jobs.requeue(conn, job.id, JobStatus.FAILED, reason="resubmitted", afresh=True)
        jobs.claim_for_dispatch(conn, job.id, lease_seconds=60, max_attempts=3)
        jobs.start_running(conn, job.id, lease_seconds=60)
        jobs.fail(conn, job.id, JobStatus.RUNNING, code="not_audio", message="x")
    notify_finished(engine, settings, [job.id])
    [second] = deliveries(engine, job.id)
    assert second.id != first.id
    assert second.status is DeliveryStatus.DELIVERED
    assert [r.headers[ID_HEADER] for r in receiver.requests] == [first.id, second.id]


def test_a_deleted_job_takes_its_deliveries_with_it(
    engine: Engine, receiver: FixtureServer
) -> None:
    job = ended_job(engine, JobStatus.SUCCEEDED, {"key-a": receiver.url("/hook")})
    with transaction(engine) as conn:
        assert jobs.remove_access(conn, job.id, "key-a").job_deleted
    assert deliveries(engine) == []
    with transaction(engine) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar() == 0
    deliver_due(engine, hook_settings(receiver))
    assert receiver.requests == []
