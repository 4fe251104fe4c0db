"""``POST /v1/csp-reports`` against real Redis: both formats stored normalised in a capped
list, no key needed, its own rate limit, and a flood of 100,000 reports that leaves the list at
its cap and the process's memory flat, with Redis up (a real submit process) and down (the
in-memory store at its cap)."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from werkzeug.test import Client
from werkzeug.wrappers import Request

from podscribe.api.app import SubmitApi
from podscribe.api.csp_reports import CSP_REPORT_TYPE, MAX_ENTRY_CHARS, REPORTS_TYPE
from podscribe.settings import Settings, load_settings
from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import (
    SUBMIT_SOURCE,
    RunningFunction,
    functions_framework_process,
    limited_submit_environment,
    submit_test_client,
)
from tests.services import REDIS_URL, free_port

PATH = "/v1/csp-reports"
CAP = 1000
FLOOD_REPORTS = 100_000
PER_BATCH = 20  # a Reporting API body carries several reports
RSS_GROWTH_BOUND = 20 * 2**20
WARM_UP = 1000
LEGACY = json.dumps(
    {
        "csp-report": {
            "document-uri": "http://127.0.0.1/reader?key=abc#t=1",
            "violated-directive": "script-src-elem",
            "blocked-uri": "https://evil.example/x.js?q=1",
        }
    }
).encode()


def batch(index: int, size: int = PER_BATCH) -> bytes:
    return json.dumps(
        [
            {
                "type": "csp-violation",
                "url": f"http://127.0.0.1/library?page={index}",
                "body": {
                    "documentURL": f"http://127.0.0.1/library?page={index}",
                    "effectiveDirective": "img-src",
                    "blockedURL": f"https://tracker{n}.example/p.gif",
                },
            }
            for n in range(size)
        ]
    ).encode()


def environment(database_url: str, **overrides: str) -> dict[str, str]:
    return limited_submit_environment(
        database_url=database_url,
        project=TEST_PROJECT,
        topic="unused",
        PODSCRIBE_CSP_REPORTS_MAX=str(CAP),
        **overrides,
    )


@pytest.fixture
def csp_client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    env = environment(database_url, PODSCRIBE_RATE_LIMIT_CSP_REPORTS_PER_IP="5")
    client = submit_test_client(monkeypatch, **env)
    key = f"{env['PODSCRIBE_RATE_LIMIT_PREFIX']}csp-reports"
    yield client, key
    redis.Redis.from_url(REDIS_URL).delete(key)


def test_both_formats_are_stored_normalised_without_a_key(csp_client: tuple[Any, str]) -> None:
    client, key = csp_client
    legacy = client.post(PATH, data=LEGACY, content_type=CSP_REPORT_TYPE)
    assert legacy.status_code == 204, legacy.get_data(as_text=True)
    assert legacy.get_data() == b""
    reporting = client.post(PATH, data=batch(7, size=2), content_type=REPORTS_TYPE)
    assert reporting.status_code == 204
    assert reporting.headers["RateLimit-Limit"] == "5"
    stored = [json.loads(item) for item in redis.Redis.from_url(REDIS_URL).lrange(key, 0, -1)]
    assert [
        (report["document_uri"], report["violated_directive"], report["blocked_uri"])
        for report in stored
    ] == [
        ("http://127.0.0.1/library", "img-src", "https://tracker1.example"),
        ("http://127.0.0.1/library", "img-src", "https://tracker0.example"),
        ("http://127.0.0.1/reader", "script-src-elem", "https://evil.example"),
    ]
    assert all(report["time"].endswith("+00:00") for report in stored)


def test_what_is_refused_and_the_budget_of_its_own(csp_client: tuple[Any, str]) -> None:
    client, _ = csp_client
    refused = [
        client.post(PATH, data=LEGACY, content_type="application/json"),
        client.post(PATH, data=b"x" * 9000, content_type=CSP_REPORT_TYPE),
        client.post(PATH, data=b"[1]", content_type=REPORTS_TYPE),
        client.get(PATH),
    ]
    assert [response.status_code for response in refused] == [415, 413, 400, 405]
    assert [response.get_json()["code"] for response in refused[:3]] == [
        "unsupported_media_type",
        "payload_too_large",
        "invalid_request",
    ]
    # Three of the five admitted above (the 405 is refused before admission); two more, then 429.
    statuses = [
        client.post(PATH, data=LEGACY, content_type=CSP_REPORT_TYPE).status_code for _ in range(4)
    ]
    assert statuses == [204, 204, 429, 429]
    limited = client.post(PATH, data=LEGACY, content_type=CSP_REPORT_TYPE)
    assert limited.get_json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # The API's own budgets are untouched by reports.
    assert client.get("/v1/transcriptions").status_code == 401


# --- the flood ----------------------------------------------------------------------------


class Flood:
    """Threads with keep-alive connections sending bodies from one shared iterator."""

    def __init__(self, url: str, threads: int = 8) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.threads = threads
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()

    def send(self, bodies: Iterator[tuple[bytes, str]]) -> float:
        started = time.perf_counter()
        workers = [threading.Thread(target=self._work, args=(bodies,)) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return time.perf_counter() - started

    def _work(self, bodies: Iterator[tuple[bytes, str]]) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        seen: Counter[int] = Counter()
        while True:
            with self._lock:
                item = next(bodies, None)
            if item is None:
                break
            seen[self._post(connection, *item)] += 1
        connection.close()
        with self._lock:
            self.statuses.update(seen)

    def _post(self, connection: http.client.HTTPConnection, body: bytes, media: str) -> int:
        for attempt in range(2):
            try:
                connection.request("POST", PATH, body=body, headers={"Content-Type": media})
                response = connection.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closes a keep-alive connection left idle for 2 s: open another.
                connection.close()
                if attempt:
                    raise
            else:
                return response.status
        raise AssertionError("unreachable")


def bodies(requests: int) -> Iterator[tuple[bytes, str]]:
    """``requests`` bodies: every tenth a report-uri report, the rest Reporting API batches."""
    for index in range(requests):
        yield (LEGACY, CSP_REPORT_TYPE) if index % 10 == 0 else (batch(index), REPORTS_TYPE)


def reports_in(requests: int) -> int:
    singles = (requests + 9) // 10  # indices 0, 10, 20, ...
    return singles + (requests - singles) * PER_BATCH


def rss(pid: int) -> int:
    """Resident memory of the function's process tree (gunicorn's worker is a child)."""
    root = psutil.Process(pid)
    return sum(process.memory_info().rss for process in [root, *root.children(recursive=True)])


def sample_while(action: Callable[[], float], probe: Callable[[], int]) -> tuple[float, int]:
    """Run ``action``; meanwhile take ``probe`` every few milliseconds; (its result, max seen)."""
    done = threading.Event()
    highest = 0

    def sample() -> None:
        nonlocal highest
        while not done.is_set():
            highest = max(highest, probe())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return result, max(highest, probe())


def requests_for(reports: int) -> int:
    """The fewest requests of :func:`bodies` that carry ``reports`` reports."""
    return next(n for n in itertools.count(reports // PER_BATCH) if reports_in(n) >= reports)


def test_a_flood_of_reports_keeps_the_list_at_its_cap_and_memory_flat(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url, PODSCRIBE_RATE_LIMIT_CSP_REPORTS_PER_IP="10000000")
    key = f"{env['PODSCRIBE_RATE_LIMIT_PREFIX']}csp-reports"
    store = redis.Redis.from_url(REDIS_URL)
    log_path = tmp_path / "submit.log"
    try:
        with functions_framework_process(SUBMIT_SOURCE, "submit", env, log_path) as running:
            flood = Flood(running.url)
            flood.send(bodies(WARM_UP))  # every code path, pool and buffer in use
            before = rss(running.started.pid)
            requests = requests_for(FLOOD_REPORTS)
            seconds, longest = sample_while(
                lambda: flood.send(bodies(requests)), lambda: int(store.llen(key))
            )
            after = rss(running.started.pid)
            stored = [
                item.decode() if isinstance(item, bytes) else item
                for item in store.lrange(key, 0, -1)
            ]
            print(
                f"\nflood: {reports_in(requests)} reports in {requests} requests, "
                f"{seconds:.1f}s ({requests / seconds:.0f} req/s); list max {longest} (cap {CAP}); "
                f"RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB; {dict(flood.statuses)}"
            )
            assert reports_in(requests) >= FLOOD_REPORTS
            assert set(flood.statuses) == {204}
            assert flood.statuses[204] == WARM_UP + requests
            assert longest <= CAP
            assert len(stored) == CAP
            assert all(len(item) <= MAX_ENTRY_CHARS for item in stored)
            assert after - before < RSS_GROWTH_BOUND
            assert_a_logged_report(running)
    finally:
        store.delete(key)


def assert_a_logged_report(running: RunningFunction) -> None:
    for line in running.started.log_path.read_text(encoding="utf-8").splitlines():
        if "content security policy violation" in line:
            entry = json.loads(line)
            assert entry["severity"] == "WARNING"
            assert 1 <= len(entry["csp_reports"]) <= min(entry["report_count"], 10)
            for report in entry["csp_reports"]:
                assert set(report) == {"document_uri", "violated_directive", "blocked_uri", "time"}
                assert "?" not in report["document_uri"]
            return
    raise AssertionError("no report was logged")


def test_the_default_budget_refuses_a_flood_from_one_address(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url)
    limit = Settings.model_fields["rate_limit_csp_reports_per_ip"].default
    with functions_framework_process(SUBMIT_SOURCE, "submit", env, tmp_path / "s.log") as running:
        flood = Flood(running.url, threads=4)
        flood.send(bodies(limit * 5))
    print(f"\ndefault budget {limit}: {dict(flood.statuses)}")
    assert flood.statuses == {204: limit, 429: limit * 4}


def test_with_redis_down_the_memory_store_stays_at_its_cap(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        env="test",
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        rate_limit_prefix=f"test:{uuid.uuid4().hex[:12]}:",
        rate_limit_csp_reports_per_ip=10_000_000,
        csp_reports_max=CAP,
        log_level="ERROR",
    )
    api = SubmitApi(settings)
    client = Client(Request.application(api.__call__))
    requests = requests_for(FLOOD_REPORTS)
    process = psutil.Process()
    statuses: Counter[int] = Counter()
    highest = 0
    before = 0
    started = time.perf_counter()
    for index, (body, media) in enumerate(bodies(requests)):
        if index == WARM_UP:
            before = process.memory_info().rss
        statuses[client.post(PATH, data=body, content_type=media).status_code] += 1
        highest = max(highest, len(api.csp_reports.memory))
    after = process.memory_info().rss
    print(
        f"\nRedis down: {reports_in(requests)} reports in {time.perf_counter() - started:.1f}s; "
        f"memory store max {highest} (cap {CAP}); RSS {before / 2**20:.1f} -> "
        f"{after / 2**20:.1f} MiB; {dict(statuses)}"
    )
    assert statuses == {204: requests}
    assert api.limiter.using_backstop
    assert highest == len(api.csp_reports.memory) == CAP
    assert after - before < RSS_GROWTH_BOUND
