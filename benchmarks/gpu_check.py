"""One GPU check of the NeuRN study, under 8 minutes on a CUDA machine; prints one table.

    python benchmarks/gpu_check.py                 # exits 0 with a note when CUDA is absent
    python benchmarks/gpu_check.py --json gpu.json
    python benchmarks/gpu_check.py --device cpu --tiny   # dry run of the script's logic

Checks, in order (each row: what, measured, target, PASS / FAIL / info):

1. the NeuRN layer on the GPU against its unfold reference (float32 and float64,
   k = 3, 5, 7, per image and per channel, reflect / zeros padding) and against the
   CPU result; bfloat16 autocast gives finite [0, 1] output; a constant image gives 0s;
2. the layer's effective bandwidth (input read + output written, GB/s) at 32 and
   224 px, forward and forward + backward;
3. a ResNet-18 training step (AdamW, AMP, channels_last) with and without NeuRN at
   32 px (the study's setting) and at 224 px: NeuRN's overhead must be < 5%;
4. a short offline study (2 models x baseline / NeuRN x 1 seed) through ``neurn.Study``
   on the GPU: it must finish without errors; its table is printed;
5. image folders at 224 px (a *generated* folder of JPEGs, ``image_tree.py``): ResNet-18
   AMP training steps, batch 128, with the study's crop + flip, fed from the decoded
   memmap cache by the study's loader (workers, pinned memory). The GPU's busy share
   (the same steps on one batch already on the GPU, divided by the fed time) must be
   >= 90%; the streaming loader's rate (decoding JPEGs in workers) is reported beside;
6. DomainBed's protocol through ``neurn run``: a pretrained ResNet-50 (a seeded weights
   file written here, since hubs are unreachable from the GPU machine; ``--weights``)
   on a *generated* 3-domain root at 224 px, one domain held out, AMP, batch 96 (32 per
   training domain): the run must finish; its training rate is reported;
7. sweeps on Dask: 8 digit runs (``convnet``, baseline / NeuRN x 4 seeds) with ``--gpus 1
   --runs-per-gpu K`` for K = 1, 2, 4: runs per hour and the GPU's busy share (sampled
   from ``nvidia-smi`` every 0.5 s); ``--tiny`` on CPU uses ``--dask-workers K``;
8. checkpoint digests (``archalign.utils.io.state_digest``, what ``checkpoint.pt`` and
   ``best.pt`` are verified by): a ResNet-50's state and an AdamW state on the GPU digest
   to the same value as their CPU copies (bfloat16 and channels_last included), and the
   time it takes per checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neurn.fronts import neurn_reference, neurn_response  # noqa: E402

ROWS = []


def row(check: str, value: str, target: str = "", ok=None) -> None:
    status = "info" if ok is None else ("PASS" if ok else "FAIL")
    ROWS.append({"check": check, "value": value, "target": target, "status": status})
    print(f"  {status:4s}  {check}: {value}  {target}", flush=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    """Median seconds of ``fn`` (CUDA events on GPU, perf_counter on CPU)."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def check_layer(device, tiny: bool) -> None:
    g = torch.Generator().manual_seed(0)
    worst = {torch.float32: 0.0, torch.float64: 0.0}
    worst_cpu = 0.0
    shapes = [(4, 3, 32, 32), (2, 1, 29, 31)] + ([] if tiny else [(8, 3, 64, 64)])
    for shape in shapes:
        x64 = torch.rand(shape, generator=g, dtype=torch.float64)
        x64[0, :, :5, :5] = 0.5  # a flat corner
        for k in (3, 5, 7):
            for per in ("image", "channel"):
                for padding in ("reflect", "zeros"):
                    kw = dict(kernel_size=k, per=per, padding=padding)
                    for dtype in worst:
                        x = x64.to(device=device, dtype=dtype)
                        fast = neurn_response(x, **kw)
                        ref = neurn_reference(x, **kw)
                        worst[dtype] = max(worst[dtype], (fast - ref).abs().max().item())
                        if dtype == torch.float32:
                            cpu = neurn_response(x.cpu(), **kw)
                            worst_cpu = max(worst_cpu, (fast.cpu() - cpu).abs().max().item())
    row("layer vs reference, float32", f"max abs diff {worst[torch.float32]:.1e}", "< 1e-5",
        worst[torch.float32] < 1e-5)
    row("layer vs reference, float64", f"max abs diff {worst[torch.float64]:.1e}", "< 1e-10",
        worst[torch.float64] < 1e-10)
    row(f"layer {device.type} vs CPU, float32", f"max abs diff {worst_cpu:.1e}", "< 1e-5",
        worst_cpu < 1e-5)
    x = torch.rand(8, 3, 32, 32, device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        out = neurn_response(x)
    ok = bool(torch.isfinite(out).all()) and out.min() >= 0 and out.max() <= 1 \
        and out.dtype == x.dtype
    row("layer under bf16 autocast", f"dtype {str(out.dtype).replace('torch.', '')}, finite, "
        f"in [0, 1]: {ok}", "finite, [0, 1]", ok)
    flat = neurn_response(torch.full((2, 3, 32, 32), 0.3, device=device))
    row("constant image", f"max {flat.abs().max().item():g}", "0", flat.abs().max().item() == 0)


def check_bandwidth(device, tiny: bool) -> None:
    sizes = [(4096, 32), (256, 224)] if not tiny else [(64, 32), (4, 224)]
    for batch, size in sizes:
        x = torch.rand(batch, 3, size, size, device=device)
        moved = 2 * x.numel() * x.element_size()
        fwd = timed(lambda: neurn_response(x), device, 5 if tiny else 20)
        xg = x.clone().requires_grad_(True)

        def fwd_bwd():
            neurn_response(xg).sum().backward()
            xg.grad = None

        both = timed(fwd_bwd, device, 3 if tiny else 10)
        row(f"NeuRN bandwidth {batch}x3x{size}x{size}",
            f"fwd {fwd * 1e3:.2f} ms = {moved / fwd / 1e9:.3g} GB/s; "
            f"fwd+bwd {both * 1e3:.2f} ms = {2 * moved / both / 1e9:.3g} GB/s")


def check_step(device, tiny: bool) -> None:
    from bench_train import compare

    configs = [(32, 512 if not tiny else 8), (224, 128 if not tiny else 2)]
    for size, batch in configs:
        r = compare("resnet18", device=device, batch_size=batch, img_size=size,
                    steps=3 if tiny else 30, warmup=1 if tiny else 10)
        overhead = r["neurn_overhead_pct"]
        row(f"ResNet-18 train step {size} px, batch {batch}, {r['amp']}",
            f"baseline {r['baseline_step_ms']:.2f} ms, NeuRN {r['neurn_step_ms']:.2f} ms, "
            f"overhead {overhead:+.1f}%", "< 5%", overhead < 5.0 if device.type == "cuda" else None)


def check_study(device, tiny: bool) -> None:
    from neurn.study import Study

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        models = ["test_resnet"] if tiny else ["resnet18", "vit_tiny_patch16_224"]
        budget = dict(steps=4, evals=2, batch_size=8, eval_limit=32, train_limit=64) if tiny \
            else dict(steps=600, evals=5, batch_size=128)
        study = Study(models, device=str(device), out_dir=out, progress=False,
                      keep_weights=False, **budget)
        results = study.run()
        seconds = time.perf_counter() - t0
        row("short offline study", f"{len(results.runs)} runs in {seconds:.0f} s, "
            f"{len(results.errors)} errors", "no errors", not results.errors)
        print()
        print(results.markdown)


def check_folder(device, tiny: bool) -> None:
    from image_tree import make_tree

    from neurn.data.batches import ArrayBatches, FolderBatches
    from neurn.data.folder import FolderDomain
    from neurn.data.image_cache import cached_images
    from neurn.fronts import CropFlip
    from neurn.models import build_model
    from neurn.study.data import batch_loader
    from neurn.study.engine import amp_dtype_for, train_one_epoch

    size, batch, steps = (32, 8, 4) if tiny else (224, 128, 40)
    workers = 2 if tiny else min(8, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        domain = FolderDomain(make_tree(Path(tmp) / "tree", batch * (steps + 2)), img_size=size)
        t0 = time.perf_counter()
        memmap, _ = cached_images(domain, size, cache_dir=Path(tmp) / "cache")
        build = time.perf_counter() - t0
        torch.manual_seed(0)
        model, _ = build_model("resnet18", num_classes=10, img_size=size,
                               input_stats={"pixels": (0.45, 0.25)})
        model.to(device).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        amp = amp_dtype_for(device)
        augment = CropFlip(generator=torch.Generator().manual_seed(0))
        kwargs = dict(device=device, amp_dtype=amp, channels_last=True, augment=augment)
        plan = list(torch.arange(batch * steps).view(steps, batch))

        def fed(dataset, n_workers):
            loader = batch_loader(dataset, plan, workers=n_workers,
                                  pin_memory=device.type == "cuda")
            sync(device)
            t = time.perf_counter()
            train_one_epoch(model, loader, opt, **kwargs)
            sync(device)
            return time.perf_counter() - t

        resident = [tuple(t.to(device) for t in ArrayBatches(memmap, domain.labels)[plan[0]])]
        train_one_epoch(model, resident * 3, opt, **kwargs)  # warm-up (cudnn autotune)
        sync(device)
        t = time.perf_counter()
        train_one_epoch(model, resident * steps, opt, **kwargs)
        sync(device)
        compute = time.perf_counter() - t
        cached = fed(ArrayBatches(memmap, domain.labels), workers)
        streamed = fed(FolderBatches(domain.root, domain.files, domain.labels, size), workers)
    busy = compute / cached
    row(f"folder domain {size} px: memmap cache built", f"{len(domain)} JPEGs in {build:.1f} s "
        f"({len(domain) / build:.0f} images/s)")
    row(f"folder domain {size} px, ResNet-18 batch {batch}, {amp}, {workers} workers",
        f"GPU-resident {batch * steps / compute:,.0f} img/s, memmap cache "
        f"{batch * steps / cached:,.0f} img/s (GPU busy {100 * busy:.0f}%), streaming JPEGs "
        f"{batch * steps / streamed:,.0f} img/s", ">= 90% busy with the cache",
        busy >= 0.9 if device.type == "cuda" else None)


def check_domainbed(device, tiny: bool) -> None:
    import json as _json

    import timm
    from image_tree import make_tree
    from safetensors.torch import save_file

    from neurn.cli import main as neurn

    model, size, batch, steps = (("test_resnet", 32, 12, 4) if tiny else
                                 ("resnet50", 224, 96, 60))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        for i in range(3):
            make_tree(root / f"domain{i}", 2 * batch, classes=7, seed=i)
        torch.manual_seed(0)
        weights = Path(tmp) / f"{model}.safetensors"
        save_file(timm.create_model(model).state_dict(), weights)
        t0 = time.perf_counter()
        code = neurn(["run", model, "--weights", str(weights), "--dataset", str(root),
                      "--test-envs", "0", "--variants", "baseline", "neurn", "--steps",
                      str(steps), "--evals", "1", "--batch-size", str(batch), "--img-size",
                      str(size), "--device", str(device), "--no-progress", "--no-weights",
                      "--out", str(Path(tmp) / "study")])
        seconds = time.perf_counter() - t0
        runs = [_json.loads(p.read_text()) for p in (Path(tmp) / "study" / "runs").glob(
            "*/result.json")]
    rates = {r["variant"]: r["history"][-1]["images_per_second"] for r in runs}
    ok = code == 0 and len(runs) == 2 and all(r["status"] == "ok" for r in runs)
    row(f"pretrained {model} leave-one-domain-out, {size} px, batch {batch}, "
        f"{runs[0]['amp'] if runs else '?'}", f"exit {code}, {len(runs)} runs in "
        f"{seconds:.0f} s; " + ", ".join(f"{v} {r:,.0f} img/s" for v, r in rates.items()),
        "finishes, no errors", ok)


def _gpu_busy(samples: list, stop) -> None:
    import subprocess

    while not stop.wait(0.5):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits", "-i", "0"],
                                 capture_output=True, text=True, timeout=5).stdout
            samples.append(float(out.split()[0]))
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return


def check_sweep(device, tiny: bool) -> None:
    import threading

    from neurn.cli import main as neurn

    steps = 4 if tiny else 300
    small = ["--targets", "optdigits", "--eval-limit", "64"] if tiny else []
    for k in (1, 2, 4):
        where = (["--dask-workers", str(k)] if device.type != "cuda" else
                 ["--gpus", "1", "--runs-per-gpu", str(k)])
        samples: list = []
        stop = threading.Event()
        sampler = threading.Thread(target=_gpu_busy, args=(samples, stop), daemon=True)
        with tempfile.TemporaryDirectory() as tmp:
            if device.type == "cuda":
                sampler.start()
            t0 = time.perf_counter()
            code = neurn(["run", "convnet", "--variants", "baseline", "neurn", "--seeds", "0",
                          "1", "2", "3", "--steps", str(steps), "--evals", "3", "-b", "128",
                          "--no-progress", "--no-weights", *small, *where, "--out",
                          str(Path(tmp) / "study")])
            seconds = time.perf_counter() - t0
            stop.set()
        busy = f", GPU busy {sum(samples) / len(samples):.0f}%" if samples else ""
        row(f"sweep of 8 digit runs, {k} run(s) at a time on one device",
            f"exit {code}, {seconds:.0f} s, {8 * 3600 / seconds:,.0f} runs/h{busy}",
            "finishes", code == 0)


def check_digest(device, tiny: bool) -> None:
    import timm

    from archalign.utils.io import state_digest

    model = timm.create_model("resnet18" if tiny else "resnet50").to(device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 64, 64, device=device)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "half": torch.randn(8, 8, device=device, dtype=torch.bfloat16)}
    start = time.perf_counter()
    on_device = state_digest(state)
    seconds = time.perf_counter() - start
    def to_cpu(value):
        if isinstance(value, dict):
            return {k: to_cpu(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(to_cpu(v) for v in value)
        return value.cpu() if isinstance(value, torch.Tensor) else value

    on_cpu = state_digest(to_cpu(state))
    row("checkpoint digest: device = CPU copy", "equal" if on_device == on_cpu else "differs",
        "equal", on_device == on_cpu)
    row("checkpoint digest time (model + AdamW state)", f"{seconds:.2f} s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", help="default: cuda")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (dry run of the script)")
    p.add_argument("--skip-study", action="store_true")
    p.add_argument("--json", type=Path, help="also write the table as JSON")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is absent (torch.cuda.is_available() is False); nothing to "
              "check here. Run it on a CUDA machine, or `--device cpu --tiny` for a dry run.")
        return 0
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = "CPU"
    print(f"gpu_check on {name}, torch {torch.__version__}", flush=True)
    start = time.perf_counter()
    for label, fn in [("layer", check_layer), ("bandwidth", check_bandwidth),
                      ("step", check_step), ("study", check_study),
                      ("folder", check_folder), ("domainbed", check_domainbed),
                      ("sweep", check_sweep), ("digest", check_digest)]:
        if label == "study" and args.skip_study:
            continue
        try:
            fn(device, args.tiny)
        except Exception as exc:  # noqa: BLE001 - report and go on to the next check
            row(f"{label} check", f"crashed: {type(exc).__name__}: {exc}", "", False)
    total = time.perf_counter() - start
    row("total time", f"{total:.0f} s", "< 480 s", total < 480 if device.type == "cuda" else None)
    print()
    print("| check | measured | target | status |")
    print("|---|---|---|---|")
    for r in ROWS:
        print(f"| {r['check']} | {r['value']} | {r['target']} | {r['status']} |")
    if args.json:
        args.json.write_text(json.dumps(ROWS, indent=2))
    return 1 if any(r["status"] == "FAIL" for r in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
