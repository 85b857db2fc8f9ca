"""Model specs to traces: patterns, torchvision builders, modules; failures reported."""
import numpy as np
import pytest
import torch
from torch import nn

import archalign
from archalign.inputs import _torchvision_module, expand_specs, resolve_traces


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
