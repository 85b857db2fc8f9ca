"""The ONNX op table (``ONNX_OPS``): each handler turns one node into the call the torch
tracer would record for the same op, with the keys of :mod:`archalign.tracing.function_ops`.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Callable

from archalign.tracing.calls import Call
from archalign.tracing.onnx_reader import GraphReader

__all__ = ["ONNX_OPS"]

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


# ----------------------------------------------------------------- op handlers
def _spatial_name(base: str, rank: int | None) -> str:
    return f"{base}{rank - 2}d" if rank in (3, 4, 5) else f"{base}2d"


def _symmetric(pads, n: int):
    if not pads:
        return [0] * n
    begin, end = list(pads[:n]), list(pads[n:])
    return begin if begin == end else list(pads)


def _conv(reader: GraphReader, node, base: str = "Conv") -> None:
    a = reader.attrs(node)
    w = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
    if w is not None and len(w) < 3:
        raise reader.refuse(f"weight {node.input[1]!r} has shape {w}; a convolution's is "
                            f"(out, in / groups, *kernel)", node)
    k = list(a.get("kernel_shape") or (w[2:] if w else []))
    n = len(k) or 2
    g = a.get("group", 1)
    params: dict[str, Any] = {}
    if w:
        c_in, c_out = (w[1] * g, w[0]) if base == "Conv" else (w[0], w[1] * g)
        params.update({"in": c_in, "out": c_out})
    params.update({"k": k, "s": list(a.get("strides", [1] * n)),
                   "p": _symmetric(a.get("pads"), n), "d": list(a.get("dilations", [1] * n)),
                   "g": g, "bias": len(node.input) > 2 and bool(node.input[2])})
    reader.emit(node, _spatial_name(base, n + 2), params, reader.live(node)[:1])


def _batch_norm(reader: GraphReader, node) -> None:
    a = reader.attrs(node)
    scale = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
    rank = reader.rank.get(node.input[0])
    reader.emit(node, _spatial_name("BatchNorm", rank) if rank != 2 else "BatchNorm1d",
                {"c": scale[0] if scale else None, "eps": a.get("epsilon", 1e-5),
                 "affine": True}, reader.live(node)[:1])


def _instance_norm(reader: GraphReader, node) -> None:
    a = reader.attrs(node)
    scale = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
    reader.emit(node, _spatial_name("InstanceNorm", reader.rank.get(node.input[0])),
                {"c": scale[0] if scale else None, "eps": a.get("epsilon", 1e-5)},
                reader.live(node)[:1])


def _layer_norm(reader: GraphReader, node) -> None:
    a = reader.attrs(node)
    scale = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
    reader.emit(node, "LayerNorm", {"shape": scale, "eps": a.get("epsilon", 1e-5),
                                    "affine": len(node.input) > 1},
                reader.live(node)[:1])


def _gemm(reader: GraphReader, node) -> None:
    a = reader.attrs(node)
    w = reader.init_shapes.get(node.input[1])
    if w is None:  # two activations: a matrix product, not a layer
        reader.emit(node, "matmul", {})
        return
    if len(w) != 2:
        raise reader.refuse(f"weight {node.input[1]!r} has shape {w}; Gemm's is a matrix",
                            node)
    out, c_in = (w[0], w[1]) if a.get("transB", 0) else (w[1], w[0])
    reader.emit(node, "Linear", {"in": c_in, "out": out,
                                 "bias": len(node.input) > 2 and bool(node.input[2])},
                reader.live(node)[:1])


def _matmul(reader: GraphReader, node) -> None:
    w = reader.init_shapes.get(node.input[1])
    if w is not None and len(w) == 2:  # x @ W: a linear layer (its bias Add follows)
        reader.emit(node, "Linear", {"in": w[0], "out": w[1], "bias": False},
                    reader.live(node)[:1])
        return
    # attention: softmax(q k^T) v ends in a MatMul whose first operand is the softmax
    first = reader.producer(node.input[0])
    if first is not None and first.op == "Softmax" and len(first.inputs) == 1 \
            and reader.calls[first.inputs[0]].op == "matmul":
        scores = reader.calls[first.inputs[0]]
        reader.dropped.update((scores.index, first.index))
        _drop_exporter_views(reader, scores)
        shape = reader.shape.get(node.input[0]) or []
        params: dict[str, Any] = {}
        if len(shape) >= 3:
            params = {"heads": shape[-3] if len(shape) >= 4 else 1,
                      "head_dim": (reader.shape.get(node.input[1]) or [None])[-1]}
        params.update({"causal": False, "mask": False})
        index = reader.emit(node, "scaled_dot_product_attention", params, inputs=[])
        reader.calls[index].inputs = tuple(dict.fromkeys(
            scores.inputs + reader.producers(reader.live(node)[1:])))
        return
    reader.emit(node, "matmul", {})


_VIEWS = ("reshape", "transpose", "permute")


def _view_chain(reader: GraphReader, index: int) -> list[int]:
    """The view calls (reshape / transpose / permute) that feed only ``index``'s path,
    walking back from it, nearest first."""
    chain: list[int] = []
    call = reader.calls[index]
    while call.op in _VIEWS and reader.consumers(call.index) <= 1 and len(call.inputs) == 1:
        chain.append(call.index)
        call = reader.calls[call.inputs[0]]
    return chain


def _drop_exporter_views(reader: GraphReader, scores: Call) -> None:
    """Exporters write attention's ``k^T`` as views of their own (dynamo's decomposition
    of ``scaled_dot_product_attention``: reshape, transpose, reshape), which the torch
    op does not show: drop the views on k's path beyond those on q's."""
    if len(scores.inputs) != 2:
        return
    q_views, k_views = (_view_chain(reader, i) for i in scores.inputs)
    reader.dropped.update(k_views[:max(0, len(k_views) - len(q_views))])


def _binary(reader: GraphReader, node) -> None:
    live = reader.operands(node)
    activations = reader.live(node)
    if node.op_type == "Add" and len(activations) == 1 and len(live) == 2:
        linear = reader.producer(activations[0])
        bias = next(i for i in live if i != activations[0])
        if linear is not None and linear.op == "Linear" and linear.index == \
                len(reader.calls) - 1 and len(reader.init_shapes.get(bias, [])) == 1:
            linear.params["bias"] = True  # x @ W + b: the Linear's own bias
            reader.alias(node, activations)
            return
    if len(live) < 2:  # a scale or a shift by a constant: looked through
        reader.alias(node)
        return
    if node.op_type == "Mul":
        for x, gate in (live, live[::-1]):
            g = reader.producer(gate)
            if g is not None and g.op in ("Sigmoid", "Hardsigmoid") and \
                    g.inputs == reader.producers([x]) and g.index == len(reader.calls) - 1:
                g.op = "SiLU" if g.op == "Sigmoid" else "Hardswish"
                g.params = {}
                reader.alias(node, [gate])
                return
            if g is not None and g.op == "erf" and g.index == len(reader.calls) - 1:
                g.op, g.params = "GELU", {"approx": "none"}  # x * (1 + erf(x / sqrt 2))
                reader.alias(node, [gate])
                return
    reader.emit(node, _BINARY[node.op_type], {}, live)


def _act(name: str, **keys: tuple[str, Any]) -> Callable:
    def handler(reader: GraphReader, node) -> None:
        a = reader.attrs(node)
        reader.emit(node, name, {k: a.get(attr, d) for k, (attr, d) in keys.items()},
                    reader.live(node)[:1])
    return handler


def _clip(reader: GraphReader, node) -> None:
    bounds = []
    for name in node.input[1:3]:
        bounds.append(reader.constants.get(name))
    a = reader.attrs(node)
    low = bounds[0] if bounds and bounds[0] is not None else a.get("min")
    high = bounds[1] if len(bounds) > 1 and bounds[1] is not None else a.get("max")
    op = "ReLU6" if (low, high) == (0, 6) else "ReLU" if low == 0 and high is None \
        else "Hardtanh"
    reader.emit(node, op, {}, reader.live(node)[:1])


def _concat(reader: GraphReader, node) -> None:
    axis = reader.attrs(node).get("axis", 0)
    rank = reader.rank.get(node.output[0])
    reader.emit(node, "cat", {"dim": axis + rank if axis < 0 and rank else axis,
                              "n": len(node.input)})


def _pool(name: str) -> Callable:
    def handler(reader: GraphReader, node) -> None:
        a = reader.attrs(node)
        k = list(a.get("kernel_shape", []))
        reader.emit(node, _spatial_name(name, len(k) + 2), {
            "k": k, "s": list(a.get("strides", k)), "p": _symmetric(a.get("pads"), len(k))},
            reader.live(node)[:1])
    return handler


def _global_pool(name: str) -> Callable:
    def handler(reader: GraphReader, node) -> None:
        reader.emit(node, _spatial_name(name, reader.rank.get(node.input[0])),
                    {"out_size": 1}, reader.live(node)[:1])
    return handler


def _reduce_mean(reader: GraphReader, node) -> None:
    a = reader.attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = reader.constants.get(node.input[1])
    # a one-element axes tensor reads back as a scalar (opset 18's ReduceMean(x, [-1]))
    axes = [] if axes is None else [axes] if not isinstance(axes, list) else axes
    if not all(isinstance(x, int) for x in axes):
        raise reader.refuse(f"axes {axes} are not whole numbers", node)
    rank = reader.rank.get(node.input[0])
    axes = sorted(x + rank if x < 0 and rank else x for x in axes)
    reader.emit(node, "mean", {"dim": axes, "keepdim": bool(a.get("keepdims", 1))},
                reader.live(node)[:1])


def _softmax(name: str) -> Callable:
    def handler(reader: GraphReader, node) -> None:
        axis = reader.attrs(node).get("axis", -1)
        rank = reader.rank.get(node.input[0])
        reader.emit(node, name, {"dim": axis + rank if axis < 0 and rank else axis},
                    reader.live(node)[:1])
    return handler


def _flatten(reader: GraphReader, node) -> None:
    axis = reader.attrs(node).get("axis", 1)
    rank = reader.rank.get(node.input[0])
    reader.emit(node, "Flatten", {"start": axis, "end": rank - 1 if rank else None},
                reader.live(node)[:1])


def _reshape(reader: GraphReader, node) -> None:
    r_in, r_out = reader.rank.get(node.input[0]), reader.rank.get(node.output[0])
    reader.emit(node, "reshape", {"rank": [r_in, r_out]}, reader.live(node)[:1])


def _transpose(reader: GraphReader, node) -> None:
    perm = list(reader.attrs(node).get("perm", []))
    moved = [i for i, p in enumerate(perm) if p != i]
    if len(moved) == 2:
        reader.emit(node, "transpose", {"dims": moved}, reader.live(node)[:1])
    else:
        reader.emit(node, "permute", {"dims": perm}, reader.live(node)[:1])


def _resize(reader: GraphReader, node) -> None:
    mode = reader.attrs(node).get("mode", "nearest")
    reader.emit(node, "Upsample", {"size": None, "scale": None,
                                   "mode": {"linear": "bilinear"}.get(mode, mode)},
                reader.live(node)[:1])


def _erf(reader: GraphReader, node) -> None:
    reader.emit(node, "erf", {}, reader.live(node)[:1])


ONNX_OPS: dict[str, Callable] = {
    "Conv": _conv,
    "ConvTranspose": lambda r, n: _conv(r, n, "ConvTranspose"),
    "BatchNormalization": _batch_norm,
    "InstanceNormalization": _instance_norm,
    "LayerNormalization": _layer_norm,
    "Gemm": _gemm,
    "MatMul": _matmul,
    **{op: _binary for op in _BINARY},
    "Relu": _act("ReLU"),
    "Sigmoid": _act("Sigmoid"),
    "Tanh": _act("Tanh"),
    "HardSwish": _act("Hardswish"),
    "HardSigmoid": _act("Hardsigmoid"),
    "LeakyRelu": _act("LeakyReLU", slope=("alpha", 0.01)),
    "Elu": _act("ELU"),
    "Selu": _act("SELU"),
    "Softplus": _act("Softplus"),
    "Mish": _act("Mish"),
    "Gelu": lambda r, n: r.emit(n, "GELU", {"approx": r.attrs(n).get("approximate", "none")},
                                r.live(n)[:1]),
    "Erf": _erf,
    "Clip": _clip,
    "Concat": _concat,
    "MaxPool": _pool("MaxPool"),
    "AveragePool": _pool("AvgPool"),
    "GlobalAveragePool": _global_pool("AdaptiveAvgPool"),
    "GlobalMaxPool": _global_pool("AdaptiveMaxPool"),
    "ReduceMean": _reduce_mean,
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Resize": _resize,
    "Upsample": _resize,
    "Einsum": lambda r, n: r.emit(n, "einsum", {"eq": r.attrs(n).get("equation", "")
                                                .replace(" ", "")}),
}
