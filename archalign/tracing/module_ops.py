"""The hyper-parameters of a leaf module, with short, fixed keys (``module_call``).

The keys match those of :mod:`archalign.tracing.function_ops`, so ``nn.Conv2d`` and
``F.conv2d`` give the same token.
"""
from __future__ import annotations

from typing import Any

from archalign.tracing.canonical import canonical_module, is_dropout
from archalign.tracing.function_ops import plain_value

__all__ = ["module_call", "SKIPPED_MODULES"]

# Leaf modules that compute nothing; recording them would make two models differ by
# how a disabled option was spelled (timm puts nn.Identity where a norm/drop is off).
# Dropout is the identity at inference too (archalign.tracing.canonical.is_dropout).
SKIPPED_MODULES = frozenset({"Identity"})


def _module_params(m: Any) -> dict[str, Any]:
    import torch.nn as nn  # lazy: only called while a model is being traced

    if isinstance(m, nn.modules.conv._ConvNd):
        p = {"in": m.in_channels, "out": m.out_channels, "k": m.kernel_size, "s": m.stride,
             "p": m.padding, "d": m.dilation, "g": m.groups, "bias": m.bias is not None}
        if m.padding_mode != "zeros":
            p["pad_mode"] = m.padding_mode
        return p
    if isinstance(m, nn.Linear):
        return {"in": m.in_features, "out": m.out_features, "bias": m.bias is not None}
    if isinstance(m, nn.modules.batchnorm._NormBase):  # BatchNorm*, InstanceNorm*
        return {"c": m.num_features, "eps": m.eps, "affine": m.affine}
    if isinstance(m, nn.LayerNorm):
        return {"shape": m.normalized_shape, "eps": m.eps, "affine": m.elementwise_affine}
    if isinstance(m, nn.GroupNorm):
        return {"groups": m.num_groups, "c": m.num_channels, "eps": m.eps, "affine": m.affine}
    if isinstance(m, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        return {"k": m.kernel_size, "s": m.stride, "p": m.padding}
    if isinstance(m, (nn.modules.pooling._AdaptiveAvgPoolNd,
                      nn.modules.pooling._AdaptiveMaxPoolNd)):
        return {"out_size": m.output_size}
    if isinstance(m, nn.MultiheadAttention):
        return {"dim": m.embed_dim, "heads": m.num_heads, "bias": m.in_proj_bias is not None}
    if isinstance(m, nn.Embedding):
        return {"num": m.num_embeddings, "dim": m.embedding_dim}
    return _generic_params(m)


# Attributes that never describe the architecture.
_IGNORED_ATTRS = frozenset({"training", "inplace", "dump_patches", "call_super_init"})


def _generic_params(m: Any) -> dict[str, Any]:
    """Hyper-parameters of a module we have no extractor for: its public scalar
    attributes (ints, floats, bools, strings, and tuples of those), sorted by name.
    This is what ``extra_repr`` usually shows, without depending on its text."""
    params = {}
    for key in sorted(vars(m)):
        if key.startswith("_") or key in _IGNORED_ATTRS:
            continue
        v = vars(m)[key]
        if isinstance(v, (bool, int, float, str)) or (
                isinstance(v, (tuple, list)) and len(v) <= 8
                and all(isinstance(x, (bool, int, float, str)) for x in v)):
            params[key] = v
    # Common spellings of kernel/stride/groups map to the short keys "shape" reads.
    for long, short in (("kernel_size", "k"), ("stride", "s"), ("groups", "g"),
                        ("num_heads", "heads")):
        if long in params:
            params[short] = params.pop(long)
    return params


def module_call(module: Any, args: tuple = ()) -> tuple[str, dict] | None:
    """``(op, params)`` for a leaf-module call, in the canonical spelling
    (archalign.tracing.canonical), or ``None`` for modules we skip. ``args``: the
    call's inputs, when the route has them."""
    op = type(module).__name__
    if op in SKIPPED_MODULES or is_dropout(module):
        return None
    try:
        params = _module_params(module)
    except Exception:  # noqa: BLE001 - a half-initialised custom module
        params = {}
    op, params = canonical_module(op, module, params, args)
    return op, {k: plain_value(v) for k, v in params.items()}
