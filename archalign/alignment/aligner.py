"""Global alignment of integer token sequences: score, align, pairwise.

The public functions over the compiled core (``archalign.alignment._nw``); input
checks, integer widths and thread counts are in :mod:`archalign.alignment.core`, the
blocked and Dask computation of ``pairwise`` in :mod:`archalign.alignment.blocked`.
The core only runs loops.

Kernels, by call:

- ``score``: flat match/mismatch scoring on the integer path uses the
  anti-diagonal SIMD kernel; substitution matrices and float scores use the
  scalar row recursion.
- ``pairwise``: the integer path aligns one query against 32 targets at
  once, one target per SIMD lane (int16 lanes when no score can exceed the
  int16 range, int32 otherwise), threads over blocks of the matrix with
  OpenMP and the GIL released. A substitution matrix costs about as much as
  flat scoring: per target block, each thread builds a profile of scores for
  just the tokens of the queries in hand. Float scores fall back to the
  scalar loop, still threaded.
- ``align``: a scalar fill that stores one trace byte per cell, then a
  traceback (O(len(a) * len(b)) memory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archalign.alignment import _nw
from archalign.alignment.blocked import DEFAULT_BLOCK, blocked_pairwise
from archalign.alignment.core import (as_tokens, check_scoring, scalar_args, effective_n_jobs,
                                      openmp_enabled, pairwise_threads)
from archalign.tokens.scoring import Scoring
from archalign.utils.errors import UsageError

__all__ = ["Alignment", "score", "align", "pairwise", "openmp_enabled", "effective_n_jobs"]


def score(a, b, scoring: Scoring | None = None) -> float:
    """Optimal global (Needleman-Wunsch / Gotoh) alignment score of a and b.

    Parameters
    ----------
    a, b : 1-D array_like of int
        Token ids (>= 0; below ``scoring.vocab_size`` with a substitution matrix).
    scoring : Scoring, optional
        Default ``Scoring()``: match 1, mismatch -1, linear gap -1.
    """
    scoring = check_scoring(scoring)
    a = as_tokens(a, "a", scoring.vocab_size)
    b = as_tokens(b, "b", scoring.vocab_size)
    ints = scoring.integer_form
    if ints is not None and ints.substitution is None:
        bound = (len(a) + len(b) + 2) * ints.maxabs
        if bound <= _nw.I32_BOUND:
            raw = _nw.score_diag(a, b, ints.match, ints.mismatch, ints.gap_open,
                                 ints.gap_extend, scoring.affine,
                                 16 if bound <= _nw.I16_BOUND else 32)
            return raw / ints.scale
    args, scale = scalar_args(scoring, len(a) + len(b))
    return _nw.score_scalar(a, b, *args) / scale


@dataclass(frozen=True)
class Alignment:
    """One optimal global alignment of ``a`` and ``b``.

    ``path`` is an (L, 2) int64 array of aligned index pairs in order; -1
    marks a gap (``path[k] == (i, -1)``: a[i] against a gap). ``pairs`` gives
    the same with None for gaps. For rolled sequences ``a_counts`` / ``b_counts``
    hold each token's repeat count, which ``format`` shows as ``×n``.
    """

    score: float
    a: np.ndarray
    b: np.ndarray
    path: np.ndarray
    # Rolled sequences (archalign.roll): how many input tokens each id stands for.
    a_counts: np.ndarray | None = None
    b_counts: np.ndarray | None = None

    @property
    def pairs(self) -> list[tuple[int | None, int | None]]:
        return [(None if i < 0 else int(i), None if j < 0 else int(j)) for i, j in self.path]

    def counts(self) -> dict[str, int]:
        """Numbers of identical, substituted and gapped columns."""
        i, j = self.path[:, 0], self.path[:, 1]
        both = (i >= 0) & (j >= 0)
        same = both.copy()
        same[both] = self.a[i[both]] == self.b[j[both]]
        return {"identical": int(same.sum()), "substituted": int(both.sum() - same.sum()),
                "gaps": int((~both).sum())}

    def format(self, names=None, width: int = 80) -> str:
        """Two rows with gaps ('-') and a middle row: '|' same token, '.' other token;
        a rolled token shows its repeat count (``add×16``).

        ``names`` maps a token id to its display string: a list, a dict, or an
        object with ``decode(ids) -> list[str]`` such as archalign.Vocabulary.
        Without it ids are printed. Long alignments wrap at ``width`` characters.
        """
        label = _token_labeller(names)

        def show(seq, counts, k):
            if k < 0:
                return "-"
            times = 1 if counts is None else int(counts[k])
            return label(seq[k]) + (f"×{times}" if times > 1 else "")

        cols = []
        for i, j in self.path:
            x = show(self.a, self.a_counts, i)
            y = show(self.b, self.b_counts, j)
            mid = ("|" if self.a[i] == self.b[j] else ".") if i >= 0 and j >= 0 else " "
            w = max(len(x), len(y))
            cols.append((x.ljust(w), mid.center(w), y.ljust(w)))
        lines, row = [], ([], [], [])
        used = 0
        for col in cols:
            if used and used + len(col[0]) + 1 > width:
                lines.extend(" ".join(r) for r in row)
                lines.append("")
                row, used = ([], [], []), 0
            for r, text in zip(row, col):
                r.append(text)
            used += len(col[0]) + 1
        lines.extend(" ".join(r) for r in row)
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self):
        return self.format()


def _token_labeller(names):
    if names is None:
        return lambda t: str(int(t))
    if hasattr(names, "decode"):
        return lambda t: str(names.decode([int(t)])[0])
    return lambda t: str(names[int(t)])


def align(a, b, scoring: Scoring | None = None) -> Alignment:
    """One optimal global alignment of a and b, with its traceback.

    Ties are broken deterministically (diagonal, then gap in b, then gap in
    a). ``align(a, b, s).score == score(a, b, s)`` always holds.
    """
    scoring = check_scoring(scoring)
    a = as_tokens(a, "a", scoring.vocab_size)
    b = as_tokens(b, "b", scoring.vocab_size)
    args, scale = scalar_args(scoring, len(a) + len(b))
    raw, path = _nw.align_scalar(a, b, *args)
    return Alignment(score=raw / scale, a=a, b=b, path=path)


def pairwise(seqs, scoring: Scoring | None = None, n_jobs: int | None = None,
             others=None, *, backend: str = "threads", block: int | None = None,
             client=None, out=None, progress: bool = True) -> np.ndarray:
    """Global alignment scores of all pairs, in compiled code with the GIL released.

    Parameters
    ----------
    seqs : sequence of 1-D array_like of int
        n token sequences.
    scoring : Scoring, optional
    n_jobs : int, optional
        Threads; None uses every core (see :func:`effective_n_jobs`), 1 is serial.
        Results are identical for any value.
    others : sequence of 1-D array_like of int, optional
        When given, score every sequence of ``seqs`` against every one of
        ``others`` and return the rectangular (len(seqs), len(others)) matrix.

    backend : "threads" or "dask"
        "dask" computes blocks of the matrix as tasks on a dask.distributed
        cluster (``client``: a Client or scheduler address; default a new
        LocalCluster). See :mod:`archalign.alignment.blocked`.
    block : int, optional
        Sequences per block side for the blocked computation (default 256).
    out : path, optional
        Directory that keeps the matrix on disk, block by block, so a killed
        run resumes where it stopped; the result is then a numpy.memmap.
    progress : bool
        Progress bar over blocks (blocked computation only).

    Returns
    -------
    numpy.ndarray of float64, shape (n, n) or (n, len(others))
        ``out[i, j] == score(seqs[i], (others or seqs)[j], scoring)``. Without
        ``others`` and with a symmetric scoring each pair is aligned once and
        the matrix filled symmetrically. Extra memory is
        O(n_jobs * 32 * max_len) beyond the output.
    """
    scoring = check_scoring(scoring)
    if backend != "threads" or out is not None or block is not None:
        if others is not None:
            raise UsageError("backend='dask', block= and out= compute the square matrix; "
                             "call them without others=")
        return blocked_pairwise(seqs, scoring, block=DEFAULT_BLOCK if block is None else block,
                                out=out, backend=backend, client=client, n_jobs=n_jobs,
                                progress=progress)
    return pairwise_threads(seqs, scoring, n_jobs, others)
