"""A :class:`~archalign.similarity.matrix.SimilarityMatrix` read like a labelled table:
``sm[a, b]`` by labels or integer positions, ``sm.loc[...]`` by labels only, with the
shapes pandas gives (a float for one cell, a row as a mapping), without pandas.

``sm.to_pandas()`` remains the way into pandas itself.
"""
from __future__ import annotations

import numbers

import numpy as np

from archalign.utils.errors import UsageError

__all__ = ["entry", "positions", "LabelIndexer"]


def positions(sm, key, *, labels_only: bool = False):
    """The integer position(s) ``key`` names in ``sm``: a label or an integer (negative
    ones count from the end), or a list or slice of them (then an array)."""
    if isinstance(key, str):
        return sm.index(key)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if labels_only:
            raise UsageError(f"sm.loc takes labels, not the position {key}; sm[{key}, ...] "
                             f"takes positions")
        n = len(sm)
        if not -n <= key < n:
            raise UsageError(f"position {key} is outside this matrix of {n} models")
        return int(key) % n
    if isinstance(key, slice):
        if labels_only and key != slice(None):
            raise UsageError("sm.loc takes labels or ':', not a slice of positions")
        return np.arange(len(sm))[key]
    if isinstance(key, (list, tuple, np.ndarray)):
        return np.array([positions(sm, k, labels_only=labels_only) for k in key],
                        dtype=np.int64)
    raise UsageError(f"cannot index a SimilarityMatrix with {type(key).__name__} {key!r}: "
                     f"give labels, integer positions, lists or slices of them")


def entry(sm, key):
    """``sm[a, b]``: the similarity of ``a`` and ``b``, each a label or an integer
    position (negative ones count from the end), as a float; a list or slice of either
    gives the array of those rows and columns."""
    if not (isinstance(key, tuple) and len(key) == 2):
        raise UsageError("index a SimilarityMatrix with two keys, sm[a, b] (labels or "
                         "positions); a row by label is sm.loc[a], one by position sm[i, :]")
    rows, cols = (positions(sm, k) for k in key)
    if np.ndim(rows) and np.ndim(cols):
        return sm.values[np.ix_(rows, cols)]
    found = sm.values[rows, cols]
    return float(found) if np.ndim(found) == 0 else found


class LabelIndexer:
    """``sm.loc``: ``sm.loc[a, b]`` a float; ``sm.loc[a]`` (or ``sm.loc[a, :]``) the row
    of ``a`` as a dict {label: similarity}, in the matrix's order; ``sm.loc[a, [b, c]]``
    a dict of those; ``sm.loc[[a, b], [c, d]]`` an array."""

    def __init__(self, sm):
        self._sm = sm

    def __getitem__(self, key):
        sm = self._sm
        rows, cols = key if isinstance(key, tuple) and len(key) == 2 else (key, slice(None))
        i, j = (positions(sm, k, labels_only=True) for k in (rows, cols))
        if np.ndim(i) and np.ndim(j):
            return sm.values[np.ix_(i, j)]
        if np.ndim(i) == np.ndim(j) == 0:
            return float(sm.values[i, j])
        # one label and several: a mapping keyed by the several
        if np.ndim(j):
            return {sm.labels[m]: float(sm.values[i, m]) for m in j}
        return {sm.labels[m]: float(sm.values[m, j]) for m in i}

    def __repr__(self) -> str:
        return f"<label lookup of {self._sm!r}>"
