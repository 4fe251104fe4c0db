"""Many HTTP clients at once, over real sockets: the load and soak drills' traffic.

Each client is an ``httpx.AsyncClient`` of its own (its own connection pool, one keep-alive
connection), so the server sees as many connections as there are clients, as it would from
that many callers. Two shapes:

- :func:`run_requests`: a fixed list of requests, taken from one queue by ``clients``
  workers as fast as they are answered (the load drill: how much at once, and how fast).
- :func:`poll_steadily`: each client sends what ``next_call`` gives it, one request every
  ``interval`` seconds, until ``seconds`` have passed (the soak: steady, modest traffic).

A transport error (refused, reset, timed out) is an :class:`Answer` with ``status`` None,
never an exception: the drills count them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.drills.profile_support import percentile

__all__ = ["Answer", "Call", "latency_figures", "poll_steadily", "run_requests"]


@dataclass(frozen=True)
class Call:
    """One request: ``method`` on ``path`` (relative to the base URL), a JSON body or none."""

    method: str
    path: str
    json: Mapping[str, Any] | None = None
    tag: str = ""  # the caller's label: what this request stands for (an episode, a kind)


@dataclass(frozen=True)
class Answer:
    """What came back for one :class:`Call` (``status`` None: a transport error)."""

    call: Call
    status: int | None
    seconds: float
    job_id: str | None = None  # the ``id`` of a JSON answer to a POST
    error: str | None = None


@dataclass
class _Shared:
    headers: dict[str, str]
    timeout: float
    answers: list[Answer] = field(default_factory=list)


async def _send(client: httpx.AsyncClient, call: Call, shared: _Shared) -> Answer:
    started = time.perf_counter()
    try:
        response = await client.request(call.method, call.path, json=call.json)
        await response.aread()
    except httpx.HTTPError as error:
        answer = Answer(call, None, time.perf_counter() - started, error=repr(error))
    else:
        job_id = None
        if call.method == "POST" and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            body = response.json()
            job_id = body.get("id") if isinstance(body, dict) else None
        # A server error's body (a problem document, never a traceback) says what failed.
        failure = response.text[:500] if response.status_code >= 500 else None
        answer = Answer(call, response.status_code, time.perf_counter() - started, job_id, failure)
    shared.answers.append(answer)
    return answer


def _client(base_url: str, shared: _Shared) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers=shared.headers,
        timeout=shared.timeout,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def _drain(base_url: str, queue: asyncio.Queue[Call], shared: _Shared) -> None:
    async with _client(base_url, shared) as client:
        while True:
            try:
                call = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _send(client, call, shared)


def run_requests(
    base_url: str,
    calls: Iterable[Call],
    *,
    clients: int,
    headers: Mapping[str, str],
    timeout: float = 60.0,
) -> list[Answer]:
    """Send every call, ``clients`` at a time, in the order given; the answers as they came."""
    shared = _Shared(dict(headers), timeout)

    async def main() -> None:
        queue: asyncio.Queue[Call] = asyncio.Queue()
        for call in calls:
            queue.put_nowait(call)
        await asyncio.gather(*(_drain(base_url, queue, shared) for _ in range(clients)))

    asyncio.run(main())
    return shared.answers


def poll_steadily(
    base_url: str,
    next_call: Callable[[int, int], Call],
    *,
    clients: int,
    seconds: float,
    interval: float,
    headers: Mapping[str, str],
    timeout: float = 30.0,
) -> list[Answer]:
    """Each client ``i`` sends ``next_call(i, n)`` for n = 0, 1, ... one every ``interval`` s.

    The clients start spread over one interval, so the total rate is about
    ``clients / interval`` requests a second, steady; a slow answer delays only its client.
    """
    shared = _Shared(dict(headers), timeout)

    async def poll(index: int, deadline: float) -> None:
        await asyncio.sleep(interval * index / clients)
        async with _client(base_url, shared) as client:
            count = 0
            while time.monotonic() < deadline:
                began = time.monotonic()
                await _send(client, next_call(index, count), shared)
                count += 1
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))

    async def main() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(poll(index, deadline) for index in range(clients)))

    asyncio.run(main())
    return shared.answers


def latency_figures(answers: list[Answer]) -> dict[str, float]:
    """p50, p99 and max latency of ``answers``, in milliseconds (one decimal)."""
    millis = [answer.seconds * 1000 for answer in answers]
    return {
        "p50 ms": round(percentile(millis, 0.50), 1),
        "p99 ms": round(percentile(millis, 0.99), 1),
        "max ms": round(max(millis, default=0.0), 1),
    }
