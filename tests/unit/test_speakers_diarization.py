"""Diarization end to end on espeak-ng voices: turns, the count hint, edge cases, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from podscribe.speakers import SpeakerTurn, diarize
from podscribe.speakers.error_rate import diarization_error
from podscribe.transcription.audio import decode_audio_file
from tests.fakes.conversations import Conversation, make_conversation


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Conversation, np.ndarray]:
    made = make_conversation(tmp_path_factory.mktemp("voices"), speakers=2, turns=6, seed=5)
    return made, decode_audio_file(made.wav)


def _as_tuples(turns: list[SpeakerTurn]) -> list[tuple[float, float, str]]:
    return [(t.start, t.end, t.speaker) for t in turns]


def test_two_voices_are_told_apart(conversation: tuple[Conversation, np.ndarray]) -> None:
    made, audio = conversation
    turns = diarize(audio)
    assert {t.speaker for t in turns} == {"S1", "S2"}
    assert turns[0].speaker == "S1"
    assert diarization_error(made.turns, _as_tuples(turns)).rate < 0.1
    assert all(a.end <= b.start for a, b in itertools.pairwise(turns))


def test_the_hint_decides_the_count(conversation: tuple[Conversation, np.ndarray]) -> None:
    _, audio = conversation
    assert {t.speaker for t in diarize(audio, expected=1)} == {"S1"}


def test_the_same_audio_gives_the_same_turns(
    conversation: tuple[Conversation, np.ndarray],
) -> None:
    _, audio = conversation
    assert diarize(audio) == diarize(audio.copy())


def test_silence_has_no_speakers() -> None:
    rng = np.random.default_rng(1)
    assert diarize((rng.normal(0, 1e-4, 16_000 * 5)).astype(np.float32)) == []


def test_audio_shorter_than_one_window_gets_one_speaker(
    conversation: tuple[Conversation, np.ndarray],
) -> None:
    made, audio = conversation
    start, _, _ = made.turns[0]
    clip = audio[int(start * 16_000) : int(start * 16_000) + 16_000]  # one second of speech
    turns = diarize(clip)
    assert {t.speaker for t in turns} == {"S1"}
    assert turns[-1].end <= 1.01
