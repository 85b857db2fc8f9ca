"""archalign: architecture similarity by global alignment of layer-token sequences.

Data flow (one module per step)::

    model --tracing--> Trace --vocabulary--> int ids (--rolling--> rolled ids + counts)
    + scoring --aligner (_nw)-->
    raw scores --similarity--> SimilarityMatrix --> linkage / clusters / shortlist
    --plotting--> dendrogram, heatmap, alignment view

``compare.similarity_matrix`` runs the whole flow; ``zoo.trace_many`` traces
many timm models in parallel through an on-disk cache.
"""
from ._version import __version__
from .aligner import Alignment, align, effective_n_jobs, openmp_enabled, pairwise, score
from .compare import align_models, similarity_matrix
from .panels import list_panels, panel
from .rolling import roll
from .scoring import Scoring
from .shortlist import Shortlist, shortlist
from .similarity import SimilarityMatrix
from .tracing import (Trace, TraceError, TraceFallbackWarning, UnknownModelError,
                      register_leaf_module, trace)
from .vocabulary import Vocabulary
from .zoo import ZooResult, trace_many

__all__ = [
    "__version__",
    "Alignment",
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
