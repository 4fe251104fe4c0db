"""Webhooks: tell the callers who asked that their transcript is ready (or failed).

Each key that submitted an episode may register a ``callback_url``; when the job ends, every
one of them gets a POST. Deliveries go through the SSRF guard like any other fetch made for a
user, never follow redirects, retry transient failures a few times, and never change the
job's outcome: a receiver that is down loses its notification, not its transcript (polling
still works).

Bodies are signed when ``PODSCRIBE_WEBHOOK_SECRET`` is set::

    Podscribe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from podscribe.db import transaction
from podscribe.errors import PodscribeError
from podscribe.fetch import SafeFetcher
from podscribe.jobs import Job, JobStatus, callback_urls, get_job
from podscribe.settings import Settings
from podscribe.storage import TRANSCRIPT_FORMATS

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Podscribe-Signature"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one webhook delivery."""

    url: str
    delivered: bool
    status: int | None
    error: str | None


def webhook_payload(job: Job, settings: Settings) -> dict[str, Any]:
    """The JSON body sent when ``job`` ended."""
    payload: dict[str, Any] = {
        "type": f"transcription.{job.status.value}",
        "id": job.id,
        "status": job.status.value,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.status is JobStatus.FAILED:
        payload["error"] = {"code": job.error_code, "message": job.error_message}
    else:
        path = f"/v1/transcriptions/{job.id}/transcript"
        base = (settings.public_base_url or "").rstrip("/")
        payload["transcripts"] = {fmt: f"{base}{path}?format={fmt}" for fmt in TRANSCRIPT_FORMATS}
    return payload


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
    own = fetcher is None
    client = fetcher or SafeFetcher(settings)
    try:
        return [_deliver(client, url, body, settings) for url in dict.fromkeys(urls)]
    finally:
        if own:
            client.close()


def _deliver(fetcher: SafeFetcher, url: str, body: bytes, settings: Settings) -> Delivery:
    retrying = Retrying(
        stop=stop_after_attempt(settings.webhook_attempts),
        wait=wait_exponential(multiplier=0.5, max=10),
        retry=retry_if_exception(
            lambda error: isinstance(error, PodscribeError) and error.transient
        ),
        reraise=True,
    )
    try:
        status = retrying(
            fetcher.post_json,
            url,
            body,
            headers=_headers(body, settings),
            timeout=settings.idle_timeout_seconds,
        )
    except PodscribeError as error:
        log.warning(
            "webhook not delivered", extra={"url": url, "code": error.code, "detail": error.message}
        )
        return Delivery(
            url, delivered=False, status=getattr(error, "status", None), error=error.code
        )
    log.info("webhook delivered", extra={"url": url, "status": status})
    return Delivery(url, delivered=True, status=status, error=None)


def _headers(body: bytes, settings: Settings) -> dict[str, str]:
    headers = {"User-Agent": "podscribe-webhooks"}
    if settings.webhook_secret is not None:
        headers[SIGNATURE_HEADER] = sign(
            body, settings.webhook_secret.get_secret_value(), int(time.time())
        )
    return headers


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
