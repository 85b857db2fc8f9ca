"""A similarity setting as two objects: :class:`EncodingSettings` (how traces become token
ids) and a :class:`~archalign.tokens.scoring.Scoring` (how ids score), and the one place
that maps the keywords of the entry points and a preset onto them
(:func:`resolve_settings`).

``similarity_matrix``, ``align_models``, ``shortlist``, ``encode_traces`` and ``diff``
take ``settings=`` and ``scoring=`` or the older keywords (``granularity``, ``rolled``,
``family``, ``max_period``, ``as_exported``, ``gap``, ``gap_open``, ``gap_extend``); both
go through :func:`resolve_settings`, so the two ways in give the same result. Matrix
files, shortlists and reports record the two objects (``to_dict``) and read them back
(``from_dict``); passing them back in reproduces the result.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from archalign import defaults
from archalign.tokens.scoring import Scoring
from archalign.tracing.token_format import GRANULARITIES
from archalign.utils.errors import DataError, UsageError

__all__ = ["EncodingSettings", "resolve_settings", "preset_values", "fill_from_preset",
           "PRESETS"]

PRESETS = ("paper",)
_GAPS = ("gap", "gap_open", "gap_extend")


@dataclass(frozen=True)
class EncodingSettings:
    """How traces become token-id sequences (the scoring is the other half of a setting).

    Parameters
    ----------
    granularity : "type", "shape" or "full"
        How much of each layer's hyper-parameters its token carries: the op type only;
        plus kernel / stride / groups / heads; every recorded hyper-parameter. Default
        ``archalign.defaults.GRANULARITY`` ("shape").
    rolled : bool
        Collapse tandem repeats of blocks to one copy before aligning (archalign.roll),
        so that depth does not drown design. Default ``defaults.ROLLED`` (True).
    family : bool or float
        Partial credit between related tokens (conv variants, norms, ...): the
        vocabulary turns the flat scoring's match / mismatch into a substitution matrix
        (``Vocabulary.substitution_matrix``); True is the weight 1/2, a number a weight
        in (0, 1), False none. A scoring that already holds a substitution matrix is
        used as it is. Default ``defaults.FAMILY`` (False).
    max_period : int or None
        Longest repeated block, in tokens, that rolling collapses; None for no limit.
        Default ``defaults.MAX_PERIOD`` (None).
    as_exported : bool or None
        Read tokens as an inference export writes them (BatchNorm folded into its conv,
        ...; archalign.tokens.folding). None: decided per call, on when any model is an
        ONNX graph; what ``encode_traces`` returns and files record is the decision.

    Raises
    ------
    UsageError
        One line naming the field, for a value of the wrong type or out of range.
    """

    granularity: str = defaults.GRANULARITY
    rolled: bool = defaults.ROLLED
    family: bool | float = defaults.FAMILY
    max_period: int | None = defaults.MAX_PERIOD
    as_exported: bool | None = None

    def __post_init__(self):
        def fix(name, value):
            object.__setattr__(self, name, value)  # frozen: normalised once, here

        if self.granularity not in GRANULARITIES:
            raise UsageError(f"unknown granularity {self.granularity!r}; choose one of "
                             f"{', '.join(map(repr, GRANULARITIES))}")
        for name in ("rolled", "as_exported"):
            value = getattr(self, name)
            if isinstance(value, np.bool_):
                fix(name, bool(value))
            elif not (isinstance(value, bool) or (name == "as_exported" and value is None)):
                kind = "true or false" + (" or None" if name == "as_exported" else "")
                raise UsageError(f"EncodingSettings: {name} must be {kind}, got {value!r}")
        fix("family", _family(self.family))
        period = self.max_period
        if period is not None:
            if isinstance(period, (bool, np.bool_)) or not isinstance(period, Integral) \
                    or period < 1:
                raise UsageError(f"max_period must be a positive int or None, got {period!r}")
            fix("max_period", int(period))

    def to_dict(self) -> dict:
        """JSON-ready: every field under its own name."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d) -> EncodingSettings:
        """The settings :meth:`to_dict` described.

        Raises
        ------
        DataError
            One line naming the key: not a dict, an unknown or missing key, or a value
            of the wrong type.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(d, dict):
            raise DataError(f"encoding settings are a dict, got {type(d).__name__}")
        unknown = sorted(set(map(str, d)) - set(names))
        missing = [k for k in names if k not in d]
        if unknown or missing:
            what = (f"unknown key {unknown[0]!r}" if unknown else f"no {missing[0]!r}")
            raise DataError(f"encoding settings with {what}; they have {', '.join(names)}")
        try:
            return cls(**d)
        except UsageError as exc:
            raise DataError(f"encoding settings: {exc}") from None


def _family(value) -> bool | float:
    """``family`` as stored: a bool, or a weight in (0, 1) as a float; 0 is False."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not isinstance(value, Real) or not math.isfinite(value):
        raise UsageError(f"family must be true, false or a weight in (0, 1), got {value!r}")
    if value == 0:
        return False
    if not 0 < value < 1:
        raise UsageError(f"family weight must be in (0, 1), got {value!r}")
    return float(value)


def preset_values(preset: str) -> dict:
    """What ``preset`` fixes: keyword -> value (``scoring`` a Scoring, ``similarity`` the
    name of a similarity).

    ``"paper"``: the NeuRN paper's setting: type tokens, unrolled, no family credit,
    ``Scoring.paper()`` (match 1, mismatch -2, linear gap -2), correlation similarity.
    """
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose from {PRESETS}")
    return {"granularity": "type", "rolled": False, "family": False,
            "scoring": Scoring.paper(), "similarity": "correlation"}


def fill_from_preset(preset: str | None, key: str, value, in_settings: bool = False):
    """``value`` when it agrees with what ``preset`` fixes for ``key``, the preset's value
    when ``value`` is None (not given), else a UsageError naming both and the fix.

    ``in_settings``: the value is a field of ``settings=`` rather than a keyword.
    """
    if preset is None:
        return value
    fixed = preset_values(preset)[key]
    if value is None:
        return fixed
    if _normal(key, value) != fixed:
        _refuse_for_preset(preset, key, fixed, value, in_settings)
    return fixed


def _refuse_for_preset(preset: str, key: str, fixed, value, in_settings: bool = False):
    given = (f"settings= has {key}={value!r}; drop settings=" if in_settings
             else f"{key}={value!r} was passed; drop {key}=")
    raise UsageError(f"preset={preset!r} fixes the tokens, the scoring and the similarity "
                     f"({key}={fixed!r}), but {given}, or drop preset= and give every "
                     f"setting yourself")


def resolve_settings(settings: EncodingSettings | None = None, scoring: Scoring | None = None,
                     *, preset: str | None = None, granularity: str | None = None,
                     rolled: bool | None = None, family: bool | float | None = None,
                     max_period: int | None = None, as_exported: bool | None = None,
                     gap: float | None = None, gap_open: float | None = None,
                     gap_extend: float | None = None) -> tuple[EncodingSettings, Scoring]:
    """The setting that ``settings=`` / ``scoring=``, the keywords and a preset describe.

    Parameters
    ----------
    settings : EncodingSettings, optional
        The whole encoding; a keyword given beside it must agree with it.
    scoring : Scoring, optional
        Used as it is, except that with ``settings.family`` on and no substitution
        matrix it holds the flat scores the vocabulary adds family credit to. The gap
        keywords are then refused, and so is the ``family`` keyword (which asks archalign
        to build the scoring).
    preset : "paper", optional
        Fills what the caller did not give (:func:`preset_values`); a value given that
        differs from the preset's is refused.
    granularity, rolled, family, max_period, as_exported
        The fields of :class:`EncodingSettings`; None: not given (the default, or the
        field of ``settings``).
    gap, gap_open, gap_extend : float, optional
        ``gap`` alone for linear gaps, ``gap_open`` with ``gap_extend`` for affine ones,
        nothing for the defaults (``archalign.defaults.resolve_gaps``); the scoring is
        then match ``defaults.MATCH``, mismatch ``defaults.MISMATCH`` and these gaps.

    Returns
    -------
    (EncodingSettings, Scoring)
        The scoring to align with, or with ``family`` on and a flat scoring, the
        scores ``encode_traces`` builds the substitution matrix from.

    Raises
    ------
    UsageError
        One line naming the conflicting or bad keyword and the fix.
    """
    if rolled is not None:
        rolled = bool(rolled)  # as the keyword has always been read
    keywords = {"granularity": granularity, "rolled": rolled, "family": family,
                "max_period": max_period, "as_exported": as_exported}
    gaps = {k: v for k, v in zip(_GAPS, (gap, gap_open, gap_extend)) if v is not None}
    if scoring is not None and not isinstance(scoring, Scoring):
        raise UsageError(f"scoring= takes an archalign.Scoring, got {type(scoring).__name__}")
    if scoring is not None and (gaps or (settings is None and family is not None)):
        raise UsageError("a given scoring= already fixes the substitution scores and "
                         "gaps; drop family= / gap= / gap_open= / gap_extend=, or build "
                         "the scoring with Vocabulary.scoring(...)")
    if settings is not None:
        if not isinstance(settings, EncodingSettings):
            raise UsageError(f"settings= takes an archalign.EncodingSettings, got "
                             f"{type(settings).__name__}")
        for key, value in keywords.items():
            if value is not None and _normal(key, value) != getattr(settings, key):
                raise UsageError(f"settings= has {key}={getattr(settings, key)!r} but "
                                 f"{key}={value!r} was passed too; drop {key}=, or pass "
                                 f"settings=dataclasses.replace(settings, {key}=...)")
        keywords = settings.to_dict()
    elif scoring is not None:
        keywords["family"] = False  # a given scoring is used as it is
    for key in ("granularity", "rolled", "family"):
        keywords[key] = fill_from_preset(preset, key, keywords[key], settings is not None)
    if preset is not None:
        scoring = fill_from_preset(preset, "scoring", scoring)
        for key, value in gaps.items():  # a gap keyword may only repeat the preset's gaps
            fixed = scoring.gap_extend if key == "gap_extend" else scoring.gap_open
            if (key == "gap" and scoring.affine) or float(value) != fixed:
                _refuse_for_preset(preset, key, fixed, value)
        gaps = {}
    encoding = EncodingSettings(**{k: v for k, v in keywords.items() if v is not None})
    if scoring is None:
        gap_open, gap_extend = defaults.resolve_gaps(gaps.get("gap"), gaps.get("gap_open"),
                                                     gaps.get("gap_extend"))
        scoring = Scoring(match=defaults.MATCH, mismatch=defaults.MISMATCH,
                          gap_open=gap_open, gap_extend=gap_extend)
    return encoding, scoring


def _normal(key: str, value):
    """A keyword's value as the setting holds it (to compare two of them)."""
    if key in ("scoring", "similarity"):
        return value
    if key == "rolled":
        return bool(value)
    return getattr(EncodingSettings(**{key: value}), key)
