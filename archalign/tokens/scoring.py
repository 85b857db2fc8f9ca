"""Scoring schemes for global alignment of token sequences.

Every number in a :class:`Scoring` is a *score*: it is added to the alignment
total, so rewards are positive and penalties negative (Biopython's
convention, not parasail's positive "penalties"). A gap of length n scores
``gap_open + (n - 1) * gap_extend`` (Gotoh); a linear gap is the special case
``gap_open == gap_extend == gap``.

Integer fast path: when every score is an integer multiple of ``1/q`` for some
``q <= 1000`` (plain integers, halves, tenths, ...), alignments are computed
exactly in scaled integer arithmetic (int16 or int32 SIMD lanes, picked from
a bound on the largest possible |score|). Other float scores use a scalar
float64 loop, which is correct but several times slower.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real

import numpy as np

from archalign import defaults
from archalign.utils.errors import DataError, UsageError

__all__ = ["Scoring"]

_MAX_SCALE = 1000
# What to_dict writes and from_dict reads.
_DICT_KEYS = ("match", "mismatch", "gap_open", "gap_extend", "substitution")
_TOLERANCE = 1e-9
# Totals add up to millions of steps; past 1e12 per step a float64 total stops being
# exact to the integer, and 1e308 overflows to inf. Similarities are ratios of scores,
# so a smaller scale loses nothing.
_MAX_ABS = 1e12


@dataclass(frozen=True)
class IntegerForm:
    """A scoring scaled to exact integers: real score = integer score / scale."""

    scale: int
    match: int
    mismatch: int
    gap_open: int
    gap_extend: int
    substitution: np.ndarray | None  # int64 (V, V) or None for flat scoring
    maxabs: int  # largest |score| of a single step, for overflow bounds


def _check_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"Scoring: {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise UsageError(f"Scoring: {name} must be finite, got {value}")
    if abs(value) > _MAX_ABS:
        raise UsageError(f"Scoring: {name}={value:g} is too large (|score| <= {_MAX_ABS:g}: "
                         f"totals would lose precision or overflow); scale all scores down, "
                         f"similarities do not change")
    return value


def _check_diagonal(S: np.ndarray) -> None:
    """Refuse a substitution matrix in which a token scores as much against another as
    against itself; rows are taken in blocks, since a full-granularity vocabulary makes
    S hundreds of MB and a copy would double that."""
    diag = np.diag(S)
    row_max, col_max = np.empty(len(S)), np.full(len(S), -np.inf)
    for start in range(0, len(S), 256):
        block = S[start:start + 256].copy()
        k = np.arange(len(block))
        block[k, start + k] = -np.inf
        row_max[start:start + len(block)] = block.max(axis=1)
        np.maximum(col_max, block.max(axis=0), out=col_max)
    bad = np.flatnonzero((row_max >= diag) | (col_max >= diag))
    if bad.size:
        i = int(bad[0])
        row, col = S[i].copy(), S[:, i].copy()
        row[i] = col[i] = -np.inf
        at = (i, int(row.argmax())) if row_max[i] >= diag[i] else (int(col.argmax()), i)
        raise UsageError(f"Scoring: substitution[{at[0]}, {at[1]}]={S[at]:g} is not below "
                         f"substitution[{i}, {i}]={diag[i]:g}: token {i} would score no "
                         f"better against itself than against another, so the similarity "
                         f"could not see a difference; give every entry off the diagonal a "
                         f"score below both diagonal entries of its row and column")


class Scoring:
    """How matches, substitutions and gaps score in a global alignment.

    Parameters
    ----------
    match, mismatch : float
        Score of aligning two equal / two different tokens (flat scoring).
        Defaults 1 and -1. Not allowed together with ``substitution``.
    gap : float
        Linear gap score per gapped position (default -1).
    gap_open, gap_extend : float
        Affine (Gotoh) gaps: the first position of a gap scores ``gap_open``,
        each further one ``gap_extend``. Give both, and not ``gap``;
        ``gap_extend >= gap_open`` (an extension costs no more than an opening).
    substitution : array_like, shape (V, V)
        Score of aligning token id i with token id j; need not be symmetric.
        Token ids must then lie in ``0 .. V-1``.

    Examples
    --------
    >>> Scoring(match=1, mismatch=-1, gap=-1)
    Scoring(match=1, mismatch=-1, gap=-1)
    >>> Scoring(gap_open=-3, gap_extend=-1)
    Scoring(match=1, mismatch=-1, gap_open=-3, gap_extend=-1)
    """

    def __init__(self, match=None, mismatch=None, gap=None, *, gap_open=None,
                 gap_extend=None, substitution=None):
        if substitution is not None and (match is not None or mismatch is not None):
            raise UsageError(
                "Scoring: give either match/mismatch or a substitution matrix, not "
                "both (the matrix already holds the match scores on its diagonal)"
            )
        if gap is not None and (gap_open is not None or gap_extend is not None):
            raise UsageError(
                "Scoring: give either gap= (linear gaps) or gap_open= and "
                "gap_extend= (affine gaps), not both"
            )
        if (gap_open is None) != (gap_extend is None):
            raise UsageError(
                "Scoring: affine gaps need both gap_open= and gap_extend= "
                "(for linear gaps pass gap= alone)"
            )
        if gap_open is None:
            gap_open = gap_extend = -1 if gap is None else gap
            self._affine = False
        else:
            self._affine = True
        self.gap_open = _check_number("gap_open", gap_open)
        self.gap_extend = _check_number("gap_extend", gap_extend)
        if self.gap_extend < self.gap_open:
            # Gotoh's recursion would then score one long gap as several
            # adjacent short ones, and the traceback would not re-score.
            raise UsageError(
                f"Scoring: gap_extend={gap_extend} is below gap_open={gap_open}, so "
                f"extending a gap would cost more than opening one; use "
                f"gap_extend >= gap_open (scores are added: gaps are negative)"
            )
        if self.gap_open == self.gap_extend:
            self._affine = False  # open == extend is a linear gap: cheaper loop

        if substitution is None:
            self.match = _check_number("match", 1 if match is None else match)
            self.mismatch = _check_number("mismatch", -1 if mismatch is None else mismatch)
            self.substitution = None
        else:
            self.match = self.mismatch = None
            self.substitution = self._check_matrix(substitution)
        # the exact scaled-integer form the SIMD path runs on (None: the float path)
        self.integer_form = self._integer_form()

    @staticmethod
    def _check_matrix(S) -> np.ndarray:
        try:
            arr = np.array(S, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Scoring: substitution must be a numeric matrix ({exc})") from None
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
            raise UsageError(
                f"Scoring: substitution must be a non-empty square (V, V) matrix over "
                f"token ids 0..V-1, got shape {arr.shape}"
            )
        huge = np.isfinite(arr) & (np.abs(arr) > _MAX_ABS)
        if huge.any():
            i, j = np.argwhere(huge)[0]
            _check_number(f"substitution[{i}, {j}]", arr[i, j])
        bad = ~np.isfinite(arr)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise UsageError(
                f"Scoring: substitution[{i}, {j}] is {arr[i, j]}; every score must be "
                f"finite (use a large negative number to forbid a substitution)"
            )
        arr.setflags(write=False)
        return arr

    @classmethod
    def paper(cls) -> Scoring:
        """The NeuRN paper's scoring: match +1, mismatch -2, linear gap -2."""
        return cls(match=1, mismatch=-2, gap=-2)

    def for_similarity(self) -> Scoring:
        """This scoring, checked to give a similarity that means something.

        The aligner takes any scores (a positive gap or a mismatch above the match is
        still an optimisation problem); a similarity does not: gaps must cost (``<= 0``,
        with ``gap_extend >= gap_open``) and identical tokens must score above different
        ones (``mismatch < match``; with a substitution matrix, every entry off the
        diagonal below the two diagonal entries of its row and column).

        Returns
        -------
        Scoring
            ``self``.

        Raises
        ------
        ValueError
            One line naming the value and the fix.
        """
        if self._affine:
            defaults.resolve_gaps(gap_open=self.gap_open, gap_extend=self.gap_extend)
        else:
            defaults.resolve_gaps(gap=self.gap_open)
        if self.substitution is None:
            defaults.check_match(self.match, self.mismatch)
        else:
            _check_diagonal(self.substitution)
        return self

    @property
    def affine(self) -> bool:
        """True when gap_open != gap_extend."""
        return self._affine

    @property
    def vocab_size(self) -> int | None:
        """V of the substitution matrix, or None for flat match/mismatch."""
        return None if self.substitution is None else self.substitution.shape[0]

    @property
    def symmetric(self) -> bool:
        """True when score(a, b) == score(b, a) for all sequences."""
        S = self.substitution
        return S is None or bool(np.array_equal(S, S.T))

    @property
    def integer_path(self) -> bool:
        """True when alignments run on the exact scaled-integer SIMD path."""
        return self.integer_form is not None

    def substitution_score(self, x: int, y: int) -> float:
        """Score of aligning token id x against token id y."""
        if self.substitution is not None:
            return float(self.substitution[x, y])
        return self.match if x == y else self.mismatch

    def _values(self) -> np.ndarray:
        subs = (np.unique(self.substitution) if self.substitution is not None
                else np.array([self.match, self.mismatch]))
        return np.concatenate([subs, [self.gap_open, self.gap_extend]])

    def _integer_form(self) -> IntegerForm | None:
        values = self._values()
        scale = 1
        for v in values:
            frac = Fraction(float(v)).limit_denominator(_MAX_SCALE)
            # relative: a score far below 1/_MAX_SCALE (5e-10) must not round to 0
            if abs(float(frac) - v) > _TOLERANCE * abs(v):
                return None
            scale = scale * frac.denominator // math.gcd(scale, frac.denominator)
            if scale > _MAX_SCALE:
                return None

        def to_int(x):
            return int(round(x * scale))

        maxabs = max(1, int(np.max(np.abs(np.rint(values * scale)))))
        S = None
        if self.substitution is not None:
            S = np.rint(self.substitution * scale).astype(np.int64)
        return IntegerForm(
            scale=scale,
            match=0 if self.match is None else to_int(self.match),
            mismatch=0 if self.mismatch is None else to_int(self.mismatch),
            gap_open=to_int(self.gap_open),
            gap_extend=to_int(self.gap_extend),
            substitution=S,
            maxabs=maxabs,
        )

    def to_dict(self, *, matrix: bool = True) -> dict:
        """JSON-ready description, read back by :meth:`from_dict`.

        Parameters
        ----------
        matrix : bool
            Carry a substitution matrix as nested lists of rows (``"substitution"``).
            False leaves it out, for a writer that stores it beside the dict as an array
            (a matrix file's ``substitution`` member); put it back under
            ``"substitution"`` (an array or nested lists) before :meth:`from_dict`.

        Returns
        -------
        dict
            ``gap_open`` and ``gap_extend``, and either ``match`` and ``mismatch`` or
            ``substitution``; every number a float, so that ``from_dict`` rebuilds an equal
            Scoring (a linear gap is ``gap_open == gap_extend``).
        """
        d = {"gap_open": self.gap_open, "gap_extend": self.gap_extend}
        if self.substitution is None:
            d.update(match=self.match, mismatch=self.mismatch)
        elif matrix:
            d["substitution"] = self.substitution.tolist()
        return d

    @classmethod
    def from_dict(cls, d) -> Scoring:
        """The Scoring :meth:`to_dict` described.

        Raises
        ------
        DataError
            One line naming the key: not a dict, an unknown or missing key, a value of the
            wrong type, or scores the constructor refuses.
        """
        if not isinstance(d, dict):
            raise DataError(f"a scoring is a dict of scores, got {type(d).__name__}")
        unknown = sorted(set(map(str, d)) - set(_DICT_KEYS))
        if unknown:
            raise DataError(f"unknown scoring key {unknown[0]!r}; a scoring has "
                            f"{', '.join(_DICT_KEYS)}")
        flat = "substitution" not in d
        needed = ("gap_open", "gap_extend") + (("match", "mismatch") if flat else ())
        missing = [k for k in needed if k not in d]
        if missing:
            raise DataError(f"the scoring has no {missing[0]!r}; a scoring has gap_open, "
                            f"gap_extend and either match and mismatch or substitution")
        for key in ("match", "mismatch", "gap_open", "gap_extend"):
            value = d.get(key)
            if key in d and (isinstance(value, bool) or not isinstance(value, Real)):
                raise DataError(f"the scoring's {key!r} is {value!r:.40}, not a number")
        if not flat and not isinstance(d["substitution"], (list, np.ndarray)):
            raise DataError(f"the scoring's 'substitution' is a {type(d['substitution']).__name__}"
                            f", not a matrix (nested lists of rows)")
        try:
            return cls(d.get("match"), d.get("mismatch"), gap_open=d["gap_open"],
                       gap_extend=d["gap_extend"], substitution=d.get("substitution"))
        except (TypeError, ValueError) as exc:
            raise DataError(f"the scoring is not a valid one ({exc})") from None

    def __eq__(self, other):
        if not isinstance(other, Scoring):
            return NotImplemented
        same_subs = (
            (self.substitution is None and other.substitution is None)
            or (self.substitution is not None and other.substitution is not None
                and np.array_equal(self.substitution, other.substitution))
        )
        return same_subs and (self.match, self.mismatch, self.gap_open, self.gap_extend) == (
            other.match, other.mismatch, other.gap_open, other.gap_extend)

    __hash__ = None  # mutable-looking numpy payload: not hashable

    def __repr__(self):
        def fmt(x):
            return f"{x:g}"

        parts = ([f"substitution=<{self.vocab_size}x{self.vocab_size} matrix>"]
                 if self.substitution is not None
                 else [f"match={fmt(self.match)}", f"mismatch={fmt(self.mismatch)}"])
        if self._affine:
            parts += [f"gap_open={fmt(self.gap_open)}", f"gap_extend={fmt(self.gap_extend)}"]
        else:
            parts.append(f"gap={fmt(self.gap_open)}")
        return f"Scoring({', '.join(parts)})"
