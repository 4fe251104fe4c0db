"""The dispatch Cloud Function's handlers: one CloudEvent in, a dispatch or a sweep out.

``functions/dispatch/main.py`` only registers :func:`handle_dispatch` and :func:`handle_sweep`
as functions-framework targets. Both take the ``google.cloud.pubsub.topic.v1.messagePublished``
CloudEvent: from the jobs topic (Eventarc in GCP; locally the emulator's push subscription
posts to ``/projects/<project>/topics/<topic>`` and functions-framework turns the push body
into the same CloudEvent), and from the sweep topic Cloud Scheduler publishes to (locally, a
timer).

Nothing connects at import time: the engine, the launcher and the publisher are built on the
first event and reused by the instance's later ones.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from cloudevents.http import CloudEvent
from sqlalchemy.engine import Engine

from podscribe.db import create_db_engine
from podscribe.errors import MalformedMessageError
from podscribe.jobs.dispatcher import dispatch_message
from podscribe.jobs.launchers import Launcher, launcher_for
from podscribe.jobs.sweeper import run_sweep
from podscribe.log import configure_logging, parse_trace_header, trace_context
from podscribe.messaging import JobMessage, Publisher, publisher_for
from podscribe.settings import get_settings

__all__ = ["handle_dispatch", "handle_sweep"]

log = logging.getLogger("podscribe.functions.dispatch")


@functools.cache
def _engine() -> Engine:
    settings = get_settings()
    configure_logging(settings)
    return create_db_engine(settings)


@functools.cache
def _launcher() -> Launcher:
    return launcher_for(get_settings())


@functools.cache
def _publisher() -> Publisher:
    return publisher_for(get_settings())


def _trace(event: CloudEvent) -> tuple[str | None, str | None]:
    """The trace Eventarc propagates in the event's ``traceparent`` extension, if any."""
    traceparent = event.get("traceparent")
    return parse_trace_header(traceparent if isinstance(traceparent, str) else None, None)


def _pubsub_message(event: CloudEvent) -> Any:
    data = event.data
    return data.get("message") if isinstance(data, dict) else None


def handle_dispatch(event: CloudEvent) -> None:
    """Launch the job a wake-up names, at most once.

    A malformed message is logged and acknowledged (redelivering it could never succeed).

    Raises:
        LaunchError: the launch failed (the job is queued again): Pub/Sub retries.
        DatabaseUnavailableError: the database is down: Pub/Sub retries.
    """
    engine = _engine()
    with trace_context(*_trace(event)):
        try:
            message = JobMessage.from_pubsub_envelope(_pubsub_message(event))
        except MalformedMessageError as error:
            log.error(  # noqa: TRY400 - the reason is the message; a traceback adds nothing
                "malformed wake-up acknowledged without retry",
                extra={"message_id": event["id"], "code": error.code, "error": error.message},
            )
            return
        outcome = dispatch_message(engine, get_settings(), _launcher(), message)
        log.info(
            "wake-up handled",
            extra={
                "message_id": event["id"],
                "job_id": outcome.job_id,
                "action": outcome.action,
                "attempts": outcome.attempts,
                "launcher_ref": outcome.launcher_ref,
                "reason": outcome.reason,
            },
        )


def handle_sweep(event: CloudEvent) -> None:
    """Reconcile with the launcher, reclaim expired leases, re-wake forgotten jobs.

    Raises:
        DatabaseUnavailableError: the database is down: the next tick sweeps again.
    """
    engine = _engine()
    with trace_context(*_trace(event)):
        outcome = run_sweep(engine, get_settings(), _launcher(), _publisher())
    log.info(
        "sweep handled",
        extra={
            "message_id": event["id"],
            "worker_failed": outcome.worker_failed,
            "requeued": outcome.requeued,
            "failed": outcome.failed,
            "republished": outcome.republished,
        },
    )
