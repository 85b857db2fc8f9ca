"""Similarity matrices between architectures, and what users do with them.

``SimilarityMatrix`` holds labels, raw global alignment scores and a similarity
derived from them, and hands scipy-native objects onward (condensed distances,
linkage matrices, 1-based cluster ids). It reads like an array and like a labelled
table: ``np.asarray(sm)`` and ``sm.values`` are the similarity, ``sm[a, b]`` one entry
(labels or integer positions), ``sm.loc["resnet18"]`` a row by label
(:mod:`archalign.similarity.labelled`).

Its keywords are scipy's and scikit-learn's: ``method=`` the linkage, ``n_clusters``,
``strategy=`` a shortlist's choice; ``n=`` and a shortlist's ``method="medoids"``, the
names before issue 28, still work for one release, with a FutureWarning.

The similarities themselves (``"normalized"``, ``"correlation"``) are defined in
:mod:`archalign.similarity.measures`; the files a matrix is saved as, and what reading
one back checks, in :mod:`archalign.similarity.matrix_file`.

Beside the similarity a matrix records each model's depth (layer calls in its trace,
``unrolled_lengths``) and parameter count (``num_params``). Rolled similarity, the
default, collapses repeated blocks and so ignores depth by design: resnet18 and resnet34
score 1.0. Those two records say what such a 1.0 hides
(:meth:`SimilarityMatrix.hidden_change`) and decide ties
(:mod:`archalign.similarity.ties`), so that no answer depends on the order the models were given in.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archalign.utils.deprecation import renamed_keywords
from archalign.similarity import labelled, plotting, report
from archalign.similarity.matrix_file import MatrixFileError, read_npz, write_matrix
from archalign.similarity.measures import (SIMILARITIES, adjusted_rand_index, all_gap_score,
                                          correlation_similarity, normalized_similarity)
from archalign.similarity.ties import SAME, change_note, tie_order
from archalign.similarity.tree import check_linkage
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import EncodingSettings
from archalign.utils.errors import MissingExtraError, UnknownNameError, UsageError

__all__ = ["SimilarityMatrix", "MatrixFileError"]

# Settings that hold one entry per label, in label order.
_PER_MODEL = ("lengths", "unrolled_lengths", "num_params")


@dataclass
class SimilarityMatrix:
    """Labels, raw alignment scores and the similarity derived from them.

    Attributes
    ----------
    labels : list of str
    scores : (n, n) float64, raw global alignment scores
    values : (n, n) float64, the similarity (see the module docstring); also
        ``np.asarray(sm)``, and ``sm[a, b]`` / ``sm.loc[a, b]`` one entry
    similarity : "normalized" or "correlation"
        The name of the measure ``values`` holds, kept a string as earlier releases
        wrote it (files, reports and shortlists record it); the matrix is ``values``.
    settings : dict, what produced the matrix (granularity, scoring, versions, ...);
        ``unrolled_lengths`` and ``num_params`` hold one entry per label (see the
        properties of those names)
    encoding : EncodingSettings or None
        How the models became token ids (None: not recorded, e.g. a matrix built by
        hand or a file whose settings lack it).
    scoring : Scoring or None
        The scoring of the setting (with ``encoding.family`` on, the flat scores the
        family credit was added to). ``similarity_matrix(models, settings=sm.encoding,
        scoring=sm.scoring)`` makes the matrix again.
    """

    labels: list
    scores: np.ndarray
    values: np.ndarray
    similarity: str = "normalized"
    settings: dict | None = None
    encoding: EncodingSettings | None = None
    scoring: Scoring | None = None

    def __post_init__(self):
        self.labels = [str(x) for x in self.labels]
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.values = np.asarray(self.values, dtype=np.float64)
        n = len(self.labels)
        if self.scores.shape != (n, n) or self.values.shape != (n, n):
            raise UsageError(f"SimilarityMatrix: {n} labels need (n, n) scores and values, "
                             f"got {self.scores.shape} and {self.values.shape}")
        if len(set(self.labels)) != n:
            dup = sorted({x for x in self.labels if self.labels.count(x) > 1})
            raise UsageError(f"SimilarityMatrix: labels must be unique; repeated: {dup}")
        if self.similarity not in SIMILARITIES:
            raise UsageError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        self.settings = dict(self.settings or {})
        for name, kind in (("encoding", EncodingSettings), ("scoring", Scoring)):
            if not isinstance(getattr(self, name), (kind, type(None))):
                raise UsageError(f"SimilarityMatrix: {name} must be an archalign."
                                 f"{kind.__name__} or None, got {type(getattr(self, name)).__name__}")

    @classmethod
    def from_scores(cls, labels, scores, similarity="normalized", *, lengths=None,
                    scoring=None, settings=None, encoding=None) -> SimilarityMatrix:
        """Build from raw scores. "normalized" needs sequence ``lengths`` and the
        ``scoring`` (for its gap scores); the diagonal of ``scores`` gives S(a, a).
        ``scoring`` and ``encoding`` are kept as the matrix's."""
        scores = np.asarray(scores, dtype=np.float64)
        if scoring is not None:
            scoring.for_similarity()
        if similarity == "normalized":
            if lengths is None or scoring is None:
                raise UsageError("similarity='normalized' needs lengths= and scoring=")
            gaps = all_gap_score(lengths, scoring.gap_open, scoring.gap_extend)
            self_scores = np.diag(scores)
            values = normalized_similarity(scores, self_scores, self_scores, gaps, gaps)
            # asymmetric substitution matrices: average the two directions
            values = (values + values.T) / 2
            np.fill_diagonal(values, 1.0)
        elif similarity == "correlation":
            values = correlation_similarity(scores)
        else:
            raise UsageError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        return cls(list(labels), scores, values, similarity, settings, encoding, scoring)

    # -- views -------------------------------------------------------------
    def __len__(self):
        return len(self.labels)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(sm)``: the similarity, ``sm.values``."""
        return np.array(self.values, dtype=dtype, copy=copy)

    __getitem__ = labelled.entry  # sm[a, b], by labels or integer positions
    __iter__ = None  # sm[0] is no row: iterate over sm.labels or np.asarray(sm)

    def __contains__(self, label) -> bool:
        return label in self.labels

    @property
    def loc(self) -> labelled.LabelIndexer:
        """Lookup by label, pandas-style without pandas: ``sm.loc[a, b]`` a float,
        ``sm.loc[a]`` the row of ``a`` as a dict {label: similarity}, ``sm.loc[a, [b,
        c]]`` a dict, ``sm.loc[[a, b], [c, d]]`` an array."""
        return labelled.LabelIndexer(self)

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
            raise MissingExtraError("to_pandas() needs pandas: pip install pandas") from None
        data = {"values": self.values, "scores": self.scores, "distance": self.distance}[what]
        return pd.DataFrame(data, index=self.labels, columns=self.labels)

    def index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            import difflib

            close = difflib.get_close_matches(label, self.labels, n=5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise UnknownNameError(f"{label!r} is not in this matrix{hint}") from None

    def _per_model(self, key: str) -> list:
        # Matrices saved before a record existed (or built in memory out of step with
        # their labels; files are checked on load) read as "unknown" rather than
        # failing: the similarity still stands.
        entries = self.settings.get(key)
        if not isinstance(entries, list) or len(entries) != len(self):
            return [None] * len(self)
        return [int(x) if isinstance(x, numbers.Integral) and not isinstance(x, bool)
                else None for x in entries]

    @property
    def unrolled_lengths(self) -> list:
        """Each model's depth: the layer calls in its trace, before rolling (None where
        unknown, e.g. in a matrix saved before depths were recorded)."""
        return self._per_model("unrolled_lengths")

    @property
    def num_params(self) -> list:
        """Each model's parameter count (None where unknown: a route that cannot count
        them, or a matrix saved before counts were recorded)."""
        return self._per_model("num_params")

    def nearest(self, label: str, k: int = 5) -> list[tuple[str, float]]:
        """The k most similar other models, most similar first.

        Ties are broken by ``archalign.similarity.ties.TIE_RULE``: among equal similarities the model closest
        to ``label`` in depth comes first, then the one closest in parameter count, then
        by label; so the answer does not depend on the matrix's order.
        """
        i = self.index(label)
        depths, params = self.unrolled_lengths, self.num_params
        others = [j for j in range(len(self)) if j != i]
        order = tie_order(others, -self.values[i, others], self.labels, depths, params,
                          depths[i], params[i])
        return [(self.labels[j], float(self.values[i, j])) for j in order[:k]]

    def hidden_change(self, a: str, b: str) -> str | None:
        """What a similarity of 1.0 between ``a`` and ``b`` does not show.

        Returns
        -------
        str or None
            ``"depth 68 → 130 layers"``, ``"parameters 11.7M → 21.8M"`` or both, joined
            by ", ", when the similarity is 1 (to 1e-9) and the models' depths or
            parameter counts differ; None otherwise, or when they are unknown.
        """
        i, j = self.index(a), self.index(b)
        if i == j or self.values[i, j] < SAME:
            return None
        depths, params = self.unrolled_lengths, self.num_params
        return change_note(depths[i], depths[j], params[i], params[j])

    def hidden_mask(self) -> np.ndarray:
        """(n, n) bool: True where :meth:`hidden_change` says something."""
        differ = np.zeros((len(self), len(self)), dtype=bool)
        for record in (self.unrolled_lengths, self.num_params):
            v = np.array([np.nan if x is None else x for x in record], dtype=np.float64)
            known = ~np.isnan(v)
            differ |= (v[:, None] != v[None, :]) & known[:, None] & known[None, :]
        return differ & (self.values >= SAME)

    def hidden_changes(self) -> list[tuple[str, str, str]]:
        """Every pair at similarity 1 that differs in depth or parameter count, as
        ``(smaller, larger, note)`` with the note of :meth:`hidden_change`.

        Each pair is written smaller model first (fewer layer calls, then fewer
        parameters, then label), and pairs come in that order, so the list does not
        depend on the matrix's order.
        """
        depths, params, mask = self.unrolled_lengths, self.num_params, self.hidden_mask()

        def size(i):
            return (depths[i] is None, depths[i] or 0, params[i] is None, params[i] or 0,
                    self.labels[i])

        idx = np.array(sorted(range(len(self)), key=size), dtype=np.int64)
        pairs = np.argwhere(np.triu(mask[np.ix_(idx, idx)], 1))
        return [(self.labels[i], self.labels[j],
                 change_note(depths[i], depths[j], params[i], params[j]))
                for i, j in idx[pairs].tolist()]

    def submatrix(self, labels) -> SimilarityMatrix:
        """The matrix restricted to ``labels`` (in that order), with its per-model
        settings (lengths, depths, parameter counts) restricted alike.

        A correlation similarity is kept as computed on the full panel.
        """
        idx = [self.index(x) for x in labels]
        settings = dict(self.settings)
        for key in _PER_MODEL:
            entries = settings.get(key)
            if isinstance(entries, list) and len(entries) == len(self):
                settings[key] = [entries[i] for i in idx]
        return SimilarityMatrix([self.labels[i] for i in idx], self.scores[np.ix_(idx, idx)],
                                self.values[np.ix_(idx, idx)], self.similarity, settings,
                                self.encoding, self.scoring)

    # -- clustering ----------------------------------------------------------
    def linkage(self, method: str = "average", optimal_ordering: bool = True) -> np.ndarray:
        """scipy linkage matrix Z of the distance; average linkage (UPGMA) by default,
        since alignment distances are not Euclidean (no ward/centroid/median)."""
        from scipy.cluster.hierarchy import linkage

        check_linkage(method)
        if len(self) < 2:
            raise UsageError("clustering needs at least two models")
        if not np.isfinite(self.values).all():
            i, j = np.argwhere(~np.isfinite(self.values))[0]
            raise UsageError(f"the similarity of {self.labels[i]} and {self.labels[j]} is "
                             f"{self.values[i, j]}: a matrix with NaN or infinite "
                             f"similarities cannot be clustered; compute it again "
                             f"(archalign.similarity_matrix / archalign matrix)")
        return linkage(self.to_condensed(), method=method, optimal_ordering=optimal_ordering)

    @renamed_keywords(n="n_clusters")
    def clusters(self, n_clusters: int | None = None, threshold: float | None = None,
                 method: str = "average") -> np.ndarray:
        """1-based cluster ids (scipy's fcluster), cut into ``n_clusters`` clusters or at
        a distance ``threshold``; exactly one of the two. ``method``: the linkage."""
        from scipy.cluster.hierarchy import fcluster

        if (n_clusters is None) == (threshold is None):
            raise UsageError("give exactly one of n_clusters= (number of clusters) or "
                             "threshold= (distance at which to cut the dendrogram)")
        Z = self.linkage(method)
        if n_clusters is not None:
            if not 1 <= n_clusters <= len(self):
                raise UsageError(f"n_clusters must be between 1 and {len(self)}, got "
                                 f"{n_clusters}")
            return fcluster(Z, n_clusters, criterion="maxclust")
        return fcluster(Z, threshold, criterion="distance")

    def groups(self, cluster_ids) -> dict[int, list[str]]:
        """{cluster id: [labels]} for ids from :meth:`clusters`."""
        out: dict[int, list[str]] = {}
        for label, c in zip(self.labels, cluster_ids):
            out.setdefault(int(c), []).append(label)
        return out

    @renamed_keywords(n="n_clusters")
    def agreement(self, grouping, n_clusters: int | None = None,
                  method: str = "average") -> dict:
        """How well the clustering matches a known grouping (e.g. family prefixes).

        ``grouping``: one group label per model, or a function label -> group.
        Returns the adjusted Rand index of the clusters cut at the grouping's
        number of groups (or ``n_clusters``), and the cophenetic correlation of the
        linkage (``method``; how faithfully the dendrogram keeps the distances).
        """
        from scipy.cluster.hierarchy import cophenet

        groups = [grouping(x) for x in self.labels] if callable(grouping) else list(grouping)
        if len(groups) != len(self):
            raise UsageError(f"grouping has {len(groups)} entries for {len(self)} models")
        n_clusters = n_clusters or len(set(groups))
        Z = self.linkage(method)
        coph, _ = cophenet(Z, self.to_condensed())
        ids = self.clusters(n_clusters=n_clusters, method=method)
        return {"adjusted_rand_index": adjusted_rand_index(groups, ids),
                "cophenetic_correlation": float(coph), "n_clusters": n_clusters}

    def shortlist(self, k: int, strategy: str = "medoids", must_include=(), exclude=(),
                  method: str = "average"):
        """k diverse models: ``strategy`` "medoids" (one per cluster of the dendrogram
        cut into k, linkage ``method``) or "farthest" (greedy farthest points). See
        archalign.similarity.shortlist; ``method="farthest"``, the strategy's name before
        issue 28, still works for one release, with a FutureWarning."""
        from archalign.similarity.shortlist import resolve_strategy, shortlist_from_matrix

        strategy, method = resolve_strategy(strategy, method)
        return shortlist_from_matrix(self, k, strategy, must_include=must_include,
                                     exclude=exclude, method=method)

    # -- plots: the functions themselves, so that help() lists every option ----
    plot_dendrogram = plotting.dendrogram
    plot_heatmap = plotting.heatmap
    to_html = report.write_report

    # -- files ---------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``.npz`` (everything) or ``.csv`` (the similarity, for spreadsheets;
        a label a spreadsheet would run as a formula gets a leading ``'``), atomically
        (temp file + rename). A matrix :meth:`load` would refuse (no models, a NUL in a
        label, NaN or infinite values, settings of the wrong type) is refused with a
        ValueError before anything is written; see
        :mod:`archalign.similarity.matrix_file`."""
        return write_matrix(self, path)

    @classmethod
    def load(cls, path) -> SimilarityMatrix:
        """Read a matrix written by :meth:`save` as ``.npz`` (no pickle involved),
        verified: every member present with its type and shape, the SHA-256 that
        :meth:`save` stores matching (files from before the digest have their zip CRCs
        and the schema checked), every score and similarity finite, the settings of the
        right types, ``encoding`` and ``scoring`` as :meth:`save` stored them (a file from
        before they were stored: recovered from its settings where those determine
        them, else None). A file that fails raises :class:`MatrixFileError`, one line
        naming it."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file (write one with "
                                    f"`archalign matrix ... --out {path.name}`)")
        if path.suffix.lower() != ".npz":
            raise UsageError(f"{path}: load() reads the .npz files save() writes; a .csv "
                             f"holds only the similarity, read it with pandas")
        return cls(**read_npz(path))
