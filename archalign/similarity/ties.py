"""Ties between similarities, and what a similarity of 1.0 hides.

Rolled similarity, the default, collapses repeated blocks and so ignores depth by
design: resnet18 and resnet34 score 1.0. A matrix therefore records each model's depth
(layer calls) and parameter count; :func:`tie_order` breaks ties by them
(:data:`TIE_RULE`) and :func:`change_note` says what a 1.0 hides. Shared by
``matrix.py``, ``shortlist.py`` and ``report.py``.
"""
from __future__ import annotations

import math

__all__ = ["SAME", "TIE_RULE", "change_note", "format_counts", "tie_order"]

TIE_RULE = ("equal values (to 9 decimals) go first to the model closest in depth (layer "
            "calls), then in parameter count (|log ratio|), then by label, never by the "
            "order of the matrix; closest to the query model for nearest neighbours, to "
            "the cluster's median depth and parameter count for a medoid")
# Values that agree to this many decimals are tied: float noise (summation order, a
# correlation's means) must not decide.
_TIE_DECIMALS = 9
# A similarity at least this high reads as 1.00 and says "same design".
SAME = 1 - 1e-9


def tie_order(candidates, keys, labels, depths=(), params=(), depth_ref=None,
              params_ref=None) -> list:
    """``candidates`` sorted by ``keys`` (ascending), ties broken by :data:`TIE_RULE`.

    Parameters
    ----------
    candidates : sequence of int
        Indices into ``labels``, ``depths`` and ``params``.
    keys : sequence of float
        One per candidate, smaller first; keys that agree to 9 decimals are tied.
    labels : list of str
        The last word on a tie, so the result is independent of the order of
        ``candidates``.
    depths, params : sequences of int or None, optional
        Per index: layer calls and parameter count; None where unknown.
    depth_ref, params_ref : float, optional
        What "closest" is measured from (the query model, a cluster's median). None:
        that criterion does not decide.

    Returns
    -------
    list of int
        The candidates, first to last. Unknown depths and parameter counts come after
        known ones among tied candidates.
    """
    def closeness(i):
        depth = (abs(depths[i] - depth_ref) if depth_ref is not None
                 and depths[i] is not None else math.inf)
        size = (abs(math.log(max(params[i], 1)) - math.log(max(params_ref, 1)))
                if params_ref is not None and params[i] is not None else math.inf)
        return depth, size

    ranked = sorted(zip((round(float(k), _TIE_DECIMALS) for k in keys), candidates),
                    key=lambda kc: (kc[0], *closeness(kc[1]), labels[kc[1]]))
    return [int(i) for _, i in ranked]


def format_counts(a: int, b: int) -> tuple[str, str]:
    """Two parameter counts as short numbers (``11.7M``), with as many significant
    digits (three at least) as it takes to tell them apart."""
    widest, digits = max(len(str(a)), len(str(b))), 3
    while digits < widest and _short_count(a, digits) == _short_count(b, digits):
        digits += 1
    return _short_count(a, digits), _short_count(b, digits)


def _short_count(n: int, digits: int) -> str:
    # Half up in integers, as report.js rounds, so that the page and Python agree.
    unit = 10 ** max(len(str(n)) - digits, 0)
    r = (n + unit // 2) // unit * unit
    for power, suffix in ((12, "T"), (9, "B"), (6, "M"), (3, "K")):
        if r >= 10 ** power:
            whole = len(str(r // 10 ** power))
            return f"{r / 10 ** power:.{max(digits - whole, 0)}f}{suffix}"
    return str(r)


def change_note(depth_a, depth_b, params_a, params_b) -> str | None:
    """"depth 68 → 130 layers, parameters 11.7M → 21.8M", the parts that are known and
    differ, or None."""
    parts = []
    if depth_a is not None and depth_b is not None and depth_a != depth_b:
        parts.append(f"depth {depth_a} → {depth_b} layers")
    if params_a is not None and params_b is not None and params_a != params_b:
        parts.append("parameters {} → {}".format(*format_counts(params_a, params_b)))
    return ", ".join(parts) or None
