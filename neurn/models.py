"""Build a digits classifier: a backbone (timm or built-in) behind a variant's input pipeline.

``build_model("resnet18", variant="neurn:k=5")`` returns a :class:`DigitClassifier`
(the backbone plus its input pipeline) and a :class:`ModelPlan` that says how the
architecture was adapted to 32 x 32 input. Implementation choices:

* Backbones: the built-in models of :data:`BUILTIN_MODELS` (``convnet``, the digits CNN
  of ADA / M-ADA / RandConv, see :mod:`neurn.convnet`) or
  ``timm.create_model(name, pretrained=False, num_classes=10)``; never weights. A
  built-in name wins over timm's; both go through the same fitting below.
* Models whose constructor takes ``img_size`` (ViT, DeiT, Mixer, ...) are built for
  32 px. When the native patch would leave a token grid smaller than 4 x 4 (a
  16 px patch at 32 px gives 2 x 2), ``patch_size`` is lowered to ``img_size // 4``
  (8 px, a 4 x 4 grid of 16 tokens); the plan records it.
* Every other model is tried at 32 px with a forward pass on the meta device (no
  memory, no weights). If that fails, the image is resized up (bilinear) to the
  smallest size in :data:`RESIZE_CANDIDATES` that works, and the plan says so.
  VGG works at 32 px: timm's pre-logits block tiles the 1 x 1 feature map to 7 x 7
  before its 7 x 7 convolution (so it acts as a 1 x 1 conv with the full parameter
  count; VGG-16 keeps its 134 M parameters and is slow on CPU).
* Variants (:func:`parse_variant`: ``"name"`` or ``"name:key=value,key=value"``). Every
  front end gets the raw image in [0, 1] (N, 3, 32, 32) and runs before any resize, so
  its ``k`` means what it means at 28-32 px. What reaches the backbone is then
  standardised with *fixed* constants: the mean / std of that input over the source's
  train split (data seed 0), measured once and written below (:data:`INPUT_STATS`; a
  test recomputes them). They are constants, never batch statistics, so every sample
  is still treated on its own. NeuRN's and Sobel's maps lie in [0, 1] but are mostly 0
  (NeuRN: mean 0.18, std 0.30). Fed raw, ViT-Tiny with NeuRN reached 36% source
  validation after 300 steps; standardised, 68%, beside the baseline's 66% (same seed
  and recipe; ``benchmarks/bench_input_scale.py``): raw, the backbone's input had a
  third of the scale that timm's initialisations and our learning rates assume:
  - ``baseline``: pixels -> standardise -> resize if planned -> backbone.
  - ``neurn`` (options ``k``, ``per``, ``eps``, ``padding``; :mod:`neurn.layer`): NeuRN ->
    standardise (the k = 3 map's statistics, for every k) -> resize -> backbone.
  - ``gray`` (:class:`~neurn.fronts.Gray`): luminance -> standardise as pixels -> resize
    -> backbone; on grey digits it equals the baseline's input (to rounding).
  - ``sobel`` (:class:`~neurn.fronts.Sobel`): gradient magnitude in [0, 1] ->
    standardise -> resize -> backbone.
  - ``lcn`` (options ``k`` = 9, ``eps`` = 0.05; :class:`~neurn.fronts.LCN`): local contrast
    normalisation, already zero-mean and about unit-variance -> resize -> backbone.
  - ``randconv`` (options ``p`` = 0.5, ``k`` = 1/3/5/7 (odd sizes joined by ``/``),
    ``mix`` = 0, ``clamp`` = 0; :mod:`neurn.randconv`): the baseline's pipeline, trained on
    random convolutions of its batches; :func:`build_augmentation` makes the
    augmentation, which only the training loop applies, so evaluation sees clean images.
  Every kind but ``lcn`` also takes ``std`` (default 1); ``std=0`` feeds the backbone
  the front end's output raw, as the first release did (``neurn:std=0`` is the
  ablation in ``benchmarks/bench_input_scale.py``). Flags take ``0`` / ``1`` (or
  ``true`` / ``false``). ``kernel_size`` is accepted for ``k``.
"""
import difflib
import inspect
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .convnet import ConvNet
from .data import DIGITS_MEAN, DIGITS_STD
from .fronts import LCN, Gray, Sobel
from .layer import NeuRN
from .randconv import RandConv

__all__ = ["BUILTIN_MODELS", "INPUT_STATS", "DigitClassifier", "ModelPlan", "Variant",
           "build_augmentation", "build_model", "check_model_name", "check_variant", "measure_input_stats",
           "parse_variant",
           "plan_model", "RESIZE_CANDIDATES"]

RESIZE_CANDIDATES = (32, 48, 64, 96, 128, 160, 224, 299)

# what the backbone sees -> (mean, std) over the source train split (4,000 MNIST digits,
# data seed 0), the same for every channel; tests/test_neurn_data.py recomputes them
INPUT_STATS = {"pixels": (DIGITS_MEAN[0], DIGITS_STD[0]), "neurn": (0.1792, 0.2971),
               "sobel": (0.1380, 0.2453)}
MIN_TOKEN_GRID = 4

# name -> builder(num_classes=...) returning an nn.Module; plan_model fits it to the
# input like any timm model.
BUILTIN_MODELS: Dict[str, Callable[..., nn.Module]] = {"convnet": ConvNet}


class _Option(NamedTuple):
    keyword: str  # the front end's / augmentation's constructor argument
    parse: Callable[[str], object]
    what: str  # "<value> is not <what>"
    show: Callable[[object], str] = str  # the value in the canonical variant name


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true"):
        return True
    if text.lower() in ("0", "false"):
        return False
    raise ValueError(text)


def _flag_option(keyword: str) -> _Option:
    return _Option(keyword, _flag, "0 or 1", lambda flag: str(int(flag)))


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_KERNEL_SIZE = _Option("kernel_size", int, "an integer")
_EPS = _Option("eps", _finite, "a finite number")
_STD = _flag_option("standardise")  # handled by build_model, not passed to the front end
_KERNEL_SIZES = _Option("kernel_sizes", lambda text: tuple(int(k) for k in text.split("/")),
                        "odd sizes joined by '/', e.g. 1/3/5/7",
                        lambda sizes: "/".join(map(str, sizes)))


@dataclass(frozen=True)
class _Kind:
    """A variant kind: its options, and what it adds to the baseline's pipeline."""

    options: Dict[str, _Option] = field(default_factory=dict)
    front: Optional[Callable[..., nn.Module]] = None  # runs on the raw [0, 1] image
    augment: Optional[Callable[..., nn.Module]] = None  # training batches only
    stats: Optional[str] = None  # key of INPUT_STATS standardising the backbone's input


_KINDS: Dict[str, _Kind] = {
    "baseline": _Kind(stats="pixels"),
    "neurn": _Kind({"k": _KERNEL_SIZE, "per": _Option("per", str, "a string"), "eps": _EPS,
                    "padding": _Option("padding", str, "a string")}, front=NeuRN,
                   stats="neurn"),
    "gray": _Kind(front=Gray, stats="pixels"),
    "sobel": _Kind(front=Sobel, stats="sobel"),
    "lcn": _Kind({"k": _KERNEL_SIZE, "eps": _EPS}, front=LCN),
    "randconv": _Kind({"p": _Option("p", _finite, "a finite number"), "k": _KERNEL_SIZES,
                       "mix": _flag_option("mix"), "clamp": _flag_option("clamp")},
                      augment=RandConv, stats="pixels"),
}
_ALIASES = {"kernel_size": "k"}


@dataclass(frozen=True)
class Variant:
    """A parsed variant: its canonical ``name``, its ``kind`` (a key of the variant table,
    ``"baseline"``, ``"neurn"``, ``"gray"``, ``"sobel"``, ``"lcn"``, ``"randconv"``) and the
    keyword arguments of its front end or augmentation (``options``)."""

    name: str
    kind: str
    options: Dict[str, object] = field(default_factory=dict)
    standardise: bool = True  # ``std=0``: the backbone gets the front end's output raw

    @property
    def neurn_kwargs(self) -> Dict[str, object]:
        """The NeuRN layer's keyword arguments (empty unless ``kind == "neurn"``)."""
        return dict(self.options) if self.kind == "neurn" else {}

    @property
    def kernel_size(self) -> Optional[int]:
        """NeuRN's k (the results' ``kernel_size`` column); None for other kinds."""
        return self.options.get("kernel_size", 3) if self.kind == "neurn" else None

    @property
    def effective(self) -> tuple:
        """What the variant does: its kind, every option of its front end or augmentation
        with the defaults filled in, and ``std``. Two spellings of one variant
        (``neurn`` and ``neurn:k=3``) have the same; a study refuses to train both."""
        kind = _KINDS[self.kind]
        build = kind.front or kind.augment
        options = {}
        if build is not None:
            bound = inspect.signature(build).bind_partial(**self.options)
            bound.apply_defaults()
            options = bound.arguments
        return (self.kind, tuple(sorted((k, repr(v)) for k, v in options.items())),
                self.standardise)


def _option_table(kind: _Kind) -> Dict[str, _Option]:
    """The options a kind accepts: its own, plus ``std`` where its input is standardised."""
    return {**kind.options, "std": _STD} if kind.stats is not None else dict(kind.options)


def _variant_help() -> str:
    with_options = "; ".join(f"{name}: {', '.join(_option_table(kind))}"
                             for name, kind in _KINDS.items() if _option_table(kind))
    return (f"use one of {', '.join(map(repr, _KINDS))}, with options as "
            f"'name:key=value,key=value' ({with_options}), e.g. 'neurn:k=5', 'lcn:k=7', "
            f"'randconv:k=1/3/5/7,p=0.5,mix=1'")


def parse_variant(spec: str) -> Variant:
    """Parse ``"baseline"``, ``"neurn:k=5,per=channel"``, ``"lcn:k=7"``,
    ``"randconv:k=3/5,p=1,mix=1"``, ... (see the module docstring for every kind and
    option). The front end / augmentation is built once here, so a bad value fails with
    its own message before any training."""
    text = str(spec).strip()
    name, _, options = text.partition(":")
    name = name.strip().lower()
    if name not in _KINDS:
        raise ValueError(f"unknown variant {spec!r}; {_variant_help()}")
    kind = _KINDS[name]
    table = _option_table(kind)
    if options.strip() and not table:
        raise ValueError(f"variant {spec!r}: {name!r} takes no options; write {name!r}")
    kwargs: Dict[str, object] = {}
    shown: Dict[str, str] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = item.partition("=")
        key = _ALIASES.get(key.strip(), key.strip())
        if not eq or key not in table:
            raise ValueError(f"variant {spec!r}: bad option {item!r}; write key=value with "
                             f"key in {list(table)}")
        option = table[key]
        try:
            kwargs[option.keyword] = option.parse(value.strip())
        except ValueError:
            raise ValueError(f"variant {spec!r}: {key}={value.strip()!r} is not "
                             f"{option.what}") from None
        shown[key] = option.show(kwargs[option.keyword])
    standardise = kwargs.pop(_STD.keyword, True)
    build = kind.front or kind.augment
    if build is not None:
        try:
            build(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"variant {spec!r}: {exc}") from None
    canonical = name + ":" + ",".join(f"{k}={v}" for k, v in shown.items()) if shown else name
    return Variant(canonical, name, kwargs, standardise)


def check_variant(variant, img_size: int) -> None:
    """``ValueError`` when the variant's front end cannot take ``img_size`` images (NeuRN's
    and LCN's reflect padding needs a side > k // 2): found on one blank image, before a
    study trains anything."""
    variant = _as_variant(variant)
    front = _KINDS[variant.kind].front
    if front is None:
        return
    try:
        with torch.no_grad():
            front(**variant.options)(torch.zeros(1, 3, img_size, img_size))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"variant {variant.name!r} cannot run on {img_size} px images: "
                         f"{exc}") from None


@dataclass(frozen=True)
class ModelPlan:
    """How an architecture is fitted to ``img_size`` input (recorded in results)."""

    name: str
    img_size: int  # size of the dataset's images
    input_size: int  # size the backbone sees
    create_kwargs: Dict[str, object]
    adaptation: str  # human-readable: "native 32 px", "img_size=32, patch_size=8", ...

    def to_dict(self) -> dict:
        return asdict(self)


def check_model_name(name: str) -> None:
    """Raise ``ValueError`` for a name that is neither built-in nor timm's, suggesting
    close names."""
    import timm

    if name in BUILTIN_MODELS or timm.is_model(name):
        return
    close = difflib.get_close_matches(name, [*BUILTIN_MODELS, *timm.list_models()], n=3,
                                      cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown timm model {name!r}{hint} (see timm.list_models(); built-in "
                     f"models: {', '.join(BUILTIN_MODELS)})")


def _create(name: str, num_classes: int, **kwargs) -> nn.Module:
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name](num_classes=num_classes, **kwargs)
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


def _meta_forward_ok(name: str, kwargs: dict, size: int, num_classes: int) -> bool:
    try:
        with torch.device("meta"):
            model = _create(name, num_classes, **kwargs)
            model.eval()
            out = model(torch.empty(2, 3, size, size))
        return tuple(out.shape) == (2, num_classes)
    except Exception:  # noqa: BLE001 - any failure means "not at this size"
        return False


def _takes_img_size(name: str) -> bool:
    try:
        with torch.device("meta"):
            _create(name, 10, img_size=32)
        return True
    except TypeError:
        return False
    except Exception:  # noqa: BLE001 - takes img_size but fails at 32; decided below
        return True


def _native_patch(name: str) -> Optional[int]:
    with torch.device("meta"):
        model = _create(name, 10)
    embed = getattr(model, "patch_embed", None) or getattr(model, "stem", None)  # Mixer: stem
    patch = getattr(embed, "patch_size", None)
    if patch is None:
        match = re.search(r"patch(\d+)", name)
        return int(match.group(1)) if match else None
    return int(patch[0] if isinstance(patch, (tuple, list)) else patch)


def plan_model(name: str, *, img_size: int = 32, num_classes: int = 10) -> ModelPlan:
    """Decide how ``name`` runs on ``img_size`` images, on the meta device (cheap)."""
    check_model_name(name)
    if _takes_img_size(name):
        kwargs: Dict[str, object] = {"img_size": img_size}
        patch = _native_patch(name)
        if patch and img_size // patch < MIN_TOKEN_GRID:
            kwargs["patch_size"] = max(1, img_size // MIN_TOKEN_GRID)
        for attempt in (kwargs, {"img_size": img_size}):
            if _meta_forward_ok(name, attempt, img_size, num_classes):
                adaptation = ", ".join(f"{k}={v}" for k, v in attempt.items())
                return ModelPlan(name, img_size, img_size, dict(attempt), adaptation)
    if _meta_forward_ok(name, {}, img_size, num_classes):
        return ModelPlan(name, img_size, img_size, {}, f"native, {img_size} px input")
    for size in sorted(set(RESIZE_CANDIDATES + (_default_size(name),))):
        if size > img_size and _meta_forward_ok(name, {}, size, num_classes):
            return ModelPlan(name, img_size, size, {},
                             f"resized {img_size} -> {size} px (the model's minimum)")
    smaller = [size for size in RESIZE_CANDIDATES if size < img_size
               and _meta_forward_ok(name, {}, size, num_classes)]
    hint = (f"it runs at {smaller[0]} px: pass that image size (--img-size {smaller[0]})"
            if smaller else "pick another architecture")
    raise ValueError(f"{name!r} runs at none of {img_size} px or the larger sizes "
                     f"{RESIZE_CANDIDATES}; {hint}")


def _default_size(name: str) -> int:
    import timm

    cfg = timm.models.get_pretrained_cfg(name.split(".")[0])
    size = (cfg.input_size if cfg is not None else None) or (3, 224, 224)
    return int(size[-1])


class DigitClassifier(nn.Module):
    """Input pipeline + backbone: ``backbone(resize(standardise(front(x))))``.

    ``x`` is a float batch in [0, 1], ``(N, 3, img_size, img_size)``. Children: ``front``
    (the variant's front end, e.g. :class:`NeuRN`, or ``None``) and ``backbone``.
    ``stats`` is the fixed ``(mean, std)`` of ``(x - mean) / std`` after the front end,
    or None for none; see the module docstring for which variant does what.
    """

    def __init__(self, backbone: nn.Module, *, front: Optional[nn.Module] = None,
                 stats: Optional[Tuple[float, float]],
                 input_size: Optional[int] = None) -> None:
        super().__init__()
        self.front = front
        self.backbone = backbone
        self.stats = None if stats is None else (float(stats[0]), float(stats[1]))
        self.input_size = input_size

    @property
    def neurn(self) -> Optional[NeuRN]:
        """The NeuRN front end, or None for every other variant."""
        return self.front if isinstance(self.front, NeuRN) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.front is not None:
            x = self.front(x)
        if self.stats is not None:
            x = (x - self.stats[0]) / self.stats[1]
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        return self.backbone(x)


def measure_input_stats(images: torch.Tensor) -> Dict[str, Tuple[float, float]]:
    """:data:`INPUT_STATS` for other data: the (mean, std) of what each standardised kind
    hands the backbone, over ``images`` (float [0, 1], N x 3 x H x W, source-train
    images only), each front end with its default options."""
    stats = {}
    with torch.no_grad():
        for key, front in (("pixels", None), ("neurn", NeuRN()), ("sobel", Sobel())):
            out = images if front is None else front(images)
            stats[key] = (round(float(out.mean()), 4), round(float(out.std()), 4))
    return stats


def _as_variant(variant) -> Variant:
    return variant if isinstance(variant, Variant) else parse_variant(variant)


def build_model(name: str, *, variant="baseline", num_classes: int = 10, img_size: int = 32,
                plan: Optional[ModelPlan] = None,
                input_stats: Optional[Dict[str, Tuple[float, float]]] = None
                ) -> Tuple[DigitClassifier, ModelPlan]:
    """A freshly initialised (``pretrained=False``) model for ``img_size`` digits.

    Args:
        name: a built-in (:data:`BUILTIN_MODELS`, e.g. ``"convnet"``) or timm architecture.
        variant: ``"baseline"``, ``"neurn:k=5"``, ``"sobel"``, ... or a :class:`Variant`.
        num_classes: classifier outputs (10 digits).
        img_size: the images' size (32 for every digit domain).
        plan: a :class:`ModelPlan` from :func:`plan_model` (computed when omitted).
        input_stats: the standardisation constants (default :data:`INPUT_STATS`, the
            digits'; :func:`measure_input_stats` gives them for other data).

    Returns ``(model, plan)``. Weights follow torch's global RNG: seed it first. A
    training-time augmentation (``randconv``) is not part of the model: see
    :func:`build_augmentation`.
    """
    variant = _as_variant(variant)
    kind = _KINDS[variant.kind]
    plan = plan if plan is not None else plan_model(name, img_size=img_size,
                                                    num_classes=num_classes)
    backbone = _create(name, num_classes, **plan.create_kwargs)
    front = kind.front(**variant.options) if kind.front is not None else None
    resize = plan.input_size if plan.input_size != img_size else None
    table = INPUT_STATS if input_stats is None else input_stats
    stats = table[kind.stats] if kind.stats is not None and variant.standardise else None
    return DigitClassifier(backbone, front=front, stats=stats, input_size=resize), plan


def build_augmentation(variant, *, generator: torch.Generator,
                       pixels: Optional[Tuple[float, float]] = None) -> Optional[nn.Module]:
    """The variant's training-time augmentation of float [0, 1] batches (a
    :class:`~neurn.randconv.RandConv` for ``randconv``, whitening with the ``pixels``
    (mean, std), default the digits'), drawing from ``generator``; None for variants
    without one."""
    variant = _as_variant(variant)
    augment = _KINDS[variant.kind].augment
    if augment is None:
        return None
    whiten = {} if pixels is None else {"mean": (pixels[0],) * 3, "std": (pixels[1],) * 3}
    return augment(generator=generator, **whiten, **variant.options)


def uses_convolutions(model: nn.Module) -> bool:
    """True when channels_last can help (the model has 2-D convolutions beyond a stem)."""
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    return convs > 1
