"""Rolled sequences: tandem repeats of layer tokens collapsed to one copy and a count.

A deeper network of one design mostly repeats the same block more times. Rolling
keeps the design and sets the depth aside: ``A B C B C B C D`` rolls to ``A B C D``
with counts ``1 3 3 1``. It is run-length encoding over blocks, as torchview's
``roll`` does for drawn graphs, applied to the token sequence the aligner reads.

The rule, deterministic for overlapping and nested repeats:

1. A *pass at period p* goes left to right: at position i, if the block ``x[i:i+p]``
   is followed by a copy of itself, the whole run of back-to-back copies becomes one
   copy and the pass goes on after the run; otherwise it keeps ``x[i]`` and goes on
   at i + 1. It reads the sequence as it stood when the pass began.
2. A *sweep* makes one pass at every period from the longest that fits (at most
   ``max_period``) down to 1.
3. Sweeps repeat until one changes nothing: the result holds no tandem repeat of
   period <= ``max_period``.

Longest first, so that a repeated block is taken whole before the short repeats at
its seams: ``(A B A)(A B A)`` rolls to ``A B A`` ×2, not to ``A B A`` with the two
``A`` at the seam merged first.

Repeats are found on tokens alone, so a block whose inner layers were rolled a
different number of times still counts as a copy: ``(A B×3) (A B×5)`` rolls to
``A B`` with counts ``2 8``. A token's count is how many tokens of the input it
stands for, so ``counts.sum() == len(tokens)`` and nested repeats multiply.

Properties the tests check: it agrees with the literal pure-Python reference
(``archalign.tracing._roll_reference``); it is idempotent, ``roll(*roll(x)) == roll(x)``; and
x repeated k times back to back rolls to the same tokens as x, with counts times k.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archalign import defaults
from archalign.tracing import _roll
from archalign.utils.errors import UsageError

__all__ = ["roll"]

_INT32 = np.iinfo(np.int32)


def roll(tokens: Sequence, counts=None, *, max_period: int | None = defaults.MAX_PERIOD):
    """Collapse tandem repeats of ``tokens`` (the rule is in the module docstring).

    Parameters
    ----------
    tokens : sequence of str (or any hashable), or 1-D integer array of token ids
    counts : sequence of int, optional
        How many input tokens each token already stands for (default all 1), so that
        ``roll(*roll(x))`` continues where the first roll stopped.
    max_period : int or None
        Longest block length looked for; None for no limit. The default
        (``archalign.defaults.MAX_PERIOD``) is the one the similarity defaults use.

    Returns
    -------
    (rolled, counts)
        ``rolled`` is a list for a sequence input and an integer array for an array
        input (int32 when the ids fit it); ``counts`` is an int64 array of the same
        length.
    """
    if isinstance(tokens, str):
        raise TypeError("roll() takes a sequence of tokens, not one string")
    if max_period is None:
        max_period = len(tokens)
    elif isinstance(max_period, bool) or not isinstance(max_period, (int, np.integer)) \
            or max_period < 1:
        raise UsageError(f"max_period must be a positive int or None, got {max_period!r}")
    if isinstance(tokens, np.ndarray):
        if tokens.ndim != 1 or (tokens.size and tokens.dtype.kind not in "iu"):
            raise TypeError(f"roll() takes a 1-D array of integer ids, got dtype "
                            f"{tokens.dtype} and shape {tokens.shape}")
        names = None
        # Rolling only compares ids, so ids beyond int32 are renumbered densely.
        wide = tokens.size and (tokens.min() < _INT32.min or tokens.max() > _INT32.max)
        uniq, ids = np.unique(tokens, return_inverse=True) if wide else (None, tokens)
    else:
        index: dict = {}
        ids = [index.setdefault(t, len(index)) for t in tokens]
        names, uniq = list(index), None
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    c = np.ones(len(ids), np.int64) if counts is None else _check_counts(counts, len(ids))
    rolled, out_counts = _roll.roll_ids(ids, c, int(max_period))
    if names is not None:
        return [names[i] for i in rolled], out_counts
    return (rolled if uniq is None else uniq[rolled]), out_counts


def _check_counts(counts, n: int) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.shape != (n,) or (n and arr.dtype.kind not in "iu"):
        raise UsageError(f"counts must be {n} positive integers, one per token, got "
                         f"dtype {arr.dtype} and shape {arr.shape}")
    if n and arr.min() < 1:
        raise UsageError(f"counts must be positive, got {int(arr.min())}")
    return np.ascontiguousarray(arr, dtype=np.int64)
