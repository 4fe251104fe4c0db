"""Rate limits: a sliding window in Redis, and a bounded in-memory backstop.

Each limited identity (an API key's fingerprint, a client IP) is a *bucket*. A request is
admitted only when every bucket it touches has room, and then it counts against all of them;
a refused request counts against none, so a client that backs off recovers at the window's
pace.

Redis does the counting with one Lua script run by ``EVALSHA`` (loaded again when Redis
answers ``NOSCRIPT`` after a restart or ``SCRIPT FLUSH``). The script keeps, per bucket, a
sorted set of the admission times of the last window (a sliding log): exact, atomic across
every instance of the function, and bounded by the limit per bucket because refused requests
are never written. Times come from this process's clock (injectable, so tests can step
through windows) rather than Redis's, which keeps Redis and the backstop on one time line.

When Redis cannot be reached the limiter does not fail open: a per-process backstop keeps
the same sliding log in memory. Its memory does not grow with traffic: it tracks at most
``rate_limit_backstop_keys`` buckets and each bucket holds at most ``limit`` timestamps (a
``deque`` with ``maxlen``). When it is full it refuses, never forgets: only a bucket whose
newest admission has left the window (it would start afresh anyway) makes room for a new
one; otherwise a request that needs a new bucket is refused until the oldest expires. Were it
to forget the least recently used instead, a flood of new identities would wash out a limited
key's count and hand it a fresh limit. After a failure the limiter leaves Redis alone for
``rate_limit_redis_retry_seconds`` (an outage costs one short timeout, not one per request),
then tries again and switches back by itself.

Addresses are limited by what one client controls (:func:`address_identity`): an IPv4
address, or an IPv6 /64 (the smallest prefix an ISP hands out; one host picks among 2**64
addresses in it at will).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from podscribe.settings import Settings

if TYPE_CHECKING:
    import redis

__all__ = [
    "Bucket",
    "InMemoryBackstop",
    "RateDecision",
    "RateLimiter",
    "SlidingWindowScript",
    "address_identity",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# KEYS: one sorted set per bucket. ARGV: now (s), window (s), member, then one limit per key.
# Returns {allowed (0/1), index of the tightest bucket (1-based), its remaining,
# milliseconds until it frees a slot}.
_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local member = ARGV[3]
local allowed = 1
local tightest, tightest_remaining, tightest_reset = 1, math.huge, 0
local counts = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 + i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  counts[i] = count
  local reset = 0
  if count > 0 then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    reset = tonumber(oldest[2]) + window - now
  end
  if count >= limit then
    if allowed == 1 or reset > tightest_reset then
      tightest, tightest_remaining, tightest_reset = i, 0, reset
    end
    allowed = 0
  elseif allowed == 1 and limit - count - 1 < tightest_remaining then
    tightest, tightest_remaining, tightest_reset = i, limit - count - 1, reset
  end
end
if allowed == 1 then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
  end
  if counts[tightest] == 0 then tightest_reset = window end
end
return {allowed, tightest, tightest_remaining, math.ceil(tightest_reset * 1000)}
"""


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


class SlidingWindowScript:
    """The Lua script, run with ``EVALSHA`` and reloaded when Redis answers ``NOSCRIPT``.

    Args:
        client: a ``redis.Redis`` client.
    """

    source = _LUA
    sha = hashlib.sha1(_LUA.encode("utf-8"), usedforsecurity=False).hexdigest()
    """What Redis calls the script (``EVALSHA`` takes it)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        """Run the script.

        Raises:
            redis.exceptions.RedisError: Redis failed (connection, timeout, script error).
        """
        from redis.exceptions import NoScriptError

        try:
            result = self._client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            loaded = self._client.script_load(_LUA)
            if loaded != self.sha:
                raise RuntimeError(f"Redis hashed the script as {loaded}, not {self.sha}") from None
            result = self._client.evalsha(self.sha, len(keys), *keys, *args)
        return list(result)


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


class RateLimiter:
    """Sliding-window limits in Redis, with the in-memory backstop when Redis is away.

    Args:
        settings: ``redis_url``, ``rate_limit_*`` are read.
        client: a ``redis.Redis`` client; built from ``redis_url`` with short timeouts and no
            retries when omitted. With ``redis_url`` unset only the backstop limits.
        clock: wall-clock seconds (shared by every instance through Redis); injectable.
        monotonic: monotonic seconds for the retry pause; injectable.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: redis.Redis | None = None,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._client = client if client is not None else _build_client(settings)
        self._script = SlidingWindowScript(self._client) if self._client is not None else None
        self.backstop = InMemoryBackstop(settings.rate_limit_backstop_keys, clock)
        self._redis_down_until: float | None = None
        self._lock = threading.Lock()

    @property
    def using_backstop(self) -> bool:
        """Whether the last decision (or the current pause) is the backstop's."""
        with self._lock:
            return self._script is None or self._redis_down_until is not None

    def hit(self, buckets: Sequence[Bucket]) -> RateDecision:
        """Count one request against every bucket, if all have room.

        Args:
            buckets: the identities the request belongs to (at least one).

        Returns:
            The decision, described by the tightest bucket (the refusing one when refused).
        """
        if not buckets:
            raise ValueError("at least one bucket")
        window = float(self._settings.rate_limit_window_seconds)
        if self._script is not None and self._redis_due():
            try:
                decision = self._hit_redis(buckets, window)
            except Exception as error:  # noqa: BLE001 - any Redis failure means: use the backstop
                self._mark_down(error)
            else:
                self._mark_up()
                return decision
        return self.backstop.hit(buckets, window)

    def _hit_redis(self, buckets: Sequence[Bucket], window: float) -> RateDecision:
        assert self._script is not None  # noqa: S101 - checked by the caller
        keys = [f"{self._settings.rate_limit_prefix}{bucket.name}" for bucket in buckets]
        now = self._clock()
        member = f"{now:.6f}:{uuid.uuid4().hex[:12]}"
        allowed, index, remaining, reset_ms = self._script(
            keys, [f"{now:.6f}", f"{window:g}", member, *(bucket.limit for bucket in buckets)]
        )
        bucket = buckets[int(index) - 1]
        return RateDecision(
            bool(allowed), bucket.limit, int(remaining), int(reset_ms) / 1000, window, "redis"
        )

    def _redis_due(self) -> bool:
        with self._lock:
            return self._redis_down_until is None or self._monotonic() >= self._redis_down_until

    def _mark_down(self, error: Exception) -> None:
        with self._lock:
            first = self._redis_down_until is None
            self._redis_down_until = (
                self._monotonic() + self._settings.rate_limit_redis_retry_seconds
            )
        if first:
            log.warning(
                "Redis unreachable: rate limits fall back to the in-memory backstop",
                extra={"error": f"{type(error).__name__}: {error}"},
            )

    def _mark_up(self) -> None:
        with self._lock:
            was_down = self._redis_down_until is not None
            self._redis_down_until = None
        if was_down:
            log.warning("Redis reachable again: rate limits are shared through Redis")


def _build_client(settings: Settings) -> redis.Redis | None:
    if not settings.redis_url:
        return None
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeout = settings.rate_limit_redis_timeout_seconds
    client: redis.Redis = redis_lib.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # no hidden retries: the backstop is the fallback
        health_check_interval=0,
    )
    return client


def address_identity(address: str) -> str:
    """What a per-address limit counts: an IPv4 address, or the /64 an IPv6 address is in.

    An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, as dual-stack sockets report IPv4
    peers) counts as its IPv4 address, so one client cannot double its budget by family.

    Args:
        address: a client address as :func:`podscribe.api.validation.client_ip` returns it.

    Returns:
        ``192.0.2.1``, ``2001:db8:1:2::/64``, or ``address`` itself when it is no address
        (``unknown``: every such request shares one bucket).
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
