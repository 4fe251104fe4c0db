"""One faster-whisper wrapper for the CPU and the GPU.

The same code runs in the Vertex job on a GPU (``float16``) and locally on the CPU (``int8``);
only the :class:`~podscribe.transcription.model.EngineConfig` differs. The model loads once per
process (:mod:`podscribe.transcription.model`) and faster-whisper is imported lazily, so
importing this module is cheap.

Audio is transcribed in windows of a few minutes (:mod:`podscribe.transcription.windows` plans
them as whole batches of the chunks one pass over the episode would make), each decoded by the
batched pipeline until every stretch of its speech is covered
(:mod:`podscribe.transcription.decoder`: Whisper ends chunks early on real speech, and what it
skipped is decoded again, as sequential decoding would).

Whisper invents text over silence and loops on long audio. Against that: Silero VAD skips
non-speech, earlier text is never fed back as a prompt (``condition_on_previous_text=False``),
and the usual thresholds apply. The batched pipeline decodes at one temperature without
faster-whisper's fallback, so its segments are checked here: one that looks like silence
(high no-speech probability, low log probability) is dropped, and one whose text compresses
too well (a repetition loop) is decoded again sequentially, with temperature fallback.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import itertools
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from podscribe.transcription.decoder import CoveringDecoder
from podscribe.transcription.model import EngineConfig, load_model
from podscribe.transcription.segments import Segment, Word
from podscribe.transcription.windows import (
    CHUNK_SAMPLES,
    SAMPLE_RATE,
    WindowPlan,
    cut_point,
    fixed_chunks,
    plan_windows_from,
)

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = ["TranscribedWindow", "Transcriber", "compression_ratio"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranscribedWindow:
    """One window of the audio; its segments come lazily, as faster-whisper finishes them.

    Attributes:
        start: where the window begins (seconds).
        end: where it ends; the next window starts here.
        language: the language used for the window.
        segments: the window's segments, timestamps relative to the episode.
    """

    start: float
    end: float
    language: str
    segments: Iterator[Segment]


class Transcriber:
    """faster-whisper with podscribe's options.

    Args:
        config: model, device and decoding options.
        model: an already loaded model (tests); loaded through :func:`load_model` otherwise.
    """

    def __init__(self, config: EngineConfig, *, model: WhisperModel | None = None) -> None:
        self.config = config
        self.model = model or load_model(
            config.model, config.device, config.compute_type, config.cpu_threads, config.cache_dir
        )

    def windows(
        self,
        audio: np.ndarray,
        *,
        start_seconds: float = 0.0,
        window_seconds: float = 300.0,
        initial_prompt: str | None = None,
        language: str | None = None,
    ) -> Iterator[TranscribedWindow]:
        """Transcribe ``audio`` from ``start_seconds`` on, one window at a time.

        Consume each window's segments before asking for the next window.

        Args:
            audio: 16 kHz mono float32 samples of the whole episode.
            start_seconds: where to begin (a checkpoint's end on a retried attempt).
            window_seconds: about how much audio a window holds (rounded to whole batches of
                chunks when batched with VAD); the last window may be up to half as long again,
                so no window is a short remainder.
            initial_prompt: words to expect (the show and the title: names spelled right), given
                to the episode's opening only: the first chunk when batched, the first 30 s
                when sequential. Applied to every chunk it made the batched pipeline end chunks
                early and lose speech (see docs/transcription.md).
            language: the language; default the config's, else detected on the first window.

        Yields:
            Windows in order, covering the audio from ``start_seconds`` to the end.
        """
        language = language or self.config.language
        first = round(start_seconds * SAMPLE_RATE)  # a window's end, to the sample
        for start, end, plan in self._window_plans(audio, first, window_seconds):
            if start > first:
                _return_freed_memory()
            offset = start / SAMPLE_RATE
            piece = audio[start:end]  # a view: no copy of the samples
            prompt = initial_prompt if start == 0 else None  # the opening names the show
            if plan is None:
                segments, detected = self._transcribe(piece, prompt, language)
            else:
                segments, detected = self._transcribe_planned(piece, plan, prompt, language)
            language = language or detected
            yield TranscribedWindow(
                start=offset,
                end=end / SAMPLE_RATE,
                language=detected,
                segments=_shifted(segments, offset),
            )

    def _window_plans(
        self, audio: np.ndarray, first: int, window_seconds: float
    ) -> Iterator[tuple[int, int, WindowPlan | None]]:
        """Where the windows start and end (samples), with their chunks when planned."""
        guards = self.config.guards
        if self.config.batch_size > 0 and self.config.vad_filter:
            for plan in plan_windows_from(
                audio,
                first,
                window_seconds=window_seconds,
                batch_size=self.config.batch_size,
                min_silence_ms=guards.min_silence_ms,
                speech_pad_ms=guards.speech_pad_ms,
            ):
                yield plan.start, plan.end, plan
            return
        # Without VAD or batching there are no chunks to keep whole: end in a pause.
        total, window = audio.shape[0], max(int(window_seconds * SAMPLE_RATE), CHUNK_SAMPLES)
        position = first
        while position < total:
            last = position + window + window // 2 >= total  # no short remainder
            end = total if last else cut_point(audio, position + window)
            yield position, end, None
            position = end

    def _transcribe_planned(
        self,
        audio: np.ndarray,
        plan: WindowPlan,
        initial_prompt: str | None,
        language: str | None,
    ) -> tuple[Iterator[Segment], str]:
        """Decode the planned chunks as clips of the speech laid end to end, times mapped back.

        This is what the batched pipeline does after its own VAD; faster-whisper's
        ``restore_speech_timestamps`` maps times back onto ``audio``.

        Args:
            audio: the window's samples (``plan.start`` to ``plan.end`` of the episode).
            initial_prompt: given to the first chunk alone (see :meth:`windows`).
        """
        from faster_whisper.transcribe import restore_speech_timestamps

        pieces = [
            {"start": first - plan.start, "end": last - plan.start}
            for chunk in plan.chunks
            for first, last in chunk
        ]
        if not pieces:  # nothing but silence: nothing to decode
            return iter(()), language or "en"
        speech = np.concatenate([audio[piece["start"] : piece["end"]] for piece in pieces])
        laid = np.cumsum(
            [0] + [sum(last - first for first, last in chunk) for chunk in plan.chunks]
        )
        language = self._language(speech, language)
        options = {**self._options(None, language), "vad_filter": False}
        raw = self._covering(options).decode(
            speech,
            [(int(first), int(last)) for first, last in itertools.pairwise(laid)],
            first_prompt=initial_prompt,
        )
        restored = restore_speech_timestamps(raw, pieces, SAMPLE_RATE)
        return self._checked(restored, audio, options, language), language

    def _covering(self, options: dict[str, Any]) -> CoveringDecoder:
        guards = self.config.guards
        return CoveringDecoder(
            self.model,
            batch_size=self.config.batch_size,
            uncovered_seconds=guards.uncovered_seconds,
            max_rounds=guards.max_rounds,
            options={key: value for key, value in options.items() if key != "initial_prompt"},
        )

    def _language(self, audio: np.ndarray, language: str | None) -> str:
        """The language asked for; else English for an English-only model; else detected.

        Detected once per window, before decoding, so every round of it decodes alike.
        """
        if language:
            return language
        if not self.model.model.is_multilingual:
            return "en"
        detected, _, _ = self.model.detect_language(audio[:CHUNK_SAMPLES])
        return str(detected)

    def _options(self, initial_prompt: str | None, language: str | None) -> dict[str, Any]:
        config, guards = self.config, self.config.guards
        return {
            "language": language,
            "beam_size": config.beam_size,
            "word_timestamps": config.word_timestamps,
            "vad_filter": config.vad_filter,
            "vad_parameters": {
                "min_silence_duration_ms": guards.min_silence_ms,
                "speech_pad_ms": guards.speech_pad_ms,
            },
            "initial_prompt": initial_prompt,
            "compression_ratio_threshold": guards.compression_ratio_threshold,
            "log_prob_threshold": guards.log_prob_threshold,
            "no_speech_threshold": guards.no_speech_threshold,
            "condition_on_previous_text": False,
        }

    def _transcribe(
        self, audio: np.ndarray, initial_prompt: str | None, language: str | None
    ) -> tuple[Iterator[Segment], str]:
        config, guards = self.config, self.config.guards
        common = self._options(initial_prompt, language)
        if config.batch_size > 0:  # without VAD (with it, windows are planned)
            language = self._language(audio, language)
            options = {**self._options(None, language), "vad_filter": False}
            raw = self._covering(options).decode(
                audio, fixed_chunks(audio.shape[0]), first_prompt=initial_prompt
            )
            return self._checked(raw, audio, options, language), language
        raw, info = self.model.transcribe(
            audio,
            temperature=list(guards.temperatures),
            hallucination_silence_threshold=guards.hallucination_silence_threshold
            if config.word_timestamps
            else None,
            **common,
        )
        return (_convert(s) for s in raw), info.language

    def _checked(
        self, raw: Iterator[Any], audio: np.ndarray, options: dict[str, Any], language: str
    ) -> Iterator[Segment]:
        """Apply the thresholds the batched pipeline does not (see the module docstring)."""
        guards = self.config.guards
        for item in raw:
            segment = _convert(item)
            if (
                segment.no_speech_prob > guards.no_speech_threshold
                and segment.avg_logprob < guards.log_prob_threshold
            ):
                log.info("dropped a segment that looks like silence", extra={"text": segment.text})
                continue
            if compression_ratio(segment.text) > guards.compression_ratio_threshold:
                log.info("decoding a repetitive segment again", extra={"text": segment.text})
                yield from self._redo_sequentially(audio, segment, options, language)
                continue
            yield segment

    def _redo_sequentially(
        self, audio: np.ndarray, segment: Segment, options: dict[str, Any], language: str
    ) -> Iterator[Segment]:
        first, last = int(segment.start * SAMPLE_RATE), int(segment.end * SAMPLE_RATE)
        redo_options = {**options, "language": language, "vad_filter": False}
        redo_options.pop("clip_timestamps", None)
        raw, _ = self.model.transcribe(
            audio[first:last],
            temperature=list(self.config.guards.redo_temperatures),
            **redo_options,
        )
        redone = [_convert(item).shifted(segment.start) for item in raw]
        text = " ".join(item.text for item in redone)
        if text and compression_ratio(text) < compression_ratio(segment.text):
            yield from redone
        else:
            # Speech that really repeats itself (a chorus, a chant) compresses well too; when
            # decoding again reads nothing less repetitive, the first reading stands.
            log.info("kept a repetitive segment", extra={"text": segment.text})
            yield segment


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to trim
        return None


def _return_freed_memory() -> None:
    """Hand memory freed by the last window back to the system.

    glibc keeps freed heap memory for reuse, and the large short-lived arrays of one window (VAD
    activations, mel features, decoder state) fragment it: measured on ten minutes of audio,
    peak RSS crept up by about 50 MB per window without this and stayed flat with it.
    """
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def compression_ratio(text: str) -> float:
    """How well text gzips: Whisper's own measure of a repetition loop."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _convert(item: Any) -> Segment:
    words = tuple(
        Word(
            start=round(float(w.start), 3),
            end=round(float(w.end), 3),
            text=str(w.word).strip(),
            probability=round(float(w.probability), 4),
        )
        for w in (item.words or ())
        if str(w.word).strip()
    )
    return Segment(
        start=round(float(item.start), 3),
        end=round(float(item.end), 3),
        text=str(item.text).strip(),
        words=words,
        avg_logprob=float(item.avg_logprob),
        no_speech_prob=float(item.no_speech_prob),
    )


def _shifted(segments: Iterator[Segment], seconds: float) -> Iterator[Segment]:
    """Non-empty segments moved ``seconds`` later (a function, so each window keeps its own)."""
    return (segment.shifted(seconds) for segment in segments if segment.text)
