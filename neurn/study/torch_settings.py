"""Global torch state a study sets: threads, determinism, ``cudnn.benchmark`` and the seeds.

CPU: ``torch.set_num_threads`` (default: the CPUs this process may use). A study should
pass the count from :func:`pick_threads`, which keeps one CPU free per unit of load that
other processes already put on the machine, because OpenMP threads spin-wait on a busy
core (a timm model with 2 threads on 2 CPUs, one of them busy, fell from 28 to 0.5
steps/s; with 1 thread it ran at 20). Measure it before the study trains: the 1-minute
load average soon counts the study's own threads. On CPU a run is deterministic for a
given thread count (``num_workers=0``; CPU kernels reduce in a fixed order), so the chosen
count goes in the run header, and ``--threads`` reproduces it on a machine with another
load. ``deterministic=True`` also turns on ``torch.use_deterministic_algorithms``
(warn-only); it is off by default because it made a MnasNet CPU step 3x slower here, and
on CUDA it needs ``CUBLAS_WORKSPACE_CONFIG`` and costs more. CUDA: ``cudnn.benchmark``.
:class:`TorchSettings` restores everything it set when the study returns.
"""
from __future__ import annotations

import math
import os
import random
import time

import numpy as np
import torch

from archalign.utils.errors import UsageError

__all__ = ["TorchSettings", "busy_cpus", "default_threads", "oversubscribed", "pick_threads",
           "seed_everything"]


def default_threads() -> int:
    """Every CPU this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def busy_cpus(load: float | None = None, *, window: float = 0.25) -> float:
    """How many CPUs other work keeps busy now, or ``load`` when given (tests, callers
    that measured earlier).

    On Linux, the CPU time spent outside idle over ``window`` seconds of ``/proc/stat``:
    the 1-minute load average would still count a ``pip install`` that just finished.
    Elsewhere the 1-minute load average (0 where the OS has none, as on Windows). Call it
    before this process trains, since neither can tell its own threads from other work.
    """
    if load is not None:
        return max(0.0, float(load))
    try:
        first = _cpu_times()
        time.sleep(window)
        second = _cpu_times()
        total, idle = second[0] - first[0], second[1] - first[1]
        return max(0.0, (total - idle) / total * _cpus(None)) if total > 0 else 0.0
    except (OSError, ValueError, IndexError):  # no /proc: macOS, Windows
        pass
    try:
        return max(0.0, os.getloadavg()[0])
    except (AttributeError, OSError):  # Windows; OSError: a load average it cannot read
        return 0.0


def _cpu_times() -> tuple[int, int]:
    """(all jiffies, idle + iowait jiffies) of the machine, from /proc/stat's first line."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]


def _cpus(cpus: int | None) -> int:
    return default_threads() if cpus is None else max(1, int(cpus))


def _fitting(load: float, cpus: int) -> int:
    # half up: round() is half-to-even, which would keep 0 CPUs free at load 0.5 but 2 at 1.5
    return max(1, cpus - math.floor(load + 0.5))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def oversubscribed(threads: int, *, load: float | None = None,
                   cpus: int | None = None) -> str | None:
    """A one-line warning when ``threads`` is more than the CPUs other work leaves free,
    else None: ``"warning: oversubscribed (load 1.0 on 2 CPUs); pass --threads 1"``.

    ``load`` defaults to :func:`busy_cpus` (measure before training), ``cpus`` to
    :func:`default_threads`.
    """
    load, cpus = busy_cpus(load), _cpus(cpus)
    fitting = _fitting(load, cpus)
    if threads <= fitting:
        return None
    return (f"warning: oversubscribed (load {load:.1f} on {_plural(cpus, 'CPU')}); "
            f"pass --threads {fitting}")


def pick_threads(requested: int | None = None, *, load: float | None = None,
                 cpus: int | None = None) -> tuple[int, str]:
    """The thread count for a study and a short note for its run header.

    ``requested=None`` gives ``cpus - round(load)`` (half up), at least 1: an idle 2-CPU
    machine uses 2 threads, one with a busy process 1. An explicit ``requested`` is kept,
    but the note ends with :func:`oversubscribed`'s warning when it exceeds that count.

    Parameters
    ----------
    requested
        ``--threads``, or None to choose.
    load
        CPUs other work keeps busy; None reads :func:`busy_cpus` (so call this before
        training starts).
    cpus
        CPUs this process may use; None reads :func:`default_threads`.

    Returns
    -------
    (threads, note) : tuple of int and str
        e.g. ``(2, "2 threads (2 CPUs, load 0.1)")``,
        ``(1, "1 thread (2 CPUs, load 1.0: 1 kept free)")`` or ``(2, "2 threads (requested,
        2 CPUs, load 1.0); warning: oversubscribed (load 1.0 on 2 CPUs); pass --threads 1")``.
    """
    load, cpus = busy_cpus(load), _cpus(cpus)
    machine = f"{_plural(cpus, 'CPU')}, load {load:.1f}"
    if requested is None:
        threads = _fitting(load, cpus)
        free = cpus - threads
        return threads, (f"{_plural(threads, 'thread')} ({machine}"
                         f"{f': {free} kept free' if free else ''})")
    if int(requested) != requested or requested < 1:
        raise UsageError(f"threads must be an integer >= 1, got {requested!r}")
    threads = int(requested)
    note = f"{_plural(threads, 'thread')} (requested, {machine})"
    warning = oversubscribed(threads, load=load, cpus=cpus)
    return threads, note if warning is None else f"{note}; {warning}"


class TorchSettings:
    """Set threads / determinism / cudnn.benchmark for a study, restore them after."""

    def __init__(self, device: torch.device, threads: int | None,
                 deterministic: bool = False) -> None:
        self.device, self.threads, self.deterministic = device, threads, deterministic

    def __enter__(self):
        self.saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                      torch.is_deterministic_algorithms_warn_only_enabled(),
                      torch.backends.cudnn.benchmark)
        torch.set_num_threads(self.threads or default_threads())
        if self.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return self

    def __exit__(self, *exc):
        threads, det, warn_only, bench = self.saved
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.backends.cudnn.benchmark = bench
        return False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch from a run's seed (weights, dropout follow it)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
