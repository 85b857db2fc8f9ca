"""Figures: dendrogram, clustered heatmap, and an alignment of two models.

Every function returns a matplotlib Figure (so a notebook shows it and a
script can ``fig.savefig``) and draws onto ``ax`` when one is given. Labels
stay readable from ~20 to a few hundred models: the figure grows with the
number of labels up to a cap, then font size shrinks and, past that, only
every k-th label is written.

The dendrogram and the heatmap share one cut into clusters and one colour per cluster,
singletons included (:mod:`archalign.similarity.tree`), and mark the picked models of a
``shortlist`` (a bold label and a black marker). The heatmap is drawn by
:mod:`archalign.similarity.clustermap`.
"""
from __future__ import annotations

import numpy as np

from archalign.similarity import tree
from archalign.similarity.clustermap import MAX_INCHES as _MAX_INCHES
from archalign.similarity.clustermap import clustermap, label_font, thin

__all__ = ["dendrogram", "heatmap", "alignment_view"]


def _plt():
    # imported lazily: pyplot is slow to import and only plots need it
    import matplotlib.pyplot as plt

    return plt


def dendrogram(sm, n_clusters: int | None = None, method: str = "average", ax=None,
               title: str | None = None, shortlist=None):
    """Dendrogram of a SimilarityMatrix, leaves on the right, every cluster in its own
    colour (its links, its leaves' labels and its stem up to the cut, which a dashed
    line shows; singletons too), the picked models of ``shortlist`` marked.

    Parameters
    ----------
    sm : SimilarityMatrix
    n_clusters : int, optional
        Cut into this many clusters (as ``sm.clusters(n_clusters=...)``); default the
        shortlist's k when one is given, else scipy's rule (0.7 of the highest merge).
    method : str
        The linkage: "average" (default), "complete", "single" or "weighted".
    ax : matplotlib Axes, optional
        Draw here instead of on a new figure.
    title : str, optional
    shortlist : Shortlist or list of str, optional
        Models to mark: a bold label and a black star at the leaf.

    Returns
    -------
    Figure
        Its data, as scipy's ``dendrogram`` returns it, is ``fig.dendrogram_data``: the
        leaf labels bottom to top (``ivl``) and matrix indices (``leaves``), the links
        (``icoord``, ``dcoord``, ``color_list``), ``leaves_color_list`` (each leaf's
        cluster colour, singletons included), and archalign's ``clusters`` (label ->
        1-based cluster id), ``cluster_colors`` (id -> colour), ``cut`` (the height of
        the cut) and ``picked`` (the marked labels, bottom to top).
    """
    from matplotlib.lines import Line2D
    from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

    plt = _plt()
    Z = sm.linkage(method)
    n = len(sm)
    picked = tree.shortlisted(sm.labels, shortlist)
    cut = tree.cut(Z, n_clusters if n_clusters is not None else (len(picked) or None))
    if ax is None:
        height = min(_MAX_INCHES, max(4.0, 0.22 * n))
        fig, ax = plt.subplots(figsize=(8, height), layout="constrained")
    else:
        fig = ax.figure
    R = scipy_dendrogram(Z, labels=sm.labels, orientation="left", ax=ax,
                         link_color_func=cut.link_colour, leaf_font_size=label_font(n))
    R["leaves_color_list"] = cut.leaf_colours(R["leaves"])
    for y, bottom, colour in cut.stems(R["leaves"]):  # each cluster's line up to the cut
        ax.plot([bottom, cut.height], [y, y], color=colour, lw=1.5, solid_capstyle="butt")
    ax.axvline(cut.height, color="0.3", lw=0.8, ls="--")
    ticks = ax.get_yticklabels()
    marked = [y for y, leaf in zip(5 + 10 * np.arange(n), R["leaves"])
              if sm.labels[leaf] in picked]
    for tick, leaf, colour in zip(ticks, R["leaves"], R["leaves_color_list"]):
        tick.set_color(colour)
        if sm.labels[leaf] in picked:
            tick.set_fontweight("bold")
    if marked:
        size = min(10.0, 0.8 * label_font(n) + 2)
        ax.tick_params(axis="y", pad=0.9 * size)  # the labels make room for the stars
        ax.scatter(np.zeros(len(marked)), marked, marker="*", s=size ** 2, c="black",
                   zorder=4, clip_on=False, linewidths=0)
        ax.legend(handles=[Line2D([], [], marker="*", color="black", ls="", markersize=size,
                                  label=f"picked ({len(picked)})")], loc="upper left",
                  fontsize=8, frameon=False)
    if n > 250:
        ax.set_yticklabels(thin([t.get_text() for t in ticks]))
    ax.set_xlabel(f"distance (1 - {sm.similarity} similarity); dashed: the cut into "
                  f"{len(cut.colours)} clusters")
    ax.set_title(title or f"{n} architectures, {method} linkage")
    R.update(clusters={sm.labels[i]: int(c) for i, c in enumerate(cut.ids)},
             cluster_colors=dict(cut.colours), cut=cut.height,
             picked=[sm.labels[leaf] for leaf in R["leaves"] if sm.labels[leaf] in picked])
    fig.dendrogram_data = R
    return fig


def heatmap(sm, method: str = "average", ax=None, cmap: str = "viridis",
            annotate: bool | None = None, title: str | None = None, shortlist=None,
            n_clusters: int | None = None):
    """The clustered heatmap: the similarity with rows and columns in dendrogram order,
    the dendrogram in the left and top margins (as ``seaborn.clustermap`` draws it), a
    strip of cluster colours beside each, the labels right and below, a colour bar.

    Parameters
    ----------
    sm : SimilarityMatrix
    method : str
        The linkage: "average" (default), "complete", "single" or "weighted".
    ax : matplotlib Axes, optional
        The heatmap's axes; the margins and the colour bar are drawn outside it.
    cmap : str
        A matplotlib colour map (default viridis, as the HTML report).
    annotate : bool, optional
        Write the values in the cells (default: up to 20 models). A cell at 1.00 whose
        models differ in depth or parameter count (``sm.hidden_mask()``; rolled
        similarity ignores depth) is marked with an asterisk, which a line under the plot
        explains.
    title : str, optional
    shortlist : Shortlist or list of str, optional
        Models to mark: a bold label and a black triangle in the cluster strips.
    n_clusters : int, optional
        Colour this many clusters; default the shortlist's k when one is given, else
        scipy's rule, as :func:`dendrogram`.

    Returns
    -------
    Figure
        The heatmap is its first axes; ``fig.clustermap_data`` holds the leaf order,
        each label's cluster, the cluster colours and the picked labels.
    """
    return clustermap(sm, method=method, ax=ax, cmap=cmap, annotate=annotate, title=title,
                      shortlist=shortlist, n_clusters=n_clusters)


_COLOURS = {"identical": "#4c9a2a", "substituted": "#f0a202", "gap": "#d9d9d9"}
_FONT = 7.0  # points: the token text's size wherever the figure has room for it
# a monospace character's width and a row's height, in ems; the width leaves room for
# glyph advances rounded up to whole pixels, which widen text by up to 20% at low dpi
_CHAR, _LINE = 0.72, 1.5


def alignment_view(alignment, names=None, labels=("a", "b"), columns: int = 60, ax=None,
                   max_columns: int = 1200):
    """Two models' tokens aligned, one alignment column per row: A's token on the left,
    B's on the right, a swatch between them (identical green, substituted orange, gap
    grey) and, for a substitution, the fields that differ (``g=1→32``). Tokens are
    written whole and level, a rolled one with its count (``Conv2d(k=3,s=1,g=1)×7``);
    every ``columns`` rows start a new panel, panels laid out in the grid that leaves
    the text largest.

    ``alignment`` is an archalign.Alignment; ``names`` maps ids to token
    strings (e.g. the Vocabulary used to encode). Alignments longer than
    ``max_columns`` are cut there (the title says so). The text is monospace, sized to
    fit ``ax`` or a new figure of up to 40 inches a side, 7 points at most.
    """
    from matplotlib.patches import Patch, Rectangle

    plt = _plt()
    path = alignment.path[:max_columns]
    total = len(alignment.path)
    decode = (names.decode if hasattr(names, "decode")
              else (lambda ids: [str(names[int(i)]) for i in ids]) if names is not None
              else (lambda ids: [str(int(i)) for i in ids]))
    rows = [_view_row(alignment, decode, i, j) for i, j in path]
    # widths in characters: A's tokens end where the swatch starts, B's start after it
    wa = max([len(labels[0])] + [len(r[0]) for r in rows])
    wb = max([len(labels[1])] + [len(r[1]) for r in rows])
    wn = max([0] + [len(r[3]) for r in rows])
    panel, lines = wa + wb + wn + 10, max(1, min(columns, len(rows))) + 1.5
    n_panels = max(1, int(np.ceil(len(rows) / columns)))
    if ax is None:
        room = (_MAX_INCHES - 0.2, _MAX_INCHES - 1.1)
    else:
        box = ax.get_window_extent()
        room = (box.width / ax.figure.dpi, box.height / ax.figure.dpi)
    grid, font, height = _view_grid(len(rows), columns, panel, *room)
    units = panel * grid
    if ax is None:
        w = max(6.0, _CHAR * font / 72 * units + 0.2)
        h = _LINE * font / 72 * height + 1.1  # the title above, the legend below
        fig = plt.figure(figsize=(w, h))
        ax = fig.add_axes((0.1 / w, 0.45 / h, 1 - 0.2 / w, 1 - 1.1 / h))
        room = (w - 0.2, h - 1.1)
    else:
        fig = ax.figure
    # one x unit is one character and one y unit one row, whatever room is left over
    ax.set_xlim(0, max(units, 72 * room[0] / (_CHAR * font)))
    ax.set_ylim(0.75 - max(height, 72 * room[1] / (_LINE * font)), 0.75)
    mono = {"family": "monospace", "fontsize": font, "va": "center"}
    for k, (text_a, text_b, kind, differs) in enumerate(rows):
        x, y = (k // columns % grid) * panel, -(k // columns // grid) * lines - k % columns - 1
        ax.add_patch(Rectangle((x + wa + 1, y - 0.4), 2, 0.8, color=_COLOURS[kind], lw=0))
        ax.text(x + wa, y, text_a, ha="right", **mono)
        ax.text(x + wa + 4, y, text_b, ha="left", **mono)
        if differs:
            ax.text(x + wa + wb + 6, y, differs, ha="left", color="#a04a00",
                    fontweight="bold", **mono)
    for p in range(n_panels):
        x, y = p % grid * panel, -(p // grid) * lines
        ax.text(x + wa, y, labels[0], ha="right", fontweight="bold", **mono)
        ax.text(x + wa + 4, y, labels[1], ha="left", fontweight="bold", **mono)
    ax.axis("off")
    counts = alignment.counts()
    cut = f" (first {max_columns} of {total} columns)" if total > max_columns else ""
    ax.set_title(f"{labels[0]} vs {labels[1]}\nscore {alignment.score:g}: "
                 f"{counts['identical']} identical, {counts['substituted']} substituted, "
                 f"{counts['gaps']} gaps{cut}", fontsize=9, wrap=True)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in _COLOURS.items()],
              loc="upper left", fontsize=7, ncols=3, bbox_to_anchor=(0, 0))
    return fig


def _view_grid(n_rows: int, columns: int, panel: int, width: float, height: float
               ) -> tuple[int, float, float]:
    """(panels per grid row, font size, rows down) that leave the text largest in
    ``width`` x ``height`` inches, for ``n_rows`` rows in panels of ``columns`` rows and
    ``panel`` characters; of grids that tie, the one whose longer side is shortest."""
    n_panels = max(1, int(np.ceil(n_rows / columns)))
    lines = max(1, min(columns, n_rows)) + 1.5

    def rows_down(grid: int) -> float:
        down = int(np.ceil(n_panels / grid))
        # the last row of panels is as tall as its first panel
        return lines * (down - 1) + min(columns, n_rows - (down - 1) * grid * columns) + 1.5

    def font(grid: int) -> float:
        return min(_FONT, 72 * width / (_CHAR * panel * grid),
                   72 * height / (_LINE * rows_down(grid)))

    grid = max(range(1, n_panels + 1),
               key=lambda g: (font(g), -max(_CHAR * panel * g, _LINE * rows_down(g))))
    return grid, font(grid), rows_down(grid)


def _view_row(alignment, decode, i: int, j: int) -> tuple[str, str, str, str]:
    """(A's token, B's token, kind, what differs) of one alignment column; ``""`` for
    the side of a gap."""
    shown = []
    for idx, seq, counts in ((i, alignment.a, alignment.a_counts),
                             (j, alignment.b, alignment.b_counts)):
        count = int(counts[idx]) if idx >= 0 and counts is not None else 1
        shown.append((decode([seq[idx]])[0] if idx >= 0 else "", count))
    (token_a, na), (token_b, nb) = shown
    kind = ("gap" if i < 0 or j < 0
            else "identical" if alignment.a[i] == alignment.b[j] else "substituted")
    differs = [_token_differs(token_a, token_b)] if kind == "substituted" else []
    if kind != "gap" and na != nb:
        differs.append(f"×{na}→×{nb}")
    return (*(t + (f"×{n}" if n > 1 else "") for t, n in shown), kind,
            ", ".join(filter(None, differs)))


def _token_differs(a: str, b: str) -> str:
    """``g=1→32``: the fields two tokens differ in (``∅`` where one has none), or the
    two ops where those differ."""
    (op_a, fields_a), (op_b, fields_b) = _token_fields(a), _token_fields(b)
    if op_a != op_b:
        return f"{op_a}→{op_b}"
    keys = list(fields_a) + [k for k in fields_b if k not in fields_a]
    return ", ".join(f"{k}={fields_a.get(k, '∅')}→{fields_b.get(k, '∅')}" for k in keys
                     if fields_a.get(k) != fields_b.get(k))


def _token_fields(token: str) -> tuple[str, dict]:
    # a token is op(key=value,...); values never hold a comma (lists are spelled 3x3)
    op, _, rest = token.partition("(")
    return op, dict(f.partition("=")[::2] for f in rest[:-1].split(",") if f)
