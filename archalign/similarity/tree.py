"""A dendrogram cut into clusters, and the colours every picture gives them.

The static figures (:mod:`archalign.similarity.plotting`,
:mod:`archalign.similarity.clustermap`) and the HTML report read the same cut and the
same palette from here, so that a cluster has one colour wherever it is drawn:

- :func:`cut` cuts a linkage into ``n_clusters`` (as ``SimilarityMatrix.clusters`` and
  a medoid shortlist do) or at scipy's default height, and says which merges lie inside
  a cluster (drawn in its colour) and where the cut runs;
- :func:`palette` gives each cluster its own colour, singletons included. None is grey,
  which marks the merges above the cut (``ABOVE_CUT``, scipy's own choice).
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from archalign.utils.errors import UsageError

__all__ = ["LINKAGES", "ABOVE_CUT", "check_linkage", "palette", "Cut", "cut", "shortlisted"]

# alignment distances are not Euclidean, so no ward / centroid / median
LINKAGES = ("average", "complete", "single", "weighted")
ABOVE_CUT = "#999999"
# matplotlib's tab10, then tab20's light shades, without their greys
_BASE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
         "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"]


def check_linkage(method: str) -> str:
    """``method`` when it is a linkage archalign clusters with, else a UsageError."""
    if method in ("ward", "centroid", "median"):
        raise UsageError(f"method={method!r} assumes Euclidean distances; use "
                         f"'average' (default), 'complete', 'single' or 'weighted'")
    if method not in LINKAGES:
        raise UsageError(f"the linkage method must be one of {LINKAGES}, got {method!r}")
    return method


def shortlisted(labels, shortlist) -> list[str]:
    """The names of ``shortlist`` (a Shortlist, a list of names or None), each checked to
    be one of ``labels``."""
    names = list(getattr(shortlist, "names", shortlist) or [])
    missing = [x for x in names if x not in set(labels)]
    if missing:
        raise UsageError(f"the shortlist names {len(missing)} model(s) that are not in the "
                         f"matrix: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
                         f"; use the matrix the shortlist was picked from")
    return names


def palette(n: int) -> list[str]:
    """``n`` distinct colours (hex), none of them grey: tab10 and tab20's light shades,
    then hues a golden angle apart at three lightnesses."""
    colours = _BASE[:n]
    k = 0
    while len(colours) < n:
        hue = (0.13 + k * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75 - 0.2 * (k % 3), 0.9 - 0.18 * (k // 3 % 3))
        colour = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        if colour not in colours:
            colours.append(colour)
        k += 1
    return colours


@dataclass
class Cut:
    """A linkage cut into clusters.

    Attributes
    ----------
    Z : the linkage matrix
    ids : (n,) int, 1-based cluster id of each model (scipy's fcluster), in matrix order
    height : float, a distance at which the cut runs (between the last merge inside a
        cluster and the first merge between two)
    inside : (n - 1,) bool, whether each merge of the linkage joins members of one cluster
    colours : dict, cluster id -> colour; clusters are numbered by scipy, coloured in the
        order their first member appears in the dendrogram's leaf order
    """

    Z: np.ndarray
    ids: np.ndarray
    height: float
    inside: np.ndarray
    colours: dict

    def leaf_colours(self, order) -> list[str]:
        """The colour of each leaf, for leaves in ``order`` (matrix indices)."""
        return [self.colours[int(self.ids[i])] for i in order]

    def link_colour(self, node: int) -> str:
        """scipy's ``link_color_func``: a merge inside a cluster takes its colour."""
        n = len(self.ids)
        if not self.inside[node - n]:
            return ABOVE_CUT
        while node >= n:  # down to a leaf of the merge: all of them share the cluster
            node = int(self.Z[node - n, 0])
        return self.colours[int(self.ids[node])]

    def stems(self, leaves) -> list[tuple[float, float, str]]:
        """(position, height, colour) of each cluster's stem: the line from the cluster's
        top (its highest merge, or its leaf) up to the cut, which scipy draws as part of
        the grey merge above it, so that a singleton, or a cluster of models at distance
        0, would show no colour at all. Positions are scipy's: the i-th of ``leaves``
        (the dendrogram's leaf order) at 5 + 10 i, a merge halfway between its two."""
        Z, n = self.Z, len(self.ids)
        position, height = np.zeros(2 * n - 1), np.zeros(2 * n - 1)
        position[np.asarray(leaves)] = 5 + 10 * np.arange(n)
        height[n:] = Z[:, 2]
        parent = np.full(2 * n - 1, -1)
        for k, (a, b) in enumerate(Z[:, :2].astype(np.int64)):
            position[n + k] = (position[a] + position[b]) / 2
            parent[a] = parent[b] = n + k
        inside = np.concatenate([np.ones(n, dtype=bool), self.inside])
        return [(float(position[node]), float(height[node]), self.link_colour(node)
                 if node >= n else self.colours[int(self.ids[node])])
                for node in range(2 * n - 1)
                if inside[node] and (parent[node] < 0 or not inside[parent[node]])]


def cut(Z: np.ndarray, n_clusters: int | None = None) -> Cut:
    """Cut linkage ``Z`` into ``n_clusters`` (scipy's ``maxclust``; ties in the
    linkage can leave fewer) or, when None, at scipy's default colour threshold, 0.7 of
    the highest merge."""
    from scipy.cluster.hierarchy import fcluster, leaves_list

    n = len(Z) + 1
    if n_clusters is not None:
        if not 1 <= n_clusters <= n:
            raise UsageError(f"n_clusters must be between 1 and {n}, got {n_clusters}")
        ids = fcluster(Z, n_clusters, criterion="maxclust")
    else:
        ids = fcluster(Z, 0.7 * Z[:, 2].max(), criterion="distance")
    # a merge is inside a cluster when its first leaf and every leaf under it share an id;
    # merges come children first, so each node's answer is built from its children's
    same = np.ones(2 * n - 1, dtype=bool)
    first = np.concatenate([np.arange(n), np.zeros(n - 1, dtype=np.int64)])
    for k, (a, b) in enumerate(Z[:, :2].astype(np.int64)):
        first[n + k] = first[a]
        same[n + k] = same[a] and same[b] and ids[first[a]] == ids[first[b]]
    inside = same[n:]
    heights = Z[:, 2]
    lo = heights[inside].max() if inside.any() else 0.0
    # one cluster: the cut runs a little above the root
    hi = heights[~inside].min() if (~inside).any() else lo + max(0.05 * lo, 1e-9)
    seen = list(dict.fromkeys(int(ids[i]) for i in leaves_list(Z)))
    colours = dict(zip(seen, palette(len(seen))))
    return Cut(Z, ids, float((lo + hi) / 2), inside, colours)
