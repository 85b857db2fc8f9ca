"""Hugging Face ``transformers`` architectures as traces, built from configs, no weights.

Specs (``pip install 'archalign[transformers]'``):

* ``"transformers:<model_type>"`` (``transformers:bert``, ``transformers:llama``): the
  default config, ``AutoConfig.for_model(model_type)``; ``"transformers:*"`` (or any
  fnmatch pattern) is every model type ``AutoModel`` can build
  (:func:`list_model_types`);
* ``"transformers:/path/config.json"`` (or a folder holding one): a local config. A
  reference that looks like a path (a ``/`` or ``\\``, a ``.json`` suffix, a leading
  ``.`` or ``~``) is one: missing, it is an error naming it, never a hub request;
* ``"transformers:hub:<hub id>"`` (``transformers:hub:google-bert/bert-base-uncased``):
  the hub config, when the machine is online (the tests never are). Only this form
  reaches the network, and it warns that it does.

The model is ``AutoModel.from_config(config)`` (the bare backbone, no task head) built
under ``torch.device("meta")``: no weights, no memory. Dummy inputs follow its
``forward`` signature (:mod:`archalign.tracing.transformers_inputs`): token ids for text,
images for vision, both for multimodal models, waveforms or spectrograms for speech,
patch sequences with ``grid_thw`` for Qwen2-VL-style vision towers. The forward pass
is recorded by the same recorder as timm models (``route="meta"``). If that fails it is
tried on meta in bfloat16 (mixture-of-experts grouped matmuls take no float32). Models
whose forward needs real values (``Tensor.item()``, data-dependent masks) and that have
at most ``EAGER_MAX_PARAMS`` parameters are then built for real on the CPU (weights
left uninitialised: values change no token) and run once on zero inputs
(``route="eager"``). Bigger ones are built for real with every layer count lowered to
``REDUCED_DEPTH`` (``route="reduced"``: rolled tokens collapse repeated layers, so the
design survives; unrolled, such a trace is shorter than the model). Each route
tries every candidate input set in turn; the notes say what failed. A model
type that needs another package (``timm``, ``scipy``, ...) or whose default config its
own class rejects raises :class:`BuildError` ("cannot build ..."), naming the package
or the reason.

Traces of named specs go through the zoo cache and runner (``archalign trace
--transformers-all``, :func:`archalign.trace_many`): worker processes, per-model
timeouts, ``failures.json``, resume; the cache key holds the transformers version.
"""
from __future__ import annotations

import difflib
import os
from typing import Any

from archalign.tracing.calls import Trace, TraceError, UnknownModelError
from archalign.tracing.transformers_inputs import dummy_inputs
from archalign.utils.errors import MissingExtraError

__all__ = ["TRANSFORMERS_PREFIX", "HUB_PREFIX", "EAGER_MAX_PARAMS", "BuildError",
           "is_transformers_spec", "list_model_types", "trace_transformers", "check_reference"]

TRANSFORMERS_PREFIX = "transformers:"
HUB_PREFIX = "hub:"  # transformers:hub:<id>, the one spec that may use the network
EAGER_MAX_PARAMS = 1_000_000_000  # 4 GB of float32 weights at most, built once


class BuildError(TraceError):
    """The model cannot be built from its config (a missing package, a config that
    its own ``__init__`` rejects): not a tracing failure. Messages start with
    ``"cannot build"``, so zoo failure lists can tell the two apart."""


def is_transformers_spec(spec: Any) -> bool:
    return isinstance(spec, str) and spec.startswith(TRANSFORMERS_PREFIX)


def _import():
    try:
        import transformers
    except ImportError:
        raise MissingExtraError("transformers: specs need the transformers package: pip install "
                          "'archalign[transformers]'") from None
    return transformers


def list_model_types() -> list[str]:
    """Every model type ``AutoModel.from_config`` can build, sorted."""
    _import()
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return sorted(MODEL_MAPPING_NAMES)


def _looks_like_path(ref: str) -> bool:
    # model types are bare words (bert, gpt2, xlm-roberta, qwen2_vl), hub ids are marked
    return ("/" in ref or "\\" in ref or ref.lower().endswith(".json")
            or ref.startswith((".", "~")))


def check_reference(ref: str) -> str:
    """What the part of a ``transformers:`` spec after the prefix names: ``"hub"``,
    ``"path"`` or ``"type"``, checked without building anything or using the network.

    A hub id warns that reading it is a network request; a path must exist (a
    config.json, or a folder holding one); anything else must be a model type.

    Raises
    ------
    UnknownModelError
        One line: a missing path, a folder without config.json, an empty hub id, or an
        unknown model type (with the closest ones).
    """
    spec = TRANSFORMERS_PREFIX + ref
    if ref.startswith(HUB_PREFIX):
        if not ref[len(HUB_PREFIX):]:
            raise UnknownModelError(f"{spec}: give the hub id after hub:, e.g. "
                                    f"transformers:hub:google-bert/bert-base-uncased")
        import warnings

        warnings.warn(f"{spec}: reading its config from the Hugging Face hub (a network "
                      f"request; HF_HUB_OFFLINE=1 reads the local hub cache only)",
                      stacklevel=2)
        return "hub"
    if not _looks_like_path(ref):
        _import()
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

        if ref in CONFIG_MAPPING_NAMES:
            return "type"
        if not os.path.exists(ref):  # a bare word that is no file: a mistyped type
            close = difflib.get_close_matches(ref, list(CONFIG_MAPPING_NAMES), n=5,
                                              cutoff=0.6)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise UnknownModelError(f"unknown transformers model type {ref!r}{hint} (see "
                                    f"archalign.tracing.transformers_trace."
                                    f"list_model_types(); a hub model is "
                                    f"transformers:hub:<id>)")
    path = os.path.expanduser(ref)
    if not os.path.exists(path):
        raise UnknownModelError(f"{spec}: no such config file or folder "
                                f"({os.path.abspath(path)}); give a config.json or a folder "
                                f"holding one (a hub model is transformers:hub:<id>)")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise UnknownModelError(f"{spec}: the folder holds no config.json; give a "
                                f"config.json or a folder holding one")
    return "path"


def _config(ref: str):
    transformers = _import()
    kind = check_reference(ref)
    if kind == "type":
        return transformers.AutoConfig.for_model(ref)
    if kind == "path":  # local_files_only: a local config never becomes a hub request
        return transformers.AutoConfig.from_pretrained(os.path.expanduser(ref),
                                                       local_files_only=True)
    return transformers.AutoConfig.from_pretrained(ref[len(HUB_PREFIX):])


def _build(config, device):
    import contextlib

    import torch
    from transformers import AutoModel

    try:  # random initialisation of a real model costs seconds and changes no token
        from transformers.modeling_utils import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        no_init_weights = contextlib.nullcontext
    try:
        with torch.device(device), no_init_weights():
            return AutoModel.from_config(config)
    except ImportError as exc:  # e.g. "requires the timm library"
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise BuildError(f"cannot build {config.model_type}: it needs another package: "
                         f"{first}") from None
    except Exception as exc:  # noqa: BLE001 - a default config its class rejects
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise BuildError(f"cannot build {config.model_type} from its config: "
                         f"{type(exc).__name__}: {first}") from None


_DEPTH_KEYS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers",
               "decoder_layers", "num_encoder_layers", "num_decoder_layers")
REDUCED_DEPTH = 2


def reduced_depth(config):
    """A copy of ``config`` with every layer count above ``REDUCED_DEPTH`` lowered to it
    (sub-configs too, and ``layer_types`` lists cut to match), or None when nothing
    changed. Rolled tokens collapse repeated layers, so a reduced model keeps the
    design a big one has."""
    import copy

    config = copy.deepcopy(config)
    changed = False

    def visit(cfg) -> None:
        nonlocal changed
        for key in _DEPTH_KEYS:
            value = getattr(cfg, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > REDUCED_DEPTH:
                setattr(cfg, key, REDUCED_DEPTH)
                changed = True
        layer_types = getattr(cfg, "layer_types", None)
        if isinstance(layer_types, list) and len(layer_types) > REDUCED_DEPTH:
            cfg.layer_types = layer_types[:REDUCED_DEPTH]
        for value in list(vars(cfg).values()):
            if hasattr(value, "to_dict") and hasattr(value, "model_type"):
                visit(value)

    visit(config)
    return config if changed else None


def _input_size(inputs: dict) -> tuple[int, ...]:
    first = inputs.get("pixel_values", next(v for v in inputs.values() if hasattr(v, "shape")))
    return tuple(int(s) for s in first.shape[1:])


def _class_prefix(model) -> str:
    """``"Llama"`` for ``LlamaModel``: transformers names every module of a model type
    ``<Prefix><Concept>`` (LlamaRMSNorm, LlamaMLP)."""
    name = type(model).__name__
    for suffix in ("Model", "ForConditionalGeneration", "Encoder", "Transformer"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _canonical(call, prefix: str):
    """One spelling across model types: the class prefix dropped (so LlamaRMSNorm and
    Qwen2RMSNorm are one token) and GPT-2's ``Conv1D`` (a transposed Linear) read as
    ``Linear``."""
    from archalign.tracing.calls import Call

    op, params = call.op, call.params
    if op == "Conv1D":
        op, params = "Linear", {"in": params.get("nx"), "out": params.get("nf"), "bias": True}
    elif prefix and op.startswith(prefix) and op[len(prefix):][:1].isupper():
        op = op[len(prefix):]
    return Call(call.index, call.kind, op, call.path, params, call.inputs, call.shape)


def trace_transformers(spec: str) -> Trace:
    """The :class:`Trace` of ``"transformers:<model_type | config path | hub:<id>>"``."""
    ref = spec[len(TRANSFORMERS_PREFIX):] if is_transformers_spec(spec) else spec
    try:
        config = _config(ref)
    except (UnknownModelError, ImportError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a config class that needs arguments
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise BuildError(f"cannot build {ref}: no default config: {type(exc).__name__}: "
                         f"{first}") from None
    notes: list[str] = []
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "pass an attention_mask": not for a shape trace
    try:
        return _trace(spec, config, notes)
    finally:
        hf_logging.set_verbosity(verbosity)


def _run(model, config, device, dtype, route, notes):
    """Calls of the first input set whose forward runs, or None (failures in notes)."""
    from archalign.tracing import recorder as _trace_record

    for inputs in dummy_inputs(model, config, device, dtype):
        try:
            calls = _trace_record.record_forward(model, lambda: model(**inputs))
            return calls, inputs
        except Exception as exc:  # noqa: BLE001 - try the next inputs / route
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            notes.append(f"{route} ({str(dtype).replace('torch.', '')}, "
                         f"{'+'.join(inputs)}) failed: {type(exc).__name__}: {first}")
    return None, None


def _trace(spec: str, config, notes: list) -> Trace:
    import torch

    model = _build(config, "meta")
    num_params = sum(p.numel() for p in model.parameters())
    calls = inputs = None
    dtype = torch.float32
    # meta in float32, then bfloat16 (MoE grouped matmuls take no float32)
    for dtype in (torch.float32, torch.bfloat16):
        calls, inputs = _run(model.to(dtype), config, "meta", dtype, "meta", notes)
        if calls is not None:
            route = "meta"
            break
    if calls is None:  # forwards that read values (Tensor.item()): run for real
        dtype, real = torch.float32, None
        if num_params <= EAGER_MAX_PARAMS:
            real, route = config, "eager"
        else:
            smaller = reduced_depth(config)
            if smaller is not None and sum(p.numel() for p in _build(smaller, "meta")
                                           .parameters()) <= EAGER_MAX_PARAMS:
                real, route = smaller, "reduced"
                notes.append(f"built for real with at most {REDUCED_DEPTH} layers per stack "
                             f"({num_params:,} parameters at full depth)")
        if real is not None:
            torch.manual_seed(0)
            calls, inputs = _run(_build(real, "cpu"), real, "cpu", dtype, route, notes)
    if calls is None:
        big = "" if num_params <= EAGER_MAX_PARAMS else (
            f"; {num_params:,} parameters, too many to build for real (limit "
            f"{EAGER_MAX_PARAMS:,}) even at reduced depth")
        raise TraceError(f"{spec}: no forward ran: {'; '.join(notes)}{big}")
    if dtype != torch.float32:
        notes.append(f"traced in {str(dtype).replace('torch.', '')}")
    if not calls:
        raise TraceError(f"{spec}: the forward pass recorded no calls")
    prefix = _class_prefix(model)
    calls = [_canonical(c, prefix) for c in calls]
    notes.append(f"transformers: the model's class prefix {prefix!r} is stripped from "
                 f"module names (LlamaRMSNorm -> RMSNorm); Conv1D reads as Linear")
    from importlib import metadata

    from archalign.tracing.recorder import module_classes

    # the meta-built model names every module a reduced-depth build ran, and more
    return Trace(model=spec, route=route, calls=calls, input_size=_input_size(inputs),
                 fused_attn=None, num_params=num_params, notes=notes,
                 modules=module_classes(model, calls),
                 versions={"transformers": metadata.version("transformers"),
                           "torch": torch.__version__.split("+")[0],
                           "model_type": config.model_type})
