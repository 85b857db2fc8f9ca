"""archalign: architecture similarity by global alignment of layer-token sequences.

Data flow, one subpackage per stage (a stage imports only the ones above it)::

    model / spec --tracing/--> Trace (token strings, rolled repeats)
                 --tokens/--> int ids + Scoring
                 --alignment/ (_nw)--> raw scores
                 --similarity/--> SimilarityMatrix --> linkage / clusters / shortlist
                              --> plots, HTML report
                 --diffing/--> Diff of two models (what differs, in words)
    cli/: the ``archalign`` command over all of them

``similarity_matrix`` (``similarity/compare.py``) runs the whole flow; ``trace_many``
(``tracing/zoo.py``) traces many timm models in parallel through an on-disk cache.
"""
from __future__ import annotations
from archalign._version import __version__
from archalign.alignment.aligner import Alignment, align, pairwise, score
from archalign.alignment.core import effective_n_jobs, openmp_enabled
from archalign.diffing import Diff, diff
from archalign.similarity.compare import align_models, similarity_matrix
from archalign.similarity.matrix import SimilarityMatrix
from archalign.similarity.panels import list_panels, panel
from archalign.similarity.shortlist import Shortlist, shortlist
from archalign.tokens.scoring import Scoring
from archalign.tokens.vocabulary import Vocabulary
from archalign.tracing.api import trace
from archalign.tracing.calls import Trace, TraceError, TraceFallbackWarning, UnknownModelError
from archalign.tracing.leaves import register_leaf_module
from archalign.tracing.rolling import roll
from archalign.tracing.zoo import ZooResult, trace_many

__all__ = [
    "__version__",
    "Alignment",
    "Diff",
    "Scoring",
    "Shortlist",
    "SimilarityMatrix",
    "Trace",
    "TraceError",
    "TraceFallbackWarning",
    "UnknownModelError",
    "Vocabulary",
    "ZooResult",
    "align",
    "align_models",
    "diff",
    "effective_n_jobs",
    "list_panels",
    "openmp_enabled",
    "pairwise",
    "panel",
    "register_leaf_module",
    "roll",
    "score",
    "shortlist",
    "similarity_matrix",
    "trace",
    "trace_many",
]
