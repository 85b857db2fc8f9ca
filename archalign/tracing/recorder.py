"""The hook recorder behind the meta and eager routes (``record_forward``).

``_Recorder``: forward hooks on every module plus a ``TorchFunctionMode``. Hooks keep
a stack of the modules being executed; a leaf module's call is recorded when it
returns, a functional op when it runs with no leaf module on the stack. Tensors are
tagged with the calls they came from so data-flow edges can be drawn; ops that are
not recorded pass their inputs' tags on to their outputs.
"""
from __future__ import annotations

import contextlib
from typing import Any
from collections.abc import Callable, Iterator

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from archalign.tracing import leaves
from archalign.tracing.calls import Call
from archalign.tracing.function_ops import function_call
from archalign.tracing.module_ops import module_call


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


def leaf_test(root: nn.Module) -> Callable[[nn.Module], bool]:
    registered = leaves.leaf_module_classes()

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
def eval_mode(model: nn.Module) -> Iterator[None]:
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
def fused_attention(enabled: bool) -> Iterator[None]:
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


class SkipMetaInit(TorchFunctionMode):
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


def library_versions() -> dict[str, str]:
    import timm

    return {"torch": torch.__version__.split("+")[0], "timm": timm.__version__}


# ----------------------------------------------------------------- hook recorder
class _Recorder(TorchFunctionMode):
    def __init__(self, model: nn.Module, fast_meta: bool = True):
        super().__init__()
        self.fast_meta = fast_meta
        self.calls: list[Call] = []
        self.is_leaf = leaf_test(model)
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
        found = module_call(module, args)
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


def module_classes(model: nn.Module, calls: list[Call]) -> dict[str, str]:
    """Class names of the modules on the path of some recorded call (``Trace.modules``)."""
    wanted = {""}
    for c in calls:
        parts = c.path.split(".") if c.path else []
        wanted.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {name: type(m).__name__ for name, m in model.named_modules(remove_duplicate=False)
            if name in wanted}


def record_forward(model: nn.Module, run: Callable[[], Any],
                    fast_meta: bool = True) -> list[Call]:
    recorder = _Recorder(model, fast_meta)
    try:
        with eval_mode(model), torch.no_grad(), recorder:
            run()
    finally:
        recorder.remove_hooks()
    return recorder.calls
