"""One pass over an ONNX graph (``GraphReader``): what is dropped, looked through or emitted.

The op handlers it calls are :data:`archalign.tracing.onnx_ops.ONNX_OPS`; the entry
point, and the rules in full, are in :mod:`archalign.tracing.onnx_trace`.
"""
from __future__ import annotations

import os
from typing import Any
from collections.abc import Callable

from archalign.tracing.calls import Call, TraceError
from archalign.tracing.function_ops import plain_value
from archalign.utils.errors import DataError, MissingExtraError


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
# The attributes the op handlers read, with the type the ONNX standard gives each; a
# crafted file can declare any other type, and is refused rather than misread.
ATTRIBUTE_TYPES = {
    **dict.fromkeys(("kernel_shape", "strides", "pads", "dilations", "perm", "axes"), "INTS"),
    **dict.fromkeys(("group", "axis", "transB", "keepdims"), "INT"),
    **dict.fromkeys(("epsilon", "alpha", "min", "max"), "FLOAT"),
    **dict.fromkeys(("mode", "approximate", "equation"), "STRING"),
}
# The standard's input counts (least, most) of the ops whose handlers read inputs by
# position beyond the first (a handled node always has one: the activation).
ARITY = {"Gemm": (2, 3), "MatMul": (2, 2), **dict.fromkeys(("Add", "Sub", "Mul", "Div"), (2, 2))}


class OnnxFileError(TraceError, DataError):
    """An ONNX file that cannot be read as a graph: missing parts, damaged, or not ONNX.

    A ``TraceError`` as any failed trace is, and a ``ValueError`` so that the command
    lines report it as the one line it is (exit status 2)."""


def load_onnx(path: str):
    try:
        import onnx
    except ImportError:
        raise MissingExtraError("reading ONNX files needs the onnx package: pip install "
                          "'archalign[onnx]'") from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise OnnxFileError(f"{path}: not a readable ONNX model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'cannot parse'}); "
                            f"re-export it or check the download") from None
    if not model.graph.node:
        raise OnnxFileError(f"{path}: not a readable ONNX model (its graph has no nodes; "
                            f"a truncated or non-ONNX file parses that way)")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - shapes only refine params; the graph still reads
        pass
    return onnx, model


class GraphReader:
    """One pass over the nodes; ``sources[name]`` = the calls a tensor comes from."""

    def __init__(self, onnx, graph, path: str) -> None:
        self.onnx = onnx
        self.path = path
        self.calls: list[Call] = []
        self.sources: dict[str, tuple[int, ...]] = {}
        self._check_text(graph)
        self.init_shapes = {t.name: self.dims(t.dims, f"initializer {t.name!r}")
                            for t in graph.initializer}
        # weights stand for tensors in arithmetic (x + pos_embed, x * gamma), as
        # nn.Parameters do in the torch tracer; scalars are constants
        self.weights = {name for name, dims in self.init_shapes.items() if element_count(dims) > 1}
        self.static = set(self.init_shapes) - self.weights
        self.dropped: set[int] = set()
        self.rank: dict[str, int] = {}
        self.shape: dict[str, list] = {}
        for info in [*graph.input, *graph.value_info, *graph.output]:
            tt = info.type.tensor_type
            if tt.HasField("shape"):
                dims = self.dims([d.dim_value if d.HasField("dim_value") else None
                                  for d in tt.shape.dim], f"tensor {info.name!r}")
                self.rank[info.name], self.shape[info.name] = len(dims), dims
        for name, dims in self.init_shapes.items():
            self.rank[name], self.shape[name] = len(dims), dims
        self.subgraphs: list[str] = []
        self.constants = self._constants(graph)

    # ---------------------------------------------------------------- checks
    def refuse(self, what: str, node=None) -> OnnxFileError:
        """The one-line error for a malformed part of the graph (``node``'s, if given)."""
        where = f"node {node.name or '(unnamed)'} ({node.op_type}) " if node is not None else ""
        return OnnxFileError(f"{self.path}: {where}{what}; not a valid ONNX graph (re-export "
                             f"the model or check the file)")

    def _check_text(self, graph) -> None:
        """Every name is text. Protobuf hands a string field that is not UTF-8 back as
        bytes, which would become ops and paths that no token or JSON file can hold."""
        names = [t.name for t in graph.initializer]
        names += [i.name for i in (*graph.input, *graph.value_info, *graph.output)]
        for node in graph.node:
            fields = (node.op_type, node.domain, node.name, *node.input, *node.output,
                      *(a.name for a in node.attribute))
            if not all(isinstance(f, str) for f in fields):
                raise self.refuse(f"a name or op type that is not UTF-8 text "
                                  f"({next(f for f in fields if not isinstance(f, str))!r})")
            if not node.output:
                raise self.refuse("has no output", node)
        if not all(isinstance(n, str) for n in names):
            raise self.refuse("a tensor name that is not UTF-8 text")

    def dims(self, dims, what: str) -> list:
        """``dims`` as a list (None: unknown), refused if one is negative."""
        if any(d is not None and d < 0 for d in dims):
            raise self.refuse(f"{what} has a negative dimension ({list(dims)})")
        return list(dims)

    def _constants(self, graph) -> dict[str, Any]:
        """Small constant values (Clip bounds, ReduceMean axes) by tensor name."""
        from onnx import numpy_helper

        values: dict[str, Any] = {}
        tensors = [(t.name, t) for t in graph.initializer]
        for node in graph.node:
            if node.op_type == "Constant":
                tensors += [(node.output[0], a.t) for a in node.attribute if a.name == "value"]
        for name, tensor in tensors:
            dims = self.dims(tensor.dims, f"tensor {name!r}")
            if tensor.data_location == self.onnx.TensorProto.EXTERNAL or element_count(dims) > 8:
                continue
            try:
                array = numpy_helper.to_array(tensor)
            # onnx's decoder meets an undefined element type (KeyError), data of another
            # length than the shape (ValueError) or of the wrong kind (TypeError)
            except (KeyError, ValueError, TypeError) as exc:
                raise self.refuse(f"tensor {name!r} is damaged ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else 'no data'})"
                                  ) from None
            values[name] = array.item() if array.size == 1 else array.tolist()
        return values

    # ---------------------------------------------------------------- helpers
    def attrs(self, node) -> dict:
        """The attributes the handlers read (:data:`ATTRIBUTE_TYPES`), each checked to
        be of its standard type; strings as text."""
        out = {}
        for a in node.attribute:
            kind = ATTRIBUTE_TYPES.get(a.name)
            if kind is None:
                continue
            if a.type != getattr(self.onnx.AttributeProto, kind):
                declared = self.onnx.AttributeProto.AttributeType.Name(a.type)
                raise self.refuse(f"attribute {a.name} is {declared}, not {kind}", node)
            if kind == "STRING":
                try:
                    out[a.name] = a.s.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.refuse(f"attribute {a.name} is not UTF-8 text", node) from None
            else:
                value = getattr(a, {"INTS": "ints", "INT": "i", "FLOAT": "f"}[kind])
                out[a.name] = list(value) if kind == "INTS" else value
        return out

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
                    {k: plain_value(v) for k, v in params.items()}, self.producers(live),
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
        # A call's inputs are earlier calls, so one pass in order resolves every chain
        # of dropped calls, however long (a recursion would overflow on a crafted one).
        via: dict[int, tuple[int, ...]] = {}
        for c in self.calls:
            via[c.index] = (c.index,) if c.index not in self.dropped else tuple(
                dict.fromkeys(j for i in c.inputs for j in via[i]))
        kept = [c for c in self.calls if c.index not in self.dropped]
        new = {c.index: n for n, c in enumerate(kept)}
        out = []
        for c in kept:
            inputs = tuple(dict.fromkeys(new[j] for i in c.inputs for j in via[i]))
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
            least, most = ARITY.get(op, (1, len(node.input)))
            if not least <= len(node.input) <= most:
                raise self.refuse(f"takes {least}" + (f" to {most}" if most > least else "")
                                  + f" inputs, not {len(node.input)}", node)
            if handler is None:
                self.emit(node, op, {})
            else:
                handler(self, node)


def element_count(dims) -> int:
    count = 1
    for d in dims:
        count *= d
    return count
