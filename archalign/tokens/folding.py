"""Read token sequences as inference exporters write graphs (``as_exported``).

ONNX exporters (``torch.onnx.export``, tf2onnx) write the inference graph, which spells
a few things differently from a torch trace of the same model:

* an inference-mode BatchNorm is folded into the convolution before it (the conv's
  weights and bias absorb the affine map), so an exported ResNet has no norm left;
* flattening is a ``Reshape`` (``nn.Flatten`` has no ONNX op of its own beyond axis 1);
* global average pooling is a ``ReduceMean`` over the spatial axes, whether the model
  called ``nn.AdaptiveAvgPool2d(1)`` or ``x.mean((2, 3))``;
* both carry the exporter's own arguments (ranks, axes).

:func:`as_exported` reads any token sequence the same way, so the two meet: a
``BatchNorm*`` token right after a ``Conv*`` token (in execution order, the conv is what
it normalises) is dropped, ``Flatten`` reads as ``reshape`` and
``AdaptiveAvgPool*d(out_size=1)`` as ``mean``, and ``reshape`` and ``mean`` are read
without parameters. Panels that contain an ONNX model read
every model this way by default (``as_exported=None`` resolves to that); the
similarity settings record it.

At ``"full"`` granularity a folded conv still says ``bias=False`` on the torch side and
``bias=True`` in the export; ``"shape"`` (the default) and ``"type"`` tokens carry no
bias flag.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["as_exported", "exported_reading"]

_GLOBAL_AVG = re.compile(r"AdaptiveAvgPool\dd(\(out_size=1\))?$")


def _op(token: str) -> str:
    return token.split("(", 1)[0]


def _spelled(token: str) -> str:
    # Exporters spell flattening and global pooling with reshape / mean and their own
    # arguments (ranks, axes), so both read without parameters: "shape" and "type"
    # tokens have none anyway, and "full" tokens then meet too.
    if _op(token) in ("Flatten", "reshape"):
        return "reshape"
    if _op(token) == "mean" or (_GLOBAL_AVG.match(token) and "out_size" in token):
        return "mean"
    return token


def as_exported(tokens: Sequence[str]) -> list[str]:
    """``tokens`` as an inference export spells them (see the module docstring)."""
    return [token for _, token in exported_reading(tokens)]


def exported_reading(tokens: Sequence[str]) -> list[tuple[int, str]]:
    """(index, token as exported) of each token the export keeps, in order: the rule of
    :func:`as_exported`, with the positions (``archalign.diff`` keeps each call's path)."""
    out: list[tuple[int, str]] = []
    for i, token in enumerate(tokens):
        if _op(token).startswith("BatchNorm") and out and _op(out[-1][1]).startswith("Conv"):
            continue
        out.append((i, _spelled(token)))
    return out
