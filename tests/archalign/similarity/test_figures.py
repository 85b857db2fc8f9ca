"""The pictures make their point (issue 28): every cluster in its own colour, singletons
too; every picked model marked; the clustered heatmap with dendrogram margins and labels
that fit. Each test reads what was drawn (the dendrogram's data, the artists), not only
what the code meant to draw."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex

from archalign.similarity.tree import ABOVE_CUT, palette
from test_one_vocabulary import family_panel


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def sm():
    return family_panel()  # 3 families of 4 and a singleton, "odd"


@pytest.fixture(scope="module")
def picks(sm):
    picks = sm.shortlist(4)
    assert "odd" in picks.names  # the singleton is a cluster, so it is picked
    return picks


def _drawn_colours(ax) -> set[str]:
    lines = {to_hex(line.get_color()) for line in ax.get_lines()}
    return lines | {to_hex(c) for coll in ax.collections if isinstance(coll, LineCollection)
                    for c in coll.get_colors()}


def test_dendrogram_colours_every_cluster_and_marks_every_pick(sm, picks):
    fig = sm.plot_dendrogram(shortlist=picks)
    R, ax = fig.dendrogram_data, fig.axes[0]
    ids = sm.clusters(n_clusters=len(picks))  # the shortlist's k is the default cut
    assert R["clusters"] == {x: int(ids[sm.index(x)]) for x in sm.labels}

    # each cluster one colour, its own, never the grey of the merges above the cut
    colours: dict[int, set] = {}
    for label, colour in zip(R["ivl"], R["leaves_color_list"]):
        colours.setdefault(R["clusters"][label], set()).add(colour)
    assert len(colours) == 4 and all(len(c) == 1 for c in colours.values())
    own = {c: next(iter(v)) for c, v in colours.items()}
    assert len(set(own.values())) == 4 and ABOVE_CUT not in own.values()
    assert own == R["cluster_colors"]

    # drawn so: the labels in their cluster's colour, and every colour in the tree's
    # lines, the singleton's (which scipy leaves grey) included, as its stem at its leaf
    ticks = ax.get_yticklabels()
    assert [t.get_text() for t in ticks] == R["ivl"]
    assert [to_hex(t.get_color()) for t in ticks] == R["leaves_color_list"]
    assert set(own.values()) <= _drawn_colours(ax)
    odd_y, odd_colour = 5 + 10 * R["ivl"].index("odd"), own[R["clusters"]["odd"]]
    assert any(np.allclose(line.get_ydata(), odd_y) and to_hex(line.get_color()) == odd_colour
               and max(line.get_xdata()) == pytest.approx(R["cut"]) for line in ax.get_lines())

    # every pick marked: a bold label and a star at its leaf
    assert sorted(R["picked"]) == sorted(picks.names)
    assert sorted(t.get_text() for t in ticks if t.get_fontweight() == "bold") == sorted(
        picks.names)
    stars = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(stars) == 1
    assert sorted(stars[0].get_offsets()[:, 1]) == sorted(5 + 10 * R["ivl"].index(x)
                                                          for x in picks.names)


def test_a_cut_at_n_clusters_colours_them_all(sm):
    for k in (1, 2, 5, len(sm)):  # len(sm): every model a singleton
        R = sm.plot_dendrogram(n_clusters=k).dendrogram_data
        colours = dict(zip(R["ivl"], R["leaves_color_list"]))
        by_cluster = {}
        for label, c in R["clusters"].items():
            by_cluster.setdefault(c, set()).add(colours[label])
        assert len(by_cluster) == k and all(len(v) == 1 for v in by_cluster.values())
        assert len({next(iter(v)) for v in by_cluster.values()}) == k
        assert not R["picked"]


def test_the_palette_never_repeats_nor_greys():
    colours = palette(500)
    assert len(set(colours)) == 500
    rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours])
    assert (rgb.max(axis=1) - rgb.min(axis=1)).min() > 20  # no grey among them


def test_heatmap_has_dendrogram_margins_and_marks_the_picks(sm, picks):
    fig = sm.plot_heatmap(shortlist=picks)
    heat = fig.axes[0]
    data = fig.clustermap_data
    order = data["order"]
    assert [t.get_text() for t in heat.get_yticklabels()] == order
    assert [t.get_text() for t in heat.get_xticklabels()] == order
    # a dendrogram left of the heatmap and one above it, in the clusters' colours
    box = heat.get_position()
    trees = [a for a in fig.axes[1:] if any(isinstance(c, LineCollection) for c in a.collections)]
    left = [a for a in trees if a.get_position().x1 <= box.x0]
    above = [a for a in trees if a.get_position().y0 >= box.y1]
    assert len(left) == len(above) == 1
    for tree in (left[0], above[0]):
        assert set(data["cluster_colors"].values()) <= _drawn_colours(tree)
    # the labels in their cluster's colour, the picks bold, a triangle in each strip
    colour_of = {x: data["cluster_colors"][data["clusters"][x]] for x in order}
    for ticks in (heat.get_yticklabels(), heat.get_xticklabels()):
        assert [to_hex(t.get_color()) for t in ticks] == [colour_of[x] for x in order]
        assert sorted(t.get_text() for t in ticks if t.get_fontweight() == "bold") == sorted(
            picks.names)
    marks = [c for a in fig.axes[1:] for c in a.collections if isinstance(c, PathCollection)]
    assert len(marks) == 2 and all(len(m.get_offsets()) == len(picks) for m in marks)
    assert sorted(data["picked"]) == sorted(picks.names)


@pytest.mark.parametrize("n", [2, 5, 40])
def test_heatmap_labels_fit_in_the_figure(sm, n):
    names = ["a", "swin_tiny_patch4_window7_224", "resnet18", "very_long_model_name_" * 3, "x"]
    labels = [names[i % 5] + f"_{i}" for i in range(n)]
    rng = np.random.default_rng(n)
    values = rng.uniform(0, 1, (n, n))
    values = (values + values.T) / 2
    np.fill_diagonal(values, 1)
    from archalign.similarity.matrix import SimilarityMatrix

    small = SimilarityMatrix(labels, values, values, settings={"granularity": "test"})
    fig = small.plot_heatmap(shortlist=labels[:2])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    ticks = [t for a in fig.axes if a.axison  # the margins draw no axes
             for t in (*a.get_xticklabels(), *a.get_yticklabels(), a.xaxis.label,
                       a.yaxis.label)]
    titles = [t for a in fig.axes for t in (a.title, a._left_title)]
    texts = [t for t in ticks + titles if t.get_visible() and t.get_text()]
    assert sum(t.get_text() in labels for t in texts) == 2 * n  # rows and columns
    for text in texts:
        box = text.get_window_extent(renderer)
        assert (box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1
                and box.y1 <= page.y1 + 1), (text.get_text(), box, page)
