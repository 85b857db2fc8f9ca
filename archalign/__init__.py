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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from archalign._version import __version__

# The public API, loaded on first use (PEP 562) so that importing a light module such as
# archalign.utils.io (as neurn does) does not load the tracer, torch or the compiled
# aligner: name -> the module that defines it.
_API = {
    "align": "archalign.alignment.aligner",
    "align_models": "archalign.similarity.compare",
    "Alignment": "archalign.alignment.aligner",
    "DataError": "archalign.utils.errors",
    "Diff": "archalign.diffing",
    "diff": "archalign.diffing",
    "effective_n_jobs": "archalign.alignment.core",
    "EncodingSettings": "archalign.tokens.settings",
    "list_panels": "archalign.similarity.panels",
    "MissingExtraError": "archalign.utils.errors",
    "openmp_enabled": "archalign.alignment.core",
    "pairwise": "archalign.alignment.aligner",
    "panel": "archalign.similarity.panels",
    "register_leaf_module": "archalign.tracing.leaves",
    "roll": "archalign.tracing.rolling",
    "score": "archalign.alignment.aligner",
    "Scoring": "archalign.tokens.scoring",
    "Shortlist": "archalign.similarity.shortlist",
    "shortlist": "archalign.similarity.shortlist",
    "similarity_matrix": "archalign.similarity.compare",
    "SimilarityMatrix": "archalign.similarity.matrix",
    "trace": "archalign.tracing.api",
    "Trace": "archalign.tracing.calls",
    "trace_many": "archalign.tracing.zoo",
    "TraceError": "archalign.tracing.calls",
    "TraceFallbackWarning": "archalign.tracing.calls",
    "UnknownModelError": "archalign.tracing.calls",
    "UnknownNameError": "archalign.utils.errors",
    "UsageError": "archalign.utils.errors",
    "UserError": "archalign.utils.errors",
    "Vocabulary": "archalign.tokens.vocabulary",
    "ZooResult": "archalign.tracing.zoo",
}

__all__ = [
    "__version__", "align", "align_models", "Alignment", "DataError", "Diff", "diff",
    "effective_n_jobs", "EncodingSettings", "list_panels", "MissingExtraError",
    "openmp_enabled", "pairwise", "panel", "register_leaf_module", "roll", "score", "Scoring",
    "Shortlist", "shortlist", "similarity_matrix", "SimilarityMatrix", "trace", "Trace",
    "trace_many", "TraceError", "TraceFallbackWarning", "UnknownModelError",
    "UnknownNameError", "UsageError", "UserError", "Vocabulary", "ZooResult",
]

if TYPE_CHECKING:  # static checkers and IDEs see ordinary imports
    from archalign.alignment.aligner import Alignment, align, pairwise, score
    from archalign.alignment.core import effective_n_jobs, openmp_enabled
    from archalign.diffing import Diff, diff
    from archalign.similarity.compare import align_models, similarity_matrix
    from archalign.similarity.matrix import SimilarityMatrix
    from archalign.similarity.panels import list_panels, panel
    from archalign.similarity.shortlist import Shortlist, shortlist
    from archalign.tokens.scoring import Scoring
    from archalign.tokens.settings import EncodingSettings
    from archalign.tokens.vocabulary import Vocabulary
    from archalign.tracing.api import trace
    from archalign.tracing.calls import Trace, TraceError, TraceFallbackWarning, UnknownModelError
    from archalign.tracing.leaves import register_leaf_module
    from archalign.tracing.rolling import roll
    from archalign.tracing.zoo import ZooResult, trace_many
    from archalign.utils.errors import (DataError, MissingExtraError, UnknownNameError, UsageError,
                                        UserError)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'archalign' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
