"""Tests for the front-end wrappers (`with_neurn`, `with_front`): the front end runs
first, its map is standardised with the study's constants by default, and timm's data
pipeline hands NeuRN the raw [0, 1] image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurn.fronts import (FRONT_STATS, LCN, FrontEnd, Gray, NeuRN, NeuRNFront, Sobel,
                          Standardize, with_front, with_neurn)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


class _TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


def test_with_neurn_feeds_the_model_the_standardised_map():
    net = _TinyNet()
    x = _rand(2, 3, 16, 16)
    assert FRONT_STATS["neurn"] == (0.1792, 0.2971)
    torch.testing.assert_close(with_neurn(net)(x), net((NeuRN()(x) - 0.1792) / 0.2971),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(with_neurn(net, stats=None)(x), net(NeuRN()(x)),
                               rtol=0, atol=0)


@pytest.mark.parametrize("front, key", [(NeuRN(kernel_size=5), "neurn"), (Sobel(), "sobel"),
                                        (Gray(), "pixels"), (LCN(), None)], ids=repr)
def test_known_front_ends_get_the_study_constants(front, key):
    wrapped = with_front(_TinyNet(), front)
    x = _rand(2, 3, 16, 16)
    if key is None:
        assert isinstance(wrapped.standardize, nn.Identity)
        expected = front(x)
    else:
        assert isinstance(wrapped.standardize, Standardize)
        mean, std = FRONT_STATS[key]
        expected = (front(x) - mean) / std
    torch.testing.assert_close(wrapped.standardize(wrapped.front(x)), expected,
                               rtol=1e-6, atol=1e-6)


def test_per_channel_standardize_matches_a_hand_computation():
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    layer = Standardize(mean, std)
    x = _rand(2, 3, 4, 5)
    expected = torch.stack([(x[:, c] - mean[c]) / std[c] for c in range(3)], dim=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    assert layer.mean.shape == layer.std.shape == (1, 3, 1, 1)
    assert repr(layer) == "Standardize(mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2))"
    assert layer(x.double()).dtype == torch.float64
    with pytest.raises(ValueError, match="expects an \\(N, 3, H, W\\) batch"):
        layer(x[:, :1])


@pytest.mark.parametrize("mean, std, match", [
    (0.0, 0.0, "std must be > 0"), (0.0, -1.0, "std must be > 0"),
    (float("nan"), 1.0, "mean must be finite"), (0.0, float("inf"), "std must be finite"),
    ((), 1.0, "mean must be a number or one number per channel"),
    ((0.0, 0.0), (1.0, 1.0, 1.0), "2 and 3 channels")])
def test_standardize_rejects_bad_constants(mean, std, match):
    with pytest.raises(ValueError, match=match):
        Standardize(mean, std)


def test_an_unknown_front_end_needs_stats():
    with pytest.raises(ValueError, match="stats"):
        with_front(_TinyNet(), nn.AvgPool2d(3, 1, 1))
    with pytest.raises(ValueError, match="stats"):
        with_front(_TinyNet(), nn.AvgPool2d(3, 1, 1), stats=0.5)
    net, pool, x = _TinyNet(), nn.AvgPool2d(3, 1, 1), _rand(2, 3, 16, 16)
    torch.testing.assert_close(with_front(net, pool, stats=None)(x), net(pool(x)))
    torch.testing.assert_close(with_front(net, pool, stats=(0.5, 2.0))(x),
                               net((pool(x) - 0.5) / 2.0))


def test_standardisation_adds_nothing_to_the_state_dict():
    net = _TinyNet()
    wrapped = with_neurn(net)
    assert set(wrapped.state_dict()) == {f"model.{k}" for k in net.state_dict()}
    assert {name for name, _ in wrapped.named_buffers()} == {"standardize.mean",
                                                             "standardize.std"}


def test_trace_shows_neurn_then_standardize():
    archalign = pytest.importorskip("archalign")
    tokens = archalign.trace(with_neurn(_TinyNet()), input_size=(3, 32, 32)).tokens("type")
    assert tokens[:2] == ["NeuRN", "Standardize"]
    raw = archalign.trace(with_neurn(_TinyNet(), stats=None), input_size=(3, 32, 32))
    assert raw.tokens("type")[0] == "NeuRN" and "Standardize" not in raw.tokens("type")


def test_timm_pipeline_hands_neurn_the_raw_image():
    timm = pytest.importorskip("timm")
    from PIL import Image
    from torchvision import transforms

    model = timm.create_model("resnet10t", num_classes=3, pretrained=False)
    imagenet_cfg = dict(model.pretrained_cfg)
    wrapped = with_neurn(model)
    assert wrapped.default_cfg == wrapped.pretrained_cfg
    assert wrapped.pretrained_cfg["mean"] == (0.0, 0.0, 0.0)
    assert wrapped.pretrained_cfg["std"] == (1.0, 1.0, 1.0)
    assert model.pretrained_cfg == imagenet_cfg  # the backbone's own cfg is untouched
    assert model.pretrained_cfg["mean"] == (0.485, 0.456, 0.406)
    for key in ("input_size", "crop_pct", "interpolation"):
        assert wrapped.pretrained_cfg[key] == imagenet_cfg[key]

    cfg = timm.data.resolve_data_config(model=wrapped)
    assert cfg["mean"] == (0.0, 0.0, 0.0) and cfg["std"] == (1.0, 1.0, 1.0)
    transform = timm.data.create_transform(**cfg, is_training=False)
    unnormalised = transforms.Compose([t for t in transform.transforms
                                       if not isinstance(t, transforms.Normalize)])
    pixels = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)

    seen = []
    wrapped.neurn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    wrapped.eval()
    with torch.no_grad():
        assert wrapped(transform(image).unsqueeze(0)).shape == (1, 3)
    raw = unnormalised(image).unsqueeze(0)
    assert raw.shape == (1, *cfg["input_size"])
    assert 0.0 <= seen[0].min() and seen[0].max() <= 1.0
    torch.testing.assert_close(seen[0], raw, rtol=0, atol=0)


def test_a_model_without_a_cfg_gets_a_raw_one():
    wrapped = FrontEnd(_TinyNet(), Sobel())
    assert wrapped.pretrained_cfg == {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    assert not hasattr(wrapped, "num_classes")


def test_front_applies_neurn_first():
    net = _TinyNet()
    wrapped = with_neurn(net, kernel_size=5)
    x = _rand(2, 3, 16, 16)
    mean, std = FRONT_STATS["neurn"]
    torch.testing.assert_close(wrapped(x), net((NeuRN(kernel_size=5)(x) - mean) / std))
    assert isinstance(wrapped, NeuRNFront) and wrapped.model is net
    assert wrapped.neurn.kernel_size == 5
    with pytest.raises(ValueError, match="already"):
        with_neurn(wrapped)


def test_front_wraps_a_timm_model():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet10t", num_classes=10, pretrained=False)
    wrapped = NeuRNFront(model)
    raw_cfg = {**model.pretrained_cfg, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    assert wrapped.pretrained_cfg == raw_cfg and wrapped.num_classes == 10
    with torch.no_grad():
        assert wrapped(_rand(2, 3, 32, 32)).shape == (2, 10)


def test_wrapped_model_traces_with_neurn_as_one_first_token():
    archalign = pytest.importorskip("archalign")  # its public tracer, archalign.trace
    traced = archalign.trace(with_neurn(_TinyNet(), kernel_size=5), input_size=(3, 32, 32))
    tokens = traced.tokens("type")
    assert tokens[0] == "NeuRN" and tokens.count("NeuRN") == 1
    assert "k=5" in traced.tokens("shape")[0]  # k is reported wherever NeuRN appears
