"""Turns onto hand-made segments: words take their speaker, segments split where it changes."""

from __future__ import annotations

from podscribe.speakers import SpeakerTurn, label_segments
from podscribe.transcription.segments import Segment, Word


def _words(*spans: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(start, end, f" {text}", 0.9) for start, end, text in spans)


TWO_TURNS = [SpeakerTurn(0.0, 2.05, "S1"), SpeakerTurn(2.1, 5.0, "S2")]


def test_a_segment_spanning_a_turn_change_splits_at_the_word_boundary() -> None:
    words = _words((0.1, 0.5, "Hello"), (0.6, 1.9, "there."), (2.1, 2.6, "Hi"), (2.7, 3.0, "you."))
    segment = Segment(0.0, 3.2, "Hello there. Hi you.", words, avg_logprob=-0.2)

    labelled = label_segments([segment], TWO_TURNS)

    assert [(s.start, s.end, s.text, s.speaker) for s in labelled] == [
        (0.0, 1.9, "Hello there.", "S1"),
        (2.1, 3.2, "Hi you.", "S2"),
    ]
    assert [w.text for w in labelled[1].words] == [" Hi", " you."]
    assert all(s.avg_logprob == -0.2 for s in labelled)


def test_split_text_keeps_words_apart_as_the_engine_stores_them() -> None:
    # podscribe.transcription.engine strips each word: no leading space to join on.
    words = tuple(
        Word(start, end, text, 0.9)
        for start, end, text in [(0.1, 0.5, "Hello"), (0.6, 1.9, "there."), (2.1, 2.6, "Hi"),
                                 (2.7, 3.0, "you.")]
    )  # fmt: skip
    segment = Segment(0.0, 3.2, "Hello there. Hi you.", words)

    labelled = label_segments([segment], TWO_TURNS)

    assert [s.text for s in labelled] == ["Hello there.", "Hi you."]
    assert " ".join(s.text for s in labelled).split() == segment.text.split()


def test_a_segment_within_one_turn_keeps_its_text_and_bounds() -> None:
    segment = Segment(2.2, 4.0, "Only me.", _words((2.3, 2.8, "Only"), (2.9, 3.5, "me.")))
    (labelled,) = label_segments([segment], TWO_TURNS)
    assert (labelled.start, labelled.end, labelled.text, labelled.speaker) == (
        2.2,
        4.0,
        "Only me.",
        "S2",
    )


def test_a_word_straddling_the_change_goes_to_the_speaker_it_overlaps_most() -> None:
    segment = Segment(1.5, 2.6, "Word.", _words((1.9, 2.5, "Word.")))
    (labelled,) = label_segments([segment], TWO_TURNS)
    assert labelled.speaker == "S2"  # 0.4 s with S2 against 0.15 s with S1


def test_a_word_in_a_pause_takes_the_nearest_turn() -> None:
    turns = [SpeakerTurn(0.0, 1.0, "S1"), SpeakerTurn(3.0, 4.0, "S2")]
    segment = Segment(1.1, 2.8, "a b", _words((1.2, 1.4, "a"), (2.6, 2.8, "b")))
    labelled = label_segments([segment], turns)
    assert [(s.text, s.speaker) for s in labelled] == [("a", "S1"), ("b", "S2")]


def test_segments_without_words_are_labelled_whole() -> None:
    labelled = label_segments(
        [Segment(0.0, 1.8, "First."), Segment(2.5, 4.5, "Second.")], TWO_TURNS
    )
    assert [s.speaker for s in labelled] == ["S1", "S2"]


def test_back_and_forth_inside_one_segment_gives_one_segment_per_run() -> None:
    turns = [SpeakerTurn(0.0, 1.0, "S1"), SpeakerTurn(1.0, 2.0, "S2"), SpeakerTurn(2.0, 3.0, "S1")]
    words = _words((0.1, 0.9, "one"), (1.1, 1.5, "two"), (1.5, 1.9, "three"), (2.1, 2.9, "four"))
    labelled = label_segments([Segment(0.0, 3.0, "one two three four", words)], turns)
    assert [(s.text, s.speaker) for s in labelled] == [
        ("one", "S1"),
        ("two three", "S2"),
        ("four", "S1"),
    ]


def test_no_turns_leaves_the_segments_unlabelled() -> None:
    segments = [Segment(0.0, 1.0, "Hello.")]
    assert label_segments(segments, []) == segments
