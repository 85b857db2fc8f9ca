"""Model specs to traces: patterns, torchvision builders, modules; failures reported."""
from __future__ import annotations
import numpy as np
import pytest
from torch import nn

import archalign
from archalign.tracing.specs import _torchvision_module, expand_specs, resolve_traces


def test_patterns_expand_in_order_without_duplicates():
    specs = expand_specs(["vgg1[13]", "resnet18", "vgg11"])
    assert specs == ["vgg11", "vgg13", "resnet18"]
    with pytest.raises(ValueError, match="matches no timm model"):
        expand_specs(["nomodel*"])


def test_torchvision_builders_never_download():
    # fcn_resnet50 would fetch ResNet-50 backbone weights by default
    model = _torchvision_module("fcn_resnet50")
    assert next(model.parameters()).device.type == "meta"
    with pytest.raises(ValueError, match="closest"):
        _torchvision_module("resnet_5O")


def test_modules_and_failures(tmp_path):
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x).relu()

    with pytest.warns(RuntimeWarning, match="could not be traced"):
        labels, traces = resolve_traces([Tiny(), Tiny(), "torchvision:no_such_model"],
                                        cache_dir=tmp_path, progress=False)
    assert labels == ["Tiny", "Tiny_2"]
    assert traces[0].tokens("type") == ["Conv2d", "ReLU"]


def test_paper_preset_reproduces_vgg_block(tmp_path):
    sm = archalign.similarity_matrix(["vgg11", "vgg16", "vgg19", "vit_tiny_patch16_224",
                                      "resnet18"], preset="paper", cache_dir=tmp_path,
                                     progress=False)
    assert sm.similarity == "correlation" and sm.settings["granularity"] == "type"
    vgg = sm.values[:3, :3]
    assert vgg.min() > 0.9  # the paper's VGG block near 1
    assert np.all(sm.values[:3, 3] < vgg.min())


# ----------------------------------------------------------- settings and defaults
PANEL = ["resnet18", "resnet50", "resnet101", "densenet121", "regnetx_016",
         "mobilenetv2_100", "vit_tiny_patch16_224", "vgg16"]


@pytest.fixture(scope="module")
def panel_traces(tmp_path_factory):
    _, traces = resolve_traces(PANEL, cache_dir=tmp_path_factory.mktemp("traces"),
                               progress=False)
    return traces


@pytest.mark.parametrize("granularity", ["type", "shape", "full"])
@pytest.mark.parametrize("rolled", [False, True])
@pytest.mark.parametrize("family", [False, True])
@pytest.mark.parametrize("gaps", [{"gap": -1}, {"gap_open": -4, "gap_extend": -0.25}])
def test_similarity_invariants_hold_for_every_setting(panel_traces, granularity, rolled,
                                                      family, gaps):
    sm = archalign.similarity_matrix(panel_traces, granularity, rolled=rolled, family=family,
                                     progress=False, **gaps)
    v = sm.values
    np.testing.assert_array_equal(np.diag(v), 1.0)
    np.testing.assert_allclose(v, v.T, atol=1e-12)
    assert v.min() >= 0.0 and v.max() <= 1.0
    assert sm.settings["rolled"] == rolled and sm.settings["family"] == family


def test_defaults_put_deeper_resnets_nearest_to_resnets(panel_traces):
    # The depth-drowns-design failure of the first release: with unrolled tokens and
    # linear gaps resnet101's nearest model was densenet121, resnet50's regnetx_016.
    old = archalign.similarity_matrix(panel_traces, rolled=False, gap=-1, progress=False)
    assert old.nearest("resnet101", 1)[0][0] == "densenet121"
    assert old.nearest("resnet50", 1)[0][0] == "regnetx_016"
    new = archalign.similarity_matrix(panel_traces, progress=False)
    assert new.nearest("resnet101", 1)[0] == ("resnet50", 1.0)  # one design, two depths


def test_paper_preset_is_exactly_the_papers_setting(panel_traces):
    sm = archalign.similarity_matrix(panel_traces, preset="paper", progress=False)
    vocab = archalign.Vocabulary.from_traces(panel_traces, "type")
    raw = archalign.pairwise([vocab.encode(t) for t in panel_traces], archalign.Scoring.paper())
    np.testing.assert_array_equal(sm.scores, raw)
    np.testing.assert_allclose(sm.values, np.corrcoef(raw), atol=1e-12)
    assert sm.settings["rolled"] is False
    with pytest.raises(ValueError, match="scoring"):
        archalign.similarity_matrix(panel_traces, preset="paper", family=True, progress=False)


def test_matrix_file_records_the_setting(panel_traces, tmp_path):
    sm = archalign.similarity_matrix(panel_traces[:3], gap_open=-3, gap_extend=-1,
                                     max_period=8, progress=False)
    back = archalign.SimilarityMatrix.load(sm.save(tmp_path / "s.npz"))
    assert back.settings["rolled"] is True and back.settings["max_period"] == 8
    assert (back.settings["gap_open"], back.settings["gap_extend"]) == (-3, -1)
    rolled, unrolled = (np.array(back.settings[k]) for k in ("lengths", "unrolled_lengths"))
    assert (rolled < unrolled).all()


def test_rolled_alignment_shows_counts(panel_traces):
    alignment, vocab = archalign.align_models(panel_traces[0], panel_traces[2])
    text = alignment.format(vocab, width=10_000)
    assert "×" in text and alignment.a_counts.sum() == len(panel_traces[0])
    with pytest.raises(ValueError, match="gap_open= and gap_extend="):
        archalign.align_models(panel_traces[0], panel_traces[2], gap_open=-2)
