"""Fitting an architecture to the images' size, decided on the meta device: name -> :class:`ModelPlan`.

* Backbones: the built-in models of :data:`BUILTIN_MODELS` (``convnet``, the digits CNN
  of ADA / M-ADA / RandConv, see :mod:`neurn.models.convnet`) or
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
"""
from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass
from collections.abc import Callable

import torch
from torch import nn

from archalign.utils.errors import UsageError
from neurn.models.convnet import ConvNet

__all__ = ["BUILTIN_MODELS", "ModelPlan", "RESIZE_CANDIDATES", "check_model_name",
           "create_backbone", "plan_model"]

RESIZE_CANDIDATES = (32, 48, 64, 96, 128, 160, 224, 299)
MIN_TOKEN_GRID = 4

# name -> builder(num_classes=...) returning an nn.Module; plan_model fits it to the
# input like any timm model.
BUILTIN_MODELS: dict[str, Callable[..., nn.Module]] = {"convnet": ConvNet}


@dataclass(frozen=True)
class ModelPlan:
    """How an architecture is fitted to ``img_size`` input (recorded in results)."""

    name: str
    img_size: int  # size of the dataset's images
    input_size: int  # size the backbone sees
    create_kwargs: dict[str, object]
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
    raise UsageError(f"unknown timm model {name!r}{hint} (see timm.list_models(); built-in "
                     f"models: {', '.join(BUILTIN_MODELS)})")


def create_backbone(name: str, num_classes: int, **kwargs) -> nn.Module:
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name](num_classes=num_classes, **kwargs)
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


def _meta_forward_ok(name: str, kwargs: dict, size: int, num_classes: int) -> bool:
    try:
        with torch.device("meta"):
            model = create_backbone(name, num_classes, **kwargs)
            model.eval()
            out = model(torch.empty(2, 3, size, size))
        return tuple(out.shape) == (2, num_classes)
    except Exception:  # noqa: BLE001 - any failure means "not at this size"
        return False


def _takes_img_size(name: str) -> bool:
    try:
        with torch.device("meta"):
            create_backbone(name, 10, img_size=32)
        return True
    except TypeError:
        return False
    except Exception:  # noqa: BLE001 - takes img_size but fails at 32; decided below
        return True


def _native_patch(name: str) -> int | None:
    with torch.device("meta"):
        model = create_backbone(name, 10)
    embed = getattr(model, "patch_embed", None) or getattr(model, "stem", None)  # Mixer: stem
    patch = getattr(embed, "patch_size", None)
    if patch is None:
        match = re.search(r"patch(\d+)", name)
        return int(match.group(1)) if match else None
    return int(patch[0] if isinstance(patch, (tuple, list)) else patch)


def plan_model(name: str, *, img_size: int = 32, num_classes: int = 10,
               pretrained_size: int | None = None) -> ModelPlan:
    """Decide how ``name`` runs on ``img_size`` images, on the meta device (cheap).

    ``pretrained_size``: the input side of pretrained weights. The architecture is then
    built as they were trained (no ``img_size`` / ``patch_size`` change) and the images
    are resized to that side, the resolution its features were learnt at."""
    check_model_name(name)
    if pretrained_size is not None:
        how = (f"native {img_size} px" if pretrained_size == img_size else
               f"resized {img_size} -> {pretrained_size} px")
        return ModelPlan(name, img_size, int(pretrained_size), {},
                         f"pretrained, {how} (its pretrained input size)")
    if _takes_img_size(name):
        kwargs: dict[str, object] = {"img_size": img_size}
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
    larger = [size for size in RESIZE_CANDIDATES if size > img_size]
    tried = f"{img_size} px" + (f" or resized to {', '.join(map(str, larger))} px" if larger
                                else "")
    hint = (f"it runs at {smaller[-1]} px: pass --img-size {smaller[-1]} (img_size="
            f"{smaller[-1]})" if smaller else "pick another architecture")
    raise UsageError(f"{name!r} cannot run on {tried}; {hint}")


def _default_size(name: str) -> int:
    import timm

    cfg = timm.models.get_pretrained_cfg(name.split(".")[0])
    size = (cfg.input_size if cfg is not None else None) or (3, 224, 224)
    return int(size[-1])

