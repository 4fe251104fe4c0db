"""Soak: polling clients for ten minutes against the real local profile, every part's RSS sampled.

What is broken is time: a leak per request or per timer tick is invisible in a test of
seconds and fatal in a week. ``python -m local_emulators up --with-fixtures`` runs every part
(submit, dispatch, the sweep and its timer, the Pub/Sub emulator, fake-gcs-server, the demo's
Apple stand-in; PostgreSQL and Redis are the shared servers). The demo episode is transcribed
once for real (so there is a transcript to fetch) and two links to episodes the show does not
have fail before launch; then ``CLIENTS`` clients poll, each one request every ``INTERVAL``
seconds (about 27 requests a second in all, modest beside the other drills): a job's status,
the list of jobs, a transcript in one of four formats (or its 409 while not ready), and
``/healthz``, for ``PODSCRIBE_DRILL_SOAK_SECONDS`` (600 by default). The RSS of every part
(its process and all its descendants) is sampled every ``SAMPLE_SECONDS``.

The bound: from the sample at the end of the warm-up (the first 20 % of the run: imports,
pools, caches and the JVM's heap settle) to the last, no part grows by more than
``max(BOUND_MB, BOUND_FRACTION x its warm-up RSS)``. 24 MB is what a leak of about 1.4 KB per
request costs submit over the ~16,000 requests of a 10-minute run (and what 1 KB per second
costs any part), far below what a week would make fatal and well above what the allocator's
fragmentation moves; 10 % leaves the Pub/Sub emulator's JVM (a few hundred MB, whose heap
grows by design until it collects) its ordinary breathing. Zero 5xx and zero transport errors
are asserted too; latencies are recorded, not asserted.

Run apart from the other drills (``nox -s drills`` starts it in a pytest of its own), so it
relies on none of them; develop with ``PODSCRIBE_DRILL_SOAK_SECONDS=60``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_emulators.fixtures import EPISODE
from podscribe.client import PodscribeClient
from tests.drills.figures import Recorder
from tests.drills.load_support import Answer, Call, latency_figures, poll_steadily
from tests.drills.profile_support import Profile, local_profile, wait_for

SECONDS = float(os.environ.get("PODSCRIBE_DRILL_SOAK_SECONDS", "600"))
CLIENTS = 20
INTERVAL = 0.75  # one client's pace: 20 clients, about 27 requests a second
SAMPLE_SECONDS = 10.0
WARM_UP = 0.2
BOUND_MB = 24.0
BOUND_FRACTION = 0.10
FORMATS = ("txt", "srt", "vtt", "json")
MB = 1024 * 1024
UNKNOWN = (EPISODE.episode_id + 1, EPISODE.episode_id + 2)  # the demo show lacks these

pytestmark = pytest.mark.timeout(SECONDS + 900)


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Profile]:
    with local_profile(
        tmp_path,
        # The soak measures memory, not limits: one key and one address poll all along.
        PODSCRIBE_RATE_LIMIT_READS_PER_KEY="1000000",
        PODSCRIBE_RATE_LIMIT_READS_PER_IP="1000000",
        PODSCRIBE_RATE_LIMIT_PER_KEY="1000000",
        PODSCRIBE_RATE_LIMIT_PER_IP="1000000",
        PODSCRIBE_LOG_LEVEL="WARNING",
    ) as started:
        started.up("--with-fixtures")
        yield started


def link(episode_id: int) -> str:
    return f"https://podcasts.apple.com/us/podcast/x/id{EPISODE.collection_id}?i={episode_id}"


def logged_errors(profile: Profile, part: str, last: int = 20) -> list[str]:
    """The last error lines of a part's log (what a 5xx left behind), for the failure message."""
    log = Path(profile.record(part).log).read_text(errors="replace").splitlines()
    return [line for line in log if "error" in line.lower() or "Traceback" in line][-last:]


def growth_bound(warm_bytes: int) -> float:
    """The growth a part with ``warm_bytes`` of RSS after the warm-up may show, in MB."""
    return max(BOUND_MB, BOUND_FRACTION * warm_bytes / MB)


def test_a_soak_of_polling_clients_grows_no_part_beyond_the_bound(
    profile: Profile, figures: Recorder
) -> None:
    row = figures(
        "Soak: polling clients",
        f"{CLIENTS} clients polling status, list, transcripts and /healthz "
        f"(~{CLIENTS / INTERVAL:.0f} requests/s) for {SECONDS:.0f} s against the local "
        f"profile, every part's RSS sampled every {SAMPLE_SECONDS:.0f} s",
        bound=f"zero 5xx; each part's RSS growth after the warm-up ({WARM_UP:.0%} of the run) "
        f"under max({BOUND_MB:.0f} MB, {BOUND_FRACTION:.0%} of its RSS)",
    )
    with PodscribeClient(profile.submit_url, profile.api_key) as client:
        demo = client.submit(EPISODE.apple_url)["id"]
        others = [client.submit(link(episode_id))["id"] for episode_id in UNKNOWN]
        # The job's own process counts in dispatch's RSS while it runs: let it end first.
        outcome = client.wait(demo, timeout=300, interval=1.0)["status"]
        wait_for(
            "the unknown episodes failed",
            lambda: all(s in ("failed", "succeeded") for s in profile.statuses().values()),
            timeout=120,
            interval=1.0,
        )
    job_ids = [demo, *others]

    def next_call(index: int, count: int) -> Call:
        kind = (index + count) % 4
        if kind == 0:
            return Call("GET", f"/v1/transcriptions/{job_ids[count % len(job_ids)]}", tag="status")
        if kind == 1:
            return Call("GET", "/v1/transcriptions?limit=20", tag="list")
        if kind == 2:
            fmt = FORMATS[count % len(FORMATS)]
            return Call("GET", f"/v1/transcriptions/{demo}/transcript?format={fmt}", tag="format")
        return Call("GET", "/healthz", tag="healthz")

    answers: list[Answer] = []

    def poll() -> None:
        answers.extend(
            poll_steadily(
                profile.submit_url,
                next_call,
                clients=CLIENTS,
                seconds=SECONDS,
                interval=INTERVAL,
                headers={"Authorization": f"Bearer {profile.api_key}"},
            )
        )

    samples: list[tuple[float, dict[str, int]]] = []
    began = time.monotonic()
    poller = threading.Thread(target=poll, name="soak-clients", daemon=True)
    poller.start()
    while poller.is_alive():
        samples.append((time.monotonic() - began, profile.rss()))
        poller.join(timeout=SAMPLE_SECONDS)
    elapsed = time.monotonic() - began
    samples.append((elapsed, profile.rss()))

    warm = next(rss for at, rss in samples if at >= WARM_UP * SECONDS)
    start, end = samples[0][1], samples[-1][1]
    growth = {name: (end.get(name, 0) - warm[name]) / MB for name in warm}
    over = {
        name: round(grew, 1) for name, grew in growth.items() if grew >= growth_bound(warm[name])
    }
    codes = Counter(answer.status for answer in answers)
    largest = sorted(warm, key=lambda name: warm[name], reverse=True)[:4]
    row.observed.update(
        {
            "seconds": round(elapsed),
            "requests": len(answers),
            "clients": CLIENTS,
            "5xx": sum(n for code, n in codes.items() if code is not None and code >= 500),
            "transport errors": codes[None],
            **latency_figures(answers),
            "requests/s": round(len(answers) / elapsed, 1),
            "RSS samples": len(samples),
            **{
                f"{name} RSS MB": f"{start[name] / MB:.0f}/{warm[name] / MB:.0f}/"
                f"{end.get(name, 0) / MB:.0f} (+{growth[name]:.1f})"
                for name in largest
            },
            "max growth MB": round(max(growth.values()), 1),
            "max growth part": max(growth, key=lambda name: growth[name]),
            "demo job": outcome,
        }
    )
    row.save()

    assert codes[None] == 0, [a.error for a in answers if a.status is None][:5]
    failures = [(a.call.path, a.status, a.error) for a in answers if (a.status or 0) >= 500]
    assert not failures, (failures[:5], logged_errors(profile, "submit"))
    expected = {200} if outcome == "succeeded" else {200, 409}
    assert set(codes) <= expected, codes
    assert all(rss > 0 for rss in end.values()), f"a part died during the soak: {end}"
    assert not over, f"RSS grew beyond the bound after the warm-up (MB): {over}"
