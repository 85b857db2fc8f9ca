# cython: language_level=3
"""Compiled Needleman-Wunsch core. Private: use archalign.score/align/pairwise.

Inputs arrive validated and C-contiguous from archalign.alignment.core, which also
decides the integer width; this module only runs loops. Scores on the
integer paths are exact; the caller divides by its scale factor.
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.stdlib cimport calloc, free, malloc

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

# setup.py defines ARCHALIGN_DEBUG in the debug build (ARCHALIGN_CYTHON_DEBUG=1),
# which also turns Cython's boundscheck and initializedcheck on.
cdef extern from *:
    """
    #ifndef ARCHALIGN_DEBUG
    #define ARCHALIGN_DEBUG 0
    #endif
    """
    int ARCHALIGN_DEBUG

LANES = NW_LANES
DEBUG_BUILD = bool(ARCHALIGN_DEBUG)  # built with bounds checks (see setup.py)
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
    # An empty sequence has no element 0; its pointer is never read.
    with nogil:
        result = _score_rows(&a[0] if a.shape[0] else NULL, a.shape[0],
                             &b[0] if n else NULL, n, S, match, mismatch,
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


# pairwise_lanes runs the lane kernels over many (query, target block) items on
# threads. The helpers below each do one step of an item; the ones that index
# memoryviews propagate the IndexError of a debug build (except -1).

cdef struct LaneArgs:
    # What every item of one pairwise_lanes call shares, read-only.
    long match
    long mismatch
    long open_
    long extend
    long maxabs
    bint affine
    bint flat
    bint small_ids
    bint symmetric
    double scale
    Py_ssize_t V            # rows and columns of S
    const int32_t *S        # NULL with flat scoring
    int64_t profile_size    # bytes of one thread's profile


cdef struct Work:
    # One thread's buffers, and the item and run of queries it has in hand.
    int32_t *block          # the item's targets interleaved by lane (int16 or int32)
    int32_t *H              # DP rows of all lanes (int16 or int32)
    int32_t *E
    int32_t *sc
    int32_t *profile        # the run's scores: a row per distinct query token
    int32_t *slot           # slot[c]: token c's profile row, -1 for none
    int32_t *ids            # ids[row]: the token of a profile row
    int32_t *rq             # a query rewritten as profile rows
    int32_t *cols           # the block as column indices into rows of S (nw_gather_row)
    # The item: targets first .. first + count - 1 against queries q_start .. q_end - 1.
    Py_ssize_t first
    Py_ssize_t count
    Py_ssize_t q_start
    Py_ssize_t q_end
    int64_t ncols           # the longest target's length
    bint wide               # int32 lanes, else int16
    int64_t cap             # profile rows that fit profile_size at this width
    # The run: queries that share one profile.
    int64_t nrows           # profile rows in use
    bint gather             # a query with too many tokens for a profile gathers S's rows


cdef int _check_span(const int64_t[::1] off, Py_ssize_t k, Py_ssize_t n) except -1 nogil:
    """Debug builds: sequence k, tokens off[k]:off[k + 1], lies in a buffer of n.

    The kernels read sequences through pointers, which boundscheck does not
    see; in a release build this compiles to nothing.
    """
    if ARCHALIGN_DEBUG:
        if not 0 <= off[k] <= off[k + 1] <= n:
            with gil:
                raise IndexError(f"sequence {k} spans tokens {off[k]}..{off[k + 1]} "
                                 f"of a buffer of {n}")
    return 0


cdef int64_t _longest(const int64_t[::1] off, Py_ssize_t lo, Py_ssize_t hi) except -1 nogil:
    """Length of the longest of sequences lo .. hi - 1; 0 when there are none."""
    cdef int64_t best = 0
    cdef Py_ssize_t k
    for k in range(lo, hi):
        if off[k + 1] - off[k] > best:
            best = off[k + 1] - off[k]
    return best


cdef bint _needs_int32(int64_t qmax, int64_t ncols, const LaneArgs *a) noexcept nogil:
    """Whether an item needs int32 lanes: with queries up to qmax and targets up
    to ncols long a score could overflow int16, or token ids do not fit int16."""
    return (qmax + ncols + 2) * a.maxabs > NW_I16_BOUND or not a.small_ids


cdef Work *_work_new(const LaneArgs *a, int64_t max_tlen, int64_t max_qlen) noexcept nogil:
    """One thread's buffers; NULL when an allocation fails."""
    cdef size_t lane_bytes = (max_tlen + 1) * NW_LANES * sizeof(int32_t)
    cdef Py_ssize_t c
    cdef Work *w = <Work *> calloc(1, sizeof(Work))
    if w == NULL:
        return NULL
    w.block = <int32_t *> malloc(lane_bytes)
    w.H = <int32_t *> malloc(lane_bytes)
    w.E = <int32_t *> malloc(lane_bytes)
    w.sc = <int32_t *> malloc(lane_bytes)
    if not a.flat:
        w.profile = <int32_t *> malloc(a.profile_size)
        w.slot = <int32_t *> malloc(a.V * sizeof(int32_t))
        w.ids = <int32_t *> malloc(a.V * sizeof(int32_t))
        w.rq = <int32_t *> malloc((max_qlen + 1) * sizeof(int32_t))
        w.cols = <int32_t *> malloc(lane_bytes)
        if w.slot != NULL:
            for c in range(a.V):
                w.slot[c] = -1
    if (w.block == NULL or w.H == NULL or w.E == NULL or w.sc == NULL or
            (not a.flat and (w.profile == NULL or w.slot == NULL or w.ids == NULL or
                             w.rq == NULL or w.cols == NULL))):
        _work_free(w)
        return NULL
    return w


cdef void _work_free(Work *w) noexcept nogil:
    if w == NULL:
        return
    free(w.block)
    free(w.H)
    free(w.E)
    free(w.sc)
    free(w.profile)
    free(w.slot)
    free(w.ids)
    free(w.rq)
    free(w.cols)
    free(w)


cdef int _start_item(Work *w, Py_ssize_t it, const int64_t[:, ::1] items,
                     const int32_t[::1] ttok, const int64_t[::1] toff,
                     const int64_t[::1] qoff, const LaneArgs *a) except -1 nogil:
    """Take item `it`: its targets and queries, its lane width, its target block."""
    cdef Py_ssize_t l
    w.first = items[it, 0] * NW_LANES
    w.count = min(toff.shape[0] - 1 - w.first, NW_LANES)
    w.q_start = items[it, 1]
    w.q_end = items[it, 2]
    for l in range(w.count):
        _check_span(toff, w.first + l, ttok.shape[0])
    w.ncols = _longest(toff, w.first, w.first + w.count)
    w.wide = _needs_int32(_longest(qoff, w.q_start, w.q_end), w.ncols, a)
    _fill_block(w, &ttok[0], &toff[0], a)
    return 0


cdef void _fill_block(Work *w, const int32_t *ttok, const int64_t *toff,
                      const LaneArgs *a) noexcept nogil:
    """Interleave the item's targets into w.block at its width (and, with a
    substitution matrix, into w.cols as int32 ids), and size its profile."""
    if w.wide:
        nw_fill_block_i32(ttok, toff, w.first, w.count, w.ncols, -1, w.block)
    else:
        nw_fill_block_i16(ttok, toff, w.first, w.count, w.ncols, -1, <int16_t *> w.block)
    if not a.flat:
        nw_fill_block_i32(ttok, toff, w.first, w.count, w.ncols, 0, w.cols)
    # Profile rows that fit the budget at this block's length and width.
    if w.ncols == 0:
        w.cap = a.V
    else:
        w.cap = a.profile_size // (w.ncols * NW_LANES * (4 if w.wide else 2))


cdef Py_ssize_t _start_run(Work *w, Py_ssize_t q, const int32_t[::1] qtok,
                           const int64_t[::1] qoff, const LaneArgs *a) except -1 nogil:
    """Queries q .. g - 1 are aligned next, sharing one profile; returns g.

    With flat scoring that is all the item's queries. With a substitution
    matrix, queries join while their distinct tokens fit w.cap profile rows,
    and the profile is built for them; a query that alone needs more rows
    runs by itself and gathers rows of S instead (w.gather).
    """
    cdef Py_ssize_t g = q
    cdef int64_t r
    w.gather = False
    w.nrows = 0
    if a.flat:
        return w.q_end
    while g < w.q_end:
        _check_span(qoff, g, qtok.shape[0])
        r = nw_assign_rows(&qtok[0] + qoff[g], qoff[g + 1] - qoff[g],
                           w.slot, w.ids, w.nrows, w.cap)
        if r < 0:
            break
        w.nrows = r
        g += 1
    if g == q:
        w.gather = True
        return q + 1
    if w.wide:
        nw_build_profile_i32(w.cols, w.ncols, a.S, a.V, w.ids, w.nrows, w.profile)
    else:
        nw_build_profile_i16(w.cols, w.ncols, a.S, a.V, w.ids, w.nrows,
                             <int16_t *> w.profile)
    return g


cdef void _end_run(Work *w) noexcept nogil:
    """Forget the run's profile rows, so that the next run starts empty."""
    cdef int64_t r
    for r in range(w.nrows):
        w.slot[w.ids[r]] = -1


cdef int _align_query(Work *w, Py_ssize_t k, const int32_t[::1] qtok,
                      const int64_t[::1] qoff, const LaneArgs *a) except -1 nogil:
    """Query k against every lane of the item's block; the last DP row ends in w.H."""
    cdef Py_ssize_t i, m
    cdef const int32_t *qp
    cdef int32_t *profile = NULL
    _check_span(qoff, k, qtok.shape[0])
    m = qoff[k + 1] - qoff[k]
    qp = &qtok[0] + qoff[k]
    if not a.flat and not w.gather:
        for i in range(m):
            w.rq[i] = w.slot[qp[i]]
        qp = w.rq
        profile = w.profile
    if w.wide:
        nw_lanes_i32(qp, m, w.block, w.ncols, profile, a.S, w.cols, a.V,
                     a.match, a.mismatch, a.open_, a.extend, a.affine, w.H, w.E, w.sc)
    else:
        nw_lanes_i16(qp, m, <int16_t *> w.block, w.ncols, <int16_t *> profile, a.S,
                     w.cols, a.V, <int16_t> a.match, <int16_t> a.mismatch,
                     <int16_t> a.open_, <int16_t> a.extend, a.affine,
                     <int16_t *> w.H, <int16_t *> w.E, <int16_t *> w.sc)
    return 0


cdef int _store_scores(Work *w, Py_ssize_t k, const int64_t[::1] toff,
                       const int64_t[::1] qrow, const int64_t[::1] tcol,
                       double[:, ::1] out, const LaneArgs *a) except -1 nogil:
    """Query k's scores against the item's targets, each read off the last DP
    row at its own length, into out (and the transpose when symmetric)."""
    cdef Py_ssize_t l, t
    cdef int64_t tlen, raw
    cdef double value
    for l in range(w.count):
        t = w.first + l
        if a.symmetric and k > t:
            continue
        tlen = toff[t + 1] - toff[t]
        if w.wide:
            raw = w.H[tlen * NW_LANES + l]
        else:
            raw = (<int16_t *> w.H)[tlen * NW_LANES + l]
        value = raw / a.scale
        out[qrow[k], tcol[t]] = value
        if a.symmetric:
            out[tcol[t], qrow[k]] = value
    return 0


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
    cdef int64_t max_tlen = _longest(toff, 0, toff.shape[0] - 1)
    cdef int64_t max_qlen = _longest(qoff, 0, qoff.shape[0] - 1)
    cdef Py_ssize_t V = S.shape[0], it, q, g, k
    cdef LaneArgs a = LaneArgs(
        match=match, mismatch=mismatch, open_=open_, extend=extend, maxabs=maxabs,
        affine=affine, flat=flat, small_ids=small_ids, symmetric=symmetric, scale=scale,
        V=V, S=NULL,
        # More than every id's row at the longest block is never needed; at
        # least one byte so that malloc has something to allocate.
        profile_size=max(1, min(profile_bytes, V * max_tlen * NW_LANES * 4)))
    cdef Work *w = NULL
    # Shared through a pointer: a plain variable assigned inside a parallel
    # block would be thread-private.
    cdef int fail[1]
    fail[0] = 0
    if not flat:
        a.S = &S[0, 0]
    with nogil, parallel(num_threads=n_threads):
        # Allocated inside the parallel region so each thread first-touches its own.
        w = _work_new(&a, max_tlen, max_qlen)
        if w == NULL:
            fail[0] = 1
        # Every thread must reach the worksharing loop; a failed one skips work.
        for it in prange(items.shape[0], schedule="dynamic"):
            if fail[0]:
                continue
            _start_item(w, it, items, ttok, toff, qoff, &a)
            q = w.q_start
            while q < w.q_end:
                g = _start_run(w, q, qtok, qoff, &a)
                for k in range(q, g):
                    _align_query(w, k, qtok, qoff, &a)
                    _store_scores(w, k, toff, qrow, tcol, out, &a)
                _end_run(w)
                q = g
        _work_free(w)
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
    cdef int64_t max_tlen = _longest(toff, 0, toff.shape[0] - 1)
    cdef score_t *H = NULL
    cdef score_t *E = NULL
    # Shared through a pointer: a plain variable assigned inside a parallel
    # block would be thread-private.
    cdef int fail[1]
    fail[0] = 0
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
            _check_span(qoff, q, qtok.shape[0])
            _check_span(toff, t, ttok.shape[0])
            result[k] = _score_rows(&qtok[0] + qoff[q], qoff[q + 1] - qoff[q],
                                    &ttok[0] + toff[t], toff[t + 1] - toff[t],
                                    S, match, mismatch, open_, extend,
                                    flat, neg, H, E) / scale
        free(H)
        free(E)
    if fail[0]:
        raise MemoryError("pairwise: could not allocate per-thread DP buffers")
