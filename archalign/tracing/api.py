"""Turn a PyTorch model, or a timm model name, into the sequence of calls it executes.

``trace(model_or_name)`` returns a :class:`Trace`: every leaf-module call and every
structural functional op (residual add, cat, matmul, attention, softmax, reshape,
pooling, activations called functionally, ...) in **execution order**, each with the
module path it ran in, its op type and its hyper-parameters; ``Trace.tokens()`` reads
it as strings at three granularities and ``Trace.graph`` as a data-flow DiGraph.

Routes, tried in this order (``Trace.route`` says which one produced the trace and
``Trace.notes`` why the earlier ones failed):

1. ``"meta"`` (primary): one forward pass on a meta tensor (no weights, no memory),
   recorded with forward hooks on every module and a ``TorchFunctionMode``. A functional
   op is recorded only when it runs outside a leaf module, so ``F.conv2d`` inside
   ``nn.Conv2d.forward`` is not counted twice.
2. ``"eager"`` (modules you pass in only): the same recording on the module's own
   device with a zero input, when the meta pass failed and the module is small.
3. ``"fx"``: ``torch.fx`` symbolic tracing with the same leaf rule; execution order and
   data flow come from the fx graph, shape-derived hyper-parameters (heads) are missing,
   and for timm models the modules timm marks untraceable (``BatchNormAct2d``, ...)
   are one token each.
4. ``"registration"``: leaf modules in ``named_modules()`` order, each once. Order may
   differ from execution, functional ops are absent and edges just chain the calls.

A *leaf module* is a module without children, or an instance of a class registered with
:func:`register_leaf_module` (``nn.MultiheadAttention`` is registered by default: its
forward is functional code over its own projections). ``nn.Identity`` is never recorded.

Models you pass in are neither modified nor copied. If their parameters are on meta
already they are used as they are; otherwise ``torch.func.functional_call`` swaps in meta
stand-ins for the duration of one forward (the module's own tensors are restored
afterwards). Modules are put in eval mode for the trace and their training flags are
restored.

timm models by name are built with ``pretrained=False`` under ``torch.device("meta")``
with timm's fused-attention switch fixed (``fused_attn=True`` by default, restored
afterwards): the switch changes tokens (a fused ViT block records one
``scaled_dot_product_attention``; unfused, two ``matmul`` + ``Softmax``), so it is part
of every trace and of the zoo cache key. The input size comes from
``timm.data.resolve_model_data_config`` unless given.

The data types (``Trace``, ``Call``, the errors) are in :mod:`archalign.tracing.calls`,
the leaf registry in :mod:`archalign.tracing.leaves`, the routes in
:mod:`archalign.tracing.routes`.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Iterable, Sequence

from archalign.tracing.calls import ROUTES, Trace
from archalign.tracing.onnx_trace import is_onnx_spec, trace_onnx
from archalign.tracing.transformers_trace import is_transformers_spec, trace_transformers
from archalign.utils.errors import UsageError

__all__ = ["trace"]


def trace(model: Any, input_size: Sequence[int] | None = None, *, fused_attn: bool = True,
          routes: Iterable[str] = ROUTES, warn: bool = True) -> Trace:
    """Trace an ``nn.Module`` or a timm model name into a :class:`Trace`.

    Parameters
    ----------
    model : nn.Module or str
        A module (never modified; see the module docstring), a timm model name
        (``"resnet50"``), built without weights on the meta device, or an ONNX file
        (``"model.onnx"``, ``"onnx:PATH"``; graph only, see ``archalign.tracing.onnx_trace``),
        or a transformers architecture (``"transformers:bert"``, see
        ``archalign.tracing.transformers_trace``); for the last two ``input_size`` and
        ``routes`` do not apply.
    input_size : sequence of int, optional
        One sample's size without the batch dimension, e.g. ``(3, 224, 224)``. Default:
        timm's data config for a timm name, else ``DEFAULT_INPUT_SIZE``.
    fused_attn : bool
        timm's fused-attention switch while a named model is built and run (ignored
        for modules you built yourself: timm reads the switch at construction).
    routes : iterable of str
        Routes to try, in order, from ``ROUTES``.
    warn : bool
        Warn when a fallback route had to be used.

    Raises
    ------
    UnknownModelError
        ``model`` is a string timm does not know (the closest names are listed).
    TraceError
        Every route failed, or the model recorded no calls.
    """
    routes = tuple(routes)
    unknown = [r for r in routes if r not in ROUTES]
    if unknown or not routes:
        raise UsageError(f"unknown tracing route(s) {unknown!r}; choose from {ROUTES!r}")
    if input_size is not None:
        input_size = tuple(int(s) for s in input_size)
        if not input_size or any(s <= 0 for s in input_size):
            raise UsageError(f"input_size must be positive sizes without the batch "
                             f"dimension, e.g. (3, 224, 224); got {input_size!r}")
    if is_onnx_spec(model):
        return trace_onnx(model)
    if is_transformers_spec(model):
        return trace_transformers(model)
    from archalign.tracing import routes as recording  # lazy: imports torch

    if isinstance(model, str):
        return recording.trace_timm(model, input_size, fused_attn=fused_attn,
                                     routes=routes, warn=warn)
    return recording.trace_module(model, input_size, routes=routes, warn=warn)
