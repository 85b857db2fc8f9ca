"""Training throughput (images/s) per model, with and without NeuRN, on CPU and CUDA.

    python benchmarks/bench_train.py                          # default models, CPU (+ CUDA)
    python benchmarks/bench_train.py resnet18 vgg16 --batch-size 64 --steps 10
    python benchmarks/bench_train.py --devices cuda --json out.json

A step is what the study does: uint8 batch -> device -> float [0, 1] -> (NeuRN |
normalise) -> model -> cross-entropy -> backward -> AdamW step; 32 x 32 digits, 10
classes, models adapted as in ``neurn.models`` (ViT: img_size=32, patch 8). On CUDA:
bfloat16 autocast (float16 + GradScaler where bf16 is missing), channels_last for conv
nets, ``cudnn.benchmark``; the clock is read after ``torch.cuda.synchronize()``. On
CPU: ``--threads`` (default: all available). NeuRN's overhead is
``1 - neurn_throughput / baseline_throughput``; the target is < 5% of a ResNet-18 step
on GPU (checked with ``--check``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neurn.study.engine import amp_dtype_for, backward_step, to_device  # noqa: E402
from neurn.models import build_model, uses_convolutions  # noqa: E402

DEFAULT_MODELS = ["resnet18", "mobilenetv3_small_100", "vit_tiny_patch16_224"]


def measure(name: str, *, variant: str = "baseline", device="cpu", batch_size: int = 64,
            steps: int = 10, warmup: int = 3, img_size: int = 32,
            channels_last=None, amp: bool = True) -> dict:
    """Images per second of training steps of ``name`` (``variant``) on ``device``."""
    device = torch.device(device)
    torch.manual_seed(0)
    model, plan = build_model(name, variant=variant, img_size=img_size)
    if channels_last is None:
        channels_last = device.type == "cuda" and uses_convolutions(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    amp_dtype = amp_dtype_for(device) if amp else None
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randint(0, 256, (batch_size, 3, img_size, img_size), dtype=torch.uint8)
    labels = torch.randint(0, 10, (batch_size,))
    if device.type == "cuda":
        images, labels = images.pin_memory(), labels.pin_memory()

    def step():
        x, y = to_device(images, labels, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        backward_step(loss, opt, scaler)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    return {"model": name, "variant": variant, "device": str(device), "batch_size": batch_size,
            "input": plan.adaptation, "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
            "channels_last": channels_last, "step_ms": 1000 * seconds / steps,
            "images_per_second": batch_size * steps / seconds}


def compare(name: str, **kwargs) -> dict:
    """Baseline and NeuRN throughput of one model, and NeuRN's overhead (%)."""
    base = measure(name, variant="baseline", **kwargs)
    neurn = measure(name, variant="neurn", **kwargs)
    overhead = 100.0 * (1.0 - neurn["images_per_second"] / base["images_per_second"])
    return {"model": name, "device": base["device"], "batch_size": base["batch_size"],
            "amp": base["amp"], "input": base["input"],
            "baseline_img_s": base["images_per_second"], "neurn_img_s": neurn["images_per_second"],
            "baseline_step_ms": base["step_ms"], "neurn_step_ms": neurn["step_ms"],
            "neurn_overhead_pct": overhead}


def format_table(rows) -> str:
    lines = ["| model | device | batch | precision | baseline img/s | NeuRN img/s | "
             "NeuRN overhead |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['device']} | {r['batch_size']} | {r['amp']} | "
                     f"{r['baseline_img_s']:.0f} | {r['neurn_img_s']:.0f} | "
                     f"{r['neurn_overhead_pct']:+.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    p.add_argument("--devices", nargs="+", default=None,
                   help="cpu and/or cuda (default: cpu, plus cuda when present)")
    p.add_argument("-b", "--batch-size", type=int, default=None,
                   help="default: 32 on CPU, 256 on CUDA")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 5 CPU, 50 CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 2 / 10)")
    p.add_argument("--repeats", type=int, default=1,
                   help="measure each pair this many times, keep the best (noisy machines)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    p.add_argument("--check", action="store_true",
                   help="exit 1 unless NeuRN's overhead on a CUDA ResNet-18 step is < 5%%")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA is absent: measuring CPU only", file=sys.stderr)
        devices = [d for d in devices if d != "cuda"] or ["cpu"]
    torch.backends.cudnn.benchmark = True
    rows = []
    for device in devices:
        cuda = device.startswith("cuda")
        kwargs = dict(device=device, batch_size=args.batch_size or (256 if cuda else 32),
                      steps=args.steps or (50 if cuda else 5),
                      warmup=args.warmup or (10 if cuda else 2))
        for name in args.models:
            best = None
            for _ in range(args.repeats):
                row = compare(name, **kwargs)
                if best is None or row["baseline_img_s"] + row["neurn_img_s"] > \
                        best["baseline_img_s"] + best["neurn_img_s"]:
                    best = row
            rows.append(best)
            print(format_table([best]).splitlines()[-1], flush=True)
    print()
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.check:
        gpu = [r for r in rows if r["model"] == "resnet18" and r["device"].startswith("cuda")]
        if not gpu:
            print("--check: no CUDA ResNet-18 row", file=sys.stderr)
            return 1
        ok = all(r["neurn_overhead_pct"] < 5.0 for r in gpu)
        values = ", ".join("%.1f%%" % r["neurn_overhead_pct"] for r in gpu)
        print(f"NeuRN overhead on a CUDA ResNet-18 step: {values} "
              f"({'PASS' if ok else 'FAIL'}, target < 5%)")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
