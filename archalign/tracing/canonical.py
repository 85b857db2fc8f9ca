"""One token per operation, whatever spelled it: the canonical-op table.

Sources spell the same function in many ways: ``nn.GELU``, ``F.gelu``, transformers'
``GELUActivation`` and ONNX's ``Gelu`` are one GELU; timm's ``Swish`` and transformers'
``SiLUActivation`` are ``nn.SiLU``. If each spelling were its own token, a BERT encoder
block and a ViT block (the same block) would align as substitutions, and two models would
differ by the library that built them rather than by their design. Every tracing route
records the canonical name and keys below, so a token names the function computed.

=============================================  ==========  ============================
module class (source)                          token       parameters
=============================================  ==========  ============================
``GELU`` (torch, timm), ``GELUActivation``     GELU        ``approx=none``
(transformers), ``F.gelu``, ONNX ``Gelu``
``GELUTanh`` (timm, transformers),             GELU        ``approx=tanh``
``PytorchGELUTanh``, ``NewGELUActivation``,
``FastGELUActivation`` (transformers)
``QuickGELU`` (timm), ``QuickGELUActivation``  QuickGELU
``SiLU`` (torch), ``Swish`` (timm),            SiLU
``SiLUActivation`` (transformers), ``F.silu``
``Mish`` (torch, timm), ``MishActivation``     Mish
``Hardswish`` (torch), ``HardSwish`` (timm)    Hardswish
``Hardsigmoid`` (torch), ``HardSigmoid``       Hardsigmoid
``Sigmoid``, ``Tanh`` (torch, timm)            as named
``Flatten`` (torch), ``F.flatten``, ONNX       Flatten     ``start``, ``end`` (>= 0)
``Flatten``
``RMSNorm`` (torch), ``LlamaRMSNorm`` and      RMSNorm     ``shape``, ``eps``
other ``*RMSNorm``, ``T5LayerNorm``
=============================================  ==========  ============================

Subclasses of ``nn.LayerNorm`` keep their own name when it differs (timm's
``LayerNorm2d`` normalises over channels, another operation); those named ``LayerNorm``
(timm's, transformers') are read as ``nn.LayerNorm`` already.

**Dropout is not recorded.** At inference (archalign traces in eval mode) every dropout
is the identity, so it is no more part of the architecture than ``nn.Identity``: modules
of torch's dropout classes and any class whose name contains ``Drop`` (``DropPath``,
``DropBlock2d``, transformers' ``StableDropout``) are looked through whatever their
rate, as ONNX exports look through ``Dropout`` nodes.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["CANONICAL_OPS", "canonical_module", "is_dropout"]

# class name -> (token, fixed parameters); parameters read from the module come on top.
CANONICAL_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "GELU": ("GELU", {"approx": "none"}),
    "GELUActivation": ("GELU", {"approx": "none"}),
    "GELUTanh": ("GELU", {"approx": "tanh"}),
    "PytorchGELUTanh": ("GELU", {"approx": "tanh"}),
    "NewGELUActivation": ("GELU", {"approx": "tanh"}),
    "FastGELUActivation": ("GELU", {"approx": "tanh"}),
    "QuickGELU": ("QuickGELU", {}),
    "QuickGELUActivation": ("QuickGELU", {}),
    "SiLU": ("SiLU", {}),
    "Swish": ("SiLU", {}),
    "SiLUActivation": ("SiLU", {}),
    "Mish": ("Mish", {}),
    "MishActivation": ("Mish", {}),
    "Hardswish": ("Hardswish", {}),
    "HardSwish": ("Hardswish", {}),
    "Hardsigmoid": ("Hardsigmoid", {}),
    "HardSigmoid": ("Hardsigmoid", {}),
    "Sigmoid": ("Sigmoid", {}),
    "Tanh": ("Tanh", {}),
    "T5LayerNorm": ("RMSNorm", {}),
}
_RMS_NORM = re.compile(r"RMSNorm$")
_DROP = re.compile(r"Drop")


def is_dropout(module: Any) -> bool:
    """True for dropout-like modules, which are not recorded (see the module docstring)."""
    import torch.nn as nn  # lazy: only called while a model is being traced

    return isinstance(module, nn.modules.dropout._DropoutNd) or bool(
        _DROP.search(type(module).__name__))


def canonical_module(op: str, module: Any, params: dict, args: tuple = ()) -> tuple[str, dict]:
    """The canonical ``(op, params)`` of a leaf-module call read as ``(op, params)``.

    ``args`` are the call's inputs, when known: ``Flatten`` reads negative dims against
    the input's rank, as ``F.flatten`` is read.
    """
    if op == "Flatten":
        rank = getattr(args[0], "ndim", None) if args else None
        return "Flatten", {"start": _positive(getattr(module, "start_dim", 1), rank),
                           "end": _positive(getattr(module, "end_dim", -1), rank)}
    if op in CANONICAL_OPS:
        name, fixed = CANONICAL_OPS[op]
        if name == "GELU" and op == "GELU":
            # torch's nn.GELU says which approximation; timm's GELU has none (exact)
            return name, {"approx": getattr(module, "approximate", "none")}
        if name == "RMSNorm":
            return name, _rms_params(module)
        return name, dict(fixed)
    if _RMS_NORM.search(op):
        return "RMSNorm", _rms_params(module)
    return op, params


def _positive(dim: Any, rank: int | None) -> Any:
    return dim + rank if isinstance(dim, int) and dim < 0 and rank else dim


def _rms_params(module: Any) -> dict:
    weight = getattr(module, "weight", None)
    shape = list(weight.shape) if weight is not None and hasattr(weight, "shape") else \
        getattr(module, "normalized_shape", None)
    eps = next((getattr(module, k) for k in ("eps", "variance_epsilon")
                if getattr(module, k, None) is not None), None)
    return {"shape": shape, "eps": eps}
