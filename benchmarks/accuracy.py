"""Accuracy on real human speech: the whole job beside faster-whisper decoded two ways.

Episodes are real speech from ``../shared/data/realspeech/`` (17 speakers, exact references):
the nine-minute episode that folder ships, and shorter ones built from its clips the way
podcasts sound (``tests/fakes/realspeech.py``): other orders, pauses of varying length between
turns, speakers at different levels, a music bed and a noisy room under the speech. Each is
encoded as MP3 and transcribed, each run in a child process of its own, timed from spawn to
exit with its peak RSS, model load included:

* sequential: ``WhisperModel.transcribe`` with faster-whisper's defaults (beam 5, timestamps,
  earlier text as the prompt): what a script or a self-hosted Whisper server does;
* batched defaults: ``BatchedInferencePipeline.transcribe`` (batch 8, beam 5, its own VAD):
  what podscribe did before it decoded until covered;
* podscribe: the whole job, ``python -m vertex_job`` on a claimed job, from claim to
  ``succeeded`` (resolution over loopback, guarded download, decode, windows, checkpoints,
  four formats uploaded to fake-gcs-server, the row in PostgreSQL updated), the show and title
  as the episode's prompt.

WER uses Whisper's English text normaliser; coverage is the share of utterances of which at
least half the words appear in order (a dropped passage shows there). Totals pool every
episode's words. Goals (issue 13): podscribe's WER at most 10 % above sequential's, coverage
at least 99 % and never below sequential's, and at least 1.25x faster than sequential.

    python -m benchmarks accuracy [-- --only shared --repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.job import Measured, _job, _run_child, _Services

SYSTEMS = ("sequential", "batched defaults", "podscribe")
WER_GOAL = 1.10  # podscribe's WER / sequential's, at most
COVERAGE_GOAL = 0.99
SPEED_GOAL = 1.25  # sequential's wall / podscribe's, at least


@dataclass(frozen=True)
class Row:
    """One system on one episode."""

    system: str
    episode: str
    seconds: float  # audio
    wall: float
    peak_rss_mb: float
    text: str


def child(mode: str, audio: Path, report: Path) -> None:
    """A baseline in its own process: load the model, decode the file, transcribe it."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    from podscribe.settings import load_settings
    from podscribe.transcription.model import EngineConfig

    config = EngineConfig.from_settings(load_settings())
    model = WhisperModel(
        config.model,
        device=config.device,
        compute_type=config.compute_type,
        cpu_threads=config.cpu_threads,
    )
    samples = decode_audio(str(audio))
    if mode == "sequential":
        segments, _ = model.transcribe(samples, beam_size=5)
    else:
        segments, _ = BatchedInferencePipeline(model).transcribe(samples, batch_size=8, beam_size=5)
    report.write_text(json.dumps({"text": " ".join(segment.text for segment in segments)}))


def episodes(folder: Path, only: list[str] | None) -> list[tuple[str, Path, list[str], list[str]]]:
    """The shared episode and the built ones: (name, MP3, references, utterance ids)."""
    from tests.fakes.realspeech import build_episode, load_utterances, shared_episode, write_mp3

    chosen: list[tuple[str, Path, list[str], list[str]]] = []
    if not only or "shared" in only:
        path, references = shared_episode()
        ids = [u.id for u in load_utterances()]
        chosen.append(("shared", path, references, ids))
    utterances = list(load_utterances())
    recipes = {
        "turns": {"pauses": (0.2, 3.0), "gains_db": (-6.0, 6.0)},
        "long pauses": {"pauses": (1.5, 8.0), "gains_db": (-14.0, 0.0)},
        "music bed": {"pauses": (0.3, 1.5), "bed": "music", "bed_snr_db": 12.0},
        "noisy room": {"pauses": (0.3, 2.0), "bed": "noise", "bed_snr_db": 15.0},
    }
    for seed, (name, recipe) in enumerate(recipes.items(), start=1):
        if only and name not in only:
            continue
        rng = random.Random(seed)
        order = rng.sample(utterances, len(utterances))
        picked, total = [], 0.0
        for utterance in order:  # about three minutes of speech each
            picked.append(utterance)
            total += utterance.samples.shape[0] / 16_000
            if total >= 180:
                break
        episode = build_episode(name.replace(" ", "-"), picked, seed=seed, **recipe)  # type: ignore[arg-type]
        chosen.append(
            (name, write_mp3(episode, folder), episode.references, [u.id for u in picked])
        )
    return chosen


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks accuracy")
    parser.add_argument("--only", action="append", help="an episode's name (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.audio, args.report)
        return 0

    from podscribe.settings import load_settings
    from podscribe.transcription.model import EngineConfig

    config = EngineConfig.from_settings(load_settings())
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="podscribe-accuracy-") as tmp:
        folder = Path(tmp)
        built = episodes(folder, args.only)
        with _Services(folder) as services:
            for number, (name, path, _, _) in enumerate(built):
                seconds = _duration(path)
                for system in SYSTEMS:
                    measured = _measure(system, path, services, folder, 1_000_000_200 + number)
                    wall = (
                        float(measured.report["claim_to_succeeded"])
                        if system == "podscribe"
                        else measured.wall_seconds
                    )
                    rows.append(
                        Row(
                            system,
                            name,
                            seconds,
                            wall,
                            measured.peak_rss_mb,
                            measured.report["text"],
                        )
                    )
                    print(f"  {name}: {system} {wall:.1f} s", flush=True)
    _print(config, rows, {name: (refs, ids) for name, _, refs, ids in built})
    return 0


def _measure(
    system: str, path: Path, services: _Services, folder: Path, episode_id: int
) -> Measured:
    if system == "podscribe":
        return _job(services, path.read_bytes(), episode_id, folder)
    mode = "sequential" if system == "sequential" else "batched"
    command = [sys.executable, "-m", "benchmarks.accuracy", "--child", mode, "--audio", str(path)]
    return _run_child(command, dict(os.environ))


def _duration(path: Path) -> float:
    from podscribe.transcription.audio import probe_duration

    return probe_duration(path) or 0.0


def _print(
    config: object, rows: list[Row], references: dict[str, tuple[list[str], list[str]]]
) -> None:
    from tests.fakes.realspeech import score

    audio = sum({row.episode: row.seconds for row in rows}.values())
    print(
        f"real speech: {len(references)} episode(s), {audio / 60:.1f} min; model "
        f"{getattr(config, 'model_name', '?')}, {getattr(config, 'device', '?')} "
        f"{getattr(config, 'compute_type', '?')}, {getattr(config, 'cpu_threads', '?')} threads"
    )
    header = f"{'episode':14}{'system':18}{'WER':>7}{'cover':>7}{'del':>5}{'ins':>5}{'sub':>5}"
    print(f"{header}{'wall s':>8}{'RTF':>7}{'RSS MB':>8}  missed")
    totals: dict[str, list[float]] = {system: [0, 0, 0, 0, 0.0, 0.0] for system in SYSTEMS}
    for row in rows:
        refs, ids = references[row.episode]
        result = score(refs, row.text, ids=ids)
        total = totals[row.system]
        total[0] += result.errors
        total[1] += result.words
        total[2] += len(refs) * result.coverage
        total[3] += len(refs)
        total[4] += row.wall
        total[5] = max(total[5], row.peak_rss_mb)
        print(
            f"{row.episode:14}{row.system:18}{result.wer:7.3f}{result.coverage:7.3f}"
            f"{result.deletions:5}{result.insertions:5}{result.substitutions:5}{row.wall:8.1f}"
            f"{row.wall / row.seconds:7.3f}{row.peak_rss_mb:8.0f}  {', '.join(result.missed)}"
        )
    print("all episodes (words pooled):")
    pooled = {}
    for system, (errors, words, covered, utterances, wall, rss) in totals.items():
        pooled[system] = (errors / words, covered / utterances, wall)
        print(
            f"{'':14}{system:18}{errors / words:7.3f}{covered / utterances:7.3f}{'':15}"
            f"{wall:8.1f}{wall / audio:7.3f}{rss:8.0f}"
        )
    wer, coverage, wall = pooled["podscribe"]
    seq_wer, seq_coverage, seq_wall = pooled["sequential"]
    checks = {
        f"WER <= {WER_GOAL:.2f} x sequential ({wer:.4f} vs {seq_wer:.4f})": wer
        <= WER_GOAL * seq_wer,
        f"coverage >= {COVERAGE_GOAL:.0%} and >= sequential's ({coverage:.3f} vs "
        f"{seq_coverage:.3f})": coverage >= COVERAGE_GOAL and coverage >= seq_coverage,
        f"speed >= {SPEED_GOAL:.2f}x sequential ({seq_wall / wall:.2f}x)": seq_wall / wall
        >= SPEED_GOAL,
    }
    for check, met in checks.items():
        print(f"goal {'met' if met else 'NOT met'}: {check}")
    print(f"measured {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
