"""Decode every image of a folder domain once: find the bad files, optionally keep the
pixels.

* :func:`check_images` decodes each file (threads: PIL releases the GIL while it
  decodes and resizes) and returns the files that fail, with PIL's reason. A header
  check alone misses truncated JPEGs, which is the common way a copied dataset breaks.
  The answer is stored in the cache folder under a *fingerprint* of the domain (every
  file's name and the SHA-256 of its bytes), so the next study on the same files only
  reads them. Content, not modification times: files rewritten with their times kept
  (``cp -p``, ``rsync -t``, ``tar``) are new files to the cache. Hashing a 15 KB JPEG
  takes 20 us here against 200-650 us to decode it (16 to 224 px).
* :func:`cached_images` does the same pass while writing the decoded ``size x size``
  uint8 pixels into one ``.npy`` file, read back as a memmap: repeated runs then read
  memory-speed batches instead of decoding. The file is written to a temp name and
  renamed; beside it, a JSON record holds the fingerprint, the shape and the file's
  SHA-256, and the memmap is used only when all three match (a damaged file is
  rebuilt). Its space is reserved before anything is decoded and rows are written with
  ``pwrite``, never through a memory map, so a full disk is one ``OSError`` naming the
  file (a sparse map would die of SIGBUS) and no temp file is left. Rows of bad files
  are zero; the caller leaves them out.
* A class none of whose images can be decoded is refused (``ValueError``): skipping the
  bad files would train on no example of it.

Both live under ``<cache_dir>/folders`` (``$NEURN_CACHE_DIR``, ``~/.cache/neurn``).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np

from archalign.utils.errors import DataError
from archalign.utils.io import atomic_path, atomic_write_text, file_sha256

from neurn.data._cache import PathLike, default_cache_dir
from neurn.data.folder import BadImageError, FolderDomain, decode, path_text

__all__ = ["cached_images", "check_images", "decoded_images", "fingerprint", "fits_in_memory"]

# Bump when decode() changes its pixels, so old memmaps are not reused.
DECODE_VERSION = 2
_CHECK_SIZE = 16  # decoding at a small size still reads every byte of the file
_HASH_CHUNK = 256  # files per hashing task: one future per file costs more than a hash


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def fingerprint(domain: FolderDomain, *, threads: int | None = None) -> str:
    """A digest of the domain's files: each one's name and the SHA-256 of its bytes.

    Parameters
    ----------
    domain : FolderDomain
        The listed domain; its folder's path is left out, so the same files elsewhere
        share the key.
    threads : int, optional
        Threads that read and hash (hashlib releases the GIL); default: the CPUs.

    Returns
    -------
    str
        24 hex digits.
    """
    def chunk(names: Sequence[str]) -> list[bytes]:
        return [_file_digest(domain.root / name) for name in names]

    chunks = [domain.files[i:i + _HASH_CHUNK] for i in range(0, len(domain), _HASH_CHUNK)]
    h = hashlib.sha256()
    with ThreadPoolExecutor(_threads(threads)) as pool:
        for names, digests in zip(chunks, pool.map(chunk, chunks)):
            for name, digest in zip(names, digests):
                # os.fsencode: a name whose bytes are not UTF-8 is hashed as its bytes
                h.update(os.fsencode(name) + b"\0" + digest)
    return h.hexdigest()[:24]


def _folder(cache_dir: PathLike | None) -> Path:
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "folders"


def _threads(threads: int | None) -> int:
    if threads:
        return int(threads)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS, Windows


def _decode_all(domain: FolderDomain, size: int, threads: int | None,
                write: Callable[[int, np.ndarray], None] | None = None) -> dict[str, str]:
    def one(i: int):
        try:
            pixels = decode(domain.path(i), size)
        except BadImageError as exc:
            return domain.files[i], exc.reason
        if write is not None:
            write(i, pixels)
        return None

    with ThreadPoolExecutor(_threads(threads)) as pool:
        failures = [f for f in pool.map(one, range(len(domain))) if f is not None]
    return dict(sorted(failures))


def _refuse_unreadable_classes(domain: FolderDomain, bad: dict[str, str]) -> dict[str, str]:
    """``bad``, once no class has every one of its files in it (``ValueError`` naming
    the first such class folder)."""
    if not bad:
        return bad
    files = np.asarray([f in bad for f in domain.files])
    unreadable = np.bincount(domain.labels[files], minlength=len(domain.classes))
    total = np.bincount(domain.labels, minlength=len(domain.classes))
    for index in np.flatnonzero(unreadable == total):
        name = domain.classes[index]
        first = next(f for f in bad if f.startswith(f"{name}/"))
        raise DataError(f"{path_text(domain.root / name)}: none of its {total[index]} "
                        f"image(s) can be decoded ({path_text(first.split('/', 1)[1])}: "
                        f"{bad[first]}), so no example of this class would train; replace "
                        f"them, or remove this class folder from every domain")
    return bad


def _read_json(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or damaged: recomputed
    return record if isinstance(record, dict) else None


def _valid_bad(record: dict | None, key: str, domain: FolderDomain) -> dict[str, str] | None:
    if record is None or record.get("fingerprint") != key:
        return None
    bad = record.get("bad")
    known = set(domain.files)
    if not isinstance(bad, dict) or not all(isinstance(k, str) and k in known and
                                            isinstance(v, str) for k, v in bad.items()):
        return None
    return bad


def check_images(domain: FolderDomain, *, cache_dir: PathLike | None = None,
                 threads: int | None = None, key: str | None = None) -> dict[str, str]:
    """``{relative path: reason}`` for every file of ``domain`` that cannot be decoded
    (``key``: its :func:`fingerprint`, when the caller has it already); ``ValueError``
    when every file of a class is among them."""
    key = key or fingerprint(domain, threads=threads)
    path = _folder(cache_dir) / f"check-{key}.json"
    bad = _valid_bad(_read_json(path), key, domain)
    if bad is None:
        bad = _decode_all(domain, _CHECK_SIZE, threads)
        atomic_write_text(path, json.dumps({"fingerprint": key, "root": str(domain.root),
                                            "bad": bad}))
    return _refuse_unreadable_classes(domain, bad)


def decoded_images(domain: FolderDomain, size: int, *, threads: int | None = None):
    """``(uint8 array (N, 3, size, size) in memory, {relative path: reason} of bad
    files)``: one decoding pass that finds the bad files as it goes (their rows stay 0);
    ``ValueError`` when every file of a class is bad."""
    out = np.zeros((len(domain), 3, size, size), dtype=np.uint8)
    return out, _refuse_unreadable_classes(domain, _decode_all(domain, size, threads,
                                                               out.__setitem__))


def available_memory() -> int | None:
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


_SEEK_LOCK = threading.Lock()  # where os.pwrite is missing (Windows): seek + write


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    with _SEEK_LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = _pwrite(fd, view, offset)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, offset = view[written:], offset + written


def _reserve(fd: int, offset: int, nbytes: int) -> None:
    """Allocate ``nbytes`` from ``offset`` now, so that a full disk fails here."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, offset, nbytes)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
    zeros = bytes(min(nbytes, 1 << 22))  # no fallocate here (macOS, some file systems)
    for start in range(0, nbytes, max(len(zeros), 1)):
        _pwrite_all(fd, zeros[:nbytes - start], offset + start)


def _write_images(tmp: str, shape: list[int], fill: Callable) -> dict[str, str]:
    """Write the uint8 ``.npy`` of ``shape`` at ``tmp``: header, space reserved, then
    the rows ``fill(write)`` decodes, each written with ``pwrite``; returns ``fill``'s
    result. A full disk is an ``OSError`` saying how much room the file needs."""
    header = {"descr": np.dtype(np.uint8).str, "fortran_order": False,
              "shape": tuple(shape)}
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
    row, nbytes = int(np.prod(shape[1:])), int(np.prod(shape))
    fd = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        try:
            _reserve(fd, offset, nbytes)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OSError(exc.errno, f"{exc.strerror or os.strerror(exc.errno)}: the "
                              f"decoded images need {nbytes / 1e6:.1f} MB (--cache-dir or "
                              f"$NEURN_CACHE_DIR puts the cache elsewhere)") from None
            raise
        return fill(lambda i, pixels: _pwrite_all(fd, np.ascontiguousarray(pixels),
                                                  offset + i * row))
    finally:
        os.close(fd)


def cached_images(domain: FolderDomain, size: int, *, cache_dir: PathLike | None = None,
                  threads: int | None = None, key: str | None = None):
    """``(memmap uint8 (N, 3, size, size), {relative path: reason} of bad files)``;
    an ``OSError`` naming the cache file when its disk has no room for it (no temp file
    left behind), a ``ValueError`` when every file of a class is bad."""
    key = key or fingerprint(domain, threads=threads)
    name = hashlib.sha256(f"{key}-{size}-{DECODE_VERSION}".encode()).hexdigest()[:24]
    folder = _folder(cache_dir)
    data, meta = folder / f"images-{name}.npy", folder / f"images-{name}.json"
    shape = [len(domain), 3, size, size]
    record = _read_json(meta)
    bad = _valid_bad(record, key, domain)
    if (bad is not None and record.get("shape") == shape and data.is_file()
            and record.get("sha256") == file_sha256(data)):
        return np.load(data, mmap_mode="r"), _refuse_unreadable_classes(domain, bad)
    with atomic_path(data) as tmp:
        bad = _write_images(tmp, shape, lambda write: _decode_all(domain, size, threads,
                                                                  write))
    atomic_write_text(meta, json.dumps({"fingerprint": key, "root": str(domain.root),
                                        "shape": shape, "decode_version": DECODE_VERSION,
                                        "sha256": file_sha256(data), "bad": bad}))
    return np.load(data, mmap_mode="r"), _refuse_unreadable_classes(domain, bad)
