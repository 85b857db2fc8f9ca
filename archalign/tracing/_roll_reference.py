"""Pure-Python tandem-repeat rolling: slow, literal, and the oracle for tests.

It spells out the rule of ``archalign.tracing.rolling`` with list slices; the compiled
``_roll.pyx`` must agree with it on every input.
"""
from __future__ import annotations


def _collapse(tokens, counts, p):
    """One left-to-right pass at period p over the sequence as it stands."""
    out_t, out_c, i, n = [], [], 0, len(tokens)
    while i < n:
        block = tokens[i:i + p]
        copies = 1
        while i + (copies + 1) * p <= n and tokens[i + copies * p:i + (copies + 1) * p] == block:
            copies += 1
        if copies > 1:
            out_t.extend(block)
            out_c.extend(sum(counts[i + k * p + t] for k in range(copies)) for t in range(p))
            i += copies * p
        else:
            out_t.append(tokens[i])
            out_c.append(counts[i])
            i += 1
    return out_t, out_c


def roll_reference(tokens, counts=None, max_period=None):
    """(rolled tokens, counts) as lists; see archalign.tracing.rolling for the rule."""
    tokens = list(tokens)
    counts = [1] * len(tokens) if counts is None else [int(c) for c in counts]
    changed = True
    while changed:
        changed = False
        top = len(tokens) // 2 if max_period is None else min(max_period, len(tokens) // 2)
        for p in range(top, 0, -1):
            if 2 * p <= len(tokens):
                new_t, new_c = _collapse(tokens, counts, p)
                changed = changed or len(new_t) < len(tokens)
                tokens, counts = new_t, new_c
    return tokens, counts
