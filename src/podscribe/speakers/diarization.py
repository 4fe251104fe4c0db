"""Who speaks when: speech regions, voice prints over sliding windows, speakers, turns.

    audio -> Silero VAD (faster_whisper.vad) -> speech regions
          -> 1.6 s windows every ``hop_seconds`` inside them -> GE2E voice prints (numpy)
          -> clustering (count estimated, or the hint) -> each 10 ms frame takes the speaker
             its covering windows are most alike -> short runs folded into their neighbours
          -> turns ``S1``, ``S2``, ... numbered in order of first appearance

Windows are as long as the encoder's training partials (1.6 s): shorter ones carry less of a
voice, longer ones blur turn changes. Scoring frames by every window that covers them is what
places a change with no silence before it to within a fraction of a window. The whole episode
is processed in one pass, so the result does not depend on checkpoints or resumption.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from podscribe.speakers.clustering import ClusteringOptions, cluster_voice_prints
from podscribe.speakers.encoder import (
    FRAMES_PER_SECOND,
    HOP_SAMPLES,
    PARTIAL_FRAMES,
    VoiceEncoder,
    load_encoder,
    mel_frames,
)

__all__ = ["DiarizationOptions", "SpeakerTurn", "diarize", "speech_regions"]

_TARGET_RMS = 10 ** (-30 / 20)  # resemblyzer normalises its input to -30 dBFS
_WINDOWS_PER_CALL = 1024  # 26 MB of partials at a time


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of one speaker's speech (seconds from the start of the episode)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class DiarizationOptions:
    """How diarization runs.

    Attributes:
        hop_seconds: step between the starts of consecutive 1.6 s windows.
        min_turn_seconds: a run of one speaker shorter than this joins its neighbours.
        vad_threshold: Silero's speech probability threshold.
        min_silence_ms: a pause this long splits speech regions.
        speech_pad_ms: padding Silero adds each side of a region.
        clustering: how voice prints become speakers.
    """

    hop_seconds: float = 1.0
    min_turn_seconds: float = 0.8
    vad_threshold: float = 0.5
    min_silence_ms: int = 300
    speech_pad_ms: int = 60
    clustering: ClusteringOptions = field(default_factory=ClusteringOptions)


def speech_regions(audio: np.ndarray, options: DiarizationOptions) -> list[tuple[int, int]]:
    """Where there is speech, as ``(first, last)`` sample indexes (Silero VAD)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps  # onnxruntime: lazy

    vad = VadOptions(
        threshold=options.vad_threshold,
        min_silence_duration_ms=options.min_silence_ms,
        speech_pad_ms=options.speech_pad_ms,
    )
    return [(int(r["start"]), int(r["end"])) for r in get_speech_timestamps(audio, vad)]


def diarize(
    audio: np.ndarray,
    *,
    expected: int | None = None,
    options: DiarizationOptions | None = None,
    encoder: VoiceEncoder | None = None,
) -> list[SpeakerTurn]:
    """Label who speaks when.

    Args:
        audio: 16 kHz mono float32 samples of the whole episode.
        expected: the number of speakers when the caller knows it; estimated otherwise.
        options: windows, smoothing, VAD and clustering settings.
        encoder: the voice encoder; the packaged one when omitted.

    Returns:
        Turns in time order, labelled ``S1``, ``S2``, ... by first appearance; empty when
        there is no speech.
    """
    options = options or DiarizationOptions()
    encoder = encoder or load_encoder()
    regions = speech_regions(audio, options)
    if not regions:
        return []
    mels = mel_frames(audio, encoder.filterbank)
    mels *= np.float32(_speech_gain(audio, regions) ** 2)  # power: the square of the gain
    frame_regions = [(a // HOP_SAMPLES, b // HOP_SAMPLES) for a, b in regions]
    starts = _window_starts(frame_regions, mels.shape[0], options.hop_seconds)
    prints = _embed_windows(encoder, mels, starts)
    _, centroids = cluster_voice_prints(prints, expected=expected, options=options.clustering)
    frame_speakers = _frame_speakers(prints @ centroids.T, starts, frame_regions, mels.shape[0])
    _fold_short_runs(frame_speakers, round(options.min_turn_seconds * FRAMES_PER_SECOND))
    return _turns(frame_speakers)


def _speech_gain(audio: np.ndarray, regions: list[tuple[int, int]]) -> float:
    """The gain that brings the speech to -30 dBFS RMS, as the encoder's training data was."""
    energy = sum(float(np.dot(audio[a:b], audio[a:b])) for a, b in regions)
    samples = sum(b - a for a, b in regions)
    rms = (energy / samples) ** 0.5 if samples else 0.0
    return _TARGET_RMS / rms if rms > 0 else 1.0


def _window_starts(regions: list[tuple[int, int]], total: int, hop_seconds: float) -> np.ndarray:
    """Window start frames covering every region; a short region gets one centred window."""
    hop = max(1, round(hop_seconds * FRAMES_PER_SECOND))
    latest = max(0, total - PARTIAL_FRAMES)
    starts: list[int] = []
    for first, last in regions:
        if last - first <= PARTIAL_FRAMES:
            starts.append(min(max(0, (first + last - PARTIAL_FRAMES) // 2), latest))
            continue
        region = list(range(first, last - PARTIAL_FRAMES + 1, hop))
        if region[-1] != last - PARTIAL_FRAMES:
            region.append(last - PARTIAL_FRAMES)  # the region's end is covered too
        starts.extend(min(s, latest) for s in region)
    return np.array(sorted(set(starts)), dtype=np.int64)


def _embed_windows(encoder: VoiceEncoder, mels: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Voice prints of the 160-frame windows at ``starts``, a bounded number at a time.

    A three-hour episode has some 10,000 windows: 275 MB of partials if stacked at once.
    An episode shorter than one window is zero-padded.
    """
    if mels.shape[0] < PARTIAL_FRAMES:
        mels = np.pad(mels, ((0, PARTIAL_FRAMES - mels.shape[0]), (0, 0)))
    prints = np.empty((starts.shape[0], 256), dtype=np.float32)
    for first in range(0, starts.shape[0], _WINDOWS_PER_CALL):
        chunk = starts[first : first + _WINDOWS_PER_CALL]
        prints[first : first + chunk.shape[0]] = encoder.embed(
            np.stack([mels[s : s + PARTIAL_FRAMES] for s in chunk])
        )
    return prints


def _frame_speakers(
    similarity: np.ndarray, starts: np.ndarray, regions: list[tuple[int, int]], total: int
) -> np.ndarray:
    """Each speech frame's speaker (-1 outside speech): best mean similarity of its windows."""
    speakers = similarity.shape[1]
    sums = np.zeros((total + 1, speakers))
    counts = np.zeros(total + 1)
    # Add each window's row over its span with a difference array, then integrate.
    np.add.at(sums, starts, similarity)
    np.add.at(sums, np.minimum(starts + PARTIAL_FRAMES, total), -similarity)
    np.add.at(counts, starts, 1.0)
    np.add.at(counts, np.minimum(starts + PARTIAL_FRAMES, total), -1.0)
    sums, counts = np.cumsum(sums, axis=0)[:total], np.cumsum(counts)[:total]
    best = np.argmax(sums, axis=1)
    frames = np.full(total, -1, dtype=np.int64)
    for first, last in regions:
        span = slice(first, min(last, total))
        covered = counts[span] > 0.5
        frames[span] = np.where(covered, best[span], -1)
    return frames


def _fold_short_runs(frames: np.ndarray, min_frames: int) -> None:
    """Give runs of one speaker shorter than ``min_frames`` to a neighbour, shortest first.

    The neighbour is the longer adjacent speech run; a run merged into it can make it long
    enough, or still short and due again. Silence (-1) is left alone, and a short run between
    silences keeps its speaker: there is no neighbour to give it to. Runs form a linked list
    and the short ones a heap, so an episode of thousands of runs folds in O(runs log runs).
    """
    runs = _runs(frames)
    start = [r[0] for r in runs]
    end = [r[1] for r in runs]
    speaker = [r[2] for r in runs]
    before = [i - 1 for i in range(len(runs))]
    after = [i + 1 if i + 1 < len(runs) else -1 for i in range(len(runs))]
    alive = [True] * len(runs)
    heap = [(end[i] - start[i], i) for i in range(len(runs)) if speaker[i] >= 0]
    heapq.heapify(heap)
    while heap:
        length, i = heapq.heappop(heap)
        if not alive[i] or length != end[i] - start[i] or length >= min_frames:
            continue
        neighbours = [j for j in (before[i], after[i]) if j >= 0 and speaker[j] >= 0]
        if not neighbours:
            continue
        target = max(neighbours, key=lambda j: (end[j] - start[j], -j))
        speaker[i] = speaker[target]
        for j in (before[i], after[i]):  # absorb the neighbours that now speak as i does
            if j >= 0 and speaker[j] == speaker[i]:
                start[i], end[i] = min(start[i], start[j]), max(end[i], end[j])
                alive[j] = False
                if j == before[i]:
                    before[i] = before[j]
                    if before[i] >= 0:
                        after[before[i]] = i
                else:
                    after[i] = after[j]
                    if after[i] >= 0:
                        before[after[i]] = i
        heapq.heappush(heap, (end[i] - start[i], i))
    for i in range(len(runs)):
        if alive[i]:
            frames[start[i] : end[i]] = speaker[i]


def _runs(frames: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, end, value)`` of each run of equal values."""
    if frames.size == 0:
        return []
    edges = np.flatnonzero(np.diff(frames)) + 1
    bounds = np.concatenate(([0], edges, [frames.size]))
    return [(int(a), int(b), int(frames[a])) for a, b in itertools.pairwise(bounds)]


def _turns(frames: np.ndarray) -> list[SpeakerTurn]:
    """Runs of speech frames as turns, clusters renamed ``S1, S2, ...`` by first appearance."""
    names: dict[int, str] = {}
    turns: list[SpeakerTurn] = []
    for start, end, cluster in _runs(frames):
        if cluster < 0:
            continue
        name = names.setdefault(cluster, f"S{len(names) + 1}")
        turns.append(
            SpeakerTurn(
                start=round(start / FRAMES_PER_SECOND, 3),
                end=round(end / FRAMES_PER_SECOND, 3),
                speaker=name,
            )
        )
    return turns
