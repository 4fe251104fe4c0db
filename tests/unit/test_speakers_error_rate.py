"""The diarization error rate on hand-made cases whose answer is known by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from podscribe.speakers.error_rate import best_mapping, diarization_error

REFERENCE = [(0.0, 10.0, "ann"), (10.0, 20.0, "bob")]


def test_a_perfect_hypothesis_with_other_names_scores_zero() -> None:
    result = diarization_error(REFERENCE, [(0.0, 10.0, "S2"), (10.0, 20.0, "S1")])
    assert result.rate == 0.0
    assert result.mapping == {"S2": "ann", "S1": "bob"}


def test_missed_speech() -> None:
    result = diarization_error(REFERENCE, [(0.0, 10.0, "S1"), (10.0, 15.0, "S2")])
    assert result.missed == pytest.approx(5.0)
    assert result.false_alarm == result.confusion == 0.0
    assert result.rate == pytest.approx(0.25)


def test_false_alarm() -> None:
    result = diarization_error(REFERENCE, [(0.0, 10.0, "S1"), (10.0, 24.0, "S2")])
    assert result.false_alarm == pytest.approx(4.0)
    assert result.rate == pytest.approx(0.2)


def test_confusion_after_the_best_mapping() -> None:
    # S1 speaks 0-12: 10 s are ann's, 2 s bob's; S2 has the rest of bob.
    result = diarization_error(REFERENCE, [(0.0, 12.0, "S1"), (12.0, 20.0, "S2")])
    assert result.confusion == pytest.approx(2.0)
    assert result.missed == result.false_alarm == 0.0
    assert result.rate == pytest.approx(0.1)


def test_one_label_for_everyone_confuses_the_smaller_speaker() -> None:
    result = diarization_error([(0.0, 15.0, "ann"), (15.0, 20.0, "bob")], [(0.0, 20.0, "S1")])
    assert result.mapping == {"S1": "ann"}
    assert result.confusion == pytest.approx(5.0)
    assert result.rate == pytest.approx(0.25)


def test_too_many_labels_are_confusion() -> None:
    hypothesis = [(0.0, 5.0, "S1"), (5.0, 10.0, "S3"), (10.0, 20.0, "S2")]
    result = diarization_error(REFERENCE, hypothesis)
    assert result.confusion == pytest.approx(5.0)
    assert result.rate == pytest.approx(0.25)


def test_overlapping_reference_speech_counts_for_each_speaker() -> None:
    reference = [(0.0, 10.0, "ann"), (5.0, 10.0, "bob")]  # 5 s of overlap
    result = diarization_error(reference, [(0.0, 10.0, "S1")])
    assert result.reference == pytest.approx(15.0)
    assert result.missed == pytest.approx(5.0)  # one voice, two speakers: one is missed
    assert result.rate == pytest.approx(5.0 / 15.0)


def test_no_reference_and_no_hypothesis_is_no_error() -> None:
    assert diarization_error([], []).rate == 0.0
    assert diarization_error([], [(0.0, 1.0, "S1")]).rate == float("inf")


def test_the_hungarian_mapping_matches_brute_force() -> None:
    rng = np.random.default_rng(12)
    for rows, columns in [(3, 3), (4, 2), (2, 5), (6, 6), (1, 1)]:
        score = rng.integers(0, 100, size=(rows, columns)).astype(float)
        pairs = best_mapping(score)
        got = sum(score[r, c] for r, c in pairs)
        assert len(pairs) == min(rows, columns)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        if rows <= columns:
            best = max(
                sum(score[r, c] for r, c in enumerate(p))
                for p in itertools.permutations(range(columns), rows)
            )
        else:
            best = max(
                sum(score[r, c] for c, r in enumerate(p))
                for p in itertools.permutations(range(rows), columns)
            )
        assert got == best
