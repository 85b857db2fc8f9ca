"""Put a NeuRN layer in front of any model (a timm model or any ``nn.Module``).

The wrapper is a plain ``nn.Module`` with two children, ``neurn`` then ``model``, so
the NeuRN layer is one leaf module that runs first: architecture tracing
(``archalign.trace``) sees it as a single token ahead of the model's own.
"""
from torch import nn

from .layer import NeuRN

__all__ = ["NeuRNFront", "with_neurn"]

# timm's data-config helpers and archalign's tracer read these from the top-level
# module; they describe the wrapped model's input, which NeuRN does not change.
_FORWARDED_ATTRIBUTES = ("pretrained_cfg", "default_cfg", "num_classes")


class NeuRNFront(nn.Module):
    """``model(NeuRN(x))``: the wrapped model sees the NeuRN map, not the image.

    Args:
        model: the network to wrap; reach it as ``.model``.
        neurn: the front layer; by default ``NeuRN(**neurn_kwargs)``.
        **neurn_kwargs: ``kernel_size``, ``per``, ``eps``, ``padding`` for NeuRN.
    """

    def __init__(self, model: nn.Module, neurn: NeuRN = None, **neurn_kwargs) -> None:
        super().__init__()
        if isinstance(model, NeuRNFront):
            raise ValueError("this model already has a NeuRN front end; wrapping it "
                             "again would apply NeuRN twice (use model.model to unwrap)")
        if neurn is not None and neurn_kwargs:
            raise ValueError("pass either a NeuRN layer or its keyword arguments, not both")
        self.neurn = neurn if neurn is not None else NeuRN(**neurn_kwargs)
        self.model = model
        for name in _FORWARDED_ATTRIBUTES:
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def forward(self, x):
        return self.model(self.neurn(x))


def with_neurn(model: nn.Module, **neurn_kwargs) -> NeuRNFront:
    """Return ``model`` with a NeuRN layer in front; keywords go to :class:`NeuRN`."""
    return NeuRNFront(model, **neurn_kwargs)
