"""Webhooks: tell the callers who asked that their transcript is ready (or failed).

Each key that submitted an episode may register a ``callback_url``. When the job ends, the
transaction that ends it also writes one delivery per such key to the outbox
(:mod:`podscribe.jobs.outbox`); :func:`notify_finished` sends them at once, and the sweep's
:func:`deliver_due` retries those still pending with exponential backoff for
``PODSCRIBE_WEBHOOK_RETRY_HOURS`` (24 h) before abandoning them. A 2xx answer delivers a
delivery for good (never sent again); any other answer or a connection failure is retried;
a URL the SSRF guard refuses is abandoned at once. Deliveries go through the guard like any
other fetch made for a user, never follow redirects, log the callback's host only, and never
change the job's outcome.

Signatures follow `Standard Webhooks <https://www.standardwebhooks.com>`_::

    webhook-id: <the delivery's UUID, the same on every retry: receivers dedupe by it>
    webhook-timestamp: <unix seconds of this try>
    webhook-signature: v1,<base64 HMAC-SHA256(secret bytes, "<id>.<timestamp>.<body>")>

Each API key has a secret of its own, ``whsec_<base64 of 32 bytes>``, derived from the
master secret (``PODSCRIBE_WEBHOOK_SECRET``, or ``PODSCRIBE_WEBHOOK_SECRET_VERSION`` naming it
in Secret Manager for the Vertex job, which cannot mount secrets) and the key's fingerprint
(:func:`secret_for_key`): no secret store per key, every sender computes it, and rotating the
master rotates every key's secret. A receiver holding key A's secret cannot verify (or
forge) key B's deliveries, so an event captured from one receiver and replayed to another
fails there. Without a master secret deliveries are unsigned; with one that cannot be read,
nothing is sent (never unsigned) and the delivery waits for the next round.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from podscribe.api.documents import transcript_links
from podscribe.api.models import WebhookError, WebhookEvent
from podscribe.db import transaction
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import (
    DownloadRefusedError,
    JobNotFoundError,
    JobStateConflictError,
    PodscribeError,
    WebhookSecretUnavailableError,
)
from podscribe.jobs import Job, JobId, JobStatus, get_job, outbox
from podscribe.jobs.outbox import Backoff, DeliveryStatus, OutboxDelivery
from podscribe.log import url_host
from podscribe.retry import retrying
from podscribe.settings import ApiSettings, Settings, WebhookSettings

log = logging.getLogger(__name__)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105  # the format's prefix, not a secret
_SECRET_LABEL = b"podscribe/webhook-secret/v1/"
_BATCH = 100
_MAX_BATCHES = 10
"""A sweep sends at most this many batches; the rest wait for the next sweep."""


@dataclass
class DeliveryRound:
    """What one round of sending did, by delivery id."""

    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)


def webhook_event(job: Job, settings: ApiSettings) -> WebhookEvent:
    """The event sent when ``job`` ended (:class:`~podscribe.api.models.WebhookEvent`)."""
    failed = job.status is JobStatus.FAILED
    base = (settings.public_base_url or "").rstrip("/")
    return WebhookEvent(
        type=outbox.event_type(job.status),
        id=uuid.UUID(str(job.id)),
        status=job.status,
        finished_at=job.finished_at,
        # The row's message is the code's public one (see jobs.fail): no internal detail.
        error=WebhookError(code=job.error_code, message=job.error_message) if failed else None,
        transcripts=(None if failed else transcript_links(job.id, base)),
    )


def webhook_payload(job: Job, settings: Settings) -> dict[str, Any]:
    """The JSON body sent when ``job`` ended, as JSON-ready data."""
    return webhook_event(job, settings).render()


def secret_for_key(master: str, key_fingerprint: str) -> str:
    """A key's signing secret: ``whsec_`` + base64 HMAC-SHA256(master, label + fingerprint).

    Args:
        master: the configured master secret.
        key_fingerprint: the key's fingerprint (:func:`podscribe.api.auth.key_fingerprint`).
    """
    digest = hmac.new(master.encode(), _SECRET_LABEL + key_fingerprint.encode(), hashlib.sha256)
    return SECRET_PREFIX + base64.b64encode(digest.digest()).decode()


def _secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(delivery_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>`` of id, timestamp, body."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def verify(
    body: bytes, headers: Mapping[str, str], secret: str, *, tolerance_seconds: int = 300
) -> bool:
    """What a receiver does: check a signature (any of its ``v1`` ones) and that it is recent.

    Args:
        body: the raw request body.
        headers: the request's headers (any case).
        secret: the receiving key's ``whsec_...`` secret.
        tolerance_seconds: how far the timestamp may be from now.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    delivery_id = lowered.get(ID_HEADER, "")
    try:
        timestamp = int(lowered.get(TIMESTAMP_HEADER, ""))
    except ValueError:
        return False
    if not delivery_id or abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = sign(delivery_id, timestamp, body, secret)
    offered = lowered.get(SIGNATURE_HEADER, "").split(" ")
    return any(hmac.compare_digest(expected, signature) for signature in offered)


def signed_headers(
    delivery_id: str, body: bytes, secret: str | None, timestamp: int
) -> dict[str, str]:
    """The headers of one try (unsigned, but with id and timestamp, when no secret)."""
    headers = {
        "User-Agent": "podscribe-webhooks",
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(delivery_id, timestamp, body, secret)
    return headers


def key_secret(settings: WebhookSettings, key_fingerprint: str) -> str | None:
    """The signing secret of one key, or None when webhooks are unsigned (no master).

    Raises:
        WebhookSecretUnavailableError: the master is in Secret Manager and cannot be read.
    """
    master = signing_secret(settings)
    return None if master is None else secret_for_key(master, key_fingerprint)


def signing_secret(settings: WebhookSettings) -> str | None:
    """The master webhook secret: from the environment, else from Secret Manager (cached).

    Raises:
        WebhookSecretUnavailableError: a Secret Manager version is configured but unreadable.
    """
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    if settings.webhook_secret_version is None:
        return None
    return _read_secret_version(settings.secret_manager_endpoint, settings.webhook_secret_version)


@functools.cache
def _read_secret_version(endpoint: str, version: str) -> str:
    # Plain REST through google-auth (already a dependency) rather than one more client library.
    import google.auth
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import AuthorizedSession
    from requests import RequestException

    try:
        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        response = session.get(f"{endpoint.rstrip('/')}/v1/{version}:access", timeout=10)
        response.raise_for_status()
        return base64.b64decode(response.json()["payload"]["data"]).decode("utf-8")
    except (GoogleAuthError, RequestException, KeyError, ValueError) as error:
        raise WebhookSecretUnavailableError(f"cannot read {version}: {error}") from error


def backoff(settings: WebhookSettings) -> Backoff:
    """The outbox's waits and horizon from the settings."""
    return Backoff(
        initial_seconds=settings.webhook_backoff_initial_seconds,
        max_seconds=settings.webhook_backoff_max_seconds,
        horizon_seconds=settings.webhook_retry_hours * 3600,
    )


def _lease_seconds(settings: Settings) -> float:
    # Longer than one round can take (its tries, their timeouts, the waits between), so no
    # other sender takes a delivery that is still being sent.
    return settings.webhook_attempts * (2 * settings.idle_timeout_seconds + 10) + 60


def deliver_due(
    engine: Engine,
    settings: Settings,
    *,
    job_ids: list[JobId] | None = None,
    fetcher: SafeFetcher | None = None,
) -> DeliveryRound:
    """Send one round of every due pending delivery (of ``job_ids`` only, if given).

    Safe to run concurrently: each delivery is claimed (and leased) before it is sent.

    Returns:
        What was delivered, what waits for another round, what was given up.

    Raises:
        DatabaseUnavailableError: the database could not be reached.
    """
    done = DeliveryRound()
    own = fetcher is None
    client = fetcher or SafeFetcher(settings)
    try:
        for _ in range(_MAX_BATCHES):
            with transaction(engine) as conn:
                claimed = outbox.claim_due(
                    conn, limit=_BATCH, lease_seconds=_lease_seconds(settings), job_ids=job_ids
                )
            for delivery in claimed:
                _deliver(engine, client, delivery, settings, done)
            if len(claimed) < _BATCH:
                break
    finally:
        if own:
            client.close()
    return done


def _deliver(
    engine: Engine,
    fetcher: SafeFetcher,
    delivery: OutboxDelivery,
    settings: Settings,
    done: DeliveryRound,
) -> None:
    """One round of one claimed delivery, and its outcome recorded."""
    try:
        with transaction(engine) as conn:
            job = get_job(conn, delivery.job_id)
    except JobNotFoundError:
        return  # deleted meanwhile: its deliveries went with it
    if outbox.event_type(job.status) != delivery.event_type:
        # Submitted again since: the event no longer describes the job (its next end is a
        # new event), so it is not sent as it is now.
        _record(engine, delivery, settings, done, JobStateConflictError.code, abandon=True)
        return
    body = json.dumps(webhook_payload(job, settings), separators=(",", ":")).encode()
    host = url_host(delivery.url)
    try:
        secret = key_secret(settings, delivery.key_fingerprint)
        status = retrying(attempts=settings.webhook_attempts, initial_seconds=0.5, max_seconds=10)(
            _post, fetcher, delivery, body, secret, settings
        )
    except PodscribeError as error:
        # A callback's path or query may be its credential (Slack-style hooks): the logs get
        # its host only, in the detail too.
        log.warning(
            "webhook not delivered",
            extra={
                "host": host,
                "code": error.code,
                "detail": error.message.replace(delivery.url, host),
                "delivery_id": delivery.id,
                "job_id": delivery.job_id,
                "attempts": delivery.attempts,
            },
        )
        _record(
            engine,
            delivery,
            settings,
            done,
            error.code,
            status=getattr(error, "status", None),
            abandon=isinstance(error, DownloadRefusedError),
        )
        return
    with transaction(engine) as conn:
        outbox.mark_delivered(conn, delivery.id, status=status)
    done.delivered.append(delivery.id)
    log.info(
        "webhook delivered",
        extra={"host": host, "status": status, "delivery_id": delivery.id, "job_id": job.id},
    )


def _post(
    fetcher: SafeFetcher,
    delivery: OutboxDelivery,
    body: bytes,
    secret: str | None,
    settings: Settings,
) -> int:
    # Signed per try: the timestamp is this try's, as receivers check it against their clock.
    headers = signed_headers(delivery.id, body, secret, int(time.time()))
    return fetcher.post_json(
        delivery.url, body, headers=headers, timeout=settings.idle_timeout_seconds
    )


def _record(
    engine: Engine,
    delivery: OutboxDelivery,
    settings: Settings,
    done: DeliveryRound,
    code: str,
    *,
    status: int | None = None,
    abandon: bool = False,
) -> None:
    with transaction(engine) as conn:
        now = outbox.mark_failed(
            conn, delivery.id, backoff=backoff(settings), error=code, status=status, abandon=abandon
        )
    if now is DeliveryStatus.ABANDONED:
        done.abandoned.append(delivery.id)
        log.warning(
            "webhook abandoned",
            extra={"host": url_host(delivery.url), "code": code, "delivery_id": delivery.id},
        )
    elif now is DeliveryStatus.PENDING:
        done.retrying.append(delivery.id)


def notify_finished(engine: Engine, settings: Settings, job_ids: list[str]) -> None:
    """Send the webhooks of jobs that just ended (by whichever part ended them); never raises.

    The deliveries are already in the outbox (written with the job's end); this is their
    first round, right away. What fails here, the sweep retries.
    """
    if not job_ids:
        return
    try:
        deliver_due(engine, settings, job_ids=list(dict.fromkeys(job_ids)))
    except PodscribeError as error:
        log.warning("webhooks left to the sweep", extra={"job_ids": job_ids, "code": error.code})
