"""The zoo's on-disk trace cache: where a trace lives, and which names there are.

Cache layout (``default_cache_dir()``: ``$ARCHALIGN_CACHE_DIR``, else
``$XDG_CACHE_HOME/archalign/traces``, else ``~/.cache/archalign/traces``)::

    <cache_dir>/timm-1.0.31_torch-2.14.1_fused1_schema2/resnet50@default.json
    <cache_dir>/timm-1.0.31_torch-2.14.1_fused1_schema2/resnet50@3x160x160.json
    <cache_dir>/models-timm-1.0.31.json      (timm.list_models(), for pattern matching)

Everything a trace depends on is in the key: timm and torch versions, the fused-attention
switch, the trace schema, the model name and the input size ("default" = timm's own).
A fully cached run imports neither torch nor timm: versions come from package metadata
and patterns are matched against the cached model list.
"""
from __future__ import annotations

import contextlib
import fnmatch
import functools
import gc
import hashlib
import json
import os
import re
from importlib import metadata
from pathlib import Path
from collections.abc import Iterable, Iterator, Sequence

from archalign.utils.errors import MissingExtraError, UsageError
from archalign.utils.io import atomic_write_text
from archalign.tracing.calls import SCHEMA_VERSION, unknown_model_error, verified_dict

__all__ = ["expand_names", "default_cache_dir", "cache_path", "gc_paused", "list_timm_models",
           "list_transformers_types", "read_cached"]

TRANSFORMERS_PREFIX = "transformers:"  # archalign.tracing.transformers_trace's; no import here


# ------------------------------------------------------------------------ cache
def default_cache_dir() -> Path:
    """``$ARCHALIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/archalign/traces``, else
    ``~/.cache/archalign/traces`` (``%LOCALAPPDATA%`` on Windows)."""
    if os.environ.get("ARCHALIGN_CACHE_DIR"):
        return Path(os.environ["ARCHALIGN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.environ.get("LOCALAPPDATA") if os.name == "nt" else None) or Path.home() / ".cache"
    return Path(base) / "archalign" / "traces"


@functools.lru_cache(maxsize=None)
def _version(package: str) -> str:
    # Package metadata, not an import: reading the cache must not cost a torch import.
    # Cached: each lookup parses the METADATA file, ~2 ms, and the zoo asks 2,742 times.
    return metadata.version(package).split("+")[0]


def _key_dir(cache_dir: Path, fused_attn: bool) -> Path:
    return cache_dir / (f"timm-{_version('timm')}_torch-{_version('torch')}"
                        f"_fused{int(fused_attn)}_schema{SCHEMA_VERSION}")


def _size_key(input_size: Sequence[int] | None) -> str:
    return "default" if input_size is None else "x".join(str(int(s)) for s in input_size)


def cache_path(name: str, *, input_size: Sequence[int] | None = None, fused_attn: bool = True,
               cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the trace of ``name`` is cached (``transformers:`` specs under a key of
    their own: the transformers version instead of timm's and the fused switch)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if name.startswith(TRANSFORMERS_PREFIX):
        ref = name[len(TRANSFORMERS_PREFIX):]
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", ref)
        if safe != ref:  # a config path or hub id: keep distinct refs distinct
            safe += "-" + hashlib.sha256(ref.encode()).hexdigest()[:8]
        folder = cache_dir / (f"transformers-{_version('transformers')}_torch-"
                              f"{_version('torch')}_schema{SCHEMA_VERSION}")
        return folder / f"{safe}@default.json"
    return _key_dir(cache_dir, fused_attn) / f"{name}@{_size_key(input_size)}.json"


def read_cached(path: Path, name: str) -> dict | None:
    """The cached trace as a checked dict, or ``None`` when missing, damaged or stale."""
    try:
        d = verified_dict(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, torn, altered, older schema: trace again
        return None
    return d if d["model"] == name else None


def _cached_names(cache_dir, package: str, compute) -> list[str]:
    """A list of model names cached per ``package`` version (``compute()`` on a miss)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"models-{package}-{_version(package)}.json"
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return names
    except (OSError, ValueError):
        pass
    names = compute()
    try:
        atomic_write_text(path, json.dumps(names))
    except OSError:  # a full or read-only cache: the list is only a shortcut
        pass
    return names


def list_timm_models(cache_dir: str | os.PathLike | None = None) -> list[str]:
    """``timm.list_models()``, cached per timm version so that later runs need no import."""
    def compute() -> list[str]:
        import timm

        return timm.list_models()

    return _cached_names(cache_dir, "timm", compute)


def list_transformers_types(cache_dir: str | os.PathLike | None = None) -> list[str]:
    """``transformers:<model_type>`` for every type AutoModel builds, cached per
    transformers version like :func:`list_timm_models`."""
    def compute() -> list[str]:
        from archalign.tracing.transformers_trace import list_model_types

        return [TRANSFORMERS_PREFIX + t for t in list_model_types()]

    return _cached_names(cache_dir, "transformers", compute)


def _expand_transformers(item: str, cache_dir) -> list[str]:
    try:
        known = list_transformers_types(cache_dir)
    except metadata.PackageNotFoundError:
        raise MissingExtraError("transformers: specs need the transformers package: pip install "
                          "'archalign[transformers]'") from None
    if any(c in item for c in "*?["):
        matched = fnmatch.filter(known, item)
        if not matched:
            raise UsageError(f"pattern {item!r} matches no transformers model type")
        return matched
    if item not in known:
        from archalign.tracing.transformers_trace import check_reference

        # here, in the calling process: a missing path or an unknown type fails before
        # any worker starts, and a hub id says that it goes to the network
        check_reference(item[len(TRANSFORMERS_PREFIX):])
    return [item]


def expand_names(names_or_patterns: str | Iterable[str], *,
                 cache_dir: str | os.PathLike | None = None) -> list[str]:
    """Model names from names and fnmatch patterns (``resnet*``), in order, deduplicated.

    ``"*"`` is every timm architecture; ``"transformers:*"`` every transformers model
    type (``transformers:`` specs, see :mod:`archalign.tracing.transformers_trace`). An unknown
    name raises
    :class:`~archalign.tracing.UnknownModelError` listing the closest names; a pattern
    that matches nothing raises ``ValueError``.
    """
    if isinstance(names_or_patterns, str):
        names_or_patterns = [names_or_patterns]
    items = list(names_or_patterns)
    if not items:
        raise UsageError("no model names or patterns given (use '*' for the whole timm zoo)")
    timm_items = [i for i in items if not i.startswith(TRANSFORMERS_PREFIX)]
    all_names = list_timm_models(cache_dir) if timm_items else []
    known = set(all_names)
    out: dict[str, None] = {}
    for item in items:
        if item.startswith(TRANSFORMERS_PREFIX):
            out.update(dict.fromkeys(_expand_transformers(item, cache_dir)))
        elif any(c in item for c in "*?["):
            matched = fnmatch.filter(all_names, item)
            if not matched:
                raise UsageError(f"pattern {item!r} matches no timm model; patterns are "
                                 f"fnmatch wildcards over timm.list_models(), e.g. 'resnet*'")
            out.update(dict.fromkeys(matched))
        elif item in known or _timm_knows(item):
            out[item] = None
        else:
            raise unknown_model_error(item, all_names)
    return list(out)


def _timm_knows(name: str) -> bool:
    # Names outside list_models() that timm still builds: pretrained tags, deprecated aliases.
    import timm

    return timm.is_model(name.split(".", 1)[0])


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing thousands of JSON files allocates millions of small objects; each full
    collection then rescans everything torch and timm hold (3x the warm zoo's time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
