"""Pro-RandConv (issue 26) and the ``<front>+<augmentation>`` variants: the augmentation's
block and its draws, its place in training (raw image, then front end, then
standardisation), the canonical names and refusals, and a bit-identical resume."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.ops import deform_conv2d

from neurn.cli import main
from neurn.fronts import FRONT_STATS, NeuRN, ProRandConv, RandConv, Sobel
from neurn.fronts.prorandconv import _deform_conv, _sampling_grid
from neurn.models import build_augmentation, build_model, parse_variant
from neurn.results import read_run
from neurn.study import engine
from neurn.study import train as train_module
from neurn.study.settings import Run, refuse_duplicates

from tiny_study import ctrl_c_at_epoch, run_args


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _pro(seed=0, **kwargs):
    return ProRandConv(generator=torch.Generator().manual_seed(seed), **kwargs)


# ---------------------------------------------------------------- the augmentation
@pytest.mark.parametrize("deform", [True, False])
def test_output_keeps_shape_and_dtype_and_lies_in_0_1(deform):
    x = _rand(4, 3, 20, 24)
    aug = _pro(p=1.0, deform=deform)
    for _ in range(4):
        out = aug(x)
        assert out.shape == x.shape and out.dtype == x.dtype and not torch.equal(out, x)
        assert out.min() >= 0 and out.max() <= 1
    assert list(aug.parameters()) == []


def test_one_block_per_batch_and_no_image_depends_on_its_batch_mates():
    a, b = _rand(1, 3, 16, 16, seed=1), _rand(1, 3, 16, 16, seed=2)
    out = _pro(3, p=1.0)(torch.cat([a, b, a]))
    torch.testing.assert_close(out[0], out[2], rtol=0, atol=1e-6)  # same weights, offsets
    assert not torch.allclose(out[0], out[1])
    alone = _pro(3, p=1.0)(torch.cat([a, torch.zeros_like(b), 5 * b]))
    torch.testing.assert_close(alone[0], out[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("make", [lambda **kw: _pro(5, **kw),
                                  lambda **kw: RandConv(generator=torch.Generator().manual_seed(5),
                                                        **kw)])
def test_an_image_gate_augments_the_chosen_images_and_returns_the_others_exactly(make):
    x = _rand(16, 3, 12, 12, seed=4)
    chosen = torch.rand(16, generator=torch.Generator().manual_seed(5)) < 0.5  # its first draw
    assert 0 < int(chosen.sum()) < 16
    out = make(p=0.5, gate="image")(x)
    assert torch.equal(out[~chosen], x[~chosen])
    assert all(not torch.equal(out[i], x[i]) for i in chosen.nonzero()[:, 0])
    # the chosen images went through one draw of the transform, as a batch of their own
    alone = make(p=0.5, gate="image")
    alone.generator.manual_seed(5)
    torch.rand(16, generator=alone.generator)  # the gate's draws, then the transform's
    assert torch.equal(out[chosen], alone.augment(x[chosen]))


def test_the_gate_defaults_and_refusals():
    assert _pro().gate == "image" and RandConv().gate == "batch"
    assert parse_variant("prorandconv:gate=batch").name == "prorandconv:gate=batch"
    with pytest.raises(ValueError, match="gate is 'batch'.*or 'image'"):
        _pro(gate="sample")
    # the per-image default changed what the name prorandconv trains: a revision in the
    # run settings keeps the earlier runs from being reused
    assert parse_variant("prorandconv").revision == parse_variant("neurn+prorandconv").revision == 2
    assert parse_variant("randconv").revision is None and parse_variant("neurn").revision is None


def _support(out, window):
    """Where an impulse's response differs from the flat background, within ``window``
    pixels of the centre (away from the zero padding's own response at the border): its
    largest Chebyshev distance from the impulse, and its pixel count."""
    out, c = out[0], out.shape[-1] // 2
    background = out[:, c // 2, c // 2].view(-1, 1, 1)
    near = (out - background).abs().amax(0)[c - window:c + window + 1, c - window:c + window + 1]
    moved = (near > 1e-9).nonzero() - window
    return int(moved.abs().max()), int(len(moved))


def test_more_repetitions_grow_the_receptive_field():
    impulse = torch.zeros(1, 3, 61, 61, dtype=torch.float64)
    impulse[..., 30, 30] = 1.0
    grown = [_support(_pro(0, deform=False).progressive(impulse, L), 8) for L in (1, 2, 3, 4)]
    # a 3 x 3 kernel repeated L times reaches exactly L pixels, its (2 L + 1)^2 square
    assert grown == [(1, 9), (2, 25), (3, 49), (4, 81)]
    deformed = [_support(_pro(0).progressive(impulse, L), 12)[1] for L in (1, 2, 4)]
    assert deformed[0] < deformed[1] < deformed[2]


def test_eval_mode_is_the_identity_and_draws_nothing():
    aug = _pro(p=1.0).eval()
    before = aug.generator.get_state()
    x = _rand(2, 3, 16, 16)
    assert aug(x) is x and torch.equal(aug.generator.get_state(), before)


def test_a_seed_gives_one_sequence_and_p_keeps_clean_images():
    x = _rand(2, 3, 8, 8)

    def outputs(seed):
        aug = _pro(seed, max_repeats=3)  # p = 0.5
        return [aug(x) for _ in range(8)]

    a, b, other = outputs(1), outputs(1), outputs(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert any(not torch.equal(u, v) for u, v in zip(a, other))
    clean = [torch.equal(u[i], x[i]) for u in a for i in range(2)]
    assert any(clean) and not all(clean)
    never = _pro(p=0.0)
    assert all(never(x) is x for _ in range(3))


def test_the_block_is_the_documented_one():
    """Replay the draws of one augmented batch (p, L, sigma_g, weights, sigma_d, offsets,
    gamma, beta) and apply the block with torchvision's deform_conv2d."""
    mean, std = (0.2, 0.3, 0.4), (0.5, 0.25, 0.2)
    x = _rand(2, 3, 12, 12, dtype=torch.float64)
    out = ProRandConv(max_repeats=4, p=1.0, mean=mean, std=std,
                      generator=torch.Generator().manual_seed(5))(x)
    g = torch.Generator().manual_seed(5)
    torch.rand(2, generator=g)  # the gate: one draw per image
    repeats = int(torch.randint(1, 5, (), generator=g))
    sigma_g = 1e-3 + (1 - 1e-3) * float(torch.rand((), generator=g))
    i = torch.arange(3.0) - 1
    window = torch.exp(-(i.view(-1, 1) ** 2 + i.view(1, -1) ** 2) / (2 * sigma_g ** 2))
    weight = (torch.randn(3, 3, 3, 3, generator=g) / math.sqrt(27) * window).double()
    sigma_d = 1e-3 + (0.5 - 1e-3) * float(torch.rand((), generator=g))
    offset = (sigma_d * torch.randn(1, 18, 12, 12, generator=g)).double().expand(2, -1, -1, -1)
    gamma = (0.5 * torch.randn(1, 3, 1, 1, generator=g)).double()
    beta = (0.5 * torch.randn(1, 3, 1, 1, generator=g)).double()
    y = (x - torch.tensor(mean).double().view(1, 3, 1, 1)) / torch.tensor(std).double().view(
        1, 3, 1, 1)
    for _ in range(repeats):
        y = deform_conv2d(y, offset, weight, padding=1)
        z = (y - y.mean((2, 3), keepdim=True)) / (y.var((2, 3), keepdim=True, unbiased=False)
                                                  + 1e-5).sqrt()
        y = torch.tanh(gamma * z + beta)
    torch.testing.assert_close(out, (1 + y) / 2)


@pytest.mark.parametrize("k,size", [(3, (9, 13)), (5, (6, 6)), (3, (1, 4))])
def test_the_grid_sample_convolution_is_deform_conv2d(k, size):
    x = _rand(3, 3, *size, seed=4, dtype=torch.float64)
    weight = torch.randn(3, 3, k, k, generator=torch.Generator().manual_seed(5)).double()
    offset = 1.5 * torch.randn(1, 2 * k * k, *size,
                               generator=torch.Generator().manual_seed(6)).double()
    expected = deform_conv2d(x, offset.expand(3, -1, -1, -1), weight, padding=k // 2)
    torch.testing.assert_close(_deform_conv(x, _sampling_grid(offset, k), weight), expected)


# ---------------------------------------------------------------- variants
@pytest.mark.parametrize("spec,name", [
    ("prorandconv", "prorandconv"),
    ("ProRandConv:L=5,k=5,p=1,deform=0", "prorandconv:L=5,k=5,p=1.0,deform=0"),
    ("neurn+randconv", "neurn+randconv"),
    ("randconv+neurn", "neurn+randconv"),
    (" RandConv:p=1 + NeuRN:kernel_size=5 ", "neurn:k=5+randconv:p=1.0"),
    ("sobel+prorandconv:L=3", "sobel+prorandconv:L=3"),
    ("neurn:std=0+prorandconv", "neurn:std=0+prorandconv"),
    ("lcn:eps=1e+0+randconv", "lcn:eps=1.0+randconv"),  # a '+' inside a number
])
def test_canonical_names_round_trip(spec, name):
    variant = parse_variant(spec)
    assert variant.name == name and parse_variant(name) == variant


def test_a_combination_is_its_front_end_with_an_augmentation():
    v = parse_variant("prorandconv:L=3,p=1+neurn:k=5,std=0")
    assert (v.kind, v.options, v.standardise, v.kernel_size) == ("neurn", {"kernel_size": 5},
                                                                 False, 5)
    assert v.augmentation.kind == "prorandconv"
    assert v.augmentation.options == {"max_repeats": 3, "p": 1.0}
    assert Run("convnet", v, 0).key == "convnet__neurn-k-5-std-0+prorandconv-L-3-p-1.0__seed0"
    assert parse_variant("prorandconv").augmentation is None
    model, _ = build_model("convnet", variant="sobel+prorandconv:L=2")
    x = _rand(2, 3, 32, 32)
    mean, std = FRONT_STATS["sobel"]
    assert isinstance(model.front, Sobel)
    torch.testing.assert_close(model.standardize(x), (x - mean) / std)
    aug = build_augmentation("sobel+prorandconv:L=2", generator=torch.Generator())
    assert isinstance(aug, ProRandConv) and aug.max_repeats == 2
    assert build_augmentation("sobel", generator=torch.Generator()) is None


def test_two_spellings_of_one_combination_are_one_variant():
    specs = ["neurn+randconv", "randconv:p=0.5+neurn:k=3"]
    with pytest.raises(ValueError, match="are one variant"):
        refuse_duplicates(specs, [parse_variant(s) for s in specs])
    refuse_duplicates(["neurn+randconv", "neurn+prorandconv"],
                      [parse_variant("neurn+randconv"), parse_variant("neurn+prorandconv")])


@pytest.mark.parametrize("spec,match", [
    ("neurn+sobel", "has two front ends; combine one front end .* with one augmentation"),
    ("randconv+prorandconv", "has two augmentations; combine"),
    ("neurn+randconv+prorandconv", "has 3 parts; combine"),
    ("baseline+randconv", "the baseline .* combines with nothing; write 'randconv'$"),
    ("baseline:std=0+randconv:p=1", "write 'randconv:p=1,std=0'$"),
    ("neurn+randconv:std=0", "std sets the front end's .* 'neurn:std=0\\+randconv'"),
    ("neurn+canny", "unknown variant 'canny' in 'neurn\\+canny'"),
    ("neurn+randconv:p=2", r"must lie in \[0, 1\]"),
    ("prorandconv:L=0", "integer >= 1.*prorandconv:L=10"),
    ("prorandconv:L=1.5", "L='1.5' is not an integer"),
    ("prorandconv:k=4", "odd positive.*prorandconv:k=3"),
    ("prorandconv:p=-1", r"must lie in \[0, 1\].*prorandconv:p=0.5"),
    ("prorandconv:deform=2", "is not 0 or 1"),
    ("prorandconv:mix=1", r"bad option 'mix=1'.*\['L', 'k', 'p', 'deform', 'gate', 'std'\]"),
])
def test_bad_variants_are_one_line_naming_the_fix(spec, match):
    with pytest.raises(ValueError, match=match) as error:
        parse_variant(spec)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- in training
class _Recorder(nn.Module):
    """A backbone that keeps what reached it."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 10)

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize("spec,front,stats", [
    ("sobel+randconv:k=3,p=1", Sobel(), "sobel"),
    ("randconv:k=3,p=1+neurn", NeuRN(), "neurn"),
])
def test_training_augments_the_raw_image_then_runs_the_front_end(spec, front, stats):
    model, _ = build_model("convnet", variant=spec)
    model.backbone = _Recorder()
    aug = build_augmentation(spec, generator=torch.Generator().manual_seed(7))
    images = (255 * _rand(4, 3, 32, 32)).to(torch.uint8)
    batch = [(images, torch.arange(4))]
    engine.train_one_epoch(model, batch, torch.optim.SGD(model.parameters(), lr=0.0),
                           device="cpu", augment=aug)
    x = images.float() / 255
    by_hand = RandConv((3,), p=1.0, generator=torch.Generator().manual_seed(7))(x)
    mean, std = FRONT_STATS[stats]
    torch.testing.assert_close(model.backbone.seen, (front(by_hand) - mean) / std)
    other_order = RandConv((3,), p=1.0, generator=torch.Generator().manual_seed(7))(front(x))
    assert not torch.allclose(model.backbone.seen, (other_order - mean) / std)


def test_a_combined_prorandconv_study_resumes_bit_identically(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    spec = ["--variants", "neurn+prorandconv:p=1"]  # every batch augmented
    assert main(run_args(tmp_path / "ref", cache, *spec)) == 0
    run = "runs/test_resnet__neurn+prorandconv-p-1.0__seed0"
    reference = read_run(tmp_path / "ref" / run / "result.json")

    real = train_module.train_one_epoch
    calls = ctrl_c_at_epoch(monkeypatch)
    assert main(run_args(tmp_path / "s", cache, *spec)) == 130
    augment = calls[0]["augment"]
    assert isinstance(augment, ProRandConv) and augment.p == 1.0
    checkpoint = torch.load(tmp_path / "s" / run / "checkpoint.pt", weights_only=True)
    assert "augment" in checkpoint["rng"]
    monkeypatch.setattr(train_module, "train_one_epoch", real)
    assert main(run_args(tmp_path / "s", cache, *spec)) == 0
    resumed = read_run(tmp_path / "s" / run / "result.json")
    untimed = ("images_per_second", "seconds")
    assert ([{k: v for k, v in h.items() if k not in untimed} for h in resumed["history"]] ==
            [{k: v for k, v in h.items() if k not in untimed} for h in reference["history"]])
    assert resumed["metrics"] == reference["metrics"]
    assert ((tmp_path / "s" / "results.csv").read_text() ==
            (tmp_path / "ref" / "results.csv").read_text())
