"""The training loop of one run: seed, build, train epoch by epoch, select, evaluate.

* Every run is seeded (torch, numpy, python) from its seed: weights, batch order and
  dropout follow it. The data split is the same for every run (``data_seed``), so seeds
  vary training only and the baseline / variant comparison is paired.
* Budget: ``epochs`` passes over the source train split, or ``steps`` optimizer steps
  split into ``evals`` equal "epochs" (a validation point after each; the steps are
  rounded up to a multiple of ``evals``). An epoch's batches come from fresh
  permutations of a seeded ``torch.Generator``; the augmentations draw from their own.
* Several training domains: every batch is balanced, ``batch_size / D`` images from each
  of the D domains (the first ``batch_size % D`` domains one more), each domain drawn
  from its own permutations, as DomainBed's ERM draws a batch from every training
  environment; an epoch is still ``len(train) // batch_size`` steps.
* Optimiser: AdamW (or SGD with Nesterov momentum), linear warm-up over the first 5%
  of steps then cosine decay to 0, per step.
* Model selection on the source ``val`` split after every epoch (highest top-1, the
  earliest on ties); the selected weights are evaluated on the source ``test`` split
  and every target. A checkpoint (:mod:`.checkpoints`) follows every epoch.
* A NaN / inf loss (or a runtime error such as CUDA out of memory) stops the run with
  ``status="error"`` and the message in its result.
* CUDA: bfloat16/float16 autocast, channels_last for conv nets, pinned-memory loading.
"""
from __future__ import annotations
import math
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn

from archalign.utils.io import atomic_write_text, seal_json, state_digest

from neurn.fronts import CropFlip
from neurn.models import Variant, build_augmentation, build_model, uses_convolutions
from neurn.study.checkpoints import (
    atomic_torch_save, checkpoint_state, first_line, restore_checkpoint)
from neurn.study.data import batch_loader
from neurn.study.engine import NonFiniteLossError, amp_dtype_for, evaluate, train_one_epoch
from neurn.study.settings import Run
from neurn.study.torch_settings import seed_everything
from neurn.study.verify import Found

__all__ = ["augmentation", "epoch_batches", "eval_loader", "finish_line", "loader",
           "optimizer_for", "progress_bar", "schedule", "train_run"]


def progress_bar(iterable: Iterable | None = None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, dynamic_ncols=True, **kwargs)


def optimizer_for(model, name: str, lr: float, weight_decay: float, total_steps: int):
    """The optimizer (no weight decay on biases and norms) and its per-step schedule."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if name == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=lr)
    warmup = max(1, int(0.05 * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def loader(study, dataset, batches: list[torch.Tensor]):
    """A loader of ``batches`` (index tensors) of ``dataset`` with the study's workers."""
    return batch_loader(dataset, batches, workers=study.num_workers,
                        pin_memory=study.device.type == "cuda")


def eval_loader(study, dataset):
    """Every image of ``dataset`` once, in order, in batches twice the training size."""
    size = 2 * study.batch_size
    return loader(study, dataset, list(torch.arange(len(dataset)).split(size)))


def schedule(study, data: dict):
    """``(epochs, steps per epoch)`` of the runs of ``study`` on ``data`` (loaded)."""
    n_train = len(data["train"])
    if study.steps is not None:
        epochs = min(study.evals, study.steps)
        per_epoch = math.ceil(study.steps / epochs)
    else:
        epochs, per_epoch = study.epochs, max(1, n_train // study.batch_size)
    return epochs, per_epoch


def epoch_batches(study, generator: torch.Generator, per_epoch: int,
                  parts: list[int]) -> list[torch.Tensor]:
    """One epoch's batches of train indices, from fresh permutations of ``generator``;
    ``parts``: the sizes of the training domains laid end to end (balanced batches;
    the study checks that a batch holds an image of each)."""
    shares = [study.batch_size // len(parts) + (i < study.batch_size % len(parts))
              for i in range(len(parts))]
    offset, columns = 0, []
    for n, share in zip(parts, shares):
        need = per_epoch * share
        draws, total = [], 0
        while total < need:
            draws.append(torch.randperm(n, generator=generator))
            total += n
        columns.append(torch.cat(draws)[:need].view(per_epoch, share) + offset)
        offset += n
    return list(torch.cat(columns, dim=1))


def augmentation(study, variant: Variant, generator: torch.Generator,
                 stats: dict | None) -> nn.Module | None:
    """The source crop + flip (when on) and the variant's own augmentation, both
    drawing from the run's checkpointed augmentation generator."""
    steps = [CropFlip(generator=generator)] if study.augment else []
    own = build_augmentation(variant, generator=generator,
                             pixels=stats["pixels"] if stats else None)
    steps += [own] if own is not None else []
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else nn.Sequential(*steps)


def finish_line(key: str, result: dict, seconds: float, where: str = "") -> str:
    """One line on a finished run: its key, where and how long it trained, its selected
    source-validation top-1 (or its error)."""
    outcome = (f"source val {result['val_top1']:.1f}%" if result["status"] == "ok" else
               f"failed: {result['error']}")
    return (f"{key}: finished{f' on {where}' if where else ''} in {seconds / 60:.1f} min, "
            f"{outcome}")


def out_of_memory(exc: BaseException) -> bool:
    """``exc`` says the device (or the host) ran out of memory."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return "out of memory" in text or "can't allocate memory" in text


def train_run(study, run: Run, found: Found,
              on_checkpoint: Callable[[tuple | None], None] = lambda mark: None) -> dict:
    """Train, select and evaluate ``run`` of ``study`` (a :class:`~neurn.Study`) from what
    its folder holds (``found``, verified), write its ``result.json``, return the result.
    ``on_checkpoint`` gets ``(run key, epoch, epochs)`` of each newest checkpoint (None
    before the first), for the Ctrl-C message."""
    group = study.group_data(run)
    data = group.load()
    run_dir = study.out_dir / "runs" / run.key
    settings, digest = found.settings, found.digest
    result_path = run_dir / "result.json"
    run_dir.mkdir(parents=True, exist_ok=True)
    device = study.device
    seed_everything(run.seed)
    stats = group.input_stats()
    model, plan = build_model(run.model, variant=run.variant, plan=study.plans[run.model],
                              num_classes=group.num_classes, img_size=group.img_size,
                              input_stats=stats, pretrained=study.weights.get(run.model))
    channels_last = device.type == "cuda" and uses_convolutions(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype = amp_dtype_for(device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    epochs, per_epoch = schedule(study, data)
    optimizer, scheduler = optimizer_for(model, study.optimizer, study.lr, study.weight_decay,
                                         epochs * per_epoch)
    generator = torch.Generator().manual_seed(run.seed)
    # own stream (sampler seeds are < 2**32): every variant of a seed sees the same batches
    augment_rng = torch.Generator().manual_seed(run.seed + 2**32)
    augment = augmentation(study, run.variant, augment_rng, stats)
    history: list[dict] = []
    best: dict | None = None
    start_epoch = 0
    checkpoint_path = run_dir / "checkpoint.pt"
    states = dict(model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                  generator=generator, augment_rng=augment_rng, device=device)
    if found.checkpoint is not None:
        state, found.checkpoint = found.checkpoint, None  # held once, not twice
        restore_checkpoint(state, checkpoint_path, **states)
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
    on_checkpoint((run.key, start_epoch, epochs) if start_epoch else None)
    kwargs = dict(device=device, amp_dtype=amp_dtype, channels_last=channels_last)
    val_loader = eval_loader(study, data["val"])
    bar = progress_bar(total=epochs * per_epoch, initial=start_epoch * per_epoch, unit="step",
                       desc=f"{run.model} {run.variant.name} s{run.seed}", leave=False,
                       disable=not study.progress)
    started = time.perf_counter()
    error = None
    try:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            batches = loader(study, data["train"], epoch_batches(study, generator, per_epoch,
                                                                 data["train_parts"]))
            train = train_one_epoch(model, batches, optimizer, scheduler=scheduler,
                                    scaler=scaler, augment=augment,
                                    start_step=epoch * per_epoch,
                                    on_step=lambda s: (bar.update(1), bar.set_postfix(
                                        epoch=f"{epoch + 1}/{epochs}",
                                        loss=f"{s['loss']:.3f}")), **kwargs)
            train_seconds = time.perf_counter() - t0
            val = evaluate(model, val_loader, **kwargs)
            record = {"epoch": epoch + 1, "step": (epoch + 1) * per_epoch,
                      "train_loss": train["loss"], "train_top1": train["top1"],
                      "val_loss": val["loss"], "val_top1": val["top1"],
                      "lr": optimizer.param_groups[0]["lr"],
                      "images_per_second": train["images"] / max(train_seconds, 1e-9),
                      "seconds": time.perf_counter() - t0}
            history.append(record)
            if best is None or val["top1"] > best["val_top1"]:
                best = {"epoch": epoch + 1, "val_top1": val["top1"], "val_loss": val["loss"],
                        "model": {k: v.detach().to("cpu", copy=True)
                                  for k, v in model.state_dict().items()}}
            atomic_torch_save(checkpoint_state(digest=digest, epoch=epoch + 1, history=history,
                                               best=best, **states), checkpoint_path)
            on_checkpoint((run.key, epoch + 1, epochs))
    except NonFiniteLossError as exc:
        error = str(exc)
    except (RuntimeError, MemoryError) as exc:
        if not out_of_memory(exc):
            raise  # a bug, not a run that failed: the study stops with its traceback
        error = first_line(exc)  # this run does not fit; the others may
    finally:
        bar.close()
    result = {"model": run.model, "variant": run.variant.name,
              "kernel_size": run.variant.kernel_size, "seed": run.seed,
              "num_classes": group.num_classes, "img_size": group.img_size,
              "group": run.group, "init": study.init(run.model).to_dict(),
              "counts": group.counts(),
              "skipped": {n: len(b) for n, b in group.skipped.items()},
              "status": "ok" if error is None else "error", "error": error,
              "settings_hash": digest, "settings": settings, "plan": plan.to_dict(),
              "device": str(device), "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
              "channels_last": channels_last, "history": history,
              "train_seconds": time.perf_counter() - started, "metrics": {}}
    if error is None:
        model.load_state_dict(best["model"])
        result.update(best_epoch=best["epoch"], val_top1=best["val_top1"],
                      val_loss=best["val_loss"])
        t0 = time.perf_counter()
        for name, dataset in data["eval"].items():
            metrics = evaluate(model, eval_loader(study, dataset), **kwargs)
            result["metrics"][name] = {
                "role": "source" if name in group.sources else "target",
                "generated": data["generated"][name], "top1": metrics["top1"],
                "loss": metrics["loss"], "n": metrics["n"]}
        result["eval_seconds"] = time.perf_counter() - t0
        if study.keep_weights:
            atomic_torch_save(best["model"], run_dir / "best.pt")
            result["weights_sha256"] = state_digest(best["model"])
    atomic_write_text(result_path, seal_json(result, indent=2))
    if checkpoint_path.exists():
        checkpoint_path.unlink()
    return result
