"""``TrainConfig``: how every run of a study trains, in one frozen record.

The budget, the optimiser, the device and its precision, the augmentation and the
threads / workers: the study checks its arguments (:mod:`.settings`) and builds one
:class:`TrainConfig`, which the training loop (:mod:`.train`) reads instead of the
study. ``study.json`` (``Study.describe``) and every run's settings take their training
fields from it (:meth:`TrainConfig.hashed`), so they are listed once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from neurn.models import uses_convolutions
from neurn.study.torch_settings import TorchSettings

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """How every run of a study trains.

    Parameters
    ----------
    epochs, steps, evals
        the budget: ``epochs`` passes over the train split, or ``steps`` optimizer
        steps in ``evals`` validation rounds (one of ``epochs`` / ``steps`` is None).
    batch_size
        images per training batch (evaluation batches are twice as large).
    lr, weight_decay, optimizer
        the optimiser (``"adamw"`` | ``"sgd"``) and its learning rate and weight decay.
    device
        where the runs train.
    augment
        random resized crop + flip of the source batches.
    num_workers
        DataLoader workers (they only decode, so results do not depend on them).
    threads
        CPU threads (None: every CPU this process may use).
    deterministic
        ``torch.use_deterministic_algorithms`` during the study.
    amp_dtype
        the autocast dtype (None: full precision).
    channels_last
        channels_last memory format for the models that convolve.
    """

    # the fields every run's settings hold, in the first release's order: the settings
    # hash of a finished run depends on them, so a field added here must not join them
    HASHED: ClassVar[tuple[str, ...]] = ("epochs", "steps", "evals", "batch_size", "lr",
                                         "weight_decay", "optimizer")

    epochs: int | None
    steps: int | None
    evals: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: str
    device: torch.device
    augment: bool = False
    num_workers: int = 0
    threads: int | None = None
    deterministic: bool = False
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def round_name(self) -> str:
        """What a validation round is called where a user reads it: ``"epoch"`` with a
        budget in epochs, ``"evaluation"`` with one in steps, where a round is a share of
        the steps, not a pass over the data."""
        return "epoch" if self.steps is None else "evaluation"

    def hashed(self) -> dict:
        """The budget and optimiser fields of a run's settings (and ``study.json``)."""
        return {name: getattr(self, name) for name in self.HASHED}

    @property
    def pin_memory(self) -> bool:
        """Batches are pinned (and copied ``non_blocking``) on CUDA."""
        return self.device.type == "cuda"

    def torch_settings(self) -> TorchSettings:
        """The threads and determinism to train under (a context manager)."""
        return TorchSettings(self.device, self.threads, self.deterministic)

    def channels_last_for(self, model: nn.Module) -> bool:
        """Whether ``model`` trains channels_last (on CUDA, when it convolves)."""
        return self.channels_last and uses_convolutions(model)
