"""``Standardize``: ``(x - mean) / std`` with fixed constants; the constants of each front end.

A front end's map is standardised with constants measured once on training images,
never with batch statistics, so a sample's output still does not depend on its
batch-mates. :data:`FRONT_STATS` holds the constants the study uses.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from archalign.utils.errors import UsageError
from neurn.data import DIGITS_MEAN, DIGITS_STD

__all__ = ["FRONT_STATS", "Standardize"]

#: The mean / std of what each front end hands the backbone (for "pixels", the image
#: itself), over the 4,000 MNIST source-train digits, data seed 0: one value for every
#: channel, NeuRN's from its k = 3 map. tests/neurn/test_neurn_data.py recomputes them.
FRONT_STATS = {"pixels": (DIGITS_MEAN[0], DIGITS_STD[0]), "neurn": (0.1792, 0.2971),
               "sobel": (0.1380, 0.2453)}

Stat = float | Sequence[float]


def _values(name: str, value: Stat) -> tuple[float, ...]:
    values = tuple(torch.as_tensor(value, dtype=torch.float64).flatten().tolist())
    if not values:
        raise UsageError(f"Standardize {name} must be a number or one number per channel, "
                         f"got {value!r}")
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"Standardize {name} must be finite, got {value!r}")
    return values


def _show(values: tuple[float, ...]) -> str:
    return f"{values[0]:g}" if len(values) == 1 else f"({', '.join(f'{v:g}' for v in values)})"


class Standardize(nn.Module):
    """``(x - mean) / std`` with fixed ``mean`` and ``std``: each a number, or one number
    per channel of an (N, C, H, W) batch.

    The constants are non-persistent float32 buffers of shape (1, C, 1, 1):
    ``.to(device)`` moves them, and a model's ``state_dict`` does not change when one is
    added. They are cast to the input's dtype, so the output keeps it.
    """

    def __init__(self, mean: Stat, std: Stat) -> None:
        super().__init__()
        means, stds = _values("mean", mean), _values("std", std)
        if not all(s > 0 for s in stds):
            raise UsageError(f"Standardize std must be > 0 (it divides), got {std!r}")
        if len(means) > 1 and len(stds) > 1 and len(means) != len(stds):
            raise UsageError(f"Standardize mean and std have {len(means)} and {len(stds)} "
                             f"channels; give one number or the same channel count for both")
        self._shown = (means, stds)  # for extra_repr, which must not read meta buffers
        for name, values in (("mean", means), ("std", stds)):
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32)
                                 .view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = max(self.mean.shape[1], self.std.shape[1])
        # broadcasting would silently turn a 1-channel batch into a C-channel one
        if channels > 1 and (x.dim() != 4 or x.shape[1] != channels):
            raise UsageError(f"Standardize has {channels} channels and expects an (N, "
                             f"{channels}, H, W) batch, got shape {list(x.shape)}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extra_repr(self) -> str:
        means, stds = self._shown
        return f"mean={_show(means)}, std={_show(stds)}"
