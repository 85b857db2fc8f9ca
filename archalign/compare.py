"""Model-level entry points: compare architectures end to end.

``similarity_matrix`` runs the whole flow (specs -> traces -> tokens -> ids ->
compiled all-pairs alignment -> SimilarityMatrix); ``align_models`` shows one
pair's alignment, the "why" behind a similarity.
"""
from __future__ import annotations

import numpy as np

from .aligner import align, pairwise
from .inputs import encode_traces, resolve_traces
from .scoring import Scoring
from .similarity import SIMILARITIES, SimilarityMatrix

__all__ = ["similarity_matrix", "align_models", "PRESETS"]

PRESETS = ("paper",)


def similarity_matrix(models, granularity: str = "shape", scoring=None,
                      similarity: str = "normalized", *, family: bool | float = False,
                      preset: str | None = None, jobs: int | None = None, cache_dir=None,
                      progress: bool = True, backend: str = "threads", client=None,
                      block: int | None = None, blocks_dir=None) -> SimilarityMatrix:
    """Trace, tokenise and align every pair of ``models``.

    Parameters
    ----------
    models : list of model specs
        timm names, wildcard patterns, ``"torchvision:<name>"``, nn.Modules or
        Traces (see archalign.inputs); ``archalign.panel("default")`` for a panel.
    granularity : "type", "shape" or "full"
        How much of each layer's hyper-parameters its token carries.
    scoring : Scoring, optional
        Default match 1 / mismatch -1 / linear gap -1 over token ids.
    similarity : "normalized" or "correlation"
    family : bool or float
        Partial credit between related tokens (Vocabulary.substitution_matrix);
        ignored when ``scoring`` is given.
    preset : "paper", optional
        The NeuRN paper's settings: type tokens, Scoring.paper(), correlation.
    jobs : int, optional
        Worker processes for tracing and threads for alignment (None: all cores).
    backend, client, block, blocks_dir
        Passed to :func:`archalign.pairwise` (``out=blocks_dir``): Dask and
        resumable on-disk computation of the score matrix, for big panels.
    """
    import timm
    import torch

    from . import __version__

    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {PRESETS}")
        granularity, scoring, similarity = "type", Scoring.paper(), "correlation"
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    labels, traces = resolve_traces(models, jobs=jobs, cache_dir=cache_dir, progress=progress)
    seqs, scoring, vocab = encode_traces(traces, granularity, scoring, family)
    scores = np.array(pairwise(seqs, scoring, n_jobs=jobs, backend=backend, client=client,
                               block=block, out=blocks_dir, progress=progress))
    settings = {
        "granularity": granularity, "scoring": repr(scoring), "family": family,
        "preset": preset, "routes": {x: t.route for x, t in zip(labels, traces)},
        "lengths": [len(s) for s in seqs], "vocabulary": vocab.tokens,
        "versions": {"archalign": __version__, "timm": timm.__version__,
                     "torch": torch.__version__},
    }
    return SimilarityMatrix.from_scores(labels, scores, similarity,
                                        lengths=[len(s) for s in seqs], scoring=scoring,
                                        settings=settings)


def align_models(a, b, granularity: str = "shape", scoring=None, *, family=False,
                 cache_dir=None):
    """One optimal alignment of two models' token sequences.

    Returns (alignment, vocabulary); ``alignment.format(vocabulary)`` prints
    it with token names, ``archalign.plotting.alignment_view`` draws it.
    """
    labels, traces = resolve_traces([a, b], jobs=1, cache_dir=cache_dir, progress=False)
    if len(traces) != 2:
        raise ValueError(f"align_models needs two distinct models, got {labels}")
    seqs, scoring, vocab = encode_traces(traces, granularity, scoring, family)
    return align(seqs[0], seqs[1], scoring), vocab
