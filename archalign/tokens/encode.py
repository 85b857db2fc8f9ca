"""Traces (or token records) to token-id sequences over one vocabulary, and the scoring.

``encode_traces`` formats each trace's tokens once, reads them ``as_exported`` when
asked (:mod:`archalign.tokens.folding`), encodes them with one
:class:`~archalign.tokens.vocabulary.Vocabulary`, rolls repeats when asked and builds
the :class:`~archalign.tokens.scoring.Scoring` the aligner needs.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from archalign import defaults
from archalign.tokens.folding import as_exported as export_reading
from archalign.tokens.scoring import Scoring
from archalign.tokens.vocabulary import Vocabulary
from archalign.tracing.rolling import roll
from archalign.utils.errors import UsageError

__all__ = ["encode_traces", "Encoded"]


class Encoded(NamedTuple):
    """Token-id sequences over one vocabulary, ready for the aligner."""

    seqs: list  # int32 arrays, rolled when asked
    scoring: object  # archalign.Scoring
    vocab: object  # archalign.Vocabulary
    counts: list  # int64 arrays: input tokens each id stands for (all 1 unrolled)
    rolled: bool  # the switches as applied, defaults resolved
    family: bool | float | None  # None when a given scoring fixed the substitutions
    as_exported: bool


def encode_traces(traces, granularity: str = defaults.GRANULARITY, scoring=None, *,
                  family: bool | float | None = None, rolled: bool | None = None,
                  max_period: int | None = defaults.MAX_PERIOD, gap=None, gap_open=None,
                  gap_extend=None, as_exported: bool | None = None) -> Encoded:
    """Token-id sequences of traces over one shared vocabulary, and the scoring.

    ``rolled``: tandem repeats of up to ``max_period`` tokens collapsed
    (archalign.roll, on ids, which is exact since equal tokens have equal ids).
    Without ``scoring``: match 1 / mismatch -1 with the gaps given, and ``family``
    partial credit between related tokens (Vocabulary.scoring). None for ``family``,
    ``rolled`` or the gaps means the default in :mod:`archalign.defaults`. A given
    ``scoring`` is used as it is (``family`` and gaps are then refused) and, with a substitution matrix, must
    match the vocabulary. ``as_exported``: tokens read as an inference export writes
    them (BatchNorm folded into its conv, ...; archalign.tokens.folding); None: when any
    trace is an ONNX graph.
    """
    # Tokens are formatted once (the costly step for a zoo) and shared by both uses.
    tokens = [t.tokens(granularity) for t in traces]
    if as_exported is None:
        as_exported = any(t.route == "onnx" for t in traces)
    if as_exported:
        tokens = [export_reading(x) for x in tokens]
    vocab = Vocabulary.from_tokens(tokens, granularity)
    seqs = [vocab.encode(x) for x in tokens]
    rolled = defaults.ROLLED if rolled is None else bool(rolled)
    if rolled:
        seqs, counts = map(list, zip(*(roll(s, max_period=max_period) for s in seqs)))
    else:
        counts = [np.ones(len(s), np.int64) for s in seqs]
    if scoring is None:
        gap_open, gap_extend = defaults.resolve_gaps(gap, gap_open, gap_extend)
        family = defaults.FAMILY if family is None else family
        if family:
            scoring = vocab.scoring(gap_open=gap_open, gap_extend=gap_extend,
                                    match=defaults.MATCH, mismatch=defaults.MISMATCH,
                                    family=family)
        else:
            scoring = Scoring(match=defaults.MATCH, mismatch=defaults.MISMATCH,
                              gap_open=gap_open, gap_extend=gap_extend)
    elif family is not None or any(g is not None for g in (gap, gap_open, gap_extend)):
        raise UsageError("a given scoring= already fixes the substitution scores and "
                         "gaps; drop family= / gap= / gap_open= / gap_extend=, or build "
                         "the scoring with Vocabulary.scoring(...)")
    elif scoring.vocab_size is not None and scoring.vocab_size != len(vocab):
        raise UsageError(f"the scoring's substitution matrix is {scoring.vocab_size} x "
                         f"{scoring.vocab_size} but these traces have {len(vocab)} distinct "
                         f"{granularity!r} tokens; build it with Vocabulary.from_traces("
                         f"traces, {granularity!r}).scoring(...)")
    return Encoded(seqs, scoring, vocab, counts, rolled, family, bool(as_exported))
