"""Traces (or token records) to token-id sequences over one vocabulary, and the scoring.

``encode_traces`` takes a setting (an
:class:`~archalign.tokens.settings.EncodingSettings` and a scoring, or the keywords),
formats each trace's tokens once, reads them ``as_exported`` when asked
(:mod:`archalign.tokens.folding`), encodes them with one
:class:`~archalign.tokens.vocabulary.Vocabulary`, rolls repeats when asked and builds
the :class:`~archalign.tokens.scoring.Scoring` the aligner needs.
"""
from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from archalign import defaults
from archalign.tokens.folding import as_exported as export_reading
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import EncodingSettings, resolve_settings
from archalign.tokens.vocabulary import Vocabulary
from archalign.tracing.rolling import roll
from archalign.utils.errors import UsageError

__all__ = ["encode_traces", "Encoded"]


class Encoded(NamedTuple):
    """Token-id sequences over one vocabulary, ready for the aligner."""

    seqs: list  # int32 arrays, rolled when asked
    scoring: object  # archalign.Scoring: the one to align with, substitution matrix built
    vocab: object  # archalign.Vocabulary
    counts: list  # int64 arrays: input tokens each id stands for (all 1 unrolled)
    rolled: bool  # the switches as applied, defaults resolved
    family: bool | float | None  # None when a given scoring fixed the substitutions
    as_exported: bool
    settings: EncodingSettings  # all of the above as one object, as_exported decided


def encode_traces(traces, granularity: str | None = None, scoring: Scoring | None = None, *,
                  settings: EncodingSettings | None = None, family: bool | float | None = None,
                  rolled: bool | None = None, max_period: int | None = defaults.MAX_PERIOD,
                  gap=None, gap_open=None, gap_extend=None,
                  as_exported: bool | None = None) -> Encoded:
    """Token-id sequences of traces over one shared vocabulary, and the scoring.

    The setting is ``settings=`` (:class:`~archalign.tokens.settings.EncodingSettings`)
    and ``scoring=``, or the keywords, which mean what the fields of the same names do;
    None for a keyword means not given (the default in :mod:`archalign.defaults`, or the
    field of ``settings``). Both are read by
    :func:`~archalign.tokens.settings.resolve_settings`.

    ``rolled``: tandem repeats of up to ``max_period`` tokens collapsed
    (archalign.roll, on ids, which is exact since equal tokens have equal ids).
    Without ``scoring``: match 1 / mismatch -1 with the gaps given. ``family``: partial
    credit between related tokens (Vocabulary.scoring) added to a flat scoring's
    mismatch. A given ``scoring`` is used as it is (the ``family`` keyword and gaps are
    then refused; ``settings.family`` adds credit to it when it is flat) and, with a
    substitution matrix, must match the vocabulary. ``as_exported``: tokens read as an
    inference export writes them (BatchNorm folded into its conv, ...;
    archalign.tokens.folding); None: when any trace is an ONNX graph.
    """
    given = scoring is not None
    settings, scoring = resolve_settings(settings, scoring, granularity=granularity,
                                         rolled=rolled, family=family, max_period=max_period,
                                         as_exported=as_exported, gap=gap, gap_open=gap_open,
                                         gap_extend=gap_extend)
    granularity = settings.granularity
    # Tokens are formatted once (the costly step for a zoo) and shared by both uses.
    tokens = [t.tokens(granularity) for t in traces]
    as_exported = settings.as_exported
    if as_exported is None:
        as_exported = any(t.route == "onnx" for t in traces)
    if as_exported:
        tokens = [export_reading(x) for x in tokens]
    vocab = Vocabulary.from_tokens(tokens, granularity)
    seqs = [vocab.encode(x) for x in tokens]
    if settings.rolled:
        seqs, counts = map(list, zip(*(roll(s, max_period=settings.max_period) for s in seqs)))
    else:
        counts = [np.ones(len(s), np.int64) for s in seqs]
    family = None if given else settings.family
    if settings.family and scoring.substitution is None:
        family = settings.family
        scoring = vocab.scoring(gap_open=scoring.gap_open, gap_extend=scoring.gap_extend,
                                match=scoring.match, mismatch=scoring.mismatch, family=family)
    elif scoring.vocab_size is not None and scoring.vocab_size != len(vocab):
        raise UsageError(f"the scoring's substitution matrix is {scoring.vocab_size} x "
                         f"{scoring.vocab_size} but these traces have {len(vocab)} distinct "
                         f"{granularity!r} tokens; build it with Vocabulary.from_traces("
                         f"traces, {granularity!r}).scoring(...)")
    settings = replace(settings, as_exported=bool(as_exported))
    return Encoded(seqs, scoring, vocab, counts, settings.rolled, family, settings.as_exported,
                   settings)
