"""Tests for the comparison variants of the NeuRN study: the fixed front ends (gray,
sobel, lcn), RandConv, the built-in ``convnet`` backbone and their use in a study."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurn.fronts import (FRONT_STATS, LCN, SOBEL_MAX, FrontEnd, Gray, NeuRN, RandConv, Sobel,
                          with_front)
from neurn.models import (INPUT_STATS, build_augmentation, build_model, check_model_name,
                          parse_variant, plan_model)
from neurn.models.convnet import ConvNet
from neurn.study import Study
from neurn.study import train as train_module

VARIANTS = ["baseline", "neurn", "gray", "sobel", "lcn", "lcn:k=5,eps=0.1", "randconv",
            "randconv:k=3/5,p=1,mix=1,clamp=1"]
FRONTS = [Gray(), Sobel(), LCN(), LCN(kernel_size=3, eps=1e-3)]


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _vertical_step(h=12, w=12, at=6):
    x = torch.zeros(1, 3, h, w, dtype=torch.float64)
    x[..., at:] = 1.0
    return x


# ---------------------------------------------------------------- gray
def test_gray_is_bt601_luminance_on_three_channels():
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    torch.testing.assert_close(Gray()(red), torch.full((1, 3, 4, 4), 0.299))
    x = _rand(2, 3, 8, 8, dtype=torch.float64)
    expected = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    torch.testing.assert_close(Gray()(x), expected.expand(-1, 3, -1, -1))


# ---------------------------------------------------------------- sobel
def _sobel_reference(x):
    """conv2d with the two explicit Sobel kernels on the reflect-padded luminance."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype)
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)
    lum = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    g = F.conv2d(F.pad(lum, [1, 1, 1, 1], mode="reflect"), kernels)
    return (g.square().sum(1, keepdim=True).sqrt() / math.sqrt(20)).expand(-1, 3, -1, -1)


def test_sobel_matches_explicit_kernels():
    x = _rand(3, 3, 16, 20, dtype=torch.float64)
    torch.testing.assert_close(Sobel()(x), _sobel_reference(x))


def test_sobel_of_a_constant_is_zero_and_a_step_has_the_known_magnitude():
    assert Sobel()(torch.full((1, 3, 8, 8), 0.7)).abs().max() == 0
    out = Sobel()(_vertical_step(at=6))[0, 0]
    expected = torch.zeros(12, 12, dtype=torch.float64)
    expected[:, 5:7] = 4 / math.sqrt(20)  # Gx = 1 + 2 + 1 on both sides of the step
    torch.testing.assert_close(out, expected)


def test_sobel_constant_is_the_largest_magnitude_on_0_1_images():
    # every binary 3 x 3 patch (the maximum of a convex function on [0, 1]^9 is at a
    # vertex): the centre's magnitude reaches exactly SOBEL_MAX, i.e. 1 after scaling
    patches = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9)), dtype=torch.float64)
    x = patches.view(-1, 1, 3, 3).expand(-1, 3, -1, -1)
    centre = Sobel()(x)[:, 0, 1, 1]
    assert SOBEL_MAX == math.sqrt(20)
    assert centre.max().item() == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- lcn
def _lcn_reference(x, k, eps):
    """Unfolded k x k x C windows: two-pass mean and population std per window."""
    n, c, h, w = x.shape
    patches = F.unfold(F.pad(x, [k // 2] * 4, mode="reflect"), k)  # (N, C k k, H W)
    mean = patches.mean(1).view(n, 1, h, w)
    std = (patches - patches.mean(1, keepdim=True)).square().mean(1).sqrt().view(n, 1, h, w)
    return (x - mean) / std.clamp(min=eps)


@pytest.mark.parametrize("k,eps", [(3, 1e-3), (5, 0.05), (9, 0.05)])
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 1, 12, 20)])
def test_lcn_matches_unfold_reference(k, eps, shape):
    x = _rand(*shape, seed=k, dtype=torch.float64)
    torch.testing.assert_close(LCN(k, eps)(x), _lcn_reference(x, k, eps))
    x32 = x.float()  # float32: the shift by the image mean keeps cancellation small
    torch.testing.assert_close(LCN(k, eps)(x32), _lcn_reference(x, k, eps).float(),
                               rtol=1e-4, atol=1e-4)


def test_lcn_of_a_constant_is_zero_and_noise_is_not_amplified():
    assert LCN()(torch.full((1, 3, 16, 16), 0.4)).abs().max() == 0
    noise = 0.5 + 0.004 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert LCN()(noise).abs().max() < 0.5  # below the floor: divided by eps, not by std
    # beside a 0 -> 1 step, 4 of the window's 9 columns are 1 (fraction f = 4/9): the
    # pixel is (0 - f) / sqrt(f (1 - f)) = -sqrt(4/5), its right neighbour +sqrt(4/5)
    edge = LCN()(_vertical_step(16, 16, at=8))[0, :, :, 7:9]
    root = math.sqrt(4 / 5)
    torch.testing.assert_close(edge, torch.tensor([-root, root]).double().expand(3, 16, 2))


# ---------------------------------------------------------------- every front end
@pytest.mark.parametrize("front", FRONTS, ids=repr)
def test_front_ends_are_batch_independent(front):
    x = _rand(4, 3, 32, 32, seed=3)
    alone = front(x[:1])
    for mates in (x[1:], torch.zeros(3, 3, 32, 32), 1000 * x[1:]):
        torch.testing.assert_close(front(torch.cat([x[:1], mates]))[:1], alone,
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("front", FRONTS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_front_ends_keep_shape_and_dtype_and_run_on_meta(front, dtype):
    x = _rand(2, 3, 20, 24).to(dtype)
    out = front(x)
    assert out.shape == x.shape and out.dtype == dtype and torch.isfinite(out).all()
    assert front(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 3, 32, 32)
    assert list(front.parameters()) == [] and list(front.buffers()) == []


@pytest.mark.parametrize("front", [Sobel(), LCN()], ids=repr)
def test_front_ends_have_finite_gradients_on_flat_images(front):
    x = torch.full((1, 3, 12, 12), 0.3, requires_grad=True)
    front(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_front_end_errors_name_the_fix():
    with pytest.raises(ValueError, match="RGB"):
        Gray()(torch.rand(1, 1, 8, 8))
    with pytest.raises(TypeError, match="255"):
        Sobel()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="unsqueeze"):
        LCN()(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="H and W > 4"):
        LCN(9)(torch.rand(1, 3, 4, 16))
    for k in (4, 1):
        with pytest.raises(ValueError, match="odd and >= 3"):
            LCN(k)


def test_with_front_puts_any_front_end_first():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))
    wrapped = with_front(net, Sobel())
    x = _rand(2, 3, 16, 16)
    mean, std = FRONT_STATS["sobel"]
    torch.testing.assert_close(wrapped(x), net((Sobel()(x) - mean) / std))
    assert isinstance(wrapped, FrontEnd) and wrapped.model is net
    with pytest.raises(ValueError, match="already has a Sobel front end"):
        with_front(wrapped, LCN())


# ---------------------------------------------------------------- randconv
def test_randconv_is_the_identity_in_eval_mode():
    aug = RandConv(p=1.0, generator=torch.Generator().manual_seed(0)).eval()
    x = _rand(2, 3, 16, 16)
    assert aug(x) is x


def test_randconv_is_deterministic_for_a_seed():
    x = _rand(4, 3, 16, 16)

    def outputs(seed):
        aug = RandConv(p=0.5, mix=True, generator=torch.Generator().manual_seed(seed))
        return [aug(x) for _ in range(6)]

    a, b, other = outputs(1), outputs(1), outputs(2)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=0, atol=0)
    assert any(not torch.equal(u, v) for u, v in zip(a, other))
    assert any(torch.equal(u, x) for u in a) and any(not torch.equal(u, x) for u in a)


def test_randconv_draws_whitened_he_kernels_in_the_documented_order():
    mean, std = (0.2, 0.3, 0.4), (0.5, 0.25, 0.2)
    x = _rand(2, 3, 12, 12, dtype=torch.float64)
    for mix in (False, True):
        aug = RandConv((3, 5, 7), p=1.0, mix=mix, mean=mean, std=std,
                       generator=torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)  # replay: p draw, size, weights, alpha
        torch.rand((), generator=g)
        k = (3, 5, 7)[int(torch.randint(3, (), generator=g))]
        weight = torch.randn(3, 3, k, k, generator=g).double() / math.sqrt(3 * k * k)
        m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
        s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
        z = (x - m) / s
        out = F.conv2d(F.pad(z, [k // 2] * 4), weight)  # zero padding in whitened units
        if mix:
            alpha = float(torch.rand((), generator=g))
            out = alpha * out + (1 - alpha) * z
        torch.testing.assert_close(aug(x), out * s + m)


def test_randconv_p_and_clamp():
    x = _rand(2, 3, 12, 12)
    never = RandConv(p=0.0, generator=torch.Generator().manual_seed(0))
    assert all(never(x) is x for _ in range(5))
    clamped = RandConv(p=1.0, clamp=True, generator=torch.Generator().manual_seed(0))
    outs = [clamped(x) for _ in range(5)]
    assert all(o.min() >= 0 and o.max() <= 1 and not torch.equal(o, x) for o in outs)


# ---------------------------------------------------------------- variants
def test_variant_names_are_canonical_and_round_trip():
    cases = {"neurn:kernel_size=5": "neurn:k=5", "LCN:k=7": "lcn:k=7",
             "randconv:k=1/3, mix=true,p=1": "randconv:k=1/3,mix=1,p=1.0", "sobel": "sobel"}
    for spec, name in cases.items():
        variant = parse_variant(spec)
        assert variant.name == name and parse_variant(name) == variant
    v = parse_variant("randconv:k=3/5,p=0.25,clamp=1")
    assert v.options == {"kernel_sizes": (3, 5), "p": 0.25, "clamp": True}
    assert v.kernel_size is None and v.neurn_kwargs == {}
    assert parse_variant("lcn:k=5").kernel_size is None  # the results' column is NeuRN's k
    raw = parse_variant("neurn:k=5,std=0")
    assert raw.name == "neurn:k=5,std=0" and raw.options == {"kernel_size": 5}
    assert not raw.standardise and parse_variant("neurn:k=5").standardise


def test_std_switches_the_fixed_standardisation_only():
    x = _rand(2, 3, 32, 32)
    models = {}
    for spec in ("neurn", "neurn:std=0"):
        torch.manual_seed(0)
        models[spec], _ = build_model("convnet", variant=spec)
    mean, std = INPUT_STATS["neurn"]
    assert models["neurn:std=0"].standardize is None
    with torch.no_grad():
        raw = models["neurn:std=0"].backbone
        torch.testing.assert_close(models["neurn:std=0"](x), raw(NeuRN()(x)))
        torch.testing.assert_close(models["neurn"](x), raw((NeuRN()(x) - mean) / std))


@pytest.mark.parametrize("spec,match", [
    ("canny", "unknown variant 'canny'.*'gray', 'sobel', 'lcn', 'randconv'"),
    ("randconv:p=1.5", r"must lie in \[0, 1\].*randconv:p=0.5"),
    ("randconv:p=-0.1", r"must lie in \[0, 1\]"),
    ("randconv:k=2", "odd positive.*randconv:k=1/3/5/7"),
    ("randconv:k=3/4", "odd positive"),
    ("randconv:k=-1", "odd positive"),
    ("randconv:k=1-7", "is not odd sizes joined by '/'"),
    ("randconv:mix=maybe", "is not 0 or 1"),
    ("lcn:k=4", "odd and >= 3"),
    ("lcn:k=1", "odd and >= 3"),
    ("lcn:per=image", r"bad option 'per=image'.*\['k', 'eps'\]"),
    ("sobel:k=5", r"bad option 'k=5'.*\['std'\]"),
    ("gray:std=2", "std='2' is not 0 or 1"),
    ("lcn:std=0", r"bad option 'std=0'"),  # LCN's output is standardised by design
])
def test_bad_variants_get_one_clear_error(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_variant(spec)


# ---------------------------------------------------------------- convnet and build_model
def test_convnet_shape_and_parameter_count():
    model = ConvNet(num_classes=10)
    assert model(_rand(2, 3, 32, 32)).shape == (2, 10)
    convs = (3 * 64 * 25 + 64) + (64 * 128 * 25 + 128)
    fcs = (128 * 5 * 5 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == convs + fcs == 4_547_466


def test_convnet_is_a_model_name_like_timm_ones(tmp_path):
    from archalign import Shortlist

    check_model_name("convnet")
    shortlist = Shortlist(["convnet", "test_resnet"], "medoids").save(tmp_path / "s.json")
    study = Study(str(shortlist), out_dir=tmp_path / "o", progress=False)
    assert study.models == ["convnet", "test_resnet"] and "convnet" in study.plans
    plan = plan_model("convnet")
    assert plan.input_size == 32 and plan.create_kwargs == {}
    assert plan_model("convnet", img_size=28).input_size == 32  # fixed fc size: resized
    with pytest.raises(ValueError, match="did you mean 'convnet'"):
        check_model_name("convnte")


@pytest.mark.parametrize("spec", VARIANTS)
def test_build_model_convnet_for_every_variant(spec):
    variant = parse_variant(spec)
    model, plan = build_model("convnet", variant=spec)
    assert isinstance(model.backbone, ConvNet) and plan.name == "convnet"
    assert model(_rand(2, 3, 32, 32)).shape == (2, 10)
    fronts = {"neurn": NeuRN, "gray": Gray, "sobel": Sobel, "lcn": LCN}
    assert type(model.front) is fronts.get(variant.kind, type(None))
    expected = {"baseline": "pixels", "gray": "pixels", "randconv": "pixels",
                "neurn": "neurn", "sobel": "sobel", "lcn": None}[variant.kind]
    if expected is None:
        assert model.standardize is None
    else:
        mean, std = INPUT_STATS[expected]
        x = _rand(2, 3, 32, 32)
        torch.testing.assert_close(model.standardize(x), (x - mean) / std, rtol=0, atol=0)
    assert (model.neurn is not None) == (variant.kind == "neurn")
    augment = build_augmentation(variant, generator=torch.Generator())
    assert isinstance(augment, RandConv) == (variant.kind == "randconv")


def test_gray_on_grey_digits_is_the_baseline():
    torch.manual_seed(0)
    baseline, _ = build_model("convnet")
    torch.manual_seed(0)
    gray, _ = build_model("convnet", variant="gray")
    grey = _rand(2, 1, 32, 32).expand(-1, 3, -1, -1)
    torch.testing.assert_close(gray(grey), baseline(grey))


# ---------------------------------------------------------------- the study
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neurn-variants-cache")


def convnet_study(out_dir, cache) -> Study:
    return Study(["convnet"], source="mnist", targets=["usps-gen"],
                 variants=["baseline", "randconv"], seeds=[0], steps=6, evals=3,
                 batch_size=8, lr=1e-3, device="cpu", out_dir=out_dir, cache_dir=cache,
                 eval_limit=24, train_limit=64, threads=1, progress=False,
                 keep_weights=False)


def test_convnet_study_with_randconv_finishes_and_resumes_identically(tmp_path, cache,
                                                                      monkeypatch):
    reference = convnet_study(tmp_path / "ref", cache).run()
    assert not reference.errors and len(reference.runs) == 2
    base, rand = reference.runs
    assert rand["variant"] == "randconv" and base["history"] != rand["history"]

    real = train_module.train_one_epoch
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(kwargs["augment"])
        if len(calls) == 5:  # the randconv run, before its 2nd epoch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        convnet_study(tmp_path / "s", cache).run()
    assert calls[0] is None and isinstance(calls[3], RandConv)
    checkpoint = tmp_path / "s" / "runs" / "convnet__randconv__seed0" / "checkpoint.pt"
    assert "augment" in torch.load(checkpoint, weights_only=True)["rng"]

    monkeypatch.setattr(train_module, "train_one_epoch", real)
    resumed = convnet_study(tmp_path / "s", cache).run()
    assert _numbers(resumed.runs[1]["history"]) == _numbers(rand["history"])
    assert resumed.rows == reference.rows


def _numbers(history):
    """A run's per-epoch history without its wall-clock timings."""
    return [{k: v for k, v in h.items() if k not in ("images_per_second", "seconds")}
            for h in history]
