"""A study's grid of runs on a local Dask cluster against the same grid run sequentially.

Measures, in one run of this script, on fresh temporary output folders and one data
cache shared by every measurement (filled before any clock starts; ``--cache-dir`` to
reuse one):

1. **grid throughput**: ``convnet`` x {baseline, neurn} x ``--seeds`` seeds on the
   offline digits (source ``mnist``, target ``optdigits``), ``--steps`` AdamW steps of
   ``--batch-size`` per run in ``--evals`` validation points, ``--eval-limit`` images per
   evaluated split, on CPU: (a) sequential in this process, 1 thread; (b) sequential,
   2 threads; (c) ``Study(threads=1).run(client=local_client(--workers))``. Wall
   seconds (the ``Study`` built and run), runs per hour, the mean run's own seconds and
   training images/s (its ``history``), the CPU this process spent (with a local
   cluster: its scheduler, nannies and client) and the speed-up of (c) over each; the
   target (>= 1.8x with 2 workers) is read against (a), the like-for-like sequential
   (one thread per run, as on each worker); (b) is printed beside it. The cluster's
   start-up (processes started, ``neurn.study`` imported on every worker) is timed
   apart and not counted in (c), as in ``bench_dask.py``. (a) and (c) must write
   byte-identical ``results.csv`` (same thread count per run: bit-identical on CPU).
   (``local_client`` spawns its workers without the ``MALLOC_TRIM_THRESHOLD_=65536``
   Dask's Nanny sets: with it glibc maps and unmaps every large tensor of a step again,
   and a worker ran at 0.99x of one sequential thread instead of 1.76x.)
2. **scheduling overhead per run**: a grid of 1-step runs (``steps=1``, ``evals=1``,
   ``eval_limit=16``) on the same cluster and sequentially: ``(wall - sum of the runs'
   train_seconds + eval_seconds) / runs``, in ms; beside it the same counted in worker
   time, ``(workers x wall - sum) / runs``, what each task costs the worker running it.
3. **the study against a bare PyTorch loop**: one ``convnet`` baseline run of
   ``--bare-steps`` steps on 1 thread, ``Study.run()`` against a loop written here (the
   model from ``neurn.build_model``, same architecture and standardisation and, seeded
   alike, the same initial weights; the same number of AdamW steps on batches of the
   in-memory ``neurn.data.domain("mnist", "train")`` tensors; no evaluation, no
   checkpoint). Target: the study's overhead <= 10%; what it adds is split with the
   run's recorded ``history`` (per-epoch seconds and images/s), ``train_seconds`` and
   ``eval_seconds``.

Each table's header gives the CPUs other processes kept busy just before it
(:func:`neurn.study.torch_settings.busy_cpus`): a load near 1 on a 2-CPU machine
disturbs (b), (c) and the ratios; rerun then.

    python benchmarks/bench_sweep.py [--quick] [--steps 100] [--seeds 6] [--workers 2]
                                     [--only 1 2 3] [--skip-fix]

Needs the `dask` extra: pip install '.[dask]'. About 8 minutes on 2 idle CPUs with the
defaults, a little over 1 minute with ``--quick``.
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archalign.utils.dask import close, local_client  # noqa: E402
from neurn import Study, build_model  # noqa: E402
from neurn import data as ndata  # noqa: E402
from neurn.study.settings import SCRATCH_LR, SCRATCH_WEIGHT_DECAY  # noqa: E402
from neurn.study.torch_settings import busy_cpus, default_threads  # noqa: E402

MODEL = "convnet"
VARIANTS = ("baseline", "neurn")
SOURCE, TARGETS = "mnist", ["optdigits"]
SPEEDUP_TARGET = 1.8
OVERHEAD_TARGET = 10.0  # % of the bare loop


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def fill_cache(cache_dir: Path) -> None:
    """Build (or verify) every domain the studies read, so no clock pays for it."""
    for name, split in [(SOURCE, "train"), (SOURCE, "val"), (SOURCE, "test")] + \
            [(t, None) for t in TARGETS]:
        ndata.domain(name, split, cache_dir=cache_dir)


def study(out_dir: Path, cache_dir: Path, *, seeds, steps: int, evals: int, batch_size: int,
          eval_limit: int, threads: int, variants=VARIANTS) -> Study:
    return Study([MODEL], source=SOURCE, targets=TARGETS, variants=list(variants),
                 seeds=list(seeds), steps=steps, evals=evals, batch_size=batch_size,
                 eval_limit=eval_limit, device="cpu", threads=threads, out_dir=out_dir,
                 cache_dir=cache_dir, progress=False)


def sweep(client=None, **kwargs) -> tuple:
    """``(wall seconds, StudyResults, CPU seconds of this process)`` of building and
    running one study; with a local cluster, the CPU is the scheduler's, the nannies' and
    the client's (they run in this process), not the workers'."""
    cpu = time.process_time()
    wall, results = timed(lambda: study(**kwargs).run(client=client))
    if results.pending or results.errors:
        raise RuntimeError(f"unfinished or failed runs: {results.pending or results.errors}")
    return wall, results, time.process_time() - cpu


def run_seconds(results) -> float:
    """The runs' own time: train_seconds (steps, validation, checkpoints) + eval_seconds."""
    return sum(r["train_seconds"] + r.get("eval_seconds", 0.0) for r in results.runs)


def train_images_per_second(results) -> float:
    """Mean training throughput of a run (images / s of its step loops)."""
    rates = [h["images_per_second"] for r in results.runs for h in r["history"]]
    return sum(rates) / len(rates)


def bare_loop(images: torch.Tensor, labels: torch.Tensor, *, steps: int, batch_size: int,
              seed: int = 0) -> tuple:
    """``(seconds, of which building the model)`` of ``steps`` AdamW steps of the study's
    model on in-memory tensors, on the current thread count: the model built and seeded
    as the study builds it, batches drawn from seeded permutations, no evaluation, no
    checkpoint, no learning-rate schedule."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model, _ = build_model(MODEL, variant="baseline")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=SCRATCH_LR,
                                  weight_decay=SCRATCH_WEIGHT_DECAY)
    built = time.perf_counter() - start
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.randperm(len(labels), generator=generator)
        index, order = order[:batch_size], order[batch_size:]
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start, built


def load_note(cpus: int) -> str:
    load = busy_cpus()
    return (f"other processes kept {load:.1f} of {cpus} CPUs busy just before"
            f"{' (disturbed: rerun)' if load >= 0.5 else ''}")


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def grid_throughput(args, tmp: Path, cache: Path, cpus: int, client, startup: float) -> None:
    seeds = range(args.seeds)
    runs = len(VARIANTS) * args.seeds
    common = dict(cache_dir=cache, seeds=seeds, steps=args.steps, evals=args.evals,
                  batch_size=args.batch_size, eval_limit=args.eval_limit)
    note = load_note(cpus)
    sweeps = {"a": sweep(out_dir=tmp / "grid-a", threads=1, **common),
              "b": sweep(out_dir=tmp / "grid-b", threads=2, **common),
              "c": sweep(client, out_dir=tmp / "grid-c", threads=1, **common)}
    csv = {k: (tmp / f"grid-{k}" / "results.csv").read_bytes() for k in sweeps}
    t = {k: v[0] for k, v in sweeps.items()}

    print(f"\n## 1. Grid throughput: {MODEL} x {{{', '.join(VARIANTS)}}} x {args.seeds} seeds = "
          f"{runs} runs, {args.steps} steps of {args.batch_size} in {args.evals} evals, "
          f"eval_limit {args.eval_limit}, CPU\n\n{note}\n")
    names = {"a": "(a) sequential in this process, 1 thread",
             "b": "(b) sequential in this process, 2 threads",
             "c": f"(c) Dask LocalCluster (local_client), {args.workers} workers x 1 thread"}
    header = ["measured", "wall s", "runs / hour", "mean run s (train + eval)",
              "train img/s per run", "CPU s of this process", "ratio", "target", "result"]

    def row(name, **cells):
        return [name] + [cells.get(h, "") for h in header[1:]]

    rows = [row(names[k], **{"wall s": f"{t[k]:.1f}", "runs / hour": f"{3600 * runs / t[k]:.0f}",
                             "mean run s (train + eval)": f"{run_seconds(res) / runs:.1f}",
                             "train img/s per run": f"{train_images_per_second(res):.0f}",
                             "CPU s of this process": f"{cpu:.1f}"})
            for k, (_, res, cpu) in sweeps.items()]
    for k in [k for k in sweeps if k not in "ab"]:
        ratio = t["a"] / t[k]
        rows += [row(f"({k}) against (a): speed-up, like for like (1 thread per run)",
                     ratio=f"{ratio:.2f}x", target=f">= {SPEEDUP_TARGET}x",
                     result=verdict(ratio >= SPEEDUP_TARGET)),
                 row(f"({k}) against (b): speed-up over 2 threads in one process",
                     ratio=f"{t['b'] / t[k]:.2f}x", target="(read against (a))", result="-")]
    rows.append(row(f"cluster start-up of (c): {args.workers} processes, neurn.study imported "
                    f"(not counted)", **{"wall s": f"{startup:.1f}"}))
    for k in [k for k in sweeps if k not in "ab"]:
        same = csv["a"] == csv[k]
        rows.append(row(f"results.csv of (a) and ({k})", ratio="identical" if same else "DIFFER",
                        target="byte-identical", result=verdict(same)))
    rows.append(row("results.csv of (a) and (b) (other thread count: may differ)",
                    ratio="identical" if csv["a"] == csv["b"] else "differ",
                    target="-", result="-"))
    print(table(header, rows))


def start_cluster(workers: int):
    """A client of a new local cluster, every worker up with ``neurn.study`` imported."""
    client = local_client(workers)
    client.wait_for_workers(workers)
    client.run(importlib.import_module, "neurn.study.sweep")  # torch, timm, neurn
    return client


def scheduling_overhead(args, tmp: Path, cache: Path, cpus: int, client) -> None:
    tiny = dict(cache_dir=cache, seeds=range(args.tiny_seeds), steps=1, evals=1,
                batch_size=args.batch_size, eval_limit=16, threads=1)
    runs = len(VARIANTS) * args.tiny_seeds
    note = load_note(cpus)
    t_seq, res_seq, _ = sweep(out_dir=tmp / "tiny-seq", **tiny)
    t_dask, res_dask, _ = sweep(client, out_dir=tmp / "tiny-dask", **tiny)
    print(f"\n## 2. Scheduling overhead: {runs} runs of 1 step (evals=1, eval_limit=16), "
          f"1 thread per run\n\n{note}; the cluster of (c)\n")
    rows = []
    for name, workers, t, res in [("sequential in this process", 1, t_seq, res_seq),
                                  (f"Dask LocalCluster, {args.workers} workers", args.workers,
                                   t_dask, res_dask)]:
        own = run_seconds(res)
        rows.append([name, runs, f"{t:.2f}", f"{own:.2f}",
                     f"{1e3 * (t - own) / runs:.0f}",
                     f"{1e3 * (workers * t - own) / runs:.0f}"])
    print(table(["measured", "runs", "wall s", "runs' own s (train + eval)",
                 "ms / run: (wall - own) / runs",
                 "ms / run: (workers x wall - own) / runs"], rows))


def study_against_bare(args, tmp: Path, cache: Path, cpus: int) -> None:
    images, labels = ndata.domain(SOURCE, "train", cache_dir=cache).tensors()
    steps = args.evals * math.ceil(args.bare_steps / args.evals)  # what the study runs
    note = load_note(cpus)
    bare, studied = [], []
    saved = torch.get_num_threads()
    for k in range(args.repeats):  # interleaved, the best of each kept
        torch.set_num_threads(1)
        try:
            bare.append(bare_loop(images, labels, steps=steps, batch_size=args.batch_size))
        finally:
            torch.set_num_threads(saved)
        studied.append(sweep(out_dir=tmp / f"one-{k}", cache_dir=cache, seeds=[0],
                             steps=steps, evals=args.evals, batch_size=args.batch_size,
                             eval_limit=args.bare_eval_limit, threads=1,
                             variants=["baseline"]))
    t_bare, t_build = min(bare)
    t_study, res, _ = min(studied, key=lambda s: s[0])
    run = res.runs[0]
    assert run["history"][-1]["step"] == steps, "the study ran another number of steps"
    per_epoch = steps // len(run["history"])
    step_loop = sum(per_epoch * args.batch_size / h["images_per_second"]
                    for h in run["history"])
    epochs = sum(h["seconds"] for h in run["history"])
    validation = epochs - step_loop
    checkpoints = run["train_seconds"] - epochs
    final = run.get("eval_seconds", 0.0)
    rest = t_study - run["train_seconds"] - final - t_build
    overhead = 100.0 * (t_study - t_bare) / t_bare
    evaluated = ", ".join(run["metrics"])
    print(f"\n## 3. The study against a bare PyTorch loop: one {MODEL} baseline run, "
          f"{steps} AdamW steps of {args.batch_size} in {args.evals} evals, eval_limit "
          f"{args.bare_eval_limit}, CPU, 1 thread\n\n{note}; "
          f"best of {args.repeats} interleaved\n")

    def share(seconds):
        return f"{100.0 * seconds / t_bare:+.1f}%"

    rows = [
        [f"bare loop: build_model + {steps} AdamW steps on in-memory tensors",
         f"{t_bare:.2f}", "", "", ""],
        [f"Study.run(): {args.evals} evals, checkpoints, final eval, outputs",
         f"{t_study:.2f}", "", "", ""],
        ["overhead of the study", f"{t_study - t_bare:+.2f}", f"{overhead:+.1f}%",
         f"<= {OVERHEAD_TARGET:g}%", verdict(overhead <= OVERHEAD_TARGET)],
        [("  of which: the step loop (history images / img/s) against the bare loop's "
          "steps (loader, lr schedule, metrics)"),
         f"{step_loop - (t_bare - t_build):+.2f}", share(step_loop - (t_bare - t_build)),
         "", ""],
        [f"  validation: {args.evals} x {args.bare_eval_limit} images (history seconds - steps)",
         f"{validation:.2f}", share(validation), "", ""],
        [(f"  checkpoints: {args.evals}, with the best weights' copies (train_seconds - "
          f"history seconds)"), f"{checkpoints:.2f}", share(checkpoints), "", ""],
        [(f"  final evaluation: {evaluated}, <= {args.bare_eval_limit} images each "
          f"(eval_seconds)"), f"{final:.2f}", share(final), "", ""],
        [("  the rest: data from the cache, claims, best.pt, results.csv, summary.md, "
          "plots (wall - train_seconds - eval_seconds - the bare loop's model build)"),
         f"{rest:.2f}", share(rest), "", ""],
    ]
    print(table(["measured", "seconds", "of the bare loop", "target", "result"], rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a ~1-minute version: 2 seeds, 30 steps, 128 images evaluated")
    parser.add_argument("--seeds", type=int, default=None, help="seeds of the grid (6)")
    parser.add_argument("--steps", type=int, default=None,
                        help="AdamW steps per run (100: ~12 s on one thread)")
    parser.add_argument("--evals", type=int, default=None,
                        help="validation points per run (5, the study's default)")
    parser.add_argument("-b", "--batch-size", type=int, default=64)
    parser.add_argument("--eval-limit", type=int, default=None,
                        help="images per evaluated split (256)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--tiny-seeds", type=int, default=None,
                        help="seeds of the 1-step grid of measurement 2 (10)")
    parser.add_argument("--bare-steps", type=int, default=None,
                        help="steps of measurement 3 (default: 450, the main job's)")
    parser.add_argument("--bare-eval-limit", type=int, default=None,
                        help="images per evaluated split in measurement 3 (default: 500)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved repeats of measurement 3, best kept (2)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="data cache shared by every study (default: a fresh temporary one)")
    parser.add_argument("--only", type=int, nargs="+", choices=(1, 2, 3), default=(1, 2, 3),
                        help="run only these measurements (to rerun a disturbed one)")
    args = parser.parse_args(argv)
    # measurement 3 at the main job's recipe (450 steps, 5 evals, 500 images per split)
    defaults = (dict(seeds=2, steps=30, evals=2, eval_limit=128, tiny_seeds=3, repeats=1,
                     bare_steps=30, bare_eval_limit=128) if args.quick else
                dict(seeds=6, steps=100, evals=5, eval_limit=256, tiny_seeds=10, repeats=2,
                     bare_steps=450, bare_eval_limit=500))
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    cpus = default_threads()
    print(f"torch {torch.__version__}, {cpus} CPUs; {'quick' if args.quick else 'full'} run")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        cache = args.cache_dir or tmp / "cache"
        t_cache, _ = timed(lambda: fill_cache(cache))
        print(f"data cache {cache}: filled in {t_cache:.1f} s (not counted)")
        if 1 in args.only or 2 in args.only:
            startup, client = timed(lambda: start_cluster(args.workers))
            try:
                if 1 in args.only:
                    grid_throughput(args, tmp, cache, cpus, client, startup)
                if 2 in args.only:
                    scheduling_overhead(args, tmp, cache, cpus, client)
            finally:
                close(client)
        if 3 in args.only:
            study_against_bare(args, tmp, cache, cpus)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
