"""The Redis sliding window (one Lua script, EVALSHA) and the switch to and from the backstop.

The shared Redis on 6379 is used with a key prefix of each test's own; the tests that stop
Redis or flush its scripts start a redis-server of their own on a free port.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from local_emulators.processes import port_open, stop_group
from podscribe.ratelimit import SLIDING_WINDOW_SHA, Bucket, RateLimiter
from podscribe.settings import Settings, load_settings
from tests.fakes.clock import FakeClock
from tests.integration.submit_support import own_redis_server, start_redis
from tests.services import REDIS_URL, free_port, missing_service


def limiter_settings(redis_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "redis_url": redis_url,
        "rate_limit_window_seconds": 60,
        "rate_limit_prefix": f"test:{uuid.uuid4().hex[:12]}:",
        "rate_limit_redis_retry_seconds": 2.0,
        **overrides,
    }
    return load_settings(**values)


@pytest.fixture
def shared_redis() -> str:
    if not port_open("127.0.0.1", 6379):
        missing_service("Redis on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    with own_redis_server(tmp_path / "redis.log") as (port, _):
        yield port


def test_the_window_slides_in_redis(shared_redis: str) -> None:
    clock = FakeClock()
    limiter = RateLimiter(limiter_settings(shared_redis), clock=clock)
    bucket = Bucket("key:slide", 3)
    allowed = []
    for _ in range(4):
        allowed.append(limiter.hit([bucket]))
        clock.advance(10)
    assert [decision.allowed for decision in allowed] == [True, True, True, False]
    assert [decision.remaining for decision in allowed] == [2, 1, 0, 0]
    assert {decision.source for decision in allowed} == {"redis"}
    assert allowed[-1].reset_seconds == pytest.approx(30)  # t=30; the t=0 entry leaves at 60
    clock.advance(20)  # t=60: the first admission has left the window
    assert limiter.hit([bucket]).allowed
    assert not limiter.hit([bucket]).allowed


def test_instances_share_one_count_through_redis(shared_redis: str) -> None:
    settings = limiter_settings(shared_redis)
    first, second = RateLimiter(settings), RateLimiter(settings)
    bucket = Bucket("ip:203.0.113.9", 4)
    results = [limiter.hit([bucket]).allowed for limiter in (first, second) * 3]
    assert results == [True, True, True, True, False, False]


def test_concurrent_hits_never_exceed_the_limit(shared_redis: str) -> None:
    limiter = RateLimiter(limiter_settings(shared_redis))
    bucket = Bucket("key:race", 25)
    with ThreadPoolExecutor(max_workers=16) as pool:
        decisions = list(pool.map(lambda _: limiter.hit([bucket]), range(200)))
    assert sum(decision.allowed for decision in decisions) == 25
    assert {decision.source for decision in decisions} == {"redis"}


def test_a_refusal_by_one_bucket_counts_against_none(shared_redis: str) -> None:
    limiter = RateLimiter(limiter_settings(shared_redis))
    ip, key = Bucket("ip:198.51.100.7", 10), Bucket("key:tight", 2)
    assert [limiter.hit([ip, key]).allowed for _ in range(5)] == [True, True, False, False, False]
    refused = limiter.hit([ip, key])
    assert (refused.limit, refused.remaining) == (2, 0)
    assert limiter.hit([ip]).remaining == 7  # only the two admissions counted


def test_the_script_is_reloaded_after_noscript(own_redis: int) -> None:
    url = f"redis://127.0.0.1:{own_redis}/0"
    limiter = RateLimiter(limiter_settings(url))
    assert limiter.hit([Bucket("key:a", 5)]).source == "redis"
    client = redis.Redis.from_url(url)
    client.script_flush()
    assert client.script_exists(SLIDING_WINDOW_SHA) == [False]
    decision = limiter.hit([Bucket("key:a", 5)])
    assert decision.source == "redis" and decision.remaining == 3
    assert client.script_exists(SLIDING_WINDOW_SHA) == [True]


def test_redis_going_away_falls_back_quickly_and_comes_back_by_itself(
    tmp_path: Path, own_redis: int
) -> None:
    url = f"redis://127.0.0.1:{own_redis}/0"
    monotonic = FakeClock(0)
    limiter = RateLimiter(
        limiter_settings(url, rate_limit_redis_retry_seconds=5), monotonic=monotonic
    )
    bucket = Bucket("key:outage", 3)
    assert limiter.hit([bucket]).source == "redis"
    redis.Redis.from_url(url).shutdown(nosave=True)
    started = time.perf_counter()
    decisions = [limiter.hit([bucket]) for _ in range(5)]
    elapsed = time.perf_counter() - started
    assert {decision.source for decision in decisions} == {"backstop"}
    # The backstop starts empty: 3 admitted, then refused: never fails open.
    assert [decision.allowed for decision in decisions] == [True, True, True, False, False]
    assert elapsed < 1.0  # one short timeout at most, then no Redis calls during the pause
    assert limiter.using_backstop
    # Redis returns on the same port; after the pause the limiter uses it again.
    again = start_redis("redis-server", own_redis, tmp_path / "redis-again.log")
    try:
        monotonic.advance(4.9)
        assert limiter.hit([bucket]).source == "backstop"  # still pausing
        monotonic.advance(0.1)
        assert limiter.hit([bucket]).source == "redis"
        assert not limiter.using_backstop
    finally:
        stop_group(again.pid, grace_seconds=3)


def test_an_unreachable_redis_costs_one_short_timeout() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens here
    limiter = RateLimiter(limiter_settings(url, rate_limit_redis_retry_seconds=60))
    started = time.perf_counter()
    decisions = [limiter.hit([Bucket("key:x", 100)]) for _ in range(50)]
    assert time.perf_counter() - started < 1.0
    assert {decision.source for decision in decisions} == {"backstop"}
