"""Where the job's windows and the batched pipeline's chunks fall in an episode.

Audio is transcribed in windows of a few minutes rather than in one call. faster-whisper's
batched pipeline computes the mel features of every chunk before decoding the first one, and
its voice activity detection copies the whole audio twice over, so one call over a six-hour
episode would hold gigabytes beside the audio; a window bounds that to a few megabytes, gives
the job a natural checkpoint boundary, and lets a retried attempt start at any window edge.

A window must not change what the decoder hears. The batched pipeline packs the speech that
Silero VAD finds into chunks of up to 30 seconds, greedily from the start; a window that began
its own packing at an arbitrary point would cut chunks differently from one pass over the whole
episode, and Whisper reads words at chunk edges differently. So :func:`plan_windows` runs the
same VAD and the same greedy packing a stretch at a time, keeps each stretch's complete chunks
and starts the next stretch where the unfinished one starts; a window is a whole number of
batches of those chunks, and the next window starts exactly where its first chunk starts.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CHUNK_SAMPLES",
    "CHUNK_SECONDS",
    "SAMPLE_RATE",
    "Chunk",
    "WindowPlan",
    "cut_point",
    "fixed_chunks",
    "plan_windows",
    "plan_windows_from",
    "speech_chunks",
]

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 30.0  # what Whisper hears at once
CHUNK_SAMPLES = int(CHUNK_SECONDS * SAMPLE_RATE)
_VAD_FRAME = 512  # samples Silero VAD judges at a time
_CUT_SEARCH_SECONDS = 10.0
_CUT_FRAME_SECONDS = 0.05
_CUT_SMOOTH_FRAMES = 8  # 400 ms

Chunk = tuple[tuple[int, int], ...]
"""One chunk of the batched pipeline: its pieces of speech, (first, last) samples of the episode."""


@dataclass(frozen=True)
class WindowPlan:
    """One window of the batched pipeline's chunks, planned ahead.

    Attributes:
        start: the window's first sample in the episode.
        end: where it ends: where the next window's first chunk starts, or the episode's end.
        chunks: the chunks it decodes, in order.
    """

    start: int
    end: int
    chunks: tuple[Chunk, ...]


def plan_windows(
    audio: np.ndarray,
    start: int,
    *,
    window_seconds: float,
    batch_size: int,
    min_silence_ms: int,
    speech_pad_ms: int,
) -> Iterator[WindowPlan]:
    """Split the episode into windows of whole chunks, the chunks one pass would make.

    Speech is found and packed as ``BatchedInferencePipeline`` does it over the whole episode
    (see :func:`speech_chunks`), a stretch at a time: each stretch keeps its complete chunks and
    the next one starts where its unfinished last chunk starts. A window takes a whole number
    of batches of chunks, about ``window_seconds`` of audio: a batch left part-empty at every
    window would cost a GPU a whole batch's time. The last window takes a remainder of up to
    half a window more, so no window is a short leftover.

    Args:
        audio: the whole episode, 16 kHz mono.
        start: where to begin: 0, or where an earlier window ended (a chunk's start).
        window_seconds: about how much audio a window holds (at least a batch of chunks).
        batch_size: chunks decoded together.
        min_silence_ms: VAD: silence this long splits speech.
        speech_pad_ms: VAD: padding kept around speech.
    """
    total = audio.shape[0]
    stretch = max(int(window_seconds * SAMPLE_RATE), CHUNK_SAMPLES)
    per_window = batch_size * max(1, round(stretch / CHUNK_SAMPLES / batch_size))
    vad = {"min_silence_ms": min_silence_ms, "speech_pad_ms": speech_pad_ms}
    pending: collections.deque[Chunk] = collections.deque()
    scanned = start  # complete chunks are known up to here; VAD goes on from here
    position = start
    while position < total:
        while scanned < total and len(pending) <= per_window + per_window // 2:
            stop = min(total, scanned + stretch)
            chunks = speech_chunks(audio, scanned, stop, **vad)
            if stop == total:
                pending.extend(chunks)
                scanned = total
            elif len(chunks) >= 2:
                pending.extend(chunks[:-1])  # the last may go on past the stretch
                scanned = chunks[-1][0][0]
            else:  # too little speech for two chunks: end in a pause and keep what is there
                cut = cut_point(audio, stop)
                pending.extend(speech_chunks(audio, scanned, cut, **vad))
                scanned = cut
        rest = scanned >= total and len(pending) <= per_window + per_window // 2
        taken = tuple(pending.popleft() for _ in range(len(pending) if rest else per_window))
        end = pending[0][0][0] if pending else scanned
        yield WindowPlan(start=position, end=end, chunks=taken)
        position = end


def plan_windows_from(
    audio: np.ndarray,
    resume: int,
    *,
    window_seconds: float,
    batch_size: int,
    min_silence_ms: int,
    speech_pad_ms: int,
) -> Iterator[WindowPlan]:
    """The windows one pass from the episode's start makes, from the one starting at ``resume``.

    Planning afresh at a window's end is not the same: Silero VAD carries state from frame to
    frame and each stretch is scanned from where the last one left off, so a plan begun at a
    later window's start can move chunk edges by a frame, and Whisper reads the words at those
    edges differently (a job resumed from its second checkpoint did not match a run that went
    through). So the plan is replayed from the start (VAD only, nothing decoded) up to
    ``resume``. Where ``resume`` is no window's start (the window or batch settings changed
    between attempts), planning begins afresh there.
    """
    plan_from = functools.partial(
        plan_windows,
        audio,
        window_seconds=window_seconds,
        batch_size=batch_size,
        min_silence_ms=min_silence_ms,
        speech_pad_ms=speech_pad_ms,
    )
    replayed = plan_from(0)
    for plan in replayed:
        if plan.start == resume:
            yield plan
            yield from replayed
            return
        if plan.start > resume:
            break
    yield from plan_from(resume)


def speech_chunks(
    audio: np.ndarray, start: int, stop: int, *, min_silence_ms: int, speech_pad_ms: int
) -> list[Chunk]:
    """Find the speech in ``audio[start:stop]`` and pack it as ``BatchedInferencePipeline`` does.

    The pipeline's own VAD options and its greedy packing (``collect_chunks``): a chunk takes
    speech until the next piece would make it longer than 30 seconds. Silero VAD judges frames
    of 512 samples counted from the start of what it is given, so it is given audio from the
    frame boundary at or before ``start``, on the same frames as a run over the whole episode
    (off by half a frame, it moved speech edges by 16 ms and split a chunk differently).

    Returns:
        The chunks, their pieces in samples of the episode; the last may be unfinished.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    aligned = start - start % _VAD_FRAME
    found = get_speech_timestamps(
        audio[aligned:stop],
        VadOptions(
            max_speech_duration_s=CHUNK_SECONDS,
            min_silence_duration_ms=min_silence_ms,
            speech_pad_ms=speech_pad_ms,
        ),
        sampling_rate=SAMPLE_RATE,
    )
    chunks: list[list[tuple[int, int]]] = []
    filled = CHUNK_SAMPLES + 1  # the first piece opens a chunk
    for piece in found:
        first, last = max(aligned + piece["start"], start), aligned + piece["end"]
        if last <= first:
            continue
        if filled + last - first > CHUNK_SAMPLES:
            chunks.append([])
            filled = 0
        chunks[-1].append((first, last))
        filled += last - first
    return [tuple(chunk) for chunk in chunks]


def fixed_chunks(samples: int) -> list[tuple[int, int]]:
    """Back-to-back 30-second clips (samples): the batched pipeline's input when VAD is off."""
    starts = range(0, samples, CHUNK_SAMPLES)
    return [(first, min(first + CHUNK_SAMPLES, samples)) for first in starts]


def cut_point(audio: np.ndarray, nominal: int) -> int:
    """The middle of the quietest stretch in the seconds before ``nominal``: a pause.

    Energy is summed over a few hundred milliseconds, so the cut lands in a pause between
    phrases, not in the short closure of a consonant inside a word.
    """
    frame = int(_CUT_FRAME_SECONDS * SAMPLE_RATE)
    low = max(0, nominal - int(_CUT_SEARCH_SECONDS * SAMPLE_RATE))
    span = audio[low:nominal]
    count = span.shape[0] // frame
    if count < _CUT_SMOOTH_FRAMES + 1:
        return nominal
    energy = np.square(span[: count * frame].reshape(count, frame)).mean(axis=1)
    smoothed = np.convolve(energy, np.ones(_CUT_SMOOTH_FRAMES), mode="valid")
    quietest = int(np.argmin(smoothed)) + _CUT_SMOOTH_FRAMES // 2
    return low + quietest * frame + frame // 2
