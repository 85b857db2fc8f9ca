"""Named panels: lookups, and the promises the `cpu` demo panel makes."""
from __future__ import annotations
import pytest

import archalign
from archalign.similarity.panels import PANELS, list_panels, panel


def test_unknown_panel_names_the_choices():
    with pytest.raises(ValueError, match="unknown panel 'gpu'.*cpu"):
        panel("gpu")
    assert list_panels() == sorted(PANELS)
    assert panel("cpu") is not PANELS["cpu"]  # a copy: callers may edit it


def test_cpu_shortlist_spans_convolution_and_attention(tmp_path):
    sm = archalign.similarity_matrix(panel("cpu"), cache_dir=tmp_path, progress=False)
    names = sm.shortlist(3).names
    attention = {name: "scaled_dot_product_attention" in
                 archalign.trace(name).tokens("type") for name in names}
    assert any(attention.values()) and not all(attention.values()), attention
