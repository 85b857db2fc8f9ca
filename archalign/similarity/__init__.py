"""Stage 4, scores -> results: raw alignment scores in, a ``SimilarityMatrix`` and what
follows from it (linkage, clusters, shortlists, plots, an HTML report) out. Open
``compare.py`` first (``similarity_matrix``: the whole pipeline), then ``matrix.py``.
"""
# The names of the former ``archalign.similarity`` module, which this package replaces.
from __future__ import annotations

from archalign.similarity.matrix import MatrixFileError, SimilarityMatrix
from archalign.similarity.measures import (adjusted_rand_index, all_gap_score,
                                           correlation_similarity, normalized_similarity)

__all__ = ["SimilarityMatrix", "MatrixFileError", "normalized_similarity",
           "correlation_similarity", "adjusted_rand_index", "all_gap_score"]
