"""Pure-Python Needleman-Wunsch / Gotoh: slow, plain, and the oracle for tests.

Full (m+1) x (n+1) matrices, float arithmetic, no tricks. The compiled core in
``_nw.pyx`` must agree with it on every input.
"""
from __future__ import annotations

from archalign.utils.errors import UsageError

NEG = float("-inf")


def _fill(a, b, scoring):
    """The three Gotoh matrices: H (best), E (ends in a gap in b), F (gap in a)."""
    m, n = len(a), len(b)
    go, ge = scoring.gap_open, scoring.gap_extend
    H = [[NEG] * (n + 1) for _ in range(m + 1)]
    E = [[NEG] * (n + 1) for _ in range(m + 1)]
    F = [[NEG] * (n + 1) for _ in range(m + 1)]
    H[0][0] = 0.0
    for i in range(1, m + 1):
        H[i][0] = E[i][0] = go + (i - 1) * ge
    for j in range(1, n + 1):
        H[0][j] = F[0][j] = go + (j - 1) * ge
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            E[i][j] = max(H[i - 1][j] + go, E[i - 1][j] + ge)
            F[i][j] = max(H[i][j - 1] + go, F[i][j - 1] + ge)
            H[i][j] = max(H[i - 1][j - 1] + scoring.substitution_score(a[i - 1], b[j - 1]),
                          E[i][j], F[i][j])
    return H, E, F


def score(a, b, scoring) -> float:
    """Optimal global alignment score of token lists a and b."""
    H, _, _ = _fill(list(a), list(b), scoring)
    return H[len(a)][len(b)]


def align(a, b, scoring):
    """(score, path) with path a list of (i, j) pairs, None marking a gap."""
    a, b = list(a), list(b)
    H, E, F = _fill(a, b, scoring)
    go = scoring.gap_open
    i, j, state, path = len(a), len(b), "H", []
    while i > 0 or j > 0:
        if state == "H":
            if i > 0 and j > 0 and H[i][j] == H[i - 1][j - 1] + scoring.substitution_score(
                    a[i - 1], b[j - 1]):
                i, j = i - 1, j - 1
                path.append((i, j))
                continue
            state = "E" if i > 0 and H[i][j] == E[i][j] else "F"
        if state == "E":
            # leave the gap when it was opened here (row 1 can only open)
            opened = i == 1 or E[i][j] == H[i - 1][j] + go
            i -= 1
            path.append((i, None))
            state = "H" if opened else "E"
        else:
            opened = j == 1 or F[i][j] == H[i][j - 1] + go
            j -= 1
            path.append((None, j))
            state = "H" if opened else "F"
    return H[len(a)][len(b)], path[::-1]


def path_score(a, b, path, scoring) -> float:
    """Score of a given alignment path (pairs with None or -1 for gaps).

    Checks that the path is a valid global alignment of a and b: every index
    of each sequence appears once, in order.
    """
    total, prev_gap = 0.0, None
    next_i = next_j = 0
    for i, j in path:
        i = None if i is None or i < 0 else i
        j = None if j is None or j < 0 else j
        if i is not None:
            if i != next_i:
                raise UsageError(f"path skips or repeats position {next_i} of a")
            next_i += 1
        if j is not None:
            if j != next_j:
                raise UsageError(f"path skips or repeats position {next_j} of b")
            next_j += 1
        if i is not None and j is not None:
            total += scoring.substitution_score(a[i], b[j])
            prev_gap = None
        elif i is None and j is None:
            raise UsageError("path holds a (gap, gap) column")
        else:
            kind = "a" if i is None else "b"
            total += scoring.gap_extend if prev_gap == kind else scoring.gap_open
            prev_gap = kind
    if next_i != len(a) or next_j != len(b):
        raise UsageError("path does not cover both sequences")
    return total
