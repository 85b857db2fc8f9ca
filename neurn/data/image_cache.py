"""Decode every image of a folder domain once: find the bad files, optionally keep the
pixels.

* :func:`check_images` decodes each file (threads: PIL releases the GIL while it
  decodes and resizes) and returns the files that fail, with PIL's reason. A header
  check alone misses truncated JPEGs, which is the common way a copied dataset breaks.
  The answer is stored in the cache folder under a *fingerprint* of the domain (its
  resolved path and every file's name, size and modification time), so the next study
  on the same files only stats them.
* :func:`cached_images` does the same pass while writing the decoded ``size x size``
  uint8 pixels into one ``.npy`` file, read back as a memmap: repeated runs then read
  memory-speed batches instead of decoding. The file is written to a temp name and
  renamed; beside it, a JSON record holds the fingerprint, the shape and the file's
  SHA-256, and the memmap is used only when all three match (a damaged file is
  rebuilt). Rows of bad files are left zero; the caller leaves them out.

Both live under ``<cache_dir>/folders`` (``$NEURN_CACHE_DIR``, ``~/.cache/neurn``).
"""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

from archalign._io import atomic_path, atomic_write_text, file_sha256

from ._cache import PathLike, default_cache_dir
from .folder import BadImageError, FolderDomain, decode

__all__ = ["cached_images", "check_images", "decoded_images", "fingerprint", "fits_in_memory"]

# Bump when decode() changes its pixels, so old memmaps are not reused.
DECODE_VERSION = 1
_CHECK_SIZE = 16  # decoding at a small size still reads every byte of the file


def fingerprint(domain: FolderDomain) -> str:
    """A digest of the domain's resolved path and its files' names, sizes and mtimes."""
    h = hashlib.sha256(str(domain.root.resolve()).encode())
    for name in domain.files:
        st = os.stat(domain.root / name)
        h.update(f"\0{name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def _folder(cache_dir: Optional[PathLike]) -> Path:
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "folders"


def _threads(threads: Optional[int]) -> int:
    if threads:
        return int(threads)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS, Windows


def _decode_all(domain: FolderDomain, size: int, threads: Optional[int],
                write: Optional[Callable[[int, np.ndarray], None]] = None) -> Dict[str, str]:
    def one(i: int):
        try:
            pixels = decode(domain.path(i), size)
        except BadImageError as exc:
            return domain.files[i], str(exc).split(": ", 1)[1]
        if write is not None:
            write(i, pixels)
        return None

    with ThreadPoolExecutor(_threads(threads)) as pool:
        failures = [f for f in pool.map(one, range(len(domain))) if f is not None]
    return dict(sorted(failures))


def _read_json(path: Path) -> Optional[dict]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or damaged: recomputed
    return record if isinstance(record, dict) else None


def _valid_bad(record: Optional[dict], key: str, domain: FolderDomain) -> Optional[Dict[str, str]]:
    if record is None or record.get("fingerprint") != key:
        return None
    bad = record.get("bad")
    known = set(domain.files)
    if not isinstance(bad, dict) or not all(isinstance(k, str) and k in known and
                                            isinstance(v, str) for k, v in bad.items()):
        return None
    return bad


def check_images(domain: FolderDomain, *, cache_dir: Optional[PathLike] = None,
                 threads: Optional[int] = None, key: Optional[str] = None) -> Dict[str, str]:
    """``{relative path: reason}`` for every file of ``domain`` that cannot be decoded
    (``key``: its :func:`fingerprint`, when the caller has it already)."""
    key = key or fingerprint(domain)
    path = _folder(cache_dir) / f"check-{key}.json"
    bad = _valid_bad(_read_json(path), key, domain)
    if bad is None:
        bad = _decode_all(domain, _CHECK_SIZE, threads)
        atomic_write_text(path, json.dumps({"fingerprint": key, "root": str(domain.root),
                                            "bad": bad}))
    return bad


def decoded_images(domain: FolderDomain, size: int, *, threads: Optional[int] = None):
    """``(uint8 array (N, 3, size, size) in memory, {relative path: reason} of bad
    files)``: one decoding pass that finds the bad files as it goes (their rows stay 0)."""
    out = np.zeros((len(domain), 3, size, size), dtype=np.uint8)
    return out, _decode_all(domain, size, threads, out.__setitem__)


def available_memory() -> Optional[int]:
    """Bytes the machine can still give without swapping (``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows
        return None


def fits_in_memory(nbytes: int, *, share: float = 0.5) -> bool:
    """Whether ``nbytes`` of decoded images fit in ``share`` of the available memory
    (half by default: training needs the rest); True when the OS does not say."""
    available = available_memory()
    return available is None or nbytes <= share * available


def cached_images(domain: FolderDomain, size: int, *, cache_dir: Optional[PathLike] = None,
                  threads: Optional[int] = None, key: Optional[str] = None):
    """``(memmap uint8 (N, 3, size, size), {relative path: reason} of bad files)``."""
    key = key or fingerprint(domain)
    name = hashlib.sha256(f"{key}-{size}-{DECODE_VERSION}".encode()).hexdigest()[:24]
    folder = _folder(cache_dir)
    data, meta = folder / f"images-{name}.npy", folder / f"images-{name}.json"
    shape = [len(domain), 3, size, size]
    record = _read_json(meta)
    bad = _valid_bad(record, key, domain)
    if (bad is not None and record.get("shape") == shape and data.is_file()
            and record.get("sha256") == file_sha256(data)):
        return np.load(data, mmap_mode="r"), bad
    with atomic_path(data) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=tuple(shape))
        bad = _decode_all(domain, size, threads, out.__setitem__)
        out.flush()
        del out  # unmapped before the rename
    atomic_write_text(meta, json.dumps({"fingerprint": key, "root": str(domain.root),
                                        "shape": shape, "decode_version": DECODE_VERSION,
                                        "sha256": file_sha256(data), "bad": bad}))
    return np.load(data, mmap_mode="r"), bad
