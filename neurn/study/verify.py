"""Verifying a study folder before a study writes in it or trusts what ``runs/<run>`` holds.

A run made with other settings is refused (``ValueError``), and so is a folder where a
file belongs, or a file where a folder belongs (:func:`check_outputs`, before anything
is written). A result.json, checkpoint.pt or best.pt that does not parse or load, does
not match its digest, has none (an earlier version wrote it: unverified, so not
trusted) or holds values out of range is reported (:class:`DamagedRunWarning`) and the
run retrained (from its checkpoint when only the result is damaged): every input of a
run is in its settings, so retraining recomputes what was lost (the same numbers on
CPU), where a refusal would leave the user deleting files by hand. A missing best.pt is
no damage: the run was made with ``keep_weights=False``. The settings hash of an earlier
version's result.json still refuses a run of other settings (:func:`unsealed_member`):
it is never trusted, only kept from being overwritten by another configuration.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from archalign.utils.errors import DataError, UserError
from archalign.utils.io import DIGEST_MEMBER

from neurn.results import read_run
from neurn.study.checkpoints import first_line, read_checkpoint, read_weights

__all__ = ["DamagedFileWarning", "DamagedRunWarning", "Found", "check_outputs", "find_result",
           "find_run", "unsealed_member", "verified"]

# the files a study writes in its folder, and in the folder of each of its runs
STUDY_FILES = ("study.json", "study.lock", "data.json", "results.csv", "results.json",
               "summary.md", "results.png", "learning_curves.png")
RUN_FILES = ("result.json", "checkpoint.pt", "best.pt", "claim.json")


class DamagedFileWarning(UserWarning):
    """A file of a study folder failed its check (digest, parse, values); it is rebuilt."""


class DamagedRunWarning(DamagedFileWarning):
    """A file of a run failed its check; the run is retrained."""


@dataclass
class Found:
    """A run's settings and what its folder holds, verified (see :func:`find_run`):
    its finished result, or a checkpoint to resume from, or neither (train anew)."""

    settings: dict
    digest: str
    result: dict | None = None
    checkpoint: dict | None = None


def verified(path: Path, read) -> object | None:
    """``read(path)``, or None when the file is missing or damaged (then warned). A
    folder in its place, or a file that cannot be opened (an ``OSError``), is refused."""
    if path.is_dir():
        raise DataError(f"{path} is a folder where the study keeps a file; move it away")
    if not path.exists():
        return None
    try:
        return read(path)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged JSON / zip / pickle fail in many ways
        # a plain ValueError is one of our checks, worded for the user; others name their type
        reason = str(exc) if isinstance(exc, UserError) else first_line(exc)
        # stacklevel: verified <- find_run <- Study._found <- Study.run / run_one
        warnings.warn(f"{path} is damaged ({reason}); retraining that run",
                      DamagedRunWarning, stacklevel=4)
        return None


def unsealed_member(path: Path, key: str) -> str | None:
    """The text ``key`` of the JSON record at ``path`` when an earlier version wrote it
    (no digest member), else None: unverified, so good only to refuse a folder of other
    settings before overwriting it, never to trust."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or DIGEST_MEMBER in record:
        return None
    return record.get(key) if isinstance(record.get(key), str) else None


def find_result(run_dir: Path, digest: str) -> dict | None:
    """``run_dir``'s finished result if it is verified and of settings ``digest``, else
    None; reads no checkpoint (for tables of a study other processes work on)."""
    result = verified(run_dir / "result.json", read_run)
    return result if result is not None and result["settings_hash"] == digest else None


def find_run(run_dir: Path, settings: dict, digest: str, *, keep_weights: bool) -> Found:
    """What ``run_dir`` holds for a run of ``settings`` (hash ``digest``), verified."""
    found = Found(settings, digest)
    other = (f"{run_dir} holds a run made with other settings; use another out_dir "
             f"(--out) or delete that folder")
    if unsealed_member(run_dir / "result.json", "settings_hash") not in (None, digest):
        raise DataError(other)
    result = verified(run_dir / "result.json", read_run)
    if result is not None:
        if result["settings_hash"] != digest:
            raise DataError(other)
        weights = run_dir / "best.pt"
        if (result["status"] != "ok" or not keep_weights or not weights.exists()
                or verified(weights, lambda path: read_weights(
                    path, result.get("weights_sha256"))) is not None):
            found.result = result
            return found
    found.checkpoint = verified(run_dir / "checkpoint.pt", read_checkpoint)
    if found.checkpoint is not None and found.checkpoint["settings_hash"] != digest:
        raise DataError(other)
    return found


def check_outputs(out_dir: Path, keys) -> None:
    """Refuse (``ValueError``) a study folder where a file the study writes is a folder,
    or a folder it writes (``runs``, ``runs/<key>`` of each of ``keys``) is a file: checked
    before the first write, so that a refusal leaves every byte as it was."""
    runs = out_dir / "runs"
    folders = [runs, *(runs / key for key in keys)]
    files = [*(out_dir / name for name in STUDY_FILES),
             *(runs / key / name for key in keys for name in RUN_FILES)]
    for path in folders:
        if path.exists() and not path.is_dir():
            raise DataError(f"{path} is a file where the study keeps a folder; move it away")
    for path in files:
        if path.is_dir():
            raise DataError(f"{path} is a folder where the study keeps a file; move it away")
