"""The GE2E voice encoder (resemblyzer's pretrained weights): audio in, voice prints out.

No torch and no librosa: the job image stays light. The network (40 mel bands -> three LSTM
layers of 256 -> a linear 256 -> 256, ReLU, L2 norm) runs on onnxruntime, which faster-whisper
already brings, from a graph built in memory (``podscribe.speakers.onnx_graph``). Measured on
the 2-core CPU, 512 partials: onnxruntime 0.8 s, the same forward pass in numpy (input
projections batched over all frames, 160 recurrent steps batched over partials) 2.4 s, torch
0.9 s.

The weights and the mel filterbank come from ``voice_encoder.npz`` next to this module, made by
``python -m tools.voice_encoder`` from resemblyzer's wheel (Apache-2.0; provenance inside).
The front end matches resemblyzer's ``wav_to_mel_spectrogram``: librosa's power mel spectrogram
(400-sample periodic Hann window, 160-sample hop, centred with zero padding), not its log.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np

from podscribe.speakers.onnx_graph import encoder_model

__all__ = [
    "FRAMES_PER_SECOND",
    "HOP_SAMPLES",
    "PARTIAL_FRAMES",
    "SAMPLE_RATE",
    "VoiceEncoder",
    "load_encoder",
    "mel_frames",
]

SAMPLE_RATE = 16_000
HOP_SAMPLES = 160  # 10 ms
WINDOW_SAMPLES = 400  # 25 ms
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_SAMPLES
PARTIAL_FRAMES = 160  # the 1.6 s the encoder was trained on
_BATCH = 128  # partials per run: bounded memory; larger batches measured no faster
_WEIGHTS = "voice_encoder.npz"


class VoiceEncoder:
    """Embeds 1.6-second partials of mel frames as unit-length 256-dimensional voice prints.

    Args:
        weights: the arrays of ``voice_encoder.npz``.
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        import onnxruntime  # type: ignore[import-untyped]  # heavy: only when labelling

        self.filterbank = weights["mel/filterbank"].T.astype(np.float32)  # (201, 40)
        self.provenance: dict[str, str] = json.loads(str(weights["provenance"]))
        self._session = onnxruntime.InferenceSession(
            encoder_model(weights), providers=["CPUExecutionProvider"]
        )

    def embed(self, partials: np.ndarray) -> np.ndarray:
        """Voice prints of mel partials.

        Args:
            partials: ``(count, frames, 40)`` float32 mel frames (as :func:`mel_frames`).

        Returns:
            ``(count, 256)`` float32, each row of unit length (all zeros for silence the
            network maps to nothing).
        """
        out = np.empty((partials.shape[0], 256), dtype=np.float32)
        for start in range(0, partials.shape[0], _BATCH):
            batch = np.ascontiguousarray(partials[start : start + _BATCH], dtype=np.float32)
            (raw,) = self._session.run(["raw"], {"mels": batch})
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            out[start : start + batch.shape[0]] = np.divide(
                raw, norms, out=np.zeros_like(raw), where=norms > 0
            )
        return out


def mel_frames(audio: np.ndarray, filterbank: np.ndarray) -> np.ndarray:
    """The power mel spectrogram the encoder expects, one row per 10 ms.

    Args:
        audio: 16 kHz mono float32 samples.
        filterbank: ``(201, 40)``, the encoder's :attr:`VoiceEncoder.filterbank`.

    Returns:
        ``(1 + len(audio) // 160, 40)`` float32: frame ``i`` is centred on sample ``160 * i``.
    """
    half = WINDOW_SAMPLES // 2
    count = 1 + audio.shape[0] // HOP_SAMPLES
    window = _hann()
    out = np.empty((count, filterbank.shape[1]), dtype=np.float32)
    step = 8192  # frames per FFT call: bounded memory on long episodes (no padded copy)
    for first in range(0, count, step):
        last = min(count, first + step)
        low = first * HOP_SAMPLES - half  # the chunk's samples, zeros beyond the audio's ends
        piece = np.zeros((last - first - 1) * HOP_SAMPLES + WINDOW_SAMPLES, dtype=np.float32)
        source = audio[max(0, low) : low + piece.shape[0]]
        piece[max(0, -low) : max(0, -low) + source.shape[0]] = source
        frames = np.lib.stride_tricks.as_strided(
            piece,
            shape=(last - first, WINDOW_SAMPLES),
            strides=(piece.strides[0] * HOP_SAMPLES, piece.strides[0]),
            writeable=False,
        )
        spectrum = np.fft.rfft(frames * window, axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        out[first:last] = power @ filterbank
    return out


@functools.cache
def _hann() -> np.ndarray:
    """The periodic Hann window (``scipy.signal.get_window("hann", 400)``)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_SAMPLES) / WINDOW_SAMPLES)).astype(
        np.float32
    )


@functools.cache
def load_encoder() -> VoiceEncoder:
    """The encoder with the packaged weights, loaded once per process."""
    with (
        resources.files(__package__).joinpath(_WEIGHTS).open("rb") as handle,
        np.load(handle, allow_pickle=False) as archive,
    ):
        return VoiceEncoder({name: archive[name] for name in archive.files})
