"""The clustered heatmap: the similarity in dendrogram order with the dendrogram in its
margins, as ``seaborn.clustermap`` draws it (without depending on seaborn).

Left to right: the row dendrogram, a strip of cluster colours, the heatmap, the row
labels, the colour bar; top to bottom: the title, the column dendrogram, a strip of
cluster colours, the heatmap, the column labels. Every length is planned in inches
from the labels' measured widths, so that a label never runs off the figure, and the
figure stays within 40 inches a side (past that the cells shrink). Clusters and their
colours are :mod:`archalign.similarity.tree`'s, those of the dendrogram figure; picked
models (a shortlist) get a bold label and a black triangle in the strips.
"""
from __future__ import annotations

import numpy as np

from archalign.similarity import tree

__all__ = ["clustermap", "text_width", "label_font", "thin"]

MAX_INCHES = 40
_PAD, _GAP = 0.12, 0.04
_TITLE, _NOTE = 0.4, 0.3  # inches for the title line, and the note under the labels
_CBAR, _CBAR_TEXT = 0.15, 0.75  # the colour bar, and its ticks and label beside it


def label_font(n: int) -> float:
    return float(np.clip(900 / max(n, 1), 3, 10))


def thin(labels, max_labels=250):
    step = max(1, int(np.ceil(len(labels) / max_labels)))
    return [x if i % step == 0 else "" for i, x in enumerate(labels)]


def text_width(texts, size: float, bold=()) -> float:
    """The widest of ``texts`` in inches at ``size`` points, as Agg draws it (a text
    whose index is in ``bold`` measured bold), with a margin: hinting makes a text's
    width vary with the dpi by a few per cent."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    fonts = {w: FontProperties(size=size, weight=w) for w in ("normal", "bold")}
    widest = 0.0
    for dpi in (72, 100):
        renderer = RendererAgg(1, 1, dpi)
        widths = [renderer.get_text_width_height_descent(
            t, fonts["bold" if i in bold else "normal"], ismath=False)[0]
            for i, t in enumerate(texts) if t]
        widest = max(widest, max(widths, default=0.0) / dpi)
    return 1.03 * widest


def tree_lines(R: dict, cut: tree.Cut) -> tuple[list, list]:
    """(segments, colours) of a scipy dendrogram dict in leaf units (leaf i at i), as
    (position along the leaves, height) pairs: its links in their colours, and each
    cluster's stem up to the cut in its colour (:meth:`archalign.similarity.tree.Cut.stems`)."""
    segments, colours = [], []
    for xs, ys, colour in zip(R["icoord"], R["dcoord"], R["color_list"]):
        segments.append(np.column_stack([np.asarray(xs) / 10 - 0.5, ys]))
        colours.append(colour)
    for position, bottom, colour in cut.stems(R["leaves"]):
        segments.append(np.array([[position / 10 - 0.5, bottom], [position / 10 - 0.5, cut.height]]))
        colours.append(colour)
    return segments, colours


def _draw_tree(ax, segments, colours, cut: tree.Cut, top: float, n: int, rows: bool) -> None:
    from matplotlib.collections import LineCollection

    if rows:  # leaves down the right edge, root to the left
        segments = [s[:, ::-1] for s in segments]
        ax.set_xlim(top, 0)
        ax.set_ylim(n - 0.5, -0.5)
        ax.axvline(cut.height, color="0.3", lw=0.6, ls="--")
    else:  # leaves along the bottom edge, root above
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(0, top)
        ax.axhline(cut.height, color="0.3", lw=0.6, ls="--")
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=1.0))
    ax.set_axis_off()


def _strip(ax, cut: tree.Cut, order, picked, length: float, rows: bool) -> None:
    """The cluster colours of the leaves, a black triangle on each picked one;
    ``length``: the strip's length in inches."""
    from matplotlib.colors import to_rgb

    rgb = np.array([to_rgb(c) for c in cut.leaf_colours(order)])[:, None, :]
    ax.imshow(rgb if rows else rgb.transpose(1, 0, 2), aspect="auto", interpolation="nearest")
    marks = [p for p, i in enumerate(order) if i in picked]
    if marks:
        size = min(8.0, 0.8 * 72 * length / len(order))
        xy = (np.zeros(len(marks)), marks) if rows else (marks, np.zeros(len(marks)))
        ax.scatter(*xy, marker=">" if rows else "v", s=size ** 2, c="black", linewidths=0)
    ax.set_axis_off()


def _box(ax) -> tuple[float, float]:
    fig = ax.figure
    box = ax.get_position()
    w, h = fig.get_size_inches()
    return box.width * w, box.height * h


def clustermap(sm, method="average", ax=None, cmap="viridis", annotate=None, title=None,
               shortlist=None, n_clusters=None):
    """Draw the clustered heatmap of ``sm`` (see :func:`archalign.similarity.plotting.heatmap`
    for the options); returns the Figure, the heatmap its first axes (``fig.axes[0]``
    when the figure is new)."""
    from scipy.cluster.hierarchy import dendrogram

    plt = _pyplot()
    n = len(sm)
    picked = {sm.index(x) for x in tree.shortlisted(sm.labels, shortlist)}
    Z = sm.linkage(method) if n > 1 else None
    # with a shortlist, its k clusters, as a medoid shortlist cut them
    k = n_clusters if n_clusters is not None else (len(picked) or None)
    cut = tree.cut(Z, k) if n > 1 else None
    R = dendrogram(Z, no_plot=True, link_color_func=cut.link_colour) if n > 1 else None
    order = np.asarray(R["leaves"] if n > 1 else [0])
    values = sm.values[np.ix_(order, order)]
    hidden = sm.hidden_mask()[np.ix_(order, order)]
    labels = thin([sm.labels[i] for i in order])
    bold = {p for p, i in enumerate(order) if i in picked}
    font = label_font(n)
    hidden_note = bool(hidden.any())
    note = (f"* similarity 1.00, yet the models differ in depth or parameter count "
            f"({hidden.sum() // 2} pairs)") if hidden_note else ""

    where = f", {len(cut.colours)} clusters ({method} linkage)" if cut is not None else ""
    title = title or (f"{sm.similarity} similarity, {sm.settings.get('granularity', '')} "
                      f"tokens{where}")

    # -- the plan, in inches: margins and labels fixed, the heatmap takes what is left
    label = text_width(labels, font, bold) + 0.08  # the tick pad
    margin = float(np.clip(0.02 * n + 0.5, 0.6, 1.4)) if n > 1 else 0.0
    strip = float(np.clip(3.0 / max(n, 1), 0.08, 0.18)) if n > 1 else 0.0
    left = _PAD + margin + strip + 2 * _GAP
    right = _GAP + label + 0.25 + _CBAR + _CBAR_TEXT + _PAD
    top = _PAD + _TITLE + margin + strip + 2 * _GAP
    bottom = _GAP + label + (_NOTE if hidden_note else 0.0) + _PAD
    if ax is None:
        side = float(np.clip(0.25 * n + 1.5, 2.5, MAX_INCHES))
        side = min(side, MAX_INCHES - left - right, MAX_INCHES - top - bottom)
        # the title over the heatmap and the note under it, both left-aligned, may run on
        # past the heatmap's right edge
        right = max(right, text_width([title], 10) + _PAD - side,
                    text_width([note], 8) + _PAD - side)
        W, H = left + side + right, top + side + bottom
        fig = plt.figure(figsize=(W, H))
        ax = fig.add_axes((left / W, bottom / H, side / W, side / H))

        def place(x, y, w, h):  # inches from the figure's bottom-left corner
            return fig.add_axes((x / W, y / H, w / W, h / H))
        x0, y0, sw, sh = left, bottom, side, side
    else:
        fig = ax.figure
        sw, sh = _box(ax)

        def place(x, y, w, h):  # inches from the heatmap's bottom-left corner
            return ax.inset_axes((x / sw, y / sh, w / sw, h / sh))
        x0 = y0 = 0.0

    # -- the heatmap, first, so that it is fig.axes[0]
    lo = -1.0 if sm.similarity == "correlation" else 0.0
    im = ax.imshow(values, cmap=cmap, vmin=lo, vmax=1.0, interpolation="nearest", aspect="auto")
    ax.set_xticks(range(n), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.yaxis.tick_right()
    ax.tick_params(length=2, pad=2)
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        for p in bold:
            ticks[p].set_fontweight("bold")
    if cut is not None:
        for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
            for tick, colour in zip(ticks, cut.leaf_colours(order)):
                tick.set_color(colour)
    annotated = annotate if annotate is not None else n <= 20
    if annotated:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{values[i, j]:.2f}{'*' if hidden[i, j] else ''}", ha="center",
                        va="center", fontsize=6,
                        color="white" if values[i, j] < (lo + 1) / 2 else "black")
    if hidden_note:
        if not annotated:
            rows, cols = np.nonzero(hidden)
            cell = 72 * min(sw, sh) / n  # points: a mark stays inside its cell
            ax.scatter(cols, rows, marker="*", s=(0.35 * cell) ** 2, c="black", linewidths=0)
        ax.set_xlabel(note, fontsize=8, loc="left")

    # -- the margins: dendrograms and cluster strips, sharing the heatmap's leaf order
    heading = ax
    if cut is not None:
        segments, colours = tree_lines(R, cut)
        height = max(float(Z[:, 2].max()), cut.height) * 1.03 or 1.0
        row_tree = place(x0 - margin - strip - 2 * _GAP, y0, margin, sh)
        _draw_tree(row_tree, segments, colours, cut, height, n, rows=True)
        col_tree = place(x0, y0 + sh + strip + 2 * _GAP, sw, margin)
        _draw_tree(col_tree, segments, colours, cut, height, n, rows=False)
        _strip(place(x0 - strip - _GAP, y0, strip, sh), cut, order, picked, sh, rows=True)
        _strip(place(x0, y0 + sh + _GAP, sw, strip), cut, order, picked, sw, rows=False)
        heading = col_tree
    bar_h = min(sh, 3.0)
    bar = place(x0 + sw + _GAP + label + 0.25, y0 + sh - bar_h, _CBAR, bar_h)
    fig.colorbar(im, cax=bar, label=f"{sm.similarity} similarity")
    heading.set_title(title, fontsize=10, loc="left" if cut is not None else "center")
    fig.clustermap_data = {"order": [sm.labels[i] for i in order],
                           "clusters": {sm.labels[i]: int(cut.ids[i]) for i in order}
                           if cut is not None else {},
                           "cluster_colors": dict(cut.colours) if cut is not None else {},
                           "picked": [sm.labels[i] for i in order if i in picked]}
    return fig


def _pyplot():
    import matplotlib.pyplot as plt

    return plt
