"""The lookup cache: each answer for the lifetime it was stored with, in bounded room."""

from __future__ import annotations

import pytest

from podscribe.podcasts.lookup import LookupAnswer, LookupCache
from tests.fakes.clock import FakeClock


def answer(show: str) -> LookupAnswer:
    return LookupAnswer(has_show=True, show=show, feed_url=None, episodes=())


def test_an_answer_lives_for_the_seconds_it_was_stored_with() -> None:
    clock = FakeClock(0)
    cache = LookupCache(8, timer=clock)
    cache.put("short", answer("a"), 10)
    cache.put("long", answer("b"), 100)
    clock.advance(9.9)
    assert cache.get("short") == answer("a")
    clock.advance(0.1)
    assert cache.get("short") is None  # expired at exactly its lifetime
    assert cache.get("long") == answer("b")
    clock.advance(90)
    assert cache.get("long") is None
    assert len(cache) == 0


@pytest.mark.parametrize("seconds", [0, -1])
def test_no_lifetime_means_not_cached(seconds: float) -> None:
    cache = LookupCache(8, timer=FakeClock(0))
    cache.put("key", answer("a"), seconds)
    assert cache.get("key") is None
    assert len(cache) == 0


def test_it_holds_at_most_its_size_and_drops_the_least_recently_used() -> None:
    cache = LookupCache(3, timer=FakeClock(0))
    for name in "abc":
        cache.put(name, answer(name), 60)
    assert cache.get("a") == answer("a")  # a is now the most recently used
    cache.put("d", answer("d"), 60)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(name) for name in "acd"] == [answer("a"), answer("c"), answer("d")]


def test_clear_forgets_everything() -> None:
    cache = LookupCache(3, timer=FakeClock(0))
    cache.put("a", answer("a"), 60)
    cache.clear()
    assert cache.get("a") is None
    assert len(cache) == 0
