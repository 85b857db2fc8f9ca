"""Figures: dendrogram, clustered heatmap, and an alignment of two models.

Every function returns a matplotlib Figure (so a notebook shows it and a
script can ``fig.savefig``) and draws onto ``ax`` when one is given. Labels
stay readable from ~20 to a few hundred models: the figure grows with the
number of labels up to a cap, then font size shrinks and, past that, only
every k-th label is written.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dendrogram", "heatmap", "alignment_view"]

_MAX_INCHES = 40


def _plt():
    # imported lazily: pyplot is slow to import and only plots need it
    import matplotlib.pyplot as plt

    return plt


def _label_font(n: int) -> float:
    return float(np.clip(900 / max(n, 1), 3, 10))


def _thin(labels, max_labels=250):
    step = max(1, int(np.ceil(len(labels) / max_labels)))
    return [x if i % step == 0 else "" for i, x in enumerate(labels)]


def dendrogram(sm, n_clusters: int | None = None, method: str = "average", ax=None,
               title: str | None = None):
    """Dendrogram of a SimilarityMatrix, leaves left, labels coloured by cluster.

    ``n_clusters`` colours the cut into that many clusters (default: scipy's
    0.7 * max height rule). The scipy dendrogram dict (leaf order, colours,
    coordinates) is kept on the figure as ``fig.dendrogram_data``.
    """
    from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

    plt = _plt()
    Z = sm.linkage(method)
    n = len(sm)
    threshold = None
    if n_clusters is not None:
        if not 1 <= n_clusters <= n:
            raise ValueError(f"n_clusters must be between 1 and {n}, got {n_clusters}")
        heights = np.sort(Z[:, 2])
        # cut between the merges that leave n_clusters and n_clusters - 1 groups
        lo = heights[n - n_clusters - 1] if n_clusters < n else 0.0
        hi = heights[n - n_clusters] if n_clusters > 1 else heights[-1] + 1e-9
        threshold = (lo + hi) / 2
    if ax is None:
        height = min(_MAX_INCHES, max(4.0, 0.22 * n))
        fig, ax = plt.subplots(figsize=(8, height), layout="constrained")
    else:
        fig = ax.figure
    R = scipy_dendrogram(Z, labels=sm.labels, orientation="left", ax=ax,
                         color_threshold=threshold, leaf_font_size=_label_font(n),
                         above_threshold_color="0.6")
    for tick, colour in zip(ax.get_yticklabels(), R["leaves_color_list"]):
        tick.set_color(colour)
    if n > 250:
        ax.set_yticklabels(_thin([t.get_text() for t in ax.get_yticklabels()]))
    ax.set_xlabel(f"distance (1 - {sm.similarity} similarity)")
    ax.set_title(title or f"{n} architectures, {method} linkage")
    fig.dendrogram_data = R
    return fig


def heatmap(sm, method: str = "average", ax=None, cmap: str = "viridis",
            annotate: bool | None = None, title: str | None = None):
    """The similarity matrix with rows and columns in dendrogram order, with a colour bar.

    ``annotate`` writes values in the cells (default: up to 20 models). A cell at 1.00
    whose models differ in depth or parameter count (``sm.hidden_mask()``; rolled
    similarity ignores depth) is marked with an asterisk, which a line under the plot
    explains.
    """
    from scipy.cluster.hierarchy import leaves_list

    plt = _plt()
    n = len(sm)
    order = leaves_list(sm.linkage(method)) if n > 1 else np.arange(n)
    values = sm.values[np.ix_(order, order)]
    hidden = sm.hidden_mask()[np.ix_(order, order)]
    labels = _thin([sm.labels[i] for i in order])
    if ax is None:
        side = min(_MAX_INCHES, max(5.0, 0.25 * n + 2))
        fig, ax = plt.subplots(figsize=(side + 1, side), layout="constrained")
    else:
        fig = ax.figure
    lo = -1.0 if sm.similarity == "correlation" else 0.0
    im = ax.imshow(values, cmap=cmap, vmin=lo, vmax=1.0, interpolation="nearest")
    font = _label_font(n)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    annotated = annotate if annotate is not None else n <= 20
    if annotated:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{values[i, j]:.2f}{'*' if hidden[i, j] else ''}", ha="center",
                        va="center", fontsize=6,
                        color="white" if values[i, j] < (lo + 1) / 2 else "black")
    if hidden.any():
        if not annotated:
            rows, cols = np.nonzero(hidden)
            # sized by the cell (in points; the axes shrink a little in layout), so that a
            # mark stays inside its cell
            cell = 72 * ax.get_window_extent().width / fig.dpi / n
            ax.scatter(cols, rows, marker="*", s=(0.35 * cell) ** 2, c="black", linewidths=0)
        ax.set_xlabel(f"* similarity 1.00, yet the models differ in depth or parameter count "
                      f"({hidden.sum() // 2} pairs)", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"{sm.similarity} similarity")
    ax.set_title(title or f"{sm.similarity} similarity, {sm.settings.get('granularity', '')} tokens")
    return fig


_COLOURS = {"identical": "#4c9a2a", "substituted": "#f0a202", "gap": "#d9d9d9"}


def alignment_view(alignment, names=None, labels=("a", "b"), columns: int = 60, ax=None,
                   max_columns: int = 1200):
    """Two models' token rows aligned: identical tokens green, substitutions
    orange, gaps grey, wrapped every ``columns`` columns; a rolled block's
    tokens carry their repeat count (``Conv2d×23``).

    ``alignment`` is an archalign.Alignment; ``names`` maps ids to token
    strings (e.g. the Vocabulary used to encode). Alignments longer than
    ``max_columns`` are cut there (the title says so).
    """
    from matplotlib.patches import Patch

    plt = _plt()
    path = alignment.path[:max_columns]
    total = len(alignment.path)
    decode = (names.decode if hasattr(names, "decode")
              else (lambda ids: [str(names[int(i)]) for i in ids]) if names is not None
              else (lambda ids: [str(int(i)) for i in ids]))
    n_lines = max(1, int(np.ceil(len(path) / columns)))
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(_MAX_INCHES, 0.25 * columns + 2),
                                        min(_MAX_INCHES, 1.0 * n_lines + 1)),
                               layout="constrained")
    else:
        fig = ax.figure
    for k, (i, j) in enumerate(path):
        line, col = divmod(k, columns)
        y = -3 * line
        if i >= 0 and j >= 0:
            kind = "identical" if alignment.a[i] == alignment.b[j] else "substituted"
        else:
            kind = "gap"
        for row, (idx, seq, counts) in enumerate(((i, alignment.a, alignment.a_counts),
                                                  (j, alignment.b, alignment.b_counts))):
            ax.add_patch(plt.Rectangle((col, y - row), 0.95, 0.9, color=_COLOURS[kind]
                                       if idx >= 0 else "white", ec="0.8", lw=0.3))
            if idx >= 0 and columns <= 80:
                text = decode([seq[idx]])[0].split("(")[0][:6]
                if counts is not None and counts[idx] > 1:
                    text += f"×{counts[idx]}"
                ax.text(col + 0.47, y - row + 0.45, text, ha="center", va="center",
                        fontsize=4.5, rotation=90)
    for line in range(n_lines):
        for row, label in enumerate(labels):
            ax.text(-0.5, -3 * line - row + 0.45, label, ha="right", va="center", fontsize=7)
    ax.set_xlim(-max(len(x) for x in labels) * 0.8 - 1, columns)
    ax.set_ylim(-3 * n_lines + 1, 1.2)
    ax.axis("off")
    counts = alignment.counts()
    cut = f" (first {max_columns} of {total} columns)" if total > max_columns else ""
    ax.set_title(f"{labels[0]} vs {labels[1]}: score {alignment.score:g}, "
                 f"{counts['identical']} identical, {counts['substituted']} substituted, "
                 f"{counts['gaps']} gaps{cut}", fontsize=9)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in _COLOURS.items()],
              loc="upper right", fontsize=7, ncols=3, bbox_to_anchor=(1, 0))
    return fig
