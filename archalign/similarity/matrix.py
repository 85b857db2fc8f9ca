"""Similarity matrices between architectures, and what users do with them.

``SimilarityMatrix`` holds labels, raw global alignment scores and a similarity
derived from them, and hands scipy-native objects onward (condensed distances,
linkage matrices, 1-based cluster ids).

The similarities themselves (``"normalized"``, ``"correlation"``) are defined in
:mod:`archalign.similarity.measures`.

Beside the similarity a matrix records each model's depth (layer calls in its trace,
``unrolled_lengths``) and parameter count (``num_params``). Rolled similarity, the
default, collapses repeated blocks and so ignores depth by design: resnet18 and resnet34
score 1.0. Those two records say what such a 1.0 hides (:meth:`SimilarityMatrix.hidden_change`)
and decide ties (:data:`TIE_RULE`, :func:`tie_order`), so that no answer depends on the
order the models were given in.
"""
from __future__ import annotations

import csv
import io
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archalign._io import arrays_digest, atomic_write_bytes
from archalign.similarity.measures import (SIMILARITIES, adjusted_rand_index, all_gap_score,
                                          correlation_similarity, normalized_similarity)

__all__ = ["SimilarityMatrix", "MatrixFileError", "TIE_RULE", "tie_order"]

TIE_RULE = ("equal similarities (to 1e-9) are ordered by the closest depth (|difference "
            "in layer calls|), then the closest parameter count (|log ratio|), then the "
            "label; never by the order of the matrix")
# Values that agree to this many decimals are tied: float noise (summation order, a
# correlation's means) must not decide.
_TIE_DECIMALS = 9
# A similarity at least this high reads as 1.00 and says "same design".
_SAME = 1 - 1e-9
# Settings that hold one entry per label, in label order.
_PER_MODEL = ("lengths", "unrolled_lengths", "num_params")


def tie_order(candidates, keys, labels, depths=(), params=(), depth_ref=None,
              params_ref=None) -> list:
    """``candidates`` sorted by ``keys`` (ascending), ties broken by :data:`TIE_RULE`.

    Parameters
    ----------
    candidates : sequence of int
        Indices into ``labels``, ``depths`` and ``params``.
    keys : sequence of float
        One per candidate, smaller first; keys equal to 1e-9 are tied.
    labels : list of str
        The last word on a tie, so the result is independent of the order of
        ``candidates``.
    depths, params : sequences of int or None, optional
        Per index: layer calls and parameter count; None where unknown.
    depth_ref, params_ref : float, optional
        What "closest" is measured from (the query model, a cluster's median). None:
        that criterion does not decide.

    Returns
    -------
    list of int
        The candidates, first to last. Unknown depths and parameter counts come after
        known ones among tied candidates.
    """
    def closeness(i):
        depth = (abs(depths[i] - depth_ref) if depth_ref is not None
                 and depths[i] is not None else math.inf)
        size = (abs(math.log(max(params[i], 1)) - math.log(max(params_ref, 1)))
                if params_ref is not None and params[i] is not None else math.inf)
        return depth, size

    ranked = sorted(zip((round(float(k), _TIE_DECIMALS) for k in keys), candidates),
                    key=lambda kc: (kc[0], *closeness(kc[1]), labels[kc[1]]))
    return [int(i) for _, i in ranked]


def format_counts(a: int, b: int) -> tuple[str, str]:
    """Two parameter counts as short numbers (``11.7M``), with as many significant
    digits (three at least) as it takes to tell them apart."""
    for digits in range(3, max(len(str(a)), len(str(b)), 3) + 1):
        pair = _short_count(a, digits), _short_count(b, digits)
        if pair[0] != pair[1] or digits >= max(len(str(a)), len(str(b))):
            return pair
    raise AssertionError("unreachable: the loop always returns")


def _short_count(n: int, digits: int) -> str:
    # Half up in integers, as report.js rounds, so that the page and Python agree.
    unit = 10 ** max(len(str(n)) - digits, 0)
    r = (n + unit // 2) // unit * unit
    for power, suffix in ((12, "T"), (9, "B"), (6, "M"), (3, "K")):
        if r >= 10 ** power:
            return f"{r / 10 ** power:.{digits}g}{suffix}"
    return str(r)


def _change_note(depth_a, depth_b, params_a, params_b) -> str | None:
    """"depth 68 → 130 layers, parameters 11.7M → 21.8M", the parts that are known and
    differ, or None."""
    parts = []
    if depth_a is not None and depth_b is not None and depth_a != depth_b:
        parts.append(f"depth {depth_a} → {depth_b} layers")
    if params_a is not None and params_b is not None and params_a != params_b:
        parts.append("parameters {} → {}".format(*format_counts(params_a, params_b)))
    return ", ".join(parts) or None


class MatrixFileError(ValueError):
    """A file that is not a (sound) archalign similarity matrix."""


_MEMBERS = ("labels", "scores", "values", "similarity", "settings")


def _read_npz(path: Path) -> dict:
    """The constructor's arguments from a saved ``.npz``, checked (see ``load``)."""
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
    if "digest" in members and str(members["digest"]) != arrays_digest({m: members[m] for m in _MEMBERS}):
        raise refuse("its SHA-256 does not match its contents")
    labels, scores, values = members["labels"], members["scores"], members["values"]
    n = labels.shape[0] if labels.ndim == 1 else -1
    if labels.dtype.kind != "U" or n < 0:
        raise refuse("labels are not a list of names")
    for name, a in (("scores", scores), ("values", values)):
        if a.dtype != np.float64 or a.shape != (n, n):
            raise refuse(f"{name} are not a float64 ({n}, {n}) array")
    try:
        settings = json.loads(str(members["settings"]))
    except ValueError:
        raise refuse("settings are not JSON") from None
    if not isinstance(settings, dict):
        raise refuse("settings are not a JSON object")
    if str(members["similarity"]) not in SIMILARITIES or len(set(labels)) != n:
        raise refuse("unknown similarity or repeated labels")
    return {"labels": [str(x) for x in labels], "scores": scores, "values": values,
            "similarity": str(members["similarity"]), "settings": settings}


@dataclass
class SimilarityMatrix:
    """Labels, raw alignment scores and the similarity derived from them.

    Attributes
    ----------
    labels : list of str
    scores : (n, n) float64, raw global alignment scores
    values : (n, n) float64, the similarity (see the module docstring)
    similarity : "normalized" or "correlation"
    settings : dict, what produced the matrix (granularity, scoring, versions, ...)
    """

    labels: list
    scores: np.ndarray
    values: np.ndarray
    similarity: str = "normalized"
    settings: dict | None = None

    def __post_init__(self):
        self.labels = [str(x) for x in self.labels]
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.values = np.asarray(self.values, dtype=np.float64)
        n = len(self.labels)
        if self.scores.shape != (n, n) or self.values.shape != (n, n):
            raise ValueError(f"SimilarityMatrix: {n} labels need (n, n) scores and values, "
                             f"got {self.scores.shape} and {self.values.shape}")
        if len(set(self.labels)) != n:
            dup = sorted({x for x in self.labels if self.labels.count(x) > 1})
            raise ValueError(f"SimilarityMatrix: labels must be unique; repeated: {dup}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        self.settings = dict(self.settings or {})

    @classmethod
    def from_scores(cls, labels, scores, similarity="normalized", *, lengths=None,
                    scoring=None, settings=None) -> "SimilarityMatrix":
        """Build from raw scores. "normalized" needs sequence ``lengths`` and the
        ``scoring`` (for its gap scores); the diagonal of ``scores`` gives S(a, a)."""
        scores = np.asarray(scores, dtype=np.float64)
        if similarity == "normalized":
            if lengths is None or scoring is None:
                raise ValueError("similarity='normalized' needs lengths= and scoring=")
            gaps = all_gap_score(lengths, scoring.gap_open, scoring.gap_extend)
            self_scores = np.diag(scores)
            values = normalized_similarity(scores, self_scores, self_scores, gaps, gaps)
            # asymmetric substitution matrices: average the two directions
            values = (values + values.T) / 2
            np.fill_diagonal(values, 1.0)
        elif similarity == "correlation":
            values = correlation_similarity(scores)
        else:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        return cls(list(labels), scores, values, similarity, settings)

    # -- views -------------------------------------------------------------
    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return (f"SimilarityMatrix({len(self)} models, similarity={self.similarity!r}, "
                f"granularity={self.settings.get('granularity')!r})")

    @property
    def distance(self) -> np.ndarray:
        """1 - similarity, symmetric with a zero diagonal."""
        d = 1.0 - (self.values + self.values.T) / 2
        np.fill_diagonal(d, 0.0)
        return np.maximum(d, 0.0)

    def to_condensed(self) -> np.ndarray:
        """scipy's condensed distance vector (input of scipy.cluster.hierarchy.linkage)."""
        from scipy.spatial.distance import squareform

        return squareform(self.distance, checks=False)

    def to_pandas(self, what: str = "values"):
        """The similarity (or ``what="scores"`` / ``"distance"``) as a labelled DataFrame."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is optional
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        data = {"values": self.values, "scores": self.scores, "distance": self.distance}[what]
        return pd.DataFrame(data, index=self.labels, columns=self.labels)

    def index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            import difflib

            close = difflib.get_close_matches(label, self.labels, n=5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise KeyError(f"{label!r} is not in this matrix{hint}") from None

    def nearest(self, label: str, k: int = 5) -> list[tuple[str, float]]:
        """The k most similar other models, most similar first."""
        i = self.index(label)
        order = [j for j in np.argsort(-self.values[i], kind="stable") if j != i]
        return [(self.labels[j], float(self.values[i, j])) for j in order[:k]]

    def submatrix(self, labels) -> "SimilarityMatrix":
        """The matrix restricted to ``labels`` (in that order).

        A correlation similarity is kept as computed on the full panel.
        """
        idx = [self.index(x) for x in labels]
        return SimilarityMatrix([self.labels[i] for i in idx], self.scores[np.ix_(idx, idx)],
                                self.values[np.ix_(idx, idx)], self.similarity,
                                self.settings)

    # -- clustering ----------------------------------------------------------
    def linkage(self, method: str = "average", optimal_ordering: bool = True) -> np.ndarray:
        """scipy linkage matrix Z of the distance; average linkage (UPGMA) by default,
        since alignment distances are not Euclidean (no ward/centroid/median)."""
        from scipy.cluster.hierarchy import linkage

        if method in ("ward", "centroid", "median"):
            raise ValueError(f"method={method!r} assumes Euclidean distances; use "
                             f"'average' (default), 'complete', 'single' or 'weighted'")
        if len(self) < 2:
            raise ValueError("clustering needs at least two models")
        return linkage(self.to_condensed(), method=method, optimal_ordering=optimal_ordering)

    def clusters(self, n: int | None = None, threshold: float | None = None,
                 method: str = "average") -> np.ndarray:
        """1-based cluster ids (scipy's fcluster), cut into ``n`` clusters or at a
        distance ``threshold``; exactly one of the two."""
        from scipy.cluster.hierarchy import fcluster

        if (n is None) == (threshold is None):
            raise ValueError("give exactly one of n= (number of clusters) or threshold= "
                             "(distance at which to cut the dendrogram)")
        Z = self.linkage(method)
        if n is not None:
            if not 1 <= n <= len(self):
                raise ValueError(f"n must be between 1 and {len(self)}, got {n}")
            return fcluster(Z, n, criterion="maxclust")
        return fcluster(Z, threshold, criterion="distance")

    def groups(self, cluster_ids) -> dict[int, list[str]]:
        """{cluster id: [labels]} for ids from :meth:`clusters`."""
        out: dict[int, list[str]] = {}
        for label, c in zip(self.labels, cluster_ids):
            out.setdefault(int(c), []).append(label)
        return out

    def agreement(self, grouping, n: int | None = None, method: str = "average") -> dict:
        """How well the clustering matches a known grouping (e.g. family prefixes).

        ``grouping``: one group label per model, or a function label -> group.
        Returns the adjusted Rand index of the clusters cut at the grouping's
        number of groups (or ``n``), and the cophenetic correlation of the
        linkage (how faithfully the dendrogram keeps the distances).
        """
        from scipy.cluster.hierarchy import cophenet

        groups = [grouping(x) for x in self.labels] if callable(grouping) else list(grouping)
        if len(groups) != len(self):
            raise ValueError(f"grouping has {len(groups)} entries for {len(self)} models")
        n = n or len(set(groups))
        Z = self.linkage(method)
        coph, _ = cophenet(Z, self.to_condensed())
        return {"adjusted_rand_index": adjusted_rand_index(groups, self.clusters(n=n, method=method)),
                "cophenetic_correlation": float(coph), "n_clusters": n}

    def shortlist(self, k: int, method: str = "medoids", must_include=(), exclude=()):
        """k diverse models: cluster medoids or greedy farthest points. See archalign.similarity.shortlist."""
        from archalign.similarity.shortlist import shortlist_from_matrix

        return shortlist_from_matrix(self, k, method=method, must_include=must_include,
                                     exclude=exclude)

    # -- plots ---------------------------------------------------------------
    def plot_dendrogram(self, **kwargs):
        """Dendrogram figure; see archalign.similarity.plotting.dendrogram."""
        from archalign.similarity.plotting import dendrogram

        return dendrogram(self, **kwargs)

    def plot_heatmap(self, **kwargs):
        """Clustered heatmap figure; see archalign.similarity.plotting.heatmap."""
        from archalign.similarity.plotting import heatmap

        return heatmap(self, **kwargs)

    def to_html(self, path, **kwargs) -> Path:
        """Interactive offline report (heatmap, dendrogram, search, alignments); see
        archalign.similarity.report.write_report."""
        from archalign.similarity.report import write_report

        return write_report(self, path, **kwargs)

    # -- files ---------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``.npz`` (everything) or ``.csv`` (the similarity, for spreadsheets),
        atomically (temp file + rename)."""
        path = Path(path)
        if path.suffix == ".npz":
            members = {"labels": np.array(self.labels), "scores": self.scores,
                       "values": self.values, "similarity": np.array(self.similarity),
                       "settings": np.array(json.dumps(self.settings, sort_keys=True))}
            buf = io.BytesIO()
            np.savez_compressed(buf, **members, digest=np.array(arrays_digest({m: members[m] for m in _MEMBERS})))
            atomic_write_bytes(path, buf.getvalue())
        elif path.suffix == ".csv":
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow([""] + self.labels)
            for label, row in zip(self.labels, self.values):
                writer.writerow([label] + [f"{v:.6g}" for v in row])
            atomic_write_bytes(path, text.getvalue().encode())
        else:
            raise ValueError(f"unknown file type {path.suffix!r}: use .npz or .csv")
        return path

    @classmethod
    def load(cls, path) -> "SimilarityMatrix":
        """Read a matrix written by :meth:`save` as ``.npz`` (no pickle involved),
        verified: every member present with its type and shape, and the SHA-256 that
        :meth:`save` stores matching (files from before the digest have their zip CRCs
        and the schema checked). A file that fails raises :class:`MatrixFileError`."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (write one with "
                                    f"`archalign matrix ... --out {path.name}`)")
        if path.suffix != ".npz":
            raise ValueError(f"{path}: load() reads the .npz files save() writes; a .csv "
                             f"holds only the similarity, read it with pandas")
        return cls(**_read_npz(path))
