"""Speed of the NeuRN layer: the box-filter fast path against the unfold reference.

Prints images/s for batch 256 at 3 x 32 x 32 and batch 32 at 3 x 224 x 224, for
k = 3, 7, 15 (per="image", reflect padding), and the fast path's speed-up. Targets:
the fast path at least 10x the reference at k = 7 on CPU, and flat in k (its cost
does not depend on k). Each figure is the best over --rounds rounds (after a
warm-up round) that time every entry in turn, --repeats calls each for the fast path
and one for the slow reference, which filters out the noise of a shared machine.
The reference materialises k^2 copies of the input, so it runs in chunks of
--ref-chunk images (throughput per image is unchanged, memory is bounded).

When CUDA is present a GPU section follows: the same table on the GPU, and the
fast path's achieved memory bandwidth, counted as the useful bytes (read the input
once, write the output once: 8 bytes per float32 element) per second, against the
device's peak from its spec (memory clock x bus width x 2) and a measured
device-to-device copy.

    python benchmarks/bench_neurn.py [--rounds 3] [--repeats 3] [--threads N]
                                     [--quick] [--no-gpu]
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from neurn import neurn_reference, neurn_response

CASES = [(256, 32), (32, 224)]  # (batch, side)
KERNELS = (3, 7, 15)


def best_time(fn, repeats, sync):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def chunked_reference(x, k, chunk):
    return torch.cat([neurn_reference(part, k) for part in x.split(chunk)])


def table(device, rounds, repeats, ref_chunk, cases, kernels):
    """Time every (case, k) for both paths, round-robin over `rounds` rounds, and
    keep each one's best: a burst of load from other processes then costs one
    round of one entry instead of a whole row."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    jobs = []
    for batch, side in cases:
        x = torch.rand(batch, 3, side, side, generator=torch.Generator().manual_seed(0))
        for k in kernels:
            jobs.append((batch, side, k, x.to(device)))
    fast = {job[:3]: float("inf") for job in jobs}
    ref = dict(fast)
    for round_index in range(rounds + 1):  # round 0 is the warm-up
        for batch, side, k, x in jobs:
            key = (batch, side, k)
            t_fast = best_time(lambda: neurn_response(x, k), repeats, sync)
            t_ref = best_time(lambda: chunked_reference(x, k, ref_chunk), 1, sync)
            if round_index > 0:
                fast[key], ref[key] = min(fast[key], t_fast), min(ref[key], t_ref)
    print("| batch x C x H x W | k | fast img/s | reference img/s | speed-up |")
    print("|---|---|---|---|---|")
    for (batch, side, k), seconds in fast.items():
        print(f"| {batch} x 3 x {side} x {side} | {k} | {batch / seconds:,.0f} | "
              f"{batch / ref[batch, side, k]:,.0f} | {ref[batch, side, k] / seconds:.1f}x |")
    return [(batch, side, k, seconds) for (batch, side, k), seconds in fast.items()]


def peak_bandwidth(device):
    props = torch.cuda.get_device_properties(device)
    clock_khz = getattr(props, "memory_clock_rate", 0)
    bus_bits = getattr(props, "memory_bus_width", 0)
    return 2 * clock_khz * 1e3 * bus_bits / 8 if clock_khz and bus_bits else None


def copy_bandwidth(device, repeats):
    big = torch.empty(256 * 2 ** 20, device=device)  # 1 GiB of float32
    seconds = best_time(lambda: big.clone(), repeats, torch.cuda.synchronize)
    return 2 * big.numel() * 4 / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3,
                        help="fast-path calls per round (the reference gets one)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--ref-chunk", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="k = 7 only, fewer repeats")
    parser.add_argument("--no-gpu", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kernels = (7,) if args.quick else KERNELS
    rounds = 1 if args.quick else args.rounds
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads; best of {rounds} rounds x {args.repeats} "
          f"calls (reference: {rounds} rounds x 1 call) after a warm-up round")
    print("\n## CPU, float32\n")
    table(torch.device("cpu"), rounds, args.repeats, args.ref_chunk, CASES, kernels)
    if args.no_gpu or not torch.cuda.is_available():
        print("\n(no GPU section: CUDA not available)" if not args.no_gpu else "")
        return
    device = torch.device("cuda")
    print(f"\n## GPU ({torch.cuda.get_device_name(device)}), float32\n")
    rows = table(device, rounds, 10, 64, CASES, kernels)
    peak, copy = peak_bandwidth(device), copy_bandwidth(device, 10)
    print(f"\npeak (spec) {peak / 1e9:,.0f} GB/s; measured copy {copy / 1e9:,.0f} GB/s"
          if peak else f"\nmeasured copy {copy / 1e9:,.0f} GB/s")
    print("\n| batch x C x H x W | k | useful GB/s | % of copy |" + (" % of peak |" if peak else ""))
    print("|---|---|---|---|" + ("---|" if peak else ""))
    for batch, side, k, seconds in rows:
        achieved = 8 * batch * 3 * side * side / seconds
        line = (f"| {batch} x 3 x {side} x {side} | {k} | {achieved / 1e9:,.1f} "
                f"| {100 * achieved / copy:.1f} |")
        print(line + (f" {100 * achieved / peak:.1f} |" if peak else ""))


if __name__ == "__main__":
    main()
