"""A seeded, stratified split of a source domain into train / val / test.

Per class, the images are shuffled with ``numpy.random.default_rng([seed, 11])`` and the
first ``round(n * val)`` go to val, the next ``round(n * test)`` to test, the rest to
train; each split is returned sorted. Every class is split on its own, so the class
balance of each split follows the domain's. A split that would be empty is an error
naming the fractions to change.

:func:`holdout_split` is DomainBed's split of a training domain (``--holdout-fraction``,
0.2): train and val only, the val part selecting the checkpoint ("training-domain
validation"). Its stream is seeded by the domain's name too, so a domain keeps one
holdout in every leave-one-domain-out group it trains in.
"""
from __future__ import annotations

import zlib

import numpy as np

from archalign.utils.errors import UsageError

__all__ = ["DEFAULT_FRACTIONS", "DEFAULT_HOLDOUT", "check_fractions", "check_holdout",
           "holdout_split", "stratified_split"]

DEFAULT_FRACTIONS = {"val": 0.1, "test": 0.1}  # the rest trains
DEFAULT_HOLDOUT = 0.2  # DomainBed's holdout_fraction


def check_fractions(val: float, test: float) -> None:
    """``ValueError`` unless both fractions lie in (0, 1) and leave some to train."""
    for label, value in (("val", val), ("test", test)):
        if not 0 < value < 1:
            raise UsageError(f"the {label} fraction must lie strictly between 0 and 1, "
                             f"got {value!r}")
    if val + test >= 1:
        raise UsageError(f"val + test fractions ({val:g} + {test:g}) leave nothing to "
                         f"train on; keep their sum below 1")


def check_holdout(fraction: float) -> None:
    """``ValueError`` unless the holdout fraction lies in (0, 1)."""
    if not 0 < fraction < 1:
        raise UsageError(f"the holdout fraction must lie strictly between 0 and 1, got "
                         f"{fraction!r}")


def _split(labels, fractions: dict[str, float], rng, name: str) -> dict[str, np.ndarray]:
    """Per class, shuffle, then cut ``round(n * f)`` for each named fraction in order;
    the rest is ``train``."""
    labels = np.asarray(labels)
    parts = {"train": [], **{k: [] for k in fractions}}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for key, fraction in fractions.items():
            n = int(round(len(members) * fraction))
            parts[key].append(members[start:start + n])
            start += n
        parts["train"].append(members[start:])
    split = {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}
    empty = [k for k, v in split.items() if len(v) == 0]
    if empty:
        shown = ", ".join(f"{k}={v:g}" for k, v in fractions.items())
        raise UsageError(f"{name}: {len(labels)} images give an empty {' and '.join(empty)} "
                         f"split with fractions {shown}; add images or change those "
                         f"fractions")
    return split


def stratified_split(labels: np.ndarray, *, val: float = DEFAULT_FRACTIONS["val"],
                     test: float = DEFAULT_FRACTIONS["test"], seed: int = 0,
                     name: str = "source") -> dict[str, np.ndarray]:
    """``{"train", "val", "test"} -> sorted indices into labels``."""
    check_fractions(val, test)
    return _split(labels, {"val": val, "test": test}, np.random.default_rng([seed, 11]), name)


def holdout_split(labels: np.ndarray, *, fraction: float = DEFAULT_HOLDOUT, seed: int = 0,
                  name: str) -> dict[str, np.ndarray]:
    """``{"train", "val"} -> sorted indices into labels``: ``fraction`` of each class of
    the domain ``name`` held out for validation."""
    check_holdout(fraction)
    rng = np.random.default_rng([seed, 17, zlib.crc32(name.encode())])
    return _split(labels, {"val": fraction}, rng, name)
