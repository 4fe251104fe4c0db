"""The streamed decoder: faster-whisper's samples under the limit, a stop past it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from podscribe.errors import DecodeFailedError, TooLongError
from podscribe.transcription.audio import SAMPLE_RATE, decode_audio_file
from tests.fakes.long_opus import make_long_opus
from tests.fakes.speech import make_episode

JFK = Path(__file__).resolve().parents[3] / "shared" / "data" / "jfk.flac"


@pytest.mark.parametrize("codec", ["mp3", "aac"])
def test_audio_under_the_limit_decodes_to_faster_whispers_samples(tmp_path: Path, codec: str):
    encoded, _ = make_episode(tmp_path, seconds=12, codec=codec)
    for path in (JFK, encoded):
        expected = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
        audio = decode_audio_file(path, max_seconds=60)
        assert audio.dtype == np.float32 and audio.flags.owndata
        np.testing.assert_array_equal(audio, expected)  # transcripts cannot change


def test_a_stream_without_a_duration_grows_past_its_first_buffer_unchanged(tmp_path: Path):
    # Two minutes, no declared duration: the buffer starts at one minute and grows in place.
    path = make_long_opus(tmp_path / "two.webm", 120, declared_seconds=None)
    expected = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    np.testing.assert_array_equal(decode_audio_file(path, max_seconds=130), expected)


@pytest.mark.parametrize("declared", [None, 30.0], ids=["no-duration", "header-says-30s"])
def test_decoding_stops_past_the_limit(tmp_path: Path, declared: float | None):
    path = make_long_opus(tmp_path / "long.webm", 300, declared_seconds=declared)
    with pytest.raises(TooLongError, match="decoding stopped"):
        decode_audio_file(path, max_seconds=60)


def test_a_declared_duration_past_the_limit_is_too_long_before_decoding(tmp_path: Path):
    path = make_long_opus(tmp_path / "said.webm", 20, declared_seconds=7200)
    with pytest.raises(TooLongError, match="the audio file says 120 minutes"):
        decode_audio_file(path, max_seconds=600)


def test_broken_audio_is_decode_failed_not_too_long(tmp_path: Path):
    page = tmp_path / "page.webm"
    page.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 4000)
    with pytest.raises(DecodeFailedError):
        decode_audio_file(page, max_seconds=60)
