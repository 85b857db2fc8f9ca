"""A study's settings: its arguments checked before anything is built, the runs of its grid,
and the settings dict of each run, whose hash decides whether a run folder may be resumed.

Every input of a run is in its settings, so a finished run is trusted only under the same
hash. Digit studies at the defaults keep the keys of the first release, so their
settings hashes (and finished runs) stay valid.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import torch

from archalign.utils.errors import UsageError
from neurn.models import ModelPlan, Variant
from neurn.models.pretrained import Init
from neurn.study.config import TrainConfig
from neurn.study.domain_data import DIGITS_SIZE, StudyData
from neurn.study.torch_settings import default_threads

__all__ = ["PRETRAINED_LR", "PRETRAINED_WEIGHT_DECAY", "PathLike", "Run", "SCRATCH_LR",
           "SCRATCH_WEIGHT_DECAY", "SETTINGS_VERSION", "STREAM_WORKERS", "check_budget",
           "check_optimisation", "check_out_dir", "check_seeds", "check_shard", "check_workers",
           "load_models", "refuse_duplicates", "resolve_device", "run_settings",
           "settings_digest", "shared_settings"]

PathLike = str | os.PathLike
SETTINGS_VERSION = 1
STREAM_WORKERS = 4  # default DataLoader workers when images are decoded from files
# optimiser defaults: from scratch, the digit studies' recipe; pretrained, DomainBed's ERM
SCRATCH_LR, SCRATCH_WEIGHT_DECAY = 1e-3, 0.05
PRETRAINED_LR, PRETRAINED_WEIGHT_DECAY = 5e-5, 0.0


def load_models(models) -> list[str]:
    """Model names from a ``shortlist.json`` path, a ``Shortlist`` or a list of names."""
    from archalign import Shortlist

    if isinstance(models, Shortlist):
        return list(models.names)
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    names: list[str] = []
    for item in models:
        text = str(item)
        if text.endswith(".json") or (os.path.sep in text and Path(text).exists()):
            names.extend(Shortlist.load(text).names)
        else:
            names.append(text)
    if not names:
        raise UsageError("no models given: pass a shortlist.json or timm model names")
    return list(dict.fromkeys(names))


def _safe(text: str) -> str:
    # "+" joins held-out domains ("art+photo"): kept, so two groups never share a folder
    return "".join(c if c.isalnum() or c in "._-+" else "-" for c in text)


@dataclass(frozen=True)
class Run:
    """One (model, variant, seed[, held-out group]) of the grid; ``key`` names its folder
    under ``runs/``. ``group`` names the held-out domains of a leave-one-domain-out
    split (None: the study has one split)."""

    model: str
    variant: Variant
    seed: int
    group: str | None = None

    @property
    def key(self) -> str:
        key = f"{self.model}__{_safe(self.variant.name)}__seed{self.seed}"
        return key if self.group is None else f"{key}__test-{_safe(self.group)}"


# ---------------------------------------------------------------------- checks
def refuse_duplicates(specs: Sequence[str], variants: list[Variant]) -> None:
    """Two spellings of one variant (``neurn``, ``neurn:k=3``) would train one model twice."""
    seen: dict[tuple, str] = {}
    for spec, variant in zip(specs, variants):
        if variant.effective in seen:
            raise UsageError(f"variants {seen[variant.effective]!r} and {spec!r} are one "
                             f"variant (the same options once the defaults are filled in); "
                             f"give it once")
        seen[variant.effective] = spec


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """The seeds as distinct integers in 0 .. 2**32 - 1."""
    checked = [int(s) for s in seeds]
    if not checked or len(set(checked)) != len(checked):
        raise UsageError(f"seeds must be distinct integers, got {list(seeds)}")
    if not all(0 <= s < 2**32 for s in checked):
        # a run's augmentation stream is seeded with seed + 2**32: no sampler seed
        raise UsageError(f"seeds must lie in 0 .. 2**32 - 1, got {checked}")
    return checked


def check_budget(epochs: int | None, steps: int | None, evals: int,
                 batch_size: int) -> int | None:
    """Check the budget; return ``epochs`` (10 when neither it nor ``steps`` is given)."""
    if (epochs is None) == (steps is None):
        if epochs is None and steps is None:
            epochs = 10
        else:
            raise UsageError("give epochs or steps, not both")
    for label, value in (("epochs", epochs), ("steps", steps), ("evals", evals),
                         ("batch_size", batch_size)):
        if value is not None and (int(value) != value or value < 1):
            raise UsageError(f"{label} must be a positive integer, got {value!r}")
    return epochs


def check_optimisation(lr: float | None, weight_decay: float | None, threads: int | None,
                       optimizer: str, *, pretrained: bool = False) -> tuple[float, float]:
    """``(lr, weight_decay)`` checked, a None given its default: from scratch the recipe
    the digit studies were run with, pretrained DomainBed's ERM (5e-5, no weight
    decay); ``threads`` and ``optimizer`` checked too."""
    if lr is None:
        lr = PRETRAINED_LR if pretrained else SCRATCH_LR
    if weight_decay is None:
        weight_decay = PRETRAINED_WEIGHT_DECAY if pretrained else SCRATCH_WEIGHT_DECAY
    if not (lr > 0 and math.isfinite(lr)):
        raise UsageError(f"lr must be a positive number, got {lr!r}")
    if not (weight_decay >= 0 and math.isfinite(weight_decay)):
        raise UsageError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if threads is not None and (int(threads) != threads or threads < 1):
        raise UsageError(f"threads must be a positive integer, got {threads!r}")
    if optimizer not in ("adamw", "sgd"):
        raise UsageError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    return float(lr), float(weight_decay)


def check_shard(shard) -> tuple:
    """``(i, n)`` with ``0 <= i < n``; ``ValueError`` naming the form otherwise."""
    try:
        index, count = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise UsageError(f"shard must be (i, n), e.g. (0, 4), got {shard!r}") from None
    if not 0 <= index < count:
        raise UsageError(f"shard {index}/{count}: need 0 <= i < n (the i-th of n slices, "
                         f"counted from 0)")
    return index, count


def check_workers(num_workers: int | None, *, streams: bool = False) -> int:
    """The DataLoader workers: ``num_workers`` checked, or by default ``STREAM_WORKERS``
    (at most the CPUs) when images ``streams`` from files, else 0 (batches of data in
    memory are one index operation; workers would only add inter-process copies)."""
    if num_workers is not None and (int(num_workers) != num_workers or num_workers < 0):
        raise UsageError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    if num_workers is not None:
        return int(num_workers)
    return min(STREAM_WORKERS, default_threads()) if streams else 0


def resolve_device(device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec = str(device)
    try:
        device = torch.device(spec)
    except RuntimeError:  # torch's own message lists two dozen device types
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' asked for, but torch sees no CUDA GPU; use "
                         "device='cpu' or 'auto'")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"device {str(device)!r} asked for, but torch sees "
                         f"{torch.cuda.device_count()} CUDA GPU(s), cuda:0 and up")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("device 'mps' asked for, but torch sees no Apple GPU; use "
                         "device='cpu' or 'auto'")
    return device


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``out_dir`` that cannot become a folder to write in, before any work."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"out_dir {out_dir} is a file; give a folder (--out)")
    # Path("a/b").exists() is False when "a" is a file: the first existing ancestor decides
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"out_dir {out_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"out_dir {out_dir}: cannot write in {existing} (read-only or "
                         f"no permission)")


# ---------------------------------------------------------------------- hashed settings
def shared_settings(config: TrainConfig, data: StudyData, *, device: bool = False) -> dict:
    """The fields a run's settings and ``study.json`` both hold, in the first release's
    order: ``data``'s domains, the budget and optimiser of ``config``, ``data``'s limits
    and seed; with ``device``, the device after the optimiser (``study.json`` names it,
    a run's settings do not)."""
    training = config.hashed()
    if device:
        training["device"] = str(config.device)
    return {"source": data.source, "targets": data.targets, **training,
            "data_dir": str(data.data_dir) if data.data_dir else None,
            "eval_limit": data.eval_limit, "train_limit": data.train_limit,
            "data_seed": data.data_seed}


def run_settings(run: Run, config: TrainConfig, data: StudyData, *, plan: ModelPlan,
                 init: Init) -> dict:
    """Everything ``run`` depends on: trained as ``config`` says on ``data`` (its
    split), its model built to ``plan`` from ``init``; recorded in its result and hashed
    (:func:`settings_digest`)."""
    settings = {"version": SETTINGS_VERSION, "model": run.model, "variant": run.variant.name,
                "seed": run.seed, **shared_settings(config, data), "plan": plan.to_dict()}
    # digit studies at the defaults keep the keys of the first release, so their
    # settings hashes (and finished runs) stay valid
    if data.folders or data.img_size != DIGITS_SIZE or config.augment:
        settings.update(data=data.fingerprint(), augment=config.augment)
    if run.group is not None:
        settings["group"] = run.group
    if len(data.sources) > 1 or data.holdout_mode:
        settings["sources"] = data.sources
    if init.kind != "scratch":
        settings["init"] = init.to_dict()
    if run.variant.revision is not None:
        settings["variant_revision"] = run.variant.revision
    return settings


def settings_digest(settings: dict) -> str:
    """The settings hash a run's files carry (16 hex digits)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
