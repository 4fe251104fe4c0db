"""Warm workers against one launch per episode: five short episodes submitted together.

Each episode is espeak-ng speech (MP3) served over loopback by the Apple Podcasts stand-in;
PostgreSQL is real (a throwaway database) and Cloud Storage is fake-gcs-server. Dispatch runs
in this process with the local launcher (``python -m vertex_job`` processes), at most two at
once (``PODSCRIBE_LOCAL_MAX_JOBS`` and ``PODSCRIBE_MAX_CONCURRENT_JOBS`` both 2), and each job's
wake-up is redelivered every second while dispatch answers "no free slot", as Pub/Sub does.
Two rounds, each on episodes of its own:

* one launch per episode: ``PODSCRIBE_WORKER_IDLE_SECONDS=0`` (the default): every episode
  pays a process start, the imports and the model load;
* warm workers: ``PODSCRIBE_WORKER_IDLE_SECONDS=30``: the two processes launched first take
  the other three (handed over by dispatch or claimed from the queue), model loaded.

Figures, per round: wall time from the submission of the five to the last ``succeeded``, the
launches, and per episode:

* **time to first word**: from its submission to the moment its row first shows progress
  above 0, i.e. the first transcribed segment written by the job's heartbeat (written every
  ``PODSCRIBE_PROGRESS_INTERVAL_SECONDS``, 0.25 s here; the row is polled every 0.05 s). It
  holds the wait for a free slot, the launch, the model load, the download and the decode;
* the model load the job itself timed (``timings.load_model`` of its transcript).

Diarization is off: it runs after the words and would only add the same time to both rounds.
On a GPU the launch is minutes of provisioning rather than the seconds of a local process,
so these figures understate what warm workers save on Vertex.

    python -m benchmarks workers [-- --seconds 20 --episodes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHOW_NAME = "The Loopback Hour"
_BUCKET = "podscribe-bench-workers"
_CAP = 2
_POLL_SECONDS = 0.05
_REDELIVERY_SECONDS = 1.0


@dataclass(frozen=True)
class Round:
    """One round's figures.

    Attributes:
        label: which mode.
        wall_seconds: the five submitted -> the last succeeded.
        launches: processes the launcher started.
        first_word_seconds: per episode, submission -> first progress above 0.
        load_model_seconds: per episode, the job's own model-load timing.
        start_seconds: per episode, submission -> ``running`` (the database's clock).
    """

    label: str
    wall_seconds: float
    launches: int
    first_word_seconds: list[float]
    load_model_seconds: list[float]
    start_seconds: list[float]


def _environment(settings: Any) -> None:
    """The settings into this process's environment: the local launcher's children read it."""
    from podscribe.settings import env_name

    for name in [name for name in os.environ if name.startswith(("PODSCRIBE_", "WHISPER_"))]:
        del os.environ[name]
    for field in settings.model_fields_set:
        value: Any = getattr(settings, field)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = ",".join(str(item) for item in value)
        os.environ[env_name(field)] = str(value)


def _run_round(
    label: str, idle_seconds: int, audio: list[bytes], services: Any, folder: Path
) -> Round:
    """Submit one episode per audio together, dispatch them, and time them to ``succeeded``."""
    from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
    from local_emulators.processes import stop_group
    from podscribe import jobs
    from podscribe.db import transaction
    from podscribe.errors import CapacityError
    from podscribe.jobs.dispatcher import dispatch_message
    from podscribe.jobs.launchers.local import LocalProcessLauncher
    from podscribe.messaging import JobMessage
    from podscribe.settings import load_settings
    from podscribe.storage import TranscriptStore

    show = FakeShow(name=SHOW_NAME)
    base = 1_300_000_000 + 100 * idle_seconds
    episodes = [FakeEpisode(base + i, f"Episode {i}", audio=data) for i, data in enumerate(audio)]
    state_dir = folder / f"state-{idle_seconds}"
    with FakeApplePodcasts(show, episodes) as apple:
        settings = load_settings(
            env="local",
            database_url=services.database_url,
            bucket=_BUCKET,
            launcher="local",
            local_state_dir=state_dir,
            local_max_jobs=_CAP,
            max_concurrent_jobs=_CAP,
            work_dir=folder / "work",
            db_wait_seconds=10,
            diarization="off",
            progress_interval_seconds=0.25,
            worker_idle_seconds=idle_seconds,
            worker_poll_seconds=0.2,
            **apple.settings_overrides(),
        )
        _environment(settings)
        os.environ["STORAGE_EMULATOR_HOST"] = services.storage_url
        store = TranscriptStore(settings)
        store.ensure_bucket()
        launcher = LocalProcessLauncher(settings)
        started = time.perf_counter()
        job_ids = []
        for episode in episodes:  # one request each, as callers do: queued in this order
            with transaction(services.engine) as conn:
                job, _ = jobs.create_or_get_job(
                    conn,
                    collection_id=show.collection_id,
                    episode_id=episode.episode_id,
                    source_url=apple.episode_link(episode),
                    key_fingerprint="bench",
                )
            job_ids.append(job.id)
        first_word: dict[str, float] = {}
        done = threading.Event()
        watcher = threading.Thread(
            target=_watch_progress, args=(services.engine, job_ids, started, first_word, done)
        )
        watcher.start()
        try:
            waiting = list(job_ids)
            while waiting:  # Pub/Sub's redelivery of the wake-ups dispatch refused
                for job_id in list(waiting):
                    try:
                        dispatch_message(services.engine, settings, launcher, JobMessage(job_id))
                        waiting.remove(job_id)
                    except CapacityError:
                        continue
                if waiting:
                    time.sleep(_REDELIVERY_SECONDS)
            rows = _wait_succeeded(services.engine, job_ids)
            wall = time.perf_counter() - started
        finally:
            done.set()
            watcher.join()
            for pid_file in (state_dir / "jobs").glob("*.pid"):  # warm workers still idling
                if not pid_file.with_suffix(".exit").exists():
                    stop_group(int(pid_file.read_text().strip()))
        loads = [
            float(json.loads(store.get(row.transcript_objects["json"]))["timings"]["load_model"])
            for row in rows
            if row.transcript_objects
        ]
    return Round(
        label=label,
        wall_seconds=wall,
        launches=len(list((state_dir / "jobs").glob("*.pid"))),
        first_word_seconds=[first_word[job_id] for job_id in job_ids],
        load_model_seconds=loads,
        start_seconds=[
            (row.started_at - row.created_at).total_seconds() for row in rows if row.started_at
        ],
    )


def _watch_progress(
    engine: Any, job_ids: list[str], started: float, first_word: dict[str, float], done: Any
) -> None:
    """Note when each job's row first shows progress above 0."""
    from podscribe import jobs
    from podscribe.db import transaction

    while len(first_word) < len(job_ids):
        last_look = done.is_set()  # after the last success: one more pass sees every row
        with transaction(engine) as conn:
            for job_id in job_ids:
                if job_id not in first_word and jobs.get_job(conn, job_id).progress > 0:
                    first_word[job_id] = time.perf_counter() - started
        if last_look:
            return
        time.sleep(_POLL_SECONDS)


def _wait_succeeded(engine: Any, job_ids: list[str], limit_seconds: float = 900.0) -> list[Any]:
    from podscribe import jobs
    from podscribe.db import transaction

    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        with transaction(engine) as conn:
            rows = [jobs.get_job(conn, job_id) for job_id in job_ids]
        failed = [row for row in rows if row.status is jobs.JobStatus.FAILED]
        if failed:
            raise RuntimeError(f"a job failed: {failed[0].error_code} {failed[0].error_message}")
        if all(row.status is jobs.JobStatus.SUCCEEDED for row in rows):
            return rows
        time.sleep(_POLL_SECONDS)
    raise RuntimeError("the jobs did not finish in time")


def main(argv: list[str]) -> int:
    """Run both rounds and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks workers")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each episode")
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args(argv)

    from benchmarks.job import _Services
    from tests.fakes.speech import make_episode

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="podscribe-bench-workers-") as tmp:
        folder = Path(tmp)
        audio = [
            make_episode(folder, seconds=args.seconds, seed=30 + i, name=f"ep{i}")[0].read_bytes()
            for i in range(args.episodes)
        ]
        try:
            with _Services(folder) as services:
                rounds = [
                    _run_round("one launch per episode", 0, audio, services, folder),
                    _run_round("warm workers (idle 30 s)", 30, audio, services, folder),
                ]
        finally:
            os.environ.clear()
            os.environ.update(saved)
    _print(rounds, args)
    return 0


def _print(rounds: list[Round], args: argparse.Namespace) -> None:
    print(
        f"{args.episodes} episodes of {args.seconds:.0f} s espeak-ng speech submitted together; "
        f"local launcher, at most {_CAP} jobs at once; tiny.en on the CPU (int8)"
    )
    print(
        f"{'':28}{'wall s':>8}{'launches':>10}{'first word s: median':>22}{'max':>7}"
        f"{'  per episode (submit order)'}"
    )
    for item in rounds:
        words = item.first_word_seconds
        print(
            f"{item.label:28}{item.wall_seconds:8.1f}{item.launches:10d}"
            f"{statistics.median(words):22.1f}{max(words):7.1f}  "
            f"{' '.join(f'{value:.1f}' for value in words)}"
        )
    for item in rounds:
        loads = " ".join(f"{value:.2f}" for value in item.load_model_seconds)
        print(f"model load s per episode, {item.label}: {loads}")
        starts = " ".join(f"{value:.1f}" for value in item.start_seconds)
        print(f"submit -> running s per episode, {item.label}: {starts}")
    cold, warm = rounds
    ratio = statistics.median(warm.first_word_seconds) / statistics.median(cold.first_word_seconds)
    print(
        f"warm / one launch per episode: wall {warm.wall_seconds / cold.wall_seconds:.2f}, "
        f"median first word {ratio:.2f}"
    )
