"""The Dask clusters both command lines use: a scheduler address, or a local cluster.

``archalign matrix`` (all-pairs blocks) and ``neurn run`` (one task per training run)
reach Dask only through this module, so they share one vocabulary: ``--scheduler ADDR``
joins a running cluster (Slurm, Kubernetes, ``dask scheduler`` by hand), and
``--dask-workers N`` starts N single-threaded worker processes here. :func:`gpu_client`
starts one worker process per GPU and run slot, each seeing only its own device
(``CUDA_VISIBLE_DEVICES``), with dask-cuda's ``LocalCUDACluster`` left to users who
want its extras: a worker per device is all a training run needs.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from archalign.utils.errors import MissingExtraError, UsageError

__all__ = ["CONNECT_TIMEOUT", "close", "connect", "gpu_client", "local_client"]

# Seconds to reach a scheduler given by address. Dask's default (30 s) is what a
# mistyped address costs; a live scheduler answers within a second even across a WAN.
CONNECT_TIMEOUT = 3.0


def _distributed():
    try:
        import dask.distributed as distributed
    except ImportError:
        raise MissingExtraError("Dask is an optional extra: pip install 'archalign[dask]'") from None
    return distributed


def connect(address: str, timeout: float | None = None):
    """A ``Client`` of the scheduler at ``address``.

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``tcp://10.0.0.5:8786``.
    timeout : float, optional
        Seconds the whole handshake may take; default :data:`CONNECT_TIMEOUT` (read at
        call time, so tests can shorten it).

    Raises
    ------
    ValueError
        In one line naming ``address``, when nothing answers there within ``timeout``,
        or what answers is not a Dask scheduler.
    """
    distributed = _distributed()
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    info = _identity(distributed, address, timeout)
    if info is None:
        raise UsageError(f"no Dask scheduler answered at {address} within {timeout:g} s; "
                         f"check the address and that the scheduler is running")
    if info.get("type") in ("Worker", "Nanny"):
        raise UsageError(f"{address} is a Dask {info['type'].lower()}, not the scheduler; "
                         f"give the address `dask scheduler` printed (port 8786 by default)")
    try:
        return distributed.Client(address, timeout=timeout)
    # The probe passed, so these mean the scheduler went away in between. OSError:
    # refused, unreachable or silent. MemoryError: another kind of server answered, and
    # Dask read its first bytes as the length of a huge message.
    except (OSError, MemoryError):
        raise UsageError(f"the Dask scheduler at {address} stopped answering; check that "
                         f"it is still running") from None


def _identity(distributed, address: str, timeout: float) -> dict | None:
    """What the server at ``address`` says it is (Dask's ``identity`` call), or None when
    it does not answer as a Dask server within ``timeout`` seconds.

    ``Client(address, timeout=...)`` bounds only the TCP connect: its handshake and first
    call wait forever on a peer that accepts and stays silent (a port some other service
    holds). Here every step is under one deadline, on a loop of its own in a thread of its
    own, so that a caller inside a running event loop (Jupyter) can use it too."""
    import asyncio
    import threading

    async def ask() -> dict | None:
        connection_args = distributed.Security().get_connection_args("client")
        comm = await distributed.comm.connect(address, timeout=timeout, **connection_args)
        try:
            await comm.write({"op": "identity", "reply": True})
            info = await comm.read()
        finally:
            comm.abort()
        return info if isinstance(info, dict) else None

    answer: list = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            answer.append(loop.run_until_complete(asyncio.wait_for(ask(), timeout)))
        # A peer that is not Dask can send any bytes, and the decoder fails on them in
        # many ways (OSError, MemoryError, msgpack's and pickle's errors): all mean "no".
        except Exception:  # noqa: BLE001
            answer.append(None)
        finally:
            loop.close()  # without waiting for a DNS look-up still running in its pool

    thread = threading.Thread(target=run, name=f"probe {address}", daemon=True)
    thread.start()
    # a margin over the loop's own deadline, for the thread to start and cancel cleanly
    thread.join(timeout + 1.0)
    return answer[0] if answer else None


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


def local_client(n_workers: int | None = None):
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
