"""The numpy voice encoder gives resemblyzer's own voice prints (a known answer).

The reference numbers in ``fixtures/speakers_encoder_reference.json`` were computed in a
scratch virtual environment with ``resemblyzer==0.1.4`` on ``torch==2.13.0`` (CPU) and
librosa 0.11: ``wav_to_mel_spectrogram`` of :func:`synthetic_voice`, cut into 160-frame
partials every 80 frames, through ``VoiceEncoder.forward``. The waveform is made here from a
seeded generator (numpy's PCG64 is stable across versions), so no audio is checked in.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from podscribe.speakers.encoder import PARTIAL_FRAMES, load_encoder, mel_frames
from tools.voice_encoder import CheckpointError, mel_filterbank, read_legacy_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "speakers_encoder_reference.json"


def synthetic_voice(seconds: float = 4.0, seed: int = 18) -> np.ndarray:
    """A buzzy, syllable-like harmonic tone with a gliding pitch and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voice = sum(
        np.sin(k * phase) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * k * t)) / k for k in range(1, 21)
    )
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    wave = voice * syllables + 0.05 * rng.normal(size=t.shape)
    samples: np.ndarray = (0.5 * wave / np.abs(wave).max()).astype(np.float32)
    return samples


def test_embeddings_match_resemblyzer() -> None:
    reference = json.loads(FIXTURE.read_text())
    expected = np.array(reference["embeddings"], dtype=np.float32)
    encoder = load_encoder()
    mels = mel_frames(synthetic_voice(), encoder.filterbank)
    partials = np.stack([mels[s : s + PARTIAL_FRAMES] for s in reference["partial_starts"]])

    got = encoder.embed(partials)

    assert got.shape == expected.shape == (4, 256)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    np.testing.assert_allclose(got, expected, atol=2e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batches_do_not_change_the_answer() -> None:
    encoder = load_encoder()
    mels = mel_frames(synthetic_voice(seconds=20.0, seed=5), encoder.filterbank)
    partials = np.stack([mels[s : s + PARTIAL_FRAMES] for s in range(0, 1800, 10)])  # 180

    together = encoder.embed(partials)
    alone = encoder.embed(partials[150:151])

    np.testing.assert_allclose(together[150], alone[0], atol=1e-5)


def test_mel_frames_are_centred_every_ten_milliseconds() -> None:
    encoder = load_encoder()
    assert mel_frames(np.zeros(16000, dtype=np.float32), encoder.filterbank).shape == (101, 40)


def test_the_packaged_filterbank_is_what_the_tool_builds() -> None:
    np.testing.assert_allclose(load_encoder().filterbank.T, mel_filterbank(), rtol=1e-6)


def test_provenance_names_the_wheel_and_licence() -> None:
    provenance = load_encoder().provenance
    assert provenance["licence"] == "Apache-2.0"
    assert provenance["wheel"] == "Resemblyzer-0.1.4-py3-none-any.whl"
    assert len(provenance["sha256"]) == 64


def test_the_checkpoint_reader_refuses_anything_but_tensors() -> None:
    # A pickle that would call os.system if it were loaded with pickle.load.
    hostile = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    with pytest.raises(CheckpointError, match=r"os\.system"):
        read_legacy_checkpoint(hostile)
    with pytest.raises(CheckpointError):
        read_legacy_checkpoint(b"\x80\x02K\x01.")  # a pickled 1: not the magic number


def test_mel_frames_are_the_same_across_chunk_boundaries() -> None:
    """Long audio is framed in chunks without a padded copy; the result is one whole pass."""
    filterbank = load_encoder().filterbank
    audio = np.random.default_rng(2).normal(0, 0.1, 16_000 * 100).astype(np.float32)
    padded = np.pad(audio, 200)
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    expected = (np.abs(np.fft.rfft(frames * window, axis=1)) ** 2).astype(np.float32) @ filterbank

    got = mel_frames(audio, filterbank)

    assert got.shape == expected.shape == (10_001, 40)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))
