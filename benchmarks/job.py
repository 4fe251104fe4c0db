"""The whole transcription job beside bare faster-whisper, same model, same audio, same run.

This benchmark measures speed and memory on synthetic (espeak-ng) speech, whose length and
words it can choose; it is no measure of accuracy: espeak's one even voice hid a pipeline that
dropped whole passages of real speech. Accuracy is ``python -m benchmarks accuracy``.

A ten-minute speech episode is made with espeak-ng, encoded as MP3 and served over loopback by
the Apple Podcasts stand-in the tests use; PostgreSQL is real and Cloud Storage is
fake-gcs-server. Two child processes are timed from spawn to exit, each with its own peak RSS
(``os.wait4``):

* bare: ``decode_audio`` + ``BatchedInferencePipeline.transcribe`` with the job's decoding
  options (batch size, beam, word timestamps, VAD, the show and title as the initial prompt),
  model loaded in the process; once more without the prompt, for its WER;
* job: ``python -m vertex_job --job-id`` on a claimed job, from claim to ``succeeded``
  (resolution, guarded download to disk, decode, windowed transcription with progress,
  heartbeat and checkpoints, four formats uploaded, the row updated).

The episode opens as podcasts do, naming the show and the episode ("Welcome to The Loopback
Hour..."), which is what the initial prompt is for: names spelled right.

A five-minute episode (long enough to fill a batch of 8 chunks) is run through the job too,
to show how peak memory grows with length next to the decoded audio (16 kHz float32: 3.84 MB
a minute).

    python -m benchmarks job [-- --minutes 10 --short-minutes 5 --repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DECODED_MB_PER_MINUTE = 16_000 * 4 * 60 / 1e6


@dataclass(frozen=True)
class Measured:
    """One child process: wall and CPU time (spawn to exit), peak RSS and what it said."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    report: dict[str, Any]


def _wer(reference: str, hypothesis: str) -> float:
    import jiwer

    from tests.fakes.realspeech import normalise

    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def _run_child(command: list[str], env: dict[str, str], *, reports: bool = True) -> Measured:
    with tempfile.NamedTemporaryFile("w+", suffix=".json") as out:
        started = time.perf_counter()
        argv = [*command, "--report", out.name] if reports else command
        process = subprocess.Popen(argv, cwd=REPO, env=env, stderr=subprocess.PIPE)
        stderr = process.stderr.read() if process.stderr else b""
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{command} exited {process.returncode}: {stderr.decode()[-2000:]}")
        out.seek(0)
        text = out.read()
    report = json.loads(text) if text.strip() else {}
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, report)


SHOW_NAME = "The Loopback Hour"
TITLE = "Bridges, Harbors and Fresh Bread"
INTRO = f"Welcome to {SHOW_NAME}. Today: bridges, harbors and fresh bread."


def bare_child(audio: Path, report: Path, prompt: str | None) -> None:
    """The baseline, run in its own process: what a script using faster-whisper would do."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    from podscribe.settings import load_settings
    from podscribe.transcription.model import EngineConfig

    config = EngineConfig.from_settings(load_settings())
    started = time.perf_counter()
    model = WhisperModel(
        config.model,
        device=config.device,
        compute_type=config.compute_type,
        cpu_threads=config.cpu_threads,
    )
    loaded = time.perf_counter()
    samples = decode_audio(str(audio))
    decoded = time.perf_counter()
    segments, _ = BatchedInferencePipeline(model).transcribe(
        samples,
        batch_size=config.batch_size,
        beam_size=config.beam_size,
        word_timestamps=config.word_timestamps,
        vad_filter=config.vad_filter,
        initial_prompt=prompt,
    )
    text = " ".join(segment.text for segment in segments)
    done = time.perf_counter()
    report.write_text(
        json.dumps(
            {
                "load_model": loaded - started,
                "decode": decoded - loaded,
                "transcribe": done - decoded,
                "text": text,
            }
        )
    )


class _Services:
    """PostgreSQL (a throwaway database) and fake-gcs-server, for the benchmark's lifetime."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> _Services:
        from local_emulators.emulators import start_fake_gcs
        from podscribe.db import create_db_engine, migrate
        from podscribe.settings import load_settings
        from tests.services import free_port, throwaway_database

        self._database = throwaway_database()
        self.database_url = self._database.__enter__()
        port = free_port()
        self._gcs = start_fake_gcs(port, self.folder / "gcs", self.folder / "gcs.log")
        self.storage_url = f"http://127.0.0.1:{port}"
        os.environ["STORAGE_EMULATOR_HOST"] = self.storage_url
        self.engine = create_db_engine(load_settings(database_url=self.database_url, env="test"))
        migrate(self.engine)
        return self

    def __exit__(self, *exc: object) -> None:
        from local_emulators.processes import stop_group

        self.engine.dispose()
        stop_group(self._gcs.pid)
        self._database.__exit__(None, None, None)


def _job(services: _Services, audio: bytes, episode_id: int, folder: Path) -> Measured:
    """Serve the episode, claim a job for it, run ``python -m vertex_job`` and time it."""
    from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
    from podscribe import jobs
    from podscribe.db import transaction
    from podscribe.settings import load_settings
    from podscribe.storage import TranscriptStore

    show = FakeShow(name=SHOW_NAME)
    episode = FakeEpisode(episode_id, TITLE, audio=audio)
    with FakeApplePodcasts(show, [episode]) as apple:
        overrides = apple.settings_overrides()
        env = {
            **os.environ,
            "PODSCRIBE_ENV": "local",
            "PODSCRIBE_DATABASE_URL": services.database_url,
            "PODSCRIBE_BUCKET": "podscribe-bench",
            "PODSCRIBE_WORK_DIR": str(folder / "work"),
            "PODSCRIBE_ITUNES_API_BASE": overrides["itunes_api_base"],
            "PODSCRIBE_APPLE_WEB_BASE": overrides["apple_web_base"],
            "PODSCRIBE_SSRF_ALLOW": ",".join(overrides["ssrf_allow"]),
            "STORAGE_EMULATOR_HOST": services.storage_url,
        }
        store = TranscriptStore(load_settings(env="test", bucket="podscribe-bench"))
        store.ensure_bucket()
        with transaction(services.engine) as conn:
            job, _ = jobs.create_or_get_job(
                conn,
                collection_id=show.collection_id,
                episode_id=episode_id,
                source_url=apple.episode_link(episode),
                key_fingerprint="bench",
            )
            jobs.claim_for_dispatch(conn, job.id, lease_seconds=600, max_attempts=3)
        measured = _run_child(
            [sys.executable, "-m", "vertex_job", "--job-id", job.id], env, reports=False
        )
        with transaction(services.engine) as conn:
            row = jobs.get_job(conn, job.id)
        if row.status is not jobs.JobStatus.SUCCEEDED or row.transcript_objects is None:
            raise RuntimeError(f"the job ended {row.status}: {row.error_code} {row.error_message}")
        if row.dispatched_at is None or row.finished_at is None:
            raise RuntimeError("the job row lacks its dispatch or finish time")
        document = json.loads(store.get(row.transcript_objects["json"]))
    report = {
        "claim_to_succeeded": (row.finished_at - row.dispatched_at).total_seconds(),
        "timings": document["timings"],
        "text": document["text"],
        "duration": document["duration"],
    }
    return Measured(measured.wall_seconds, measured.cpu_seconds, measured.peak_rss_mb, report)


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks job")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--short-minutes", type=float, default=5.0, help="0 skips the memory run")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of bare + job (medians)")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prompt", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        bare_child(args.bare, args.report, args.prompt)
        return 0

    from podscribe.jobs.worker import episode_prompt
    from podscribe.settings import load_settings
    from podscribe.transcription.model import EngineConfig
    from tests.fakes.speech import make_episode

    config = EngineConfig.from_settings(load_settings())
    with tempfile.TemporaryDirectory(prefix="podscribe-bench-") as tmp:
        folder = Path(tmp)
        audio_path, spoken = make_episode(
            folder, seconds=args.minutes * 60, codec="mp3", seed=11, intro=INTRO
        )
        audio = audio_path.read_bytes()
        env = dict(os.environ)
        unprompted = [sys.executable, "-m", "benchmarks.job", "--bare", str(audio_path)]
        command = [*unprompted, "--prompt", episode_prompt(SHOW_NAME, TITLE)]
        without_prompt = _run_child(unprompted, env)  # also the warm-up: files into the cache
        with _Services(folder) as services:
            bares, runs = [], []
            for round_number in range(args.repeat):  # alternate, so load hits both alike
                bares.append(_run_child(command, env))
                runs.append(_job(services, audio, 1000000100 + round_number, folder))
            short = None
            if args.short_minutes > 0:
                short_path, _ = make_episode(
                    folder, seconds=args.short_minutes * 60, codec="mp3", seed=12, name="short"
                )
                short = _job(services, short_path.read_bytes(), 1000000099, folder)
    bare = _median(bares, lambda m: m.wall_seconds)
    job = _median(runs, lambda m: float(m.report["claim_to_succeeded"]))
    if args.repeat > 1:
        print(
            f"{args.repeat} rounds; medians below. bare walls "
            f"{[round(m.wall_seconds, 1) for m in bares]}, job walls "
            f"{[round(float(m.report['claim_to_succeeded']), 1) for m in runs]}; CPU s bare "
            f"{[round(m.cpu_seconds, 1) for m in bares]}, job "
            f"{[round(m.cpu_seconds, 1) for m in runs]}"
        )
    _print(config, spoken, bare=bare, job=job, short=short, without_prompt=without_prompt)
    return 0


def _median(items: list[Measured], key: Callable[[Measured], float]) -> Measured:
    return sorted(items, key=key)[len(items) // 2]


def _print(
    config: Any,
    spoken: str,
    *,
    bare: Measured,
    job: Measured,
    short: Measured | None,
    without_prompt: Measured,
) -> None:
    duration = float(job.report["duration"])
    bare_wer = _wer(spoken, bare.report["text"])
    unprompted_wer = _wer(spoken, without_prompt.report["text"])
    job_wer = _wer(spoken, job.report["text"])
    claim = float(job.report["claim_to_succeeded"])
    ratio = claim / bare.wall_seconds
    print(
        f"audio: {duration / 60:.1f} min of espeak-ng speech (MP3); model {config.model_name}, "
        f"{config.device} {config.compute_type}, {config.cpu_threads} threads, "
        f"batch {config.batch_size}, beam {config.beam_size}"
    )
    print(f"{'':28}{'wall s':>9}{'RTF':>8}{'x real':>8}{'CPU s':>8}{'WER':>8}{'peak RSS MB':>13}")
    for label, seconds, measured, wer in (
        ("bare, no prompt (1 run)", without_prompt.wall_seconds, without_prompt, unprompted_wer),
        ("bare faster-whisper", bare.wall_seconds, bare, bare_wer),
        ("job (claim -> succeeded)", claim, job, job_wer),
    ):
        print(
            f"{label:28}{seconds:9.1f}{seconds / duration:8.3f}{duration / seconds:8.1f}"
            f"{measured.cpu_seconds:8.1f}{wer:8.3f}{measured.peak_rss_mb:13.0f}"
        )
    print(f"CPU time ratio job / bare: {job.cpu_seconds / bare.cpu_seconds:.3f}")
    apart = _wer(bare.report["text"], job.report["text"])
    print(f"job transcript against bare's (same options): WER {apart:.4f} (0: word for word)")
    # No goal here: the job decodes again what one batched pass skips (real speech shows
    # the difference, espeak barely does), so it is meant to take longer than bare.
    print(
        f"ratio job / bare: {ratio:.3f}; WER job {job_wer:.4f}, bare {bare_wer:.4f}, bare without "
        f"prompt {unprompted_wer:.4f} (espeak speech: speed and memory, not accuracy)"
    )
    bare_parts = {k: round(v, 2) for k, v in bare.report.items() if k != "text"}
    print(f"bare stages s: {bare_parts}")
    timings = {k: round(v, 2) for k, v in job.report["timings"].items()}
    print(f"job stages s: {timings}; process wall {job.wall_seconds:.1f}")
    if short is not None:
        short_minutes = float(short.report["duration"]) / 60
        grown = job.peak_rss_mb - short.peak_rss_mb
        decoded = (duration / 60 - short_minutes) * DECODED_MB_PER_MINUTE
        print(
            f"memory: job peak RSS {short.peak_rss_mb:.0f} MB at {short_minutes:.1f} min, "
            f"{job.peak_rss_mb:.0f} MB at {duration / 60:.1f} min: +{grown:.0f} MB, "
            f"against +{decoded:.0f} MB of decoded audio"
        )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
