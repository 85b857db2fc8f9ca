"""Building a model: (backbone, variant, plan[, pretrained weights]) -> a :class:`DigitClassifier`.

``build_model("resnet18", variant="neurn:k=5")`` returns the backbone behind the
variant's input pipeline (:mod:`neurn.models.variants`) and the :class:`ModelPlan`
(:mod:`neurn.models.plan`) that says how the architecture was adapted to the input.

With pretrained weights (:mod:`neurn.models.pretrained`) the backbone is built seeded as
from scratch, then every tensor but the classifier's is loaded over it, so the head is
the run's seeded initialisation. What the backbone sees is then what its weights
expect: a variant that hands it an image (baseline, ``gray``, ``randconv``,
``prorandconv``) is normalised with the weights' own per-channel mean / std
(``pretrained_cfg``); a front end's map (NeuRN, Sobel) is standardised with its fixed
constants to zero mean and unit variance, the scale an ImageNet-normalised image has,
since no pretrained statistics exist for such maps; LCN's output is already on that
scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archalign.utils.errors import UsageError
from neurn.fronts import NeuRN, Standardize
from neurn.models.plan import ModelPlan, create_backbone, plan_model
from neurn.models.pretrained import Pretrained
from neurn.models.variants import INPUT_STATS, KINDS, as_variant

__all__ = ["DigitClassifier", "build_augmentation", "build_model", "uses_convolutions"]


class DigitClassifier(nn.Module):
    """Input pipeline + backbone: ``backbone(resize(standardise(front(x))))``.

    ``x`` is a float batch in [0, 1], ``(N, 3, img_size, img_size)``. Children: ``front``
    (the variant's front end, e.g. :class:`NeuRN`, or ``None``) and ``backbone``.
    ``stats`` is the fixed ``(mean, std)`` of ``(x - mean) / std`` after the front end
    (each a number or one per channel; the child ``standardize``), or None for none;
    :mod:`neurn.models.variants` says which variant does what.
    """

    def __init__(self, backbone: nn.Module, *, front: nn.Module | None = None,
                 stats: tuple | None, input_size: int | None = None) -> None:
        super().__init__()
        self.front = front
        self.standardize = None if stats is None else Standardize(*stats)
        self.backbone = backbone
        self.input_size = input_size

    @property
    def neurn(self) -> NeuRN | None:
        """The NeuRN front end, or None for every other variant."""
        return self.front if isinstance(self.front, NeuRN) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.front is not None:
            x = self.front(x)
        if self.standardize is not None:
            x = self.standardize(x)
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        return self.backbone(x)


def build_model(name: str, *, variant="baseline", num_classes: int = 10, img_size: int = 32,
                plan: ModelPlan | None = None,
                input_stats: dict[str, tuple[float, float]] | None = None,
                pretrained: Pretrained | None = None) -> tuple[DigitClassifier, ModelPlan]:
    """A model for ``img_size`` images, initialised from scratch or ``pretrained``.

    Parameters
    ----------
    name
        a built-in (:data:`BUILTIN_MODELS`, e.g. ``"convnet"``) or timm architecture.
    variant
        ``"baseline"``, ``"neurn:k=5"``, ``"sobel"``, ... or a :class:`Variant`.
    num_classes
        classifier outputs (10 digits).
    img_size
        the images' size (32 for every digit domain).
    plan
        a :class:`ModelPlan` from :func:`plan_model` (computed when omitted).
    input_stats
        the standardisation constants (default :data:`INPUT_STATS`, the
        digits'; :func:`measure_input_stats` gives them for other data).
    pretrained
        weights from :func:`~neurn.models.pretrained.load_pretrained` (for
        ``name``, built with ``plan_model(..., pretrained_size=...)``); the
        classifier keeps its seeded initialisation. See the module docstring for
        the input the backbone then gets.

    Returns
    -------
    model : nn.Module
        The classifier (front end, standardisation and backbone).
    plan : ModelPlan
        How the architecture was fitted to the images' size.

    Notes
    -----
    Weights follow torch's global RNG: seed it first. A
    training-time augmentation (``randconv``, ``prorandconv``, the one of a combination
    such as ``neurn+randconv``) is not part of the model: see :func:`build_augmentation`.
    """
    variant = as_variant(variant)
    kind = KINDS[variant.kind]
    plan = plan if plan is not None else plan_model(name, img_size=img_size,
                                                    num_classes=num_classes)
    backbone = create_backbone(name, num_classes, **plan.create_kwargs)
    table = dict(INPUT_STATS if input_stats is None else input_stats)
    if pretrained is not None:
        _load_backbone(backbone, pretrained)
        table["pixels"] = (pretrained.mean, pretrained.std)
    front = kind.front(**variant.options) if kind.front is not None else None
    resize = plan.input_size if plan.input_size != img_size else None
    stats = table[kind.stats] if kind.stats is not None and variant.standardise else None
    return DigitClassifier(backbone, front=front, stats=stats, input_size=resize), plan


def _load_backbone(backbone: nn.Module, pretrained: Pretrained) -> None:
    """Every pretrained tensor into ``backbone``; only its classifier may stay as built."""
    missing, unexpected = backbone.load_state_dict(pretrained.state, strict=False)
    head = set(backbone.state_dict()) - set(pretrained.state)
    if unexpected or set(missing) != head:
        raise UsageError(f"{pretrained.name}: the pretrained weights do not fit this "
                         f"backbone (missing {sorted(set(missing) - head)[:3]}, unexpected "
                         f"{sorted(unexpected)[:3]}); build it with the plan the weights "
                         f"were loaded for")


def build_augmentation(variant, *, generator: torch.Generator,
                       pixels: tuple[float, float] | None = None) -> nn.Module | None:
    """The variant's training-time augmentation of float [0, 1] batches (a
    :class:`~neurn.fronts.RandConv` for ``randconv``, a :class:`~neurn.fronts.ProRandConv`
    for ``prorandconv``, and a combination's, as ``neurn+randconv``'s, whitening with the
    ``pixels`` (mean, std), default the digits'), drawing from ``generator``; None for
    variants without one. It acts on the raw image, before the model's front end."""
    variant = as_variant(variant)
    part = variant.augmentation if variant.augmentation is not None else variant
    augment = KINDS[part.kind].augment
    if augment is None:
        return None
    whiten = {} if pixels is None else {"mean": (pixels[0],) * 3, "std": (pixels[1],) * 3}
    return augment(generator=generator, **whiten, **part.options)


def uses_convolutions(model: nn.Module) -> bool:
    """True when channels_last can help (the model has 2-D convolutions beyond a stem)."""
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    return convs > 1
