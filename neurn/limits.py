"""Sizes no run of ``neurn run`` can have on this machine, refused in one line before
anything is allocated.

Left alone, they fail late and without a message: a batch of ``--batch-size 10**9``
images, or one image of ``--img-size 100000``, is an allocation that the kernel's
overcommit grants and its OOM killer ends (``Killed``, exit 137, after the data were
decoded); ``--threads 100000`` crashes torch's thread pool at the first parallel op (a
segmentation fault, exit 139, on this project's machine). Only certain failures are
refused: the bounds below are what a run needs at the least, so every run that could
fit still starts.
"""
from __future__ import annotations

import os

from archalign.utils.args import PROCESSES_PER_CPU

from archalign.utils.errors import UsageError

__all__ = ["check_sizes", "physical_memory"]

# Threads or processes per CPU beyond which a count is a typo, not a choice: past one per
# CPU they only take turns (the run header warns); 8 leaves room for deliberate
# oversubscription (DataLoader workers waiting on a slow disk, timing experiments). The
# same bound as --dask-workers and --runs-per-gpu (archalign.utils.args.process_count).
PER_CPU = PROCESSES_PER_CPU
# On a Dask cluster the workers' CPUs are not known here; no machine runs more threads
# in one process usefully.
MAX_THREADS = 4096
# Every domain is decoded to 3 channels (grey digits replicated), and 32 px (digits) is
# the smallest default image side: the least a run without --img-size can use.
CHANNELS, SMALLEST_IMG_SIZE = 3, 32
# A training step holds its float32 input batch and the first layer's output, which is
# at least as large for every backbone here (a conv stem keeps 16 or more values per
# input pixel, a ViT patch embedding 3 per pixel, the input's 3).
BYTES_PER_VALUE = 2 * 4


def physical_memory() -> int | None:
    """Bytes of memory this machine has, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows
        return None


def check_sizes(*, img_size: int | None, batch_size: int | None,
                threads: int | None, workers: int | None, remote: bool = False,
                memory: int | None = None, cpus: int | None = None) -> None:
    """Refuse sizes the machine cannot hold, before the study allocates anything.

    Parameters
    ----------
    img_size, batch_size, threads, workers : int or None
        ``--img-size``, ``--batch-size``, ``--threads`` and ``--workers`` (DataLoader
        processes); None is the default, never refused. Values below 1 are left to the
        study's own checks.
    remote : bool
        The runs go to a Dask scheduler's workers (``--scheduler``): their memory and
        CPUs are unknown here, so only :data:`MAX_THREADS` applies.
    memory, cpus : int, optional
        This machine's memory in bytes and its CPUs; default :func:`physical_memory`
        and ``os.cpu_count()`` (tests give their own).

    Raises
    ------
    ValueError
        In one line naming the option, what it needs and what the machine has.
    """
    cpus = cpus or os.cpu_count() or 1
    most = MAX_THREADS if remote else min(MAX_THREADS, PER_CPU * cpus)
    where = "a process runs usefully" if remote else \
        f"{PER_CPU} per CPU of this machine ({cpus} CPUs)"
    for option, value in (("--threads", threads), ("--workers", workers)):
        if value is not None and value > most:
            raise UsageError(f"{option} {value}: more than {where}; give at most {most}, "
                             f"or leave it out to let neurn choose")
    memory = physical_memory() if memory is None else memory
    side = SMALLEST_IMG_SIZE if img_size is None else img_size
    if remote or memory is None or batch_size is None or min(batch_size, side) < 1:
        return
    need = batch_size * CHANNELS * side * side * BYTES_PER_VALUE
    if need > memory:
        at = f"{side} px" if img_size else f"{side} px (the smallest default image size)"
        raise UsageError(f"--batch-size {batch_size} at {at}: one training batch needs "
                         f"at least {_bytes(need)} (its float32 input and the first "
                         f"layer's output), more than this machine's {_bytes(memory)} of "
                         f"memory; lower --batch-size or --img-size")


def _bytes(n: int) -> str:
    """``n`` bytes for a reader (``1.5 GiB``), for any int: argparse takes 400 digits."""
    for k, unit in enumerate(("B", "KiB", "MiB", "GiB", "TiB", "PiB")):
        if n < 1024 ** (k + 1):
            return f"{n / 1024 ** k:.1f} {unit}"
    return f"{n // 1024 ** 6:,} EiB"
