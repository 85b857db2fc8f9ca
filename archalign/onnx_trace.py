"""Read an ONNX file's graph as a :class:`~archalign.tracing.Trace` (``route="onnx"``).

Every framework exports ONNX (Keras / TensorFlow through tf2onnx, JAX, PaddlePaddle,
MXNet, PyTorch), so any of their architectures can sit in a panel beside timm models.
Only the graph is read: ``onnx.load(path, load_external_data=False)``, so the weights
of a 10 GB model are never touched (initializer *shapes* are in the graph itself).

Nodes are read in the graph's order, which the ONNX standard requires to be a
topological (execution) order. Each node becomes a call named like the torch op of the
same meaning (:data:`ONNX_OPS`), with the keys of ``archalign._trace_ops``, so an
exported model and its torch trace produce the same tokens:

=========================================  =======================================
ONNX                                       token
=========================================  =======================================
Conv                                       ``Conv2d`` (k, s, p, d, g; in / out and
                                           bias from the weight initializer)
ConvTranspose                              ``ConvTranspose2d``
BatchNormalization                         ``BatchNorm2d`` (c, eps)
InstanceNormalization / LayerNormalization ``InstanceNorm2d`` / ``LayerNorm``
Gemm; MatMul by an initializer (+ Add of   ``Linear`` (in, out, bias)
an initializer)
MatMul of two activations                  ``matmul``
MatMul -> Softmax -> MatMul (attention)    ``scaled_dot_product_attention``
Relu, Sigmoid, Tanh, HardSwish, Elu, ...   ``ReLU``, ``Sigmoid``, ``Tanh``, ...
Clip to [0, 6]; other Clip                 ``ReLU6``; ``Hardtanh``
x * Sigmoid(x); x * HardSigmoid(x)         ``SiLU``; ``Hardswish``
Gelu; the Erf form x * (1 + erf(x/√2))/2   ``GELU``
Add / Sub / Mul / Div of two activations   ``add`` / ``sub`` / ``mul`` / ``div``
Concat                                     ``cat`` (dim, n)
MaxPool / AveragePool                      ``MaxPool2d`` / ``AvgPool2d`` (k, s, p)
GlobalAveragePool                          ``AdaptiveAvgPool2d(out_size=1)``
ReduceMean                                 ``mean`` (dim, keepdim)
GlobalMaxPool                              ``AdaptiveMaxPool2d(out_size=1)``
Softmax / LogSoftmax                       ``Softmax`` / ``LogSoftmax`` (dim)
Flatten                                    ``Flatten`` (start, end)
Reshape                                    ``reshape`` (rank in, rank out)
Transpose swapping two axes; other         ``transpose`` (dims); ``permute`` (dims)
Resize / Upsample                          ``Upsample`` (mode)
=========================================  =======================================

Other op types keep their ONNX name.

**Dropped** (the rule ``Trace.notes`` states): nodes that carry no structure, that is

* *static* nodes: every input is an initializer, a ``Constant`` or the output of
  another static node, or the node reads only shapes (``Shape``, ``Size``): the shape
  arithmetic of exporters (``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``);
* data movement the torch tracer also looks through: ``Identity``, ``Dropout``,
  ``Cast``, ``Squeeze``, ``Unsqueeze``, ``Expand``, ``Gather``, ``Slice``, ``Split``,
  ``Pad``, ``Tile``, ``Where``, ...; their outputs stand for their inputs in the data
  flow;
* arithmetic with a constant operand (``x * 0.125``): like the torch tracer, only
  tensor-with-tensor arithmetic counts, where a weight (an initializer of more than one
  element: ``x + pos_embed``, ``x * gamma``) is a tensor as an ``nn.Parameter`` is; a
  bias ``Add`` right after a ``MatMul`` by a weight is that ``Linear``'s bias.

**Subgraphs** (``If``, ``Loop``, ``Scan``) are not traced: each is one call of its op
type, and ``Trace.notes`` names them.

**What exporting changes.** Inference exporters fold ``BatchNorm`` into the preceding
convolution (PyTorch's ``torch.onnx.export``, tf2onnx), so an exported ResNet has no
norm tokens left; they write global pooling as ``ReduceMean`` and flattening as
``Reshape``, and decompose attention into ``MatMul -> Softmax -> MatMul`` with reshapes
and transposes of their own (read back as one ``scaled_dot_product_attention``, the
exporter's own views dropped). Panels with an ONNX model read every model
``as_exported`` (:mod:`archalign.folding`), so the two spellings meet.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from archalign._trace_ops import _plain
from archalign.tracing import Call, Trace, TraceError

__all__ = ["ONNX_PREFIX", "ONNX_OPS", "is_onnx_spec", "onnx_path", "trace_onnx"]

ONNX_PREFIX = "onnx:"

# Data movement that the torch tracer looks through (its indexing, dropout in eval,
# dtype casts, views by index): the output stands for the input in the data flow.
LOOK_THROUGH = frozenset({
    "Identity", "Dropout", "Cast", "CastLike", "Squeeze", "Unsqueeze", "Expand", "Gather",
    "GatherElements", "GatherND", "Slice", "Split", "Pad", "Tile", "Where", "Neg",
    "Reciprocal", "Sqrt", "Pow", "Not", "Equal", "Less", "Greater", "And", "Or", "Min",
    "Max", "Abs", "Floor", "Ceil", "Round", "Trilu", "ScatterND", "ScatterElements",
    "Sign", "Mod",
})
# Nodes whose output is a shape or a constant, whatever their inputs.
STATIC_OPS = frozenset({"Constant", "ConstantOfShape", "Shape", "Size", "Range",
                        "EyeLike", "RandomNormalLike", "RandomUniformLike"})
SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan"})
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


def is_onnx_spec(spec: Any) -> bool:
    """True for ``"onnx:PATH"`` or a path ending in ``.onnx``."""
    return isinstance(spec, (str, os.PathLike)) and (
        os.fspath(spec).startswith(ONNX_PREFIX) or os.fspath(spec).lower().endswith(".onnx"))


def onnx_path(spec: str | os.PathLike) -> str:
    text = os.fspath(spec)
    return text[len(ONNX_PREFIX):] if text.startswith(ONNX_PREFIX) else text


def _load(path: str):
    try:
        import onnx
    except ImportError:
        raise ImportError("reading ONNX files needs the onnx package: pip install "
                          "'archalign[onnx]'") from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'cannot parse'}); "
                         f"re-export it or check the download") from None
    if not model.graph.node:
        raise ValueError(f"{path}: not a readable ONNX model (its graph has no nodes; a "
                         f"truncated or non-ONNX file parses that way)")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - shapes only refine params; the graph still reads
        pass
    return onnx, model


class _Reader:
    """One pass over the nodes; ``sources[name]`` = the calls a tensor comes from."""

    def __init__(self, onnx, graph) -> None:
        self.onnx = onnx
        self.calls: list[Call] = []
        self.sources: dict[str, tuple[int, ...]] = {}
        self.init_shapes = {t.name: list(t.dims) for t in graph.initializer}
        # weights stand for tensors in arithmetic (x + pos_embed, x * gamma), as
        # nn.Parameters do in the torch tracer; scalars are constants
        self.weights = {name for name, dims in self.init_shapes.items() if _size(dims) > 1}
        self.static = set(self.init_shapes) - self.weights
        self.dropped: set[int] = set()
        self.rank: dict[str, int] = {}
        self.shape: dict[str, list] = {}
        for info in [*graph.input, *graph.value_info, *graph.output]:
            tt = info.type.tensor_type
            if tt.HasField("shape"):
                dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                self.rank[info.name], self.shape[info.name] = len(dims), dims
        for name, dims in self.init_shapes.items():
            self.rank[name], self.shape[name] = len(dims), dims
        self.subgraphs: list[str] = []
        self.constants = _constants(onnx, graph)

    # ---------------------------------------------------------------- helpers
    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def live(self, node) -> list[str]:
        """The node's activation inputs (neither constant nor weight)."""
        return [i for i in node.input if i and i not in self.static and i not in self.weights]

    def operands(self, node) -> list[str]:
        """Inputs that count as tensors in arithmetic: activations and weights."""
        return [i for i in node.input if i and i not in self.static]

    def producers(self, names) -> tuple[int, ...]:
        out: list[int] = []
        for name in names:
            for i in self.sources.get(name, ()):
                if i not in out:
                    out.append(i)
        return tuple(out)

    def emit(self, node, op: str, params: dict, inputs=None) -> int:
        live = self.live(node) if inputs is None else inputs
        out = node.output[0] if node.output else ""
        call = Call(len(self.calls), "onnx", op, node.name,
                    {k: _plain(v) for k, v in params.items()}, self.producers(live),
                    self.shape.get(out))
        self.calls.append(call)
        for name in node.output:
            self.sources[name] = (call.index,)
        return call.index

    def alias(self, node, names=None) -> None:
        upstream = self.producers(self.live(node) if names is None else names)
        for name in node.output:
            self.sources[name] = upstream

    def producer(self, name: str) -> Call | None:
        found = self.sources.get(name, ())
        return self.calls[found[0]] if len(found) == 1 else None

    def consumers(self, index: int) -> int:
        return sum(index in c.inputs for c in self.calls)

    def finish(self) -> list[Call]:
        """The kept calls, renumbered; a dropped call's consumers take its inputs."""
        def resolve(i: int) -> tuple[int, ...]:
            if i not in self.dropped:
                return (i,)
            return tuple(j for k in self.calls[i].inputs for j in resolve(k))

        kept = [c for c in self.calls if c.index not in self.dropped]
        new = {c.index: n for n, c in enumerate(kept)}
        out = []
        for c in kept:
            inputs = tuple(dict.fromkeys(new[j] for i in c.inputs for j in resolve(i)))
            out.append(Call(new[c.index], c.kind, c.op, c.path, c.params, inputs, c.shape))
        return out

    # ---------------------------------------------------------------- the pass
    def read(self, graph) -> None:
        for node in graph.node:
            op = node.op_type
            live = self.live(node)
            if op in STATIC_OPS or not live:
                # computed from weights only (a reshaped layer scale): still a weight
                weights = op not in STATIC_OPS and any(i in self.weights for i in node.input)
                (self.weights if weights else self.static).update(o for o in node.output if o)
                continue
            if op in SUBGRAPH_OPS:
                self.subgraphs.append(node.name or op)
                self.emit(node, op, {})
                continue
            if op in LOOK_THROUGH:
                self.alias(node)
                continue
            handler = ONNX_OPS.get(op)
            if handler is None:
                self.emit(node, op, {})
            else:
                handler(self, node)


def _size(dims) -> int:
    count = 1
    for d in dims:
        count *= d
    return count


# ----------------------------------------------------------------- op handlers
def _spatial_name(base: str, rank: int | None) -> str:
    return f"{base}{rank - 2}d" if rank in (3, 4, 5) else f"{base}2d"


def _symmetric(pads, n: int):
    if not pads:
        return [0] * n
    begin, end = list(pads[:n]), list(pads[n:])
    return begin if begin == end else list(pads)


def _conv(reader: _Reader, node, base: str = "Conv") -> None:
    a = reader.attrs(node)
    w = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
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


def _batch_norm(reader: _Reader, node) -> None:
    a = reader.attrs(node)
    scale = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
    rank = reader.rank.get(node.input[0])
    reader.emit(node, _spatial_name("BatchNorm", rank) if rank != 2 else "BatchNorm1d",
                {"c": scale[0] if scale else None, "eps": a.get("epsilon", 1e-5),
                 "affine": True}, reader.live(node)[:1])


def _instance_norm(reader: _Reader, node) -> None:
    a = reader.attrs(node)
    scale = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
    reader.emit(node, _spatial_name("InstanceNorm", reader.rank.get(node.input[0])),
                {"c": scale[0] if scale else None, "eps": a.get("epsilon", 1e-5)},
                reader.live(node)[:1])


def _layer_norm(reader: _Reader, node) -> None:
    a = reader.attrs(node)
    scale = reader.init_shapes.get(node.input[1]) if len(node.input) > 1 else None
    reader.emit(node, "LayerNorm", {"shape": scale, "eps": a.get("epsilon", 1e-5),
                                    "affine": len(node.input) > 1},
                reader.live(node)[:1])


def _gemm(reader: _Reader, node) -> None:
    a = reader.attrs(node)
    w = reader.init_shapes.get(node.input[1])
    if w is None:  # two activations: a matrix product, not a layer
        reader.emit(node, "matmul", {})
        return
    out, c_in = (w[0], w[1]) if a.get("transB", 0) else (w[1], w[0])
    reader.emit(node, "Linear", {"in": c_in, "out": out,
                                 "bias": len(node.input) > 2 and bool(node.input[2])},
                reader.live(node)[:1])


def _matmul(reader: _Reader, node) -> None:
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


def _view_chain(reader: _Reader, index: int) -> list[int]:
    """The view calls (reshape / transpose / permute) that feed only ``index``'s path,
    walking back from it, nearest first."""
    chain: list[int] = []
    call = reader.calls[index]
    while call.op in _VIEWS and reader.consumers(call.index) <= 1 and len(call.inputs) == 1:
        chain.append(call.index)
        call = reader.calls[call.inputs[0]]
    return chain


def _drop_exporter_views(reader: _Reader, scores: Call) -> None:
    """Exporters write attention's ``k^T`` as views of their own (dynamo's decomposition
    of ``scaled_dot_product_attention``: reshape, transpose, reshape), which the torch
    op does not show: drop the views on k's path beyond those on q's."""
    if len(scores.inputs) != 2:
        return
    q_views, k_views = (_view_chain(reader, i) for i in scores.inputs)
    reader.dropped.update(k_views[:max(0, len(k_views) - len(q_views))])


def _binary(reader: _Reader, node) -> None:
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
    def handler(reader: _Reader, node) -> None:
        a = reader.attrs(node)
        reader.emit(node, name, {k: a.get(attr, d) for k, (attr, d) in keys.items()},
                    reader.live(node)[:1])
    return handler


def _clip(reader: _Reader, node) -> None:
    bounds = []
    for name in node.input[1:3]:
        bounds.append(reader.constants.get(name))
    a = reader.attrs(node)
    low = bounds[0] if bounds and bounds[0] is not None else a.get("min")
    high = bounds[1] if len(bounds) > 1 and bounds[1] is not None else a.get("max")
    op = "ReLU6" if (low, high) == (0, 6) else "ReLU" if low == 0 and high is None \
        else "Hardtanh"
    reader.emit(node, op, {}, reader.live(node)[:1])


def _concat(reader: _Reader, node) -> None:
    axis = reader.attrs(node).get("axis", 0)
    rank = reader.rank.get(node.output[0])
    reader.emit(node, "cat", {"dim": axis + rank if axis < 0 and rank else axis,
                              "n": len(node.input)})


def _pool(name: str) -> Callable:
    def handler(reader: _Reader, node) -> None:
        a = reader.attrs(node)
        k = list(a.get("kernel_shape", []))
        reader.emit(node, _spatial_name(name, len(k) + 2), {
            "k": k, "s": list(a.get("strides", k)), "p": _symmetric(a.get("pads"), len(k))},
            reader.live(node)[:1])
    return handler


def _global_pool(name: str) -> Callable:
    def handler(reader: _Reader, node) -> None:
        reader.emit(node, _spatial_name(name, reader.rank.get(node.input[0])),
                    {"out_size": 1}, reader.live(node)[:1])
    return handler


def _reduce_mean(reader: _Reader, node) -> None:
    a = reader.attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = reader.constants.get(node.input[1])
    rank = reader.rank.get(node.input[0])
    axes = sorted(x + rank if x < 0 and rank else x for x in (axes or []))
    reader.emit(node, "mean", {"dim": axes, "keepdim": bool(a.get("keepdims", 1))},
                reader.live(node)[:1])


def _softmax(name: str) -> Callable:
    def handler(reader: _Reader, node) -> None:
        axis = reader.attrs(node).get("axis", -1)
        rank = reader.rank.get(node.input[0])
        reader.emit(node, name, {"dim": axis + rank if axis < 0 and rank else axis},
                    reader.live(node)[:1])
    return handler


def _flatten(reader: _Reader, node) -> None:
    axis = reader.attrs(node).get("axis", 1)
    rank = reader.rank.get(node.input[0])
    reader.emit(node, "Flatten", {"start": axis, "end": rank - 1 if rank else None},
                reader.live(node)[:1])


def _reshape(reader: _Reader, node) -> None:
    r_in, r_out = reader.rank.get(node.input[0]), reader.rank.get(node.output[0])
    reader.emit(node, "reshape", {"rank": [r_in, r_out]}, reader.live(node)[:1])


def _transpose(reader: _Reader, node) -> None:
    perm = list(reader.attrs(node).get("perm", []))
    moved = [i for i, p in enumerate(perm) if p != i]
    if len(moved) == 2:
        reader.emit(node, "transpose", {"dims": moved}, reader.live(node)[:1])
    else:
        reader.emit(node, "permute", {"dims": perm}, reader.live(node)[:1])


def _resize(reader: _Reader, node) -> None:
    mode = reader.attrs(node).get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    reader.emit(node, "Upsample", {"size": None, "scale": None,
                                   "mode": {"linear": "bilinear"}.get(mode, mode)},
                reader.live(node)[:1])


def _erf(reader: _Reader, node) -> None:
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
    "Gelu": lambda r, n: r.emit(n, "GELU", {"approx": (r.attrs(n).get("approximate", b"none")
                                                      .decode())}, r.live(n)[:1]),
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
    "Einsum": lambda r, n: r.emit(n, "einsum", {"eq": r.attrs(n).get("equation", b"").decode()
                                                .replace(" ", "")}),
}


def trace_onnx(spec: str | os.PathLike) -> Trace:
    """The :class:`Trace` of an ONNX file (``"model.onnx"`` or ``"onnx:PATH"``)."""
    path = onnx_path(spec)
    onnx, model = _load(path)
    reader = _Reader(onnx, model.graph)
    reader.read(model.graph)
    calls = reader.finish()
    if not calls:
        raise TraceError(f"{path}: no structural node in the graph (every node is a "
                         f"constant, shape or data-movement op)")
    notes = ["onnx: static nodes (constants, shape arithmetic), data movement (Identity, "
             "Dropout, Cast, Squeeze, Unsqueeze, Gather, Slice, ...) and arithmetic with "
             "a constant operand are dropped"]
    if reader.subgraphs:
        notes.append(f"onnx: subgraphs not traced, one call each: {', '.join(reader.subgraphs)}")
    opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    size = next((reader.shape[i.name][1:] for i in model.graph.input
                 if i.name not in reader.init_shapes and reader.shape.get(i.name)), None)
    n_params = sum(_size(dims) for dims in reader.init_shapes.values())
    return Trace(model=os.path.basename(path), route="onnx", calls=calls,
                 input_size=tuple(size) if size and all(size) else None, fused_attn=None,
                 num_params=n_params, notes=notes,
                 versions={"onnx": onnx.__version__, "ir": str(model.ir_version),
                           "producer": f"{model.producer_name} {model.producer_version}".strip(),
                           **{f"opset:{k}": str(v) for k, v in opset.items()}})


def _constants(onnx, graph) -> dict[str, Any]:
    """Small constant values (Clip bounds, ReduceMean axes) by tensor name."""
    from onnx import numpy_helper

    values: dict[str, Any] = {}
    tensors = [(t.name, t) for t in graph.initializer]
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    tensors.append((node.output[0], a.t))
    for name, tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            continue
        if _size(tensor.dims) <= 8:
            array = numpy_helper.to_array(tensor)
            values[name] = array.item() if array.size == 1 else array.tolist()
    return values
