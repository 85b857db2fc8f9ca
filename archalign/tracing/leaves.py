"""The leaf registry: module classes traced as one call even though they have children."""
from __future__ import annotations

__all__ = ["is_leaf_module_class", "leaf_module_classes", "register_leaf_module"]

# Classes traced as one token even though they have children. A dict used as an
# ordered set, as timm does for its fx leaf modules (timm/layers/_fx.py).
_leaf_module_classes: dict[type, None] = {}
_default_leaves_added = False


def register_leaf_module(cls: type) -> type:
    """Trace instances of ``cls`` (and subclasses) as one call, hiding their insides.

    Usable as a class decorator. Modules without children are leaves anyway.
    """
    _leaf_module_classes[cls] = None
    return cls


def is_leaf_module_class(cls: type) -> bool:
    return issubclass(cls, leaf_module_classes())


def leaf_module_classes() -> tuple[type, ...]:
    """The registered leaf classes, the defaults included, in registration order."""
    _add_default_leaves()
    return tuple(_leaf_module_classes)


def _add_default_leaves() -> None:
    global _default_leaves_added
    if not _default_leaves_added:
        import torch.nn as nn

        _default_leaves_added = True
        _leaf_module_classes.setdefault(nn.MultiheadAttention, None)
