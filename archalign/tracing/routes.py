"""The routes of ``archalign.tracing.api.trace``: one function per route.

- ``_meta_route`` / ``_eager_route``: one forward pass under the hook recorder
  (:mod:`archalign.tracing.recorder`).
- ``_fx_route``: the same leaf rule over a ``torch.fx`` graph.
- ``_registration_route``: leaf modules in ``named_modules()`` order.

The public entry points are ``trace_timm`` and ``trace_module``; see
``archalign.tracing.api`` for the routes' contract.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Any
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from archalign.tracing.calls import (DEFAULT_INPUT_SIZE, Call, Trace, TraceError,
                                     TraceFallbackWarning, UnknownModelError,
                                     unknown_model_error)
from archalign.tracing.function_ops import function_call
from archalign.tracing.module_ops import module_call
from archalign.tracing.recorder import (eval_mode, fused_attention, leaf_test, record_forward,
                                        SkipMetaInit, library_versions, module_classes)

# The "eager" route runs a module for real; above this many parameter and buffer
# elements (256 MB in float32) that costs too much memory to be a silent fallback.
EAGER_MAX_ELEMENTS = 64 * 2**20


# ------------------------------------------------------------------------ routes
def _params_and_buffers(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*model.named_parameters(remove_duplicate=False),
            *model.named_buffers(remove_duplicate=False)]


def _input_dtype(model: nn.Module) -> torch.dtype:
    tensors = itertools.chain(model.parameters(), model.buffers())
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)


def _meta_route(model: nn.Module, input_size: Sequence[int], fast_meta: bool = True,
                built_on_meta: bool = False) -> list[Call]:
    x = torch.zeros((1, *input_size), device="meta", dtype=_input_dtype(model))
    state = [] if built_on_meta else _params_and_buffers(model)
    if all(t.is_meta for _, t in state):
        return record_forward(model, lambda: model(x), fast_meta)
    # Swap meta stand-ins in for one forward: no copy of the module, no weights touched.
    meta_state = {name: torch.empty_like(t, device="meta") for name, t in state}
    return record_forward(
        model, lambda: torch.func.functional_call(model, meta_state, (x,)), fast_meta)


def _eager_route(model: nn.Module, input_size: Sequence[int]) -> list[Call]:
    state = _params_and_buffers(model)
    if any(t.is_meta for _, t in state):
        raise TraceError("the module's weights are on the meta device; nothing to run for real")
    elements = sum(t.numel() for _, t in state)
    if elements > EAGER_MAX_ELEMENTS:
        raise TraceError(f"the module has {elements:,} parameter/buffer elements, more than "
                         f"the {EAGER_MAX_ELEMENTS:,} the eager route runs for real")
    device = state[0][1].device if state else torch.device("cpu")
    x = torch.zeros((1, *input_size), device=device, dtype=_input_dtype(model))
    return record_forward(model, lambda: model(x))


class _LeafTracer(torch.fx.Tracer):
    def __init__(self, is_leaf: Callable[[nn.Module], bool], autowrap_functions=()):
        super().__init__(autowrap_functions=tuple(autowrap_functions))
        self._is_leaf = is_leaf

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self._is_leaf(m)


def _fx_route(model: nn.Module, input_size: Sequence[int], timm_model: bool = False) -> list[Call]:
    is_leaf = leaf_test(model)
    autowrap: tuple = ()
    if timm_model:
        # timm marks the modules and functions its own fx tracing must not enter.
        from timm.layers import _fx as timm_fx

        notrace = tuple(timm_fx.get_notrace_modules())
        autowrap = tuple(timm_fx.get_notrace_functions())
        plain_is_leaf = is_leaf

        def is_leaf(m: nn.Module) -> bool:
            return plain_is_leaf(m) or isinstance(m, notrace)
    with eval_mode(model):
        graph = _LeafTracer(is_leaf, autowrap).trace(model)

    calls: list[Call] = []
    sources: dict[Any, frozenset] = {}

    def sources_of(*objs: Any) -> frozenset:
        found: set[int] = set()

        def visit(a: Any) -> None:
            if isinstance(a, torch.fx.Node):
                found.update(sources.get(a, ()))
            elif isinstance(a, (list, tuple)):
                for x in a:
                    visit(x)
            elif isinstance(a, dict):
                for x in a.values():
                    visit(x)
        visit(objs)
        return frozenset(found)

    def path_of(node: torch.fx.Node) -> str:
        # nn_module_stack: the modules the node was traced inside, outermost first.
        stack = node.meta.get("nn_module_stack") or {}
        return next(reversed(stack.values()))[0] if stack else ""

    for node in graph.nodes:
        found = None
        if node.op == "call_module":
            found = module_call(model.get_submodule(node.target))
            kind, path = "module", node.target
        elif node.op in ("call_function", "call_method"):
            target = node.target
            name = target if isinstance(target, str) else getattr(target, "__name__", "")
            found = function_call(name, node.args, node.kwargs)
            kind, path = "function", path_of(node)
        if found is None:
            sources[node] = sources_of(node.args, node.kwargs)
        else:
            index = len(calls)
            calls.append(Call(index, kind, found[0], path, found[1],
                              sorted(sources_of(node.args, node.kwargs))))
            sources[node] = frozenset((index,))
    return calls


def _registration_route(model: nn.Module, input_size: Sequence[int]) -> list[Call]:
    is_leaf = leaf_test(model)
    calls: list[Call] = []
    hidden: list[str] = []  # paths of leaves that have children: those are part of them
    for name, m in model.named_modules():
        if not is_leaf(m) or any(name.startswith(p) for p in hidden):
            continue
        if next(iter(m.children()), None) is not None:
            hidden.append(name + ".")
        found = module_call(m)
        if found is not None:
            i = len(calls)
            # Data flow is unknown here: the edges only chain the calls in this order.
            calls.append(Call(i, "module", found[0], name, found[1], (i - 1,) if i else ()))
    return calls


def _run_routes(model: nn.Module, name: str, input_size: tuple, routes: Sequence[str],
                warn: bool, timm_model: bool, fused_attn: bool | None) -> Trace:
    runners = {
        "meta": lambda m, s: _meta_route(m, s, built_on_meta=timm_model),
        "eager": _eager_route,
        "fx": lambda m, s: _fx_route(m, s, timm_model=timm_model),
        "registration": _registration_route,
    }
    notes: list[str] = []
    for route in routes:
        try:
            calls = runners[route](model, input_size)
        except Exception as e:  # noqa: BLE001 - any failure means: try the next route
            first_line = (str(e).strip().splitlines() or [""])[0][:300]
            notes.append(f"{route} route failed: {type(e).__name__}: {first_line}")
            continue
        if not calls:
            notes.append(f"{route} route recorded no calls")
            continue
        if notes and warn:
            warnings.warn(f"{name}: traced by the fallback route {route!r} ({'; '.join(notes)})",
                          TraceFallbackWarning, stacklevel=4)
        num_params = sum(p.numel() for p in model.parameters())
        return Trace(model=name, route=route, calls=calls, input_size=tuple(input_size),
                     fused_attn=fused_attn, num_params=num_params, notes=notes,
                     versions=library_versions(), modules=module_classes(model, calls))
    if all(n.endswith("recorded no calls") for n in notes):
        raise TraceError(f"{name}: no route recorded any call: the model has no leaf "
                         f"modules and runs no structural op. Is it empty?")
    raise TraceError(f"{name}: could not be traced by any route: " + "; ".join(notes))


# ------------------------------------------------------------------ entry points
def check_timm_name(name: str) -> None:
    """Raise ``UnknownModelError`` with the closest names if timm lacks ``name``."""
    import timm

    if any(c in name for c in "*?["):
        raise UnknownModelError(f"{name!r} is a pattern, not a model name; use "
                                f"archalign.trace_many([{name!r}]) to trace every match")
    arch = name.split(".", 1)[0]  # "vit_base_patch16_224.augreg_in21k" -> architecture
    if not timm.is_model(arch):
        raise unknown_model_error(name, timm.list_models())


def trace_timm(name: str, input_size: tuple | None, *, fused_attn: bool,
               routes: Sequence[str], warn: bool) -> Trace:
    import timm
    import timm.data

    check_timm_name(name)
    with fused_attention(fused_attn):
        try:
            with torch.device("meta"), SkipMetaInit():
                model = timm.create_model(name, pretrained=False)
        except Exception as e:
            raise TraceError(f"{name}: timm could not build it on the meta device: "
                             f"{type(e).__name__}: {e}") from e
        if input_size is None:
            input_size = tuple(timm.data.resolve_model_data_config(model)["input_size"])
        # Weights exist only on meta here, so there is nothing for "eager" to run.
        routes = [r for r in routes if r != "eager"]
        return _run_routes(model, name, input_size, routes, warn, timm_model=True,
                           fused_attn=fused_attn)


def trace_module(model: nn.Module, input_size: tuple | None, *, routes: Sequence[str],
                 warn: bool) -> Trace:
    if not isinstance(model, nn.Module):
        raise TypeError(f"trace() takes an nn.Module or a timm model name, not "
                        f"{type(model).__name__}")
    size = input_size or DEFAULT_INPUT_SIZE
    return _run_routes(model, type(model).__name__, tuple(size), routes, warn,
                       timm_model=False, fused_attn=None)
