"""Rate limits: a sliding window in Redis, and a bounded in-memory backstop.

Each limited identity (an API key's fingerprint, a client IP) is a *bucket*. A request is
admitted only when every bucket it touches has room, and then it counts against all of them;
a refused request counts against none, so a client that backs off recovers at the window's
pace.

Redis does the counting with one Lua script, registered with redis-py's
``Redis.register_script``: a ``Script`` runs it by ``EVALSHA`` and loads it again by itself
when Redis answers ``NOSCRIPT`` after a restart or ``SCRIPT FLUSH``. The script keeps, per
bucket, a sorted set of the admission times of the last window (a sliding log): exact, atomic
across every instance of the function, and bounded by the limit per bucket because refused
requests are never written. Times come from this process's clock (injectable, so tests can
step through windows) rather than Redis's, which keeps Redis and the backstop on one time
line.

When Redis cannot be reached the limiter does not fail open: the bounded in-memory backstop
(:mod:`podscribe.ratelimit_backstop`) keeps the same sliding log. After a failure the limiter
leaves Redis alone for ``rate_limit_redis_retry_seconds`` (an outage costs one short timeout,
not one per request), then tries again and switches back by itself.

Addresses are limited by what one client controls (:func:`address_identity`): an IPv4
address, or an IPv6 /64 (the smallest prefix an ISP hands out; one host picks among 2**64
addresses in it at will).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from podscribe.ratelimit_backstop import Bucket, Clock, InMemoryBackstop, RateDecision
from podscribe.settings import RateLimitSettings

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

__all__ = [
    "SLIDING_WINDOW_LUA",
    "SLIDING_WINDOW_SHA",
    "Bucket",
    "InMemoryBackstop",
    "RateDecision",
    "RateLimiter",
    "address_identity",
]

log = logging.getLogger(__name__)

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
SLIDING_WINDOW_LUA = _LUA
"""The sliding-window script's source."""
SLIDING_WINDOW_SHA = hashlib.sha1(_LUA.encode("utf-8"), usedforsecurity=False).hexdigest()
"""What Redis calls the script (``EVALSHA`` and ``SCRIPT EXISTS`` take it)."""


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
        settings: RateLimitSettings,
        *,
        client: redis.Redis | None = None,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._client = client if client is not None else _build_client(settings)
        # A redis-py Script: EVALSHA, and SCRIPT LOAD plus a second try on NOSCRIPT.
        self._script: Script | None = (
            self._client.register_script(_LUA) if self._client is not None else None
        )
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
        args: list[str | int] = [
            f"{now:.6f}",
            f"{window:g}",
            member,
            *(bucket.limit for bucket in buckets),
        ]
        allowed, index, remaining, reset_ms = self._script(keys=keys, args=args)
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


def _build_client(settings: RateLimitSettings) -> redis.Redis | None:
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
