"""Tracing speed on a fixed random sample of timm models, extrapolated to the whole zoo.

    python benchmarks/bench_trace.py                 # 60 models, seed 0, one process
    python benchmarks/bench_trace.py --sample 200 --jobs 2
    python benchmarks/bench_trace.py --zoo           # the real thing: every architecture,
                                                     # cold then warm, in a temp cache

The sample run traces each model in this process (construction on the meta device and
the recorded forward are timed separately), prints a table, and extrapolates to
``len(timm.list_models())`` models over ``--jobs`` workers. The extrapolation ignores
pool overhead and assumes the sample is representative; ``--zoo`` measures instead.

The full-zoo command users run is the CLI::

    archalign trace --all --jobs 2 --cache-dir /tmp/archalign-zoo --out /tmp/zoo-out
    archalign trace --all --jobs 2 --cache-dir /tmp/archalign-zoo      # warm: all cached

``--zoo`` does the same through ``archalign.tracing.zoo.trace_many`` in a temporary cache
directory, sampling the resident memory of the whole process tree (parent and workers)
every 0.5 s from /proc (Linux). It reports the sum of RSS (counts pages shared between
the forked workers once per process, so it overstates) and of PSS (shares them out: the
memory actually used).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def bench_sample(n: int, seed: int, jobs: int) -> None:
    import timm
    import torch

    from archalign.tracing.api import trace
    from archalign.tracing.calls import Trace, TraceError
    from archalign.tracing.recorder import SkipMetaInit

    torch.set_num_threads(1)
    names = timm.list_models()
    sample = sorted(random.Random(seed).sample(names, min(n, len(names))))
    trace("resnet18")  # warm-up: first-call costs (lazy imports) are not per model
    build_s, trace_s, lengths, sizes, load_s = [], [], [], [], []
    routes: Counter = Counter()
    failed = {}
    for name in sample:
        t0 = time.perf_counter()
        with torch.device("meta"), SkipMetaInit():  # built as trace() builds it
            timm.create_model(name, pretrained=False)
        t1 = time.perf_counter()
        try:
            t = trace(name, warn=False)
        except TraceError as e:
            failed[name] = str(e)[:100]
            continue
        t2 = time.perf_counter()
        text = t.to_json()
        t3 = time.perf_counter()
        Trace.from_json(text)
        load_s.append(time.perf_counter() - t3)
        build_s.append(t1 - t0)
        trace_s.append(t2 - t1)
        lengths.append(len(t))
        sizes.append(len(text))
        routes[t.route] += 1

    zoo = len(names)
    rows = [
        ("models in sample (seed %d)" % seed, f"{len(sample)} of {zoo}"),
        ("routes", ", ".join(f"{r} {c}" for r, c in routes.most_common()) +
         (f", failed {len(failed)}" if failed else "")),
        ("build on meta, median / p95 / max s",
         f"{statistics.median(build_s):.3f} / {_pct(build_s, .95):.3f} / {max(build_s):.3f}"),
        ("trace (build + recorded forward), median / p95 / max s",
         f"{statistics.median(trace_s):.3f} / {_pct(trace_s, .95):.3f} / {max(trace_s):.3f}"),
        ("recorded forward alone (trace - build), mean s",
         f"{statistics.mean(trace_s) - statistics.mean(build_s):.3f}"),
        ("trace, mean s", f"{statistics.mean(trace_s):.3f}"),
        ("calls per model, median / max", f"{statistics.median(lengths):.0f} / {max(lengths)}"),
        ("cache file, median / max KiB",
         f"{statistics.median(sizes) / 1024:.0f} / {max(sizes) / 1024:.0f}"),
        ("cache read into a Trace (load=True), mean ms", f"{1000 * statistics.mean(load_s):.1f}"),
        (f"extrapolated zoo, cold, {jobs} job(s), s",
         f"{statistics.mean(trace_s) * zoo / jobs:.0f}"),
        ("extrapolated zoo cache size, MiB", f"{statistics.mean(sizes) * zoo / 2**20:.0f}"),
        ("extrapolated warm zoo loading every Trace, s", f"{statistics.mean(load_s) * zoo:.1f}"),
    ]
    w = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{w}} | value |\n|{'-' * (w + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{w}} | {v} |")
    for name, why in failed.items():
        print(f"failed: {name}: {why}")


class _TreeMemory(threading.Thread):
    """Peak summed RSS and PSS of this process and its children, from /proc."""

    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval, self.stop_flag = interval, threading.Event()
        self.peak_rss = self.peak_pss = 0

    @staticmethod
    def _tree(pid: int) -> list[int]:
        todo, seen = [pid], []
        while todo:
            p = todo.pop()
            seen.append(p)
            try:
                for tid in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{tid}/children") as f:
                        todo += [int(x) for x in f.read().split()]
            except OSError:
                pass
        return seen

    def run(self) -> None:
        while not self.stop_flag.is_set():
            rss = pss = 0
            for p in self._tree(os.getpid()):
                try:
                    with open(f"/proc/{p}/smaps_rollup") as f:
                        for line in f:
                            if line.startswith("Rss:"):
                                rss += int(line.split()[1]) * 1024
                            elif line.startswith("Pss:"):
                                pss += int(line.split()[1]) * 1024
                except OSError:
                    pass
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.stop_flag.wait(self.interval)


def _cpu_seconds() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers, once joined
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_zoo(jobs: int, cache_dir: str | None) -> None:
    from archalign.tracing.zoo import trace_many

    cache = cache_dir or tempfile.mkdtemp(prefix="archalign-zoo-")
    mem = _TreeMemory()
    mem.start()
    cpu0 = _cpu_seconds()
    cold = trace_many(["*"], n_jobs=jobs, cache_dir=cache, load=False, progress=True)
    cpu = _cpu_seconds() - cpu0
    mem.stop_flag.set()
    mem.join()
    t0 = time.perf_counter()
    warm = trace_many(["*"], n_jobs=jobs, cache_dir=cache, load=False, progress=False)
    warm_s = time.perf_counter() - t0
    n = cold.requested
    routes = Counter(cold.routes.values())
    print(cold.summary())
    print(f"\n| zoo ({n} architectures, {jobs} jobs) | value |\n|---|---|")
    print(f"| traced, any route | {len(cold.paths)} ({100 * len(cold.paths) / n:.2f}%) |")
    for route, c in routes.most_common():
        print(f"| route {route} | {c} ({100 * c / n:.2f}%) |")
    print(f"| failed | {len(cold.failures)} |")
    print(f"| cold wall s | {cold.wall_seconds:.1f} |")
    # On a shared machine the wall time depends on the neighbours; CPU time does not.
    print(f"| cold CPU s, parent + workers (idle-machine wall ~ CPU / jobs) | {cpu:.0f} |")
    print(f"| warm wall s (in-process; CLI adds interpreter start) | {warm_s:.2f} |")
    print(f"| peak RSS, process tree sum, MiB | {mem.peak_rss / 2**20:.0f} |")
    print(f"| peak PSS, process tree sum, MiB | {mem.peak_pss / 2**20:.0f} |")
    slow = sorted(cold.seconds.items(), key=lambda kv: -kv[1])[:5]
    print("slowest:", ", ".join(f"{k} {v:.1f}s" for k, v in slow))
    for name, why in cold.failures.items():
        print(f"failed: {name}: {why}")
    assert warm.cached and not warm.computed
    print(f"cache: {cache}")
    Path(cache, "bench_failures.json").write_text(json.dumps(cold.failures, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sample", type=int, default=60, help="models in the random sample")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--jobs", type=int, default=2, help="workers to extrapolate to / run")
    p.add_argument("--zoo", action="store_true", help="trace the whole zoo, cold then warm")
    p.add_argument("--cache-dir", help="with --zoo: cache directory (default: a new temp dir)")
    args = p.parse_args()
    if args.zoo:
        bench_zoo(args.jobs, args.cache_dir)
    else:
        bench_sample(args.sample, args.seed, args.jobs)


if __name__ == "__main__":
    main()
