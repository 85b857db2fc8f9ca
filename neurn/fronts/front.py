"""Put a fixed front end (NeuRN, or one of :mod:`neurn.fronts.fixed`) in front of any model.

The wrapper feeds the model what the study feeds its backbones: the front end's map,
standardised to zero mean and unit variance with fixed constants
(:data:`~neurn.fronts.standardize.FRONT_STATS`). Fed raw, the NeuRN map (values in
[0, 1], mostly near 0) has a third of the scale the model's initialisation and learning
rate assume, and learns at half the pace: ViT-Tiny with NeuRN reached 39.0% source test
accuracy raw against 66.2% standardised (docs/results.md, the input-scale table). Zero mean
and unit variance is also the scale of an ImageNet-normalised image, so a pretrained
backbone gets inputs of the scale it was trained on. ``stats=None`` keeps the raw map.

NeuRN must see the raw [0, 1] image, so the wrapper's ``pretrained_cfg`` /
``default_cfg`` is the model's with mean 0 and std 1: timm's
``resolve_data_config(model=wrapped)`` and ``create_transform`` then leave the image
as it is, where the model's own cfg would normalise it with ImageNet's mean and std
before NeuRN.

The wrapper is a plain ``nn.Module`` whose children run in order: the front end, the
standardisation (``.standardize``: a :class:`Standardize`, or ``nn.Identity``), then
``model``. The front end is one leaf module that runs first: architecture tracing
(``archalign.trace``) sees it as a single token ahead of the model's own, followed by
a ``Standardize`` token (an ``nn.Identity`` is not recorded).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

from archalign.utils.errors import UsageError
from neurn.fronts.fixed import LCN, Gray, Sobel
from neurn.fronts.layer import NeuRN
from neurn.fronts.standardize import FRONT_STATS, Standardize

__all__ = ["FrontEnd", "NeuRNFront", "with_front", "with_neurn"]

Stats = str | None | tuple[float | Sequence[float], float | Sequence[float]]

# The fronts whose output scale the study measured; LCN's output is already about
# zero-mean and unit-variance. Exact types: a subclass may change the scale.
_AUTO_STATS = {NeuRN: FRONT_STATS["neurn"], Sobel: FRONT_STATS["sobel"],
               Gray: FRONT_STATS["pixels"], LCN: None}


def _standardize(front: nn.Module, stats: Stats) -> nn.Module:
    if isinstance(stats, str):
        if stats != "auto":
            raise UsageError(f"stats must be 'auto', None or (mean, std), got {stats!r}")
        if type(front) not in _AUTO_STATS:
            raise UsageError(f"no standardisation constants are known for a "
                             f"{type(front).__name__} front end: pass stats=(mean, std) of "
                             f"its output over training images, or stats=None to feed it raw")
        stats = _AUTO_STATS[type(front)]
    if stats is None:
        return nn.Identity()
    try:
        mean, std = stats
    except (TypeError, ValueError):
        raise UsageError(f"stats must be 'auto', None or (mean, std), got {stats!r}") from None
    return Standardize(mean, std)


def _raw_input_cfg(model: nn.Module) -> dict:
    """A copy of the model's timm data config that leaves the [0, 1] image as it is."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    cfg = copy.deepcopy(dict(cfg))
    channels = len(cfg.get("mean", (0.0, 0.0, 0.0)))
    cfg.update(mean=(0.0,) * channels, std=(1.0,) * channels)
    return cfg


class FrontEnd(nn.Module):
    """``model(standardize(front(x)))``: the model sees the front end's map, not the image.

    Parameters
    ----------
    model
        the network to wrap; reach it as ``.model``.
    front
        the front layer (``NeuRN()``, ``neurn.fronts.Sobel()``, ...); ``.front``.
    stats
        how the map is standardised before ``model`` (``.standardize``):
        ``"auto"`` (default) uses the study's constants
        (:data:`~neurn.fronts.standardize.FRONT_STATS`: ``"neurn"`` for
        :class:`NeuRN` whatever its k, ``"sobel"`` for ``Sobel``, ``"pixels"`` for
        ``Gray``) and none for ``LCN``; any other front end needs ``stats`` given.
        ``(mean, std)``, each a number or one per channel, uses those; ``None``
        feeds the map raw.

    Notes
    -----
    ``num_classes`` is the model's; ``pretrained_cfg`` and ``default_cfg`` are a copy of
    the model's timm data config with mean 0 and std 1, so timm's input pipeline hands
    the front end the raw [0, 1] image.
    """

    def __init__(self, model: nn.Module, front: nn.Module, stats: Stats = "auto") -> None:
        super().__init__()
        if isinstance(model, FrontEnd):
            raise UsageError(f"this model already has a {type(model.front).__name__} front "
                             f"end; wrapping it again would stack two front ends (use "
                             f"model.model to unwrap)")
        self.front = front
        self.standardize = _standardize(front, stats)
        self.model = model
        if hasattr(model, "num_classes"):
            self.num_classes = model.num_classes
        self.pretrained_cfg = self.default_cfg = _raw_input_cfg(model)

    def forward(self, x):
        return self.model(self.standardize(self.front(x)))


class NeuRNFront(FrontEnd):
    """``model(standardize(NeuRN(x)))``, with the layer also reachable as ``.neurn``.

    Parameters
    ----------
    model
        the network to wrap; reach it as ``.model``.
    neurn
        the front layer; by default ``NeuRN(**neurn_kwargs)``.
    stats
        as for :class:`FrontEnd`; by default the NeuRN map's constants.
    **neurn_kwargs
        ``kernel_size``, ``per``, ``eps``, ``padding`` for NeuRN.
    """

    def __init__(self, model: nn.Module, neurn: NeuRN | None = None, *,
                 stats: Stats = "auto", **neurn_kwargs) -> None:
        if neurn is not None and neurn_kwargs:
            raise UsageError("pass either a NeuRN layer or its keyword arguments, not both")
        super().__init__(model, neurn if neurn is not None else NeuRN(**neurn_kwargs), stats)

    @property
    def neurn(self) -> NeuRN:
        return self.front


def with_front(model: nn.Module, front: nn.Module, stats: Stats = "auto") -> FrontEnd:
    """Return ``model`` with ``front`` (any fixed front-end module) in front, its map
    standardised as ``stats`` says (see :class:`FrontEnd`)."""
    return FrontEnd(model, front, stats)


def with_neurn(model: nn.Module, *, stats: Stats = "auto", **neurn_kwargs) -> NeuRNFront:
    """Return ``model`` with a NeuRN layer in front, its map standardised with the
    study's constants (``stats=None``: raw); keywords go to :class:`NeuRN`."""
    return NeuRNFront(model, stats=stats, **neurn_kwargs)
