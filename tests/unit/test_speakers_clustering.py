"""Clustering voice prints, and the turn logic of diarization, on made-up vectors and frames."""

from __future__ import annotations

import numpy as np

from podscribe.speakers.clustering import ClusteringOptions, cluster_voice_prints
from podscribe.speakers.diarization import _fold_short_runs, _turns, _window_starts


def _voices(
    counts: list[int], *, spread: float = 0.15, seed: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Unit prints scattered around one random direction per speaker (non-negative, as GE2E's)."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.normal(size=(len(counts), 256)))
    centres -= 0.5 * centres.mean(axis=0)  # make the speakers clearly different
    prints, truth = [], []
    for speaker, count in enumerate(counts):
        points = (
            centres[speaker] / np.linalg.norm(centres[speaker])
            + spread * rng.normal(size=(count, 256)) / 16
        )
        prints.append(points / np.linalg.norm(points, axis=1, keepdims=True))
        truth += [speaker] * count
    return np.concatenate(prints).astype(np.float32), np.array(truth)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return all(len(set(a[b == label])) == 1 for label in set(b)) and len(set(a)) == len(set(b))


def test_the_speaker_count_is_estimated() -> None:
    for counts in ([40, 40], [30, 50, 20], [25, 25, 25, 25]):
        prints, truth = _voices(counts)
        labels, centroids = cluster_voice_prints(prints)
        assert centroids.shape == (len(counts), 256)
        assert _same_partition(labels, truth)


def test_one_voice_stays_one_speaker() -> None:
    prints, _ = _voices([120])
    labels, _ = cluster_voice_prints(prints)
    assert set(labels) == {0}


def test_the_expected_count_is_honoured() -> None:
    prints, truth = _voices([40, 40, 40])
    labels, _ = cluster_voice_prints(prints, expected=3)
    assert _same_partition(labels, truth)
    labels, _ = cluster_voice_prints(prints, expected=2)
    assert len(set(labels)) == 2
    labels, _ = cluster_voice_prints(prints[:5], expected=8)  # more than there are prints
    assert len(set(labels)) <= 5


def test_long_episodes_cluster_a_sample_then_assign_everything() -> None:
    prints, truth = _voices([900, 700])
    labels, _ = cluster_voice_prints(prints, options=ClusteringOptions(max_items=200))
    assert _same_partition(labels, truth)


def test_a_stray_print_is_folded_into_a_speaker() -> None:
    prints, _ = _voices([100, 100])
    stray = np.abs(np.random.default_rng(9).normal(size=(1, 256))).astype(np.float32)
    labels, centroids = cluster_voice_prints(
        np.concatenate([prints, stray / np.linalg.norm(stray)])
    )
    assert centroids.shape[0] == 2
    assert set(labels) == {0, 1}


def test_clustering_is_deterministic_and_handles_nothing() -> None:
    prints, _ = _voices([30, 30])
    first, _ = cluster_voice_prints(prints)
    second, _ = cluster_voice_prints(prints.copy())
    assert (first == second).all()
    labels, centroids = cluster_voice_prints(np.zeros((0, 256), dtype=np.float32))
    assert labels.size == 0 and centroids.shape == (0, 256)


def test_short_runs_join_their_longer_neighbour_but_not_across_silence() -> None:
    frames = np.array([0] * 100 + [1] * 20 + [0] * 50 + [-1] * 30 + [1] * 10 + [-1] * 5)
    _fold_short_runs(frames, 80)
    assert (frames[:170] == 0).all()
    assert (frames[200:210] == 1).all()  # alone between pauses: kept
    assert (frames[170:200] == -1).all()


def test_turns_are_named_by_first_appearance() -> None:
    frames = np.array([2] * 100 + [-1] * 50 + [0] * 100 + [2] * 50)
    turns = _turns(frames)
    assert [(t.start, t.end, t.speaker) for t in turns] == [
        (0.0, 1.0, "S1"),
        (1.5, 2.5, "S2"),
        (2.5, 3.0, "S1"),
    ]


def test_windows_cover_every_region_to_its_end() -> None:
    starts = _window_starts([(0, 400), (500, 560)], total=700, hop_seconds=0.5)
    assert starts.tolist() == [0, 50, 100, 150, 200, 240, 450]  # 240 + 160 = 400; 450 centred
    assert _window_starts([(0, 90)], total=90, hop_seconds=0.5).tolist() == [0]
