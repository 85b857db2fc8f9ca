"""Trace many timm models (up to the whole zoo) in worker processes, with a disk cache.

``trace_many(["resnet*", "vit_base_patch16_224"], jobs=2)`` expands the patterns
against ``timm.list_models()``, reads what is cached, traces the rest in parallel and
returns a :class:`ZooResult` (traces, cache paths, failures with reasons, timings).

Reliability:

- Each model is traced in a worker process with a per-model ``timeout``. A model that
  raises is recorded as a failure; one that hangs or kills its worker (segfault, out of
  memory) costs only that worker, which is replaced. The run always finishes.
- On Linux workers are forked from the parent after it has imported torch and timm, so
  starting or replacing one takes milliseconds (elsewhere they are spawned, and the
  calling script needs the usual ``if __name__ == "__main__":`` guard); each is recycled
  after ``MAX_TASKS_PER_WORKER`` models to keep memory flat.
- Each trace is written by its worker as one JSON file, atomically (temp file +
  ``os.replace``), so an interrupted run resumes where it stopped. A cache file is used
  only when it matches the digest it ends with and has this schema's fields, each of
  the right type (:func:`archalign.tracing.verified_dict`); any other file (truncated,
  edited, bit-flipped, older schema) is traced again and replaced. Failures are not
  cached: they are retried on the next run.

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

import collections
import contextlib
import fnmatch
import gc
import functools
import hashlib
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from archalign.tracing import (SCHEMA_VERSION, Trace, atomic_write_text,
                               unknown_model_error, verified_dict)

__all__ = ["trace_many", "load_traces", "ZooResult", "expand_names", "default_cache_dir",
           "cache_path", "list_timm_models", "list_transformers_types"]

TRANSFORMERS_PREFIX = "transformers:"  # archalign.transformers_trace's; no import here

DEFAULT_TIMEOUT = 120.0
MAX_TASKS_PER_WORKER = 100


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


def _read_cached(path: Path, name: str) -> dict | None:
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
    atomic_write_text(path, json.dumps(names))
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
        from archalign.transformers_trace import list_model_types

        return [TRANSFORMERS_PREFIX + t for t in list_model_types()]

    return _cached_names(cache_dir, "transformers", compute)


def _expand_transformers(item: str, cache_dir) -> list[str]:
    try:
        known = list_transformers_types(cache_dir)
    except metadata.PackageNotFoundError:
        raise ImportError("transformers: specs need the transformers package: pip install "
                          "'archalign[transformers]'") from None
    if any(c in item for c in "*?["):
        matched = fnmatch.filter(known, item)
        if not matched:
            raise ValueError(f"pattern {item!r} matches no transformers model type")
        return matched
    ref = item[len(TRANSFORMERS_PREFIX):]
    if item in known or os.path.exists(ref) or "/" in ref:
        return [item]  # a model type, a local config, or a hub id (checked when traced)
    from archalign.transformers_trace import _config

    _config(ref)  # a config-only type, or an UnknownModelError with close names
    return [item]


def expand_names(names_or_patterns: str | Iterable[str], *,
                 cache_dir: str | os.PathLike | None = None) -> list[str]:
    """Model names from names and fnmatch patterns (``resnet*``), in order, deduplicated.

    ``"*"`` is every timm architecture; ``"transformers:*"`` every transformers model
    type (``transformers:`` specs, see :mod:`archalign.transformers_trace`). An unknown
    name raises
    :class:`~archalign.tracing.UnknownModelError` listing the closest names; a pattern
    that matches nothing raises ``ValueError``.
    """
    if isinstance(names_or_patterns, str):
        names_or_patterns = [names_or_patterns]
    items = list(names_or_patterns)
    if not items:
        raise ValueError("no model names or patterns given (use '*' for the whole timm zoo)")
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
                raise ValueError(f"pattern {item!r} matches no timm model; patterns are "
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
def _gc_paused() -> Iterator[None]:
    """Parsing thousands of JSON files allocates millions of small objects; each full
    collection then rescans everything torch and timm hold (3x the warm zoo's time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ----------------------------------------------------------------------- result
@dataclass
class ZooResult:
    """What ``trace_many`` did.

    ``paths``: model -> cache file, for every traced model; ``traces``: model ->
    :class:`Trace` (empty when called with ``load=False``); ``routes``: model -> route;
    ``failures``: model -> reason; ``cached`` / ``computed``: which models came from the
    cache / were traced now; ``seconds``: per model traced now; ``wall_seconds``: total.
    """

    paths: dict[str, Path] = field(default_factory=dict)
    traces: dict[str, Trace] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def requested(self) -> int:
        return len(self.paths) + len(self.failures)

    def summary(self) -> str:
        n = self.requested
        by_route = collections.Counter(self.routes.values())
        lines = [
            f"{n} models: {len(self.paths)} traced ({len(self.cached)} from cache, "
            f"{len(self.computed)} now), {len(self.failures)} failed, "
            f"{self.wall_seconds:.1f} s",
        ]
        for route, count in by_route.most_common():
            lines.append(f"  route {route:<13} {count:5d}  ({100 * count / max(n, 1):.1f}%)")
        if self.failures:
            lines.append(f"  failed              {len(self.failures):5d}  "
                         f"({100 * len(self.failures) / max(n, 1):.1f}%)")
        return "\n".join(lines)

    def write_failures(self, path: str | os.PathLike) -> None:
        """``failures.json``: ``{model: reason}`` for every model not traced."""
        atomic_write_text(path, json.dumps(self.failures, indent=1, sort_keys=True))


# ----------------------------------------------------------------------- workers
def _worker_main(conn, input_size, fused_attn) -> None:
    """Trace the names the parent sends, one at a time, until it sends ``None``."""
    import torch

    torch.set_num_threads(1)  # the parallelism is across workers
    warnings.simplefilter("ignore")  # fallbacks are recorded in the trace itself
    from archalign.tracing import trace

    while True:
        task = conn.recv()
        if task is None:
            return
        name, path = task
        start = time.perf_counter()
        try:
            t = trace(name, input_size, fused_attn=fused_attn, warn=False)
            t.save(path)
            conn.send(("ok", name, t.route, time.perf_counter() - start))
        except Exception as e:  # noqa: BLE001 - reported to the parent, never fatal
            msg = (str(e).strip().splitlines() or [""])[0][:500]
            conn.send(("failed", name, f"{type(e).__name__}: {msg}", time.perf_counter() - start))


def _context() -> mp.context.BaseContext:
    if "fork" in mp.get_all_start_methods():
        # As torch's DataLoader does on Linux: fork. Importing torch and timm here first
        # means every worker (and every replacement) starts warm in milliseconds, and
        # callers need no ``if __name__ == "__main__"`` guard. The parent has run no
        # torch op, so no OpenMP pool exists to be broken by the fork.
        import archalign._trace_record  # noqa: F401

        return mp.get_context("fork")
    return mp.get_context("spawn")  # macOS / Windows: workers import torch themselves


class _Worker:
    def __init__(self, ctx, input_size, fused_attn):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, input_size, fused_attn),
                                daemon=True, name="archalign-trace")
        self.proc.start()
        child.close()
        self.task: str | None = None
        self.deadline = 0.0
        self.done = 0

    def send(self, name: str, path: Path, timeout: float) -> None:
        self.conn.send((name, str(path)))
        self.task, self.deadline = name, time.monotonic() + timeout

    def stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
                self.proc.join(5)
            except (OSError, ValueError):
                pass
        if self.proc.is_alive():
            self.proc.kill()  # only ever our own child process
            self.proc.join()
        self.conn.close()


def _run_pool(todo: list[tuple[str, Path]], *, jobs: int, timeout: float, input_size,
              fused_attn: bool, on_done) -> None:
    ctx = _context()
    pending = collections.deque(todo)
    workers = [_Worker(ctx, input_size, fused_attn) for _ in range(min(jobs, len(todo)))]
    try:
        while pending or any(w.task for w in workers):
            for i, w in enumerate(workers):
                if w.task is None and pending:
                    if w.done >= MAX_TASKS_PER_WORKER:
                        w.stop()
                        w = workers[i] = _Worker(ctx, input_size, fused_attn)
                    name, path = pending.popleft()
                    w.send(name, path, timeout)
            busy = [w for w in workers if w.task]
            wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            mp.connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], wait_s)
            for i, w in enumerate(workers):
                if w.task is None:
                    continue
                name = w.task
                if w.conn.poll():
                    try:
                        status, _, info, seconds = w.conn.recv()
                    except (EOFError, OSError):
                        status = None
                    if status is not None:
                        w.task, w.done = None, w.done + 1
                        on_done(name, status, info, seconds)
                        continue
                if not w.proc.is_alive():
                    code = w.proc.exitcode
                    reason = f"worker process died (exit code {code})"
                elif time.monotonic() > w.deadline:
                    reason = f"timed out after {timeout:g} s"
                else:
                    continue
                w.task = None
                w.stop(kill=True)
                workers[i] = _Worker(ctx, input_size, fused_attn)
                on_done(name, "failed", reason, timeout if "timed out" in reason else 0.0)
    finally:
        for w in workers:
            w.stop(kill=bool(pending) or any(x.task for x in workers))


# --------------------------------------------------------------------- trace_many
def trace_many(names_or_patterns: str | Iterable[str], *, jobs: int | None = None,
               cache_dir: str | os.PathLike | None = None,
               input_size: Sequence[int] | None = None, fused_attn: bool = True,
               timeout: float = DEFAULT_TIMEOUT, refresh: bool = False, load: bool = True,
               progress: bool = True) -> ZooResult:
    """Trace timm models by name or pattern, in parallel, through the cache.

    Parameters
    ----------
    names_or_patterns : str or iterable of str
        Model names and fnmatch patterns (``"resnet*"``, ``"*"`` for every architecture).
    jobs : int, optional
        Worker processes (default: the CPUs this process may use).
    cache_dir : path, optional
        Cache root (default ``default_cache_dir()``).
    input_size : sequence of int, optional
        One input size for every model, e.g. ``(3, 224, 224)``; default each model's own.
    fused_attn : bool
        timm's fused-attention switch (part of the cache key).
    timeout : float
        Seconds one model may take before its worker is killed and it is marked failed.
    refresh : bool
        Trace again even what is cached.
    load : bool
        Return the traces themselves (``ZooResult.traces``); ``False`` only validates
        and lists the cache files, which keeps memory low for the whole zoo.
    progress : bool
        Show a tqdm progress bar with done / failed counts.
    """
    start = time.perf_counter()
    names = expand_names(names_or_patterns, cache_dir=cache_dir)
    if input_size is not None:
        input_size = tuple(int(s) for s in input_size)
    if jobs is None:
        jobs = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if not timeout > 0:  # also refuses nan
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout}")
    result = ZooResult()
    paths = {n: cache_path(n, input_size=input_size, fused_attn=fused_attn, cache_dir=cache_dir)
             for n in names}

    def accept(name: str, route: str, d: dict | None) -> None:
        result.paths[name] = paths[name]
        result.routes[name] = route
        if load:
            result.traces[name] = Trace._from_checked(d)

    todo = []
    with _gc_paused():
        for n in names:
            d = None if refresh else _read_cached(paths[n], n)
            if d is None:
                todo.append((n, paths[n]))
            else:
                accept(n, d["route"], d)
                result.cached.append(n)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(names), initial=len(result.cached), unit="model", desc="tracing",
               disable=not progress or not todo, dynamic_ncols=True)

    def on_done(name: str, status: str, info: str, seconds: float) -> None:
        result.seconds[name] = seconds
        # The worker wrote the file atomically before saying "ok"; read it back only
        # when the caller wants the traces themselves.
        d = _read_cached(paths[name], name) if status == "ok" and load else None
        if status == "ok" and (d is not None or not load):
            accept(name, info, d)
            result.computed.append(name)
        else:
            result.failures[name] = info if status != "ok" else "trace file unreadable"
        bar.update(1)
        bar.set_postfix(ok=len(result.paths), failed=len(result.failures), refresh=False)

    try:
        if todo:
            _run_pool(todo, jobs=jobs, timeout=timeout, input_size=input_size,
                      fused_attn=fused_attn, on_done=on_done)
    finally:
        bar.close()
    # Report in the order asked for, whatever order the workers finished in.
    order = {n: i for i, n in enumerate(names)}
    for attr in ("paths", "traces", "routes", "failures"):
        items = sorted(getattr(result, attr).items(), key=lambda kv: order[kv[0]])
        setattr(result, attr, dict(items))
    result.wall_seconds = time.perf_counter() - start
    return result


def load_traces(result_or_paths: ZooResult | dict[str, Any]) -> dict[str, Trace]:
    """The traces behind a ``ZooResult`` run with ``load=False`` (or a name -> path dict)."""
    paths = result_or_paths.paths if isinstance(result_or_paths, ZooResult) else result_or_paths
    return {name: Trace.load(p) for name, p in paths.items()}

