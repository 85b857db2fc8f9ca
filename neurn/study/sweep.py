"""A study's runs as Dask tasks: one task per run, on any ``dask.distributed`` cluster.

The engine is the one ``archalign matrix --scheduler`` uses (:mod:`archalign.utils.dask`);
nothing here schedules. Each task carries only the study's arguments (names and paths,
:attr:`Study.spec`) and the run; the worker builds the study once per process (its data
read from the same paths and the verified caches, a shared filesystem on a real
cluster) and trains the run through :meth:`Study.train_claimed`, so the run is claimed
exactly as a process of its own would claim it (:mod:`.claims`).

* A worker that dies mid-run loses at most the epoch in progress: Dask gives the task
  to another worker (the scheduler's ``allowed-failures``), which takes the dead
  process's claim over and resumes from the checkpoint. An exception in the task (a
  full disk) is retried once (``retries=1``); a run that fails for its own reason (a
  NaN loss, CUDA out of memory) is a finished run with ``status="error"``, recorded,
  not retried.
* Every run is seeded by its own seed and trains with the study's thread count, so its
  numbers do not depend on which worker, or how many, ran it (on CPU bit-identical to
  the sequential study; on CUDA up to the non-determinism of cuDNN's convolution
  algorithms and atomic adds in some backward kernels, the same as between two
  sequential runs).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import socket
import time
from collections.abc import Callable

__all__ = ["run_on_dask"]

_STUDIES: dict[str, object] = {}  # per worker process: spec digest -> Study
_TOPIC = "neurn-runs"  # workers' start lines, relayed to the client


def _study(study_class, spec: dict):
    """The study of ``spec``, built once per worker process (plans, data, weights)."""
    key = hashlib.sha256(pickle.dumps(sorted(spec.items(), key=lambda kv: kv[0]))).hexdigest()
    if key not in _STUDIES:
        # quiet: the client logs each run's start and finish for the worker
        _STUDIES[key] = study_class(**{**spec, "progress": False, "log": False})
    return _STUDIES[key]


def _train_task(study_class, spec: dict, run) -> dict:
    """Train ``run`` of the study ``study_class(**spec)`` on this worker (the class
    travels by name, so this module need not import the study's);
    ``{"result": ... or None, "where", "seconds"}``."""
    from dask.distributed import get_worker

    study = _study(study_class, spec)
    worker = get_worker()
    where = f"{socket.gethostname()}:{os.getpid()} ({worker.name})"
    worker.log_event(_TOPIC, f"{run.key}: started on {where}")  # to the client only
    started = time.perf_counter()
    with study.config.torch_settings():
        result = study.train_claimed(run)
    return {"result": result, "where": where, "seconds": time.perf_counter() - started}


def run_on_dask(study, client, runs: list, *, echo: Callable[[str], None]) -> list[dict]:
    """Submit each of ``runs`` as a task on ``client``; the finished results (runs
    another process held come back as None and are left out)."""
    from dask.distributed import as_completed

    from neurn.study.train import finish_line, progress_bar

    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    echo(f"Dask cluster at {info.get('address', '?')}: {len(workers)} workers, {threads} "
         f"threads; {len(runs)} runs to train")
    client.subscribe_topic(_TOPIC, lambda event: echo(event[1]))
    gpu = study.config.device.type == "cuda"
    futures = {client.submit(_train_task, type(study), study.spec, run, pure=False, retries=1,
                             key=f"neurn-{run.key}-{time.time_ns()}",
                             resources={"GPU": 1} if gpu and _has_gpu_resources(workers)
                             else None): run for run in runs}
    results = []
    bar = progress_bar(total=len(futures), desc="runs", unit="run", show=study.progress)
    try:
        for future in as_completed(futures):
            done = future.result()
            bar.update(1)
            if done["result"] is None:
                echo(f"{futures[future].key}: held by another process, left to it")
                continue
            results.append(done["result"])
            echo(finish_line(futures[future].key, done["result"], done["seconds"],
                             done["where"]))
    except KeyboardInterrupt:
        client.cancel(list(futures))  # a cancelled run keeps its last checkpoint
        raise
    finally:
        client.unsubscribe_topic(_TOPIC)
        bar.close()
    return results


def _has_gpu_resources(workers: dict) -> bool:
    return any("GPU" in (w.get("resources") or {}) for w in workers.values())
