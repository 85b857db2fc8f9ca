"""archalign.pairwise of two builds of the compiled aligner, timed alternately.

Each argument is a source tree whose extensions are built in place (``python setup.py
build_ext --inplace`` there), e.g. a copy of the sources at the commit before a change
and the working tree. Every round runs bench_align's all-pairs workloads once per
build, each build in a fresh interpreter that imports archalign from its own tree,
alternating which build goes first (ABBA), so that load from elsewhere on the machine
hits both alike. Prints, per workload, the median over rounds of each build's best of
``--repeat`` calls, the ratio, and each build's range; and checks that both builds
return bit-identical matrices.

Workloads (as in bench_align.py, ``--n`` sequences of mean length ``--len``):
network-like sequences with flat scoring (match 1, mismatch -1, linear gap -1) on one
thread and on all, and zoo-like / no-shared-ids sequences with flat scoring and a
family substitution matrix (V=2000), linear and affine gaps, on all threads.

    python benchmarks/bench_before_after.py BEFORE_DIR AFTER_DIR [--rounds 5] [--repeat 2]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def workloads(n, length, seed):
    """(name, thunk) pairs; the thunk returns the matrix archalign.pairwise computes."""
    import numpy as np

    import archalign
    from bench_align import LARGE_VOCAB, family_matrix, network_like, zoo_like

    rng = np.random.default_rng(seed)

    def lengths():
        return int(rng.integers(int(length * 0.8), int(length * 1.2)))

    flat_seqs = [network_like(rng, lengths()) for _ in range(n)]
    flat = archalign.Scoring(match=1, mismatch=-1, gap=-1)
    threads = archalign.effective_n_jobs(None)
    jobs = [("network-like, flat, 1 thread", lambda: archalign.pairwise(flat_seqs, flat, n_jobs=1)),
            (f"network-like, flat, {threads} threads",
             lambda: archalign.pairwise(flat_seqs, flat))]
    S = family_matrix()
    for data, seqs in [("zoo-like", zoo_like(rng, n, length)),
                       ("no shared ids", [network_like(rng, lengths(), LARGE_VOCAB)
                                          for _ in range(n)])]:
        for gaps_name, gaps in [("linear", {"gap": -1}),
                                ("affine", {"gap_open": -2, "gap_extend": -1})]:
            for scoring_name, scoring in [("flat", archalign.Scoring(match=1, mismatch=-1, **gaps)),
                                          ("family", archalign.Scoring(substitution=S, **gaps))]:
                jobs.append((f"{data}, {scoring_name}, {gaps_name}",
                             lambda seqs=seqs, scoring=scoring: archalign.pairwise(seqs, scoring)))
    return jobs


def worker(args):
    """One round of one build: prints {name: [best seconds, digest of the matrix]} as JSON."""
    import archalign

    tree = Path(args.worker).resolve()
    if tree not in Path(archalign.__file__).resolve().parents:
        sys.exit(f"imported {archalign.__file__}, not the build in {tree}")
    out = {}
    for name, job in workloads(args.n, args.len, args.seed):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = job()
            best = min(best, time.perf_counter() - start)
        out[name] = [best, hashlib.sha256(result.tobytes()).hexdigest()]
    print(json.dumps(out))


def run_build(tree, args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, __file__, "--worker", str(tree), "--n", str(args.n),
           "--len", str(args.len), "--seed", str(args.seed), "--repeat", str(args.repeat)]
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{tree}: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", nargs="?", type=Path, help="source tree of the first build")
    parser.add_argument("after", nargs="?", type=Path, help="source tree of the second build")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each build, alternating")
    parser.add_argument("--repeat", type=int, default=2, help="calls per workload and run (best)")
    parser.add_argument("--n", type=int, default=500, help="sequences per workload")
    parser.add_argument("--len", type=int, default=300, help="mean sequence length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.before is None or args.after is None:
        parser.error("give the two source trees, BEFORE_DIR and AFTER_DIR")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    times = {key: {} for key in trees}
    digests = {key: {} for key in trees}
    for r in range(args.rounds):
        for key in (("before", "after") if r % 2 == 0 else ("after", "before")):
            for name, (seconds, digest) in run_build(trees[key], args).items():
                times[key].setdefault(name, []).append(seconds)
                digests[key].setdefault(name, set()).add(digest)
            print(f"round {r + 1}/{args.rounds}: {key} done", file=sys.stderr)
    print(f"before: {trees['before']}\nafter:  {trees['after']}\n"
          f"{args.rounds} rounds each, alternating; per round the best of {args.repeat} calls; "
          f"{args.n} sequences of length ~{args.len}")
    head = (f"| {'workload':<36} | {'before s':>8} | {'after s':>8} | {'after / before':>14} | "
            f"{'before range':>13} | {'after range':>13} | {'same result':>11} |")
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for name, before in times["before"].items():
        after = times["after"][name]
        b, a = statistics.median(before), statistics.median(after)
        same = len(digests["before"][name] | digests["after"][name]) == 1
        print(f"| {name:<36} | {b:>8.3f} | {a:>8.3f} | {a / b:>13.3f}x | "
              f"{min(before):>5.3f}-{max(before):<7.3f} | {min(after):>5.3f}-{max(after):<7.3f} | "
              f"{'yes' if same else 'NO':>11} |")


if __name__ == "__main__":
    main()
