"""Diarization: error rate and speaker count on conversations with known turns, and its cost.

Conversations are made with espeak-ng (``tests/fakes/conversations.py``): 2, 3 and 4 voices
(voice, variant and pitch chosen to be distinct), one sentence a turn, half of the turn changes
with no pause at all, encoded as MP3 and decoded the way the job decodes. Each is diarized with
the speaker count estimated (as a job without ``speakers_expected`` does) and once more with the
count given, and scored with the project's own DER (no collar; reference turns are exact, so a
pause inside a sentence counts as missed speech). The count is right when the estimate equals
the number of voices.

Cost, two ways: diarization seconds beside transcription seconds (tiny.en, the job's decoding
options, in this process) for the same audio, which overstates it; and what it adds to the job:
``python -m vertex_job`` on a claimed job (PostgreSQL, fake-gcs-server, the episode served over
loopback, as ``python -m benchmarks job`` runs it), spawn to exit, with ``PODSCRIBE_DIARIZATION``
off and on, alternating, medians. The goal is on the job (under 15 % added): the job's own
``timings["speakers"]`` over its wall time with diarization off, since the difference of two
walls of ~25 s is within their run-to-run spread.

The real-speech episode in ``../shared/data/realspeech/`` (68 clips from 17 speakers, 0.8 s
between clips, turns known from ``episode_index.json``) is scored the same way when present;
its reference spans whole clips, so pauses within a reader's clip count as missed speech.

    python -m benchmarks speakers [-- --seeds 3 --turns 12 --rounds 3 --no-realspeech]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from podscribe.transcription.engine import Transcriber

DER_GOAL = 0.10  # on the 2- and 3-voice sets
COST_GOAL = 0.15  # added to the job's wall time
REALSPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "realspeech"


@dataclass(frozen=True)
class Scored:
    """One recording: its truth, what diarization found, and what it cost."""

    voices: int
    seconds: float
    found: int
    der: float
    der_given_count: float
    diarize_seconds: float
    transcribe_seconds: float


def _score(
    audio: np.ndarray, turns: Sequence[tuple[float, float, str]], transcriber: Transcriber
) -> Scored:
    from podscribe.speakers import diarize
    from podscribe.speakers.error_rate import diarization_error

    voices = len({speaker for _, _, speaker in turns})
    started = time.perf_counter()
    found = diarize(audio)
    diarize_seconds = time.perf_counter() - started
    given = diarize(audio, expected=voices)
    started = time.perf_counter()
    for window in transcriber.windows(audio, window_seconds=300):
        list(window.segments)
    transcribe_seconds = time.perf_counter() - started
    return Scored(
        voices=voices,
        seconds=audio.shape[0] / 16_000,
        found=len({turn.speaker for turn in found}),
        der=diarization_error(turns, [(t.start, t.end, t.speaker) for t in found]).rate,
        der_given_count=diarization_error(turns, [(t.start, t.end, t.speaker) for t in given]).rate,
        diarize_seconds=diarize_seconds,
        transcribe_seconds=transcribe_seconds,
    )


def _pooled_der(rows: Sequence[Scored], attribute: str) -> float:
    """Error rates pooled by speech time (each recording weighted by its length)."""
    total = sum(row.seconds for row in rows)
    return float(sum(getattr(row, attribute) * row.seconds for row in rows) / total)


def _realspeech_turns() -> list[tuple[float, float, str]]:
    index = json.loads((REALSPEECH / "episode_index.json").read_text())["utterances"]
    manifest = json.loads((REALSPEECH / "manifest.json").read_text())["utterances"]
    speaker = {item["id"]: item["speaker"] for item in manifest}
    return [(item["start_s"], item["end_s"], speaker[item["id"]]) for item in index]


def _print_table(title: str, rows: dict[str, list[Scored]]) -> None:
    print(title)
    header = (
        f"{'set':<14}{'recordings':>11}{'audio s':>9}{'DER':>8}{'DER(N given)':>13}"
        f"{'count right':>12}{'diarize s':>10}{'transcribe s':>13}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, scored in rows.items():
        right = sum(row.found == row.voices for row in scored)
        diarize_s = sum(row.diarize_seconds for row in scored)
        transcribe_s = sum(row.transcribe_seconds for row in scored)
        print(
            f"{name:<14}{len(scored):>11}{sum(r.seconds for r in scored):>9.1f}"
            f"{_pooled_der(scored, 'der'):>8.1%}{_pooled_der(scored, 'der_given_count'):>13.1%}"
            f"{f'{right}/{len(scored)}':>12}{diarize_s:>10.2f}{transcribe_s:>13.2f}"
            f"{diarize_s / transcribe_s:>8.1%}"
        )


def _job_added(audio: bytes, rounds: int, folder: Path) -> float:
    """What diarization adds to the job: its speakers step over the wall time without it.

    Runs the job (spawn to exit) with diarization off and on, alternating, and prints both.
    """
    import os

    from benchmarks.job import _job, _Services

    walls: dict[str, list[float]] = {"off": [], "on": []}
    in_job: list[float] = []  # the job's own ``timings["speakers"]``
    with _Services(folder) as services:
        for round_number in range(rounds):
            for number, mode in enumerate(walls):
                os.environ["PODSCRIBE_DIARIZATION"] = mode
                episode_id = 1_000_000_800 + 2 * round_number + number
                measured = _job(services, audio, episode_id, folder)
                walls[mode].append(measured.wall_seconds)
                if mode == "on":
                    in_job.append(float(measured.report["timings"]["speakers"]))
        os.environ.pop("PODSCRIBE_DIARIZATION")
    print(
        f"job wall, median of {rounds}: diarization off {median(walls['off']):.2f} s, "
        f"on {median(walls['on']):.2f} s (its speakers step: {median(in_job):.2f} s)"
    )
    return median(in_job) / median(walls["off"])


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures; 1 when a goal is missed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks speakers")
    parser.add_argument("--seeds", type=int, default=3, help="conversations per set")
    parser.add_argument("--turns", type=int, default=12, help="turns per conversation")
    parser.add_argument("--rounds", type=int, default=3, help="job runs per mode (medians)")
    parser.add_argument("--no-realspeech", action="store_true")
    args = parser.parse_args(argv)

    from podscribe.settings import load_settings
    from podscribe.speakers.encoder import load_encoder
    from podscribe.transcription.audio import decode_audio_file
    from podscribe.transcription.engine import Transcriber
    from podscribe.transcription.model import EngineConfig
    from tests.fakes.conversations import make_conversation
    from tests.fakes.speech import encode

    transcriber = Transcriber(EngineConfig.from_settings(load_settings(env="test")))
    load_encoder()  # loaded once per process, as in a job; not part of the figures
    rows: dict[str, list[Scored]] = {}
    with tempfile.TemporaryDirectory(prefix="podscribe-speakers-") as tmp:
        folder = Path(tmp)
        for voices in (2, 3, 4):
            scored = []
            for seed in range(1, args.seeds + 1):
                conversation = make_conversation(
                    folder, speakers=voices, turns=args.turns, seed=seed
                )
                mp3 = encode(conversation.wav, folder / f"{voices}-{seed}.mp3", codec="mp3")
                audio = decode_audio_file(mp3)
                scored.append(_score(audio, conversation.turns, transcriber))
            rows[f"{voices} voices"] = scored
        _print_table("Diarization of espeak-ng conversations (speaker count estimated)", rows)
        met = all(_pooled_der(rows[f"{n} voices"], "der") <= DER_GOAL for n in (2, 3))
        ratio = sum(r.diarize_seconds for s in rows.values() for r in s) / sum(
            r.transcribe_seconds for s in rows.values() for r in s
        )
        job_audio = folder / "2-1.mp3"
        if not args.no_realspeech and (REALSPEECH / "episode.mp3").exists():
            turns = _realspeech_turns()
            real = _score(decode_audio_file(REALSPEECH / "episode.mp3"), turns, transcriber)
            print()
            _print_table("Real speech (realspeech/episode.mp3, 17 readers)", {"realspeech": [real]})
            print(f"speakers found: {real.found} of {real.voices}")
            ratio = max(ratio, real.diarize_seconds / real.transcribe_seconds)
            job_audio = REALSPEECH / "episode.mp3"
        print()
        added = _job_added(job_audio.read_bytes(), args.rounds, folder)
        print(
            f"goals: DER <= {DER_GOAL:.0%} on 2 and 3 voices: {'met' if met else 'MISSED'}; "
            f"under {COST_GOAL:.0%} added to the job's wall time ({job_audio.name}): "
            f"{'met' if added < COST_GOAL else 'MISSED'} ({added:.1%}; diarization / "
            f"transcription alone, worst: {ratio:.1%})"
        )
    return 0 if met and added < COST_GOAL else 1
