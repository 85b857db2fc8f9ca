"""Building a model: (backbone name, variant, plan) -> a freshly initialised :class:`DigitClassifier`.

``build_model("resnet18", variant="neurn:k=5")`` returns the backbone behind the
variant's input pipeline (:mod:`neurn.models.variants`) and the :class:`ModelPlan`
(:mod:`neurn.models.plan`) that says how the architecture was adapted to the input.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..fronts import NeuRN
from .plan import ModelPlan, create_backbone, plan_model
from .variants import INPUT_STATS, KINDS, as_variant

__all__ = ["DigitClassifier", "build_augmentation", "build_model", "uses_convolutions"]


class DigitClassifier(nn.Module):
    """Input pipeline + backbone: ``backbone(resize(standardise(front(x))))``.

    ``x`` is a float batch in [0, 1], ``(N, 3, img_size, img_size)``. Children: ``front``
    (the variant's front end, e.g. :class:`NeuRN`, or ``None``) and ``backbone``.
    ``stats`` is the fixed ``(mean, std)`` of ``(x - mean) / std`` after the front end,
    or None for none; :mod:`neurn.models.variants` says which variant does what.
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
    variant = as_variant(variant)
    kind = KINDS[variant.kind]
    plan = plan if plan is not None else plan_model(name, img_size=img_size,
                                                    num_classes=num_classes)
    backbone = create_backbone(name, num_classes, **plan.create_kwargs)
    front = kind.front(**variant.options) if kind.front is not None else None
    resize = plan.input_size if plan.input_size != img_size else None
    table = INPUT_STATS if input_stats is None else input_stats
    stats = table[kind.stats] if kind.stats is not None and variant.standardise else None
    return DigitClassifier(backbone, front=front, stats=stats, input_size=resize), plan


def build_augmentation(variant, *, generator: torch.Generator,
                       pixels: Optional[Tuple[float, float]] = None) -> Optional[nn.Module]:
    """The variant's training-time augmentation of float [0, 1] batches (a
    :class:`~neurn.fronts.RandConv` for ``randconv``, whitening with the ``pixels``
    (mean, std), default the digits'), drawing from ``generator``; None for variants
    without one."""
    variant = as_variant(variant)
    augment = KINDS[variant.kind].augment
    if augment is None:
        return None
    whiten = {} if pixels is None else {"mean": (pixels[0],) * 3, "std": (pixels[1],) * 3}
    return augment(generator=generator, **whiten, **variant.options)


def uses_convolutions(model: nn.Module) -> bool:
    """True when channels_last can help (the model has 2-D convolutions beyond a stem)."""
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    return convs > 1
