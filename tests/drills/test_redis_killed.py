"""Redis killed under a running submit process: answers keep coming, the backstop keeps
limiting in flat memory, and the limits move back to Redis when it returns.

The drill starts a redis-server of its own (the machine's shared Redis is never stopped),
runs the real functions-framework process against it, and SIGKILLs Redis while a burst of
submissions from eight threads is under way; then it keeps sending requests, floods the
backstop with 10,000 clients, and starts Redis again.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from local_emulators.processes import stop_group
from tests.conftest import TEST_PROJECT
from tests.drills.figures import Recorder
from tests.drills.profile_support import percentile
from tests.integration.submit_support import (
    API_KEY,
    EPISODE_URL,
    OTHER_KEY,
    SUBMIT_SOURCE,
    RunningFunction,
    functions_framework_process,
    own_redis_server,
    start_redis,
    submit_environment,
)
from tests.services import missing_service

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PER_KEY = 5
BACKSTOP_KEYS = 200
WINDOW = 600
BURST_IP = "10.255.0.1"


@pytest.fixture
def redis_and_submit(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[int, int, RunningFunction]]:
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    with own_redis_server(tmp_path / "redis.log") as (port, started):
        env = submit_environment(
            database_url=database_url,
            project=TEST_PROJECT,
            topic="jobs-unused",
            pubsub_host="127.0.0.1:1",  # publishing fails fast; the job stays queued
            PODSCRIBE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
            PODSCRIBE_RATE_LIMIT_PER_KEY=str(PER_KEY),
            PODSCRIBE_RATE_LIMIT_PER_IP="50",
            PODSCRIBE_RATE_LIMIT_BACKSTOP_KEYS=str(BACKSTOP_KEYS),
            # The 10,000-client flood takes ~45 s here: a long window keeps the key's
            # admissions (and the flood's) inside it however slow the machine.
            PODSCRIBE_RATE_LIMIT_WINDOW_SECONDS=str(WINDOW),
            PODSCRIBE_RATE_LIMIT_REDIS_RETRY_SECONDS="1",
            PODSCRIBE_TRUSTED_PROXY_HOPS="1",  # X-Forwarded-For names the client
            PODSCRIBE_PUBLISH_TIMEOUT_SECONDS="0.5",
        )
        with functions_framework_process(
            SUBMIT_SOURCE, "submit", env, tmp_path / "submit.log", threads=4
        ) as running:
            yield port, started.pid, running


def group_rss(pid: int) -> int:
    process = psutil.Process(pid)
    return sum(child.memory_info().rss for child in [process, *process.children(recursive=True)])


class Burst:
    """Threads submitting (under the other key) until stopped; every answer's status and time."""

    def __init__(self, base_url: str, threads: int = 8) -> None:
        self._base_url = base_url
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.statuses: list[int | str] = []
        self.latencies: list[float] = []
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        # An address of its own: the burst never spends the test client's IP bucket.
        headers = {"Authorization": f"Bearer {OTHER_KEY}", "X-Forwarded-For": BURST_IP}
        with httpx.Client(base_url=self._base_url, timeout=30) as http:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    answer = http.post(
                        "/v1/transcriptions", json={"url": EPISODE_URL}, headers=headers
                    )
                    status: int | str = answer.status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                with self._lock:
                    self.statuses.append(status)
                    self.latencies.append(time.monotonic() - began)


def test_redis_killed_mid_burst_the_backstop_still_limits_in_flat_memory(
    redis_and_submit: tuple[int, int, RunningFunction], tmp_path: Path, figures: Recorder
) -> None:
    port, redis_pid, running = redis_and_submit
    row = figures(
        "Redis killed",
        "the rate limiter's redis-server SIGKILLed during a burst of submissions from 8 "
        "threads, then 10,000 new clients, then Redis started again",
        bound="no 5xx, 429 past the limit, RSS < +1 MB over 9,000 new clients, limits back on "
        "Redis",
    )

    def submit(http: httpx.Client) -> httpx.Response:
        return http.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=AUTH)

    with httpx.Client(base_url=running.url, timeout=30) as http:
        first = [submit(http).status_code for _ in range(3)]
        assert first == [202, 200, 200]
    # Redis is killed in the middle of a burst (the other key's submissions).
    with Burst(running.url) as burst:
        time.sleep(2)
        killed_at = len(burst.statuses)
        stop_group(redis_pid, grace_seconds=0)
        time.sleep(3)
    # A new client: gunicorn closes keep-alive connections idle for 2 s, as during the burst.
    with httpx.Client(base_url=running.url, timeout=30) as http:
        after = [submit(http).status_code for _ in range(PER_KEY + 3)]
        statuses = burst.statuses
        row.observed.update(
            {
                "burst answers": len(statuses),
                "after the kill": len(statuses) - killed_at,
                "5xx": sum(isinstance(s, int) and s >= 500 for s in statuses),
                "transport errors": sum(isinstance(s, str) for s in statuses),
                "429": statuses.count(429),
                "p99 ms": round(percentile(burst.latencies, 0.99) * 1000, 1),
            }
        )
        row.save()
        assert set(statuses) <= {200, 202, 429}, sorted(set(map(str, statuses)))
        assert len(statuses) - killed_at > 8  # answers kept coming after the kill
        assert statuses.count(429) > 0  # the other key hit its limit: limiting never stopped
        # The backstop started empty, so the key gets its limit again, then 429s.
        assert after[:PER_KEY] == [200] * PER_KEY
        assert after[PER_KEY:] == [429] * 3
        limited = submit(http)
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1

    # A flood of 10,000 distinct clients (unauthenticated, so each is an IP bucket) against
    # a backstop bounded to BACKSTOP_KEYS buckets: it fills, then refuses newcomers rather
    # than forget the limited key, and memory stays flat.
    def flood(http: httpx.Client, first_client: int, count: int) -> list[int]:
        def one(index: int) -> int:
            ip = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
            headers = {"X-Forwarded-For": ip, "Authorization": "Bearer nope"}
            return http.get(f"/v1/transcriptions/{uuid.uuid4()}", headers=headers).status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(one, range(first_client, first_client + count)))

    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    with httpx.Client(base_url=running.url, timeout=30, limits=limits) as http:
        warm = flood(http, 0, 1000)  # warm up: the backstop fills to its bound
        # Four buckets are taken (the test client's address and key, the burst's address and
        # key): room for the rest.
        assert warm.count(401) == BACKSTOP_KEYS - 4
        assert set(warm) == {401, 429}
        before = group_rss(running.started.pid)
        assert set(flood(http, 1000, 9000)) == {429}  # 45x more new clients than the bound
        grown = group_rss(running.started.pid) - before
        # The key limited before the flood is limited still: nothing was forgotten.
        limited_still = submit(http)
        assert limited_still.status_code == 429
        assert limited_still.json()["code"] == "rate_limited"
        assert 1 <= int(limited_still.headers["Retry-After"]) <= WINDOW
    row.observed["flood RSS growth MB"] = round(grown / 2**20, 2)
    row.save()
    # An unbounded backstop (BACKSTOP_KEYS = 1_000_000) grows by ~2.9 MB over 3,000 clients.
    assert grown < 1024 * 1024, f"RSS grew by {grown} bytes"

    # Redis comes back: the limiter returns to it by itself (its counters start afresh).
    again = start_redis("redis-server", port, tmp_path / "redis-again.log")
    try:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            time.sleep(1.1)  # the limiter's pause before it asks Redis again
            statuses = [submit(http).status_code for _ in range(PER_KEY + 1)]
        row.observed["back on Redis"] = statuses == [200] * PER_KEY + [429]
        row.save()
        assert statuses == [200] * PER_KEY + [429]
    finally:
        stop_group(again.pid, grace_seconds=3)
