"""The in-memory backstop: the same sliding window, in memory that does not grow."""

from __future__ import annotations

import tracemalloc

import pytest

from podscribe.ratelimit import Bucket, InMemoryBackstop, RateDecision, RateLimiter
from podscribe.settings import load_settings
from tests.fakes.clock import FakeClock


def test_a_bucket_admits_its_limit_per_window_then_refuses() -> None:
    clock = FakeClock()
    backstop = InMemoryBackstop(100, clock)
    bucket = Bucket("ip:192.0.2.1", 3)
    decisions = []
    for _ in range(4):
        decisions.append(backstop.hit([bucket], 60))
        clock.advance(1)
    assert [decision.allowed for decision in decisions] == [True, True, True, False]
    assert [decision.remaining for decision in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    # The oldest admission (t=0) leaves the window at t=60; it is now t=3.
    assert refused.reset_seconds == pytest.approx(57)
    assert refused.retry_after == 57
    assert refused.source == "backstop"


def test_the_window_slides_rather_than_resetting() -> None:
    clock = FakeClock()
    backstop = InMemoryBackstop(100, clock)
    bucket = Bucket("k", 2)
    assert backstop.hit([bucket], 10).allowed  # t=0
    clock.advance(5)
    assert backstop.hit([bucket], 10).allowed  # t=5
    clock.advance(4)
    assert not backstop.hit([bucket], 10).allowed  # t=9: both still inside
    clock.advance(1)
    assert backstop.hit([bucket], 10).allowed  # t=10: the t=0 one left
    assert not backstop.hit([bucket], 10).allowed  # t=10: t=5 and t=10 inside


def test_a_refused_request_counts_against_no_bucket() -> None:
    clock = FakeClock()
    backstop = InMemoryBackstop(100, clock)
    tight, loose = Bucket("key:a", 1), Bucket("ip:a", 10)
    assert backstop.hit([loose, tight], 60).allowed
    for _ in range(5):
        decision = backstop.hit([loose, tight], 60)
        assert not decision.allowed
        assert decision.limit == 1  # described by the refusing bucket
    # The loose bucket saw one admission only: 9 left.
    assert backstop.hit([loose], 60).remaining == 8


def test_the_tightest_bucket_describes_an_admission() -> None:
    backstop = InMemoryBackstop(100, FakeClock())
    decision = backstop.hit([Bucket("ip:x", 100), Bucket("key:x", 5)], 60)
    assert (decision.limit, decision.remaining) == (5, 4)
    assert decision.headers() == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "4",
        "RateLimit-Reset": "60",
        "RateLimit-Policy": "5;w=60",
    }


def test_memory_is_bounded_whatever_the_traffic() -> None:
    clock = FakeClock()
    backstop = InMemoryBackstop(500, clock)
    limit = 20

    def flood(clients: int, requests_each: int) -> None:
        for client in range(clients):
            for _ in range(requests_each):
                backstop.hit([Bucket(f"ip:{client}", limit)], 60)
            clock.advance(0.001)

    flood(1_000, 3)  # warm up to the bound
    assert len(backstop) == 500
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        flood(5_000, 24)  # ten times the clients, each past its limit
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(backstop) == 500
    assert backstop.stored_timestamps() <= 500 * limit
    # 120,000 more requests; what is held may differ only by the (bounded) deques' contents.
    assert after - before < 500 * limit * 64


def test_least_recently_used_buckets_are_forgotten_first() -> None:
    clock = FakeClock()
    backstop = InMemoryBackstop(2, clock)
    hot, cold, newcomer = Bucket("hot", 1), Bucket("cold", 1), Bucket("new", 1)
    backstop.hit([cold], 60)
    backstop.hit([hot], 60)
    assert not backstop.hit([hot], 60).allowed  # touches hot: cold is now the oldest
    backstop.hit([newcomer], 60)  # evicts cold
    assert not backstop.hit([hot], 60).allowed  # hot is still remembered
    assert backstop.hit([cold], 60).allowed  # cold was forgotten


def test_without_redis_the_limiter_uses_the_backstop() -> None:
    settings = load_settings(env="test", redis_url=None, rate_limit_window_seconds=60)
    limiter = RateLimiter(settings, clock=FakeClock())
    assert limiter.using_backstop
    decisions = [limiter.hit([Bucket("key:z", 2)]) for _ in range(3)]
    assert [decision.allowed for decision in decisions] == [True, True, False]
    assert {decision.source for decision in decisions} == {"backstop"}
    with pytest.raises(ValueError, match="at least one bucket"):
        limiter.hit([])


@pytest.mark.parametrize(
    ("reset", "retry_after", "header"),
    [(0.2, 1, "1"), (1.0, 1, "1"), (1.01, 2, "2"), (59.5, 60, "60")],
)
def test_retry_after_rounds_up_to_whole_seconds(
    reset: float, retry_after: int, header: str
) -> None:
    decision = RateDecision(False, 5, 0, reset, 60, "redis")
    assert decision.retry_after == retry_after
    assert decision.headers()["RateLimit-Reset"] == header
