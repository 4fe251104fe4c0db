"""Conversations with known turns: several espeak-ng voices taking turns, one sentence each.

Each turn is one sentence read by one voice (an espeak-ng voice, variant and pitch), trimmed of
the silence espeak puts around it, so the reference turns are exact. Turn changes alternate
between no pause at all (the next voice starts on the sample after the last one stopped) and a
short pause, since podcasts have both. The diarization benchmark and the speaker tests use it.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.fakes.speech import SAMPLE_RATE, SENTENCES, read_wav, silence, write_wav


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: ``voice`` (with ``+variant``), pitch 0-99, words per minute."""

    voice: str
    pitch: int
    speed: int = 165


# Distinct to the encoder as well as to the ear: of 54 voice/variant/pitch combinations, the four
# whose GE2E centroids were furthest apart (cosine similarity 0.49-0.59 between any two).
VOICES = (
    Voice("en-us+belinda", 85),
    Voice("en-us+klatt4", 25),
    Voice("en-us+Storm", 25),
    Voice("en-us+f5", 25),
)


@dataclass(frozen=True)
class Conversation:
    """A conversation's audio and its truth.

    Attributes:
        wav: 22.05 kHz mono 16-bit WAV of the whole conversation.
        turns: ``(start, end, speaker)`` of every turn, seconds; speakers are ``A``, ``B``, ...
        text: each turn's sentence, in order.
    """

    wav: Path
    turns: tuple[tuple[float, float, str], ...]
    text: tuple[str, ...]


def _say(voice: Voice, text: str) -> np.ndarray:
    """One sentence in ``voice``, int16 samples, trimmed of leading and trailing silence."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "turn.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                voice.voice,
                "-p",
                str(voice.pitch),
                "-s",
                str(voice.speed),
                "-w",
                str(wav),
                "--stdin",
            ],
            input=text.encode("utf-8"),
            check=True,
            capture_output=True,
        )
        samples = read_wav(wav)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples


def make_conversation(
    directory: Path, *, speakers: int, turns: int, seed: int = 1, pause_seconds: float = 0.4
) -> Conversation:
    """Synthesise a conversation among ``speakers`` of :data:`VOICES`.

    Args:
        directory: where the WAV goes.
        speakers: how many voices (2..4); each speaks at least once.
        turns: how many turns; the speaker changes at every turn.
        seed: the order of speakers and sentences.
        pause_seconds: the pause at every other turn change (the others have none).
    """
    if not 2 <= speakers <= len(VOICES):
        raise ValueError(f"speakers must be 2..{len(VOICES)}")
    rng = random.Random(seed)
    order = list(range(speakers))  # everyone speaks first in order, then at random
    while len(order) < turns:
        order.append(rng.choice([s for s in range(speakers) if s != order[-1]]))
    sentences = list(SENTENCES)
    rng.shuffle(sentences)
    pieces: list[np.ndarray] = []
    truth: list[tuple[float, float, str]] = []
    spoken: list[str] = []
    position = 0
    for index, speaker in enumerate(order[:turns]):
        if index and index % 2 == 0:
            gap = silence(pause_seconds)
            pieces.append(gap)
            position += gap.size
        text = sentences[index % len(sentences)]
        speech = _say(VOICES[speaker], text)
        pieces.append(speech)
        truth.append(
            (position / SAMPLE_RATE, (position + speech.size) / SAMPLE_RATE, "ABCD"[speaker])
        )
        spoken.append(text)
        position += speech.size
    wav = write_wav(np.concatenate(pieces), directory / f"conversation-{speakers}-{seed}.wav")
    return Conversation(wav=wav, turns=tuple(truth), text=tuple(spoken))
