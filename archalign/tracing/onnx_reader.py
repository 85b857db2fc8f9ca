"""One pass over an ONNX graph (``_Reader``): what is dropped, looked through or emitted.

The op handlers it calls are :data:`archalign.tracing.onnx_ops.ONNX_OPS`; the entry
point, and the rules in full, are in :mod:`archalign.tracing.onnx_trace`.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from archalign.tracing.calls import Call
from archalign.tracing.function_ops import _plain


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
    def read(self, graph, ops: dict[str, Callable]) -> None:
        """Read every node; ``ops`` maps an op type to its handler (``ONNX_OPS``)."""
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
            handler = ops.get(op)
            if handler is None:
                self.emit(node, op, {})
            else:
                handler(self, node)


def _size(dims) -> int:
    count = 1
    for d in dims:
        count *= d
    return count


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
