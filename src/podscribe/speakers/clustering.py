"""Voice prints into speakers: agglomerative clustering on cosine distance, numpy only.

Average linkage merges the two closest groups until the closest pair is further apart than a
threshold (the speaker count is estimated) or until the hinted count is reached. Why a
threshold rather than spectral clustering's eigengap: the threshold is a property of the
encoder, not of the episode (GE2E was trained so that one voice's prints sit close together and
apart from others'), so it holds when one voice speaks far less than the others, where the
eigengap is weakest; and it needs no eigendecomposition.

Average linkage is quadratic in memory and cubic in time, so a long episode clusters an evenly
spaced sample of its windows (at most ``max_items``); every window then joins its nearest
centroid, and a few k-means rounds on the sphere settle the centroids on all of them. The
result is deterministic: no random starts, ties go to the lower index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClusteringOptions", "cluster_voice_prints"]


@dataclass(frozen=True)
class ClusteringOptions:
    """How voice prints become speakers.

    Attributes:
        threshold: average cosine distance above which two groups are different speakers.
        max_items: most windows that go through average linkage; the rest are assigned.
        refine_rounds: k-means rounds over all windows after the assignment.
        min_share: when the count is estimated, a cluster holding fewer than this share of the
            windows is folded into its nearest neighbour (a cough, a laugh, a window that
            straddles a turn are not speakers of their own).
    """

    threshold: float = 0.35
    max_items: int = 800
    refine_rounds: int = 3
    min_share: float = 0.01


def cluster_voice_prints(
    prints: np.ndarray, *, expected: int | None = None, options: ClusteringOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Group unit-length voice prints by speaker.

    Args:
        prints: ``(count, dimensions)`` unit vectors.
        expected: the number of speakers when known (1..count); estimated when None.
        options: thresholds and caps.

    Returns:
        The cluster of each print (``0 .. k-1``) and the ``(k, dimensions)`` unit centroids.
    """
    options = options or ClusteringOptions()
    count = prints.shape[0]
    if count == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, prints.shape[1]), dtype=np.float32)
    sample = np.unique(np.linspace(0, count - 1, min(count, options.max_items)).round().astype(int))
    groups = _average_linkage(prints[sample], expected=expected, threshold=options.threshold)
    centroids = _centroids(prints[sample], groups)
    labels = _nearest(prints, centroids)
    for _ in range(options.refine_rounds):
        centroids = _centroids(prints, labels)
        labels = _nearest(prints, centroids)
    if expected is None:
        labels, centroids = _fold_small(prints, labels, centroids, options.min_share)
    return labels, centroids


def _average_linkage(points: np.ndarray, *, expected: int | None, threshold: float) -> np.ndarray:
    """Cluster labels from average-linkage agglomeration (Lance-Williams updates)."""
    count = points.shape[0]
    distance = 1.0 - np.clip(points.astype(np.float64) @ points.T.astype(np.float64), -1.0, 1.0)
    np.fill_diagonal(distance, np.inf)
    sizes = np.ones(count)
    owner = np.arange(count)  # each point's current group representative
    groups = count
    target = max(1, min(expected, count)) if expected is not None else 1
    while groups > target:
        flat = int(np.argmin(distance))
        i, j = divmod(flat, count)
        if expected is None and distance[i, j] > threshold:
            break
        i, j = min(i, j), max(i, j)
        merged = (sizes[i] * distance[i] + sizes[j] * distance[j]) / (sizes[i] + sizes[j])
        distance[i, :] = merged
        distance[:, i] = merged
        distance[i, i] = np.inf
        distance[j, :] = np.inf
        distance[:, j] = np.inf
        sizes[i] += sizes[j]
        owner[owner == j] = i
        groups -= 1
    _, labels = np.unique(owner, return_inverse=True)
    return labels.astype(np.int64)


def _centroids(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit mean of each non-empty cluster, in label order (empty clusters drop out)."""
    present = np.unique(labels)
    sums = np.stack([points[labels == label].sum(axis=0) for label in present])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    nearest: np.ndarray = np.argmax(points @ centroids.T, axis=1).astype(np.int64)
    return nearest


def _fold_small(
    points: np.ndarray, labels: np.ndarray, centroids: np.ndarray, min_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fold clusters under ``min_share`` of the windows into the nearest remaining one."""
    shares = np.bincount(labels, minlength=centroids.shape[0]) / labels.shape[0]
    keep = np.flatnonzero(shares >= min_share)
    if keep.size == 0 or keep.size == centroids.shape[0]:
        return labels, centroids
    kept = centroids[keep]
    labels = _nearest(points, kept)
    centroids = _centroids(points, labels)
    return np.unique(labels, return_inverse=True)[1].astype(np.int64), centroids
