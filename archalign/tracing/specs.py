"""From what users pass (names, patterns, modules, traces) to labelled traces.

Model specs accepted everywhere a list of models is:

- a timm name (``"resnet50"``) or a wildcard pattern over timm names
  (``"resnet*"``, ``"vit_*_patch16_224"``), expanded with ``timm.list_models``;
- ``"torchvision:<name>"`` for torchvision builders (``weights=None``);
- an ONNX file: a path ending in ``.onnx`` or ``"onnx:PATH"`` (``onnx:models/*.onnx``
  globs), read graph-only (``archalign.tracing.onnx_trace``; needs ``archalign[onnx]``);
- ``"transformers:<model_type>"`` (``transformers:*`` patterns), a config path or a hub
  id, built from the config on meta (``archalign.tracing.transformers_trace``; needs
  ``archalign[transformers]``), traced and cached like timm names;
- an ``nn.Module`` (labelled by its class name, made unique);
- an ``archalign.Trace`` (labelled by its name).

Named models are traced through the zoo cache (parallel, resumable; see
``archalign.tracing.zoo``). Models that cannot be traced are reported with their
reason in a warning and left out, never dropped silently; models traced but not cached
(a full or read-only cache) are kept in memory and used, with a warning saying so. The
traces go on to :func:`archalign.tokens.encode.encode_traces`.
"""
from __future__ import annotations

import fnmatch
import glob
import inspect
import warnings

from archalign.utils.deprecation import renamed_keywords
from archalign.utils.errors import UsageError

__all__ = ["expand_specs", "resolve_traces", "TORCHVISION_PREFIX"]

TORCHVISION_PREFIX = "torchvision:"


def expand_specs(specs, cache_dir=None) -> list:
    """Expand wildcard patterns into timm names (or, for ONNX specs, into files);
    keep everything else in order."""
    from archalign.tracing.onnx_trace import ONNX_PREFIX, is_onnx_spec, onnx_path
    from archalign.tracing.zoo_cache import list_timm_models

    if isinstance(specs, (str, bytes)) or not hasattr(specs, "__iter__"):
        specs = [specs]
    out, seen = [], set()
    for spec in specs:
        if isinstance(spec, str) and is_onnx_spec(spec) and any(c in spec for c in "*?["):
            items = [ONNX_PREFIX + p for p in sorted(glob.glob(onnx_path(spec)))]
            if not items:
                raise UsageError(f"pattern {spec!r} matches no file")
        elif isinstance(spec, str) and any(c in spec for c in "*?["):
            # The model list cached per timm version: a pattern costs no timm import.
            names = fnmatch.filter(list_timm_models(cache_dir), spec)
            if not names:
                raise UsageError(f"pattern {spec!r} matches no timm model "
                                 f"(see timm.list_models() for the names)")
            items = names
        else:
            items = [spec]
        for item in items:
            key = item if isinstance(item, str) else id(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
    if not out:
        raise UsageError("no models given")
    return out


def _torchvision_module(name: str):
    import torch
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        import difflib

        close = difflib.get_close_matches(name, torchvision.models.list_models(), n=5)
        raise UsageError(f"unknown torchvision model {name!r}; closest: {close}") from None
    # Segmentation/detection builders fetch backbone weights unless told not to.
    kwargs = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None
    with torch.device("meta"):
        return builder(**kwargs)


@renamed_keywords(jobs="n_jobs")
def resolve_traces(models, *, n_jobs=None, cache_dir=None, progress=True, input_size=None,
                   tokens_only=False):
    """(labels, traces) for a list of model specs, in the order given.

    ``tokens_only=True``: named models come as :class:`archalign.tracing.token_cache.TokenRecord`
    (model, route, length and tokens, read from verified token files beside the trace
    cache) instead of full traces, which is all a comparison needs and ~10x quicker
    for a zoo.
    """
    from archalign.tracing.api import trace
    from archalign.tracing.calls import Trace
    from archalign.tracing.onnx_trace import is_onnx_spec, trace_onnx
    from archalign.tracing.zoo import trace_many

    specs = expand_specs(models, cache_dir)
    named = [s for s in specs if isinstance(s, str) and not s.startswith(TORCHVISION_PREFIX)
             and not is_onnx_spec(s)]
    # files the user named are read first: a bad one fails before any tracing
    files = {s: trace_onnx(s) for s in specs if is_onnx_spec(s)}
    traced, failures, unsaved = {}, {}, {}
    if named and tokens_only:
        traced, failures, unsaved = _token_records(named, n_jobs, cache_dir, progress,
                                                   input_size)
    elif named:
        result = trace_many(named, n_jobs=n_jobs, cache_dir=cache_dir, progress=progress,
                            input_size=input_size)
        traced.update(result.traces)
        failures.update(result.failures)
        unsaved.update(result.unsaved)
    if unsaved:
        warnings.warn(f"{len(unsaved)} model(s) traced but not cached, kept in memory for "
                      f"this run only ({next(iter(unsaved.values()))}): "
                      f"{', '.join(unsaved)}", RuntimeWarning, stacklevel=2)
    labels, traces, used = [], [], set()
    for spec in specs:
        if isinstance(spec, Trace):
            label, tr = spec.model or "trace", spec
        elif isinstance(spec, str) and spec.startswith(TORCHVISION_PREFIX):
            name = spec[len(TORCHVISION_PREFIX):]
            try:
                tr = trace(_torchvision_module(name), input_size, warn=False)
            except Exception as exc:  # a failed model is reported, never fatal
                failures[spec] = f"{type(exc).__name__}: {exc}"
                continue
            label = spec
        elif is_onnx_spec(spec):
            label, tr = str(spec), files[spec]
        elif isinstance(spec, str):
            if spec not in traced:
                continue
            label, tr = spec, traced[spec]
        else:
            label, tr = type(spec).__name__, trace(spec, input_size)
        base, k = label, 2
        while label in used:
            label, k = f"{base}_{k}", k + 1
        used.add(label)
        labels.append(label)
        traces.append(tr)
    if failures:
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(failures.items()))
        warnings.warn(f"{len(failures)} model(s) could not be traced and are left out: {listed}",
                      RuntimeWarning, stacklevel=2)
    if not traces:
        raise UsageError("none of the given models could be traced")
    return labels, traces


def _token_records(names, n_jobs, cache_dir, progress, input_size):
    """Token records of timm models: cached ones read directly, the rest traced first
    (those the cache could not hold come as their traces, which answer the same).

    Returns (records, failures, unsaved): model -> record, model -> why it failed,
    model -> why the cache could not hold its trace."""
    from archalign.tracing.token_cache import load_token_records
    from archalign.tracing.zoo import trace_many
    from archalign.tracing.zoo_cache import gc_paused, cache_path

    paths = {n: cache_path(n, input_size=input_size, cache_dir=cache_dir) for n in names}
    with gc_paused():
        records, missing = load_token_records(paths)
    failures, unsaved = {}, {}
    if missing:
        result = trace_many(missing, n_jobs=n_jobs, cache_dir=cache_dir, progress=progress,
                            input_size=input_size, load=False)
        failures.update(result.failures)
        unsaved.update(result.unsaved)
        records.update({n: result.traces[n] for n in result.unsaved})
        with gc_paused():
            more, unreadable = load_token_records(result.paths)
        records.update(more)
        failures.update(dict.fromkeys(unreadable, "trace file unreadable after tracing"))
    return records, failures, unsaved
