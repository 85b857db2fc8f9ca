"""One training epoch and one evaluation pass, with explicit keyword arguments.

timm's ``train_one_epoch`` / ``validate`` habits without the argparse namespace: each
function takes what it needs and returns an ordered dict of metrics.

* Batches come as ``(uint8 images (N, 3, H, W), int64 labels)``; they are moved to the
  device (``non_blocking`` from pinned memory) and turned into float [0, 1] there, so
  the host-to-device copy is 4x smaller than float32.
* CUDA: ``torch.autocast`` in bfloat16 where the GPU supports it (no loss scaling
  needed), else float16 with a ``GradScaler``; channels_last input when the model is
  convolutional. CPU: float32, no autocast.
* ``augment`` (``train_one_epoch`` only, e.g. :class:`~neurn.fronts.RandConv`) maps each
  float [0, 1] training batch before the forward pass and outside autocast, so it runs
  in float32; ``evaluate`` has no such argument: validation and test images are clean.
* Every step checks the loss: a NaN or inf raises :class:`NonFiniteLossError` (the
  study records it and stops that run) before the optimizer step can spread it into
  the weights.
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NonFiniteLossError", "amp_dtype_for", "backward_step", "evaluate", "to_device",
           "train_one_epoch"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; ``step`` and ``loss`` say where."""

    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"non-finite training loss {loss} at step {step}; the run was "
                         f"stopped (try a lower learning rate)")
        self.step = step
        self.loss = loss


def amp_dtype_for(device: torch.device) -> torch.dtype | None:
    """The autocast dtype used on ``device`` (None: no mixed precision)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def to_device(images: torch.Tensor, labels: torch.Tensor, device: torch.device,
              channels_last: bool = False):
    """Move a uint8 batch to ``device`` and scale it to float [0, 1] there."""
    images = images.to(device, non_blocking=True)
    labels = labels.to(device, non_blocking=True)
    images = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def backward_step(loss, optimizer, scaler=None) -> None:
    """Zero the gradients, back-propagate and step, through the GradScaler when
    there is one (float16 autocast)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def train_one_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, *,
                    device, scheduler=None, amp_dtype: torch.dtype | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    channels_last: bool = False, loss_fn: Callable = F.cross_entropy,
                    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    start_step: int = 0, on_step: Callable[[dict], None] | None = None
                    ) -> OrderedDict[str, float]:
    """Train over ``loader`` once; return ``loss`` (mean), ``top1`` (%), ``steps``, ``images``.

    ``scheduler`` (optional) is stepped after every optimizer step; ``scaler`` is only
    needed for float16 autocast; ``augment`` (optional) transforms each float [0, 1]
    batch before the model sees it. ``start_step`` numbers the steps in error messages;
    ``on_step`` gets ``{"step", "loss"}`` after each step (progress bars).
    """
    device = torch.device(device)
    model.train()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    images_seen = steps = 0
    for images, labels in loader:
        images, labels = to_device(images, labels, device, channels_last)
        if augment is not None:
            images = augment(images)
        with _autocast(device, amp_dtype):
            logits = model(images)
            loss = loss_fn(logits.float(), labels)
        value = loss.detach()
        if not torch.isfinite(value):  # one sync per step; cheap next to the step
            raise NonFiniteLossError(start_step + steps + 1, float(value))
        backward_step(loss, optimizer, scaler)
        if scheduler is not None:
            scheduler.step()
        steps += 1
        images_seen += labels.shape[0]
        total_loss += value.double() * labels.shape[0]
        correct += (logits.detach().argmax(1) == labels).sum()
        if on_step is not None:
            on_step({"step": start_step + steps, "loss": float(value)})
    n = max(images_seen, 1)
    return OrderedDict(loss=float(total_loss) / n, top1=100.0 * float(correct) / n,
                       steps=steps, images=images_seen)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, *, device,
             amp_dtype: torch.dtype | None = None, channels_last: bool = False,
             loss_fn: Callable = F.cross_entropy) -> OrderedDict[str, float]:
    """Return ``loss`` (mean cross-entropy), ``top1`` (%) and ``n`` over ``loader``."""
    device = torch.device(device)
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    n = 0
    for images, labels in loader:
        images, labels = to_device(images, labels, device, channels_last)
        with _autocast(device, amp_dtype):
            logits = model(images).float()
        total_loss += loss_fn(logits, labels, reduction="sum").double()
        correct += (logits.argmax(1) == labels).sum()
        n += labels.shape[0]
    return OrderedDict(loss=float(total_loss) / max(n, 1),
                       top1=100.0 * float(correct) / max(n, 1), n=n)
