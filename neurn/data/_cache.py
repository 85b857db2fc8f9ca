"""On-disk cache of built domains: one ``.npz`` per (domain, seed, recipe version).

* Location: ``$NEURN_CACHE_DIR`` if set, else ``~/.cache/neurn`` (``$XDG_CACHE_HOME``
  respected); every public loader also takes ``cache_dir=``.
* The file name carries a hash of everything that shapes the arrays (domain, seed,
  recipe version, versions of the packages the pixels come from), so a change in any
  of them builds a fresh entry instead of reading a stale one.
* Writes are atomic (temp file in the same folder, then ``os.replace``): a crashed
  build never leaves a half-written entry. Each entry carries the SHA-256 of its
  arrays; one that fails to load, lacks an array or does not match its digest is
  rebuilt. Plain arrays only: loaded with ``allow_pickle=False``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from collections.abc import Callable

import numpy as np

from archalign.utils.io import arrays_digest, atomic_path

__all__ = ["default_cache_dir", "cached_arrays"]

PathLike = str | os.PathLike


def default_cache_dir() -> Path:
    if os.environ.get("NEURN_CACHE_DIR"):
        return Path(os.environ["NEURN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neurn"


def cached_arrays(key: dict[str, object], build: Callable[[], dict[str, np.ndarray]],
                  cache_dir: PathLike | None = None) -> dict[str, np.ndarray]:
    """Arrays for ``key``: read from the cache, or built, saved, then returned."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"{key['domain']}-seed{key['seed']}-{digest}.npz"
    arrays = _load(path)
    if arrays is None:
        arrays = build()
        _save_atomic(path, arrays)
    return arrays


def _load(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception:  # noqa: BLE001 - zip / header damage raises many types: rebuild
        return None
    digest = arrays.pop("digest", None)
    if digest is None or str(digest) != arrays_digest(arrays):
        return None  # damaged, or from before digests: the caller rebuilds it
    return arrays if {"images", "labels", "origins"} <= arrays.keys() else None


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, digest=np.array(arrays_digest(arrays)))
