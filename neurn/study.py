"""``Study``: the grid of (model, variant, seed) training runs of the NeuRN experiment.

Protocol (DomainBed's training-domain validation):

* train on the source's ``train`` split only; after every epoch evaluate on the
  source's ``val`` split and keep the best checkpoint (highest val top-1, the earliest
  on ties); target data is never seen before the final evaluation;
* evaluate that checkpoint on the source ``test`` split and on every target domain.

Implementation choices:

* Every run is seeded (torch, numpy, python) from its seed: weights, batch order and
  dropout follow it. On CPU the run is deterministic for a given thread count
  (``num_workers=0``; CPU kernels reduce in a fixed order): the same seed gives the
  same numbers, which the tests check. ``deterministic=True`` also turns on
  ``torch.use_deterministic_algorithms`` (warn-only); it is off by default because
  it made a MnasNet CPU step 3x slower here, and on CUDA it needs
  ``CUBLAS_WORKSPACE_CONFIG`` and costs more. The data split is the same
  for every run (``data_seed``, default 0), so seeds vary training only and the
  baseline / NeuRN comparison is paired.
* Budget: ``epochs`` passes over the source train split, or ``steps`` optimizer steps
  split into ``evals`` equal "epochs" (a validation point after each; the steps are
  rounded up to a multiple of ``evals``). An epoch's
  batches come from fresh permutations of a seeded ``torch.Generator``.
* Optimiser: AdamW (or SGD with Nesterov momentum), linear warm-up over the first 5%
  of steps then cosine decay to 0, per step.
* Checkpoints: ``runs/<run>/checkpoint.pt`` after every epoch (model, optimizer,
  scheduler, torch / sampler / augmentation RNG states, history, best-so-far weights); plain
  tensors and containers only, read back with ``torch.load(weights_only=True)``.
  Files are written to a temp file and ``os.replace``\\ d. A killed study resumes from
  the last epoch of the unfinished run; finished runs (``result.json``) are skipped.
  Each run records a hash of its settings; resuming with other settings is refused,
  and before anything is written, so the refusal changes nothing. Every file read back
  is verified first: a result.json, checkpoint.pt or best.pt that does not parse or
  load is reported (``DamagedRunWarning``) and its run retrained.
* A NaN / inf loss (or a runtime error such as CUDA out of memory) stops that run
  with ``status="error"`` and the message in its result; the others go on, and the
  failed run is listed under the table. Rerunning does not retry it (delete its folder
  to do so). A write that fails (a full disk) is an ``OSError`` naming the file: it
  stops the study instead of failing the run, so the run is retried when rerun.
* CUDA: bfloat16/float16 autocast, channels_last for conv nets, pinned-memory loading,
  ``cudnn.benchmark``. CPU: ``torch.set_num_threads`` (default: the CPUs this process
  may use). Global torch settings are restored when ``run()`` returns.
"""
import hashlib
import json
import math
import os
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from archalign._io import atomic_path, atomic_write_text

from .augment import CropFlip
from .engine import NonFiniteLossError, amp_dtype_for, evaluate, train_one_epoch
from .models import (Variant, build_augmentation, build_model, check_variant, parse_variant,
                     plan_model, uses_convolutions)
from .study_data import FULLSCALE_TARGETS, OFFLINE_TARGETS, StudyData, batch_loader

__all__ = ["DamagedRunWarning", "Study", "StudyInterrupted", "StudyResults", "load_models",
           "OFFLINE_TARGETS", "FULLSCALE_TARGETS"]

PathLike = Union[str, os.PathLike]
_SETTINGS_VERSION = 1
STREAM_WORKERS = 4  # default DataLoader workers when images are decoded from files


def load_models(models) -> List[str]:
    """Model names from a ``shortlist.json`` path, a ``Shortlist`` or a list of names."""
    from archalign import Shortlist

    if isinstance(models, Shortlist):
        return list(models.names)
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    names: List[str] = []
    for item in models:
        text = str(item)
        if text.endswith(".json") or (os.path.sep in text and Path(text).exists()):
            names.extend(Shortlist.load(text).names)
        else:
            names.append(text)
    if not names:
        raise ValueError("no models given: pass a shortlist.json or timm model names")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class _Run:
    model: str
    variant: Variant
    seed: int

    @property
    def key(self) -> str:
        safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in self.variant.name)
        return f"{self.model}__{safe}__seed{self.seed}"


@dataclass
class StudyResults:
    """What :meth:`Study.run` returns: the rows, the summary and where files went."""

    rows: List[dict]
    summary: List[dict]
    markdown: str
    runs: List[dict]
    out_dir: Path

    @property
    def errors(self) -> List[dict]:
        return [r for r in self.runs if r.get("status") != "ok"]


class Study:
    """Train ``models`` x ``variants`` x ``seeds`` on a source domain, test on targets.

    Args:
        models: a ``shortlist.json`` path (from ``archalign shortlist``), a
            ``Shortlist`` or timm / built-in (``convnet``) model names.
        source: source domain: ``mnist``, or an image folder (a path or ``folder:PATH``,
            DomainBed's ``<domain>/<class>/<image>``); trained on its ``train`` split,
            model selection on its ``val`` split.
        targets: target domains (default: the offline targets, or the paper's
            ``mnistm``, ``svhn``, ``usps`` with ``data_dir``); image folders when the
            source is one. See :mod:`neurn.study_data`.
        variants: ``"baseline"``, ``"neurn:k=5"``, ``"sobel"``, ``"randconv"``, ... (see
            :func:`neurn.models.parse_variant`).
        seeds: one run per seed.
        epochs / steps: budget, passes over the train split or optimizer steps
            (give one; ``evals`` validation points with ``steps``).
        batch_size, lr, weight_decay, optimizer (``"adamw"`` | ``"sgd"``): training.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        out_dir: where runs, tables and plots go; rerunning resumes.
        data_dir: folder of the real datasets (full scale); offline domains otherwise.
        cache_dir: offline domain cache (default ``$NEURN_CACHE_DIR``).
        eval_limit: evaluate on at most this many images per domain and split (a
            fixed subset shared by all runs); None = all.
        train_limit: train on at most this many source images (fixed subset).
        threads: CPU threads (default: every CPU this process may use).
        num_workers: DataLoader workers. Default: ``STREAM_WORKERS`` (at most the CPU
            count) when images stream from files, else 0: data in memory make a batch
            one index operation, and workers would only add inter-process copies.
            Workers only decode (no random state), so results do not depend on
            their number. On CUDA batches are pinned and copied ``non_blocking``.
        img_size: image side (default 32 for digits, 224 for image folders); models
            are built for it.
        split: ``{"val": f, "test": f}``, fractions of an image-folder source (0.1 each).
        skip_bad_images: leave out image files that cannot be decoded (counted in
            ``data.json`` and ``summary.md``) instead of stopping.
        cache_images: decode image folders once into a uint8 memmap in ``cache_dir``.
        augment: random resized crop + flip of source batches (:mod:`neurn.augment`);
            default on for image folders, off for digits.
        data_seed: seed of the offline data split and generated targets.
        progress: tqdm bars for runs and steps.
        keep_weights: keep ``best.pt`` (the selected weights) of each run.
        deterministic: also call ``torch.use_deterministic_algorithms(True,
            warn_only=True)`` during the study (slower; CPU runs repeat without it).
    """

    def __init__(self, models, *, source: str = "mnist", targets: Optional[Sequence[str]] = None,
                 variants: Sequence[str] = ("baseline", "neurn"), seeds: Sequence[int] = (0,),
                 epochs: Optional[int] = None, steps: Optional[int] = None, evals: int = 5,
                 batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.05,
                 optimizer: str = "adamw", device: str = "auto",
                 out_dir: PathLike = "neurn-study", data_dir: Optional[PathLike] = None,
                 cache_dir: Optional[PathLike] = None, eval_limit: Optional[int] = None,
                 train_limit: Optional[int] = None, threads: Optional[int] = None,
                 num_workers: Optional[int] = None, data_seed: int = 0, progress: bool = True,
                 keep_weights: bool = True, deterministic: bool = False,
                 img_size: Optional[int] = None, split: Optional[Dict[str, float]] = None,
                 skip_bad_images: bool = False, cache_images: bool = False,
                 augment: Optional[bool] = None) -> None:
        self.models = load_models(models)
        self.variants = [parse_variant(v) for v in variants]
        if not self.variants:
            raise ValueError("give at least one variant ('baseline', 'neurn')")
        _refuse_duplicates(variants, self.variants)
        self.seeds = [int(s) for s in seeds]
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct integers, got {list(seeds)}")
        if not all(0 <= s < 2**32 for s in self.seeds):
            # a run's augmentation stream is seeded with seed + 2**32: no sampler seed
            raise ValueError(f"seeds must lie in 0 .. 2**32 - 1, got {self.seeds}")
        if (epochs is None) == (steps is None):
            if epochs is None and steps is None:
                epochs = 10
            else:
                raise ValueError("give epochs or steps, not both")
        for label, value in (("epochs", epochs), ("steps", steps), ("evals", evals),
                             ("batch_size", batch_size)):
            if value is not None and (int(value) != value or value < 1):
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if not (weight_decay >= 0 and math.isfinite(weight_decay)):
            raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
        if threads is not None and (int(threads) != threads or threads < 1):
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        if optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
        self.epochs, self.steps, self.evals = epochs, steps, int(evals)
        self.batch_size, self.lr, self.weight_decay = int(batch_size), float(lr), float(weight_decay)
        self.optimizer = optimizer
        self.device = _resolve_device(device)
        self.out_dir = Path(out_dir)
        _check_out_dir(self.out_dir)
        self.data = StudyData(source, targets, data_dir=data_dir, cache_dir=cache_dir,
                              data_seed=data_seed, eval_limit=eval_limit,
                              train_limit=train_limit, img_size=img_size, split=split,
                              skip_bad_images=skip_bad_images, cache_images=cache_images,
                              threads=threads)
        self.source, self.targets = self.data.source, self.data.targets
        self.data_dir, self.cache_dir = self.data.data_dir, cache_dir
        self.eval_limit, self.train_limit = eval_limit, train_limit
        self.data_seed = self.data.data_seed
        self.augment = self.data.folders if augment is None else bool(augment)
        self.threads = threads
        if num_workers is not None and (int(num_workers) != num_workers or num_workers < 0):
            raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        self.num_workers = (int(num_workers) if num_workers is not None else
                            min(STREAM_WORKERS, default_threads()) if self.data.streams else 0)
        self.progress = progress
        self.keep_weights = keep_weights
        self.deterministic = bool(deterministic)
        # (run key, epoch, epochs) of the newest checkpoint, for the Ctrl-C message
        self._checkpointed: Optional[tuple] = None
        for variant in self.variants:  # e.g. neurn:k=99 on 32 px images
            check_variant(variant, self.data.img_size)
        # cheap (meta device) and fails fast on unknown names / unusable architectures
        self.plans = {name: plan_model(name, img_size=self.data.img_size,
                                       num_classes=self.data.num_classes)
                      for name in self.models}

    # ------------------------------------------------------------------ grid
    def grid(self) -> List[_Run]:
        return [_Run(m, v, s) for m in self.models for v in self.variants for s in self.seeds]

    def _settings(self, run: _Run) -> dict:
        return {"version": _SETTINGS_VERSION, "model": run.model, "variant": run.variant.name,
                "seed": run.seed, "source": self.source, "targets": self.targets,
                "epochs": self.epochs, "steps": self.steps, "evals": self.evals,
                "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "optimizer": self.optimizer,
                "data_dir": str(self.data_dir) if self.data_dir else None,
                "eval_limit": self.eval_limit, "train_limit": self.train_limit,
                "data_seed": self.data_seed, "plan": self.plans[run.model].to_dict(),
                **self._data_settings()}

    def _data_settings(self) -> dict:
        # digit studies at the defaults keep the keys of the first release, so their
        # settings hashes (and finished runs) stay valid
        if not self.data.folders and self.data.img_size == 32 and not self.augment:
            return {}
        return {"data": self.data.fingerprint(), "augment": self.augment}

    # ------------------------------------------------------------------ data
    def load_data(self) -> Dict[str, object]:
        """Load every split and domain now (missing or bad files fail before training)."""
        return self.data.load()

    def _loader(self, dataset, batches: List[torch.Tensor]):
        return batch_loader(dataset, batches, workers=self.num_workers,
                            pin_memory=self.device.type == "cuda")

    def _eval_loader(self, dataset):
        size = 2 * self.batch_size
        return self._loader(dataset, list(torch.arange(len(dataset)).split(size)))

    def _schedule(self):
        n_train = len(self.load_data()["train"])
        if self.steps is not None:
            epochs = min(self.evals, self.steps)
            per_epoch = math.ceil(self.steps / epochs)
        else:
            epochs, per_epoch = self.epochs, max(1, n_train // self.batch_size)
        return epochs, per_epoch

    def _epoch_batches(self, generator: torch.Generator, per_epoch: int) -> List[torch.Tensor]:
        n = len(self.load_data()["train"])
        need = per_epoch * self.batch_size
        parts, total = [], 0
        while total < need:
            parts.append(torch.randperm(n, generator=generator))
            total += n
        return list(torch.cat(parts)[:need].view(per_epoch, self.batch_size))

    # ------------------------------------------------------------------ running
    def run(self) -> StudyResults:
        """Run every unfinished (model, variant, seed), then write tables and plots.

        Every run folder already in ``out_dir`` is verified before the first write, so
        a refusal (a run of other settings) changes nothing on disk. Ctrl-C raises
        :class:`StudyInterrupted`, whose message says what was kept."""
        from .results import write_outputs

        self.load_data()
        grid = self.grid()
        found = {run.key: self._found(run) for run in grid}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out_dir / "study.json", json.dumps(self.describe(), indent=2))
        atomic_write_text(self.out_dir / "data.json", json.dumps(self.data.record(), indent=1))
        finished: List[dict] = []
        self._checkpointed = None
        with _TorchSettings(self.device, self.threads, self.deterministic):
            bar = _tqdm(grid, desc="runs", unit="run", disable=not self.progress)
            try:
                for run in bar:
                    bar.set_postfix_str(run.key)
                    finished.append(self.run_one(run, found.pop(run.key)))
            except KeyboardInterrupt:
                if finished:
                    write_outputs(finished, self.out_dir, plots=False,
                                  baseline=self._baseline_name(), echo=False)
                raise StudyInterrupted(self._kept(len(finished), len(grid))) from None
            finally:
                bar.close()
        return write_outputs(finished, self.out_dir, baseline=self._baseline_name(),
                             echo=self.progress)

    def _kept(self, finished: int, runs: int) -> str:
        text = f"{finished} of {runs} runs finished, kept in {self.out_dir / 'runs'}"
        if self._checkpointed is not None:
            key, epoch, epochs = self._checkpointed
            text += f"; {key} resumes after epoch {epoch} of {epochs}"
        return text + "; rerun the same command to resume"

    def _found(self, run: _Run) -> "_Found":
        """What ``runs/<run>`` holds, verified before it is trusted.

        A run made with other settings is refused (``ValueError``), and so is a folder
        where a file belongs. A result.json, checkpoint.pt or best.pt that does not
        parse or load is reported (:class:`DamagedRunWarning`) and the run retrained
        (from its checkpoint when only the result is damaged): every input of a run is
        in its settings, so retraining recomputes what was lost (the same numbers on
        CPU), where a refusal would leave the user deleting files by hand. A missing
        best.pt is no damage: the run was made with ``keep_weights=False``."""
        from .results import read_run

        run_dir = self.out_dir / "runs" / run.key
        settings = self._settings(run)
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        found = _Found(settings, digest)
        other = (f"{run_dir} holds a run made with other settings; use another out_dir "
                 f"(--out) or delete that folder")
        result = _verified(run_dir / "result.json", read_run)
        if result is not None:
            if result["settings_hash"] != digest:
                raise ValueError(other)
            weights = run_dir / "best.pt"
            if (result["status"] != "ok" or not self.keep_weights or not weights.exists()
                    or _verified(weights, _read_weights) is not None):
                found.result = result
                return found
        found.checkpoint = _verified(run_dir / "checkpoint.pt", _read_checkpoint)
        if found.checkpoint is not None and found.checkpoint["settings_hash"] != digest:
            raise ValueError(other)
        return found

    def _baseline_name(self) -> Optional[str]:
        names = [v.name for v in self.variants if v.kind == "baseline"]
        return names[0] if names else None

    def describe(self) -> dict:
        return {"models": self.models, "variants": [v.name for v in self.variants],
                "seeds": self.seeds, "source": self.source, "targets": self.targets,
                "epochs": self.epochs, "steps": self.steps, "evals": self.evals,
                "batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay,
                "optimizer": self.optimizer, "device": str(self.device),
                "data_dir": str(self.data_dir) if self.data_dir else None,
                "eval_limit": self.eval_limit, "train_limit": self.train_limit,
                "data_seed": self.data_seed, "data": self.data.describe(),
                "augment": self.augment, "workers": self.num_workers,
                "plans": {m: p.to_dict() for m, p in self.plans.items()},
                "versions": _versions()}

    def _augmentation(self, variant: Variant, generator: torch.Generator,
                      stats: Optional[dict]) -> Optional[nn.Module]:
        """The source crop + flip (when on) and the variant's own augmentation, both
        drawing from the run's checkpointed augmentation generator."""
        steps = [CropFlip(generator=generator)] if self.augment else []
        own = build_augmentation(variant, generator=generator,
                                 pixels=stats["pixels"] if stats else None)
        steps += [own] if own is not None else []
        if not steps:
            return None
        return steps[0] if len(steps) == 1 else nn.Sequential(*steps)

    def run_one(self, run: _Run, found: Optional["_Found"] = None) -> dict:
        """Train, select and evaluate one run (or return its finished result).
        ``found``: what :meth:`run` verified in the run's folder (verified here if None)."""
        data = self.load_data()
        found = found if found is not None else self._found(run)
        if found.result is not None:
            return found.result
        run_dir = self.out_dir / "runs" / run.key
        settings, digest = found.settings, found.digest
        result_path = run_dir / "result.json"
        run_dir.mkdir(parents=True, exist_ok=True)
        device = self.device
        _seed_everything(run.seed)
        stats = self.data.input_stats()
        model, plan = build_model(run.model, variant=run.variant, plan=self.plans[run.model],
                                  num_classes=self.data.num_classes,
                                  img_size=self.data.img_size, input_stats=stats)
        channels_last = device.type == "cuda" and uses_convolutions(model)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        amp_dtype = amp_dtype_for(device)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        epochs, per_epoch = self._schedule()
        optimizer, scheduler = _optimizer(model, self.optimizer, self.lr, self.weight_decay,
                                          epochs * per_epoch)
        generator = torch.Generator().manual_seed(run.seed)
        # own stream (sampler seeds are < 2**32): every variant of a seed sees the same batches
        augment_rng = torch.Generator().manual_seed(run.seed + 2**32)
        augment = self._augmentation(run.variant, augment_rng, stats)
        history: List[dict] = []
        best: Optional[dict] = None
        start_epoch = 0
        checkpoint_path = run_dir / "checkpoint.pt"
        if found.checkpoint is not None:
            state, found.checkpoint = found.checkpoint, None  # held once, not twice
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                if scaler is not None and "scaler" in state:
                    scaler.load_state_dict(state["scaler"])
                torch.set_rng_state(state["rng"]["torch"])
                if device.type == "cuda" and "cuda" in state["rng"]:
                    torch.cuda.set_rng_state(state["rng"]["cuda"], device)
                generator.set_state(state["rng"]["sampler"])
                if "augment" in state["rng"]:  # absent from checkpoints of older versions
                    augment_rng.set_state(state["rng"]["augment"])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                # the settings hash matched, so the file is damaged inside; the model is
                # half restored by now, so refuse rather than train on from it
                raise ValueError(f"{checkpoint_path} does not restore this run ("
                                 f"{_first_line(exc)}); delete it to retrain the run") from None
            history, best, start_epoch = state["history"], state["best"], state["epoch"]
        self._checkpointed = (run.key, start_epoch, epochs) if start_epoch else None
        kwargs = dict(device=device, amp_dtype=amp_dtype, channels_last=channels_last)
        val_loader = self._eval_loader(data["val"])
        bar = _tqdm(total=epochs * per_epoch, initial=start_epoch * per_epoch, unit="step",
                    desc=f"{run.model} {run.variant.name} s{run.seed}", leave=False,
                    disable=not self.progress)
        started = time.perf_counter()
        error = None
        try:
            for epoch in range(start_epoch, epochs):
                t0 = time.perf_counter()
                loader = self._loader(data["train"], self._epoch_batches(generator, per_epoch))
                train = train_one_epoch(model, loader, optimizer, scheduler=scheduler,
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
                rng = {"torch": torch.get_rng_state(), "sampler": generator.get_state(),
                       "augment": augment_rng.get_state()}
                if device.type == "cuda":
                    rng["cuda"] = torch.cuda.get_rng_state(device)
                state = {"settings_hash": digest, "epoch": epoch + 1,
                         "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": rng,
                         "history": history, "best": best}
                if scaler is not None:
                    state["scaler"] = scaler.state_dict()
                _atomic_torch_save(state, checkpoint_path)
                self._checkpointed = (run.key, epoch + 1, epochs)
        except NonFiniteLossError as exc:
            error = str(exc)
        except RuntimeError as exc:  # e.g. CUDA out of memory: record it, go on
            error = _first_line(exc)
        finally:
            bar.close()
        result = {"model": run.model, "variant": run.variant.name,
                  "kernel_size": run.variant.kernel_size, "seed": run.seed,
                  "num_classes": self.data.num_classes, "img_size": self.data.img_size,
                  "skipped": {n: len(b) for n, b in self.data.skipped.items()},
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
                metrics = evaluate(model, self._eval_loader(dataset), **kwargs)
                result["metrics"][name] = {
                    "role": "source" if name == self.source else "target",
                    "generated": data["generated"][name], "top1": metrics["top1"],
                    "loss": metrics["loss"], "n": metrics["n"]}
            result["eval_seconds"] = time.perf_counter() - t0
            if self.keep_weights:
                _atomic_torch_save(best["model"], run_dir / "best.pt")
        atomic_write_text(result_path, json.dumps(result, indent=2))
        if checkpoint_path.exists():
            checkpoint_path.unlink()
        return result


# ---------------------------------------------------------------------- helpers
def _resolve_device(device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = str(device)
    try:
        device = torch.device(spec)
    except RuntimeError:  # torch's own message lists two dozen device types
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA GPU; use "
                         "device='cpu' or 'auto'")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} asked for, but torch sees "
                         f"{torch.cuda.device_count()} CUDA GPU(s), cuda:0 and up")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' asked for, but torch sees no Apple GPU; use "
                         "device='cpu' or 'auto'")
    return device


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an ``out_dir`` that cannot become a folder to write in, before any work."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} is a file; give a folder (--out)")
    # Path("a/b").exists() is False when "a" is a file: the first existing ancestor decides
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"out_dir {out_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"out_dir {out_dir}: cannot write in {existing} (read-only or "
                         f"no permission)")


def _refuse_duplicates(specs: Sequence[str], variants: List[Variant]) -> None:
    """Two spellings of one variant (``neurn``, ``neurn:k=3``) would train one model twice."""
    seen: Dict[tuple, str] = {}
    for spec, variant in zip(specs, variants):
        if variant.effective in seen:
            raise ValueError(f"variants {seen[variant.effective]!r} and {spec!r} are one "
                             f"variant (the same options once the defaults are filled in); "
                             f"give it once")
        seen[variant.effective] = spec


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class _TorchSettings:
    """Set threads / determinism / cudnn.benchmark for a study, restore them after."""

    def __init__(self, device: torch.device, threads: Optional[int],
                 deterministic: bool = False) -> None:
        self.device, self.threads, self.deterministic = device, threads, deterministic

    def __enter__(self):
        self.saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                      torch.is_deterministic_algorithms_warn_only_enabled(),
                      torch.backends.cudnn.benchmark)
        torch.set_num_threads(self.threads or default_threads())
        if self.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return self

    def __exit__(self, *exc):
        threads, det, warn_only, bench = self.saved
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.benchmark = bench
        return False


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _optimizer(model, name: str, lr: float, weight_decay: float, total_steps: int):
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


def _atomic_torch_save(obj, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as exc:
        # torch's zip writer reports a full disk as a RuntimeError; as an OSError it
        # stops the study (naming the file) instead of being recorded as a failed run
        raise OSError(None, f"torch.save failed, is the disk full? ({_first_line(exc)})",
                      str(path)) from None


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


_CHECKPOINT_KEYS = ("settings_hash", "epoch", "model", "optimizer", "scheduler", "rng",
                    "history", "best")


def _read_checkpoint(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in _CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"not a checkpoint of a run: no {', '.join(missing)}")
    return state


def _read_weights(path: Path) -> dict:
    # mmap: the zip index at the end of the file is checked, the tensors are not read
    weights = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not (isinstance(weights, dict) and weights and
            all(isinstance(t, torch.Tensor) for t in weights.values())):
        raise ValueError("not a model's weights (a dict of tensors)")
    return weights


def _verified(path: Path, read) -> Optional[object]:
    """``read(path)``, or None when the file is missing or damaged (then warned). A
    folder in its place, or a file that cannot be opened (an ``OSError``), is refused."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder where the study keeps a file; move it away")
    if not path.exists():
        return None
    try:
        return read(path)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged JSON / zip / pickle fail in many ways
        warnings.warn(f"{path} is damaged ({_first_line(exc)}); retraining that run",
                      DamagedRunWarning, stacklevel=3)
        return None


@dataclass
class _Found:
    """A run's settings and what its folder holds, verified (see ``Study._found``):
    its finished result, or a checkpoint to resume from, or neither (train anew)."""

    settings: dict
    digest: str
    result: Optional[dict] = None
    checkpoint: Optional[dict] = None


class DamagedRunWarning(UserWarning):
    """A file of a study folder did not parse or load; the run is retrained."""


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during :meth:`Study.run`; the message says what was kept and how to resume."""


def _versions() -> dict:
    import timm

    return {"torch": torch.__version__, "timm": timm.__version__, "numpy": np.__version__}


def _tqdm(iterable: Optional[Iterable] = None, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, dynamic_ncols=True, **kwargs)

