"""RandConv: random-convolution data augmentation for training only.

Paper: Xu, Liu, Yang, Raffel, Niethammer, ICLR 2021, "Robust and Generalizable Visual
Representation Learning via Random Convolutions" (arXiv 2007.13003); code:
github.com/wildphoton/RandConv (``RandConvModule``), whose digits settings we follow.

For each training batch, with probability ``p`` (default 0.5, the paper's "RC_img" with
identity probability 0.5):

* a kernel size k is drawn uniformly from ``kernel_sizes`` (default 1, 3, 5, 7, the
  paper's digits setting; k = 1 is a random colour mixing);
* one C -> C kernel for the whole batch, weights ~ N(0, 1 / (C k^2)) (the code's
  ``kaiming_normal``: gain 1, fan-in C k^2), no bias, zero padding k // 2 (same H x W);
* it convolves the *whitened* image ``z = (x - mean) / std`` (source statistics), as the
  paper's code convolves its normalised input; zero padding is thus padding with the
  mean pixel. The result goes back to pixel units (``* std + mean``) so that the model's
  own normalisation hands the backbone the convolved ``z``;
* ``mix=True``: ``alpha * conv(z) + (1 - alpha) * z`` with alpha ~ U(0, 1) drawn per batch
  (the paper's "RC_mix", which mixes on every batch: ``randconv:mix=1,p=1``);
* ``clamp=True``: clip to the image range [0, 1] (the code's ``clamp_output``; off in the
  paper's digits experiments and off by default here). Without it values may leave
  [0, 1], as in the paper.

Not implemented: the paper's consistency loss (KL between the predictions on several
augmented copies) and its validation with random convolutions; model selection here
uses clean source validation like every other variant.

In eval mode the module is the identity, and :func:`neurn.study.engine.evaluate` never applies
it, so validation and test images are clean. Every draw comes from ``generator``, a
CPU ``torch.Generator`` that the run owns and checkpoints, so a run repeats and resumes
bit-identically on any device; the kernel is then copied to the batch's device.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archalign.utils.errors import UsageError
from neurn.data import DIGITS_MEAN, DIGITS_STD

__all__ = ["BatchAugmentation", "RandConv"]


GATES = ("batch", "image")


class BatchAugmentation(nn.Module):
    """What the random-convolution augmentations share: the ``p`` gate, every draw from
    ``generator`` (the gate's first), and the identity in eval mode. ``mean`` / ``std``
    whiten the image for ``augment``. Subclasses set ``example`` (their variant, for
    error messages) and define ``augment``.

    ``gate="batch"``: with probability ``p`` the whole training batch is replaced by
    ``augment(batch)`` (RandConv's reference code). ``gate="image"``: each image is, with
    probability ``p``, and the chosen ones go through one ``augment`` call together
    (one draw of the transform per batch still). Per image, every batch holds about the
    same mixture of clean and augmented images, so BatchNorm's running statistics, which
    follow the last few batches, match what evaluation on clean images meets; per
    batch, they swing between the two kinds whenever the transform changes the pixel
    statistics a lot (see :mod:`neurn.fronts.prorandconv`)."""

    example = "randconv:p=0.5"

    def __init__(self, p: float, mean: tuple[float, ...], std: tuple[float, ...],
                 generator: torch.Generator | None, gate: str = "batch") -> None:
        super().__init__()
        if gate not in GATES:
            raise UsageError(f"{type(self).__name__}'s gate is 'batch' (p chooses whole "
                             f"batches) or 'image' (p chooses images), got {gate!r}; e.g. "
                             f"{self.example.split(':')[0]}:gate=image")
        self.gate = gate
        if not 0.0 <= p <= 1.0:
            raise UsageError(f"{type(self).__name__}'s p is the probability that a batch is "
                             f"augmented and must lie in [0, 1], got {p!r}; e.g. "
                             f"{self.example}")
        self.p = float(p)
        self.generator = generator if generator is not None else torch.Generator()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise UsageError(f"{type(self).__name__} expects an (N, {self.mean.shape[1]}, H, "
                             f"W) batch, got shape {list(x.shape)}")
        if self.gate == "batch":
            if torch.rand((), generator=self.generator).item() >= self.p:
                return x
            return self.augment(x)
        chosen = (torch.rand(x.shape[0], generator=self.generator) < self.p).nonzero()[:, 0]
        if len(chosen) == 0:
            return x
        if len(chosen) == x.shape[0]:
            return self.augment(x)
        out = x.clone()
        chosen = chosen.to(x.device)
        out[chosen] = self.augment(x[chosen])
        return out

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class RandConv(BatchAugmentation):
    """Random-convolution augmentation of a float [0, 1] batch (identity in eval mode).

    Parameters
    ----------
    kernel_sizes
        odd positive sizes to draw k from (default 1, 3, 5, 7).
    p
        probability that a training batch (``gate="batch"``, the default, as RandConv's
        reference code does) or image (``gate="image"``) is convolved (default 0.5).
    mix
        mix the convolved and the original whitened image with alpha ~ U(0, 1).
    clamp
        clip the output to [0, 1].
    mean, std
        per-channel statistics that whiten the image before the convolution.
    generator
        source of every random draw (seed it; default: a fresh CPU generator).
    gate
        ``"batch"`` or ``"image"``: what ``p`` chooses (:class:`BatchAugmentation`).

    Shape: (N, len(mean), H, W) -> the same; no parameters.
    """

    def __init__(self, kernel_sizes: Sequence[int] = (1, 3, 5, 7), p: float = 0.5,
                 mix: bool = False, clamp: bool = False,
                 mean: tuple[float, ...] = DIGITS_MEAN, std: tuple[float, ...] = DIGITS_STD,
                 generator: torch.Generator | None = None, gate: str = "batch") -> None:
        super().__init__(p, mean, std, generator, gate)
        sizes = tuple(kernel_sizes)
        if not sizes or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0
                                and k % 2 for k in sizes):
            raise UsageError(f"RandConv kernel sizes must be odd positive integers (the "
                             f"kernel is centred on the pixel), got {list(sizes)}; e.g. "
                             f"randconv:k=1/3/5/7")
        self.kernel_sizes = sizes
        self.mix = bool(mix)
        self.clamp = bool(clamp)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        g = self.generator
        k = self.kernel_sizes[int(torch.randint(len(self.kernel_sizes), (), generator=g))]
        c = x.shape[1]
        weight = torch.randn(c, c, k, k, generator=g) / math.sqrt(c * k * k)
        mean, std = self.mean.to(x), self.std.to(x)
        z = (x - mean) / std
        out = F.conv2d(z, weight.to(x), padding=k // 2)
        if self.mix:
            alpha = float(torch.rand((), generator=g))
            out = alpha * out + (1.0 - alpha) * z
        out = out * std + mean
        return out.clamp(0.0, 1.0) if self.clamp else out

    def extra_repr(self) -> str:
        return (f"kernel_sizes={self.kernel_sizes}, p={self.p:g}, mix={self.mix}, "
                f"clamp={self.clamp}")
