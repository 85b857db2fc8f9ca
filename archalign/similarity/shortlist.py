"""Pick a few diverse architectures: one per cluster, or greedy farthest points.

Two ways in:

- ``SimilarityMatrix.shortlist(k, strategy="medoids" | "farthest")`` when the full
  n x n matrix exists. "medoids" cuts the dendrogram (average linkage, or the
  ``method=`` given, as everywhere in archalign) into k clusters and takes each
  cluster's medoid (the member with the smallest total distance to its
  cluster-mates); "farthest" is greedy farthest-point selection (Gonzalez), starting
  from the medoid of the whole panel.
- :func:`shortlist` for zoo-sized inputs: farthest-point selection that never
  builds the n x n matrix. Each step aligns the newest pick against all n
  sequences (the rectangular ``pairwise``), so k picks cost n x k alignments.
  Without ``must_include`` it starts from the first model given.

Both honour ``must_include`` (always selected, and in "medoids" they stand for
their cluster) and ``exclude`` (never selected). The result is a
:class:`Shortlist`, written as ``shortlist.json`` for the ``neurn`` study.

Ties never go by the order the models were given in. Rolled similarity makes them
common (resnet18 = resnet34 = 1.0), so a medoid tie goes to the member closest to its
cluster's median depth, then median parameter count, then by label; a farthest-point
tie goes by label (:func:`archalign.similarity.ties.tie_order`).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archalign import defaults
from archalign.utils.deprecation import renamed_keywords
from archalign.similarity.ties import tie_order
from archalign.similarity.tree import check_linkage
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import EncodingSettings
from archalign.utils.errors import DataError, UsageError

__all__ = ["Shortlist", "shortlist", "shortlist_from_matrix", "resolve_strategy", "STRATEGIES"]

STRATEGIES = ("medoids", "farthest")
METHODS = STRATEGIES  # the name of earlier releases, when the choice was method=


@dataclass
class Shortlist:
    """Selected model names, in selection order, with why each was chosen.

    ``strategy`` is how they were picked, "medoids" or "farthest" (``method``, its
    name before issue 28, still reads it, with a FutureWarning). ``details[i]``
    describes ``names[i]``: for medoids its cluster's size and members, for farthest
    points the distance to the closest earlier pick.
    ``encoding`` and ``scoring`` are the setting the distances came from (None where
    unknown: a matrix that does not hold it, a file from before they were written);
    the file keeps them as ``EncodingSettings.to_dict()`` and ``Scoring.to_dict()`` (a
    substitution matrix, which only a scoring given by hand has, written out in full).
    """

    names: list
    strategy: str
    details: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    encoding: EncodingSettings | None = None
    scoring: Scoring | None = None

    def save(self, path) -> Path:
        """Write JSON atomically (the file ``neurn run SHORTLIST.json`` reads)."""
        from archalign.utils.io import atomic_write_bytes

        path = Path(path)
        data = {"names": self.names, "strategy": self.strategy, "details": self.details,
                "settings": self.settings,
                "encoding": None if self.encoding is None else self.encoding.to_dict(),
                "scoring": None if self.scoring is None else self.scoring.to_dict()}
        atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
        return path

    @classmethod
    def load(cls, path) -> Shortlist:
        """Read a file :meth:`save` wrote, schema-checked (``names`` a non-empty list of
        model names, ...). Shortlists are meant to be edited by hand, so no digest. A file
        from before issue 28 names the strategy ``"method"``; it loads as it always did."""
        path = Path(path)

        def refuse(why: str) -> ValueError:
            return DataError(f"{path} is not a shortlist file written by archalign ({why}); "
                              f"make one with `archalign shortlist MODELS... -k K --out "
                              f"{path.name}`")

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such shortlist (make one with "
                                    f"`archalign shortlist MODELS... -k K --out {path.name}`)"
                                    ) from None
        except ValueError as exc:  # not JSON, not UTF-8
            raise refuse(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict):
            raise refuse("not a JSON object")
        names = data.get("names")
        if (not isinstance(names, list) or not names
                or not all(isinstance(x, str) and x for x in names)):
            raise refuse(f"'names' must be a non-empty list of model names, got {names!r:.60}")
        if "strategy" not in data and "method" in data:
            data["strategy"] = data["method"]
        checks = (("strategy", str, None), ("details", list, []), ("settings", dict, {}))
        values = {}
        for key, kind, default in checks:
            value = data.get(key, default)
            if not isinstance(value, kind):
                raise refuse(f"{key!r} must be a {kind.__name__}, got {value!r:.60}")
            values[key] = value
        for key, kind in (("encoding", EncodingSettings), ("scoring", Scoring)):
            if data.get(key) is not None:
                try:
                    values[key] = kind.from_dict(data[key])
                except DataError as exc:
                    raise refuse(f"{key!r}: {exc}") from None
        return cls(names, **values)

    def __len__(self):
        return len(self.names)

    @property
    def method(self) -> str:
        """The strategy, under its name before issue 28 (FutureWarning; use ``strategy``)."""
        _old_attribute()
        return self.strategy

    @method.setter
    def method(self, value: str) -> None:
        _old_attribute()
        self.strategy = value


def _old_attribute() -> None:
    warnings.warn("Shortlist.method is now Shortlist.strategy (the old name goes in the next "
                  "release)", FutureWarning, stacklevel=3)


Shortlist.__init__ = renamed_keywords(method="strategy")(Shortlist.__init__)


def resolve_strategy(strategy: str, method: str, stacklevel: int = 3) -> tuple[str, str]:
    """(strategy, linkage method) from the keywords of a matrix's shortlist.

    ``method=`` is the linkage, as everywhere in archalign; before issue 28 it was the
    strategy, so a strategy's name given as ``method=`` still means the strategy, with a
    FutureWarning, for one release (the two sets of names do not overlap).
    """
    if method in STRATEGIES:
        if strategy not in ("medoids", method):
            raise UsageError(f"method={method!r} is the strategy's old name, and strategy="
                             f"{strategy!r} says otherwise; give strategy= alone")
        warnings.warn(f"shortlist(method={method!r}): the strategy is now strategy="
                      f"{method!r}; method= is the linkage, as elsewhere (its old meaning "
                      f"goes in the next release)", FutureWarning, stacklevel=stacklevel)
        strategy, method = method, "average"
    check_linkage(method)
    return strategy, method


def _check_selection(labels, k, strategy, must_include, exclude):
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    index = {x: i for i, x in enumerate(labels)}
    for name, group in (("must_include", must_include), ("exclude", exclude)):
        missing = [x for x in group if x not in index]
        if missing:
            raise UsageError(f"{name} names models that are not in the panel: {missing}")
    clash = sorted(set(must_include) & set(exclude))
    if clash:
        raise UsageError(f"models both in must_include and exclude: {clash}")
    available = len(labels) - len(set(exclude))
    if not 1 <= k <= available:
        raise UsageError(f"k must be between 1 and the {available} models not excluded, got {k}")
    if len(set(must_include)) > k:
        raise UsageError(f"must_include has {len(set(must_include))} models, more than k={k}")
    must = [index[x] for x in dict.fromkeys(must_include)]
    candidates = np.array([i for i in range(len(labels)) if labels[i] not in set(exclude)])
    return must, candidates


def _farthest_points(distance_to, labels, candidates, k, start):
    """Greedy farthest-point picks. distance_to(i) -> distances from i to all models;
    among equally far candidates the first label wins."""
    n = len(labels)
    picks, details = [], []
    closest = np.full(n, np.inf)
    allowed = np.zeros(n, dtype=bool)
    allowed[candidates] = True
    for i in start:
        details.append({"min_distance_to_earlier": float(closest[i]) if picks else None})
        picks.append(i)
        closest = np.minimum(closest, distance_to(i))
    while len(picks) < k:
        allowed[picks] = False
        left = np.flatnonzero(allowed)
        i = tie_order(left, -closest[left], labels)[0]
        details.append({"min_distance_to_earlier": float(closest[i])})
        picks.append(i)
        closest = np.minimum(closest, distance_to(i))
    return picks, details


def _medoid(sm, D, members):
    """The member with the smallest total distance to the others; a tie goes to the
    member closest to the members' median depth, then median parameter count, then by
    label."""
    # summed in sorted order, so that a total does not depend on the members' order
    totals = np.sort(D[np.ix_(members, members)], axis=1).sum(axis=1)
    depths, params = sm.unrolled_lengths, sm.num_params
    return tie_order(members, totals, sm.labels, depths, params,
                     _median([depths[i] for i in members]),
                     _median([params[i] for i in members]))[0]


def _median(values) -> float | None:
    known = [x for x in values if x is not None]
    return float(np.median(known)) if known else None


def shortlist_from_matrix(sm, k: int, strategy: str = "medoids", must_include=(), exclude=(),
                          *, method: str = "average") -> Shortlist:
    """k diverse models of a SimilarityMatrix (see the module docstring).

    ``strategy``: "medoids" (one per cluster of the dendrogram cut into k, its linkage
    ``method``) or "farthest" (greedy farthest points). A strategy given as ``method=``
    (its name before issue 28) still works, with a FutureWarning.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    strategy, method = resolve_strategy(strategy, method)
    must, candidates = _check_selection(sm.labels, k, strategy, must_include, exclude)
    D = sm.distance
    settings = dict(sm.settings, similarity=sm.similarity, k=k,
                    must_include=list(must_include), exclude=list(exclude))
    if strategy == "farthest":
        start = must or [_medoid(sm, D, candidates)]
        picks, details = _farthest_points(lambda i: D[i], sm.labels, candidates, k, start)
        return Shortlist([sm.labels[i] for i in picks], strategy, details, settings,
                         sm.encoding, sm.scoring)

    settings["linkage"] = method
    sub = D[np.ix_(candidates, candidates)]
    if len(candidates) == 1:
        ids = np.ones(1, dtype=int)
    else:
        Z = linkage(squareform(sub, checks=False), method=method)
        ids = fcluster(Z, k, criterion="maxclust")
    clusters = [candidates[ids == c] for c in np.unique(ids)]
    clusters.sort(key=len, reverse=True)
    chosen, details = [], []
    for members in clusters:
        forced = [i for i in must if i in members]
        for i in forced or [_medoid(sm, D, members)]:
            chosen.append(i)
            details.append({"cluster_size": int(len(members)),
                            "cluster": [sm.labels[j] for j in members],
                            "forced": i in must})
    # Forced picks sharing a cluster can overshoot k: drop the medoids of the
    # smallest clusters. Ties in the dendrogram can undershoot: top up with
    # farthest points.
    while len(chosen) > k:
        drop = max(j for j, d in enumerate(details) if not d["forced"])
        del chosen[drop], details[drop]
    if len(chosen) < k:
        extra, extra_details = _farthest_points(lambda i: D[i], sm.labels, candidates, k,
                                                chosen)
        for i, d in zip(extra[len(chosen):], extra_details[len(chosen):]):
            chosen.append(i)
            details.append(dict(d, forced=False))
    return Shortlist([sm.labels[i] for i in chosen], strategy, details, settings, sm.encoding,
                     sm.scoring)


@renamed_keywords(jobs="n_jobs")
def shortlist(models, k: int, *, granularity: str | None = None, scoring: Scoring | None = None,
              settings: EncodingSettings | None = None, family: bool | float | None = None,
              rolled: bool | None = None, max_period: int | None = defaults.MAX_PERIOD,
              gap: float | None = None, gap_open: float | None = None,
              gap_extend: float | None = None, must_include=(), exclude=(),
              n_jobs: int | None = None, cache_dir=None, progress: bool = True,
              as_exported: bool | None = None) -> Shortlist:
    """k diverse models by farthest-point selection, without the n x n matrix.

    ``models`` are timm names, wildcard patterns, nn.Modules or Traces, and the
    setting (``settings=`` / ``scoring=`` or the token and scoring keywords) is that of
    :func:`archalign.similarity_matrix`. Distances are ``1 - normalized similarity``.
    Costs n self-alignments plus n x k alignments. ``n_jobs``: tracing processes and
    alignment threads (None: all cores; ``jobs=``, its earlier name, still works for
    one release, with a FutureWarning).
    """
    from archalign.alignment.aligner import pairwise, score
    from archalign.similarity.measures import all_gap_score, normalized_similarity
    from archalign.tokens.encode import encode_traces
    from archalign.tokens.settings import resolve_settings
    from archalign.tracing.specs import resolve_traces

    encoding, setting_scoring = resolve_settings(
        settings, scoring, granularity=granularity, rolled=rolled, family=family,
        max_period=max_period, as_exported=as_exported, gap=gap, gap_open=gap_open,
        gap_extend=gap_extend)
    setting_scoring.for_similarity()
    labels, traces = resolve_traces(models, n_jobs=n_jobs, cache_dir=cache_dir, progress=progress,
                                    tokens_only=True)
    must, candidates = _check_selection(labels, k, "farthest", must_include, exclude)
    enc = encode_traces(traces, settings=encoding, scoring=setting_scoring)
    seqs, scoring = enc.seqs, enc.scoring
    selfs = np.array([score(s, s, scoring) for s in seqs])
    gaps = all_gap_score([len(s) for s in seqs], scoring.gap_open, scoring.gap_extend)

    def distance_to(i):
        row = pairwise([seqs[i]], scoring, n_jobs=n_jobs, others=seqs)
        sim = normalized_similarity(row, selfs[[i]], selfs, gaps[[i]], gaps)[0]
        if not scoring.symmetric:
            col = pairwise(seqs, scoring, n_jobs=n_jobs, others=[seqs[i]])[:, 0]
            sim = (sim + normalized_similarity(col[:, None], selfs, selfs[[i]], gaps,
                                               gaps[[i]])[:, 0]) / 2
        return 1.0 - sim

    picks, details = _farthest_points(distance_to, labels, candidates, k,
                                      must or [int(candidates[0])])
    record = {"granularity": enc.settings.granularity, "scoring": repr(scoring),
              "similarity": "normalized", "rolled": enc.rolled,
              "as_exported": enc.as_exported, "k": k, "must_include": list(must_include),
              "exclude": list(exclude), "streaming": True}
    return Shortlist([labels[i] for i in picks], "farthest", details, record, enc.settings,
                     setting_scoring)
