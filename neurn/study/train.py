"""The training loop of one run: seed, build, train epoch by epoch, select, evaluate.

:func:`train_run` reads as the algorithm: :func:`prepare_run` (seed, model, optimiser,
random streams), :func:`resume_run` (from a verified checkpoint), :func:`train_rounds`
(each epoch :func:`train_round` then :func:`keep_best`, then a checkpoint), and at the
end :func:`run_record` and :func:`evaluate_best` (the selected weights on the source
test split and every target) before ``result.json`` is written. It takes what it
reads explicitly: the :class:`~.config.TrainConfig`, the split's data, the run, its
model plan and paths, never the study.

* Every run is seeded (torch, numpy, python) from its seed: weights, batch order and
  dropout follow it. The data split is the same for every run (``data_seed``), so seeds
  vary training only and the baseline / variant comparison is paired.
* Budget: ``epochs`` passes over the source train split, or ``steps`` optimizer steps
  split into ``evals`` equal rounds (a validation point after each; the steps are
  rounded up to a multiple of ``evals``). The code calls every round an epoch; what a
  user reads calls it one only when it is a pass over the data (:func:`round_text`), an
  "evaluation k of n" otherwise. A round's batches come from fresh permutations of a
  seeded ``torch.Generator``; the augmentations draw from their own.
* Several training domains: every batch is balanced, ``batch_size / D`` images from each
  of the D domains (the first ``batch_size % D`` domains one more), each domain drawn
  from its own permutations, as DomainBed's ERM draws a batch from every training
  environment; an epoch is still ``len(train) // batch_size`` steps.
* Optimiser: AdamW (or SGD with Nesterov momentum), linear warm-up over the first 5%
  of steps then cosine decay to 0, per step.
* Model selection on the source ``val`` split after every epoch (highest top-1, the
  earliest on ties); the selected weights are evaluated on the source ``test`` split
  and every target. A checkpoint (:mod:`.checkpoints`) follows every epoch.
* A NaN / inf loss or running out of memory (CUDA or host) stops the run with
  ``status="error"`` and the message in its result; any other error stops the study.
* CUDA: bfloat16/float16 autocast, channels_last for conv nets, pinned-memory loading.
* Progress: a tqdm bar of the run's steps where a bar renders (a terminal, a notebook);
  where it does not (output piped to a log), with ``log``, one :func:`eval_line` per
  validation round instead, as timm's ``train.py`` logs: a log holds lines, not a
  redraw per step.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable

import torch
from torch import nn

from archalign.utils.io import atomic_write_text, seal_json, state_digest

from neurn.fronts import CropFlip
from neurn.models import ModelPlan, Variant, build_augmentation, build_model
from neurn.models.pretrained import SCRATCH, Init, Pretrained
from neurn.study.checkpoints import (
    atomic_torch_save, checkpoint_state, first_line, restore_checkpoint)
from neurn.study.config import TrainConfig
from neurn.study.data import StudyData, batch_loader
from neurn.study.engine import NonFiniteLossError, evaluate, train_one_epoch
from neurn.study.settings import Run
from neurn.study.torch_settings import seed_everything
from neurn.study.verify import Found

__all__ = ["Training", "augmentation", "epoch_batches", "eval_loader", "eval_line", "finish_line",
           "loader", "log_line", "optimizer_for", "progress_bar", "round_text", "schedule",
           "train_run"]


def progress_bar(iterable: Iterable | None = None, *, show: bool = True, **kwargs):
    """A tqdm bar on stderr where it renders: ``disable=None`` leaves it off when stderr
    is not a terminal (a log, where every redraw would be a line of its own; a notebook
    still draws its widget); ``show=False`` leaves it off everywhere. ``bar.disable`` says
    whether it is off, so that the caller logs lines instead."""
    from tqdm.auto import tqdm

    return tqdm(iterable, dynamic_ncols=True, disable=None if show else True, **kwargs)


def log_line(text: str) -> None:
    """``neurn run: text`` on stderr, above any bar, flushed so a log shows it now."""
    from tqdm.auto import tqdm

    tqdm.write(f"neurn run: {text}", file=sys.stderr)
    sys.stderr.flush()


def round_text(config: TrainConfig, done: int, rounds: int) -> str:
    """Where a run stands after ``done`` of its ``rounds`` validation rounds, in words:
    ``epoch 3 of 10``, or with a budget in steps, where a round is no pass over the data,
    ``evaluation 3 of 5 (step 360 of 600)``."""
    if config.steps is None:
        return f"{config.round_name} {done} of {rounds}"
    per_round = math.ceil(config.steps / rounds)  # as :func:`schedule` splits them
    return (f"{config.round_name} {done} of {rounds} (step {done * per_round} of "
            f"{rounds * per_round})")


def eval_line(key: str, record: dict, training: Training, config: TrainConfig) -> str:
    """The log line of one validation round's history ``record`` of run ``key``: the
    step, the round (epoch or evaluation), the round's mean training loss and the
    source-validation top-1 that selects the checkpoint."""
    total = training.epochs * training.per_epoch
    return (f"{key}: step {record['step']}/{total} ({config.round_name} {record['epoch']} of "
            f"{training.epochs}): train loss {record['train_loss']:.3f}, source val "
            f"{record['val_top1']:.1f}%, {record['seconds']:.1f} s")


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


def loader(config: TrainConfig, dataset, batches: list[torch.Tensor]):
    """A loader of ``batches`` (index tensors) of ``dataset`` with ``config``'s workers."""
    return batch_loader(dataset, batches, workers=config.num_workers,
                        pin_memory=config.pin_memory)


def eval_loader(config: TrainConfig, dataset):
    """Every image of ``dataset`` once, in order, in batches twice the training size."""
    size = 2 * config.batch_size
    return loader(config, dataset, list(torch.arange(len(dataset)).split(size)))


def schedule(config: TrainConfig, data: dict):
    """``(epochs, steps per epoch)`` of a run of ``config`` on ``data`` (loaded)."""
    n_train = len(data["train"])
    if config.steps is not None:
        epochs = min(config.evals, config.steps)
        per_epoch = math.ceil(config.steps / epochs)
    else:
        epochs, per_epoch = config.epochs, max(1, n_train // config.batch_size)
    return epochs, per_epoch


def epoch_batches(config: TrainConfig, generator: torch.Generator, per_epoch: int,
                  parts: list[int]) -> list[torch.Tensor]:
    """One epoch's batches of train indices, from fresh permutations of ``generator``;
    ``parts``: the sizes of the training domains laid end to end (balanced batches;
    the study checks that a batch of ``config.batch_size`` holds an image of each)."""
    batch_size = config.batch_size
    shares = [batch_size // len(parts) + (i < batch_size % len(parts))
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


def augmentation(config: TrainConfig, variant: Variant, generator: torch.Generator,
                 stats: dict | None) -> nn.Module | None:
    """The source crop + flip (when ``config.augment``) and the variant's own
    augmentation, both drawing from the run's checkpointed augmentation generator."""
    steps = [CropFlip(generator=generator)] if config.augment else []
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


@dataclass
class Training:
    """One run in training: what its checkpoint holds (model, optimiser, schedule,
    scaler, random streams) and its progress (history, best weights so far, epochs
    done); ``engine``: the device keywords of :mod:`.engine`'s loops."""

    run: Run
    model: nn.Module
    plan: ModelPlan
    init: Init
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    generator: torch.Generator  # the batch sampler's stream
    augment_rng: torch.Generator
    augment: nn.Module | None
    epochs: int
    per_epoch: int
    engine: dict
    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    done: int = 0

    def states(self) -> dict:
        """The keywords of :func:`.checkpoints.checkpoint_state` / ``restore_checkpoint``."""
        return dict(model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                    scaler=self.scaler, generator=self.generator,
                    augment_rng=self.augment_rng, device=self.engine["device"])


def train_run(config: TrainConfig, data: StudyData, run: Run, found: Found, *,
              plan: ModelPlan, pretrained: Pretrained | None = None, run_dir: Path,
              keep_weights: bool = True, progress: bool = False, log: bool = False,
              on_checkpoint: Callable[[tuple | None], None] = lambda mark: None) -> dict:
    """Train ``run`` as ``config`` says on ``data`` (its split), its model built to
    ``plan`` (from ``pretrained``, or scratch), from what ``run_dir`` holds (``found``,
    verified); select, test, write its ``result.json`` (and ``best.pt`` with
    ``keep_weights``), return the result. ``progress``: a bar of the steps where one
    renders; ``log``: where none is drawn, one line per validation round
    (:func:`eval_line`). ``on_checkpoint`` gets ``(run key, epoch, epochs)`` of each
    newest checkpoint (None before the first), for the Ctrl-C message. A non-finite loss
    or running out of memory fails the run (recorded in its result); any other error
    propagates."""
    loaded = data.load()
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.pt"
    training = prepare_run(config, data, loaded, run, plan, pretrained)
    resume_run(training, found, checkpoint)
    on_checkpoint((run.key, training.done, training.epochs) if training.done else None)
    started = time.perf_counter()
    error = train_rounds(training, config, loaded, found.digest, checkpoint,
                         progress=progress, log=log, on_checkpoint=on_checkpoint)
    result = run_record(training, config, data, found, error,
                        train_seconds=time.perf_counter() - started)
    if error is None:
        evaluate_best(training, config, data, loaded, result)
        if keep_weights:
            atomic_torch_save(training.best["model"], run_dir / "best.pt")
            result["weights_sha256"] = state_digest(training.best["model"])
    atomic_write_text(run_dir / "result.json", seal_json(result, indent=2))
    checkpoint.unlink(missing_ok=True)
    return result


def prepare_run(config: TrainConfig, data: StudyData, loaded: dict, run: Run,
                plan: ModelPlan, pretrained: Pretrained | None) -> Training:
    """Seed ``run`` and build what it trains: the model on the device, the optimiser
    and its schedule, the sampler's and the augmentations' random streams. The order
    is part of a run's numbers: the model and the augmentations draw their weights
    from the seeded global stream."""
    seed_everything(run.seed)
    stats = data.input_stats()
    model, plan = build_model(run.model, variant=run.variant, plan=plan,
                              num_classes=data.num_classes, img_size=data.img_size,
                              input_stats=stats, pretrained=pretrained)
    channels_last = config.channels_last_for(model)
    model.to(config.device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda") if config.amp_dtype == torch.float16 else None
    epochs, per_epoch = schedule(config, loaded)
    optimizer, scheduler = optimizer_for(model, config.optimizer, config.lr,
                                         config.weight_decay, epochs * per_epoch)
    generator = torch.Generator().manual_seed(run.seed)
    # own stream (sampler seeds are < 2**32): every variant of a seed sees the same batches
    augment_rng = torch.Generator().manual_seed(run.seed + 2**32)
    augment = augmentation(config, run.variant, augment_rng, stats)
    return Training(run=run, model=model, plan=plan,
                    init=pretrained.init if pretrained is not None else SCRATCH,
                    optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                    generator=generator, augment_rng=augment_rng, augment=augment,
                    epochs=epochs, per_epoch=per_epoch,
                    engine=dict(device=config.device, amp_dtype=config.amp_dtype,
                                channels_last=channels_last))


def resume_run(training: Training, found: Found, path: Path) -> None:
    """Restore the checkpoint ``found`` holds (verified, from ``path``), if any: every
    state, the history, the best weights so far and the epochs done."""
    if found.checkpoint is None:
        return
    state, found.checkpoint = found.checkpoint, None  # held once, not twice
    restore_checkpoint(state, path, **training.states())
    training.history, training.best, training.done = (state["history"], state["best"],
                                                      state["epoch"])


def train_rounds(training: Training, config: TrainConfig, loaded: dict, digest: str,
                 checkpoint: Path, *, progress: bool, log: bool = False,
                 on_checkpoint: Callable[[tuple | None], None]) -> str | None:
    """Train the epochs left, each validated, the best kept, then checkpointed (and
    logged with ``log`` where no bar is drawn); the message of what failed the run (a
    non-finite loss, out of memory), else None."""
    val_loader = eval_loader(config, loaded["val"])
    run = training.run
    bar = progress_bar(total=training.epochs * training.per_epoch,
                       initial=training.done * training.per_epoch, unit="step",
                       desc=f"{run.model} {run.variant.name} s{run.seed}", leave=False,
                       show=progress)
    lines = log and bool(bar.disable)  # disable is None for a bar that draws
    try:
        for epoch in range(training.done, training.epochs):
            record = train_round(training, config, loaded, epoch, val_loader, bar)
            keep_best(training, record)
            atomic_torch_save(checkpoint_state(digest=digest, epoch=training.done,
                                               history=training.history, best=training.best,
                                               **training.states()), checkpoint)
            if lines:  # after the checkpoint: a logged round is one a rerun keeps
                log_line(eval_line(run.key, record, training, config))
            on_checkpoint((run.key, training.done, training.epochs))
    except NonFiniteLossError as exc:
        return str(exc)
    except (RuntimeError, MemoryError) as exc:
        if not out_of_memory(exc):
            raise  # a bug, not a run that failed: the study stops with its traceback
        return first_line(exc)  # this run does not fit; the others may
    finally:
        bar.close()
    return None


def train_round(training: Training, config: TrainConfig, loaded: dict, epoch: int,
                val_loader, bar) -> dict:
    """Train epoch ``epoch`` (from 0) on fresh batches, validate; its history record."""
    # the bar's postfix says "epoch" only where a round is a pass over the data
    label = {"epoch": "epoch", "evaluation": "eval"}[config.round_name]
    where = {label: f"{epoch + 1}/{training.epochs}"}
    t0 = time.perf_counter()
    batches = loader(config, loaded["train"], epoch_batches(
        config, training.generator, training.per_epoch, loaded["train_parts"]))
    train = train_one_epoch(training.model, batches, training.optimizer,
                            scheduler=training.scheduler, scaler=training.scaler,
                            augment=training.augment,
                            start_step=epoch * training.per_epoch,
                            on_step=lambda s: (bar.update(1), bar.set_postfix(
                                **where, loss=f"{s['loss']:.3f}")), **training.engine)
    train_seconds = time.perf_counter() - t0
    val = evaluate(training.model, val_loader, **training.engine)
    return {"epoch": epoch + 1, "step": (epoch + 1) * training.per_epoch,
            "train_loss": train["loss"], "train_top1": train["top1"],
            "val_loss": val["loss"], "val_top1": val["top1"],
            "lr": training.optimizer.param_groups[0]["lr"],
            "images_per_second": train["images"] / max(train_seconds, 1e-9),
            "seconds": time.perf_counter() - t0}


def keep_best(training: Training, record: dict) -> None:
    """Add an epoch's ``record`` to the history; its weights become the best when its
    validation top-1 is the highest so far (the earliest on ties)."""
    training.history.append(record)
    training.done = record["epoch"]
    if training.best is None or record["val_top1"] > training.best["val_top1"]:
        training.best = {"epoch": record["epoch"], "val_top1": record["val_top1"],
                         "val_loss": record["val_loss"],
                         "model": {k: v.detach().to("cpu", copy=True)
                                   for k, v in training.model.state_dict().items()}}


def run_record(training: Training, config: TrainConfig, data: StudyData, found: Found,
               error: str | None, *, train_seconds: float) -> dict:
    """The result of a trained (or failed) run, before its test metrics."""
    run, amp_dtype = training.run, config.amp_dtype
    return {"model": run.model, "variant": run.variant.name,
            "kernel_size": run.variant.kernel_size, "seed": run.seed,
            "num_classes": data.num_classes, "img_size": data.img_size,
            "group": run.group, "init": training.init.to_dict(), "counts": data.counts(),
            "skipped": {n: len(b) for n, b in data.skipped.items()},
            "status": "ok" if error is None else "error", "error": error,
            "settings_hash": found.digest, "settings": found.settings,
            "plan": training.plan.to_dict(), "device": str(config.device),
            "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
            "channels_last": training.engine["channels_last"], "history": training.history,
            "train_seconds": train_seconds, "metrics": {}}


def evaluate_best(training: Training, config: TrainConfig, data: StudyData, loaded: dict,
              result: dict) -> None:
    """Load the selected weights and test them on the source test split and every
    target, into ``result``."""
    best = training.best
    training.model.load_state_dict(best["model"])
    result.update(best_epoch=best["epoch"], val_top1=best["val_top1"],
                  val_loss=best["val_loss"])
    t0 = time.perf_counter()
    for name, dataset in loaded["eval"].items():
        metrics = evaluate(training.model, eval_loader(config, dataset), **training.engine)
        result["metrics"][name] = {
            "role": "source" if name in data.sources else "target",
            "generated": loaded["generated"][name], "top1": metrics["top1"],
            "loss": metrics["loss"], "n": metrics["n"]}
    result["eval_seconds"] = time.perf_counter() - t0
