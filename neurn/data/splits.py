"""A seeded, stratified split of a source domain into train / val / test.

Per class, the images are shuffled with ``numpy.random.default_rng([seed, 11])`` and the
first ``round(n * val)`` go to val, the next ``round(n * test)`` to test, the rest to
train; each split is returned sorted. Every class is split on its own, so the class
balance of each split follows the domain's. A split that would be empty is an error
naming the fractions to change.
"""
from typing import Dict

import numpy as np

__all__ = ["DEFAULT_FRACTIONS", "check_fractions", "stratified_split"]

DEFAULT_FRACTIONS = {"val": 0.1, "test": 0.1}  # the rest trains


def check_fractions(val: float, test: float) -> None:
    """``ValueError`` unless both fractions lie in (0, 1) and leave some to train."""
    for label, value in (("val", val), ("test", test)):
        if not 0 < value < 1:
            raise ValueError(f"the {label} fraction must lie strictly between 0 and 1, "
                             f"got {value!r}")
    if val + test >= 1:
        raise ValueError(f"val + test fractions ({val:g} + {test:g}) leave nothing to "
                         f"train on; keep their sum below 1")


def stratified_split(labels: np.ndarray, *, val: float = DEFAULT_FRACTIONS["val"],
                     test: float = DEFAULT_FRACTIONS["test"], seed: int = 0,
                     name: str = "source") -> Dict[str, np.ndarray]:
    """``{"train", "val", "test"} -> sorted indices into labels``."""
    check_fractions(val, test)
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 11])
    parts = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val, n_test = int(round(len(members) * val)), int(round(len(members) * test))
        parts["val"].append(members[:n_val])
        parts["test"].append(members[n_val:n_val + n_test])
        parts["train"].append(members[n_val + n_test:])
    split = {k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in parts.items()}
    empty = [k for k, v in split.items() if len(v) == 0]
    if empty:
        raise ValueError(f"{name}: {len(labels)} images give an empty {' and '.join(empty)} "
                         f"split with fractions val={val:g}, test={test:g}; add images or "
                         f"raise those fractions")
    return split
