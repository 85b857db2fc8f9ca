"""The default similarity setting, chosen on the whole timm zoo.

``benchmarks/bench_families.py`` scores every combination of granularity, gap
model, rolling and family-aware substitution by how well the similarity recovers
the timm module that registers each model (nearest neighbours, ARI / AMI of the
clusters, cophenetic correlation) and how long the matrix takes. The defaults below
are the row the README's "Choosing the defaults" section explains; every entry
point (``similarity_matrix``, ``align_models``, ``shortlist``, the CLI) reads them
from here, so they change in one place. :func:`renamed_keywords` keeps the keyword
names of earlier releases working, with a warning, for one release.
"""
from __future__ import annotations


from archalign.utils.errors import UsageError

GRANULARITY = "shape"
ROLLED = True
MAX_PERIOD = None  # longest repeated block rolled (archalign.roll); None: any
FAMILY = False
MATCH, MISMATCH = 1.0, -1.0
GAP_OPEN, GAP_EXTEND = -8.0, -0.5


def resolve_gaps(gap=None, gap_open=None, gap_extend=None) -> tuple[float, float]:
    """(gap_open, gap_extend) from the keywords a user gave: ``gap`` alone for linear
    gaps, ``gap_open`` with ``gap_extend`` for affine ones, nothing for the defaults.

    Raises
    ------
    ValueError
        For gaps under which a similarity means nothing, naming the value and the fix:
        a gap score above 0 (scores are added to the total, so every gapped position
        would pay and aligning everything against gaps would win), or ``gap_extend``
        below ``gap_open`` (one long gap would cost more than several short ones).
    """
    if gap is not None:
        if gap_open is not None or gap_extend is not None:
            raise UsageError("give either gap= (linear gaps) or gap_open= and gap_extend= "
                             "(affine gaps), not both")
        _check_gap("gap", gap, -1.0)
        return float(gap), float(gap)
    if gap_open is None and gap_extend is None:
        return GAP_OPEN, GAP_EXTEND
    if gap_open is None or gap_extend is None:
        raise UsageError("affine gaps need both gap_open= and gap_extend= (for linear "
                         "gaps pass gap= alone)")
    _check_gap("gap_open", gap_open, GAP_OPEN)
    _check_gap("gap_extend", gap_extend, GAP_EXTEND)
    if gap_extend < gap_open:
        raise UsageError(f"gap_extend={gap_extend:g} is below gap_open={gap_open:g}, so "
                         f"extending a gap would cost more than opening one; give "
                         f"gap_open <= gap_extend <= 0, e.g. gap_open={GAP_OPEN:g}, "
                         f"gap_extend={GAP_EXTEND:g}")
    return float(gap_open), float(gap_extend)


def _check_gap(name: str, value, example: float) -> None:
    if not float(value) <= 0:  # also refuses nan
        raise UsageError(f"{name}={float(value):g} is not a score <= 0: scores are added "
                         f"to the total, so a gap must cost (or be free), else aligning "
                         f"everything against gaps wins and the similarity means "
                         f"nothing; give {name} <= 0, e.g. {name}={example:g}")


def check_match(match, mismatch) -> None:
    """Refuse (ValueError, naming the values and the fix) a flat scoring whose
    ``mismatch`` is not below its ``match``: identical tokens would then score no
    better than different ones, and the similarity could not see a difference."""
    if not float(mismatch) < float(match):
        raise UsageError(f"mismatch={float(mismatch):g} is not below match={float(match):g}"
                         f": identical tokens would score no better than different ones, "
                         f"so the similarity could not see a difference; give mismatch < "
                         f"match, e.g. match={MATCH:g}, mismatch={MISMATCH:g}")
