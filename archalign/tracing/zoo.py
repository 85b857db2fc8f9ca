"""Trace many timm models (up to the whole zoo) in worker processes, with a disk cache.

``trace_many(["resnet*", "vit_base_patch16_224"], n_jobs=2)`` expands the patterns
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
  ``os.replace``), so an interrupted run resumes where it stopped. A trace the cache
  cannot hold (a full or read-only disk) is sent back to the parent instead and kept in
  memory (``ZooResult.unsaved`` says why), so no model is lost to the cache. A cache
  file is used only when it matches the digest it ends with and has this schema's
  fields, each of the right type (:func:`archalign.tracing.calls.verified_dict`); any
  other file (truncated, edited, bit-flipped, older schema) is traced again and
  replaced. Failures are not cached: they are retried on the next run.

The cache's layout and model-name lists are in :mod:`archalign.tracing.zoo_cache`.
"""
from __future__ import annotations

import collections
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Sequence

from archalign.utils.deprecation import renamed_keywords
from archalign.utils.args import os_error_line
from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_write_text
from archalign.tracing.calls import Trace
from archalign.tracing.zoo_cache import gc_paused, read_cached, cache_path, expand_names

__all__ = ["trace_many", "load_traces", "ZooResult", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 120.0
MAX_TASKS_PER_WORKER = 100


# ----------------------------------------------------------------------- result
@dataclass
class ZooResult:
    """What ``trace_many`` did.

    ``paths``: model -> cache file, for every traced model the cache holds; ``traces``:
    model -> :class:`Trace` (with ``load=False`` only those of ``unsaved``); ``routes``:
    model -> route; ``unsaved``: model -> why the cache could not hold its trace (traced
    all the same: the trace is in ``traces``, and is traced again next run);
    ``failures``: model -> reason; ``cached`` / ``computed``: which models came from the
    cache / were traced now; ``seconds``: per model traced now; ``wall_seconds``: total.
    """

    paths: dict[str, Path] = field(default_factory=dict)
    traces: dict[str, Trace] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    unsaved: dict[str, str] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def requested(self) -> int:
        return len(self.paths) + len(self.unsaved) + len(self.failures)

    def summary(self) -> str:
        n = self.requested
        by_route = collections.Counter(self.routes.values())
        lines = [
            f"{n} models: {n - len(self.failures)} traced ({len(self.cached)} from cache, "
            f"{len(self.computed)} now), {len(self.failures)} failed, "
            f"{self.wall_seconds:.1f} s",
        ]
        for route, count in by_route.most_common():
            lines.append(f"  route {route:<13} {count:5d}  ({100 * count / max(n, 1):.1f}%)")
        if self.unsaved:
            lines.append(f"  not cached          {len(self.unsaved):5d}  "
                         f"({next(iter(self.unsaved.values()))})")
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
    from archalign.tracing.api import trace

    while True:
        task = conn.recv()
        if task is None:
            return
        name, path = task
        start = time.perf_counter()
        try:
            t = trace(name, input_size, fused_attn=fused_attn, warn=False)
        except Exception as e:  # noqa: BLE001 - reported to the parent, never fatal
            msg = (str(e).strip().splitlines() or [""])[0][:500]
            conn.send(("failed", name, f"{type(e).__name__}: {msg}", time.perf_counter() - start))
            continue
        try:
            t.save(path)
        except OSError as e:  # a full or read-only cache: the trace itself is good
            conn.send(("unsaved", name, (t.route, t.to_json(), os_error_line(e)),
                       time.perf_counter() - start))
            continue
        conn.send(("ok", name, t.route, time.perf_counter() - start))


def _context() -> mp.context.BaseContext:
    if "fork" in mp.get_all_start_methods():
        # As torch's DataLoader does on Linux: fork. Importing torch and timm here first
        # means every worker (and every replacement) starts warm in milliseconds, and
        # callers need no ``if __name__ == "__main__"`` guard. The parent has run no
        # torch op, so no OpenMP pool exists to be broken by the fork.
        import archalign.tracing.routes  # noqa: F401

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


def _run_pool(todo: list[tuple[str, Path]], *, n_jobs: int, timeout: float, input_size,
              fused_attn: bool, on_done) -> None:
    ctx = _context()
    pending = collections.deque(todo)
    workers = [_Worker(ctx, input_size, fused_attn) for _ in range(min(n_jobs, len(todo)))]
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
@renamed_keywords(jobs="n_jobs")
def trace_many(names_or_patterns: str | Iterable[str], *, n_jobs: int | None = None,
               cache_dir: str | os.PathLike | None = None,
               input_size: Sequence[int] | None = None, fused_attn: bool = True,
               timeout: float = DEFAULT_TIMEOUT, refresh: bool = False, load: bool = True,
               progress: bool = True) -> ZooResult:
    """Trace timm models by name or pattern, in parallel, through the cache.

    Parameters
    ----------
    names_or_patterns : str or iterable of str
        Model names and fnmatch patterns (``"resnet*"``, ``"*"`` for every architecture).
    n_jobs : int, optional
        Worker processes (default: the CPUs this process may use). ``jobs=``, its
        earlier name, still works for one release, with a FutureWarning.
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
    if n_jobs is None:
        n_jobs = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count() or 1)
    if n_jobs < 1:
        raise UsageError(f"n_jobs must be at least 1, got {n_jobs}")
    if not timeout > 0:  # also refuses nan
        raise UsageError(f"timeout must be a number of seconds > 0, got {timeout}")
    result = ZooResult()
    paths = {n: cache_path(n, input_size=input_size, fused_attn=fused_attn, cache_dir=cache_dir)
             for n in names}

    def accept(name: str, route: str, d: dict | None) -> None:
        result.paths[name] = paths[name]
        result.routes[name] = route
        if load:
            result.traces[name] = Trace._from_checked(d)

    todo = []
    with gc_paused():
        for n in names:
            d = None if refresh else read_cached(paths[n], n)
            if d is None:
                todo.append((n, paths[n]))
            else:
                accept(n, d["route"], d)
                result.cached.append(n)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(names), initial=len(result.cached), unit="model", desc="tracing",
               disable=not progress or not todo, dynamic_ncols=True)

    def on_done(name: str, status: str, info, seconds: float) -> None:
        result.seconds[name] = seconds
        if status == "unsaved":
            route, text, why = info
            result.traces[name], result.routes[name] = Trace.from_json(text), route
            result.unsaved[name] = why
            result.computed.append(name)
            bar.update(1)
            return
        # The worker wrote the file atomically before saying "ok"; read it back only
        # when the caller wants the traces themselves.
        d = read_cached(paths[name], name) if status == "ok" and load else None
        if status == "ok" and (d is not None or not load):
            accept(name, info, d)
            result.computed.append(name)
        else:
            result.failures[name] = info if status != "ok" else "trace file unreadable"
        bar.update(1)
        bar.set_postfix(ok=len(result.paths), failed=len(result.failures), refresh=False)

    try:
        if todo:
            _run_pool(todo, n_jobs=n_jobs, timeout=timeout, input_size=input_size,
                      fused_attn=fused_attn, on_done=on_done)
    finally:
        bar.close()
    # Report in the order asked for, whatever order the workers finished in.
    order = {n: i for i, n in enumerate(names)}
    for attr in ("paths", "traces", "routes", "unsaved", "failures"):
        items = sorted(getattr(result, attr).items(), key=lambda kv: order[kv[0]])
        setattr(result, attr, dict(items))
    result.wall_seconds = time.perf_counter() - start
    return result


def load_traces(result_or_paths: ZooResult | dict[str, Any]) -> dict[str, Trace]:
    """The traces behind a ``ZooResult`` run with ``load=False`` (or a name -> path dict)."""
    paths = result_or_paths.paths if isinstance(result_or_paths, ZooResult) else result_or_paths
    return {name: Trace.load(p) for name, p in paths.items()}
