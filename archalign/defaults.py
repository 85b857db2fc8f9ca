"""The default similarity setting, chosen on the whole timm zoo.

``benchmarks/bench_families.py`` scores every combination of granularity, gap
model, rolling and family-aware substitution by how well the similarity recovers
the timm module that registers each model (nearest neighbours, ARI / AMI of the
clusters, cophenetic correlation) and how long the matrix takes. The defaults below
are the row the README's "Choosing the defaults" section explains; every entry
point (``similarity_matrix``, ``align_models``, ``shortlist``, the CLI) reads them
from here, so they change in one place.
"""
from __future__ import annotations

GRANULARITY = "shape"
ROLLED = True
MAX_PERIOD = None  # longest repeated block rolled (archalign.roll); None: any
FAMILY = False
MATCH, MISMATCH = 1.0, -1.0
GAP_OPEN, GAP_EXTEND = -8.0, -0.5


def resolve_gaps(gap=None, gap_open=None, gap_extend=None) -> tuple[float, float]:
    """(gap_open, gap_extend) from the keywords a user gave: ``gap`` alone for linear
    gaps, ``gap_open`` with ``gap_extend`` for affine ones, nothing for the defaults."""
    if gap is not None:
        if gap_open is not None or gap_extend is not None:
            raise ValueError("give either gap= (linear gaps) or gap_open= and gap_extend= "
                             "(affine gaps), not both")
        return float(gap), float(gap)
    if gap_open is None and gap_extend is None:
        return GAP_OPEN, GAP_EXTEND
    if gap_open is None or gap_extend is None:
        raise ValueError("affine gaps need both gap_open= and gap_extend= (for linear "
                         "gaps pass gap= alone)")
    return float(gap_open), float(gap_extend)
