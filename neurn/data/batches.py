"""Datasets indexed by a whole batch at once: ``ds[index_tensor] -> (uint8 (B, 3, S, S),
int64 (B,))``.

The study hands a ``DataLoader`` one index tensor per batch (``sampler=batches,
batch_size=None``), so a batch costs one fancy index for data in memory
(:class:`ArrayBatches`: digits, or the decoded-image memmap of
:mod:`neurn.data.image_cache`) and one decode per file for streamed image folders
(:class:`FolderBatches`, which ``DataLoader`` workers run in parallel, a batch per
worker). Both return uint8, so the host-to-device copy is 4x smaller than float32,
and both hold no random state: which worker decodes a batch never changes it.
"""
from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from archalign.utils.errors import UsageError
from neurn.data.folder import decode

__all__ = ["ArrayBatches", "ConcatBatches", "FolderBatches"]


def _index(index) -> np.ndarray:
    return np.asarray(index, dtype=np.int64).reshape(-1)


class ArrayBatches(Dataset):
    """uint8 images (N, 3, S, S), a numpy array or a memmap, and int64 labels.

    ``rows`` picks the images this dataset holds (default: all), so a subset of a
    memmap stays on disk until a batch reads it.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray,
                 rows: np.ndarray | None = None) -> None:
        self.images = images
        self.rows = np.arange(len(images)) if rows is None else _index(rows)
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.rows) != len(self.labels):
            raise UsageError(f"{len(self.rows)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        picked = _index(index)
        return (torch.from_numpy(np.ascontiguousarray(self.images[self.rows[picked]])),
                torch.from_numpy(self.labels[picked]))

    def subset(self, index) -> ArrayBatches:
        picked = _index(index)
        return ArrayBatches(self.images, self.labels[picked], self.rows[picked])


class FolderBatches(Dataset):
    """Image files decoded on access to uint8 ``size x size`` (see
    :func:`neurn.data.folder.decode`)."""

    def __init__(self, root: Path, files: Sequence[str], labels: np.ndarray, size: int) -> None:
        if len(files) != len(labels):
            raise UsageError(f"{len(files)} files but {len(labels)} labels")
        self.root, self.files, self.size = Path(root), list(files), int(size)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        rows = _index(index)
        images = np.stack([decode(self.root / self.files[i], self.size) for i in rows])
        return torch.from_numpy(images), torch.from_numpy(self.labels[rows])

    def subset(self, index) -> FolderBatches:
        rows = _index(index)
        return FolderBatches(self.root, [self.files[i] for i in rows], self.labels[rows],
                             self.size)


class ConcatBatches(Dataset):
    """Batch-indexed datasets end to end (the training domains of a multi-source study):
    index ``i`` of part ``p`` is ``offsets[p] + i``; ``lengths`` gives each part's size."""

    def __init__(self, parts: Sequence[Dataset]) -> None:
        if not parts:
            raise UsageError("ConcatBatches needs at least one dataset")
        self.parts = list(parts)
        self.lengths = [len(p) for p in self.parts]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.labels = np.concatenate([np.asarray(p.labels, dtype=np.int64) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index) -> tuple[torch.Tensor, torch.Tensor]:
        rows = _index(index)
        if len(rows) == 0:  # the empty batch of the first part has the right shape
            return self.parts[0][rows]
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        images = None
        for p in np.unique(part):
            where = np.flatnonzero(part == p)
            got, _ = self.parts[p][rows[where] - self.offsets[p]]
            if images is None:
                images = torch.empty((len(rows), *got.shape[1:]), dtype=got.dtype)
            images[torch.from_numpy(where)] = got
        return images, torch.from_numpy(self.labels[rows])
