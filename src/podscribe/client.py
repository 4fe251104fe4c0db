"""A small client of the podscribe HTTP API, used by the CLI and the demo.

Two things a polling client meets that are not errors, handled here so every caller gets
them: a ``429`` says how long to wait (``Retry-After``), and the client waits that long, up to
a bound, and asks again (a refused request was not counted or acted on, so any method may be
repeated); and a pooled keep-alive connection can be closed by the server (gunicorn drops idle
ones after 2 s) just as a request goes out on it, so a request that finds its connection
dropped is sent once more, on a fresh one, when repeating it is harmless: a GET, or a submit.

A submit is made harmless to repeat: each :meth:`PodscribeClient.submit` sends a fresh
``Idempotency-Key`` and every retry of that call the same one, so the server answers a retry
whose first try was acted on (its answer lost with the connection) with that first answer,
and never makes or requeues a job twice. A ``409 idempotency_key_in_use`` (the first try is
still being processed) is waited out like a 429.
"""

from __future__ import annotations

import email.utils
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

TERMINAL_STATUSES = frozenset({"succeeded", "failed"})

_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)
"""What a request on a connection the server already closed raises (not timeouts: a slow
server asked again would only double the wait)."""
_DEFAULT_RETRY_AFTER = 1.0
IDEMPOTENCY_HEADER = "Idempotency-Key"
_IN_USE = "idempotency_key_in_use"


class ApiError(Exception):
    """The API answered with a problem document (or not at all).

    Attributes:
        status: HTTP status, 0 when the service could not be reached.
        code: the problem's stable ``code``.
        detail: the problem's ``detail``.
    """

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}" if status else f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class WaitTimeoutError(Exception):
    """The job did not finish within the time the caller was willing to wait."""


class PodscribeClient:
    """Talks to one deployment.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080``.
        api_key: sent as ``Authorization: Bearer``.
        timeout: seconds per HTTP request.
        max_retry_wait: longest ``Retry-After`` honoured; a 429 asking for more is raised.
        rate_limit_retries: 429s (and 409s of a submit still in flight) waited out per call
            before the last one is raised.
        sleep: how to wait (injectable).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retry_wait: float = 60.0,
        rate_limit_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._max_retry_wait = max_retry_wait
        self._rate_limit_retries = rate_limit_retries
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "podscribe-cli"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PodscribeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, path, **kwargs)
        for _ in range(self._rate_limit_retries):
            if not _wait_and_retry(response):
                break
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait > self._max_retry_wait:
                break  # longer than the caller will wait: say so now rather than hang
            self._sleep(wait)
            response = self._send(method, path, **kwargs)
        if response.is_success:
            return response
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        raise ApiError(
            response.status_code,
            str(problem.get("code", "http_error")),
            str(problem.get("detail", response.reason_phrase)),
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            try:
                return self._http.request(method, path, **kwargs)
            except _DROPPED:
                if method != "GET" and IDEMPOTENCY_HEADER not in kwargs.get("headers", {}):
                    raise  # it may have been acted on, and a repeat would act again
                # The pooled connection was closed under us; a fresh one is opened now.
                return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ApiError(0, "unreachable", f"{self._http.base_url}: {error}") from error

    def submit(self, url: str, **options: str) -> dict[str, Any]:
        """POST /v1/transcriptions. Returns the job document.

        One fresh ``Idempotency-Key`` per call, the same on each of its retries: a retry of
        a submission the server had acted on gets that answer and makes nothing twice.
        """
        body = {"url": url, **{key: value for key, value in options.items() if value}}
        headers = {IDEMPOTENCY_HEADER: str(uuid.uuid4())}
        response = self._request("POST", "/v1/transcriptions", json=body, headers=headers)
        result: dict[str, Any] = response.json()
        return result

    def get(self, job_id: str) -> dict[str, Any]:
        """GET /v1/transcriptions/<id>."""
        result: dict[str, Any] = self._request("GET", f"/v1/transcriptions/{job_id}").json()
        return result

    def list_jobs(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """GET /v1/transcriptions: one page of this key's jobs, newest first.

        Args:
            status: only jobs in this status.
            limit: jobs per page (the API's default when omitted).
            cursor: a previous page's ``next_cursor``, asked for with the same ``status``.

        Returns:
            ``{"items": [job, ...], "next_cursor": str | None}``.
        """
        params = {
            name: str(value)
            for name, value in (("status", status), ("limit", limit), ("cursor", cursor))
            if value is not None
        }
        result: dict[str, Any] = self._request("GET", "/v1/transcriptions", params=params).json()
        return result

    def iter_jobs(
        self, *, status: str | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every job of this key, newest first, following ``next_cursor`` page by page."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(status=status, limit=limit, cursor=cursor)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def search(
        self, q: str, *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """GET /v1/search: one page of the segments of this key's transcripts matching ``q``.

        Args:
            q: words (ANDed), ``"a phrase"``, ``prefix*``.
            limit: hits per page (the API's default when omitted).
            cursor: a previous page's ``next_cursor``, asked for with the same ``q``.

        Returns:
            ``{"items": [{"id", "title", "show", "start", "end", "snippet"}, ...],
            "next_cursor": str | None}``; a snippet is HTML-escaped with ``<mark>`` matches.
        """
        params = {"q": q}
        params |= {
            name: str(value)
            for name, value in (("limit", limit), ("cursor", cursor))
            if value is not None
        }
        result: dict[str, Any] = self._request("GET", "/v1/search", params=params).json()
        return result

    def webhook_secret(self) -> str:
        """GET /v1/webhook-secret: the ``whsec_...`` secret verifying this key's webhooks.

        Raises:
            ApiError: 404 ``webhooks_disabled`` when the deployment signs no webhooks.
        """
        secret: str = self._request("GET", "/v1/webhook-secret").json()["secret"]
        return secret

    def delete(self, job_id: str) -> None:
        """DELETE /v1/transcriptions/<id>: give up this key's access to the job.

        Raises:
            ApiError: 404 when the key cannot see it, 409 while it runs and this key is its
                last.
        """
        self._request("DELETE", f"/v1/transcriptions/{job_id}")

    def rename_speakers(self, job_id: str, names: Mapping[str, str | None]) -> dict[str, Any]:
        """PATCH /v1/transcriptions/<id>/speakers: name labels (``{"S1": "Ann"}``) for this key;
        None takes a label's name away. Returns the job document.

        Raises:
            ApiError: 409 before the job succeeded, 422 ``unknown_speaker`` or
                ``invalid_speaker_name``.
        """
        path = f"/v1/transcriptions/{job_id}/speakers"
        result: dict[str, Any] = self._request("PATCH", path, json={"names": dict(names)}).json()
        return result

    def share(self, job_id: str) -> dict[str, Any]:
        """POST /v1/transcriptions/<id>/links: a public link per format of the transcript.

        Returns:
            ``{"id", "token", "urls": {ext: url}, "created_at", "podcast_transcript"}``.
        """
        result: dict[str, Any] = self._request("POST", f"/v1/transcriptions/{job_id}/links").json()
        return result

    def share_links(self, job_id: str) -> list[dict[str, Any]]:
        """GET /v1/transcriptions/<id>/links: this key's live links of the job, oldest first."""
        page = self._request("GET", f"/v1/transcriptions/{job_id}/links").json()
        items: list[dict[str, Any]] = page["items"]
        return items

    def revoke_share_link(self, job_id: str, link_id: str) -> None:
        """DELETE /v1/transcriptions/<id>/links/<link id>: every URL of the link 404s now."""
        self._request("DELETE", f"/v1/transcriptions/{job_id}/links/{link_id}")

    def transcript(self, job_id: str, fmt: str = "txt") -> str:
        """The finished transcript in ``fmt`` (txt, srt, vtt or json)."""
        path = f"/v1/transcriptions/{job_id}/transcript"
        return self._request("GET", path, params={"format": fmt}).text

    def wait(
        self,
        job_id: str,
        *,
        timeout: float,
        interval: float = 1.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job succeeds or fails.

        Raises:
            WaitTimeoutError: still not finished after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if on_update is not None:
                on_update(job)
            if job.get("status") in TERMINAL_STATUSES:
                return job
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"job {job_id} still {job.get('status')} after {timeout:g}s")
            time.sleep(interval)


def _wait_and_retry(response: httpx.Response) -> bool:
    """Whether an answer asks to be sent again after ``Retry-After``: a 429, or a 409 of a
    submission whose first try is still in flight (nothing was done for this one)."""
    if response.status_code == 429:
        return True
    if response.status_code != 409:
        return False
    try:
        problem = response.json()
    except ValueError:
        return False
    return isinstance(problem, dict) and problem.get("code") == _IN_USE


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or an HTTP date).

    Args:
        value: the header, or None when absent.
        now: the current time, for HTTP dates (injectable).

    Returns:
        The wait, at least 0; 1 second when the header is absent or unreadable.
    """
    if value is None:
        return _DEFAULT_RETRY_AFTER
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return _DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, math.ceil((when - (now or datetime.now(UTC))).total_seconds()))
