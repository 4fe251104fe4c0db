"""The in-memory backstop: the same sliding window, in memory that does not grow."""

from __future__ import annotations

import tracemalloc

import pytest

from podscribe.ratelimit import (
    Bucket,
    InMemoryBackstop,
    RateDecision,
    RateLimiter,
    address_identity,
)
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


def test_a_full_backstop_refuses_newcomers_and_forgets_no_live_bucket() -> None:
    clock = FakeClock()
    backstop = InMemoryBackstop(2, clock)
    hot, cold, newcomer = Bucket("hot", 1), Bucket("cold", 1), Bucket("new", 1)
    assert backstop.hit([cold], 60).allowed
    clock.advance(10)
    assert backstop.hit([hot], 60).allowed
    assert not backstop.hit([hot], 60).allowed
    refused = backstop.hit([newcomer], 60)  # full of live buckets: refused, nothing evicted
    assert not refused.allowed
    assert refused.retry_after == 50  # when the oldest (cold, t=0) leaves the window
    assert "new" not in backstop  # a refused request takes no slot
    assert not backstop.hit([hot], 60).allowed
    assert not backstop.hit([cold], 60).allowed  # cold is still remembered
    clock.advance(50)  # t=60: cold's admission has left the window, so cold is provably expired
    assert backstop.hit([newcomer], 60).allowed
    assert "cold" not in backstop and len(backstop) == 2
    assert not backstop.hit([hot], 60).allowed  # hot (t=10) still counts


def test_a_flood_of_new_identities_does_not_reset_a_limited_key() -> None:
    clock = FakeClock()
    backstop = InMemoryBackstop(1_000, clock)
    key = Bucket("key:victim", 5)
    assert [backstop.hit([key], 60).allowed for _ in range(6)] == [True] * 5 + [False]
    tracemalloc.start()
    try:
        outcomes = []
        for client in range(10_000):
            outcomes.append(backstop.hit([Bucket(f"ip:{client}", 5)], 60).allowed)
            clock.advance(0.001)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(outcomes) == 999  # the table filled, then newcomers were refused
    assert len(backstop) == 1_000
    assert not backstop.hit([key], 60).allowed  # still limited: refuse, never forget
    # 1,000 buckets of one timestamp each, plus the 10,000 decisions the loop keeps.
    assert peak < 1_000 * 1_000 + 10_000 * 200


def test_ipv6_clients_share_a_bucket_per_64_and_ipv4_per_address() -> None:
    assert address_identity("2001:db8:1:2::a") == "2001:db8:1:2::/64"
    assert address_identity("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert address_identity("2001:db8:1:3::a") == "2001:db8:1:3::/64"
    assert address_identity("192.0.2.1") == "192.0.2.1"
    assert address_identity("192.0.2.2") == "192.0.2.2"
    assert address_identity("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_identity("unknown") == "unknown"
    backstop = InMemoryBackstop(100, FakeClock())
    first = Bucket(f"ip:{address_identity('2001:db8:1:2::a')}", 2)
    second = Bucket(f"ip:{address_identity('2001:db8:1:2:9999::b')}", 2)
    other = Bucket(f"ip:{address_identity('2001:db8:1:3::a')}", 2)
    assert [backstop.hit([b], 60).allowed for b in (first, second, second)] == [True, True, False]
    assert backstop.hit([other], 60).allowed


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
