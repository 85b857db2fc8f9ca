"""Atomic file writes: a temp file in the target's directory, then os.replace.

Readers never see a half-written file, and an interrupted write (or a full disk)
leaves the previous version in place. The file gets the mode a plain
``open(path, "w")`` would give (0666 less the umask), not mkstemp's private 0600:
traces, matrices, figures, checkpoints and caches are meant to be shared. Every
writer of both packages goes through :func:`atomic_path`.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator

from archalign.utils.errors import DataError, UsageError

__all__ = ["DIGEST_MEMBER", "atomic_path", "atomic_write_bytes", "atomic_write_text",
           "atomic_savefig", "arrays_digest", "create_text", "file_sha256", "json_digest",
           "read_sealed_json", "seal_json", "state_digest", "unseal_json"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temp path beside ``path`` (same suffix, so writers that read the format from
    it still work) for the caller to write; renamed onto ``path`` when the block ends,
    removed when it raises."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    name = os.path.basename(path)
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{name}.",
                                   suffix=os.path.splitext(name)[1])
    except OSError as exc:
        raise _about(exc, path) from None
    try:
        if hasattr(os, "fchmod"):  # POSIX; Windows has no group / other bits to give
            os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename in (tmp, None):
            raise _about(exc, path) from None
        raise


def _about(exc: OSError, path: str) -> OSError:
    """The same error, about the user's ``path`` rather than a temp file or a parent."""
    return type(exc)(exc.errno, exc.strerror or str(exc), path)


def _umask() -> int:
    # The only portable way to read the umask is to set it and put it back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def create_text(path: str | os.PathLike, text: str) -> bool:
    """Write ``path`` whole if it does not exist yet; False (nothing written) if it does.

    The text goes to a temp file beside it, which is then hard-linked to ``path``: a
    link, unlike a rename, fails when the name exists, so of several processes creating
    one file exactly one succeeds, and no reader ever sees it half-written."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".tmp-{os.path.basename(path)}.")
    except OSError as exc:
        raise _about(exc, path) from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise _about(exc, path) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> None:
    """``fig.savefig(path, **kwargs)`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def arrays_digest(arrays) -> str:
    """SHA-256 over named arrays (name, dtype, shape and bytes, in name order): the
    digest ``.npz`` files carry beside their arrays, so that a read can be checked."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


DIGEST_MEMBER = "sha256"
"""The member that carries a sealed JSON file's digest (:func:`seal_json`), and a
checkpoint's (:func:`state_digest`)."""


def json_digest(value) -> str:
    """SHA-256 of ``value``'s canonical JSON (sorted keys, no spaces): what a sealed
    file's digest covers. Canonical, so the digest checks the values, not the layout:
    a re-indented file still verifies, a changed digit does not."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def seal_json(record: dict, **dumps_kwargs) -> str:
    """``record`` as JSON text with a last member ``"sha256"``, the :func:`json_digest` of
    the record as a reader will parse it (tuples as lists, ``default``'s conversions
    applied), so that :func:`unseal_json` can tell the file is the one written.
    ``dumps_kwargs`` go to ``json.dumps`` (``indent``, ``default``, ...)."""
    import json

    plain = json.loads(json.dumps(record, **dumps_kwargs))
    if not isinstance(plain, dict) or DIGEST_MEMBER in plain:
        raise UsageError(f"only a dict without a {DIGEST_MEMBER!r} member can be sealed")
    plain[DIGEST_MEMBER] = json_digest(plain)
    return json.dumps(plain, **{k: v for k, v in dumps_kwargs.items() if k != "default"})


def unseal_json(text: str) -> dict:
    """The record :func:`seal_json` wrote, its digest member removed. ``ValueError`` when
    the text does not parse, carries no digest (an earlier version wrote it, or the
    member itself was damaged) or does not match it."""
    import json

    record = json.loads(text)
    if not isinstance(record, dict) or not isinstance(record.get(DIGEST_MEMBER), str):
        raise DataError("no digest: written by an earlier version, or damaged")
    if record.pop(DIGEST_MEMBER) != json_digest(record):
        raise DataError("its values do not match its digest: damaged or altered")
    return record


def read_sealed_json(path: str | os.PathLike) -> dict:
    """:func:`unseal_json` of the file at ``path`` (UTF-8)."""
    with open(path, encoding="utf-8") as f:
        return unseal_json(f.read())


def state_digest(state) -> str:
    """SHA-256 over a nested state of dicts, lists, tuples, torch tensors, numpy arrays
    and plain values (numbers, strings, None): the digest a checkpoint carries beside
    its tensors. Tensors count by dtype, shape and bytes, whatever their device or memory
    layout; dict keys in sorted order; a list and a tuple alike (a file may hold either)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()

    def feed(value) -> None:
        if isinstance(value, dict):
            h.update(b"{%d;" % len(value))
            for key in sorted(value, key=repr):
                feed(key)
                feed(value[key])
        elif isinstance(value, (list, tuple)):
            h.update(b"[%d;" % len(value))
            for item in value:
                feed(item)
        elif hasattr(value, "detach"):  # a torch tensor
            import torch

            t = value.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, np.ndarray):
            a = np.ascontiguousarray(value)
            h.update(f"A{a.dtype.str}{a.shape};".encode())
            h.update(a.tobytes())
        else:
            h.update(f"{type(value).__name__}:{value!r};".encode())

    feed(state)
    return h.hexdigest()
