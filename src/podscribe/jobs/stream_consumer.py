"""Dispatch as a long-running Redis Streams consumer: the self-hosted stack's wake-up loop.

``python -m podscribe.jobs.stream_consumer`` (with ``PODSCRIBE_WAKEUP_BACKEND=redis-streams``)
does what the Pub/Sub push subscription and the CloudEvent function do together in GCP:

    XGROUP CREATE ... MKSTREAM (once; an existing group is kept)
    loop until SIGTERM:
        XAUTOCLAIM wake-ups idle past PODSCRIBE_WAKEUP_CLAIM_IDLE_SECONDS (a failed dispatch
            waiting for its retry, or a dead consumer's) -> delivered too often? XACK, logged
            as dead-lettered
        XREADGROUP ... COUNT n BLOCK t  -> new wake-ups
        each: dispatch_message -> XACK
              malformed -> XACK, logged (it can never succeed)
              any error (no capacity, a lookup outage, a failed launch, the database down)
                  -> left pending: claimed again after the idle time, as Pub/Sub redelivers

Each wake-up is acknowledged only after dispatch handled it, so a consumer killed mid-message
leaves it pending and another consumer (or this one, restarted) takes it over. A wake-up
delivered twice launches nothing twice: the claims in :mod:`podscribe.jobs.dispatcher` see to
that. A dead-lettered wake-up loses nothing either: the job row stays queued and the sweep
re-wakes it. Memory stays bounded by ``PODSCRIBE_WAKEUP_BATCH_SIZE`` entries per read.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.engine import Engine

from podscribe.db import create_db_engine
from podscribe.errors import MalformedMessageError, PodscribeError
from podscribe.jobs.dispatcher import dispatch_message
from podscribe.jobs.launchers import Launcher, launcher_for
from podscribe.log import configure_logging
from podscribe.messaging import JobMessage
from podscribe.retry import retrying
from podscribe.settings import Settings, get_settings
from podscribe.wakeup_streams import DATA_FIELD, redis_client

if TYPE_CHECKING:
    import redis

__all__ = ["StreamConsumer", "main"]

log = logging.getLogger("podscribe.jobs.stream_consumer")  # also under python -m

_Entries = list[tuple[bytes, dict[bytes, bytes] | None]]
"""Stream entries as redis-py returns them: id and fields (None for an entry trimmed away)."""
_MAX_OUTAGE_WAIT_SECONDS = 30.0
"""The longest pause between tries while Redis is unreachable."""
_DEPARTED_AFTER_SECONDS = 3600
"""A group member silent this long, holding nothing, is gone (a pod replaced, a process
killed): it is removed from the group, so the group does not grow with every restart."""


class StreamConsumer:
    """One member of the dispatch consumer group.

    Args:
        engine: the database.
        settings: the ``wakeup_*`` settings and everything dispatch reads.
        launcher: where jobs run.
        client: an existing ``redis.Redis`` (built from the settings when omitted).
        name: this consumer's name in the group (default ``<host>-<pid>``).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        launcher: Launcher,
        *,
        client: redis.Redis | None = None,
        name: str | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._launcher = launcher
        # A command may block for the whole read, and then needs time to answer.
        timeout = settings.wakeup_block_seconds + settings.publish_timeout_seconds + 5.0
        self._redis = client or redis_client(settings, socket_timeout=timeout)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._stream = settings.wakeup_stream
        self._group = settings.wakeup_consumer_group
        self._claim_cursor = "0-0"
        self._stop = threading.Event()

    def ensure_group(self) -> None:
        """Create the stream and its consumer group unless they exist (safe to repeat).

        A new group starts at the stream's beginning, so wake-ups added before the first
        consumer came up are dispatched too.
        """
        import redis as redis_lib

        try:
            self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except redis_lib.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the wake-up in hand is finished first.

        Waits for a late Redis at start (up to ``PODSCRIBE_DB_WAIT_SECONDS``), and rides out
        a later outage with growing pauses, logging each. Wake-ups read but not yet begun
        when ``stop`` is set stay pending for another consumer; a consumer that leaves
        holding nothing removes itself from the group.

        Raises:
            redis.ConnectionError: Redis did not come up in time.
        """
        import redis as redis_lib

        for attempt in retrying(
            within_seconds=self._settings.db_wait_seconds,
            retry_on=lambda error: isinstance(
                error, redis_lib.ConnectionError | redis_lib.TimeoutError
            ),
            log=log,
            what=f"creating the consumer group {self._group} on {self._stream}",
        ):
            with attempt:
                self.ensure_group()
        self._stop = stop
        self._forget_departed()
        log.info(
            "consuming wake-ups",
            extra={"stream": self._stream, "group": self._group, "consumer": self.name},
        )
        pause = 1.0
        while not stop.is_set():
            try:
                self.poll_once()
                pause = 1.0
            except redis_lib.RedisError as error:
                if "NOGROUP" in str(error):
                    # Redis came back without our data (restarted with nothing on disk, a
                    # replica promoted before the group reached it): make the group again,
                    # from the stream's beginning, so the sweep's re-wakes are read.
                    log.warning("the consumer group is gone; creating it again")
                    with contextlib.suppress(redis_lib.RedisError):
                        self.ensure_group()
                        continue
                log.warning(
                    "Redis unavailable; consuming again shortly",
                    extra={"error": str(error), "pause_seconds": pause},
                )
                stop.wait(pause)
                pause = min(pause * 2, _MAX_OUTAGE_WAIT_SECONDS)
        self._leave()
        log.info("stopped consuming wake-ups", extra={"consumer": self.name})

    def _forget_departed(self) -> None:
        """Remove members silent for an hour that hold no wake-up (their own stay pending)."""
        for member in self._redis.xinfo_consumers(self._stream, self._group):
            if member["pending"] == 0 and member["idle"] > _DEPARTED_AFTER_SECONDS * 1000:
                self._redis.xgroup_delconsumer(self._stream, self._group, member["name"])

    def _leave(self) -> None:
        """Leave the group, unless wake-ups are still pending here (others take them over)."""
        import redis as redis_lib

        try:
            held = self._redis.xpending_range(
                self._stream, self._group, "-", "+", 1, consumername=self.name
            )
            if not held:
                self._redis.xgroup_delconsumer(self._stream, self._group, self.name)
        except redis_lib.RedisError as error:
            log.warning("could not leave the consumer group", extra={"error": str(error)})

    def poll_once(self, *, block: bool = True) -> int:
        """One round: take over abandoned wake-ups, then read new ones; handle each.

        Args:
            block: wait up to ``PODSCRIBE_WAKEUP_BLOCK_SECONDS`` for new wake-ups.

        Returns:
            How many entries this round handled (dispatched, dropped or dead-lettered).

        Raises:
            redis.RedisError: Redis failed; whatever was not acknowledged stays pending.
        """
        handled = self._take_over()
        if self._stop.is_set():
            return handled
        block_ms = int(self._settings.wakeup_block_seconds * 1000) if block else None
        replies = cast(
            "list[tuple[bytes, _Entries]] | None",
            self._redis.xreadgroup(
                self._group,
                self.name,
                {self._stream: ">"},
                count=self._settings.wakeup_batch_size,
                block=block_ms,
            ),
        )
        for _stream, entries in replies or []:
            for entry_id, fields in entries:
                if self._stop.is_set():
                    break  # left pending: another consumer claims it after the idle time
                self._handle(_text(entry_id), fields or {})
                handled += 1
        return handled

    def _take_over(self) -> int:
        """Claim wake-ups idle past the claim time, from any consumer, and handle them."""
        reply: list[Any] = self._redis.xautoclaim(
            self._stream,
            self._group,
            self.name,
            min_idle_time=int(self._settings.wakeup_claim_idle_seconds * 1000),
            start_id=self._claim_cursor,
            count=self._settings.wakeup_batch_size,
        )
        cursor, entries = cast("tuple[bytes, _Entries]", (reply[0], reply[1]))
        self._claim_cursor = _text(cursor)
        trimmed = reply[2] if len(reply) > 2 else []
        if trimmed:
            # Trimmed from the stream while pending: XAUTOCLAIM dropped them; the sweep repairs.
            log.warning("pending wake-ups were trimmed away", extra={"entries": len(trimmed)})
        handled = 0
        for entry_id, claimed_fields in entries:
            if self._stop.is_set():
                break  # claimed, not begun: pending again for whoever claims next
            entry, fields = _text(entry_id), claimed_fields or {}
            deliveries = self._deliveries(entry)
            if deliveries > self._settings.wakeup_max_deliveries:
                self._dead_letter(entry, fields, deliveries)
            else:
                log.info("wake-up claimed again", extra={"entry": entry, "deliveries": deliveries})
                self._handle(entry, fields)
            handled += 1
        return handled

    def _deliveries(self, entry: str) -> int:
        """How often the group has delivered ``entry`` (this claim included)."""
        pending = self._redis.xpending_range(
            self._stream, self._group, min=entry, max=entry, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    def _handle(self, entry: str, fields: dict[Any, Any]) -> None:
        """Dispatch one wake-up; acknowledge it unless it is worth trying again."""
        try:
            message = JobMessage.from_bytes(_field(fields, DATA_FIELD))
        except MalformedMessageError as error:
            log.error(  # noqa: TRY400 - the reason is the message; a traceback adds nothing
                "malformed wake-up acknowledged without retry",
                extra={"entry": entry, "code": error.code, "error": error.message},
            )
            self._ack(entry)
            return
        try:
            outcome = dispatch_message(self._engine, self._settings, self._launcher, message)
        except Exception as error:  # noqa: BLE001 - any failure: Pub/Sub would redeliver too
            code = error.code if isinstance(error, PodscribeError) else "internal_error"
            log.warning(
                "dispatch failed; the wake-up stays pending for a retry",
                extra={"entry": entry, "job_id": message.job_id, "code": code,
                       "error": str(error)[:500]},
            )  # fmt: skip
            return
        self._ack(entry)
        log.info(
            "wake-up handled",
            extra={
                "entry": entry,
                "job_id": outcome.job_id,
                "action": outcome.action,
                "attempts": outcome.attempts,
                "launcher_ref": outcome.launcher_ref,
                "reason": outcome.reason,
            },
        )

    def _dead_letter(self, entry: str, fields: dict[Any, Any], deliveries: int) -> None:
        log.error(
            "wake-up delivered too often; acknowledged as dead-lettered (the sweep re-wakes "
            "its job while it is queued)",
            extra={
                "entry": entry,
                "job_id": _text(_field(fields, "job_id"))[:100],
                "deliveries": deliveries,
                "max_deliveries": self._settings.wakeup_max_deliveries,
            },
        )
        self._ack(entry)

    def _ack(self, entry: str) -> None:
        self._redis.xack(self._stream, self._group, entry)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _field(fields: dict[Any, Any], name: str) -> bytes:
    value = fields.get(name.encode(), fields.get(name))
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    """Consume wake-ups until SIGTERM or SIGINT.

    Returns:
        0 after a graceful stop, 1 when Redis or the configuration failed it, 2 when the
        wake-up backend is not ``redis-streams``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m podscribe.jobs.stream_consumer",
        description="Dispatch wake-ups from the Redis stream until SIGTERM.",
    )
    parser.add_argument("--name", help="this consumer's name in the group (default host-pid)")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    if settings.wakeup_backend != "redis-streams":
        # Submit and the sweep would publish to Pub/Sub: this consumer would wait forever.
        log.error(
            "PODSCRIBE_WAKEUP_BACKEND is not redis-streams; nothing would reach this consumer",
            extra={"wakeup_backend": settings.wakeup_backend},
        )
        return 2
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping after the wake-up in hand", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    import redis as redis_lib

    engine = create_db_engine(settings)
    try:
        StreamConsumer(engine, settings, launcher_for(settings), name=args.name).run(stop)
    except PodscribeError as error:
        # The code is the whole story (a settings or database fault): no traceback.
        log.error("the wake-up consumer could not run", extra={"code": error.code})  # noqa: TRY400
        return 1
    except redis_lib.RedisError as error:
        log.error(  # noqa: TRY400 - the reason is the message
            "the wake-up consumer gave up waiting for Redis",
            extra={"stream": settings.wakeup_stream, "error": str(error)},
        )
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
