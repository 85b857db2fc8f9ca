"""Build a timm backbone for 32 x 32 digits, with or without a NeuRN front end.

``build_model("resnet18", variant="neurn:k=5")`` returns a :class:`DigitClassifier`
(the backbone plus its input pipeline) and a :class:`ModelPlan` that says how the
architecture was adapted to 32 x 32 input. Implementation choices:

* ``timm.create_model(name, pretrained=False, num_classes=10)``, never weights.
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
* Input pipeline, in this order:
  - ``baseline``: image in [0, 1] -> normalise with ``DIGITS_MEAN`` / ``DIGITS_STD``
    (the source's statistics) -> resize if planned -> backbone.
  - ``neurn``: image in [0, 1] -> NeuRN (on the 32 px image, so ``k`` means what the
    paper means at 28-32 px) -> resize if planned -> backbone. No mean/std
    normalisation: NeuRN is invariant to affine intensity changes (normalising before
    it would change nothing but the meaning of ``eps``), and its output is already a
    per-image [0, 1] map whose statistics are not the raw pixels' ones.
"""
import difflib
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .data import DIGITS_MEAN, DIGITS_STD
from .layer import NeuRN

__all__ = ["DigitClassifier", "ModelPlan", "Variant", "build_model", "check_model_name",
           "parse_variant", "plan_model", "RESIZE_CANDIDATES"]

RESIZE_CANDIDATES = (32, 48, 64, 96, 128, 160, 224, 299)
MIN_TOKEN_GRID = 4

_VARIANT_KEYS = {"k": ("kernel_size", int), "kernel_size": ("kernel_size", int),
                 "per": ("per", str), "eps": ("eps", float), "padding": ("padding", str)}


@dataclass(frozen=True)
class Variant:
    """``baseline`` or ``neurn`` with NeuRN keyword arguments (``neurn:k=5,per=channel``)."""

    name: str
    kind: str  # "baseline" or "neurn"
    neurn_kwargs: Dict[str, object] = field(default_factory=dict)

    @property
    def kernel_size(self) -> Optional[int]:
        return self.neurn_kwargs.get("kernel_size", 3) if self.kind == "neurn" else None


def parse_variant(spec: str) -> Variant:
    """Parse ``"baseline"``, ``"neurn"`` or ``"neurn:k=5,per=channel"``; the layer's own
    checks run here so a bad value fails before any training."""
    text = str(spec).strip()
    kind, _, options = text.partition(":")
    kind = kind.strip().lower()
    if kind not in ("baseline", "neurn"):
        raise ValueError(f"unknown variant {spec!r}; use 'baseline', 'neurn' or "
                         f"'neurn:k=5' (options: k, per, eps, padding)")
    if kind == "baseline" and options:
        raise ValueError(f"variant {spec!r}: 'baseline' takes no options")
    kwargs: Dict[str, object] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key.strip() not in _VARIANT_KEYS:
            raise ValueError(f"variant {spec!r}: bad option {item!r}; write key=value with "
                             f"key in {sorted(_VARIANT_KEYS)}")
        name, cast = _VARIANT_KEYS[key.strip()]
        try:
            kwargs[name] = cast(value.strip())
        except ValueError:
            raise ValueError(f"variant {spec!r}: {key}={value!r} is not a {cast.__name__}"
                             ) from None
    if kind == "neurn":
        NeuRN(**kwargs)  # validates k, per, eps, padding
    canonical = kind if not kwargs else kind + ":" + ",".join(
        f"{'k' if k == 'kernel_size' else k}={v}" for k, v in kwargs.items())
    return Variant(canonical, kind, kwargs)


@dataclass(frozen=True)
class ModelPlan:
    """How a timm architecture is fitted to ``img_size`` input (recorded in results)."""

    name: str
    img_size: int  # size of the dataset's images
    input_size: int  # size the backbone sees
    create_kwargs: Dict[str, object]
    adaptation: str  # human-readable: "native 32 px", "img_size=32, patch_size=8", ...

    def to_dict(self) -> dict:
        return asdict(self)


def check_model_name(name: str) -> None:
    """Raise ``ValueError`` for a name timm does not know, suggesting close names."""
    import timm

    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown timm model {name!r}{hint} (see timm.list_models())")


def _meta_forward_ok(name: str, kwargs: dict, size: int, num_classes: int) -> bool:
    import timm

    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
            model.eval()
            out = model(torch.empty(2, 3, size, size))
        return tuple(out.shape) == (2, num_classes)
    except Exception:  # noqa: BLE001 - any failure means "not at this size"
        return False


def _takes_img_size(name: str) -> bool:
    import timm

    try:
        with torch.device("meta"):
            timm.create_model(name, pretrained=False, num_classes=10, img_size=32)
        return True
    except TypeError:
        return False
    except Exception:  # noqa: BLE001 - takes img_size but fails at 32; decided below
        return True


def _native_patch(name: str) -> Optional[int]:
    import timm

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, num_classes=10)
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
    raise ValueError(f"{name!r} runs at none of {img_size} px or the sizes "
                     f"{RESIZE_CANDIDATES}; pick another architecture")


def _default_size(name: str) -> int:
    import timm

    cfg = timm.models.get_pretrained_cfg(name.split(".")[0])
    size = (cfg.input_size if cfg is not None else None) or (3, 224, 224)
    return int(size[-1])


class DigitClassifier(nn.Module):
    """Input pipeline + backbone: ``backbone(resize(neurn(x) or normalise(x)))``.

    ``x`` is a float batch in [0, 1], ``(N, 3, img_size, img_size)``. Children:
    ``neurn`` (a :class:`NeuRN` or ``None``) and ``backbone`` (the timm model).
    """

    def __init__(self, backbone: nn.Module, *, neurn: Optional[NeuRN] = None,
                 mean: Tuple[float, ...] = DIGITS_MEAN, std: Tuple[float, ...] = DIGITS_STD,
                 input_size: Optional[int] = None) -> None:
        super().__init__()
        self.neurn = neurn
        self.backbone = backbone
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.neurn is not None:
            x = self.neurn(x)
        else:
            x = (x - self.mean) / self.std
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        return self.backbone(x)


def build_model(name: str, *, variant="baseline", num_classes: int = 10, img_size: int = 32,
                plan: Optional[ModelPlan] = None) -> Tuple[DigitClassifier, ModelPlan]:
    """A freshly initialised (``pretrained=False``) model for ``img_size`` digits.

    Args:
        name: a timm architecture name.
        variant: ``"baseline"``, ``"neurn"``, ``"neurn:k=5"`` or a :class:`Variant`.
        num_classes: classifier outputs (10 digits).
        img_size: the images' size (32 for every digit domain).
        plan: a :class:`ModelPlan` from :func:`plan_model` (computed when omitted).

    Returns ``(model, plan)``. Weights follow torch's global RNG: seed it first.
    """
    import timm

    variant = variant if isinstance(variant, Variant) else parse_variant(variant)
    plan = plan if plan is not None else plan_model(name, img_size=img_size,
                                                    num_classes=num_classes)
    backbone = timm.create_model(name, pretrained=False, num_classes=num_classes,
                                 **plan.create_kwargs)
    front = NeuRN(**variant.neurn_kwargs) if variant.kind == "neurn" else None
    resize = plan.input_size if plan.input_size != img_size else None
    return DigitClassifier(backbone, neurn=front, input_size=resize), plan


def uses_convolutions(model: nn.Module) -> bool:
    """True when channels_last can help (the model has 2-D convolutions beyond a stem)."""
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    return convs > 1
