"""Run one job (``python -m vertex_job``'s main) in a child process and report its memory.

How much a job holds while it decodes is judged on a process of its own: this one loads the
model first (the job's baseline, as in production), resets the peak, runs the job, and prints
one JSON line: the exit code, the resident set size after the model loaded and the peak RSS
after (``VmHWM``). A watchdog ends the process as soon as RSS passes the baseline by
``kill_over_baseline_mb``, so a job that does decode hours of audio fails the test quickly
instead of taking the machine. Settings come from the environment, as the container's do.

    python -m tests.integration.job_child '{"job_id": "...", "kill_over_baseline_mb": 400}'
"""

from __future__ import annotations

import json
import sys
import threading

from tests.integration.fetch_child import _peak_rss_bytes, _rss_bytes, _watch


def _reset_peak() -> None:
    # "5" resets VmHWM to the current RSS, so the model's loading peak is not counted as the job's.
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")


def main() -> None:
    spec = json.loads(sys.argv[1])
    from podscribe.settings import get_settings
    from podscribe.transcription.model import EngineConfig, load_model
    from vertex_job.__main__ import main as job_main

    config = EngineConfig.from_settings(get_settings())
    # The job loads the same cached model: loaded here, it belongs to the baseline.
    load_model(
        config.model, config.device, config.compute_type, config.cpu_threads, config.cache_dir
    )
    _reset_peak()
    baseline = _rss_bytes()
    limit = baseline + int(spec["kill_over_baseline_mb"]) * 2**20
    threading.Thread(target=_watch, args=(limit,), daemon=True).start()
    code = job_main(["--job-id", spec["job_id"]])
    report = {"exit": code, "baseline_mb": baseline / 2**20, "peak_mb": _peak_rss_bytes() / 2**20}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
