"""Webhooks: tell the callers who asked that their transcript is ready (or failed).

Each key that submitted an episode may register a ``callback_url``; when the job ends, every
one of them gets a POST. Deliveries go through the SSRF guard like any other fetch made for a
user, never follow redirects, retry transient failures a few times, and never change the
job's outcome: a receiver that is down loses its notification, not its transcript (polling
still works).

Bodies are signed when a secret is configured (``PODSCRIBE_WEBHOOK_SECRET``, or
``PODSCRIBE_WEBHOOK_SECRET_VERSION`` naming it in Secret Manager for the Vertex job, which
cannot mount secrets)::

    Podscribe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
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
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from podscribe.api.documents import transcript_links
from podscribe.api.models import WebhookError, WebhookEvent
from podscribe.db import transaction
from podscribe.egress.fetcher import SafeFetcher
from podscribe.errors import PodscribeError, WebhookSecretUnavailableError
from podscribe.jobs import Job, JobStatus, callback_urls, get_job
from podscribe.log import url_host
from podscribe.retry import retrying
from podscribe.settings import ApiSettings, Settings, WebhookSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Podscribe-Signature"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one webhook delivery."""

    url: str
    delivered: bool
    status: int | None
    error: str | None


def webhook_event(job: Job, settings: ApiSettings) -> WebhookEvent:
    """The event sent when ``job`` ended (:class:`~podscribe.api.models.WebhookEvent`)."""
    failed = job.status is JobStatus.FAILED
    base = (settings.public_base_url or "").rstrip("/")
    return WebhookEvent(
        type=f"transcription.{job.status.value}",
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


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Podscribe-Signature`` header value for ``body``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(body: bytes, header: str, secret: str, *, tolerance_seconds: int = 300) -> bool:
    """What a receiver does: check the signature and that it is recent."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(body, secret, timestamp), header)


def notify(
    job: Job, urls: list[str], settings: Settings, *, fetcher: SafeFetcher | None = None
) -> list[Delivery]:
    """POST the job's outcome to every URL; never raises.

    Returns:
        One :class:`Delivery` per URL.
    """
    if not urls or job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        return []
    body = json.dumps(webhook_payload(job, settings), separators=(",", ":")).encode()
    try:
        secret = signing_secret(settings)
    except WebhookSecretUnavailableError as error:
        # Never fall back to unsigned: receivers that verify would take it for a forgery.
        log.exception("webhooks not sent", extra={"job_id": job.id, "error": error.message})
        return [Delivery(url, False, None, error.code) for url in dict.fromkeys(urls)]
    own = fetcher is None
    client = fetcher or SafeFetcher(settings)
    try:
        return [_deliver(client, url, body, secret, settings) for url in dict.fromkeys(urls)]
    finally:
        if own:
            client.close()


def _deliver(
    fetcher: SafeFetcher, url: str, body: bytes, secret: str | None, settings: Settings
) -> Delivery:
    attempts = retrying(attempts=settings.webhook_attempts, initial_seconds=0.5, max_seconds=10)
    try:
        status = attempts(
            fetcher.post_json,
            url,
            body,
            headers=_headers(body, secret),
            timeout=settings.idle_timeout_seconds,
        )
    except PodscribeError as error:
        # A callback's path or query may be its credential (Slack-style hooks): the logs get
        # its host only, in the detail too.
        host = url_host(url)
        log.warning(
            "webhook not delivered",
            extra={"host": host, "code": error.code, "detail": error.message.replace(url, host)},
        )
        return Delivery(
            url, delivered=False, status=getattr(error, "status", None), error=error.code
        )
    log.info("webhook delivered", extra={"host": url_host(url), "status": status})
    return Delivery(url, delivered=True, status=status, error=None)


def _headers(body: bytes, secret: str | None) -> dict[str, str]:
    headers = {"User-Agent": "podscribe-webhooks"}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, secret, int(time.time()))
    return headers


def signing_secret(settings: WebhookSettings) -> str | None:
    """The webhook secret: from the environment, else from Secret Manager (cached).

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


def notify_finished(engine: Engine, settings: Settings, job_ids: list[str]) -> None:
    """Send the webhooks of jobs that just ended (by whichever part ended them); never raises."""
    for job_id in dict.fromkeys(job_ids):
        try:
            with transaction(engine) as conn:
                job = get_job(conn, job_id)
                urls = callback_urls(conn, job_id)
        except PodscribeError as error:
            log.warning("webhooks skipped", extra={"job_id": job_id, "code": error.code})
            continue
        notify(job, urls, settings)
