"""archalign: architecture similarity by global alignment of layer-token sequences.

Data flow::

    model -> trace (graph) -> tokens -> int ids + Scoring -> compiled aligner
          -> similarity matrix -> linkage / clusters / shortlist -> plots
"""
from ._version import __version__
from .aligner import Alignment, align, effective_n_jobs, openmp_enabled, pairwise, score
from .scoring import Scoring

__all__ = [
    "__version__",
    "Alignment",
    "Scoring",
    "align",
    "effective_n_jobs",
    "openmp_enabled",
    "pairwise",
    "score",
]
