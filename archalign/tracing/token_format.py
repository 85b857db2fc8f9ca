"""A call's token string at each granularity (``format_token``, ``GRANULARITIES``)."""
from __future__ import annotations

from typing import Any

from archalign.utils.errors import UsageError

__all__ = ["GRANULARITIES", "SHAPE_KEYS", "format_token"]

GRANULARITIES = ("type", "shape", "full")

# Keys kept by the "shape" granularity: the layer's geometry without its width, so
# depthwise vs pointwise convs, 3x3 vs 1x1, stride-2 downsamples and head counts differ.
SHAPE_KEYS = frozenset({"k", "s", "g", "heads", "out_size"})


def _render(v: Any) -> str:
    if isinstance(v, list):
        if v and all(x == v[0] for x in v) and not isinstance(v[0], list):
            return _render(v[0])  # (3, 3) -> "3"; (1, 7) stays "1x7"
        return "x".join(_render(x) for x in v) if v else "-"
    if isinstance(v, float):
        return repr(v)  # shortest round-trip form: identical on every platform
    return str(v)


def format_token(op: str, params: dict, granularity: str) -> str:
    """The token of one call at one granularity.

    "type": ``Conv2d``; "shape": ``Conv2d(k=3,s=2,g=dw)``; "full": every recorded
    hyper-parameter, e.g. ``Conv2d(in=64,out=64,k=3,s=1,p=1,d=1,g=1,bias=False)``.
    ``g=dw`` marks a depthwise conv (groups == input channels > 1).
    """
    if granularity == "type":
        return op
    if granularity == "shape":
        items = [(k, v) for k, v in params.items() if k in SHAPE_KEYS]
    elif granularity == "full":
        items = list(params.items())
    else:
        raise UsageError(f"unknown granularity {granularity!r}; choose one of "
                         f"{', '.join(map(repr, GRANULARITIES))}")
    if not items:
        return op
    parts = []
    for k, v in items:
        if k == "g" and isinstance(v, int) and v > 1 and v == params.get("in"):
            v = "dw"
        parts.append(f"{k}={_render(v)}")
    return f"{op}({','.join(parts)})"
