"""Hostile requests against a real submit process, and the figures they leave.

The submit function runs as functions-framework under gunicorn (the command line of the local
profile and Cloud Functions) on real PostgreSQL, Redis and the Pub/Sub emulator. Requests go
over real sockets: httpx where it can say what is sent (10 MB bodies, chunked bodies), raw
sockets where a client library would refuse to (64 KB headers, raw bytes in the request
line). Where our code answers, the answer must be ``application/problem+json``; where
gunicorn refuses first (oversized or too many headers), any 4xx does, and the process must
still answer ``/healthz`` afterwards.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from tests.conftest import TEST_PROJECT
from tests.drills.figures import Recorder
from tests.integration.submit_support import (
    API_KEY,
    EPISODE_URL,
    SUBMIT_SOURCE,
    RunningFunction,
    create_topic_and_subscription,
    functions_framework_process,
    limited_submit_environment,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
JSON = {**AUTH, "Content-Type": "application/json"}
PROBLEM = "application/problem+json"
TEN_MB = 10 * 1024 * 1024
RSS_BOUND_MB = 50
FLOOD_REQUESTS = 500
FLOOD_THREADS = 10
FLOOD_HEAVY = 20
TRICKLES = 3


@dataclass(frozen=True)
class Answer:
    """A status, the content type and the body of one answer (raw or from httpx)."""

    status: int
    content_type: str
    body: bytes

    def problem_code(self) -> str | None:
        if self.content_type != PROBLEM:
            return None
        return str(json.loads(self.body)["code"])


@contextmanager
def submit_with_emulators(
    tmp_path: Path, database_url: str, pubsub_host: str
) -> Iterator[RunningFunction]:
    """The submit function as a real process, with limits the flood cannot reach."""
    topic, _ = create_topic_and_subscription(TEST_PROJECT)
    env = limited_submit_environment(
        rate_limit="1000000",
        database_url=database_url,
        project=TEST_PROJECT,
        topic=topic,
        pubsub_host=pubsub_host,
        PODSCRIBE_RATE_LIMIT_CSP_REPORTS_PER_IP="1000000",
    )
    with functions_framework_process(
        SUBMIT_SOURCE, "submit", env, tmp_path / "submit.log", threads=8
    ) as running:
        yield running


def group_rss_mb(pid: int) -> float:
    """The resident memory of the process and its children (gunicorn's master and worker)."""
    process = psutil.Process(pid)
    total: int = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    return total / 1e6


def raw_request(url: str, head: bytes, body: bytes = b"", *, timeout: float = 60) -> Answer:
    """Send ``head`` (request line and headers, no blank line) and ``body``; read the answer.

    The connection is closed by the server or after the answer's ``Content-Length``; a reset
    while sending (the server answered before reading all of it) still reads the answer.
    """
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
        with suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        header_block, _, rest = received.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        length = int(headers.get("content-length", "-1"))
        while length < 0 or len(rest) < length:
            try:
                chunk = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            rest += chunk
    content_type = headers.get("content-type", "").split(";")[0]
    return Answer(status, content_type, rest[:length] if length >= 0 else rest)


def from_httpx(response: httpx.Response) -> Answer:
    content_type = response.headers.get("content-type", "").split(";")[0]
    return Answer(response.status_code, content_type, response.content)


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def chunks_of(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    yield b'{"url": "'
    sent = 0
    while sent < total:
        yield b"y" * size
        sent += size
    yield b'"}'


Case = Callable[[str, httpx.Client], Answer]
"""One hostile request: (base URL, client) -> the answer."""


def _post(body: Callable[[], bytes | Iterator[bytes]], path: str = "/v1/transcriptions") -> Case:
    """A POST of a body made afresh for each request (a chunked body is a generator)."""

    def send(url: str, http: httpx.Client) -> Answer:
        return from_httpx(http.post(path, content=body(), headers=JSON))

    return send


def _raw(head: bytes, body: bytes = b"") -> Case:
    def send(url: str, http: httpx.Client) -> Answer:
        host = urlsplit(url).netloc.encode()
        return raw_request(url, head.replace(b"{host}", host), body)

    return send


def _json_head(path: bytes, length: int) -> bytes:
    return (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
        + API_KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(length).encode()
    )


def _raw_json(body: bytes, path: bytes = b"/v1/transcriptions") -> Case:
    return _raw(_json_head(path, len(body)), body)


def _get(path: bytes, *extra: bytes) -> Case:
    auth = b"Authorization: Bearer " + API_KEY.encode()
    return _raw(b"\r\n".join([b"GET " + path + b" HTTP/1.1", b"Host: {host}", auth, *extra]))


_BIG_HEADER = b"X-Big: " + b"b" * 65536
_MANY_HEADERS = [b"X-Many-%d: " % i + b"m" * 1024 for i in range(200)]

HOSTILE: dict[str, tuple[Case, set[int], str | None]] = {
    # name: (request, the statuses allowed, the problem code; None: gunicorn's own answer)
    "10 MB body, Content-Length": (
        _post(lambda: b'{"url": "' + b"x" * TEN_MB + b'"}'),
        {413},
        "payload_too_large",
    ),
    "10 MB body, chunked": (_post(lambda: chunks_of(TEN_MB)), {413}, "payload_too_large"),
    "64 KB header": (_get(b"/v1/transcriptions", _BIG_HEADER), {400, 431}, None),
    "200 headers of 1 KB": (_get(b"/v1/transcriptions", *_MANY_HEADERS), {400, 431}, None),
    "invalid UTF-8 body": (_raw_json(b'{"url": "\xff\xfe\xc3("}'), {400}, "invalid_request"),
    "invalid UTF-8 body, raw bytes only": (_raw_json(b"\xff" * 64), {400}, "invalid_request"),
    # gunicorn refuses a request line that is not ASCII itself.
    "invalid UTF-8 path, raw": (_get(b"/v1/transcriptions/\xff\xfe\xc3("), {400}, None),
    "invalid UTF-8 path, escaped": (_get(b"/v1/transcriptions/%FF%FE"), {404}, "job_not_found"),
    "invalid UTF-8 query, raw": (_get(b"/v1/transcriptions?status=\xff\xfe"), {400}, None),
    "invalid UTF-8 query, escaped": (
        _get(b"/v1/transcriptions?status=%FF&cursor=%C3%28"),
        {400},
        "invalid_request",
    ),
    "64 KB query": (_get(b"/v1/transcriptions?cursor=" + b"c" * 65536), {400}, "invalid_request"),
    "[[[...]]] 100,000 deep": (_raw_json(nested_list(100_000)), {413}, "payload_too_large"),
    '{"a":{"a":...}} 100,000 deep': (
        _raw_json(nested_object(100_000)),
        {413},
        "payload_too_large",
    ),
    # Within the 16 KB body cap, so the parser meets them.
    "[[[...]]] 8,000 deep": (_raw_json(nested_list(8_000)), {400}, "invalid_request"),
    '{"a":{"a":...}} 2,700 deep': (_raw_json(nested_object(2_700)), {400}, "invalid_request"),
    **{
        f'{{"url": [[...]]}} {depth} deep': (
            _raw_json(b'{"url": ' + nested_list(depth) + b"}"),
            {400, 422},
            None,
        )
        for depth in (500, 900, 950, 980, 995, 1_000, 1_100, 5_000)
    },
    "CSP report 4,000 deep": (
        _raw(
            b"POST /v1/csp-reports HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
            b"application/csp-report\r\nContent-Length: 8000",
            nested_list(4_000),
        ),
        {400},
        "invalid_request",
    ),
}
"""Each hostile request, what may answer it, and the problem code when our code answers."""


def judge(name: str, answer: Answer, statuses: set[int], code: str | None) -> list[str]:
    """What is wrong with an answer (nothing: an empty list)."""
    wrong = []
    if answer.status not in statuses:
        wrong.append(f"{name}: {answer.status} not in {sorted(statuses)}: {answer.body[:300]!r}")
    if code is not None and answer.problem_code() != code:
        wrong.append(f"{name}: not the problem {code}: {answer.content_type} {answer.body[:300]!r}")
    if answer.content_type == PROBLEM:
        json.loads(answer.body)  # a problem answer is well-formed JSON
    if b"Traceback" in answer.body:
        wrong.append(f"{name}: a traceback in the answer")
    return wrong


def healthy(http: httpx.Client) -> bool:
    return http.get("/healthz").status_code == 200


def trickle(url: str, seconds: float) -> Answer:
    """A 35-byte submission sent a few bytes a second: the answer once the last byte is in."""
    body = json.dumps({"url": "https://example.com/id1?i=2"}).encode()
    parts = urlsplit(url)
    head = _json_head(b"/v1/transcriptions", len(body)).replace(b"{host}", parts.netloc.encode())
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as conn:
        conn.sendall(head + b"\r\nConnection: close\r\n\r\n")
        step = seconds / len(body)
        for index in range(0, len(body), 3):
            conn.sendall(body[index : index + 3])
            time.sleep(step * 3)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    status = int(received.split(b" ", 2)[1])
    header_block, _, rest = received.partition(b"\r\n\r\n")
    content_type = PROBLEM if PROBLEM.encode() in header_block else ""
    return Answer(status, content_type, rest)


def hostile_run(running: RunningFunction, figures: Recorder) -> None:
    """Every hostile request once, trickles beside other clients, then a flood of them."""
    row = figures(
        "Hostile input against a real submit process",
        "10 MB bodies (declared and chunked), a 64 KB header, 200 headers of 1 KB, invalid "
        "UTF-8 in body, path and query, nesting 100,000 deep and just under the body cap, "
        f"{TRICKLES} trickled bodies, then {FLOOD_REQUESTS} of them ({FLOOD_HEAVY} of 10 MB) "
        f"from {FLOOD_THREADS} threads",
        bound=f"every answer a 4xx (problem+json where ours), zero 5xx, RSS growth < "
        f"{RSS_BOUND_MB} MB, /healthz answering throughout",
    )
    pid = running.started.pid
    statuses: Counter[int] = Counter()
    wrong: list[str] = []
    with httpx.Client(base_url=running.url, timeout=120) as http:
        for _ in range(20):  # warm: imports, pools and caches in place before the baseline
            http.post("/v1/transcriptions", json={"url": EPISODE_URL}, headers=AUTH)
            http.get("/v1/transcriptions", headers=AUTH)
        baseline = group_rss_mb(pid)
        started = time.monotonic()
        for name, (send, allowed, code) in HOSTILE.items():
            answer = send(running.url, http)
            statuses[answer.status] += 1
            wrong += judge(name, answer, allowed, code)
            if not healthy(http):
                wrong.append(f"{name}: /healthz stopped answering")
        after_big = group_rss_mb(pid)
        single_seconds = time.monotonic() - started

        with ThreadPoolExecutor(max_workers=TRICKLES) as pool:
            trickles = [pool.submit(trickle, running.url, 20) for _ in range(TRICKLES)]
            answered_meanwhile = 0
            while not all(future.done() for future in trickles):
                answered_meanwhile += healthy(http)
                time.sleep(0.5)
            for future in trickles:
                answer = future.result()
                statuses[answer.status] += 1
                wrong += judge("trickle", answer, {422}, "not_apple_podcasts")

        heavy = [name for name in HOSTILE if name.startswith("10 MB")]
        light = [name for name in HOSTILE if name not in heavy]

        def flood(index: int) -> tuple[str, Answer]:
            # The 10 MB bodies are FLOOD_HEAVY of the flood (the bytes, not the count, cost).
            names = heavy if index < FLOOD_HEAVY else light
            name = names[index % len(names)]
            send = HOSTILE[name][0]
            with httpx.Client(base_url=running.url, timeout=120) as own:
                return name, send(running.url, own)

        flood_started = time.monotonic()
        with ThreadPoolExecutor(max_workers=FLOOD_THREADS) as pool:
            for name, answer in pool.map(flood, range(FLOOD_REQUESTS)):
                statuses[answer.status] += 1
                _, allowed, code = HOSTILE[name]
                wrong += judge(f"flood {name}", answer, allowed, code)
        flood_seconds = time.monotonic() - flood_started
        after_flood = group_rss_mb(pid)
        still_healthy = healthy(http)

    row.observed.update(
        {
            "requests": sum(statuses.values()),
            "4xx": sum(n for status, n in statuses.items() if 400 <= status < 500),
            "5xx": sum(n for status, n in statuses.items() if status >= 500),
            "statuses": dict(sorted(statuses.items())),
            "wrong answers": len(wrong),
            "RSS baseline MB": round(baseline, 1),
            "RSS growth after single requests MB": round(after_big - baseline, 1),
            "RSS growth after flood MB": round(after_flood - baseline, 1),
            "/healthz answers during trickles": answered_meanwhile,
            "single requests s": round(single_seconds, 1),
            "flood s": round(flood_seconds, 1),
        }
    )
    row.save()
    assert wrong == [], "\n".join(wrong[:20])
    assert all(400 <= status < 500 for status in statuses), statuses
    assert after_big - baseline < RSS_BOUND_MB and after_flood - baseline < RSS_BOUND_MB
    assert answered_meanwhile >= 1 and still_healthy
