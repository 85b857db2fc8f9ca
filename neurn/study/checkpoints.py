"""A run's checkpoint I/O: ``runs/<run>/checkpoint.pt`` after every epoch, ``best.pt`` at the end.

A checkpoint holds the model, optimizer, scheduler (and grad scaler), the torch / sampler /
augmentation RNG states, the history and the best-so-far weights: plain tensors and
containers only, read back with ``torch.load(weights_only=True)``. Files are written to a
temp file and ``os.replace``\\ d; a failed write (a full disk) is an ``OSError`` naming the
file, which stops the study instead of failing the run.

Both files are verified before use by a SHA-256 over their tensors and values
(:func:`archalign.utils.io.state_digest`): a checkpoint carries its own (member ``sha256``);
``best.pt`` stays a plain ``state_dict`` that ``model.load_state_dict`` takes, and its
digest is recorded in the run's sealed ``result.json`` (``weights_sha256``). torch reads
a flipped bit in a tensor without complaint, so without the digest a damaged checkpoint
would resume with other numbers.
"""
from __future__ import annotations

from pathlib import Path

import torch

from archalign.utils.errors import DataError
from archalign.utils.io import DIGEST_MEMBER, atomic_path, state_digest

__all__ = ["CHECKPOINT_KEYS", "atomic_torch_save", "checkpoint_state", "first_line",
           "read_checkpoint", "read_weights", "restore_checkpoint"]

CHECKPOINT_KEYS = ("settings_hash", "epoch", "model", "optimizer", "scheduler", "rng",
                   "history", "best")


def first_line(exc: BaseException) -> str:
    """``"Type: message"``, first line only: how a run's error is recorded and reported."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def atomic_torch_save(obj, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as exc:
        # torch's zip writer reports a full disk as a RuntimeError; as an OSError it
        # stops the study (naming the file) instead of being recorded as a failed run
        raise OSError(None, f"torch.save failed, is the disk full? ({first_line(exc)})",
                      str(path)) from None


def read_checkpoint(path: Path) -> dict:
    """The state ``checkpoint.pt`` holds, once its digest checks out (``ValueError``
    otherwise; a checkpoint of an earlier version has none)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise DataError(f"not a checkpoint of a run: no {', '.join(missing)}")
    stored = state.pop(DIGEST_MEMBER, None)
    if stored is None:
        raise DataError("no digest: written by an earlier version, or damaged")
    if stored != state_digest(state):
        raise DataError("its tensors do not match its digest: damaged or altered")
    return state


def read_weights(path: Path, digest: str | None) -> dict:
    """``best.pt``'s weights, once they match ``digest`` (its run's ``weights_sha256``)."""
    # mmap: the tensors are read once, by the digest, not copied first
    weights = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not (isinstance(weights, dict) and weights and
            all(isinstance(t, torch.Tensor) for t in weights.values())):
        raise DataError("not a model's weights (a dict of tensors)")
    if digest is None:
        raise DataError("its run's result records no digest of them")
    if state_digest(weights) != digest:
        raise DataError("its tensors do not match the digest its result records: damaged "
                        "or altered")
    return weights


def checkpoint_state(*, digest: str, epoch: int, model, optimizer, scheduler, scaler,
                     generator: torch.Generator, augment_rng: torch.Generator,
                     device: torch.device, history: list[dict], best: dict | None) -> dict:
    """What ``checkpoint.pt`` holds after ``epoch`` epochs, its digest included (reads
    the RNG states only)."""
    rng = {"torch": torch.get_rng_state(), "sampler": generator.get_state(),
           "augment": augment_rng.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    state = {"settings_hash": digest, "epoch": epoch,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "rng": rng,
             "history": history, "best": best}
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    state[DIGEST_MEMBER] = state_digest(state)
    return state


def restore_checkpoint(state: dict, path: Path, *, model, optimizer, scheduler, scaler,
                       generator: torch.Generator, augment_rng: torch.Generator,
                       device: torch.device) -> None:
    """Load a verified checkpoint's states back; ``ValueError`` naming ``path`` if it does
    not fit the run (the settings hash matched, so the file is damaged inside)."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        generator.set_state(state["rng"]["sampler"])
        if "augment" in state["rng"]:  # absent from checkpoints of older versions
            augment_rng.set_state(state["rng"]["augment"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        # the settings hash matched, so the file is damaged inside; the model is
        # half restored by now, so refuse rather than train on from it
        raise DataError(f"{path} does not restore this run ("
                        f"{first_line(exc)}); delete it to retrain the run") from None
