# cython: language_level=3
"""Compiled tandem-repeat rolling. Private: use archalign.roll.

Implements exactly the rule of ``archalign.tracing.rolling`` (and of its reference,
``archalign.tracing._roll_reference``): sweeps from the longest period down to 1, one
left-to-right pass per period, until a whole sweep changes nothing.
"""
from libc.stdint cimport int32_t, int64_t

import numpy as np

# setup.py defines ARCHALIGN_DEBUG in the debug build (ARCHALIGN_CYTHON_DEBUG=1),
# which also turns Cython's boundscheck and initializedcheck on.
cdef extern from *:
    """
    #ifndef ARCHALIGN_DEBUG
    #define ARCHALIGN_DEBUG 0
    #endif
    """
    int ARCHALIGN_DEBUG

DEBUG_BUILD = bool(ARCHALIGN_DEBUG)  # built with bounds checks (see setup.py)


cdef bint _pass(int32_t *x, int64_t *c, Py_ssize_t *n_ptr, Py_ssize_t p,
                Py_ssize_t *run) noexcept nogil:
    """Collapse every tandem repeat of period p, left to right; True if any."""
    cdef Py_ssize_t n = n_ptr[0], i, w, t, k, copies
    cdef int64_t total
    cdef bint changed = False
    # run[i]: how many consecutive positions from i satisfy x[j] == x[j + p]. A block
    # x[i:i+p] is followed by a copy of itself exactly when run[i] >= p, and then
    # the periodic stretch holds 1 + run[i] // p back-to-back copies.
    run[n - p] = 0
    i = n - p - 1
    while i >= 0:
        run[i] = run[i + 1] + 1 if x[i] == x[i + p] else 0
        i -= 1
    i = 0
    w = 0
    while i < n:
        if i < n - p and run[i] >= p:
            copies = 1 + run[i] // p
            for t in range(p):
                total = 0
                for k in range(copies):
                    total += c[i + k * p + t]
                x[w + t] = x[i + t]
                c[w + t] = total
            w += p
            i += copies * p
            changed = True
        else:
            x[w] = x[i]
            c[w] = c[i]
            w += 1
            i += 1
    n_ptr[0] = w
    return changed


def roll_ids(const int32_t[::1] ids, const int64_t[::1] counts, Py_ssize_t max_period):
    """(rolled ids, counts) of one id sequence; max_period >= 1."""
    cdef Py_ssize_t n = ids.shape[0], p
    cdef bint changed
    x_arr = np.array(ids, dtype=np.int32)
    c_arr = np.array(counts, dtype=np.int64)
    run_arr = np.zeros(n + 1, dtype=np.intp)
    cdef int32_t[::1] x = x_arr
    cdef int64_t[::1] c = c_arr
    cdef Py_ssize_t[::1] run = run_arr
    if n < 2:
        return x_arr, c_arr
    with nogil:
        changed = True
        while changed:
            changed = False
            p = max_period if max_period < n // 2 else n // 2
            while p >= 1:
                if 2 * p <= n and _pass(&x[0], &c[0], &n, p, &run[0]):
                    changed = True
                p -= 1
    return x_arr[:n].copy(), c_arr[:n].copy()
