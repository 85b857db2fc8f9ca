"""Model-level entry points: compare architectures end to end.

``similarity_matrix`` runs the whole flow (specs -> traces -> tokens -> ids ->
compiled all-pairs alignment -> SimilarityMatrix); ``align_models`` shows one
pair's alignment, the "why" behind a similarity.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from archalign import defaults
from archalign.utils.deprecation import renamed_keywords
from archalign._version import __version__
from archalign.alignment.aligner import align, pairwise
from archalign.similarity.matrix import SimilarityMatrix
from archalign.similarity.measures import SIMILARITIES
from archalign.tokens.encode import encode_traces
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import PRESETS, EncodingSettings, fill_from_preset, resolve_settings
from archalign.tracing.specs import resolve_traces
from archalign.utils.errors import UsageError

__all__ = ["similarity_matrix", "align_models", "PRESETS"]


@renamed_keywords(jobs="n_jobs")
def similarity_matrix(models, granularity: str | None = None, scoring: Scoring | None = None,
                      similarity: str | None = None, *,
                      settings: EncodingSettings | None = None,
                      family: bool | float | None = None, rolled: bool | None = None,
                      max_period: int | None = defaults.MAX_PERIOD, gap: float | None = None,
                      gap_open: float | None = None, gap_extend: float | None = None,
                      preset: str | None = None, n_jobs: int | None = None, cache_dir=None,
                      progress: bool = True, backend: str = "threads", client=None,
                      block: int | None = None, blocks_dir=None,
                      as_exported: bool | None = None) -> SimilarityMatrix:
    """Trace, tokenise and align every pair of ``models``.

    The defaults (:mod:`archalign.defaults`, chosen on the whole timm zoo by
    ``benchmarks/bench_families.py``) are shape tokens, rolled repeats, match 1 /
    mismatch -1 and affine gaps. ``rolled=False, gap=-1`` is the first release's
    setting.

    Parameters
    ----------
    models : list of model specs
        timm names, wildcard patterns, ``"torchvision:<name>"``, nn.Modules or
        Traces (see archalign.tracing.specs); ``archalign.panel("default")`` for a panel.
    granularity : "type", "shape" or "full"
        How much of each layer's hyper-parameters its token carries.
    scoring : Scoring, optional
        Fixes substitution scores and gaps itself (then leave the ``family`` and gap
        keywords out; ``settings.family`` adds family credit to a flat one).
    similarity : "normalized" or "correlation"
        Default "normalized" ("correlation" under ``preset="paper"``).
    settings : EncodingSettings, optional
        ``granularity``, ``rolled``, ``family``, ``max_period`` and ``as_exported`` as
        one object (``sm.encoding`` of a matrix reproduces it, with ``sm.scoring``);
        a keyword given beside it must agree with it.
    family : bool or float, optional
        Partial credit between related tokens (Vocabulary.substitution_matrix).
    rolled : bool, optional
        Collapse tandem repeats before aligning (archalign.roll), so that depth
        (how often a block repeats) does not drown design (which blocks).
    max_period : int or None
        Longest repeated block that rolling collapses (None: no limit).
    gap, gap_open, gap_extend : float, optional
        ``gap`` alone for linear gaps, ``gap_open`` and ``gap_extend`` for affine.
    preset : "paper", optional
        The NeuRN paper's settings: type tokens unrolled, Scoring.paper(),
        correlation. It fills what is not given; a keyword that says otherwise is
        refused (archalign.tokens.settings.resolve_settings).
    n_jobs : int, optional
        Worker processes for tracing and threads for alignment (None: all cores), as
        :func:`archalign.pairwise`'s ``n_jobs``. ``jobs=``, its earlier name, still
        works for one release, with a FutureWarning.
    backend, client, block, blocks_dir
        Passed to :func:`archalign.pairwise` (``out=blocks_dir``): Dask and
        resumable on-disk computation of the score matrix, for big panels.
    as_exported : bool, optional
        Read every model as an inference export writes it: BatchNorm folded into its
        conv, one spelling for flattening and global pooling (archalign.tokens.folding).
        None: on when a model is an ONNX graph.

    Returns
    -------
    SimilarityMatrix
        With ``encoding`` and ``scoring``: the setting, which its file keeps.
    """
    # every setting is read and checked before a model is traced
    encoding, scoring = resolve_settings(settings, scoring, preset=preset,
                                         granularity=granularity, rolled=rolled,
                                         family=family, max_period=max_period,
                                         as_exported=as_exported, gap=gap, gap_open=gap_open,
                                         gap_extend=gap_extend)
    similarity = fill_from_preset(preset, "similarity", similarity) or "normalized"
    if similarity not in SIMILARITIES:
        raise UsageError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    scoring.for_similarity()
    labels, traces = resolve_traces(models, n_jobs=n_jobs, cache_dir=cache_dir, progress=progress,
                                    tokens_only=True)
    enc = encode_traces(traces, settings=encoding, scoring=scoring)
    scores = np.array(pairwise(enc.seqs, enc.scoring, n_jobs=n_jobs, backend=backend,
                               client=client, block=block, out=blocks_dir, progress=progress))
    lengths = [len(s) for s in enc.seqs]
    # the record of earlier releases, which readers of sm.settings keep using
    record = {
        "granularity": enc.settings.granularity, "scoring": repr(enc.scoring),
        "family": enc.settings.family, "rolled": enc.rolled,
        "max_period": enc.settings.max_period, "as_exported": enc.as_exported,
        "gap_open": enc.scoring.gap_open, "gap_extend": enc.scoring.gap_extend,
        "preset": preset, "routes": {x: t.route for x, t in zip(labels, traces)},
        "lengths": lengths, "unrolled_lengths": [len(t) for t in traces],
        # depth and width are what rolled similarity leaves out; kept to say so
        # (SimilarityMatrix.hidden_change) and to break ties (TIE_RULE)
        "num_params": [t.num_params for t in traces],
        "vocabulary": enc.vocab.tokens, "versions": _versions(__version__),
    }
    # normalisation reads only the gaps, which the setting's scoring shares with enc's
    return SimilarityMatrix.from_scores(labels, scores, similarity, lengths=lengths,
                                        scoring=scoring, settings=record,
                                        encoding=enc.settings)


def _versions(archalign_version: str) -> dict:
    # Package metadata, not imports: a matrix of cached traces needs no torch.
    from importlib import metadata

    return {"archalign": archalign_version, "timm": metadata.version("timm"),
            "torch": metadata.version("torch")}


def align_models(a, b, granularity: str | None = None, scoring: Scoring | None = None, *,
                 settings: EncodingSettings | None = None, family: bool | float | None = None,
                 rolled: bool | None = None, max_period: int | None = defaults.MAX_PERIOD,
                 gap: float | None = None, gap_open: float | None = None,
                 gap_extend: float | None = None, cache_dir=None,
                 as_exported: bool | None = None):
    """One optimal alignment of two models' token sequences, with the settings of
    :func:`similarity_matrix` (``settings=`` / ``scoring=`` or the keywords; rolled
    blocks carry their repeat counts).

    Returns (alignment, vocabulary); ``alignment.format(vocabulary)`` prints
    it with token names, ``archalign.similarity.plotting.alignment_view`` draws it.
    """
    encoding, scoring = resolve_settings(settings, scoring, granularity=granularity,
                                         rolled=rolled, family=family, max_period=max_period,
                                         as_exported=as_exported, gap=gap, gap_open=gap_open,
                                         gap_extend=gap_extend)
    labels, traces = resolve_traces([a, b], n_jobs=1, cache_dir=cache_dir, progress=False,
                                    tokens_only=True)
    if len(traces) != 2:
        raise UsageError(f"align_models needs two distinct models, got {labels}")
    enc = encode_traces(traces, settings=encoding, scoring=scoring)
    alignment = align(enc.seqs[0], enc.seqs[1], enc.scoring)
    return replace(alignment, a_counts=enc.counts[0], b_counts=enc.counts[1]), enc.vocab
