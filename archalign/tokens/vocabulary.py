"""Token strings to integer ids, and the substitution matrix the aligner scores with.

A :class:`Vocabulary` is built over the traces to be compared (``from_traces``), turns
each trace into an ``int32`` id array (``encode``) and builds a ``(V, V)`` substitution
matrix over those ids: flat match / mismatch by default, or *family-aware*, where
related tokens score in between.

Family-aware scoring (``family=True`` or a weight ``w`` in (0, 1)), for tokens a != b::

    same op type, other hyper-parameters   mismatch + (1 + w) / 2 * (match - mismatch)
    same family, other op type             mismatch + w * (match - mismatch)
    unrelated                              mismatch

``family=True`` means ``w = 1/2``: with match 1 / mismatch -1, ``Conv2d(k=3)`` vs
``Conv2d(k=1)`` scores 0.5, ``Conv2d`` vs ``Conv1d`` 0, ``Conv2d`` vs ``ReLU`` -1. The
weights are simple fractions so integer match / mismatch give multiples of 1/4 and the
aligner's exact integer path applies.

The family table (``FAMILIES``: op type -> family; an op type is the token up to its
first ``(``). Names not in the table are matched, in this order, by the patterns in
``_FAMILY_PATTERNS``; anything else is its own family (no partial credit).

========== ==================================================================
family     members
========== ==================================================================
conv       Conv1d/2d/3d, ConvTranspose1d/2d/3d, timm's Conv2dSame, StdConv2d,
           ScaledStdConv2d, CondConv2d, ...; pattern ``Conv``
linear     Linear, Bilinear, LazyLinear, NonDynamicallyQuantizableLinear
norm       BatchNorm1d/2d/3d, SyncBatchNorm, LayerNorm, LayerNorm2d, GroupNorm,
           InstanceNorm1d/2d/3d, RMSNorm, LocalResponseNorm, FrozenBatchNorm2d,
           normalize; pattern ``Norm``
activation ReLU, ReLU6, LeakyReLU, PReLU, ELU, CELU, SELU, GELU, GELUTanh,
           QuickGELU, SiLU, Swish, Mish, Sigmoid, Hardsigmoid, HardSigmoid,
           Hardswish, HardSwish, Tanh, Hardtanh, Softplus, GLU; pattern
           ``relu|gelu|silu|swish|mish|sigmoid|tanh``
attention  scaled_dot_product_attention, MultiheadAttention, matmul, einsum,
           Softmax, LogSoftmax; pattern ``Attention``
pool       MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool*, AdaptiveMaxPool*,
           LPPool1d/2d, mean, BlurPool2d; pattern ``Pool``
merge      add, sub, mul, div, cat, stack (ways two branches are combined)
reshape    reshape, permute, transpose, Flatten, Unflatten, roll, PixelShuffle,
           PixelUnshuffle
resample   Upsample, UpsamplingNearest2d, UpsamplingBilinear2d
dropout    Dropout, Dropout1d/2d/3d, AlphaDropout, DropPath, DropBlock2d;
           pattern ``Drop``
embedding  Embedding, EmbeddingBag
========== ==================================================================
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from archalign.tokens.scoring import Scoring
from archalign.utils.errors import UnknownNameError, UsageError

if TYPE_CHECKING:
    from archalign.tracing.calls import Trace

__all__ = ["Vocabulary", "FAMILIES", "family_of", "op_type"]

_TABLE = {
    "conv": "Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d "
            "LazyConv1d LazyConv2d LazyConv3d Conv2dSame StdConv2d StdConv2dSame "
            "ScaledStdConv2d ScaledStdConv2dSame CondConv2d DeformConv2d",
    "linear": "Linear Bilinear LazyLinear NonDynamicallyQuantizableLinear",
    "norm": "BatchNorm1d BatchNorm2d BatchNorm3d SyncBatchNorm LayerNorm LayerNorm2d "
            "GroupNorm GroupNorm1 InstanceNorm1d InstanceNorm2d InstanceNorm3d RMSNorm "
            "LocalResponseNorm FrozenBatchNorm2d normalize",
    "activation": "ReLU ReLU6 LeakyReLU PReLU RReLU ELU CELU SELU GELU GELUTanh QuickGELU "
                  "SiLU Swish Mish Sigmoid Hardsigmoid HardSigmoid Hardswish HardSwish Tanh "
                  "Hardtanh Softplus Softsign GLU",
    "attention": "scaled_dot_product_attention MultiheadAttention matmul einsum Softmax "
                 "LogSoftmax",
    "pool": "MaxPool1d MaxPool2d MaxPool3d AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d "
            "AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d AdaptiveMaxPool2d "
            "AdaptiveMaxPool3d LPPool1d LPPool2d mean BlurPool2d",
    "merge": "add sub mul div cat stack",
    "reshape": "reshape permute transpose Flatten Unflatten roll PixelShuffle PixelUnshuffle",
    "resample": "Upsample UpsamplingNearest2d UpsamplingBilinear2d",
    "dropout": "Dropout Dropout1d Dropout2d Dropout3d AlphaDropout DropPath DropBlock2d",
    "embedding": "Embedding EmbeddingBag",
}
FAMILIES: dict[str, str] = {op: fam for fam, ops in _TABLE.items() for op in ops.split()}

# For op types not in the table (timm and user classes), first match wins. Norm and
# attention come first so "BatchNormAct2d" or "AttentionPool2d" are not read as convs
# or pools.
_FAMILY_PATTERNS = [
    ("norm", re.compile(r"Norm")),
    ("attention", re.compile(r"Attention")),
    ("pool", re.compile(r"Pool")),
    ("conv", re.compile(r"Conv")),
    ("dropout", re.compile(r"Drop")),
    ("activation", re.compile(r"relu|gelu|silu|swish|mish|sigmoid|tanh", re.IGNORECASE)),
]


def op_type(token: str) -> str:
    """The op type of a token: ``"Conv2d(k=3,s=1,g=1)"`` -> ``"Conv2d"``."""
    return token.split("(", 1)[0]


def family_of(token: str) -> str | None:
    """The family of a token's op type, or ``None`` when it has none."""
    op = op_type(token)
    fam = FAMILIES.get(op)
    if fam is None:
        fam = next((f for f, pattern in _FAMILY_PATTERNS if pattern.search(op)), None)
    return fam


class Vocabulary:
    """An ordered set of token strings; a token's id is its position.

    Parameters
    ----------
    tokens : iterable of str
        Initial tokens, ids given in order of first appearance.
    granularity : str, optional
        The granularity ``encode`` reads a :class:`~archalign.tracing.Trace` at.
        ``from_traces`` sets it.
    """

    def __init__(self, tokens: Iterable[str] = (), granularity: str | None = None):
        self.granularity = granularity
        self._ids: dict[str, int] = {}
        self.update(tokens)

    @classmethod
    def from_traces(cls, traces: Iterable[Trace] | dict,
                    granularity: str = "type") -> Vocabulary:
        """The vocabulary of every token in ``traces`` (a sequence, or a dict of name ->
        trace), ids in sorted token order so they do not depend on the traces' order."""
        if isinstance(traces, dict):
            traces = traces.values()
        return cls.from_tokens((t.tokens(granularity) for t in traces), granularity)

    @classmethod
    def from_tokens(cls, token_lists: Iterable[Sequence[str]],
                    granularity: str | None = None) -> Vocabulary:
        """The vocabulary of token lists already read (at ``granularity``), ids in
        sorted token order."""
        seen: set[str] = set()
        for tokens in token_lists:
            seen.update(tokens)
        return cls(sorted(seen), granularity=granularity)

    # ------------------------------------------------------------ set-like
    def add(self, token: str) -> int:
        """The id of ``token``, adding it if new."""
        if not isinstance(token, str):
            raise TypeError(f"tokens are strings, got {type(token).__name__}")
        return self._ids.setdefault(token, len(self._ids))

    def update(self, tokens: Iterable[str]) -> None:
        for tok in tokens:
            self.add(tok)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __getitem__(self, token: str) -> int:
        return self._ids[token]

    @property
    def tokens(self) -> list[str]:
        return list(self._ids)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens, granularity={self.granularity!r})"

    # ------------------------------------------------------------ ids
    def encode(self, trace_or_tokens: Trace | Sequence[str], *, add: bool = False) -> np.ndarray:
        """Token ids of a trace (read at ``self.granularity``) or a token list, as a
        C-contiguous ``int32`` array. Unknown tokens raise ``KeyError`` unless
        ``add=True``."""
        if hasattr(trace_or_tokens, "tokens") and callable(trace_or_tokens.tokens):
            if self.granularity is None:
                raise UsageError("this Vocabulary has no granularity to read a Trace at; "
                                 "build it with Vocabulary.from_traces(..., granularity=...) "
                                 "or pass trace.tokens(granularity) instead")
            tokens = trace_or_tokens.tokens(self.granularity)
        else:
            tokens = trace_or_tokens
        if isinstance(tokens, str):
            raise TypeError("encode() takes a sequence of tokens, not one string")
        if add:
            return np.fromiter((self.add(t) for t in tokens), dtype=np.int32)
        try:
            return np.fromiter((self._ids[t] for t in tokens), dtype=np.int32)
        except KeyError as e:
            raise UnknownNameError(f"token {e.args[0]!r} is not in this vocabulary; build it from "
                           f"all the traces you compare (Vocabulary.from_traces) or encode "
                           f"with add=True") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        tokens = self.tokens
        try:
            return [tokens[int(i)] for i in np.asarray(ids).ravel()]
        except IndexError:
            raise IndexError(f"id out of range for a vocabulary of {len(tokens)} tokens") from None

    # ------------------------------------------------------------ scoring
    def substitution_matrix(self, match: float = 1, mismatch: float = -1,
                            family: bool | float = False) -> np.ndarray:
        """The ``(V, V)`` float64 score of aligning token i with token j.

        ``family=False``: ``match`` on the diagonal, ``mismatch`` elsewhere.
        ``family=True`` (weight 1/2) or a weight ``w`` in (0, 1): related tokens score
        in between (see the module docstring for the table and the formula).
        """
        if len(self) == 0:
            raise UsageError("the vocabulary is empty; build it from traces first")
        if match <= mismatch:
            raise UsageError(f"match ({match}) must be larger than mismatch ({mismatch})")
        n = len(self)
        S = np.full((n, n), float(mismatch))
        if family is not False:
            w = 0.5 if family is True else float(family)
            if not 0 < w < 1:
                raise UsageError(f"family weight must be in (0, 1), got {family!r}")
            span = match - mismatch
            ops = [op_type(t) for t in self._ids]
            fams = [family_of(t) or f"op:{op}" for t, op in zip(self._ids, ops)]
            op_code = _codes(ops)
            fam_code = _codes(fams)
            S[fam_code[:, None] == fam_code[None, :]] = mismatch + w * span
            S[op_code[:, None] == op_code[None, :]] = mismatch + (1 + w) / 2 * span
        np.fill_diagonal(S, match)
        return S

    def scoring(self, gap: float | None = None, *, gap_open: float | None = None,
                gap_extend: float | None = None, match: float = 1, mismatch: float = -1,
                family: bool | float = False) -> Scoring:
        """An ``archalign.Scoring`` over this vocabulary's ids: linear gaps with
        ``gap`` (default -1), or affine with ``gap_open`` and ``gap_extend``."""
        S = self.substitution_matrix(match=match, mismatch=mismatch, family=family)
        if gap is None and gap_open is None and gap_extend is None:
            gap = -1.0
        return Scoring(substitution=S, gap=gap, gap_open=gap_open, gap_extend=gap_extend)

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"granularity": self.granularity, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabulary:
        return cls(d["tokens"], granularity=d.get("granularity"))


def _codes(labels: list[str]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(x, len(index)) for x in labels], dtype=np.int64)
