"""``DigitDomain``: one digit domain as a torch ``Dataset`` of (3 x 32 x 32 image, label).

Images are stored as uint8 (N, 3, 32, 32) and returned as float32 in [0, 1]; grey
digits are replicated to 3 channels. Input normalisation (mean / std) is the training
code's job; ``DIGITS_MEAN`` / ``DIGITS_STD`` are the source (MNIST train) statistics
for it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from archalign.utils.errors import UsageError

__all__ = ["DigitDomain", "DIGITS_MEAN", "DIGITS_STD", "IMAGE_SHAPE"]

#: Channels, height and width of every digit domain's images.
IMAGE_SHAPE = (3, 32, 32)
#: Per-channel pixel mean of the offline source's training split (seed 0);
#: tests/neurn/test_neurn_data.py checks it against the data.
DIGITS_MEAN = (0.1323, 0.1323, 0.1323)
#: Per-channel pixel std of the same split.
DIGITS_STD = (0.2904, 0.2904, 0.2904)


class DigitDomain(Dataset):
    """A digit domain: ``ds[i] -> (float32 tensor 3 x 32 x 32 in [0, 1], int label)``.

    Attributes
    ----------
    name
        registry name (generated domains end in ``-gen``).
    split
        ``"train"``, ``"val"`` or ``"test"``.
    source
        True for a training (source) domain, False for an unseen target.
    generated
        True when the images were synthesised by our code, never the real
        dataset of that name.
    images
        uint8 array (N, 3, 32, 32); labels: int64 array (N,) in 0..9.
    origins
        uint64 array (N,): for images made from a real digit, a hash of that
        digit's raw pixels (so disjointness from training images can be checked);
        0 for images rendered from fonts.
    """

    def __init__(self, name: str, split: str, images: np.ndarray, labels: np.ndarray,
                 origins: np.ndarray, *, source: bool, generated: bool,
                 description: str = "") -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise UsageError(f"{name}: images must be uint8 (N, 3, 32, 32), "
                             f"got {images.dtype} {images.shape}")
        if not len(images) == len(labels) == len(origins):
            raise UsageError(f"{name}: {len(images)} images, {len(labels)} labels and "
                             f"{len(origins)} origins; they must match")
        self.name = name
        self.split = split
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.origins = origins.astype(np.uint64, copy=False)
        self.source = source
        self.generated = generated
        self.description = description

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.images[index]).to(torch.float32).div_(255.0)
        return image, int(self.labels[index])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images (float32 N x 3 x 32 x 32 in [0, 1]) and labels, for fast loops."""
        return (torch.from_numpy(self.images).to(torch.float32).div_(255.0),
                torch.from_numpy(self.labels))

    def __repr__(self) -> str:
        kind = "source" if self.source else "target"
        made = ", generated" if self.generated else ""
        return f"DigitDomain({self.name!r}, split={self.split!r}, n={len(self)}, {kind}{made})"
