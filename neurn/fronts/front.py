"""Put a fixed front end (NeuRN, or one of :mod:`neurn.fronts.fixed`) in front of any model.

The wrapper is a plain ``nn.Module`` with two children, the front end then ``model``, so
the front end is one leaf module that runs first: architecture tracing
(``archalign.trace``) sees it as a single token ahead of the model's own.
"""
from torch import nn

from .layer import NeuRN

__all__ = ["FrontEnd", "NeuRNFront", "with_front", "with_neurn"]

# timm's data-config helpers and archalign's tracer read these from the top-level
# module; they describe the wrapped model's input, which a front end does not change.
_FORWARDED_ATTRIBUTES = ("pretrained_cfg", "default_cfg", "num_classes")


class FrontEnd(nn.Module):
    """``model(front(x))``: the wrapped model sees the front end's map, not the image.

    Args:
        model: the network to wrap; reach it as ``.model``.
        front: the front layer (``NeuRN()``, ``neurn.fronts.Sobel()``, ...); ``.front``.
    """

    def __init__(self, model: nn.Module, front: nn.Module) -> None:
        super().__init__()
        if isinstance(model, FrontEnd):
            raise ValueError(f"this model already has a {type(model.front).__name__} front "
                             f"end; wrapping it again would stack two front ends (use "
                             f"model.model to unwrap)")
        self.front = front
        self.model = model
        for name in _FORWARDED_ATTRIBUTES:
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def forward(self, x):
        return self.model(self.front(x))


class NeuRNFront(FrontEnd):
    """``model(NeuRN(x))``, with the layer also reachable as ``.neurn``.

    Args:
        model: the network to wrap; reach it as ``.model``.
        neurn: the front layer; by default ``NeuRN(**neurn_kwargs)``.
        **neurn_kwargs: ``kernel_size``, ``per``, ``eps``, ``padding`` for NeuRN.
    """

    def __init__(self, model: nn.Module, neurn: NeuRN = None, **neurn_kwargs) -> None:
        if neurn is not None and neurn_kwargs:
            raise ValueError("pass either a NeuRN layer or its keyword arguments, not both")
        super().__init__(model, neurn if neurn is not None else NeuRN(**neurn_kwargs))

    @property
    def neurn(self) -> NeuRN:
        return self.front


def with_front(model: nn.Module, front: nn.Module) -> FrontEnd:
    """Return ``model`` with ``front`` (any fixed front-end module) in front."""
    return FrontEnd(model, front)


def with_neurn(model: nn.Module, **neurn_kwargs) -> NeuRNFront:
    """Return ``model`` with a NeuRN layer in front; keywords go to :class:`NeuRN`."""
    return NeuRNFront(model, **neurn_kwargs)
