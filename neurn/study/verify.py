"""Verifying a run folder before a study trusts it, on resume: what ``runs/<run>`` holds.

A run made with other settings is refused (``ValueError``), and so is a folder where a
file belongs. A result.json, checkpoint.pt or best.pt that does not parse or load is
reported (:class:`DamagedRunWarning`) and the run retrained (from its checkpoint when only
the result is damaged): every input of a run is in its settings, so retraining recomputes
what was lost (the same numbers on CPU), where a refusal would leave the user deleting
files by hand. A missing best.pt is no damage: the run was made with
``keep_weights=False``.
"""
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..results import read_run
from .checkpoints import first_line, read_checkpoint, read_weights

__all__ = ["DamagedRunWarning", "Found", "find_result", "find_run", "verified"]


class DamagedRunWarning(UserWarning):
    """A file of a study folder did not parse or load; the run is retrained."""


@dataclass
class Found:
    """A run's settings and what its folder holds, verified (see :func:`find_run`):
    its finished result, or a checkpoint to resume from, or neither (train anew)."""

    settings: dict
    digest: str
    result: Optional[dict] = None
    checkpoint: Optional[dict] = None


def verified(path: Path, read) -> Optional[object]:
    """``read(path)``, or None when the file is missing or damaged (then warned). A
    folder in its place, or a file that cannot be opened (an ``OSError``), is refused."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder where the study keeps a file; move it away")
    if not path.exists():
        return None
    try:
        return read(path)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged JSON / zip / pickle fail in many ways
        # stacklevel: verified <- find_run <- Study._found <- Study.run / run_one
        warnings.warn(f"{path} is damaged ({first_line(exc)}); retraining that run",
                      DamagedRunWarning, stacklevel=4)
        return None


def find_result(run_dir: Path, digest: str) -> Optional[dict]:
    """``run_dir``'s finished result if it is verified and of settings ``digest``, else
    None; reads no checkpoint (for tables of a study other processes work on)."""
    result = verified(run_dir / "result.json", read_run)
    return result if result is not None and result["settings_hash"] == digest else None


def find_run(run_dir: Path, settings: dict, digest: str, *, keep_weights: bool) -> Found:
    """What ``run_dir`` holds for a run of ``settings`` (hash ``digest``), verified."""
    found = Found(settings, digest)
    other = (f"{run_dir} holds a run made with other settings; use another out_dir "
             f"(--out) or delete that folder")
    result = verified(run_dir / "result.json", read_run)
    if result is not None:
        if result["settings_hash"] != digest:
            raise ValueError(other)
        weights = run_dir / "best.pt"
        if (result["status"] != "ok" or not keep_weights or not weights.exists()
                or verified(weights, read_weights) is not None):
            found.result = result
            return found
    found.checkpoint = verified(run_dir / "checkpoint.pt", read_checkpoint)
    if found.checkpoint is not None and found.checkpoint["settings_hash"] != digest:
        raise ValueError(other)
    return found
