"""Global alignment of integer token sequences: score, align, pairwise.

This is the thin Python layer over the compiled core (``archalign._nw``): it
validates input, picks the integer width and the kernel, chooses the thread
count, and shapes the result. The core only runs loops.

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

import os
import warnings
from dataclasses import dataclass

import numpy as np

from . import _nw
from .scoring import Scoring

__all__ = ["Alignment", "score", "align", "pairwise", "openmp_enabled", "effective_n_jobs"]

_INT32_MAX = np.iinfo(np.int32).max
_INT64_NEG = -(1 << 62)
_INT64_BOUND = 1 << 60
# Queries handled by one task of pairwise(): enough to amortise building a
# target block's profile, small enough to balance threads.
_QUERIES_PER_TASK = 64
# Per-thread memory for a target block's substitution profile (rows for the
# tokens of the queries in hand). A task whose queries need more rows is
# split into runs that fit; a single query that needs more gathers instead.
_PROFILE_BYTES = 16 << 20


def openmp_enabled() -> bool:
    """True when the compiled core was built with OpenMP (threads available)."""
    return _nw.openmp_enabled()


def effective_n_jobs(n_jobs: int | None = None) -> int:
    """Threads pairwise() will use for ``n_jobs``.

    None: ``OMP_NUM_THREADS`` if set, else every CPU this process may run on.
    Negative values count back from that (-1 = all, -2 = all but one).
    Always 1 when the core was built without OpenMP.
    """
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))):
        raise TypeError(f"n_jobs must be an int or None, got {n_jobs!r}")
    if n_jobs == 0:
        raise ValueError("n_jobs=0 is not valid: use None or -1 for all cores, 1 for serial")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if n_jobs is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        n = int(env) if env.isdigit() and int(env) > 0 else cpus
    elif n_jobs < 0:
        n = max(1, cpus + 1 + n_jobs)
    else:
        n = int(n_jobs)
    if n > 1 and not openmp_enabled():
        warnings.warn("archalign was built without OpenMP: pairwise() runs on one thread",
                      RuntimeWarning, stacklevel=3)
        return 1
    return n


def _as_tokens(x, name: str, vocab_size: int | None) -> np.ndarray:
    """Validate one sequence of token ids; return it as C-contiguous int32."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got an array of "
                         f"shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int32)
    if arr.dtype.kind not in "iu":
        hint = (" (encode token strings with archalign.Vocabulary first)"
                if arr.dtype.kind in "USO" else "")
        raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}{hint}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise ValueError(f"{name} holds the negative token id {lo}; ids must be >= 0")
    if vocab_size is not None and hi >= vocab_size:
        raise ValueError(f"{name} holds token id {hi}, but the substitution matrix only "
                         f"covers ids 0..{vocab_size - 1}; enlarge the matrix or re-encode")
    if hi > _INT32_MAX:
        raise ValueError(f"{name} holds token id {hi}, above the supported 2**31 - 1")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _scoring(scoring) -> Scoring:
    if scoring is None:
        return Scoring()
    if not isinstance(scoring, Scoring):
        raise TypeError(f"scoring must be an archalign.Scoring, got {type(scoring).__name__}")
    return scoring


def _scalar_args(scoring: Scoring, max_len_sum: int):
    """Arguments of the scalar kernels: exact int64 when possible, else float64."""
    ints = scoring._integer
    if ints is not None and (max_len_sum + 2) * ints.maxabs < _INT64_BOUND:
        S = ints.substitution if ints.substitution is not None else np.zeros((1, 1), np.int64)
        return (S, ints.match, ints.mismatch, ints.gap_open, ints.gap_extend,
                scoring.substitution is None, _INT64_NEG), float(ints.scale)
    S = scoring.substitution if scoring.substitution is not None else np.zeros((1, 1))
    flat = scoring.substitution is None
    return (S, float(scoring.match or 0.0), float(scoring.mismatch or 0.0),
            scoring.gap_open, scoring.gap_extend, flat, -np.inf), 1.0


def score(a, b, scoring: Scoring | None = None) -> float:
    """Optimal global (Needleman-Wunsch / Gotoh) alignment score of a and b.

    Parameters
    ----------
    a, b : 1-D array_like of int
        Token ids (>= 0; below ``scoring.vocab_size`` with a substitution matrix).
    scoring : Scoring, optional
        Default ``Scoring()``: match 1, mismatch -1, linear gap -1.
    """
    scoring = _scoring(scoring)
    a = _as_tokens(a, "a", scoring.vocab_size)
    b = _as_tokens(b, "b", scoring.vocab_size)
    ints = scoring._integer
    if ints is not None and ints.substitution is None:
        bound = (len(a) + len(b) + 2) * ints.maxabs
        if bound <= _nw.I32_BOUND:
            raw = _nw.score_diag(a, b, ints.match, ints.mismatch, ints.gap_open,
                                 ints.gap_extend, scoring.affine,
                                 16 if bound <= _nw.I16_BOUND else 32)
            return raw / ints.scale
    args, scale = _scalar_args(scoring, len(a) + len(b))
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
    scoring = _scoring(scoring)
    a = _as_tokens(a, "a", scoring.vocab_size)
    b = _as_tokens(b, "b", scoring.vocab_size)
    args, scale = _scalar_args(scoring, len(a) + len(b))
    raw, path = _nw.align_scalar(a, b, *args)
    return Alignment(score=raw / scale, a=a, b=b, path=path)


def _pack(seqs: list[np.ndarray]):
    """Concatenate sequences into one token buffer plus CSR-style offsets."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # one spare element keeps the buffer's data pointer valid when all are empty
    tokens = np.concatenate(seqs + [np.zeros(1, np.int32)]).astype(np.int32, copy=False)
    return tokens, offsets


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
        LocalCluster). See :mod:`archalign.blocked`.
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
    scoring = _scoring(scoring)
    if backend != "threads" or out is not None or block is not None:
        if others is not None:
            raise ValueError("backend='dask', block= and out= compute the square matrix; "
                             "call them without others=")
        from .blocked import DEFAULT_BLOCK, blocked_pairwise

        return blocked_pairwise(seqs, scoring, block=DEFAULT_BLOCK if block is None else block,
                                out=out, backend=backend, client=client, n_jobs=n_jobs,
                                progress=progress)
    V = scoring.vocab_size
    queries = [_as_tokens(s, f"seqs[{k}]", V) for k, s in enumerate(seqs)]
    if others is None:
        targets, symmetric = queries, scoring.symmetric
    else:
        targets = [_as_tokens(s, f"others[{k}]", V) for k, s in enumerate(others)]
        symmetric = False
    out = np.empty((len(queries), len(targets)), dtype=np.float64)
    if out.size == 0:
        return out
    n_threads = effective_n_jobs(n_jobs)
    max_sum = max(map(len, queries)) + max(map(len, targets))
    ints = scoring._integer
    if ints is not None and (max_sum + 2) * ints.maxabs <= _nw.I32_BOUND:
        _pairwise_lanes(queries, targets, symmetric, scoring, out, n_threads)
    else:
        _pairwise_scalar(queries, targets, symmetric, scoring, out, n_threads, max_sum)
    return out


def _pairwise_lanes(queries, targets, symmetric, scoring, out, n_threads):
    ints = scoring._integer
    lanes = _nw.LANES
    S = ints.substitution
    flat = S is None
    # Dense ids: the int16 kernel keeps tokens in int16 lanes, and a
    # substitution matrix shrinks to the ids that occur (the kernel keeps
    # per-thread id -> profile row tables of that size).
    used, inverse = np.unique(np.concatenate(queries + targets), return_inverse=True)
    inverse = inverse.astype(np.int32)
    cuts = np.cumsum([len(s) for s in queries + targets])[:-1]
    remapped = np.split(inverse, cuts)
    queries, targets = remapped[:len(queries)], remapped[len(queries):]
    if symmetric:
        targets = queries
    if flat:
        S = np.zeros((1, 1), np.int32)
    else:
        S = np.ascontiguousarray(S[np.ix_(used, used)], dtype=np.int32)

    # Sorting targets by length makes each 32-lane block nearly uniform.
    t_order = np.argsort([-len(s) for s in targets], kind="stable")
    ttok, toff = _pack([targets[k] for k in t_order])
    tcol = t_order.astype(np.int64)
    n_blocks = -(-len(targets) // lanes)
    if symmetric:
        qtok, qoff, qrow = ttok, toff, tcol
        # Block b only needs queries up to its last target (pairs q <= t).
        q_ends = [min((b + 1) * lanes, len(targets)) for b in range(n_blocks)]
    else:
        qtok, qoff = _pack(queries)
        qrow = np.arange(len(queries), dtype=np.int64)
        q_ends = [len(queries)] * n_blocks
    items = np.array([(b, q, min(q + _QUERIES_PER_TASK, end))
                      for b, end in enumerate(q_ends)
                      for q in range(0, end, _QUERIES_PER_TASK)], dtype=np.int64)
    _nw.pairwise_lanes(qtok, qoff, qrow, ttok, toff, tcol, items, S,
                       ints.match, ints.mismatch, ints.gap_open, ints.gap_extend,
                       scoring.affine, flat, ints.maxabs,
                       len(used) < np.iinfo(np.int16).max, symmetric,
                       _PROFILE_BYTES, float(ints.scale), out, n_threads)


def _pairwise_scalar(queries, targets, symmetric, scoring, out, n_threads, max_sum):
    nq, nt = len(queries), len(targets)
    if symmetric:
        pairs = np.array(np.triu_indices(nq), dtype=np.int64).T.copy()
    else:
        pairs = np.array(np.meshgrid(np.arange(nq), np.arange(nt), indexing="ij"),
                         dtype=np.int64).reshape(2, -1).T.copy()
    qtok, qoff = _pack(queries)
    ttok, toff = _pack(targets)
    args, scale = _scalar_args(scoring, max_sum)
    result = np.empty(len(pairs), dtype=np.float64)
    _nw.pairwise_scalar(qtok, qoff, ttok, toff, pairs, *args, scale, result, n_threads)
    out[pairs[:, 0], pairs[:, 1]] = result
    if symmetric:
        out[pairs[:, 1], pairs[:, 0]] = result
