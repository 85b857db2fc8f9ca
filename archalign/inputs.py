"""From what users pass (names, patterns, modules, traces) to labelled token-id sequences.

Model specs accepted everywhere a list of models is:

- a timm name (``"resnet50"``) or a wildcard pattern over timm names
  (``"resnet*"``, ``"vit_*_patch16_224"``), expanded with ``timm.list_models``;
- ``"torchvision:<name>"`` for torchvision builders (``weights=None``);
- an ``nn.Module`` (labelled by its class name, made unique);
- an ``archalign.Trace`` (labelled by its name).

Named models are traced through the zoo cache (parallel, resumable; see
``archalign.zoo``). Models that cannot be traced are reported with their
reason in a warning and left out, never dropped silently.
"""
from __future__ import annotations

import inspect
import warnings

__all__ = ["expand_specs", "resolve_traces", "encode_traces", "TORCHVISION_PREFIX"]

TORCHVISION_PREFIX = "torchvision:"


def expand_specs(specs) -> list:
    """Expand wildcard patterns into timm names; keep everything else in order."""
    if isinstance(specs, (str, bytes)) or not hasattr(specs, "__iter__"):
        specs = [specs]
    out, seen = [], set()
    for spec in specs:
        if isinstance(spec, str) and any(c in spec for c in "*?["):
            import timm

            names = timm.list_models(spec)
            if not names:
                raise ValueError(f"pattern {spec!r} matches no timm model "
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
        raise ValueError("no models given")
    return out


def _torchvision_module(name: str):
    import torch
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        import difflib

        close = difflib.get_close_matches(name, torchvision.models.list_models(), n=5)
        raise ValueError(f"unknown torchvision model {name!r}; closest: {close}") from None
    # Segmentation/detection builders fetch backbone weights unless told not to.
    kwargs = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None
    with torch.device("meta"):
        return builder(**kwargs)


def resolve_traces(models, *, jobs=None, cache_dir=None, progress=True, input_size=None):
    """(labels, traces) for a list of model specs, in the order given."""
    from .tracing import Trace, trace
    from .zoo import trace_many

    specs = expand_specs(models)
    named = [s for s in specs if isinstance(s, str) and not s.startswith(TORCHVISION_PREFIX)]
    traced = {}
    failures = {}
    if named:
        result = trace_many(named, jobs=jobs, cache_dir=cache_dir, progress=progress,
                            input_size=input_size)
        traced.update(result.traces)
        failures.update(result.failures)
    labels, traces, used = [], [], set()
    for spec in specs:
        if isinstance(spec, Trace):
            label, tr = spec.name or "trace", spec
        elif isinstance(spec, str) and spec.startswith(TORCHVISION_PREFIX):
            name = spec[len(TORCHVISION_PREFIX):]
            try:
                tr = trace(_torchvision_module(name), input_size, warn=False)
            except Exception as exc:  # a failed model is reported, never fatal
                failures[spec] = f"{type(exc).__name__}: {exc}"
                continue
            label = spec
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
        raise ValueError("none of the given models could be traced")
    return labels, traces


def encode_traces(traces, granularity: str, scoring=None, family: bool | float = False):
    """Token-id sequences of traces over one shared vocabulary, and the scoring.

    Without ``scoring``: match 1 / mismatch -1 / gap -1, with ``family``
    partial credit between related tokens when asked (Vocabulary.scoring).
    A given ``scoring`` with a substitution matrix must match the vocabulary.
    Returns (sequences, scoring, vocabulary).
    """
    from .scoring import Scoring
    from .vocabulary import Vocabulary

    vocab = Vocabulary.from_traces(traces, granularity=granularity)
    seqs = [vocab.encode(t) for t in traces]
    if scoring is None:
        scoring = vocab.scoring(gap=-1, family=family) if family else Scoring()
    elif scoring.vocab_size is not None and scoring.vocab_size != len(vocab):
        raise ValueError(f"the scoring's substitution matrix is {scoring.vocab_size} x "
                         f"{scoring.vocab_size} but these traces have {len(vocab)} distinct "
                         f"{granularity!r} tokens; build it with Vocabulary.from_traces("
                         f"traces, {granularity!r}).scoring(...)")
    return seqs, scoring, vocab
