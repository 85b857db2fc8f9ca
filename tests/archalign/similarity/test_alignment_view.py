"""alignment_view (the PNG of ``archalign align --plot``): every token written whole and
level, and a substitution names the fields that differ, all inside the figure."""
from __future__ import annotations
import matplotlib
import pytest

import archalign
from archalign.similarity.plotting import alignment_view

matplotlib.use("Agg")

PAIR = ("resnet50", "resnext50_32x4d")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def aligned(cache):
    return archalign.align_models(*PAIR, cache_dir=cache)


def _texts(fig):
    return [t for t in fig.axes[0].texts if t.get_text()]


def test_tokens_whole_level_and_changed_fields_named(aligned):
    alignment, vocab = aligned
    fig = alignment_view(alignment, names=vocab, labels=PAIR)
    texts = _texts(fig)
    drawn = [t.get_text() for t in texts]
    assert all(t.get_rotation() == 0 for t in texts)
    for idx, seq, counts in ((0, alignment.a, alignment.a_counts),
                             (1, alignment.b, alignment.b_counts)):
        for k in alignment.path[:, idx]:
            token = vocab.decode([seq[k]])[0] + (f"×{counts[k]}" if counts[k] > 1 else "")
            assert token in drawn, token
    # ResNeXt's grouped 3x3 convs: the whole tokens on both sides, and what differs
    assert "Conv2d(k=3,s=1,g=1)×7" in drawn and "Conv2d(k=3,s=1,g=32)×7" in drawn
    assert drawn.count("g=1→32") == alignment.counts()["substituted"] == 3
    assert drawn.count(PAIR[0]) == drawn.count(PAIR[1]) == 1


@pytest.mark.parametrize("dpi", [72, 110, 150])
def test_text_stays_inside_the_figure_and_apart(aligned, dpi):
    alignment, vocab = aligned
    fig = alignment_view(alignment, names=vocab, labels=PAIR)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in _texts(fig)]
    inside = fig.bbox
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 and inside.y0 <= b.y0
               and b.y1 <= inside.y1 for b in boxes)
    # shrunk by a pixel: neighbours may touch, never overlap
    boxes = [b.padded(-1) for b in boxes]
    assert not any(p.overlaps(q) for k, p in enumerate(boxes) for q in boxes[k + 1:])


def test_long_alignment_wraps_into_panels(cache):
    alignment, vocab = archalign.align_models("resnet18", "resnet34", rolled=False,
                                              cache_dir=cache)
    fig = alignment_view(alignment, names=vocab, labels=("resnet18", "resnet34"), columns=20)
    drawn = [t.get_text() for t in _texts(fig)]
    panels = -(-len(alignment.path) // 20)
    assert drawn.count("resnet18") == drawn.count("resnet34") == panels > 1
    assert max(fig.get_size_inches()) <= 40
