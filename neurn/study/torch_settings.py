"""Global torch state a study sets: threads, determinism, ``cudnn.benchmark`` and the seeds.

CPU: ``torch.set_num_threads`` (default: the CPUs this process may use). On CPU a run is
deterministic for a given thread count (``num_workers=0``; CPU kernels reduce in a fixed
order). ``deterministic=True`` also turns on ``torch.use_deterministic_algorithms``
(warn-only); it is off by default because it made a MnasNet CPU step 3x slower here, and
on CUDA it needs ``CUBLAS_WORKSPACE_CONFIG`` and costs more. CUDA: ``cudnn.benchmark``.
:class:`TorchSettings` restores everything it set when the study returns.
"""
import os
import random
from typing import Optional

import numpy as np
import torch

__all__ = ["TorchSettings", "default_threads", "seed_everything"]


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class TorchSettings:
    """Set threads / determinism / cudnn.benchmark for a study, restore them after."""

    def __init__(self, device: torch.device, threads: Optional[int],
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
