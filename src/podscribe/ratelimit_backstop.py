"""The in-memory backstop, and the decisions both counters give.

When Redis cannot be reached the limiter does not fail open: a per-process backstop keeps
the same sliding log in memory. Its memory does not grow with traffic: it tracks at most
``rate_limit_backstop_keys`` buckets and each bucket holds at most ``limit`` timestamps (a
``deque`` with ``maxlen``). When it is full it refuses, never forgets: only a bucket whose
newest admission has left the window (it would start afresh anyway) makes room for a new
one; otherwise a request that needs a new bucket is refused until the oldest expires. Were it
to forget the least recently used instead, a flood of new identities would wash out a limited
key's count and hand it a fresh limit.

:mod:`podscribe.ratelimit` re-exports everything here; import from there.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Bucket", "Clock", "InMemoryBackstop", "RateDecision"]

# The limiter's logger: the backstop's warnings belong to rate limiting as a whole.
log = logging.getLogger("podscribe.ratelimit")

Clock = Callable[[], float]


@dataclass(frozen=True)
class Bucket:
    """One limited identity.

    Attributes:
        name: a stable name, e.g. ``key:<fingerprint>`` or ``ip:<address>`` (never a secret).
        limit: requests admitted per window.
    """

    name: str
    limit: int


@dataclass(frozen=True)
class RateDecision:
    """The answer for one request, described by its tightest bucket.

    Attributes:
        allowed: whether the request may proceed.
        limit: the tightest bucket's limit.
        remaining: requests that bucket still admits in the current window.
        reset_seconds: seconds until that bucket admits another request (its oldest entry
            leaves the window).
        window_seconds: the window length.
        source: ``redis`` or ``backstop`` (which counter decided).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    window_seconds: float
    source: Literal["redis", "backstop"]

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before trying again (at least 1)."""
        return max(1, math.ceil(self.reset_seconds))

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` headers (IETF httpapi draft) describing this decision."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(max(0, math.ceil(self.reset_seconds))),
            "RateLimit-Policy": f"{self.limit};w={math.ceil(self.window_seconds)}",
        }


class InMemoryBackstop:
    """The same sliding log, in this process, in bounded memory.

    Buckets are kept in order of their newest admission, so the first one is the only
    candidate for being provably expired; making room costs O(1) whatever the table size.

    Args:
        max_buckets: most buckets tracked; when full, only an expired bucket makes room and a
            request needing a new bucket is refused otherwise (refuse, never forget).
        clock: seconds, monotonic within the process.
    """

    def __init__(self, max_buckets: int, clock: Clock) -> None:
        self._max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._warned_full = False  # one warning per spell of being full, not one per request

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, name: object) -> bool:
        return name in self._buckets

    @property
    def max_buckets(self) -> int:
        return self._max_buckets

    def stored_timestamps(self) -> int:
        """How many admission times are held in all (a measure of its memory)."""
        with self._lock:
            return sum(len(log) for log in self._buckets.values())

    def hit(self, buckets: Sequence[Bucket], window: float) -> RateDecision:
        """Admit or refuse one request against ``buckets`` (see :meth:`RateLimiter.hit`)."""
        now = self._clock()
        with self._lock:
            # Look up without creating: a refused request must not take a slot.
            logs = [self._buckets.get(bucket.name) for bucket in buckets]
            states = []
            for bucket, log_ in zip(buckets, logs, strict=True):
                if log_ is not None:
                    while log_ and log_[0] <= now - window:
                        log_.popleft()
                count = len(log_) if log_ is not None else 0
                reset = (log_[0] + window - now) if log_ else 0.0
                states.append((bucket, count, reset))
            refused = [state for state in states if state[1] >= state[0].limit]
            if refused:
                bucket, _, reset = max(refused, key=lambda state: state[2])
                return RateDecision(False, bucket.limit, 0, reset, window, "backstop")
            new = [bucket for bucket, log_ in zip(buckets, logs, strict=True) if log_ is None]
            if new and not self._make_room(len(new), now, window):
                return self._full(new[0], now, window)
            for bucket, log_ in zip(buckets, logs, strict=True):
                self._admit(bucket, log_, now)
            bucket, count, reset = min(states, key=lambda state: state[0].limit - state[1])
            return RateDecision(
                True, bucket.limit, bucket.limit - count - 1, reset or window, window, "backstop"
            )

    def _make_room(self, needed: int, now: float, window: float) -> bool:
        """Drop expired buckets until ``needed`` new ones fit; False when they cannot."""
        while len(self._buckets) + needed > self._max_buckets:
            oldest = next(iter(self._buckets.values()), None)
            if oldest is None or (oldest and oldest[-1] > now - window):
                return False  # the oldest still counts: forgetting it would hand out a limit
            self._buckets.popitem(last=False)
        self._warned_full = False
        return True

    def _full(self, bucket: Bucket, now: float, window: float) -> RateDecision:
        """Refuse: the table is full of live buckets; retry when the oldest expires."""
        oldest = next(iter(self._buckets.values()), None)
        reset = (oldest[-1] + window - now) if oldest else window
        if not self._warned_full:
            self._warned_full = True
            log.warning(
                "rate-limit backstop full (%d clients): refusing new clients until one expires",
                self._max_buckets,
            )
        return RateDecision(False, bucket.limit, 0, max(reset, 0.0), window, "backstop")

    def _admit(self, bucket: Bucket, log_: deque[float] | None, now: float) -> None:
        if log_ is None or log_.maxlen != bucket.limit:
            log_ = deque(log_ or (), maxlen=bucket.limit)
            self._buckets[bucket.name] = log_
        log_.append(now)
        # Ordered by newest admission: the first bucket is the likeliest to have expired.
        self._buckets.move_to_end(bucket.name)
