"""The Python layer over the compiled core (``archalign.alignment._nw``).

It validates token sequences (``as_tokens``) and scorings, picks the integer width
and the kernel, chooses the thread count (``effective_n_jobs``) and runs the
in-memory all-pairs drivers (``pairwise_threads``). The core only runs loops;
the public functions are in :mod:`archalign.alignment.aligner`.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from archalign.alignment import _nw
from archalign.tokens.scoring import Scoring
from archalign.utils.errors import UsageError

__all__ = ["as_tokens", "check_scoring", "effective_n_jobs", "openmp_enabled", "pack_sequences",
           "pairwise_threads", "scalar_args"]


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
        raise UsageError("n_jobs=0 is not valid: use None or -1 for all cores, 1 for serial")
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


def as_tokens(x, name: str, vocab_size: int | None) -> np.ndarray:
    """Validate one sequence of token ids; return it as C-contiguous int32."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise UsageError(f"{name} must be a 1-D sequence of token ids, got an array of "
                         f"shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int32)
    if arr.dtype.kind not in "iu":
        hint = (" (encode token strings with archalign.Vocabulary first)"
                if arr.dtype.kind in "USO" else "")
        raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}{hint}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise UsageError(f"{name} holds the negative token id {lo}; ids must be >= 0")
    if vocab_size is not None and hi >= vocab_size:
        raise UsageError(f"{name} holds token id {hi}, but the substitution matrix only "
                         f"covers ids 0..{vocab_size - 1}; enlarge the matrix or re-encode")
    if hi > _INT32_MAX:
        raise UsageError(f"{name} holds token id {hi}, above the supported 2**31 - 1")
    return np.ascontiguousarray(arr, dtype=np.int32)


def check_scoring(scoring) -> Scoring:
    if scoring is None:
        return Scoring()
    if not isinstance(scoring, Scoring):
        raise TypeError(f"scoring must be an archalign.Scoring, got {type(scoring).__name__}")
    return scoring


def scalar_args(scoring: Scoring, max_len_sum: int):
    """Arguments of the scalar kernels: exact int64 when possible, else float64."""
    ints = scoring.integer_form
    if ints is not None and (max_len_sum + 2) * ints.maxabs < _INT64_BOUND:
        S = ints.substitution if ints.substitution is not None else np.zeros((1, 1), np.int64)
        return (S, ints.match, ints.mismatch, ints.gap_open, ints.gap_extend,
                scoring.substitution is None, _INT64_NEG), float(ints.scale)
    S = scoring.substitution if scoring.substitution is not None else np.zeros((1, 1))
    flat = scoring.substitution is None
    return (S, float(scoring.match or 0.0), float(scoring.mismatch or 0.0),
            scoring.gap_open, scoring.gap_extend, flat, -np.inf), 1.0


def pack_sequences(seqs: list[np.ndarray]):
    """Concatenate sequences into one token buffer plus CSR-style offsets."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # one spare element keeps the buffer's data pointer valid when all are empty
    tokens = np.concatenate(seqs + [np.zeros(1, np.int32)]).astype(np.int32, copy=False)
    return tokens, offsets


def pairwise_threads(seqs, scoring: Scoring, n_jobs: int | None = None,
                     others=None) -> np.ndarray:
    """``pairwise`` in memory on threads (see :func:`archalign.alignment.aligner.pairwise`)."""
    V = scoring.vocab_size
    queries = [as_tokens(s, f"seqs[{k}]", V) for k, s in enumerate(seqs)]
    if others is None:
        targets, symmetric = queries, scoring.symmetric
    else:
        targets = [as_tokens(s, f"others[{k}]", V) for k, s in enumerate(others)]
        symmetric = False
    out = np.empty((len(queries), len(targets)), dtype=np.float64)
    if out.size == 0:
        return out
    n_threads = effective_n_jobs(n_jobs)
    max_sum = max(map(len, queries)) + max(map(len, targets))
    ints = scoring.integer_form
    if ints is not None and (max_sum + 2) * ints.maxabs <= _nw.I32_BOUND:
        _pairwise_lanes(queries, targets, symmetric, scoring, out, n_threads)
    else:
        _pairwise_scalar(queries, targets, symmetric, scoring, out, n_threads, max_sum)
    return out


def _pairwise_lanes(queries, targets, symmetric, scoring, out, n_threads):
    ints = scoring.integer_form
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
    ttok, toff = pack_sequences([targets[k] for k in t_order])
    tcol = t_order.astype(np.int64)
    n_blocks = -(-len(targets) // lanes)
    if symmetric:
        qtok, qoff, qrow = ttok, toff, tcol
        # Block b only needs queries up to its last target (pairs q <= t).
        q_ends = [min((b + 1) * lanes, len(targets)) for b in range(n_blocks)]
    else:
        qtok, qoff = pack_sequences(queries)
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
    qtok, qoff = pack_sequences(queries)
    ttok, toff = pack_sequences(targets)
    args, scale = scalar_args(scoring, max_sum)
    result = np.empty(len(pairs), dtype=np.float64)
    _nw.pairwise_scalar(qtok, qoff, ttok, toff, pairs, *args, scale, result, n_threads)
    out[pairs[:, 0], pairs[:, 1]] = result
    if symmetric:
        out[pairs[:, 1], pairs[:, 0]] = result
