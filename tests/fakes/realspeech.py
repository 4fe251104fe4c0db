"""Real human speech with exact references, laid out as podcast episodes, and how to score them.

The clips live in ``../shared/data/realspeech/`` (68 clips, 17 speakers, LibriSpeech, LJSpeech,
Common Voice, EDACC, LibriTTS, LibriVox; sources and licences in its ``manifest.json``); they are
read there, never copied into the repository. An episode is built from them the way a podcast
sounds: turns in some order, pauses of varying length between them, speakers at different
levels, and optionally a bed of noise or music under the speech.

Scoring uses Whisper's English text normaliser on both sides (numbers, spellings, punctuation)
and reports two figures: word error rate, and *coverage*, the share of utterances of which at
least half the reference words appear in the transcript, in order (found by aligning the
whole transcript against the whole reference). A transcript that silently drops a passage can
still have a modest WER; its coverage shows the passage is gone.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REALSPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "realspeech"
RATE = 16_000


@dataclass(frozen=True)
class Utterance:
    """One clip: who said it, what was said, and its samples (16 kHz mono float32)."""

    id: str
    speaker: str
    corpus: str
    reference: str
    samples: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Episode:
    """A built episode: its samples, and each utterance's reference and place in it (seconds)."""

    name: str
    samples: np.ndarray = field(repr=False)
    utterances: tuple[tuple[str, str, float, float], ...]  # id, reference, start, end

    @property
    def references(self) -> list[str]:
        return [reference for _, reference, _, _ in self.utterances]

    @property
    def seconds(self) -> float:
        return float(self.samples.shape[0] / RATE)


def require_data() -> Path:
    """The shared folder, or a clear failure: the data is part of the test set-up."""
    manifest = REALSPEECH / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(
            f"{manifest} is missing: the real-speech clips are read from ../shared/data"
        )
    return manifest


@functools.cache
def load_utterances() -> tuple[Utterance, ...]:
    """Every clip of the manifest, decoded to 16 kHz mono, in manifest order."""
    from faster_whisper import decode_audio

    manifest = json.loads(require_data().read_text())
    return tuple(
        Utterance(
            id=item["id"],
            speaker=item["speaker"],
            corpus=item["corpus"],
            reference=item["reference"],
            samples=decode_audio(str(REALSPEECH / item["file"]), sampling_rate=RATE),
        )
        for item in manifest["utterances"]
    )


def shared_episode() -> tuple[Path, list[str]]:
    """The nine-minute episode the shared folder ships (MP3) and its references in order."""
    manifest = json.loads(require_data().read_text())
    return REALSPEECH / "episode.mp3", [item["reference"] for item in manifest["utterances"]]


def build_episode(
    name: str,
    utterances: Sequence[Utterance],
    *,
    seed: int,
    pauses: tuple[float, float] = (0.3, 2.0),
    gains_db: tuple[float, float] = (0.0, 0.0),
    bed: str | None = None,
    bed_snr_db: float = 15.0,
) -> Episode:
    """Lay ``utterances`` out as an episode.

    Args:
        name: what the benchmark calls it.
        utterances: in speaking order.
        seed: the pauses', levels' and bed's randomness.
        pauses: shortest and longest pause between turns (seconds, uniform).
        gains_db: each speaker's level is moved by a draw from this range (dB), once per
            speaker, as guests on different microphones sound.
        bed: ``"noise"`` (pink-ish room noise) or ``"music"`` (sustained chords with a slow
            beat) under the whole episode, or None.
        bed_snr_db: speech level over the bed (dB, by RMS over the speech).
    """
    rng = random.Random(seed)
    gain = {
        speaker: 10 ** (rng.uniform(*gains_db) / 20)
        for speaker in sorted({u.speaker for u in utterances})
    }
    pieces: list[np.ndarray] = []
    placed: list[tuple[str, str, float, float]] = []
    position = 0
    for index, utterance in enumerate(utterances):
        if index:
            pause = np.zeros(int(rng.uniform(*pauses) * RATE), dtype=np.float32)
            pieces.append(pause)
            position += pause.shape[0]
        speech = (utterance.samples * gain[utterance.speaker]).astype(np.float32)
        pieces.append(speech)
        placed.append(
            (utterance.id, utterance.reference, position / RATE, (position + len(speech)) / RATE)
        )
        position += speech.shape[0]
    samples = np.concatenate(pieces)
    if bed is not None:
        speech_rms = float(np.sqrt(np.mean(np.concatenate([p for p in pieces if p.any()]) ** 2)))
        layer = _bed(bed, samples.shape[0], np.random.default_rng(seed))
        layer *= speech_rms / 10 ** (bed_snr_db / 20) / float(np.sqrt(np.mean(layer**2)))
        samples = samples + layer
    peak = float(np.max(np.abs(samples)))
    if peak > 0.99:  # no clipping: scale the whole episode, as a mastering limiter would
        samples = samples * (0.99 / peak)
    return Episode(name=name, samples=samples.astype(np.float32), utterances=tuple(placed))


def _bed(kind: str, count: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "noise":  # pink noise (power falling 3 dB an octave): a room's hum and hiss
        spectrum = np.fft.rfft(rng.normal(0.0, 1.0, count))
        frequencies = np.fft.rfftfreq(count, 1 / RATE)
        spectrum /= np.sqrt(np.maximum(frequencies, 20.0))
        return np.fft.irfft(spectrum, n=count)
    if kind == "music":  # four-second chords of three notes with a soft beat, like a bed track
        time = np.arange(count) / RATE
        roots = rng.choice([196.0, 220.0, 246.9, 261.6, 293.7], size=count // (4 * RATE) + 1)
        root = roots[(time // 4).astype(int)]
        chord = sum(np.sin(2 * np.pi * root * ratio * time) for ratio in (1.0, 1.26, 1.5))
        beat = 0.6 + 0.4 * np.clip(np.sin(2 * np.pi * 2.0 * time), 0, None) ** 8
        return np.asarray(chord * beat)
    raise ValueError(f"unknown bed {kind!r}")


def write_mp3(episode: Episode, folder: Path) -> Path:
    """Encode the episode as MP3 (what a feed serves), through a 16-bit WAV."""
    from tests.fakes.speech import encode, write_wav

    pcm = np.clip(episode.samples * 32767, -32768, 32767).astype(np.int16)
    wav = write_wav(pcm, folder / f"{episode.name}.wav", sample_rate=RATE)
    return encode(wav, folder / f"{episode.name}.mp3", codec="mp3", bitrate=96_000)


@dataclass(frozen=True)
class Score:
    """How a transcript compares with the references.

    Attributes:
        wer: word error rate after Whisper's English normaliser.
        coverage: share of utterances with at least half their words found, in order.
        words: reference words; errors: substitutions + deletions + insertions.
        deletions, insertions, substitutions: the error counts.
        missed: ids (or indexes) of the utterances not covered.
    """

    wer: float
    coverage: float
    words: int
    errors: int
    deletions: int
    insertions: int
    substitutions: int
    missed: tuple[str, ...]


@functools.cache
def _normaliser() -> object:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalise(text: str) -> str:
    """Whisper's English text normaliser: lower case, spelled numbers, no punctuation."""
    return " ".join(str(_normaliser()(text)).split())  # type: ignore[operator]


def score(references: Sequence[str], hypothesis: str, *, ids: Sequence[str] | None = None) -> Score:
    """Score ``hypothesis`` against the utterances' ``references`` (in speaking order)."""
    import jiwer

    words: list[str] = []
    spans: list[tuple[int, int]] = []
    for reference in references:
        own = normalise(reference).split()
        spans.append((len(words), len(words) + len(own)))
        words.extend(own)
    heard = normalise(hypothesis)
    output = jiwer.process_words(" ".join(words), heard or "<nothing>")
    found = np.zeros(len(words), dtype=bool)
    for chunk in output.alignments[0]:
        if chunk.type == "equal":
            found[chunk.ref_start_idx : chunk.ref_end_idx] = True
    covered = [end == start or found[start:end].mean() >= 0.5 for start, end in spans]
    names = list(ids) if ids is not None else [str(i) for i in range(len(references))]
    errors = output.substitutions + output.deletions + output.insertions
    return Score(
        wer=errors / len(words),
        coverage=sum(covered) / len(covered),
        words=len(words),
        errors=errors,
        deletions=output.deletions,
        insertions=output.insertions,
        substitutions=output.substitutions,
        missed=tuple(name for name, ok in zip(names, covered, strict=True) if not ok),
    )
