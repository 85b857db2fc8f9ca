"""Similarities from raw alignment scores, elementwise, and the agreement of two groupings.

Two similarities:

``"normalized"`` (default), in [0, 1], with sim(a, a) = 1 and symmetric::

    sim(a, b) = (S(a, b) - G(a, b)) / ((S(a, a) + S(b, b)) / 2 - G(a, b))

where S is the global alignment score and G(a, b) the score of the all-gap
alignment (every token of a and of b against a gap). G is a lower bound on
S(a, b), since it is one admissible alignment, and with match scores that
dominate substitutions S(a, b) <= (S(a, a) + S(b, b)) / 2; so sim is the
fraction of the way from "nothing in common" to "as good as self-alignment".
Values are clipped to [0, 1] for substitution matrices that break that
dominance. ``1 - sim`` is the distance given to scipy.

``"correlation"``: the NeuRN paper's "correlation similarity", the Pearson
correlation between two models' rows of raw scores (in [-1, 1]; distance
``1 - r`` in [0, 2]). It compares how models relate to the whole panel, so
VGG11/16/19 correlate near 1 although their raw scores are negative.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SIMILARITIES", "all_gap_score", "normalized_similarity",
           "correlation_similarity", "adjusted_rand_index"]

SIMILARITIES = ("normalized", "correlation")


def all_gap_score(length, gap_open: float, gap_extend: float):
    """Score of aligning `length` tokens against gaps (0 for length 0)."""
    length = np.asarray(length, dtype=np.float64)
    return np.where(length > 0, gap_open + (length - 1) * gap_extend, 0.0)


def normalized_similarity(scores, self_a, self_b, gap_a, gap_b) -> np.ndarray:
    """The normalised similarity of the module docstring, elementwise.

    ``scores[i, j]`` = S(a_i, b_j); ``self_a[i]`` = S(a_i, a_i); ``gap_a[i]``
    = all-gap score of a_i; likewise for b. Pairs of two empty sequences get 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    floor = gap_a[:, None] + gap_b[None, :]
    top = (self_a[:, None] + self_b[None, :]) / 2
    span = top - floor
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(span > 0, (scores - floor) / np.where(span > 0, span, 1), 1.0)
    return np.clip(sim, 0.0, 1.0)


def correlation_similarity(scores) -> np.ndarray:
    """Pearson correlation between rows of a raw score matrix (the paper's)."""
    scores = np.asarray(scores, dtype=np.float64)
    centred = scores - scores.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred @ centred.T) / np.outer(norms, norms)
    # A row with no variance correlates with nothing but itself.
    r = np.where(np.isfinite(r), r, 0.0)
    np.fill_diagonal(r, 1.0)
    return np.clip(r, -1.0, 1.0)


def adjusted_rand_index(labels_a, labels_b) -> float:
    """Hubert & Arabie's adjusted Rand index of two partitions (1 = identical)."""
    _, a = np.unique(np.asarray(labels_a), return_inverse=True)
    _, b = np.unique(np.asarray(labels_b), return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.int64)
    np.add.at(table, (a, b), 1)

    def pairs(x):
        return (x * (x - 1) // 2).sum()

    index = pairs(table)
    rows, cols, total = pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([len(a)]))
    expected = rows * cols / total if total else 0.0
    best = (rows + cols) / 2
    return 1.0 if best == expected else float((index - expected) / (best - expected))
