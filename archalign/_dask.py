"""The Dask clusters both command lines use: a scheduler address, or a local cluster.

``archalign matrix`` (all-pairs blocks) and ``neurn run`` (one task per training run)
reach Dask only through this module, so they share one vocabulary: ``--scheduler ADDR``
joins a running cluster (Slurm, Kubernetes, ``dask scheduler`` by hand), and
``--dask-workers N`` starts N single-threaded worker processes here. :func:`gpu_client`
starts one worker process per GPU and run slot, each seeing only its own device
(``CUDA_VISIBLE_DEVICES``), with dask-cuda's ``LocalCUDACluster`` left to users who
want its extras: a worker per device is all a training run needs.
"""
import contextlib
import os
from typing import Optional, Sequence

__all__ = ["CONNECT_TIMEOUT", "close", "connect", "gpu_client", "local_client"]

# Seconds to reach a scheduler given by address. Dask's default (30 s) is what a
# mistyped address costs; a live scheduler answers within a second even across a WAN.
CONNECT_TIMEOUT = 3.0


def _distributed():
    try:
        import dask.distributed as distributed
    except ImportError:
        raise ImportError("Dask is an optional extra: pip install 'archalign[dask]'") from None
    return distributed


def connect(address: str):
    """A ``Client`` of the scheduler at ``address``; ``ValueError`` in one line when none
    answers within :data:`CONNECT_TIMEOUT`."""
    distributed = _distributed()
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    # OSError: refused, unreachable or silent. MemoryError: another kind of server
    # answered, and Dask read its first bytes as the length of a huge message.
    except (OSError, MemoryError):
        raise ValueError(f"no Dask scheduler answered at {address} within "
                         f"{CONNECT_TIMEOUT:g} s; check the address and that the scheduler "
                         f"is running") from None


@contextlib.contextmanager
def _worker_environ():
    """Start worker processes without Dask's ``MALLOC_TRIM_THRESHOLD_=65536``, and leave
    this process's environment as it was.

    With that threshold glibc hands every freed block over 64 KiB back to the kernel,
    so each training step maps and unmaps its large tensors again: a convnet step on one
    thread took 0.17 s on a worker against 0.106 s without it
    (``benchmarks/bench_sweep.py``). Nannies write their pre-spawn variables into the
    parent's ``os.environ``, which later child processes would inherit."""
    import dask

    saved = dict(os.environ)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_":
                              None}):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def local_client(n_workers: Optional[int] = None):
    """A ``Client`` of a new local cluster of ``n_workers`` single-threaded processes
    (default: one per CPU); :func:`close` shuts both down."""
    distributed = _distributed()
    with _worker_environ():
        return distributed.Client(distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True,
            dashboard_address=None))


def gpu_client(devices: Sequence[int], per_device: int = 1):
    """A ``Client`` of a new local cluster with ``per_device`` single-threaded worker
    processes per GPU in ``devices``, each seeing only its GPU (as ``cuda:0``) and
    holding the resource ``{"GPU": 1}``."""
    distributed = _distributed()
    workers = {f"gpu{d}-{k}": {"cls": distributed.Nanny, "options": {
        "nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": str(d)}, "resources": {"GPU": 1}}}
        for d in devices for k in range(per_device)}
    scheduler = {"cls": distributed.Scheduler, "options": {"dashboard_address": None}}
    with _worker_environ():
        return distributed.Client(distributed.SpecCluster(workers, scheduler))


def close(client) -> None:
    """Close ``client`` and the cluster it started, if any."""
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()
