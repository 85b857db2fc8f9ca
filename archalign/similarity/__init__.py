"""Stage 4, scores -> results: raw alignment scores in, a
:class:`~archalign.similarity.matrix.SimilarityMatrix` and what follows from it out
(linkage, clusters, shortlists, plots, an HTML report). Open ``compare.py`` first
(``similarity_matrix``: the whole pipeline), then ``matrix.py``.
"""
# The names of the former ``archalign.similarity`` module, which this package replaces.
from archalign.similarity.matrix import MatrixFileError, SimilarityMatrix
from archalign.similarity.measures import (adjusted_rand_index, all_gap_score,
                                           correlation_similarity, normalized_similarity)

__all__ = ["SimilarityMatrix", "MatrixFileError", "normalized_similarity",
           "correlation_similarity", "adjusted_rand_index", "all_gap_score"]
