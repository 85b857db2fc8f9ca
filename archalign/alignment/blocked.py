"""All-pairs scores in blocks: resumable on disk, and distributed with Dask.

The n x n matrix is cut into square blocks of ``block`` sequences; only blocks
on or above the diagonal are computed (the transpose is filled in), each by
the compiled rectangular ``pairwise``. Two independent options:

- ``out=DIR`` keeps the matrix on disk as a memory-mapped ``scores.npy`` plus
  ``blocks.json``, which lists every finished upper block with a SHA-256 of its
  values. A killed run started again computes only the missing blocks; a
  block whose bytes no longer match its checksum is computed again. Nothing
  else on disk is trusted: ``scores.npy`` is used only if its header and
  length are exactly those of the n x n float64 matrix (else it is made anew
  and every block recomputed), ``blocks.json`` only if it matches its own
  SHA-256 (else every block is recomputed), and the lower half is written
  again from the checked upper blocks at the end of every run. The directory
  also records what it is a matrix of (sequences, scoring, block size), so it
  cannot be resumed with different inputs by mistake.
- ``backend="dask"`` runs one task per block on a ``dask.distributed``
  cluster: the one at ``client`` (or a scheduler address), else a fresh
  ``LocalCluster``. The packed sequences are scattered once to every worker,
  not shipped with each task. A worker lost mid-run costs only its blocks,
  which Dask runs again (``retries``).

Results are identical to the in-memory ``pairwise`` for any block size,
backend and thread count.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_write_text
from archalign.alignment.core import as_tokens, check_scoring, pack_sequences, pairwise_threads

__all__ = ["blocked_pairwise", "plan_blocks"]

_STATE = "blocks.json"
_SCORES = "scores.npy"
DEFAULT_BLOCK = 256


def plan_blocks(n: int, block: int) -> list[tuple[int, int, int, int]]:
    """(row start, row end, column start, column end) of the upper-triangle blocks."""
    if block < 1:
        raise UsageError(f"block must be at least 1, got {block}")
    starts = range(0, n, block)
    return [(i, min(i + block, n), j, min(j + block, n))
            for i in starts for j in starts if j >= i]


def _block_scores(packed, scoring, box, n_jobs):
    """Scores of one block; runs wherever the block is computed (thread or Dask task)."""
    tokens, offsets = packed
    i0, i1, j0, j1 = box
    rows = [tokens[offsets[k]:offsets[k + 1]] for k in range(i0, i1)]
    if (i0, i1) == (j0, j1):
        return pairwise_threads(rows, scoring, n_jobs)
    cols = [tokens[offsets[k]:offsets[k + 1]] for k in range(j0, j1)]
    return pairwise_threads(rows, scoring, n_jobs, others=cols)


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


class _BlockStore:
    """The on-disk matrix and its record of finished upper blocks."""

    def __init__(self, directory, n: int, fingerprint: str):
        self.dir = Path(directory)
        self.state_path = self.dir / _STATE
        self.scores_path = self.dir / _SCORES
        self.fingerprint = fingerprint
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            state = self._load_state()
            if state is not None and state["fingerprint"] != fingerprint:
                raise UsageError(f"{self.dir} holds blocks of a different job (other "
                                 f"sequences, scoring or block size); use an empty "
                                 f"directory or delete it")
            # Blocks are trusted only in a matrix file that is intact around them.
            self.done = state["done"] if state and _is_matrix_file(self.scores_path, n) else {}
            _reserve_matrix_file(self.scores_path, n, new=not self.done)
            self.matrix = np.load(self.scores_path, mmap_mode="r+")
            self._save_state()
        except OSError as e:  # not a directory, read-only, a file where one goes, ...
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # it names the file; the command line adds what to do
            raise UsageError(f"cannot keep blocks in {self.dir}: {e.strerror or e} "
                             f"({e.filename or self.dir}); use a directory this process "
                             f"can write") from None

    def _load_state(self) -> dict | None:
        """``blocks.json`` if present and intact, else None (its blocks get recomputed)."""
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            body = {k: state[k] for k in ("fingerprint", "done")}
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None  # none yet, torn, garbled, or from before digests
        return body if state.get("sha256") == _state_digest(body) else None

    @staticmethod
    def key(box) -> str:
        return "{}:{}x{}:{}".format(*box)

    def is_done(self, box) -> bool:
        """Finished, and its bytes still match the recorded checksum."""
        digest = self.done.get(self.key(box))
        i0, i1, j0, j1 = box
        return digest is not None and digest == _digest(self.matrix[i0:i1, j0:j1])

    def write(self, box, values: np.ndarray) -> None:
        i0, i1, j0, j1 = box
        self.matrix[i0:i1, j0:j1] = values
        self.matrix.flush()
        # recorded only once the values are on disk: a kill in between recomputes it
        self.done[self.key(box)] = _digest(values)
        self._save_state()

    def mirror(self, boxes) -> None:
        """Check every upper block once more and write the lower half from it: the
        matrix returned is made only of checked bytes, whatever the file held before."""
        for box in boxes:
            i0, i1, j0, j1 = box
            values = np.array(self.matrix[i0:i1, j0:j1])
            if self.done.get(self.key(box)) != _digest(values):
                raise UsageError(f"{self.scores_path} changed while this run was using it "
                                 f"(block {self.key(box)}); run again to recompute it")
            self.matrix[j0:j1, i0:i1] = values.T
        self.matrix.flush()

    def _save_state(self) -> None:
        body = {"fingerprint": self.fingerprint, "done": self.done}
        atomic_write_text(self.state_path, json.dumps({**body, "sha256": _state_digest(body)}))


def _state_digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _is_matrix_file(path: Path, n: int) -> bool:
    """Whether ``path`` is an .npy of exactly one C-order n x n float64 matrix: header
    and length, checked before mapping it (numpy would pad a short file with zeros)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
            shape, fortran, dtype = read[version](f)
            data_start = f.tell()
        size = path.stat().st_size
    except (OSError, ValueError, KeyError, EOFError):
        return False
    return (shape == (n, n) and not fortran and dtype == np.float64
            and size == data_start + n * n * 8)


def _reserve_matrix_file(path: Path, n: int, *, new: bool) -> None:
    """Give every byte of the n x n float64 ``path`` its disk blocks before it is mapped;
    with ``new``, first write a fresh one (header, zeros), removed again if it cannot fit.

    A store into a mapped page that the file system has no room for is a SIGBUS, which
    kills the process with no message (and a sparse file gets its pages only then); a
    full disk must be an ENOSPC here instead, naming the file and the size it needs."""
    try:
        with open(path, "w+b" if new else "r+b") as f:
            if new:
                fmt = np.lib.format
                header = io.BytesIO()
                fmt.write_array_header_1_0(header, {
                    "descr": fmt.dtype_to_descr(np.dtype(np.float64)),
                    "fortran_order": False, "shape": (n, n)})
                _allocate(f, header.tell() + n * n * 8)
                f.seek(0)
                f.write(header.getvalue())  # into reserved space: cannot run short
            else:
                _allocate(f, os.fstat(f.fileno()).st_size)  # a size _is_matrix_file checked
    except OSError as e:
        if new:
            with contextlib.suppress(OSError):
                path.unlink()
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(e.errno, f"{e.strerror}: the {n} x {n} score matrix needs "
                                   f"{n * n * 8 / 2**20:.1f} MiB", str(path)) from None
        raise


def _allocate(f, size: int) -> None:
    """Extend the open binary file ``f`` to ``size`` bytes, every one of them allocated."""
    fallocate = getattr(os, "posix_fallocate", None)  # none on macOS and Windows
    if fallocate is not None:
        try:
            fallocate(f.fileno(), 0, size)
            return
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise  # those three: a file system without fallocate (ZFS, some NFS)
    # Rewriting every byte in place fills the holes and keeps finished blocks as they are.
    f.truncate(max(size, os.fstat(f.fileno()).st_size))
    f.seek(0)
    while (start := f.tell()) < size:
        chunk = f.read(min(1 << 22, size - start))
        f.seek(start)
        f.write(chunk)
    f.flush()
    os.fsync(f.fileno())  # NFS may report a full disk only here


def _fingerprint(packed, scoring, block: int) -> str:
    h = hashlib.sha256()
    for arr in packed:
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(repr(scoring).encode())
    if scoring.substitution is not None:
        h.update(scoring.substitution.tobytes())
    h.update(str(block).encode())
    return h.hexdigest()


def blocked_pairwise(seqs, scoring=None, *, block: int = DEFAULT_BLOCK, out=None,
                     backend: str = "threads", client=None, n_jobs=None,
                     progress: bool = True, retries: int = 2, on_block=None) -> np.ndarray:
    """All-pairs global scores computed block by block (see the module docstring).

    Parameters
    ----------
    seqs : sequence of 1-D int arrays
    scoring : Scoring, optional
        Must be symmetric (score(a, b) == score(b, a)): only upper blocks are computed.
    block : int
        Sequences per block side. Bigger blocks amortise per-task overhead;
        smaller ones balance load and lose less work when a run is killed.
    out : path, optional
        Directory for the resumable on-disk matrix; the result is then a
        read/write ``numpy.memmap`` of ``out/scores.npy``.
    backend : "threads" or "dask"
        "threads": blocks in turn, each on all cores (``n_jobs``).
        "dask": one task per block, each single-threaded, on ``client``.
    client : dask.distributed.Client or str, optional
        A client or a scheduler address; default a new LocalCluster (closed after).
    on_block : callable, optional
        Called with each finished block's box (progress hooks, tests).
    """
    scoring = check_scoring(scoring)
    if not scoring.symmetric:
        raise UsageError("blocked_pairwise computes upper-triangle blocks only and needs a "
                         "symmetric scoring; use pairwise() for asymmetric matrices")
    if backend not in ("threads", "dask"):
        raise UsageError(f"backend must be 'threads' or 'dask', got {backend!r}")
    seqs = [as_tokens(s, f"seqs[{k}]", scoring.vocab_size) for k, s in enumerate(seqs)]
    packed = pack_sequences(seqs)
    n = len(seqs)
    boxes = plan_blocks(n, block)
    store = None
    if out is not None:
        store = _BlockStore(out, n, _fingerprint(packed, scoring, block))
        todo = [b for b in boxes if not store.is_done(b)]
        result = store.matrix
        write = store.write  # the upper block only; mirror() fills the lower half
    else:
        result = np.empty((n, n), dtype=np.float64)
        todo = boxes

        def write(box, values):
            i0, i1, j0, j1 = box
            result[i0:i1, j0:j1] = values
            result[j0:j1, i0:i1] = values.T

    # reached before the progress bar starts: an unreachable scheduler is one line alone
    own = _own_client(client) if backend == "dask" and todo else None
    if own is not None:
        client = own
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(boxes), initial=len(boxes) - len(todo), unit="block",
                   desc=f"all-pairs ({backend})")

    def finish(box, values):
        write(box, values)
        if bar is not None:
            bar.update()
        if on_block is not None:
            on_block(box)

    try:
        if backend == "threads":
            for box in todo:
                finish(box, _block_scores(packed, scoring, box, n_jobs))
        elif todo:
            _run_dask(packed, scoring, todo, client, retries, finish)
    finally:
        if bar is not None:
            bar.close()
        if own is not None:
            from archalign.utils.dask import close

            close(own)
    if store is not None:
        store.mirror(boxes)
    return result


def _own_client(client):
    """A client made here for ``client`` (a scheduler address, or None: a new local
    cluster), for the caller to close; None when ``client`` is a client already."""
    from archalign.utils.dask import connect, local_client

    if isinstance(client, str):
        return connect(client)
    return local_client() if client is None else None


def _run_dask(packed, scoring, boxes, client, retries, finish) -> None:
    from dask.distributed import as_completed

    # sequences travel once per worker; each task only names its block
    [data] = client.scatter([packed], broadcast=True)
    futures = {client.submit(_block_scores, data, scoring, box, 1, retries=retries,
                             pure=False): box for box in boxes}
    for future in as_completed(futures):
        finish(futures[future], future.result())
