"""Source augmentation for natural images: random resized crop + horizontal flip.

DomainBed's training transform for its image datasets (``RandomResizedCrop(224,
scale=(0.7, 1.0))`` and ``RandomHorizontalFlip``; its colour jitter and random greyscale
are left out, as they overlap the variants under study), applied to a whole float
[0, 1] batch of already decoded ``S x S`` images at once:

* per image, an area fraction ``s ~ U(scale)`` and a log aspect ratio
  ``log r ~ U(log 3/4, log 4/3)`` give a crop of ``sqrt(s r) x sqrt(s / r)`` of the
  side (clipped to the image), placed uniformly where it fits, mirrored with
  probability 1/2, and resampled back to ``S x S`` by one bilinear ``grid_sample``;
* every draw comes from a CPU ``torch.Generator`` that the run owns and checkpoints,
  so a run repeats and resumes bit-identically on any device.

The study turns it on for image-folder sources (``--augment``) and off for the digits,
whose orientation carries the label (a mirrored 2 is not a 2). In eval mode the module
is the identity; evaluation never applies it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archalign.utils.errors import UsageError

__all__ = ["CropFlip"]


class CropFlip(nn.Module):
    """Random resized crop (area fraction in ``scale``, aspect ratio in ``ratio``) and
    horizontal flip (probability 1/2 when ``flip``).

    Shape: (N, C, H, W) -> the same; no parameters.
    """

    def __init__(self, scale: tuple[float, float] = (0.7, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        low, high = float(scale[0]), float(scale[1])
        if not 0 < low <= high <= 1:
            raise UsageError(f"scale must satisfy 0 < low <= high <= 1, got {scale!r}")
        if not 0 < ratio[0] <= ratio[1]:
            raise UsageError(f"ratio must satisfy 0 < low <= high, got {ratio!r}")
        self.scale, self.flip = (low, high), bool(flip)
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.generator = generator if generator is not None else torch.Generator()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        n = x.shape[0]
        u = torch.rand(n, 5, generator=self.generator, dtype=torch.float64)
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 0]
        log_ratio = self.log_ratio[0] + (self.log_ratio[1] - self.log_ratio[0]) * u[:, 1]
        width = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0)
        height = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
        # centre in [-1 + w, 1 - w] (normalised coordinates span [-1, 1])
        cx = (1 - width) * (2 * u[:, 2] - 1)
        cy = (1 - height) * (2 * u[:, 3] - 1)
        sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if self.flip else torch.ones(n)
        theta = torch.zeros(n, 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 2] = width * sign, cx
        theta[:, 1, 1], theta[:, 1, 2] = height, cy
        theta = theta.to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)

    def extra_repr(self) -> str:
        ratio = tuple(round(math.exp(r), 4) for r in self.log_ratio)
        return f"scale={self.scale}, ratio={ratio}, flip={self.flip}"
