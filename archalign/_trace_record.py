"""The recording machinery behind ``archalign.tracing.trace``: one function per route.

- ``_Recorder``: forward hooks on every module plus a ``TorchFunctionMode``. Hooks keep
  a stack of the modules being executed; a leaf module's call is recorded when it
  returns, a functional op when it runs with no leaf module on the stack. Tensors are
  tagged with the calls they came from so data-flow edges can be drawn; ops that are
  not recorded pass their inputs' tags on to their outputs.
- ``_fx_route``: the same leaf rule over a ``torch.fx`` graph.
- ``_registration_route``: leaf modules in ``named_modules()`` order.

The public entry points are ``trace_timm`` and ``trace_module``; see
``archalign.tracing`` for the routes' contract.
"""
from __future__ import annotations

import contextlib
import itertools
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from archalign import tracing
from archalign._trace_ops import function_call, module_call
from archalign.tracing import Call, Trace, TraceError, TraceFallbackWarning, UnknownModelError

# The "eager" route runs a module for real; above this many parameter and buffer
# elements (256 MB in float32) that costs too much memory to be a silent fallback.
EAGER_MAX_ELEMENTS = 64 * 2**20


# ------------------------------------------------------------------------ helpers
def _tensors(obj: Any, out: list) -> list:
    """All tensors inside nested tuples / lists / dicts, in order."""
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _tensors(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _tensors(x, out)
    return out


def _leaf_test(root: nn.Module) -> Callable[[nn.Module], bool]:
    tracing._add_default_leaves()
    registered = tuple(tracing._leaf_module_classes)

    def is_leaf(m: nn.Module) -> bool:
        if isinstance(m, registered):
            return True
        if m is root:
            # The model itself is what we look into: a childless custom model shows its
            # functional ops, and a bare nn.Conv2d still records one Conv2d via F.conv2d.
            return False
        # An empty nn.Sequential / ModuleList holds nothing: it is not an operation.
        return next(iter(m.children()), None) is None and not isinstance(m, _CONTAINERS)
    return is_leaf


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Trace in eval mode (dropout off, BatchNorm on running stats, no train-only
    heads), then give every submodule back its own training flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def _fused_attn(enabled: bool) -> Iterator[None]:
    """Fix timm's fused-attention switch (read by attention layers when they are
    built), and restore the caller's setting afterwards."""
    from timm.layers import config, set_fused_attn

    previous = config._USE_FUSED_ATTN
    set_fused_attn(enabled)
    try:
        yield
    finally:
        config._USE_FUSED_ATTN = previous


# In-place ops that only change values: on a meta tensor (which has no values) they are
# no-ops, but torch still runs their Python meta kernels. Weight initialisation is made
# of them and is about half of building a timm model on meta, so it is skipped there.
_VALUE_ONLY_INPLACE = frozenset(
    [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    + ["trunc_normal_", "trunc_normal_tf_", "variance_scaling_", "lecun_normal_",  # timm
       "uniform_", "normal_", "zero_", "fill_", "copy_", "mul_", "add_", "sub_", "div_",
       "clamp_", "clamp_min_", "clamp_max_", "erfinv_", "exp_", "log_", "abs_", "sqrt_",
       "fmod_", "random_", "bernoulli_", "exponential_", "masked_fill_", "fill_diagonal_"])


class _SkipMetaInit(TorchFunctionMode):
    """Skip value-only in-place ops whose target is a meta tensor (model construction)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in _VALUE_ONLY_INPLACE:
            # nn.init functions pass their tensor by keyword through handle_torch_function.
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


# Output-shape rules for the ops whose meta kernels are slowest (decompositions run in
# Python: ~1 ms per batch_norm or layer_norm call, about two thirds of a zoo forward).
# On meta tensors only the output's shape and dtype exist, so the rule gives the same
# result; ``None`` means "let torch run the real meta kernel" (unusual arguments, and
# anything it should reject).
def _like_input(args, kwargs):
    if kwargs.get("inplace"):
        return None
    return torch.empty_like(args[0] if args else kwargs["input"])


def _linear_out(args, kwargs):
    x = args[0] if args else kwargs["input"]
    w = args[1] if len(args) > 1 else kwargs["weight"]
    if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1] or x.dtype != w.dtype:
        return None
    return x.new_empty((*x.shape[:-1], w.shape[0]))


def _sdpa_out(args, kwargs):
    q, k, v = (list(args[:3]) + [kwargs.get(n) for n in ("query", "key", "value")[len(args):]])
    if not (q.ndim == k.ndim == v.ndim >= 2) or q.shape[-1] != k.shape[-1] or kwargs.get(
            "enable_gqa"):
        return None
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    return q.new_empty((*batch, q.shape[-2], v.shape[-1]))


def _lstm_out(args, kwargs):
    # _VF.lstm(input, (h0, c0), weights, has_biases, num_layers, dropout, train,
    #          bidirectional, batch_first): its meta kernel steps through time in Python.
    if kwargs or len(args) != 9 or not isinstance(args[1], (tuple, list)):
        return None
    x, (h0, c0), bidirectional = args[0], args[1], args[7]
    width = h0.shape[-1] * (2 if bidirectional else 1)  # proj_size, if any, is h0's width
    out = x.new_empty((*x.shape[:-1], width))
    return out, torch.empty_like(h0), torch.empty_like(c0)


_META_SHAPE_RULES = {
    **dict.fromkeys(["batch_norm", "layer_norm", "group_norm", "rms_norm", "instance_norm",
                     "normalize", "gelu", "hardswish", "hardsigmoid", "hardtanh"], _like_input),
    "linear": _linear_out,
    "scaled_dot_product_attention": _sdpa_out,
    "lstm": _lstm_out,
}


def _fast_meta(name: str | None, args: tuple, kwargs: dict) -> Any:
    rule = _META_SHAPE_RULES.get(name)
    if rule is None or not args or type(args[0]) not in (torch.Tensor, nn.Parameter):
        return None
    if not args[0].is_meta:
        return None
    try:
        return rule(args, kwargs)
    except Exception:  # noqa: BLE001 - odd arguments: the real kernel decides
        return None


def _versions() -> dict[str, str]:
    import timm

    return {"torch": torch.__version__.split("+")[0], "timm": timm.__version__}


# ----------------------------------------------------------------- hook recorder
class _Recorder(TorchFunctionMode):
    def __init__(self, model: nn.Module, fast_meta: bool = True):
        super().__init__()
        self.fast_meta = fast_meta
        self.calls: list[Call] = []
        self.is_leaf = _leaf_test(model)
        self.paths: dict[int, str] = {}
        for name, m in model.named_modules(remove_duplicate=False):
            self.paths.setdefault(id(m), name)  # a shared module goes by its first name
        self.leaves = {id(m) for m in model.modules() if self.is_leaf(m)}
        self.stack: list[tuple[str, bool]] = []  # (path, counted in leaf_depth)
        self.leaf_depth = 0
        # id(tensor) -> (tensor, indices of the calls it derives from). Holding the
        # tensor keeps its id unique for the whole pass; on meta it costs nothing.
        self.sources: dict[int, tuple[torch.Tensor, frozenset]] = {}
        self.handles: list = []
        for m in model.modules():
            self.handles.append(m.register_forward_pre_hook(self._enter, with_kwargs=True))
            self.handles.append(m.register_forward_hook(self._exit, with_kwargs=True,
                                                        always_call=True))

    def remove_hooks(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    # -- data flow
    def _sources_of(self, *objs: Any) -> frozenset:
        found: set[int] = set()
        for t in _tensors(objs, []):
            entry = self.sources.get(id(t))
            if entry is not None and entry[0] is t:
                found |= entry[1]
        return frozenset(found)

    def _tag(self, out: Any, sources: frozenset) -> tuple | None:
        tensors = _tensors(out, [])
        for t in tensors:
            self.sources[id(t)] = (t, sources)
        return tuple(tensors[0].shape) if tensors else None

    def _record(self, kind: str, op: str, path: str, params: dict, inputs: frozenset,
                out: Any) -> None:
        index = len(self.calls)
        shape = self._tag(out, frozenset((index,)))
        self.calls.append(Call(index, kind, op, path, params, sorted(inputs), shape))

    # -- module hooks
    def _enter(self, module, args, kwargs):
        counted = self.leaf_depth > 0 or id(module) in self.leaves
        self.leaf_depth += counted
        self.stack.append((self.paths.get(id(module), "?"), counted))

    def _exit(self, module, args, kwargs, output):
        path, counted = self.stack.pop()
        if not counted:
            return
        self.leaf_depth -= 1
        if self.leaf_depth:
            return  # a module running inside another leaf is part of that leaf's token
        found = module_call(module)
        if found is None:  # nn.Identity: its output still carries its input's tags
            self._tag(output, self._sources_of(args, kwargs))
        else:
            self._record("module", found[0], path, found[1], self._sources_of(args, kwargs),
                         output)

    # -- functional ops
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", None)
        out = _fast_meta(name, args, kwargs) if self.fast_meta else None
        if out is None:
            out = func(*args, **kwargs)
        if self.leaf_depth or not self.stack:
            return out  # inside a leaf's own code, or outside the model's forward
        found = function_call(name, args, kwargs) if name else None
        if found is None:
            if isinstance(out, (torch.Tensor, tuple, list)):
                self._tag(out, self._sources_of(args, kwargs))
        else:
            self._record("function", found[0], self.stack[-1][0], found[1],
                         self._sources_of(args, kwargs), out)
        return out


def _record_forward(model: nn.Module, run: Callable[[], Any],
                    fast_meta: bool = True) -> list[Call]:
    recorder = _Recorder(model, fast_meta)
    try:
        with _eval_mode(model), torch.no_grad(), recorder:
            run()
    finally:
        recorder.remove_hooks()
    return recorder.calls


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
        return _record_forward(model, lambda: model(x), fast_meta)
    # Swap meta stand-ins in for one forward: no copy of the module, no weights touched.
    meta_state = {name: torch.empty_like(t, device="meta") for name, t in state}
    return _record_forward(
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
    return _record_forward(model, lambda: model(x))


class _LeafTracer(torch.fx.Tracer):
    def __init__(self, is_leaf: Callable[[nn.Module], bool], autowrap_functions=()):
        super().__init__(autowrap_functions=tuple(autowrap_functions))
        self._is_leaf = is_leaf

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self._is_leaf(m)


def _fx_route(model: nn.Module, input_size: Sequence[int], timm_model: bool = False) -> list[Call]:
    is_leaf = _leaf_test(model)
    autowrap: tuple = ()
    if timm_model:
        # timm marks the modules and functions its own fx tracing must not enter.
        from timm.layers import _fx as timm_fx

        notrace = tuple(timm_fx.get_notrace_modules())
        autowrap = tuple(timm_fx.get_notrace_functions())
        plain_is_leaf = is_leaf

        def is_leaf(m: nn.Module) -> bool:
            return plain_is_leaf(m) or isinstance(m, notrace)
    with _eval_mode(model):
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
    is_leaf = _leaf_test(model)
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
                     versions=_versions())
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
        raise tracing.unknown_model_error(name, timm.list_models())


def trace_timm(name: str, input_size: tuple | None, *, fused_attn: bool,
               routes: Sequence[str], warn: bool) -> Trace:
    import timm
    import timm.data

    check_timm_name(name)
    with _fused_attn(fused_attn):
        try:
            with torch.device("meta"), _SkipMetaInit():
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
    size = input_size or tracing.DEFAULT_INPUT_SIZE
    return _run_routes(model, type(model).__name__, tuple(size), routes, warn,
                       timm_model=False, fused_attn=None)
