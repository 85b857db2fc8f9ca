/*
 * Hot loops of archalign's Needleman-Wunsch core, called from _nw.pyx.
 *
 * Two vectorisation strategies, both written as plain C loops that GCC/Clang
 * auto-vectorise at -O3 (no intrinsics, so the code stays portable):
 *
 *   - nw_lanes_*: one query against NW_LANES targets at once, one target per
 *     SIMD lane (inter-sequence vectorisation, as in SWIPE). Targets are
 *     interleaved column-major: block[j * NW_LANES + lane] is token j of the
 *     lane's target, -1 past its end. Used by pairwise().
 *   - nw_diag_*: a single pair, anti-diagonal by anti-diagonal; the cells of
 *     one anti-diagonal are independent. Used by score() with flat
 *     match/mismatch scoring.
 *
 * Every kernel exists for int16_t and int32_t scores. The caller (the Cython
 * layer) picks the width from a bound on |score| so that no addition can
 * overflow, and falls back to a scalar int64/float64 loop beyond int32.
 *
 * Gap convention (Gotoh): a gap of length n scores open + (n - 1) * extend;
 * linear gaps are open == extend and take a cheaper loop without E/F states.
 *
 * Multi-versioning: on x86-64 Linux with GCC the kernels are compiled for
 * AVX-512BW, AVX2 and baseline SSE2, and the loader picks the best one for
 * the CPU at run time, so one portable binary still gets wide vectors.
 * Define ARCHALIGN_NO_CLONES to disable (e.g. when building with -march).
 */
#ifndef ARCHALIGN_NW_KERNELS_H
#define ARCHALIGN_NW_KERNELS_H

#include <stdint.h>

#define NW_LANES 32

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__) && !defined(ARCHALIGN_NO_CLONES) && !defined(__AVX2__)
#define NW_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define NW_MULTIVERSIONED 1
#else
#define NW_MULTIVERSION
#define NW_MULTIVERSIONED 0
#endif

#define NW_MAX(x, y) ((x) > (y) ? (x) : (y))

#if defined(__GNUC__) || defined(__clang__)
#define NW_INLINE inline __attribute__((always_inline))
#else
#define NW_INLINE __forceinline
#endif

/*
 * Give each token of q[0:m] without one a profile row: slot[c] (-1: none) is
 * set to the next free row and ids[row] = c. Returns the new row count, or -1
 * when q would need more than `cap` rows in all; q's own additions are then
 * undone, so the rows given to earlier queries stay valid.
 */
static int64_t nw_assign_rows(const int32_t *q, int64_t m, int32_t *slot,
                              int32_t *ids, int64_t nrows, int64_t cap)
{
    const int64_t start = nrows;
    for (int64_t i = 0; i < m; i++) {
        const int32_t c = q[i];
        if (slot[c] >= 0)
            continue;
        if (nrows == cap) {
            for (int64_t r = start; r < nrows; r++)
                slot[ids[r]] = -1;
            return -1;
        }
        slot[c] = (int32_t)nrows;
        ids[nrows++] = c;
    }
    return nrows;
}

/*
 * NW_DEFINE_KERNELS(T, SUF, NEG) instantiates the kernels for score type T.
 * NEG stands for "minus infinity": low enough never to win a max, high enough
 * that NEG + extend cannot overflow T given the caller's bound on scores.
 */
#define NW_DEFINE_KERNELS(T, SUF, NEG)                                              \
                                                                                    \
/* Interleave targets tok[off[t]:off[t+1]], t = first .. first + count - 1          \
 * (count <= NW_LANES), into block[j * NW_LANES + lane], padded with `pad` to       \
 * ncols. Token ids must fit T (the caller remaps ids densely). */                  \
static void nw_fill_block_##SUF(const int32_t *tok, const int64_t *off,             \
                                int64_t first, int64_t count, int64_t ncols,        \
                                T pad, T *block)                                    \
{                                                                                   \
    for (int64_t k = 0; k < ncols * NW_LANES; k++)                                  \
        block[k] = pad;                                                             \
    for (int64_t l = 0; l < count; l++) {                                           \
        const int32_t *t = tok + off[first + l];                                    \
        const int64_t len = off[first + l + 1] - off[first + l];                    \
        for (int64_t j = 0; j < len; j++)                                           \
            block[j * NW_LANES + l] = (T)t[j];                                      \
    }                                                                               \
}                                                                                   \
                                                                                    \
/* dst[k] = row[cols[k]]: one row of S (int32) spread over the block's cells,       \
 * where cols is the block filled with pad 0 (a padding cell may score              \
 * anything from S: scores only flow to later columns, so no lane's result,         \
 * read at its target's length, depends on it, and the caller's overflow            \
 * bound covers every cell). Int32 indices into an int32 table let the              \
 * compiler use vector gathers; always inlined so it gets the caller's ISA. */      \
static NW_INLINE void nw_gather_row_##SUF(const int32_t *restrict row,              \
                                          const int32_t *restrict cols,             \
                                          int64_t width, T *restrict dst)           \
{                                                                                   \
    for (int64_t k = 0; k < width; k++)                                             \
        dst[k] = (T)row[cols[k]];                                                   \
}                                                                                   \
                                                                                    \
/* profile[r] = S[ids[r]] gathered over the block's cells, for r < nrows: only      \
 * the rows of S that the queries in hand use (see nw_assign_rows), so that a       \
 * query row needs no gather and building costs nrows, not V, rows. */              \
NW_MULTIVERSION                                                                     \
static void nw_build_profile_##SUF(const int32_t *cols, int64_t ncols,              \
                                   const int32_t *S, int64_t V,                     \
                                   const int32_t *ids, int64_t nrows, T *profile)   \
{                                                                                   \
    const int64_t width = ncols * NW_LANES;                                         \
    for (int64_t r = 0; r < nrows; r++)                                             \
        nw_gather_row_##SUF(S + (int64_t)ids[r] * V, cols, width,                   \
                            profile + r * width);                                   \
}                                                                                   \
                                                                                    \
/* One DP row over all lanes. H holds row i-1 on entry and row i on exit;      \
 * E (affine only) likewise holds the vertical-gap state. `border` is H[i][0].  \
 * Substitution scores come from sc, or with `flat` from comparing the block's  \
 * tokens with the query token a. Always inlined, and called with constant     \
 * flat/affine, so each combination compiles to its own branch-free loop. */   \
static NW_INLINE void nw_lanes_row_##SUF(const T *restrict sc,                     \
                                         const T *restrict blk, T a, T match,       \
                                         T mismatch, int flat, int64_t ncols,       \
                                         T border, T open, T extend, int affine,    \
                                         T *restrict H, T *restrict E)              \
{                                                                                   \
    T diag[NW_LANES], left[NW_LANES], F[NW_LANES];                                  \
    for (int l = 0; l < NW_LANES; l++) {                                            \
        diag[l] = H[l];                                                             \
        H[l] = border;                                                              \
        left[l] = border;                                                           \
        F[l] = NEG;                                                                 \
    }                                                                               \
    for (int64_t j = 1; j <= ncols; j++) {                                          \
        T *restrict h = H + j * NW_LANES;                                           \
        T *restrict e = E + j * NW_LANES;                                           \
        const int64_t k0 = (j - 1) * NW_LANES;                                      \
        for (int l = 0; l < NW_LANES; l++) {                                        \
            T s = flat ? (blk[k0 + l] == a ? match : mismatch) : sc[k0 + l];        \
            T up = h[l];                                                            \
            T v;                                                                    \
            if (affine) {                                                           \
                T ev = NW_MAX((T)(up + open), (T)(e[l] + extend));                  \
                T fv = NW_MAX((T)(left[l] + open), (T)(F[l] + extend));             \
                v = NW_MAX((T)(diag[l] + s), NW_MAX(ev, fv));                       \
                e[l] = ev;                                                          \
                F[l] = fv;                                                          \
            } else {                                                                \
                v = NW_MAX((T)(diag[l] + s),                                        \
                           NW_MAX((T)(up + open), (T)(left[l] + open)));            \
            }                                                                       \
            diag[l] = up;                                                           \
            h[l] = v;                                                               \
            left[l] = v;                                                            \
        }                                                                           \
    }                                                                               \
}                                                                                   \
                                                                                    \
/*                                                                                  \
 * Align query q[0:m] against the NW_LANES targets of `blk` (ncols columns of       \
 * interleaved tokens, -1 as padding). Row scores come from `profile` when          \
 * given (q then holds profile row numbers, not token ids), else from S (V x V,     \
 * int32) gathered through `cols` (see nw_gather_row), else (flat) from             \
 * match/mismatch.                                                                  \
 * On return H[len_l * NW_LANES + l] is the global score of the query against       \
 * lane l's target of length len_l.                                                 \
 * Work buffers: H, E: (ncols + 1) * NW_LANES; sc: ncols * NW_LANES.                \
 */                                                                                 \
NW_MULTIVERSION                                                                     \
static void nw_lanes_##SUF(const int32_t *q, int64_t m,                             \
                           const T *restrict blk, int64_t ncols,                    \
                           const T *profile, const int32_t *S,                      \
                           const int32_t *cols, int64_t V,                          \
                           T match, T mismatch, T open, T extend, int affine,       \
                           T *H, T *E, T *sc)                                       \
{                                                                                   \
    const int64_t width = ncols * NW_LANES;                                         \
    const int flat = profile == 0 && S == 0;                                        \
    for (int l = 0; l < NW_LANES; l++) {                                            \
        H[l] = 0;                                                                   \
        E[l] = NEG;                                                                 \
    }                                                                               \
    for (int64_t j = 1; j <= ncols; j++)                                            \
        for (int l = 0; l < NW_LANES; l++) {                                        \
            H[j * NW_LANES + l] = (T)(open + (j - 1) * extend);                     \
            E[j * NW_LANES + l] = NEG;                                              \
        }                                                                           \
    for (int64_t i = 1; i <= m; i++) {                                              \
        const T a = (T)q[i - 1];                                                    \
        const T border = (T)(open + (i - 1) * extend);                              \
        const T *rowsc = sc;                                                        \
        if (profile)                                                                \
            rowsc = profile + (int64_t)q[i - 1] * width;                            \
        else if (S)                                                                 \
            nw_gather_row_##SUF(S + (int64_t)q[i - 1] * V, cols, width, sc);        \
        if (flat && affine)                                                         \
            nw_lanes_row_##SUF(rowsc, blk, a, match, mismatch, 1, ncols, border,    \
                               open, extend, 1, H, E);                              \
        else if (flat)                                                              \
            nw_lanes_row_##SUF(rowsc, blk, a, match, mismatch, 1, ncols, border,    \
                               open, extend, 0, H, E);                              \
        else if (affine)                                                            \
            nw_lanes_row_##SUF(rowsc, blk, a, match, mismatch, 0, ncols, border,    \
                               open, extend, 1, H, E);                              \
        else                                                                        \
            nw_lanes_row_##SUF(rowsc, blk, a, match, mismatch, 0, ncols, border,    \
                               open, extend, 0, H, E);                              \
    }                                                                               \
}                                                                                   \
                                                                                    \
/*                                                                                  \
 * Global score of a[0:m] vs b[0:n] with flat match/mismatch, anti-diagonal      \
 * order. brev is b reversed, so that both sequences are read forwards along     \
 * an anti-diagonal. Arrays indexed by row i: cell (i, d - i) of anti-diagonal   \
 * d. work holds 7 * (m + 1) values.                                              \
 */                                                                                 \
NW_MULTIVERSION                                                                     \
static int64_t nw_diag_##SUF(const int32_t *restrict a, int64_t m,                 \
                             const int32_t *restrict brev, int64_t n,              \
                             T match, T mismatch, T open, T extend, int affine,    \
                             T *work)                                               \
{                                                                                   \
    T *H2 = work, *H1 = work + (m + 1), *H0 = work + 2 * (m + 1);                   \
    T *E1 = work + 3 * (m + 1), *E0 = work + 4 * (m + 1);                           \
    T *F1 = work + 5 * (m + 1), *F0 = work + 6 * (m + 1);                           \
    H1[0] = 0; /* anti-diagonal 0 is the single cell (0, 0) */                      \
    E1[0] = NEG;                                                                    \
    F1[0] = NEG;                                                                    \
    for (int64_t d = 1; d <= m + n; d++) {                                          \
        const int64_t ilo = d - n > 1 ? d - n : 1;                                  \
        const int64_t ihi = d - 1 < m ? d - 1 : m;                                  \
        if (d <= n) { /* top border cell (0, d) */                                  \
            H0[0] = (T)(open + (d - 1) * extend);                                   \
            E0[0] = NEG;                                                            \
            F0[0] = NEG;                                                            \
        }                                                                           \
        if (d <= m) { /* left border cell (d, 0) */                                 \
            H0[d] = (T)(open + (d - 1) * extend);                                   \
            E0[d] = NEG;                                                            \
            F0[d] = NEG;                                                            \
        }                                                                           \
        const int32_t *restrict bj = brev + (n - d);  /* b[d - i - 1] = bj[i] */    \
        if (affine) {                                                               \
            for (int64_t i = ilo; i <= ihi; i++) {                                  \
                T s = a[i - 1] == bj[i] ? match : mismatch;                         \
                T ev = NW_MAX((T)(H1[i - 1] + open), (T)(E1[i - 1] + extend));      \
                T fv = NW_MAX((T)(H1[i] + open), (T)(F1[i] + extend));              \
                H0[i] = NW_MAX((T)(H2[i - 1] + s), NW_MAX(ev, fv));                 \
                E0[i] = ev;                                                         \
                F0[i] = fv;                                                         \
            }                                                                       \
        } else {                                                                    \
            for (int64_t i = ilo; i <= ihi; i++) {                                  \
                T s = a[i - 1] == bj[i] ? match : mismatch;                         \
                H0[i] = NW_MAX((T)(H2[i - 1] + s),                                  \
                               NW_MAX((T)(H1[i - 1] + open), (T)(H1[i] + open)));   \
            }                                                                       \
        }                                                                           \
        T *t = H2; H2 = H1; H1 = H0; H0 = t;                                        \
        t = E1; E1 = E0; E0 = t;                                                    \
        t = F1; F1 = F0; F0 = t;                                                    \
    }                                                                               \
    if (m + n == 0)                                                                 \
        return 0;                                                                   \
    return (int64_t)H1[m];                                                          \
}

NW_DEFINE_KERNELS(int16_t, i16, (int16_t)(-16384))
NW_DEFINE_KERNELS(int32_t, i32, (int32_t)(-(1 << 29)))

/* Largest |score| bound each width accepts: with NEG as above, sums of a
 * bounded score and one more step can neither overflow nor beat NEG. */
#define NW_I16_BOUND 8000
#define NW_I32_BOUND (1 << 28)

#endif /* ARCHALIGN_NW_KERNELS_H */
