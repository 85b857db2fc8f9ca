"""A :class:`~archalign.similarity.matrix.SimilarityMatrix` on disk: the ``.npz`` it is
saved as and read back from, verified, and the ``.csv`` a spreadsheet opens.

One rule decides what a sound matrix is (:func:`problem`), so that ``save`` refuses,
before writing, exactly what ``load`` would refuse: no models, labels that are not
distinct names (a NUL, which NumPy's string arrays drop from a label's end, or a label
twice), scores or similarities that are not finite (scipy cannot cluster them), an
unknown similarity, and settings that are not JSON or whose known keys have the wrong
type (``"lengths": "abc"``, ``"granularity": 3``), which every reader of the file
(report, cluster, plot) would otherwise trip on later.

Beside the ``settings`` record (a JSON object; its keys are those of earlier releases) a
``.npz`` holds the matrix's setting as objects: ``encoding``
(``EncodingSettings.to_dict()`` as JSON) and ``scoring`` (``Scoring.to_dict(matrix=False)``
as JSON), with a substitution matrix, when the scoring has one, as the float64 member
``substitution``. Files from before these members are read as they always were, and
their setting is recovered from the record (:func:`_recorded_setting`). The SHA-256 in
``digest`` covers every other member.

``.csv`` labels are written so that a spreadsheet cannot run them: a label that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (a formula, to Excel,
LibreOffice and Google Sheets) gets a leading ``'``, OWASP's rule against CSV injection.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from archalign import defaults
from archalign.similarity.measures import SIMILARITIES
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import EncodingSettings
from archalign.utils.errors import DataError, UsageError
from archalign.utils.io import arrays_digest, atomic_write_bytes

__all__ = ["MatrixFileError", "problem", "read_npz", "write_matrix", "SUFFIXES"]

SUFFIXES = (".npz", ".csv")
_MEMBERS = ("labels", "scores", "values", "similarity", "settings")
_SETTING_MEMBERS = ("encoding", "scoring", "substitution")  # optional; see the docstring
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class MatrixFileError(DataError):
    """A file that is not a (sound) archalign similarity matrix."""


def _integer(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _strings(x) -> bool:
    return isinstance(x, list) and all(isinstance(v, str) for v in x)


def _string_map(x) -> bool:
    return isinstance(x, dict) and all(isinstance(v, str) for v in x.values())


# What each key compare.similarity_matrix records must hold; n is the number of models.
_SETTINGS = {
    "granularity": ("a string", lambda x, n: isinstance(x, str)),
    "scoring": ("a string", lambda x, n: isinstance(x, str)),
    "rolled": ("true or false", lambda x, n: isinstance(x, bool)),
    "as_exported": ("true, false or null", lambda x, n: x is None or isinstance(x, bool)),
    "family": ("false or a number", lambda x, n: isinstance(x, bool) or _number(x)),
    "max_period": ("null or a whole number >= 1",
                   lambda x, n: x is None or (_integer(x) and x >= 1)),
    "gap_open": ("a finite number", lambda x, n: _number(x)),
    "gap_extend": ("a finite number", lambda x, n: _number(x)),
    "preset": ("null or a string", lambda x, n: x is None or isinstance(x, str)),
    "routes": ("an object of strings", lambda x, n: _string_map(x)),
    "versions": ("an object of strings", lambda x, n: _string_map(x)),
    "vocabulary": ("a list of strings", lambda x, n: _strings(x)),
    "lengths": ("a list of one whole number >= 0 per model",
                lambda x, n: isinstance(x, list) and len(x) == n
                and all(_integer(v) and v >= 0 for v in x)),
    "unrolled_lengths": ("a list of one whole number >= 0 per model",
                         lambda x, n: isinstance(x, list) and len(x) == n
                         and all(_integer(v) and v >= 0 for v in x)),
    "num_params": ("a list of one whole number >= 0 or null per model",
                   lambda x, n: isinstance(x, list) and len(x) == n
                   and all(v is None or (_integer(v) and v >= 0) for v in x)),
}


def problem(labels, scores, values, similarity, settings) -> str | None:
    """Why these members are not a sound matrix (one line), or None when they are."""
    n = len(labels)
    if n == 0:
        return "no models"
    if not all(isinstance(x, str) and x for x in labels):
        return "labels are not all non-empty names"
    nul = next((x for x in labels if "\0" in x), None)
    if nul is not None:
        return f"the label {nul!r} holds a NUL character"
    if len(set(labels)) != n:
        twice = sorted({x for x in labels if labels.count(x) > 1})
        return f"repeated labels: {', '.join(map(repr, twice[:5]))}"
    for name, a in (("scores", scores), ("values", values)):
        if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != (n, n):
            return f"{name} are not a float64 ({n}, {n}) array"
        if not np.isfinite(a).all():
            i, j = np.argwhere(~np.isfinite(a))[0]
            return (f"{name} hold NaN or infinite entries ({a[i, j]} for {labels[i]} x "
                    f"{labels[j]})")
    if similarity not in SIMILARITIES:
        return f"unknown similarity {similarity!r}"
    if not isinstance(settings, dict):
        return "settings are not a JSON object"
    try:
        json.dumps(settings, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"settings are not JSON ({exc})"
    for key, (wanted, ok) in _SETTINGS.items():
        if key in settings and not ok(settings[key], n):
            return f"the setting {key!r} is {_short(settings[key])}, not {wanted}"
    return None


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_npz(path: Path) -> dict:
    """The SimilarityMatrix constructor's arguments from a saved ``.npz``, verified
    (``SimilarityMatrix.load``); :class:`MatrixFileError` naming ``path`` otherwise."""
    def refuse(why: str) -> MatrixFileError:
        return MatrixFileError(f"{path}: not an archalign matrix file, or a damaged one "
                               f"({why}); write it again with `archalign matrix ... --out "
                               f"{path.name}`")

    try:
        with np.load(path, allow_pickle=False) as f:
            members = {name: f[name] for name in f.files}
    except ValueError as exc:  # numpy's "pickled data" for anything not .npy / .npz
        raise refuse("not a NumPy .npz archive" if "pickle" in str(exc) else str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - zip, zlib and header damage raise many types
        raise refuse(f"{type(exc).__name__}: {exc}") from None
    missing = [m for m in _MEMBERS if m not in members]
    if missing:
        raise refuse(f"missing {', '.join(missing)}")
    # every member but the digest itself: a file before the setting members is the five
    if "digest" in members and (str(members["digest"]) != arrays_digest(
            {m: a for m, a in members.items() if m != "digest"})):
        raise refuse("its SHA-256 does not match its contents")
    labels = members["labels"]
    if labels.dtype.kind != "U" or labels.ndim != 1:
        raise refuse("labels are not a list of names")
    try:
        settings = json.loads(str(members["settings"]))
    except ValueError:
        raise refuse("settings are not JSON") from None
    found = {"labels": [str(x) for x in labels], "scores": members["scores"],
             "values": members["values"], "similarity": str(members["similarity"]),
             "settings": settings}
    why = problem(**found)
    if why is not None:
        raise refuse(why)
    try:
        found["encoding"], found["scoring"] = _setting(members, settings)
    except DataError as exc:
        raise refuse(str(exc)) from None
    return found


def _setting(members: dict, settings: dict) -> tuple[EncodingSettings | None, Scoring | None]:
    """The encoding settings and scoring a file holds, or recovers from its record when
    it is older than the members that hold them."""
    if not set(_SETTING_MEMBERS) & set(members):
        return _recorded_setting(settings)
    encoding = scoring = None
    if "encoding" in members:
        encoding = EncodingSettings.from_dict(_json(members["encoding"], "encoding"))
    if "scoring" in members:
        d = _json(members["scoring"], "scoring")
        if "substitution" in members and isinstance(d, dict):
            d["substitution"] = members["substitution"]
        scoring = Scoring.from_dict(d)
    elif "substitution" in members:
        raise DataError("a substitution matrix without the scoring it belongs to")
    return encoding, scoring


def _json(member: np.ndarray, name: str):
    try:
        return json.loads(str(member))
    except ValueError:
        raise DataError(f"the {name} member is not JSON") from None


def _recorded_setting(s: dict) -> tuple[EncodingSettings | None, Scoring | None]:
    """The setting of a file written before ``encoding`` and ``scoring`` were stored, from
    the keys ``similarity_matrix`` recorded then; None for what they do not determine."""
    if not isinstance(s.get("granularity"), str) or "rolled" not in s:
        return None, None
    try:
        encoding = EncodingSettings(s["granularity"], s["rolled"], s.get("family") or False,
                                    s.get("max_period"), s.get("as_exported"))
    except UsageError:
        return None, None
    if not all(k in s for k in ("scoring", "gap_open", "gap_extend")):
        return encoding, None
    # Those files recorded the scoring only as its repr. Family credit was then always
    # added to match / mismatch at the defaults; a flat scoring was the defaults' or the
    # paper's (a custom one from --match / --mismatch stays unknown). A candidate is
    # taken when its repr is the one recorded.
    gaps = {"gap_open": s["gap_open"], "gap_extend": s["gap_extend"]}
    try:
        base = Scoring(match=defaults.MATCH, mismatch=defaults.MISMATCH, **gaps)
        paper = Scoring(match=Scoring.paper().match, mismatch=Scoring.paper().mismatch, **gaps)
    except UsageError:  # gaps no scoring takes: the similarity stands, the setting is unknown
        return encoding, None
    if encoding.family:
        return encoding, base
    return encoding, next((x for x in (base, paper) if repr(x) == s["scoring"]), None)


def write_matrix(sm, path) -> Path:
    """Write ``sm`` to ``path`` (``.npz``: everything; ``.csv``: the similarity)
    atomically, after checking it is what :func:`read_npz` would accept."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in SUFFIXES:
        what = "is a folder" if path.is_dir() else (
            f"unknown file type {path.suffix!r}" if path.suffix else "no file type")
        raise UsageError(f"{path}: {what}; name a file ending in .npz (everything, "
                         f"reloadable) or .csv (the similarity, for spreadsheets)")
    why = problem(sm.labels, sm.scores, sm.values, sm.similarity, sm.settings)
    if why is not None:
        raise UsageError(f"{path}: not written: {why} (load() would refuse the file)")
    if suffix == ".npz":
        members = {"labels": np.array(sm.labels), "scores": sm.scores,
                   "values": sm.values, "similarity": np.array(sm.similarity),
                   "settings": np.array(json.dumps(sm.settings, sort_keys=True))}
        if sm.encoding is not None:
            members["encoding"] = np.array(json.dumps(sm.encoding.to_dict(), sort_keys=True))
        if sm.scoring is not None:
            members["scoring"] = np.array(json.dumps(sm.scoring.to_dict(matrix=False),
                                                     sort_keys=True))
            if sm.scoring.substitution is not None:  # binary, compressed: V x V can be big
                members["substitution"] = sm.scoring.substitution
        buf = io.BytesIO()
        np.savez_compressed(buf, **members, digest=np.array(arrays_digest(members)))
        atomic_write_bytes(path, buf.getvalue())
    else:
        text = io.StringIO()
        writer = csv.writer(text)
        labels = [_cell(x) for x in sm.labels]
        writer.writerow([""] + labels)
        for label, row in zip(labels, sm.values):
            writer.writerow([label] + [f"{v:.6g}" for v in row])
        atomic_write_bytes(path, text.getvalue().encode())
    return path


def _cell(label: str) -> str:
    # OWASP's CSV-injection rule: a leading ' makes a spreadsheet read the cell as text
    return "'" + label if label.startswith(_FORMULA_START) else label
