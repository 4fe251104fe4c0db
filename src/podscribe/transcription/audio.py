"""Decode an episode to 16 kHz mono float32, as a stream that stops at the longest episode.

PyAV, as in faster-whisper's own decoder: it bundles FFmpeg's libraries, so the job's image needs
no ffmpeg binary, and it reads what podcasts ship (MP3, AAC, Opus in WebM or Ogg, FLAC, WAV, ...).

Streamed, unlike :func:`faster_whisper.decode_audio`, which decodes the whole file before anyone
can look at its length: the decoded audio (64 KB a second) is the one thing that grows with the
episode, and a file's size says little about it. Seven hours of Opus at 6 kbit/s fit in 19 MB
and decode to 1.6 GB (4 GB at faster-whisper's peak, with its s16 buffer and float copies).
A container need not declare its duration (WebM written live declares none) and may lie, so the
limit applies to what has been decoded: frames are decoded, resampled and written one group at a
time into a single float32 array, and decoding stops with ``too_long`` before the first group
that would take it past the limit. The array never holds more than the limit's samples.

The samples equal faster-whisper's (same resampler to s16, over the same groups of frames, then
scaled by 1/32768), so transcripts do not change.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from podscribe.errors import DecodeFailedError, TooLongError
from podscribe.transcription.windows import SAMPLE_RATE

if TYPE_CHECKING:
    import av.audio.frame
    import av.container

__all__ = ["SAMPLE_RATE", "decode_audio_file", "probe_duration"]

# Frames are resampled in groups of this many input samples, as faster-whisper groups them:
# the same groups give the same samples. At 48 kHz a group is about ten seconds (2 MB mono).
_GROUP_SAMPLES = 500_000
# Without a plausible declared duration the buffer starts at a minute and doubles: a handful of
# reallocations for six hours. Growth uses realloc, which for blocks this large moves pages
# (mremap on Linux) instead of copying them, so growing does not double the peak.
_FIRST_CAPACITY = 60 * SAMPLE_RATE
# A declared duration is rounded and the resampler's flush adds a few samples: a second of slack
# saves a reallocation at the very end.
_SLACK = SAMPLE_RATE
_SCALE = np.float32(1 / 32768)  # s16 to [-1, 1), exactly as faster-whisper scales


def probe_duration(path: Path) -> float | None:
    """The duration the container declares, without decoding; None when it declares none.

    Raises:
        DecodeFailedError: the file cannot be opened as media at all, or holds no audio.
    """
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return _declared_seconds(container)
    except av.FFmpegError as error:
        raise DecodeFailedError(
            f"the file could not be decoded as audio: {_reason(error)}"
        ) from None


def decode_audio_file(path: Path, *, max_seconds: float | None = None) -> np.ndarray:
    """Decode a file to 16 kHz mono float32, stopping as soon as it passes ``max_seconds``.

    Args:
        path: the media file.
        max_seconds: the longest audio accepted; None decodes whatever the file holds (only for
            files that are trusted to be short, such as test fixtures).

    Returns:
        One float32 array of the samples, owning its memory.

    Raises:
        DecodeFailedError: the file cannot be decoded or holds no audio.
        TooLongError: the file declares, or decodes to, more than ``max_seconds``.
    """
    import av

    limit = None if max_seconds is None else math.floor(max_seconds * SAMPLE_RATE)
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            declared = _declared_seconds(container)
            if max_seconds is not None and declared is not None and declared > max_seconds:
                raise TooLongError(
                    _too_long(f"the audio file says {_minutes(declared)}", max_seconds)
                )
            samples = _Samples(_first_capacity(declared, limit), max_seconds)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            try:
                for frame in _resampled(_grouped(_valid(container.decode(audio=0))), resampler):
                    samples.append(frame.to_ndarray().reshape(-1))
            finally:
                # PyAV frees some of the resampler's objects only on a collection
                # (faster-whisper issue 390); the job decodes once, so the pause is cheap.
                del resampler
                gc.collect()
    except (av.FFmpegError, ValueError, IndexError) as error:
        raise DecodeFailedError(f"the audio could not be decoded: {_reason(error)}") from None
    audio = samples.result()
    if audio.size == 0:
        raise DecodeFailedError("the file decoded to no audio at all")
    return audio


class _Samples:
    """A float32 array that grows in place up to a limit, filled from s16 frames."""

    def __init__(self, capacity: int, max_seconds: float | None) -> None:
        self._array = np.empty(capacity, dtype=np.float32)
        self._size = 0
        self._max_seconds = max_seconds
        self._limit = None if max_seconds is None else math.floor(max_seconds * SAMPLE_RATE)

    def append(self, chunk: np.ndarray) -> None:
        """Scale ``chunk`` (s16) into the array.

        Raises:
            TooLongError: the chunk would take the array past the limit (it is left unchanged,
                and the caller decodes no further).
        """
        end = self._size + chunk.shape[0]
        if self._max_seconds is not None and self._limit is not None and end > self._limit:
            # Let go of the samples now: the traceback keeps this object alive for a while.
            self._array = np.empty(0, dtype=np.float32)
            raise TooLongError(
                _too_long(
                    f"decoding stopped: the audio runs past {_minutes(self._max_seconds)}",
                    self._max_seconds,
                )
            )
        if end > self._array.shape[0]:
            capacity = max(end, 2 * self._array.shape[0])
            if self._limit is not None:
                capacity = min(capacity, self._limit)
            # In place (realloc): no view of the array outlives a call, so refcheck is moot.
            self._array.resize(capacity, refcheck=False)
        target = self._array[self._size : end]
        np.multiply(chunk, _SCALE, out=target, casting="unsafe")
        self._size = end

    def result(self) -> np.ndarray:
        """The samples written, the unused tail handed back (realloc shrinks in place)."""
        self._array.resize(self._size, refcheck=False)
        return self._array


def _first_capacity(declared: float | None, limit: int | None) -> int:
    """Room for the declared duration when it is plausible, else for a first minute."""
    if declared is not None and declared > 0:
        capacity = math.ceil(declared * SAMPLE_RATE) + _SLACK
    else:
        capacity = _FIRST_CAPACITY
    return capacity if limit is None else max(1, min(capacity, limit))


def _declared_seconds(container: av.container.InputContainer) -> float | None:
    if not container.streams.audio:
        raise DecodeFailedError("the file holds no audio stream")
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return None


def _valid(frames: Iterator[av.audio.frame.AudioFrame]) -> Iterator[av.audio.frame.AudioFrame]:
    """Skip frames FFmpeg finds invalid, as faster-whisper does (one bad packet loses ms)."""
    import av

    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.InvalidDataError:
            continue


def _grouped(
    frames: Iterator[av.audio.frame.AudioFrame],
) -> Iterator[av.audio.frame.AudioFrame]:
    """Frames regrouped by ``_GROUP_SAMPLES``, timestamps dropped (as faster-whisper does)."""
    import av

    fifo = av.AudioFifo()
    for frame in frames:
        frame.pts = None  # a gap or overlap in a broken file's timestamps is not an error
        fifo.write(frame)
        if fifo.samples >= _GROUP_SAMPLES:
            group = fifo.read()
            if group is not None:
                yield group
    if fifo.samples > 0:
        group = fifo.read()
        if group is not None:
            yield group


def _resampled(
    frames: Iterator[av.audio.frame.AudioFrame], resampler: av.AudioResampler
) -> Iterator[av.audio.frame.AudioFrame]:
    for frame in itertools.chain(frames, [None]):  # None flushes the resampler
        yield from resampler.resample(frame)


def _too_long(what: str, max_seconds: float) -> str:
    return f"{what}; episodes up to {_minutes(max_seconds)} are accepted"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes"


def _reason(error: Exception) -> str:
    """PyAV's reason without the file's path (a temporary name means nothing to a caller)."""
    return str(getattr(error, "strerror", None) or error.__class__.__name__)
