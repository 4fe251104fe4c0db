"""The client and CLI against real 127.0.0.1 servers: ``Retry-After``, dropped keep-alives and
the ``Idempotency-Key`` that makes a submit safe to send again.

The server is a few lines of socket code so that it can do what gunicorn does to a polling
client: answer a request, keep the connection, and close it (without a word) just as the next
request arrives on it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from podscribe.cli import main
from podscribe.client import ApiError, PodscribeClient, retry_after_seconds
from podscribe.settings import get_settings

JOB = {"id": "00000000-0000-4000-8000-000000000001", "status": "queued"}
Reply = Callable[[int, int], bytes | None]
"""(request number overall, request number on its connection) -> raw answer, None: close."""


@dataclass
class Server:
    url: str
    seen: list[tuple[float, str]] = field(default_factory=list)  # (time, request line)
    keys: list[str | None] = field(default_factory=list)  # each request's Idempotency-Key
    connections: int = 0


def _answer(status: str, body: Mapping[str, object], *extra: str) -> bytes:
    payload = json.dumps(body).encode()
    problem = status.startswith(("409", "429"))
    content_type = "application/problem+json" if problem else "application/json"
    head = [
        f"HTTP/1.1 {status}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(payload)}",
    ]
    return ("\r\n".join([*head, *extra]) + "\r\n\r\n").encode() + payload


def _read_request(conn: socket.socket) -> tuple[str, str | None] | None:
    """The request line and the Idempotency-Key of the next request, None once closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(rest) < length:
        rest += conn.recv(65536)
    lines = head.decode().split("\r\n")
    key = next(
        (
            line.split(":", 1)[1].strip()
            for line in lines
            if line.lower().startswith("idempotency-key:")
        ),
        None,
    )
    return lines[0], key


@pytest.fixture
def serve() -> Iterator[Callable[[Reply], Server]]:
    listeners: list[socket.socket] = []

    def start(reply: Reply) -> Server:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)
        server = Server(f"http://127.0.0.1:{listener.getsockname()[1]}")

        def handle(conn: socket.socket) -> None:
            with conn:
                on_connection = 0
                while (request := _read_request(conn)) is not None:
                    line, key = request
                    server.seen.append((time.monotonic(), line))
                    server.keys.append(key)
                    answer = reply(len(server.seen), on_connection)
                    on_connection += 1
                    if answer is None:
                        return  # closed without an answer or a "Connection: close"
                    conn.sendall(answer)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                server.connections += 1
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return server

    yield start
    for listener in listeners:
        listener.close()


def _limited_once(retry_after: str) -> Reply:
    def reply(number: int, _: int) -> bytes:
        if number == 1:
            problem = {"status": 429, "code": "rate_limited", "title": "t", "detail": "wait"}
            return _answer("429 Too Many Requests", problem, f"Retry-After: {retry_after}")
        return _answer("200 OK", JOB)

    return reply


def test_a_429_is_waited_out_as_retry_after_says(serve: Callable[[Reply], Server]) -> None:
    server = serve(_limited_once("1"))
    with PodscribeClient(server.url, "k") as client:
        started = time.monotonic()
        assert client.get(JOB["id"]) == JOB
        elapsed = time.monotonic() - started
    assert len(server.seen) == 2
    gap = server.seen[1][0] - server.seen[0][0]
    assert 0.95 <= gap < 2.0  # waited the second it was told to, and not much more
    assert elapsed < 3.0


def test_a_wait_longer_than_the_bound_is_not_slept(serve: Callable[[Reply], Server]) -> None:
    server = serve(_limited_once("3600"))
    with PodscribeClient(server.url, "k", max_retry_wait=60) as client:
        started = time.monotonic()
        with pytest.raises(ApiError) as raised:
            client.submit("https://podcasts.apple.com/us/podcast/x/id1?i=2")
    assert time.monotonic() - started < 1.0
    assert (raised.value.status, raised.value.code) == (429, "rate_limited")
    assert len(server.seen) == 1


def test_the_cli_honours_retry_after(
    serve: Callable[[Reply], Server],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = serve(_limited_once("1"))
    monkeypatch.setenv("PODSCRIBE_API_URL", server.url)
    monkeypatch.setenv("PODSCRIBE_API_KEY", "k")
    get_settings.cache_clear()
    assert main(["status", JOB["id"]]) == 0
    assert json.loads(capsys.readouterr().out) == JOB
    assert len(server.seen) == 2 and server.seen[1][0] - server.seen[0][0] >= 0.95


def _closes_after_first_answer(number: int, on_connection: int) -> bytes | None:
    # Each connection gets one answer; the next request on it finds the server gone.
    return _answer("200 OK", JOB) if on_connection == 0 else None


def test_a_get_on_a_dropped_keep_alive_is_sent_once_more(
    serve: Callable[[Reply], Server],
) -> None:
    server = serve(_closes_after_first_answer)
    with PodscribeClient(server.url, "k") as client:
        for _ in range(3):  # a poll loop: every request after the first reuses a connection
            assert client.get(JOB["id"]) == JOB
    # Requests 2 and 3 each met a closed connection and were retried on a fresh one.
    assert len(server.seen) == 5
    assert server.connections == 3


def test_a_delete_on_a_dropped_connection_is_not_repeated(
    serve: Callable[[Reply], Server],
) -> None:
    server = serve(_closes_after_first_answer)
    with PodscribeClient(server.url, "k") as client:
        client.get(JOB["id"])
        with pytest.raises(ApiError) as raised:
            client.delete(JOB["id"])
    assert raised.value.status == 0
    assert [line.split()[0] for _, line in server.seen] == ["GET", "DELETE"]


def test_a_submit_on_a_dropped_connection_is_sent_again_with_its_key(
    serve: Callable[[Reply], Server],
) -> None:
    server = serve(_closes_after_first_answer)
    with PodscribeClient(server.url, "k") as client:
        client.get(JOB["id"])
        assert client.submit("https://podcasts.apple.com/us/podcast/x/id1?i=2") == JOB
        client.submit("https://podcasts.apple.com/us/podcast/x/id1?i=3")
    methods = [line.split()[0] for _, line in server.seen]
    assert methods == ["GET", "POST", "POST", "POST", "POST"]
    _, dropped, resent, dropped_next, resent_next = server.keys
    # The server may have acted on the dropped one: the resend carries its key, so it gets
    # that answer instead of acting twice. Each submit call has a key of its own.
    assert dropped and uuid.UUID(dropped) and dropped == resent
    assert dropped_next == resent_next and dropped_next != dropped


def test_every_retry_of_a_submit_carries_its_key_and_in_flight_is_waited_out(
    serve: Callable[[Reply], Server],
) -> None:
    def reply(number: int, _: int) -> bytes:
        if number == 1:
            problem = {"status": 429, "code": "rate_limited", "title": "t", "detail": "wait"}
            return _answer("429 Too Many Requests", problem, "Retry-After: 0")
        if number == 2:
            problem = {"status": 409, "code": "idempotency_key_in_use", "title": "t", "detail": "w"}
            return _answer("409 Conflict", problem, "Retry-After: 0")
        return _answer("202 Accepted", JOB)

    server = serve(reply)
    with PodscribeClient(server.url, "k") as client:
        assert client.submit("https://podcasts.apple.com/us/podcast/x/id1?i=2") == JOB
    assert len(server.keys) == 3 and len(set(server.keys)) == 1 and server.keys[0]


def test_another_409_is_not_retried(serve: Callable[[Reply], Server]) -> None:
    def reply(number: int, _: int) -> bytes:
        problem = {"status": 409, "code": "job_active", "title": "t", "detail": "running"}
        return _answer("409 Conflict", problem, "Retry-After: 0")

    server = serve(reply)
    with PodscribeClient(server.url, "k") as client, pytest.raises(ApiError) as raised:
        client.delete(JOB["id"])
    assert (raised.value.status, raised.value.code) == (409, "job_active")
    assert len(server.seen) == 1 and server.keys == [None]


def test_retry_after_reads_seconds_and_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Mon, 01 Jan 2024 12:00:30 GMT", now=now) == 30
    assert retry_after_seconds("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0
    assert retry_after_seconds(None) == 1
    assert retry_after_seconds("soon") == 1
