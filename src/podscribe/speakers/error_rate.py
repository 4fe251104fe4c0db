"""Diarization error rate, the NIST way, on 10 ms frames.

    DER = (missed speech + false alarm + speaker confusion) / reference speech

per frame: missed = max(0, n_ref - n_hyp), false alarm = max(0, n_hyp - n_ref), confusion =
min(n_ref, n_hyp) - correct, where ``correct`` counts the frame's reference speakers whose
mapped hypothesis label is also speaking. The mapping is one-to-one and chosen to maximise the
time both agree on (the Hungarian method, so seventeen speakers cost no more than two).
Overlapping speech is counted as such. No forgiveness collar: the benchmark's turns are exact.
Written here rather than taken from pyannote.metrics, which would bring pyannote.core and its
dependencies for twenty lines of arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ErrorBreakdown", "best_mapping", "diarization_error"]

_FRAMES_PER_SECOND = 100
Turn = tuple[float, float, str]


@dataclass(frozen=True)
class ErrorBreakdown:
    """The parts of the diarization error, in seconds.

    Attributes:
        reference: seconds of reference speech (per speaker, so overlap counts twice).
        missed: reference speech with too few hypothesis speakers.
        false_alarm: hypothesis speech beyond the reference's speakers.
        confusion: speech given to the wrong (mapped) speaker.
        mapping: hypothesis label -> reference label chosen for the score.
    """

    reference: float
    missed: float
    false_alarm: float
    confusion: float
    mapping: dict[str, str]

    @property
    def rate(self) -> float:
        """The diarization error rate (0 when there is no reference speech and no error)."""
        errors = self.missed + self.false_alarm + self.confusion
        if self.reference == 0:
            return 0.0 if errors == 0 else float("inf")
        return errors / self.reference


def diarization_error(reference: Iterable[Turn], hypothesis: Iterable[Turn]) -> ErrorBreakdown:
    """Score a hypothesis against the reference turns.

    Args:
        reference: ``(start, end, speaker)`` turns that are right.
        hypothesis: ``(start, end, label)`` turns to score; labels need not match the
            reference's names.

    Returns:
        The error's parts and the label mapping behind them.
    """
    ref_turns, hyp_turns = list(reference), list(hypothesis)
    end = max((t[1] for t in ref_turns + hyp_turns), default=0.0)
    frames = int(np.ceil(end * _FRAMES_PER_SECOND)) + 1
    ref_names, ref = _activity(ref_turns, frames)
    hyp_names, hyp = _activity(hyp_turns, frames)
    agreement = ref.astype(np.float64) @ hyp.T.astype(np.float64)  # (R, H) frames in common
    pairs = best_mapping(agreement)
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    correct = np.zeros(frames)
    for r, h in pairs:
        correct += ref[r] & hyp[h]
    seconds = 1.0 / _FRAMES_PER_SECOND
    return ErrorBreakdown(
        reference=float(n_ref.sum()) * seconds,
        missed=float(np.maximum(0, n_ref - n_hyp).sum()) * seconds,
        false_alarm=float(np.maximum(0, n_hyp - n_ref).sum()) * seconds,
        confusion=float((np.minimum(n_ref, n_hyp) - correct).sum()) * seconds,
        mapping={hyp_names[h]: ref_names[r] for r, h in pairs},
    )


def _activity(turns: Sequence[Turn], frames: int) -> tuple[list[str], np.ndarray]:
    """Speaker names (sorted) and a ``(speakers, frames)`` boolean activity matrix."""
    names = sorted({speaker for _, _, speaker in turns})
    index = {name: i for i, name in enumerate(names)}
    active = np.zeros((len(names), frames), dtype=bool)
    for start, end, speaker in turns:
        first = round(start * _FRAMES_PER_SECOND)
        last = round(end * _FRAMES_PER_SECOND)
        active[index[speaker], first:last] = True
    return names, active


def best_mapping(score: np.ndarray) -> list[tuple[int, int]]:
    """The one-to-one pairing of rows with columns that maximises the summed score.

    The Hungarian method with potentials (O(n^3)); the matrix is padded square with zeros, and
    pairs that fall on padding are left out.

    Args:
        score: ``(rows, columns)`` non-negative scores.

    Returns:
        ``(row, column)`` pairs, sorted by row.
    """
    rows, columns = score.shape
    size = max(rows, columns)
    if size == 0:
        return []
    cost = np.zeros((size, size))
    cost[:rows, :columns] = -score  # minimise the negated score
    infinity = float("inf")
    u, v = np.zeros(size + 1), np.zeros(size + 1)
    match = np.zeros(size + 1, dtype=np.int64)  # match[column] = row, 1-based; 0 = free
    way = np.zeros(size + 1, dtype=np.int64)
    for row in range(1, size + 1):
        match[0] = row
        column = 0
        least = np.full(size + 1, infinity)
        used = np.zeros(size + 1, dtype=bool)
        while True:
            used[column] = True
            current = match[column]
            reduced = cost[current - 1] - u[current] - v[1:]
            free = ~used[1:]
            better = free & (reduced < least[1:])
            least[1:][better] = reduced[better]
            way[1:][better] = column
            candidates = np.where(free, least[1:], infinity)
            step_column = int(np.argmin(candidates)) + 1
            delta = candidates[step_column - 1]
            u[match[used]] += delta
            v[used] -= delta
            least[1:][free] -= delta
            column = step_column
            if match[column] == 0:
                break
        while column:
            previous = way[column]
            match[column] = match[previous]
            column = previous
    pairs = [(int(match[c]) - 1, c - 1) for c in range(1, size + 1)]
    return sorted((r, c) for r, c in pairs if r < rows and c < columns)
