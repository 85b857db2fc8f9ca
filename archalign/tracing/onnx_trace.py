"""Read an ONNX file's graph as a :class:`~archalign.tracing.Trace` (``route="onnx"``).

Every framework exports ONNX (Keras / TensorFlow through tf2onnx, JAX, PaddlePaddle,
MXNet, PyTorch), so any of their architectures can sit in a panel beside timm models.
Only the graph is read: ``onnx.load(path, load_external_data=False)``, so the weights
of a 10 GB model are never touched (initializer *shapes* are in the graph itself).

Nodes are read in the graph's order, which the ONNX standard requires to be a
topological (execution) order. Each node becomes a call named like the torch op of the
same meaning (:data:`ONNX_OPS`), with the keys of ``archalign.tracing.function_ops``, so an
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
``as_exported`` (:mod:`archalign.tokens.folding`), so the two spellings meet.
"""
from __future__ import annotations

import os
from typing import Any

from archalign.tracing.calls import Trace
from archalign.tracing.onnx_ops import ONNX_OPS
from archalign.tracing.onnx_reader import OnnxFileError, GraphReader, load_onnx, element_count

__all__ = ["ONNX_PREFIX", "ONNX_OPS", "OnnxFileError", "is_onnx_spec", "onnx_path",
           "trace_onnx"]

ONNX_PREFIX = "onnx:"


def is_onnx_spec(spec: Any) -> bool:
    """True for ``"onnx:PATH"`` or a path ending in ``.onnx``."""
    return isinstance(spec, (str, os.PathLike)) and (
        os.fspath(spec).startswith(ONNX_PREFIX) or os.fspath(spec).lower().endswith(".onnx"))


def onnx_path(spec: str | os.PathLike) -> str:
    text = os.fspath(spec)
    return text[len(ONNX_PREFIX):] if text.startswith(ONNX_PREFIX) else text


def trace_onnx(spec: str | os.PathLike) -> Trace:
    """The :class:`Trace` of an ONNX file (``"model.onnx"`` or ``"onnx:PATH"``).

    Raises
    ------
    FileNotFoundError
        No file at the path.
    OnnxFileError
        (a ``TraceError`` and a ``ValueError``) in one line naming the file: not ONNX,
        truncated or damaged, or a graph against the standard (an attribute of another
        type, a weight of the wrong rank, a negative dimension, a name that is not
        UTF-8, ...), or one with nothing to trace.
    """
    path = onnx_path(spec)
    onnx, model = load_onnx(path)
    reader = GraphReader(onnx, model.graph, path)
    reader.read(model.graph, ONNX_OPS)
    calls = reader.finish()
    if not calls:
        raise OnnxFileError(f"{path}: no structural node in the graph (every node is a "
                            f"constant, shape or data-movement op)")
    notes = ["onnx: static nodes (constants, shape arithmetic), data movement (Identity, "
             "Dropout, Cast, Squeeze, Unsqueeze, Gather, Slice, ...) and arithmetic with "
             "a constant operand are dropped"]
    if reader.subgraphs:
        notes.append(f"onnx: subgraphs not traced, one call each: {', '.join(reader.subgraphs)}")
    opset = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    size = next((reader.shape[i.name][1:] for i in model.graph.input
                 if i.name not in reader.init_shapes and reader.shape.get(i.name)), None)
    n_params = sum(element_count(dims) for dims in reader.init_shapes.values())
    return Trace(model=os.path.basename(path), route="onnx", calls=calls,
                 input_size=tuple(size) if size and all(size) else None, fused_attn=None,
                 num_params=n_params, notes=notes,
                 versions={"onnx": onnx.__version__, "ir": str(model.ir_version),
                           "producer": f"{model.producer_name} {model.producer_version}".strip(),
                           **{f"opset:{k}": str(v) for k, v in opset.items()}})
