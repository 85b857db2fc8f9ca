# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled Needleman-Wunsch core. Private: use archalign.score/align/pairwise.

Inputs arrive validated and C-contiguous from archalign.alignment.core, which also
decides the integer width; this module only runs loops. Scores on the
integer paths are exact; the caller divides by its scale factor.
"""
cimport cython
from cython.parallel cimport parallel, prange
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc

import numpy as np

cdef extern from "_nw_kernels.h" nogil:
    int NW_LANES
    int NW_MULTIVERSIONED
    int NW_I16_BOUND
    int NW_I32_BOUND
    void nw_fill_block_i16(const int32_t *tok, const int64_t *off, int64_t first,
                           int64_t count, int64_t ncols, int16_t pad, int16_t *block)
    void nw_fill_block_i32(const int32_t *tok, const int64_t *off, int64_t first,
                           int64_t count, int64_t ncols, int32_t pad, int32_t *block)
    int64_t nw_assign_rows(const int32_t *q, int64_t m, int32_t *slot,
                           int32_t *ids, int64_t nrows, int64_t cap)
    void nw_build_profile_i16(const int32_t *cols, int64_t ncols, const int32_t *S,
                              int64_t V, const int32_t *ids, int64_t nrows,
                              int16_t *profile)
    void nw_build_profile_i32(const int32_t *cols, int64_t ncols, const int32_t *S,
                              int64_t V, const int32_t *ids, int64_t nrows,
                              int32_t *profile)
    void nw_lanes_i16(const int32_t *q, int64_t m, const int16_t *block,
                      int64_t ncols, const int16_t *profile, const int32_t *S,
                      const int32_t *cols, int64_t V, int16_t match,
                      int16_t mismatch, int16_t open, int16_t extend, int affine,
                      int16_t *H, int16_t *E, int16_t *sc)
    void nw_lanes_i32(const int32_t *q, int64_t m, const int32_t *block,
                      int64_t ncols, const int32_t *profile, const int32_t *S,
                      const int32_t *cols, int64_t V, int32_t match,
                      int32_t mismatch, int32_t open, int32_t extend, int affine,
                      int32_t *H, int32_t *E, int32_t *sc)
    int64_t nw_diag_i16(const int32_t *a, int64_t m, const int32_t *brev,
                        int64_t n, int16_t match, int16_t mismatch, int16_t open,
                        int16_t extend, int affine, int16_t *work)
    int64_t nw_diag_i32(const int32_t *a, int64_t m, const int32_t *brev,
                        int64_t n, int32_t match, int32_t mismatch, int32_t open,
                        int32_t extend, int affine, int32_t *work)

# OpenMP is optional at build time (setup.py probes it); without it these
# shims make the parallel code run serially and openmp_enabled() says so.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define ARCHALIGN_OPENMP 1
    #else
    #define ARCHALIGN_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int ARCHALIGN_OPENMP
    int omp_get_max_threads() nogil

LANES = NW_LANES
I16_BOUND = NW_I16_BOUND
I32_BOUND = NW_I32_BOUND


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(ARCHALIGN_OPENMP)


def multiversioned():
    """True when the SIMD kernels carry AVX-512/AVX2 clones picked at run time."""
    return bool(NW_MULTIVERSIONED)


def omp_max_threads():
    return omp_get_max_threads()


ctypedef fused score_t:
    int64_t
    double

# Trace codes stored per cell by align_scalar; bit flags so one byte holds
# the H, E and F decisions of the affine recursion.
cdef enum:
    H_DIAG = 1
    H_UP = 2
    H_LEFT = 3
    E_EXTEND = 4
    F_EXTEND = 8


cdef inline score_t _sub(const int32_t x, const int32_t y, const score_t[:, ::1] S,
                         score_t match, score_t mismatch, bint flat) noexcept nogil:
    if flat:
        return match if x == y else mismatch
    return S[x, y]


cdef score_t _score_rows(const int32_t *a, Py_ssize_t m, const int32_t *b,
                         Py_ssize_t n, const score_t[:, ::1] S, score_t match,
                         score_t mismatch, score_t open_, score_t extend, bint flat,
                         score_t neg, score_t *H, score_t *E) noexcept nogil:
    """Row-wise Gotoh recursion, O(n) memory. H and E: n + 1 each."""
    cdef Py_ssize_t i, j
    cdef score_t diag, up, left, f, e, v
    H[0] = 0
    E[0] = neg
    for j in range(1, n + 1):
        H[j] = open_ + (j - 1) * extend
        E[j] = neg
    for i in range(1, m + 1):
        diag = H[0]
        H[0] = open_ + (i - 1) * extend
        left = H[0]
        f = neg
        for j in range(1, n + 1):
            up = H[j]
            e = up + open_
            if E[j] + extend > e:
                e = E[j] + extend
            if left + open_ > f + extend:
                f = left + open_
            else:
                f = f + extend
            v = diag + _sub(a[i - 1], b[j - 1], S, match, mismatch, flat)
            if e > v:
                v = e
            if f > v:
                v = f
            diag = up
            H[j] = v
            E[j] = e
            left = v
    return H[n]


def score_scalar(const int32_t[::1] a, const int32_t[::1] b, const score_t[:, ::1] S,
                 score_t match, score_t mismatch, score_t open_, score_t extend,
                 bint flat, score_t neg):
    """Global score by the scalar recursion (any width, floats included)."""
    cdef Py_ssize_t n = b.shape[0]
    cdef score_t *H = <score_t *> malloc((n + 1) * sizeof(score_t))
    cdef score_t *E = <score_t *> malloc((n + 1) * sizeof(score_t))
    cdef score_t result
    if H == NULL or E == NULL:
        free(H)
        free(E)
        raise MemoryError()
    with nogil:
        result = _score_rows(&a[0], a.shape[0], &b[0], n, S, match, mismatch,
                             open_, extend, flat, neg, H, E)
    free(H)
    free(E)
    return result


def score_diag(const int32_t[::1] a, const int32_t[::1] b, long match, long mismatch,
               long open_, long extend, bint affine, int width):
    """Flat-scoring global score by the anti-diagonal SIMD kernel.

    width is 16 or 32: the caller guarantees the scores fit (see I16_BOUND).
    """
    cdef Py_ssize_t m = a.shape[0], n = b.shape[0]
    cdef int32_t[::1] brev = np.ascontiguousarray(np.asarray(b)[::-1])
    cdef void *work = malloc(7 * (m + 1) * (2 if width == 16 else 4))
    cdef int64_t result
    if work == NULL:
        raise MemoryError()
    # An empty b makes brev a zero-length view; its data pointer is never read.
    with nogil:
        if width == 16:
            result = nw_diag_i16(&a[0] if m else NULL, m, &brev[0] if n else NULL, n,
                                 <int16_t> match, <int16_t> mismatch,
                                 <int16_t> open_, <int16_t> extend, affine,
                                 <int16_t *> work)
        else:
            result = nw_diag_i32(&a[0] if m else NULL, m, &brev[0] if n else NULL, n,
                                 <int32_t> match, <int32_t> mismatch,
                                 <int32_t> open_, <int32_t> extend, affine,
                                 <int32_t *> work)
    free(work)
    return result


def align_scalar(const int32_t[::1] a, const int32_t[::1] b, const score_t[:, ::1] S,
                 score_t match, score_t mismatch, score_t open_, score_t extend,
                 bint flat, score_t neg):
    """Full Gotoh fill with a trace byte per cell, then one traceback.

    Returns (score, path) where path is an int64 array of (i, j) pairs, -1
    marking a gap. Ties prefer a diagonal step, then up, then left, so the
    alignment is deterministic.
    """
    cdef Py_ssize_t m = a.shape[0], n = b.shape[0], i, j, k
    cdef score_t *H = <score_t *> malloc((n + 1) * sizeof(score_t))
    cdef score_t *E = <score_t *> malloc((n + 1) * sizeof(score_t))
    trace_arr = np.zeros((m + 1, n + 1), dtype=np.uint8)
    cdef uint8_t[:, ::1] tr = trace_arr
    cdef score_t diag, up, left, f, e, v, result
    cdef uint8_t code
    if H == NULL or E == NULL:
        free(H)
        free(E)
        raise MemoryError()
    with nogil:
        H[0] = 0
        E[0] = neg
        for j in range(1, n + 1):
            H[j] = open_ + (j - 1) * extend
            E[j] = neg
            tr[0, j] = H_LEFT | (F_EXTEND if j > 1 else 0)
        for i in range(1, m + 1):
            tr[i, 0] = H_UP | (E_EXTEND if i > 1 else 0)
            diag = H[0]
            H[0] = open_ + (i - 1) * extend
            left = H[0]
            f = neg
            for j in range(1, n + 1):
                code = 0
                up = H[j]
                e = up + open_
                if E[j] + extend > e:
                    e = E[j] + extend
                    code = E_EXTEND
                if left + open_ >= f + extend:
                    f = left + open_
                else:
                    f = f + extend
                    code = code | F_EXTEND
                v = diag + _sub(a[i - 1], b[j - 1], S, match, mismatch, flat)
                if v >= e and v >= f:
                    code = code | H_DIAG
                elif e >= f:
                    v = e
                    code = code | H_UP
                else:
                    v = f
                    code = code | H_LEFT
                tr[i, j] = code
                diag = up
                H[j] = v
                E[j] = e
                left = v
        result = H[n]
    free(H)
    free(E)
    return result, _traceback(tr, m, n)


cdef _traceback(const uint8_t[:, ::1] tr, Py_ssize_t i, Py_ssize_t j):
    # state 0: in H; 1: inside a vertical gap (E); 2: inside a horizontal gap (F)
    path = np.empty((i + j, 2), dtype=np.int64)
    cdef int64_t[:, ::1] p = path
    cdef Py_ssize_t k = 0
    cdef int state = 0
    cdef uint8_t code
    while i > 0 or j > 0:
        code = tr[i, j]
        if state == 0:
            if (code & 3) == H_DIAG:
                i -= 1
                j -= 1
                p[k, 0] = i
                p[k, 1] = j
                k += 1
                continue
            state = 1 if (code & 3) == H_UP else 2
        if state == 1:
            i -= 1
            p[k, 0] = i
            p[k, 1] = -1
            state = 1 if (code & E_EXTEND) else 0
        else:
            j -= 1
            p[k, 0] = -1
            p[k, 1] = j
            state = 2 if (code & F_EXTEND) else 0
        k += 1
    return path[:k][::-1].copy()


@cython.boundscheck(False)
@cython.wraparound(False)
def pairwise_lanes(const int32_t[::1] qtok, const int64_t[::1] qoff,
                   const int64_t[::1] qrow,
                   const int32_t[::1] ttok, const int64_t[::1] toff,
                   const int64_t[::1] tcol,
                   const int64_t[:, ::1] items, const int32_t[:, ::1] S,
                   long match, long mismatch, long open_, long extend,
                   bint affine, bint flat, long maxabs, bint small_ids,
                   bint symmetric, int64_t profile_bytes, double scale,
                   double[:, ::1] out, int n_threads):
    """All (query, target) global scores with the SIMD lane kernel.

    Targets are grouped in blocks of LANES consecutive sequences (callers sort
    them by decreasing length so a block wastes little padding). Each row of
    ``items`` is (block, q_start, q_end): the queries q_start..q_end-1 against
    that block. Scores land in out[qrow[q], tcol[t]] divided by ``scale``; with
    ``symmetric`` the queries are the targets, only pairs q <= t are written and
    the transpose is filled too.

    The integer width is chosen per item from ``maxabs`` (the largest |score|
    of one step) and the item's longest sequences, so no addition overflows;
    int16 also needs token ids below 2**15 (``small_ids``: the caller remaps
    ids densely, and S to those ids, so ids index S's rows and columns).

    With a substitution matrix, an item's queries are taken in runs whose
    distinct tokens fit a profile of at most ``profile_bytes`` per thread. The
    profile holds the block's scores only for those tokens (a few hundred rows
    even when V is in the thousands, so it costs far less to build than the
    alignments it serves) and the run's queries are rewritten as profile row
    numbers. A query that alone needs more rows gathers S[a][block] per row.
    """
    cdef Py_ssize_t n_items = items.shape[0], nt = toff.shape[0] - 1
    cdef Py_ssize_t nq = qoff.shape[0] - 1
    cdef Py_ssize_t V = S.shape[0]
    cdef int64_t max_tlen = 0, max_qlen = 0, t
    cdef Py_ssize_t it, q, g, k, i, j, l, first, count, ncols, m, qmax
    cdef int64_t tlen, bound, cap, nrows, r, profile_size
    cdef int32_t *block
    cdef int32_t *H
    cdef int32_t *E
    cdef int32_t *sc
    cdef int32_t *profile
    cdef int32_t *slot
    cdef int32_t *ids
    cdef int32_t *rq
    cdef int32_t *cols
    cdef const int32_t *qp
    cdef const int32_t *Sp = NULL
    cdef bint wide, gather
    cdef double value
    cdef int64_t raw
    # Shared through a pointer: a plain variable assigned inside a parallel
    # block would be thread-private.
    cdef int fail[1]
    fail[0] = 0
    for t in range(nt):
        if toff[t + 1] - toff[t] > max_tlen:
            max_tlen = toff[t + 1] - toff[t]
    for q in range(nq):
        if qoff[q + 1] - qoff[q] > max_qlen:
            max_qlen = qoff[q + 1] - qoff[q]
    # More than every id's row at the longest block is never needed; at least
    # one byte so that malloc has something to allocate.
    profile_size = max(1, min(profile_bytes, V * max_tlen * NW_LANES * 4))
    if not flat:
        Sp = &S[0, 0]

    with nogil, parallel(num_threads=n_threads):
        # Per-thread buffers, allocated inside the parallel region so each
        # thread first-touches its own memory.
        block = <int32_t *> malloc((max_tlen + 1) * NW_LANES * sizeof(int32_t))
        H = <int32_t *> malloc((max_tlen + 1) * NW_LANES * sizeof(int32_t))
        E = <int32_t *> malloc((max_tlen + 1) * NW_LANES * sizeof(int32_t))
        sc = <int32_t *> malloc((max_tlen + 1) * NW_LANES * sizeof(int32_t))
        # Profile state: slot[c] is token c's profile row (-1: none), ids[row]
        # its token, rq a query rewritten as rows, cols the block as indices
        # into rows of S (see nw_gather_row).
        profile = slot = ids = rq = cols = NULL
        if not flat:
            profile = <int32_t *> malloc(profile_size)
            slot = <int32_t *> malloc(V * sizeof(int32_t))
            ids = <int32_t *> malloc(V * sizeof(int32_t))
            rq = <int32_t *> malloc((max_qlen + 1) * sizeof(int32_t))
            cols = <int32_t *> malloc((max_tlen + 1) * NW_LANES * sizeof(int32_t))
            if slot != NULL:
                for j in range(V):
                    slot[j] = -1
        if (block == NULL or H == NULL or E == NULL or sc == NULL or
                (not flat and (profile == NULL or slot == NULL or ids == NULL or
                               rq == NULL or cols == NULL))):
            fail[0] = 1
        # Every thread must reach the worksharing loop; a failed one skips work.
        for it in prange(n_items, schedule="dynamic"):
            if fail[0]:
                continue
            first = items[it, 0] * NW_LANES
            count = nt - first
            if count > NW_LANES:
                count = NW_LANES
            ncols = toff[first + 1] - toff[first]
            for l in range(1, count):
                if toff[first + l + 1] - toff[first + l] > ncols:
                    ncols = toff[first + l + 1] - toff[first + l]
            qmax = 0
            for q in range(items[it, 1], items[it, 2]):
                if qoff[q + 1] - qoff[q] > qmax:
                    qmax = qoff[q + 1] - qoff[q]
            bound = (qmax + ncols + 2) * maxabs
            wide = bound > NW_I16_BOUND or not small_ids
            if wide:
                nw_fill_block_i32(&ttok[0], &toff[0], first, count, ncols, -1, block)
            else:
                nw_fill_block_i16(&ttok[0], &toff[0], first, count, ncols, -1,
                                  <int16_t *> block)
            if not flat:
                nw_fill_block_i32(&ttok[0], &toff[0], first, count, ncols, 0, cols)
            # Profile rows that fit the budget at this block's length and width.
            cap = V if ncols == 0 else profile_size // (ncols * NW_LANES * (4 if wide else 2))
            q = items[it, 1]
            while q < items[it, 2]:
                # Queries q..g-1 are aligned next, sharing one profile.
                gather = False
                nrows = 0
                if flat:
                    g = items[it, 2]
                else:
                    g = q
                    while g < items[it, 2]:
                        r = nw_assign_rows(&qtok[0] + qoff[g], qoff[g + 1] - qoff[g],
                                           slot, ids, nrows, cap)
                        if r < 0:
                            break
                        nrows = r
                        g = g + 1
                    if g == q:
                        gather = True
                        g = q + 1
                    elif wide:
                        nw_build_profile_i32(cols, ncols, Sp, V, ids, nrows, profile)
                    else:
                        nw_build_profile_i16(cols, ncols, Sp, V, ids, nrows,
                                             <int16_t *> profile)
                for k in range(q, g):
                    m = qoff[k + 1] - qoff[k]
                    qp = &qtok[0] + qoff[k]
                    if not flat and not gather:
                        for i in range(m):
                            rq[i] = slot[qp[i]]
                        qp = rq
                    if wide:
                        nw_lanes_i32(qp, m, block, ncols,
                                     NULL if flat or gather else profile,
                                     Sp, cols, V, match, mismatch, open_, extend,
                                     affine, H, E, sc)
                    else:
                        nw_lanes_i16(qp, m, <int16_t *> block, ncols,
                                     NULL if flat or gather else <int16_t *> profile,
                                     Sp, cols, V, <int16_t> match, <int16_t> mismatch,
                                     <int16_t> open_, <int16_t> extend, affine,
                                     <int16_t *> H, <int16_t *> E, <int16_t *> sc)
                    for l in range(count):
                        t = first + l
                        if symmetric and k > t:
                            continue
                        tlen = toff[t + 1] - toff[t]
                        if wide:
                            raw = H[tlen * NW_LANES + l]
                        else:
                            raw = (<int16_t *> H)[tlen * NW_LANES + l]
                        value = raw / scale
                        out[qrow[k], tcol[t]] = value
                        if symmetric:
                            out[tcol[t], qrow[k]] = value
                # Forget the run's rows so the next run starts empty.
                for r in range(nrows):
                    slot[ids[r]] = -1
                q = g
        free(block)
        free(H)
        free(E)
        free(sc)
        free(profile)
        free(slot)
        free(ids)
        free(rq)
        free(cols)
    if fail[0]:
        raise MemoryError("pairwise: could not allocate per-thread DP buffers")


def pairwise_scalar(const int32_t[::1] qtok, const int64_t[::1] qoff,
                    const int32_t[::1] ttok, const int64_t[::1] toff,
                    const int64_t[:, ::1] pairs, const score_t[:, ::1] S,
                    score_t match, score_t mismatch, score_t open_, score_t extend,
                    bint flat, score_t neg, double scale, double[::1] result,
                    int n_threads):
    """Scores of the listed (query, target) pairs with the scalar recursion.

    The fallback of pairwise() for float scores and for scores too large for
    int32; result[k] receives pair k divided by ``scale``.
    """
    cdef Py_ssize_t n_pairs = pairs.shape[0], k, q, t
    cdef int64_t max_tlen = 0
    cdef score_t *H
    cdef score_t *E
    # Shared through a pointer: a plain variable assigned inside a parallel
    # block would be thread-private.
    cdef int fail[1]
    fail[0] = 0
    for t in range(toff.shape[0] - 1):
        if toff[t + 1] - toff[t] > max_tlen:
            max_tlen = toff[t + 1] - toff[t]
    with nogil, parallel(num_threads=n_threads):
        H = <score_t *> malloc((max_tlen + 1) * sizeof(score_t))
        E = <score_t *> malloc((max_tlen + 1) * sizeof(score_t))
        if H == NULL or E == NULL:
            fail[0] = 1
        for k in prange(n_pairs, schedule="dynamic"):
            q = pairs[k, 0]
            t = pairs[k, 1]
            if fail[0]:
                continue
            result[k] = _score_rows(&qtok[0] + qoff[q], qoff[q + 1] - qoff[q],
                                    &ttok[0] + toff[t], toff[t + 1] - toff[t],
                                    S, match, mismatch, open_, extend,
                                    flat, neg, H, E) / scale
        free(H)
        free(E)
    if fail[0]:
        raise MemoryError("pairwise: could not allocate per-thread DP buffers")
