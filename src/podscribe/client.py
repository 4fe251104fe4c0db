"""A small client of the podscribe HTTP API, used by the CLI and the demo."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

TERMINAL_STATUSES = frozenset({"succeeded", "failed"})


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
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
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
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ApiError(0, "unreachable", f"{self._http.base_url}: {error}") from error
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

    def submit(self, url: str, **options: str) -> dict[str, Any]:
        """POST /v1/transcriptions. Returns the job document."""
        body = {"url": url, **{key: value for key, value in options.items() if value}}
        result: dict[str, Any] = self._request("POST", "/v1/transcriptions", json=body).json()
        return result

    def get(self, job_id: str) -> dict[str, Any]:
        """GET /v1/transcriptions/<id>."""
        result: dict[str, Any] = self._request("GET", f"/v1/transcriptions/{job_id}").json()
        return result

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
