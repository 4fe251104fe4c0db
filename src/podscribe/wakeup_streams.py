"""Wake-ups on a Redis stream: the self-hosted stack's stand-in for Pub/Sub.

One stream entry per wake-up. Its ``data`` field holds the same JSON body a Pub/Sub message
carries (:meth:`podscribe.messaging.JobMessage.to_bytes`), and a ``job_id`` field repeats the
id for anyone reading the stream with ``redis-cli``. Every ``XADD`` trims the stream to about
``PODSCRIBE_WAKEUP_STREAM_MAX_LENGTH`` entries (``MAXLEN ~``, which Redis does cheaply, a
whole node at a time), so the stream never grows with traffic: a wake-up trimmed before it was
read is a lost wake-up, and the sweep re-wakes its job as it does any other.

The consumer side is :mod:`podscribe.jobs.stream_consumer`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from podscribe.errors import PublishError, SettingsError
from podscribe.messaging import JobMessage
from podscribe.settings import Settings

if TYPE_CHECKING:
    import redis

__all__ = ["DATA_FIELD", "StreamPublisher", "redis_client", "wakeup_redis_url"]

DATA_FIELD = "data"
"""The entry field that holds a wake-up's JSON body."""


def wakeup_redis_url(settings: Settings) -> str:
    """The Redis the wake-up stream lives in: its own URL, else the rate limits' one.

    Raises:
        SettingsError: neither ``PODSCRIBE_WAKEUP_REDIS_URL`` nor ``PODSCRIBE_REDIS_URL`` is set.
    """
    url = settings.wakeup_redis_url or settings.redis_url
    if not url:
        raise SettingsError(
            "PODSCRIBE_WAKEUP_BACKEND=redis-streams needs PODSCRIBE_WAKEUP_REDIS_URL "
            "or PODSCRIBE_REDIS_URL"
        )
    return url


def redis_client(settings: Settings, *, socket_timeout: float) -> redis.Redis:
    """A client of the wake-up Redis; it connects on its first command.

    Args:
        settings: where the stream lives.
        socket_timeout: seconds one command may take (a consumer's must exceed its block time).

    Raises:
        SettingsError: no Redis is configured.
    """
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client: redis.Redis = redis_lib.Redis.from_url(
        wakeup_redis_url(settings),
        socket_connect_timeout=min(socket_timeout, 10.0),
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),  # no hidden retries: the callers decide what a failure costs
        health_check_interval=0,
    )
    return client


class StreamPublisher:
    """Publishes wake-ups with ``XADD`` to the wake-up stream.

    Args:
        settings: ``wakeup_stream``, ``wakeup_stream_max_length`` and the Redis URL are read.
        client: an existing ``redis.Redis`` (built on first use when omitted).
        timeout: seconds to wait for Redis.
    """

    def __init__(
        self, settings: Settings, *, client: redis.Redis | None = None, timeout: float = 10.0
    ) -> None:
        self._settings = settings
        self._client = client
        self._timeout = timeout
        self._lock = threading.Lock()

    @property
    def stream(self) -> str:
        return self._settings.wakeup_stream

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                self._client = redis_client(self._settings, socket_timeout=self._timeout)
            return self._client

    def publish(self, message: JobMessage) -> str:
        """Add the wake-up to the stream, trimming old entries.

        Returns:
            The entry's id (``<ms>-<seq>``).

        Raises:
            PublishError: Redis could not be reached in time.
        """
        import redis as redis_lib

        try:
            entry_id = self._redis().xadd(
                self.stream,
                {DATA_FIELD: message.to_bytes(), "job_id": message.job_id},
                maxlen=self._settings.wakeup_stream_max_length,
                approximate=True,
            )
        except redis_lib.RedisError as error:
            raise PublishError(
                f"adding to the Redis stream {self.stream} failed: {error}"
            ) from error
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
