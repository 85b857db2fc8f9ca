"""Streaming image folders from disk against holding them in memory (issue 12).

On a *generated* image folder (``image_tree.py``: crops of scikit-image's photos,
96-160 px JPEGs), three ways of feeding the study, each through ``neurn``'s own
batch-indexed datasets and ``batch_loader`` (the study's loader):

* ``in memory``: every image decoded beforehand and held in RAM (``ArrayBatches`` over
  a numpy array), no workers: the reference;
* ``memmap cache``: the decoded uint8 cache of ``--cache-images`` (``ArrayBatches`` over
  the memmap), no workers;
* ``streaming``: ``FolderBatches`` decoding each JPEG on the fly in ``--workers``
  ``DataLoader`` workers.

Two measures, images per second:

1. the loader alone (one pass over every image in batches of ``--batch-size``);
2. training: ``--steps`` AdamW steps of ``--model`` at ``--size`` px on those batches
   (CPU, float32, every core), which is what the target "streaming keeps >= 80% of the
   in-memory throughput" is about: the decoding workers share the cores with training.

    python benchmarks/bench_data.py [--images 2048] [--size 64] [--workers 2]
                                    [--model resnet18] [--steps 30] [--batch-size 64]
                                    [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from image_tree import make_tree  # noqa: E402

from neurn.data.batches import ArrayBatches, FolderBatches  # noqa: E402
from neurn.data.folder import FolderDomain  # noqa: E402
from neurn.data.image_cache import cached_images  # noqa: E402
from neurn.models import build_model  # noqa: E402
from neurn.study.data import batch_loader  # noqa: E402


def batches(n: int, size: int, seed: int = 0):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(order[: n // size * size].view(-1, size))


def loader_rate(dataset, workers: int, batch_size: int, passes: int = 5) -> float:
    # an in-memory pass lasts tens of milliseconds: the best of several is the rate
    # the loader can sustain, not the noise of one scheduler tick
    plan = batches(len(dataset), batch_size)
    best = 0.0
    for _ in range(passes):
        t0 = time.perf_counter()
        seen = sum(len(labels) for _, labels in batch_loader(dataset, plan, workers=workers))
        best = max(best, seen / (time.perf_counter() - t0))
    return best


def train_rate(dataset, workers: int, args) -> float:
    torch.manual_seed(0)
    model, _ = build_model(args.model, num_classes=10, img_size=args.size,
                           input_stats={"pixels": (0.45, 0.25)})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    plan = batches(len(dataset), args.batch_size)[: args.steps + 3]
    seen, t0 = 0, None
    for step, (images, labels) in enumerate(batch_loader(dataset, plan, workers=workers)):
        if step == 3:  # the first steps warm up the allocator and the workers
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(images.float().div_(255.0)), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(labels) if t0 is not None else 0
    return seen / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=2,
                   help="training measured this many times per feed, feeds interleaved; "
                        "the best round counts (default 2)")
    p.add_argument("--dir", type=Path, help="where the generated tree goes (default: temp)")
    args = p.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    with tempfile.TemporaryDirectory() as tmp:
        root = make_tree(args.dir or Path(tmp) / "tree", args.images)
        domain = FolderDomain(root, img_size=args.size)
        t0 = time.perf_counter()
        memmap, bad = cached_images(domain, args.size, cache_dir=Path(tmp) / "cache")
        build = time.perf_counter() - t0
        assert not bad
        feeds = [("in memory", ArrayBatches(np.array(memmap), domain.labels), 0),
                 ("memmap cache", ArrayBatches(memmap, domain.labels), 0),
                 (f"streaming, {args.workers} workers",
                  FolderBatches(domain.root, domain.files, domain.labels, args.size),
                  args.workers)]
        print(f"generated folder: {len(domain)} JPEGs (96-160 px) -> {args.size} px; "
              f"building the memmap cache took {build:.1f} s "
              f"({len(domain) / build:.0f} images/s, {os.cpu_count()} threads); "
              f"{torch.get_num_threads()} torch threads, model {args.model}, batch "
              f"{args.batch_size}\n")
        loads = [loader_rate(ds, w, args.batch_size) for _, ds, w in feeds]
        # interleaved rounds, so that a slow spell of a shared machine hits every feed
        trains = np.max([[train_rate(ds, w, args) for _, ds, w in feeds]
                         for _ in range(args.rounds)], axis=0)
        rows = [(name, load, train) for (name, _, _), load, train in zip(feeds, loads, trains)]
    ref_load, ref_train = rows[0][1], rows[0][2]
    print("| feed | loader alone (img/s) | vs in memory | training (img/s) | vs in memory |")
    print("|---|---|---|---|---|")
    for name, load, train in rows:
        print(f"| {name} | {load:,.0f} | {load / ref_load:.2f} | {train:,.1f} | "
              f"{train / ref_train:.2f} |")


if __name__ == "__main__":
    main()
