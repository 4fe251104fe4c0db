"""``python -m benchmarks [NAME ...] [-- ARGS]``: run the named benchmarks, or all of them.

Each benchmark is a module with ``main(argv: list[str]) -> int``; register it below with one line.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS: dict[str, str] = {
    "job": "benchmarks.job",  # whole transcription job vs bare faster-whisper (espeak: speed)
    "accuracy": "benchmarks.accuracy",  # real human speech: WER, coverage, speed vs sequential
    "api": "benchmarks.api",  # submit API (POST dedupe hit, GET status) vs bare "hello"
    "search": "benchmarks.search",  # full-text search over 10,000 generated transcripts
    "speakers": "benchmarks.speakers",  # diarization: DER, speaker count, cost (espeak + real)
    "workers": "benchmarks.workers",  # warm workers vs one launch per episode (5 episodes)
}


def main(argv: list[str]) -> int:
    """Run the benchmarks named in ``argv`` (all when none); arguments after ``--`` pass on."""
    names, extra = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :])
        if "--" in argv
        else (
            argv,
            [],
        )
    )
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    status = 0
    for name in names or list(BENCHMARKS):
        print(f"== benchmark: {name}", flush=True)
        module = importlib.import_module(BENCHMARKS[name])
        status = max(status, int(module.main(extra)))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
