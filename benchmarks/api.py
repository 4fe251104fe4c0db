"""The submit API beside a bare functions-framework "hello" target, same machine, same run.

Both run as real ``functions-framework`` processes on 127.0.0.1 (gunicorn, the framework's
default thread count). The submit function has everything behind it that it has in
production, locally: PostgreSQL (a throwaway database), Redis rate limits (a key prefix of
the run's own) and its full request path (auth, limits, validation, problem documents).

Scenarios, each a fixed time after a warm-up, from keep-alive connections on client threads:

* ``hello``: ``GET /`` of a target that returns ``"hello"``: the framework's own floor;
* ``POST dedupe hit``: ``POST /v1/transcriptions`` for an episode that already has a job
  (rate-limit round trip to Redis, insert-or-get in PostgreSQL, the job document);
* ``GET status``: ``GET /v1/transcriptions/<id>`` (rate limit, one indexed read).

Printed: requests/s, p50 and p99 latency, and each scenario's throughput as a fraction of
hello's. The client runs on the same cores as the server, so absolute figures are a floor;
the ratios are the point.

    python -m benchmarks api [-- --seconds 10 --connections 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

HELLO_SOURCE = """
import functions_framework


@functions_framework.http
def hello(request):
    return "hello"
"""


@dataclass(frozen=True)
class Result:
    """One scenario's figures."""

    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def _load(
    url: str,
    name: str,
    request: Callable[[http.client.HTTPConnection], int],
    *,
    seconds: float,
    warmup: float,
    connections: int,
) -> Result:
    """Drive ``request`` from ``connections`` keep-alive connections; time the steady part."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start_measuring = time.perf_counter() + warmup
    stop = start_measuring + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = latencies[index]
        while True:
            began = time.perf_counter()
            if began >= stop:
                break
            status = request(connection)
            ended = time.perf_counter()
            if began >= start_measuring:
                mine.append(ended - began)
                if status >= 300:
                    errors[index] += 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = sorted(value for values in latencies for value in values)
    return Result(
        name=name,
        requests=len(merged),
        errors=sum(errors),
        seconds=seconds,
        p50_ms=_percentile(merged, 0.50) * 1000,
        p99_ms=_percentile(merged, 0.99) * 1000,
    )


def _call(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    response.read()
    return int(response.status)


def _print(results: list[Result], baseline: Result) -> None:
    print(
        f"{'scenario':<18} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'vs hello':>9} {'errors':>7}"
    )
    for result in results:
        ratio = result.per_second / baseline.per_second
        print(
            f"{result.name:<18} {result.per_second:>9.0f} {result.p50_ms:>9.2f} "
            f"{result.p99_ms:>9.2f} {ratio:>9.2f} {result.errors:>7}"
        )


def main(argv: list[str]) -> int:
    """Run the benchmark; returns 0, or 1 when a scenario saw errors."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks api")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time first")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    args = parser.parse_args(argv)

    from podscribe.db import create_db_engine, migrate
    from podscribe.settings import load_settings
    from tests.integration.submit_support import (
        API_KEY,
        EPISODE_URL,
        SUBMIT_SOURCE,
        functions_framework_process,
        submit_environment,
    )
    from tests.services import REDIS_URL, throwaway_database

    load = {"seconds": args.seconds, "warmup": args.warmup, "connections": args.connections}
    auth = {"Authorization": f"Bearer {API_KEY}"}
    post_headers = {**auth, "Content-Type": "application/json"}
    post_body = json.dumps({"url": EPISODE_URL}).encode()
    print(
        f"machine: {os.cpu_count()} CPU(s); {args.connections} keep-alive connections; "
        f"{args.warmup:g}s warm-up + {args.seconds:g}s measured per scenario"
    )
    with tempfile.TemporaryDirectory() as scratch, throwaway_database() as database_url:
        engine = create_db_engine(load_settings(database_url=database_url, env="test"))
        migrate(engine)
        engine.dispose()
        hello_source = Path(scratch) / "hello" / "main.py"
        hello_source.parent.mkdir()
        hello_source.write_text(HELLO_SOURCE)
        env = submit_environment(
            database_url=database_url,
            project="podscribe-bench",
            topic="jobs-bench",
            pubsub_host="127.0.0.1:1",  # the one creation's wake-up fails fast; not measured
            PODSCRIBE_REDIS_URL=REDIS_URL,
            PODSCRIBE_RATE_LIMIT_PREFIX=f"bench:{uuid.uuid4().hex[:12]}:",
            PODSCRIBE_RATE_LIMIT_PER_KEY="100000000",
            PODSCRIBE_RATE_LIMIT_PER_IP="100000000",
            PODSCRIBE_PUBLISH_TIMEOUT_SECONDS="0.5",
            PODSCRIBE_DB_POOL_SIZE="10",
        )
        logs = Path(scratch)
        with functions_framework_process(
            hello_source, "hello", {}, logs / "hello.log", ready_path="/"
        ) as hello:
            baseline = _load(hello.url, "hello", lambda c: _call(c, "GET", "/"), **load)
        with functions_framework_process(
            SUBMIT_SOURCE, "submit", env, logs / "submit.log"
        ) as submit:
            host, port = submit.url.removeprefix("http://").split(":")
            first = http.client.HTTPConnection(host, int(port), timeout=30)
            first.request("POST", "/v1/transcriptions", body=post_body, headers=post_headers)
            created = first.getresponse()
            job_id = json.loads(created.read())["id"]
            first.close()
            results = [
                baseline,
                _load(
                    submit.url,
                    "POST dedupe hit",
                    lambda c: _call(c, "POST", "/v1/transcriptions", post_body, post_headers),
                    **load,
                ),
                _load(
                    submit.url,
                    "GET status",
                    lambda c: _call(c, "GET", f"/v1/transcriptions/{job_id}", None, auth),
                    **load,
                ),
            ]
    _print(results, baseline)
    p50s = statistics.fmean(result.p50_ms for result in results[1:])
    print(f"submit mean p50 over both API scenarios: {p50s:.2f} ms")
    return 1 if any(result.errors for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
