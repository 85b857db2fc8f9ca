"""What a recorded call is called and which hyper-parameters it carries.

The functional-op table, shared by every tracing route (leaf modules are read by
:mod:`archalign.tracing.module_ops`, tokens spelled by :mod:`archalign.tracing.token_format`):

- ``FUNCTION_OPS``: torch functions and tensor methods that carry structure when they
  are called *outside* a leaf module (residual adds, concatenations, attention
  products, reshapes, pooling, activations called functionally, ...). Each entry turns
  the call's arguments into ``(op, params)``, or ``None`` when this particular call is
  not structural (``x * 0.5`` scales by a constant; only tensor-with-tensor arithmetic
  merges branches).

Design choices:

- A functional call that has a module twin gets the module's name and keys
  (``F.conv2d`` -> ``Conv2d``, ``F.relu`` -> ``ReLU``, ``F.batch_norm`` on a 4-D input ->
  ``BatchNorm2d``): a token names the operation, not how it was invoked, so a timm
  ``BatchNormAct2d`` (which calls ``F.batch_norm`` itself) and an ``nn.BatchNorm2d``
  produce the same token. ``Call.kind`` still says which it was.
- Ops with no module twin keep torch's lower-case name (``add``, ``cat``, ``matmul``,
  ``scaled_dot_product_attention``, ``reshape``, ``permute``, ``mean``).
- Negative dims are made positive using the input's rank, so ``cat(dim=-1)`` and
  ``cat(dim=3)`` on 4-D tensors are one token.
- Keys are short and their order is fixed by the extractor, so token strings are
  stable across runs and machines (see ``format_token``).

Nothing here imports torch at module level: the table is plain Python and works on
real tensors, meta tensors and (with missing shapes) torch.fx nodes alike.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Callable


# --------------------------------------------------------------------------- helpers
def _is_tensor(x: Any) -> bool:
    # Duck-typed so torch is not imported here; fx Nodes are not tensors.
    return hasattr(x, "ndim") and hasattr(x, "shape") and hasattr(x, "dtype")


def _ndim(x: Any) -> int | None:
    return x.ndim if _is_tensor(x) else None


def _arg(args: tuple, kwargs: dict, pos: int, name: str, default: Any = None) -> Any:
    if len(args) > pos:
        return args[pos]
    return kwargs.get(name, default)


def plain_value(v: Any) -> Any:
    """JSON-friendly, stable form of a hyper-parameter value."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, (tuple, list)):
        return [plain_value(x) for x in v]
    if _is_tensor(v) and v.ndim == 0 and v.device.type != "meta":
        return plain_value(v.item())
    if hasattr(v, "__index__"):  # torch.SymInt, numpy ints
        try:
            return int(v)
        except Exception:  # noqa: BLE001 - an unresolvable symbolic value
            return str(v)
    return str(v)


def _pos_dim(dim: Any, ndim: int | None) -> Any:
    if isinstance(dim, int) and dim < 0 and ndim:
        return dim + ndim
    if isinstance(dim, (tuple, list)):
        return sorted(_pos_dim(d, ndim) for d in dim)
    return dim


def _spatial(n: int | None) -> str:
    return f"{n}d" if n in (1, 2, 3) else "2d"


# ------------------------------------------------------------- functional ops table
def _binary(op: str) -> Callable:
    def spec(args, kwargs):
        a = _arg(args, kwargs, 0, "input")
        b = _arg(args, kwargs, 1, "other")
        # Only tensor-with-tensor arithmetic merges two branches (residual add,
        # gating, layer scale). ``x * 0.5`` or ``x + 3`` is normalisation detail;
        # 0-d tensors count as constants for the same reason.
        if _ndim(a) and _ndim(b):
            return op, {}
        if _ndim(a) is None and _ndim(b) is None and _fx_like(a) and _fx_like(b):
            return op, {}  # torch.fx route: both operands are graph values
        return None
    return spec


def _fx_like(x: Any) -> bool:
    return type(x).__name__ == "Node"


def _cat(op: str) -> Callable:
    def spec(args, kwargs):
        tensors = _arg(args, kwargs, 0, "tensors", ())
        dim = _arg(args, kwargs, 1, "dim", 0)
        first = tensors[0] if isinstance(tensors, (list, tuple)) and tensors else None
        nd = _ndim(first)
        if op == "stack" and nd is not None:
            nd += 1
        n = len(tensors) if isinstance(tensors, (list, tuple)) else None
        return op, {"dim": _pos_dim(dim, nd), "n": n}
    return spec


def _conv(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    w = _arg(args, kwargs, 1, "weight")
    groups = _arg(args, kwargs, 6, "groups", 1)
    n = _ndim(x)
    params: dict[str, Any] = {}
    if _is_tensor(w):
        params.update({"in": w.shape[1] * groups, "out": w.shape[0], "k": list(w.shape[2:])})
        n = w.ndim
    params.update({
        "s": _arg(args, kwargs, 3, "stride", 1),
        "p": _arg(args, kwargs, 4, "padding", 0),
        "d": _arg(args, kwargs, 5, "dilation", 1),
        "g": groups,
        "bias": _arg(args, kwargs, 2, "bias") is not None,
    })
    return f"Conv{_spatial(n - 2 if n else None)}", params


def _linear(args, kwargs):
    w = _arg(args, kwargs, 1, "weight")
    params: dict[str, Any] = {}
    if _is_tensor(w):
        params = {"in": w.shape[-1], "out": w.shape[0]}
    params["bias"] = _arg(args, kwargs, 2, "bias") is not None
    return "Linear", params


def _batch_norm(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    n = _ndim(x)
    params = {"c": x.shape[1] if n else None,
              "eps": _arg(args, kwargs, 7, "eps", 1e-5),
              "affine": _arg(args, kwargs, 3, "weight") is not None}
    return f"BatchNorm{_spatial(n - 2 if n and n > 2 else 1 if n else None)}", params


def _instance_norm(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    n = _ndim(x)
    return f"InstanceNorm{_spatial(n - 2 if n else None)}", {
        "c": x.shape[1] if n else None, "eps": _arg(args, kwargs, 7, "eps", 1e-5)}


def _layer_norm(args, kwargs):
    return "LayerNorm", {"shape": _arg(args, kwargs, 1, "normalized_shape"),
                         "eps": _arg(args, kwargs, 4, "eps", 1e-5),
                         "affine": _arg(args, kwargs, 2, "weight") is not None}


def _group_norm(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    return "GroupNorm", {"groups": _arg(args, kwargs, 1, "num_groups"),
                         "c": x.shape[1] if _ndim(x) else None,
                         "eps": _arg(args, kwargs, 4, "eps", 1e-5),
                         "affine": _arg(args, kwargs, 2, "weight") is not None}


def _rms_norm(args, kwargs):
    return "RMSNorm", {"shape": _arg(args, kwargs, 1, "normalized_shape"),
                       "eps": _arg(args, kwargs, 3, "eps")}


def _normalize(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    return "normalize", {"p": _arg(args, kwargs, 1, "p", 2.0),
                         "dim": _pos_dim(_arg(args, kwargs, 2, "dim", 1), _ndim(x))}


def _act(name: str, **extra: tuple[int, str, Any]) -> Callable:
    """An activation; ``extra`` maps a param key to (position, kwarg name, default)."""
    def spec(args, kwargs):
        return name, {k: _arg(args, kwargs, pos, kw, d) for k, (pos, kw, d) in extra.items()}
    return spec


def _softmax(name: str) -> Callable:
    def spec(args, kwargs):
        x = _arg(args, kwargs, 0, "input")
        return name, {"dim": _pos_dim(_arg(args, kwargs, 1, "dim"), _ndim(x))}
    return spec


def _pool(name: str) -> Callable:
    def spec(args, kwargs):
        x = _arg(args, kwargs, 0, "input")
        k = _arg(args, kwargs, 1, "kernel_size")
        s = _arg(args, kwargs, 2, "stride")
        return f"{name}{_spatial(_ndim(x) - 2 if _ndim(x) else None)}", {
            "k": k, "s": k if s in (None, [], ()) else s, "p": _arg(args, kwargs, 3, "padding", 0)}
    return spec


def _adaptive_pool(name: str) -> Callable:
    def spec(args, kwargs):
        x = _arg(args, kwargs, 0, "input")
        return f"{name}{_spatial(_ndim(x) - 2 if _ndim(x) else None)}", {
            "out_size": _arg(args, kwargs, 1, "output_size")}
    return spec


def _interpolate(args, kwargs):
    return "Upsample", {"size": _arg(args, kwargs, 1, "size"),
                        "scale": _arg(args, kwargs, 2, "scale_factor"),
                        "mode": _arg(args, kwargs, 3, "mode", "nearest")}


def _mean(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    dim = _arg(args, kwargs, 1, "dim")
    keepdim = bool(_arg(args, kwargs, 2, "keepdim", False))
    return "mean", {"dim": _pos_dim(dim, _ndim(x)), "keepdim": keepdim}


def _flatten(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    nd = _ndim(x)
    return "Flatten", {"start": _pos_dim(_arg(args, kwargs, 1, "start_dim", 0), nd),
                       "end": _pos_dim(_arg(args, kwargs, 2, "end_dim", -1), nd)}


def _reshape(args, kwargs):
    # Only the change of rank is kept: the sizes follow from the input resolution.
    x = args[0] if args else kwargs.get("input")
    shape = args[1:] if len(args) > 2 else (args[1] if len(args) == 2 else kwargs.get("shape", ()))
    if isinstance(shape, int):
        shape = (shape,)
    return "reshape", {"rank": [_ndim(x), len(shape) if isinstance(shape, (tuple, list)) else None]}


def _permute(args, kwargs):
    dims = args[1:] if len(args) > 2 else (args[1] if len(args) == 2 else kwargs.get("dims"))
    if isinstance(dims, int):
        dims = (dims,)
    nd = _ndim(args[0]) if args else None
    return "permute", {"dims": [_pos_dim(d, nd) for d in dims] if dims is not None else None}


def _transpose(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    d0 = _pos_dim(_arg(args, kwargs, 1, "dim0"), _ndim(x))
    d1 = _pos_dim(_arg(args, kwargs, 2, "dim1"), _ndim(x))
    dims = sorted((d0, d1)) if isinstance(d0, int) and isinstance(d1, int) else [d0, d1]
    return "transpose", {"dims": dims}


def _sdpa(args, kwargs):
    q = _arg(args, kwargs, 0, "query")
    params: dict[str, Any] = {}
    if _ndim(q) and q.ndim >= 3:
        params = {"heads": q.shape[-3] if q.ndim >= 4 else 1, "head_dim": q.shape[-1]}
    params["causal"] = bool(_arg(args, kwargs, 5, "is_causal", False))
    params["mask"] = _arg(args, kwargs, 3, "attn_mask") is not None
    return "scaled_dot_product_attention", params


def _einsum(args, kwargs):
    eq = args[0] if args else kwargs.get("equation")
    return "einsum", {"eq": eq.replace(" ", "") if isinstance(eq, str) else None}


def _plain_op(name: str) -> Callable:
    return lambda args, kwargs: (name, {})


def _roll(args, kwargs):
    x = _arg(args, kwargs, 0, "input")
    return "roll", {"dims": _pos_dim(_arg(args, kwargs, 2, "dims"), _ndim(x))}


def _aliases(spec: Callable, *names: str) -> dict[str, Callable]:
    return {n: spec for n in names}


# Tensor-with-tensor arithmetic, under every name it reaches us by: torch functions,
# methods, dunders (``a + b``), in-place forms, and ``operator`` functions (torch.fx).
_BINARY_ALIASES = {
    "add": ("add", "__add__", "__radd__", "__iadd__", "add_", "iadd"),
    "sub": ("sub", "__sub__", "__rsub__", "__isub__", "sub_", "subtract", "isub"),
    "mul": ("mul", "__mul__", "__rmul__", "__imul__", "mul_", "multiply", "imul"),
    "div": ("div", "__truediv__", "__rtruediv__", "__itruediv__", "div_", "divide", "truediv",
            "itruediv"),
}
_BINARY_NAMES = frozenset(n for names in _BINARY_ALIASES.values() for n in names)

# Keyed by ``func.__name__``: torch.add, Tensor.add, Tensor.__add__ and Tensor.add_ all
# reach ``__torch_function__`` with different objects but these names.
FUNCTION_OPS: dict[str, Callable] = {
    **{name: _binary(op) for op, names in _BINARY_ALIASES.items() for name in names},
    **_aliases(_cat("cat"), "cat", "concat", "concatenate"),
    "stack": _cat("stack"),
    **_aliases(_plain_op("matmul"), "matmul", "__matmul__", "__rmatmul__", "bmm", "mm", "baddbmm"),
    "einsum": _einsum,
    "scaled_dot_product_attention": _sdpa,
    **_aliases(_softmax("Softmax"), "softmax", "_softmax"),
    "log_softmax": _softmax("LogSoftmax"),
    **_aliases(_conv, "conv1d", "conv2d", "conv3d"),
    "linear": _linear,
    "batch_norm": _batch_norm,
    "instance_norm": _instance_norm,
    "layer_norm": _layer_norm,
    "group_norm": _group_norm,
    "rms_norm": _rms_norm,
    "normalize": _normalize,
    **_aliases(_act("ReLU"), "relu", "relu_"),
    "relu6": _act("ReLU6"),
    "gelu": _act("GELU", approx=(1, "approximate", "none")),
    **_aliases(_act("SiLU"), "silu", "silu_"),
    **_aliases(_act("Sigmoid"), "sigmoid", "sigmoid_"),
    **_aliases(_act("Tanh"), "tanh", "tanh_"),
    **_aliases(_act("Hardswish"), "hardswish", "hardswish_"),
    **_aliases(_act("Hardsigmoid"), "hardsigmoid", "hardsigmoid_"),
    **_aliases(_act("Hardtanh"), "hardtanh", "hardtanh_"),
    **_aliases(_act("LeakyReLU", slope=(1, "negative_slope", 0.01)), "leaky_relu", "leaky_relu_"),
    **_aliases(_act("ELU"), "elu", "elu_"),
    "selu": _act("SELU"),
    "mish": _act("Mish"),
    "softplus": _act("Softplus"),
    **_aliases(_pool("MaxPool"), "max_pool1d", "max_pool2d", "max_pool3d",
               "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices"),
    **_aliases(_pool("AvgPool"), "avg_pool1d", "avg_pool2d", "avg_pool3d"),
    **_aliases(_adaptive_pool("AdaptiveAvgPool"), "adaptive_avg_pool1d", "adaptive_avg_pool2d",
               "adaptive_avg_pool3d"),
    **_aliases(_adaptive_pool("AdaptiveMaxPool"), "adaptive_max_pool1d", "adaptive_max_pool2d",
               "adaptive_max_pool3d"),
    "interpolate": _interpolate,
    "pixel_shuffle": _plain_op("PixelShuffle"),
    "mean": _mean,
    "flatten": _flatten,
    **_aliases(_reshape, "reshape", "view"),
    "permute": _permute,
    **_aliases(_transpose, "transpose", "swapaxes"),
    "roll": _roll,
}


def function_call(name: str, args: tuple, kwargs: dict) -> tuple[str, dict] | None:
    """``(op, params)`` for a structural functional call, else ``None``."""
    spec = FUNCTION_OPS.get(name)
    if spec is None:
        return None
    try:
        found = spec(args, kwargs)
    except Exception:  # noqa: BLE001 - an unusual signature: keep the op, drop params
        # Arithmetic we cannot inspect may be a scalar op; anything else is structural.
        found = None if name in _BINARY_NAMES else (name.strip("_"), {})
    if found is None:
        return None
    op, params = found
    return op, {k: plain_value(v) for k, v in params.items()}
