"""A clock tests move by hand (for the rate limiter's windows and pauses)."""

from __future__ import annotations


class FakeClock:
    """Callable like ``time.time``; returns ``now`` until advanced.

    Args:
        start: the first reading, in seconds.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
