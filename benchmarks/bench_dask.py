"""Blocked all-pairs on Dask against the threaded backend, and a scaling model.

Measures, in one run on the same sequences (network-like, length ~300):

1. the threaded in-memory ``pairwise`` on all cores;
2. the Dask backend on a LocalCluster of single-threaded worker processes (one
   per core), for several block sizes, with the cluster already started
   (its start-up is reported separately);
3. the scheduler's overhead per task (tiny blocks);

then prints how long n architectures would take on N cores, from the measured
cells/s per core and per-task overhead, with the block size that keeps the
overhead under 1% of each task.

    python benchmarks/bench_dask.py [--n 2000] [--len 300]

Needs the `dask` extra: pip install '.[dask]'.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import archalign
from archalign.alignment.blocked import blocked_pairwise

from bench_align import network_like


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sequences")
    parser.add_argument("--len", type=int, default=300, help="mean sequence length")
    parser.add_argument("--blocks", type=int, nargs="+", default=[125, 250, 500])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    rng = np.random.default_rng(args.seed)
    seqs = [network_like(rng, int(rng.integers(int(args.len * 0.8), int(args.len * 1.2))))
            for _ in range(args.n)]
    lens = np.array([len(s) for s in seqs], dtype=np.float64)
    cells = (np.outer(lens, lens).sum() + (lens ** 2).sum()) / 2
    cores = archalign.effective_n_jobs(None)

    t_threads, ref = timed(lambda: archalign.pairwise(seqs))
    t_one, _ = timed(lambda: archalign.pairwise(seqs[: args.n // 4], n_jobs=1))
    cells_one = cells / 16  # a quarter of the sequences: ~1/16 of the cells
    per_core = cells_one / t_one
    rows = [("threads, in memory", None, t_threads)]

    t_start = time.perf_counter()
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        startup = time.perf_counter() - t_start
        for block in args.blocks:
            t, got = timed(lambda: blocked_pairwise(seqs, block=block, backend="dask",
                                                    client=client, progress=False))
            assert np.array_equal(got, ref), "dask result differs from threads"
            rows.append((f"dask, {cores} workers", block, t))
        tiny = [np.array([1], dtype=np.int32)] * 40  # 820 one-pair blocks
        t_tiny, _ = timed(lambda: blocked_pairwise(tiny, block=1, backend="dask",
                                                   client=client, progress=False))
        overhead = t_tiny / (40 * 41 // 2) * cores
    print(f"{args.n} sequences of length ~{args.len}: {cells / 1e9:.1f} G cells; "
          f"{cores} cores; LocalCluster start-up {startup:.1f} s (not counted below)")
    print(f"| {'backend':<22} | {'block':>5} | {'tasks':>5} | {'seconds':>7} | "
          f"{'GCUPS':>6} | {'vs threads':>10} |")
    print(f"|{'-' * 24}|{'-' * 7}|{'-' * 7}|{'-' * 9}|{'-' * 8}|{'-' * 12}|")
    for name, block, t in rows:
        tasks = "-" if block is None else -(-args.n // block) * (-(-args.n // block) + 1) // 2
        print(f"| {name:<22} | {block or '-':>5} | {tasks:>5} | {t:>7.2f} | "
              f"{cells / t / 1e9:>6.1f} | {t_threads / t:>9.0%} |")
    print(f"\nmeasured: {per_core / 1e9:.1f} G cells/s per core (one thread); "
          f"scheduler overhead {overhead * 1e3:.1f} ms per task")

    # Scaling model: time = cells / (cores * per_core) + tasks * overhead / cores.
    # A block of B x B pairs of length L costs B^2 L^2 / per_core seconds; keeping
    # the overhead below 1% of that sets the smallest sensible B.
    print("\nprojection (zoo-like sequences of ~530 tokens):")
    L = 530
    b_min = int(np.ceil(np.sqrt(100 * overhead * per_core) / L))
    print(f"| {'architectures':>13} | {'cores':>5} | {'block':>5} | {'tasks':>9} | "
          f"{'hours':>8} |")
    print(f"|{'-' * 15}|{'-' * 7}|{'-' * 7}|{'-' * 11}|{'-' * 10}|")
    for n in (10_000, 100_000):
        for workers in (16, 64, 256):
            block = max(b_min, 64)
            tasks = (n // block + 1) * (n // block + 2) / 2
            seconds = n * n / 2 * L * L / (workers * per_core) + tasks * overhead / workers
            print(f"| {n:>13,} | {workers:>5} | {block:>5} | {tasks:>9,.0f} | "
                  f"{seconds / 3600:>8.2f} |")


if __name__ == "__main__":
    main()
