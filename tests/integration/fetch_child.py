"""Run one SafeFetcher call in a child process and report its outcome, time and memory.

A compression bomb is judged by what it does to the process that fetches it, so the fetch
runs here, alone, and prints one JSON line: the error code (or ``ok``), the seconds the call
took, the resident set size just before it and the process's peak RSS (``VmHWM``). A
watchdog thread ends the process as soon as RSS passes ``rss_limit_mb`` (an address-space
limit backs it up), so a fetcher that does expand a bomb fails the test quickly instead of
taking the machine.

    python -m tests.integration.fetch_child '{"call": "document", "url": "...", ...}'
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _peak_rss_bytes() -> int:
    # VmHWM, not getrusage: ru_maxrss carries over across exec from the forked parent.
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _watch(limit_bytes: int) -> None:
    while True:
        rss = _rss_bytes()
        if rss > limit_bytes:
            print(json.dumps({"code": "killed_over_rss_limit", "rss_mb": rss / 2**20}), flush=True)
            os._exit(3)
        time.sleep(0.002)


def _call(spec: dict[str, Any]) -> str:
    from podscribe.egress.fetcher import SafeFetcher
    from podscribe.errors import PodscribeError
    from podscribe.settings import load_settings

    settings = load_settings(env="local", **spec["settings"])
    with SafeFetcher(settings) as fetcher:
        try:
            if spec["call"] == "document":
                fetcher.get_document(spec["url"], accept=spec.get("accept"))
            elif spec["call"] == "audio":
                with tempfile.TemporaryDirectory() as directory:
                    fetcher.download_audio(spec["url"], Path(directory) / "episode.audio")
            else:
                fetcher.post_json(
                    spec["url"], b'{"event": "job.finished"}', timeout=spec["timeout"]
                )
        except PodscribeError as error:
            return error.code
        except MemoryError:
            return "MemoryError"
    return "ok"


def main() -> None:
    spec = json.loads(sys.argv[1])
    limit = int(spec.get("rss_limit_mb", 300)) * 2**20
    # Backstop for allocations faster than the watchdog polls; address space, not RSS.
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
    import podscribe.egress.fetcher  # noqa: F401  (imports belong to the baseline, not the fetch)

    threading.Thread(target=_watch, args=(limit,), daemon=True).start()
    baseline = _rss_bytes()
    started = time.monotonic()
    code = _call(spec)
    elapsed = time.monotonic() - started
    peak = _peak_rss_bytes()
    print(
        json.dumps(
            {
                "code": code,
                "elapsed": elapsed,
                "baseline_mb": baseline / 2**20,
                "peak_mb": peak / 2**20,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
