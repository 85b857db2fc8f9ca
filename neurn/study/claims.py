"""Sharing a study folder between processes: a run is trained by whoever claims it.

Several ``neurn run`` processes (shards of a Slurm array, Dask workers, a second
terminal) may work on one ``--out``. Each run is *claimed* before it trains, with a lock
file ``runs/<run>/claim.json`` created exclusively and whole
(:func:`archalign.utils.io.create_text`: a hard link, atomic on local and NFS filesystems)
that names the host, the process and when it started. While the run trains, a daemon
thread touches the file every ``HEARTBEAT`` seconds, so a claim whose file has not been
touched for ``STALE_AFTER`` seconds belongs to a process that is gone (killed, its
machine lost). On the claimant's own host a claim whose
process no longer exists is stale at once. A stale claim is taken over by renaming it
aside first: a rename is atomic, so of two processes that find it stale only one
succeeds, and the other moves on. A live claim is respected: the run is left to its
owner.

Runs write only inside their own folder, every file atomically (:mod:`archalign.utils.io`),
so cooperating processes never see a half-written file of each other's. The study's own
``study.json`` carries a fingerprint of the settings every run shares
(:func:`claim_study`): a process with other settings is refused before it writes, so a
folder never mixes two configurations. The check and the write are one step under the
folder's lock, ``study.lock`` (:func:`lock_study`), a claim on the whole folder: the
first process takes it and holds it while it works; one of the same settings finds it
held and joins, sharing the runs through their claims; one of other settings is refused,
naming the holder. Without the lock, two processes that both found a damaged (or an
earlier version's) study.json would each have made it theirs.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from pathlib import Path

from archalign.utils.errors import UsageError, UserError
from archalign.utils.io import atomic_write_text, create_text, read_sealed_json, seal_json

from neurn.study.checkpoints import first_line
from neurn.study.verify import DamagedFileWarning, unsealed_member

__all__ = ["CLAIM_FILE", "Claim", "ClaimLost", "HEARTBEAT", "STALE_AFTER", "STUDY_LOCK",
           "check_held", "claim_run", "claim_study", "claimant", "in_progress", "is_stale",
           "lock_study"]

CLAIM_FILE = "claim.json"
STUDY_LOCK = "study.lock"
LOCK_WAIT = 10.0  # seconds a joining process waits for the holder to write study.json
HEARTBEAT = 30.0  # seconds between touches of a held claim
STALE_AFTER = 600.0  # a claim untouched this long belongs to a lost process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def claimant(path: Path) -> dict | None:
    """Who holds the claim at ``path`` (host, pid, started), or None when there is none
    or it cannot be read (a damaged one ages out)."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def is_stale(path: Path, *, stale_after: float = STALE_AFTER, now: float | None = None
             ) -> bool:
    """Whether the claim at ``path`` belongs to a process that is gone."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: nothing to take over
    if age > stale_after:
        return True
    info = claimant(path)
    if info is None:
        return False  # damaged: it ages out
    return (info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int)
            and not _alive(info["pid"]))


class Claim:
    """A held claim on a run folder: a heartbeat thread keeps it fresh until
    :meth:`release` (also on ``with`` exit)."""

    def __init__(self, path: Path, token: str, heartbeat: float = HEARTBEAT) -> None:
        self.path, self.token = path, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True,
                                        name=f"claim {path.parent.name}")
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                os.utime(self.path)
            except OSError:  # taken over (we were presumed dead) or the disk is gone
                return

    def held(self) -> bool:
        """Whether the file is still ours (not taken over while we were stalled)."""
        info = claimant(self.path)
        return info is not None and info.get("token") == self.token

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.held():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def _take(path: Path, extra: dict, stale_after: float, heartbeat: float) -> Claim | None:
    """Create the claim file ``path`` for this process (``extra`` added to its record), or
    take a stale one over: a :class:`Claim`, or None when a live process holds it."""
    token = uuid.uuid4().hex
    record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": token,
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra})
    for _ in range(2):  # once as found, once after taking a stale claim over
        if create_text(path, record):  # exclusive, and never seen half-written
            return Claim(path, token, heartbeat)
        if not is_stale(path, stale_after=stale_after):
            return None
        aside = path.with_name(f"{path.name}.stale-{token}")
        try:
            os.rename(path, aside)  # atomic: one of several contenders wins
        except FileNotFoundError:
            return None  # another process took it over first
        aside.unlink()
    return None


def claim_run(run_dir: Path, *, stale_after: float = STALE_AFTER,
              heartbeat: float = HEARTBEAT) -> Claim | None:
    """Claim ``run_dir`` for this process: a :class:`Claim`, or None when another live
    process holds it. A stale claim is taken over."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return _take(run_dir / CLAIM_FILE, {}, stale_after, heartbeat)


def in_progress(out_dir) -> dict[str, str]:
    """``{run key: "running on host pid N since T" | "stale claim ..."}`` for the runs of
    a study folder that are claimed and have no result yet (what ``neurn table`` shows
    of a study in progress)."""
    states = {}
    for path in sorted(Path(out_dir).glob(f"runs/*/{CLAIM_FILE}")):
        if (path.parent / "result.json").exists():
            continue
        info = claimant(path) or {}
        who = f"{info.get('host', '?')} pid {info.get('pid', '?')} since {info.get('started', '?')}"
        states[path.parent.name] = (f"stale claim ({who}): its process is gone; the next "
                                    f"`neurn run` takes it over" if is_stale(path) else
                                    f"running on {who}")
    return states


class ClaimLost(Exception):
    """Another process took over a run this process was training (it was presumed
    dead: stalled past ``STALE_AFTER``). Not a ``RuntimeError``: the run did not fail."""


def check_held(claim: Claim) -> None:
    """Raise :class:`ClaimLost` unless ``claim`` is still this process's."""
    if not claim.held():
        raise ClaimLost(f"{claim.path.parent.name} was taken over by another process")


def _who(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')} since "
            f"{info.get('started', '?')}")


def _fingerprint(path: Path) -> str | None:
    """The fingerprint ``study.json`` at ``path`` names, once it verifies; else None."""
    try:
        return read_sealed_json(path).get("fingerprint")
    except (OSError, ValueError):
        return None


def claim_study(path: Path, record: dict, fingerprint: str) -> None:
    """Make ``path`` (``study.json``) name this study's settings, or refuse; called
    under the folder's lock (:func:`lock_study`).

    The first process creates it exclusively (a hard link of a complete temp file, so
    no reader sees half of it); a later one with the same ``fingerprint`` (the settings
    every run shares) cooperates and rewrites it; one with another is refused with a
    ``ValueError`` before it writes anything. The file is sealed (a SHA-256 member): one
    that fails its check (damaged, or an earlier version's without a digest) names no
    settings one can trust, so it is rewritten with a warning, unless a live process
    trains a run of the folder (of settings it cannot tell), which refuses; so does an
    earlier version's that names another fingerprint (an older study is not
    overwritten)."""
    text = seal_json({**record, "fingerprint": fingerprint}, indent=2)
    if create_text(path, text):
        return
    try:
        theirs = read_sealed_json(path).get("fingerprint")
    except ValueError as exc:  # damaged, or an earlier version's
        reason = str(exc) if isinstance(exc, UserError) else first_line(exc)
        if unsealed_member(path, "fingerprint") not in (None, fingerprint):
            raise _other_settings(path) from None
        live = [c for c in sorted(path.parent.glob(f"runs/*/{CLAIM_FILE}")) if not is_stale(c)]
        if live:
            raise UsageError(
                f"{path} is damaged ({reason}) and {_who(claimant(live[0]) or {})} is "
                f"training {live[0].parent.name} in {path.parent}; rerun this command once "
                f"it has finished") from None
        # stacklevel: claim_study <- lock_study <- Study.run
        warnings.warn(f"{path} is damaged ({reason}); rewritten with this study's settings",
                      DamagedFileWarning, stacklevel=3)
        theirs = None
    if theirs is not None and theirs != fingerprint:
        raise _other_settings(path)
    atomic_write_text(path, text)


def _other_settings(path: Path) -> ValueError:
    return UsageError(f"{path.parent} holds a study with other settings (study.json); give "
                      f"this one another --out, or rerun that study's command to add runs "
                      f"to it")


def lock_study(out_dir: Path, record: dict, fingerprint: str, *,
               stale_after: float = STALE_AFTER, heartbeat: float = HEARTBEAT,
               wait: float = LOCK_WAIT) -> Claim | None:
    """Lock ``out_dir`` for a study of ``fingerprint`` and make its ``study.json`` name
    the study (:func:`claim_study`), or refuse with a ``ValueError``; nothing is written
    before the lock is taken.

    The lock, ``study.lock``, is a claim naming the host, the process and the
    fingerprint, created exclusively, kept fresh by a heartbeat and taken over once
    stale (:func:`is_stale`). Returns the held lock (release it when the study is done),
    or None when a live process of the same settings holds it: this one joins, leaving
    study.json to the holder, and shares the runs through their claims. A live holder of
    other settings is refused, named. A joining process waits up to ``wait`` seconds
    for the holder's study.json (it writes it right after taking the lock)."""
    path = out_dir / STUDY_LOCK
    deadline = time.monotonic() + wait
    while True:
        lock = _take(path, {"fingerprint": fingerprint}, stale_after, heartbeat)
        if lock is not None:
            try:
                claim_study(out_dir / "study.json", record, fingerprint)
            except BaseException:
                lock.release()
                raise
            return lock
        holder = claimant(path)
        if holder is not None and holder.get("fingerprint") != fingerprint:
            raise UsageError(f"{out_dir} is locked by a neurn run of other settings "
                             f"({_who(holder)}); wait for it to finish, or give this one "
                             f"another --out")
        if holder is not None and _fingerprint(out_dir / "study.json") == fingerprint:
            return None
        if time.monotonic() > deadline:
            raise UsageError(
                f"{out_dir} is locked ({_who(holder)}) but its study.json does not name "
                f"this study's settings; rerun this command once that process has finished"
                if holder is not None else
                f"{path} cannot be read; it is taken over once nobody has touched it for "
                f"{stale_after / 60:g} minutes, or delete it if no neurn run works on "
                f"{out_dir}")
        time.sleep(0.05)
