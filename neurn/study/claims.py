"""Sharing a study folder between processes: a run is trained by whoever claims it.

Several ``neurn run`` processes (shards of a Slurm array, Dask workers, a second
terminal) may work on one ``--out``. Each run is *claimed* before it trains, with a lock
file ``runs/<run>/claim.json`` created exclusively and whole
(:func:`archalign._io.create_text`: a hard link, atomic on local and NFS filesystems)
that names the host, the process and when it started. While the run trains, a daemon
thread touches the file every ``HEARTBEAT`` seconds, so a claim whose file has not been
touched for ``STALE_AFTER`` seconds belongs to a process that is gone (killed, its
machine lost). On the claimant's own host a claim whose
process no longer exists is stale at once. A stale claim is taken over by renaming it
aside first: a rename is atomic, so of two processes that find it stale only one
succeeds, and the other moves on. A live claim is respected: the run is left to its
owner.

Runs write only inside their own folder, every file atomically (:mod:`archalign._io`),
so cooperating processes never see a half-written file of each other's. The study's own
``study.json`` carries a fingerprint of the settings every run shares
(:func:`claim_study`): a process with other settings is refused before it writes, so a
folder never mixes two configurations.
"""
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, Optional

from archalign._io import atomic_write_text, create_text

__all__ = ["CLAIM_FILE", "Claim", "ClaimLost", "HEARTBEAT", "STALE_AFTER", "check_held",
           "claim_run", "claim_study", "claimant", "in_progress", "is_stale"]

CLAIM_FILE = "claim.json"
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


def claimant(path: Path) -> Optional[dict]:
    """Who holds the claim at ``path`` (host, pid, started), or None when there is none
    or it cannot be read (a damaged one ages out)."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def is_stale(path: Path, *, stale_after: float = STALE_AFTER, now: Optional[float] = None
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

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def claim_run(run_dir: Path, *, stale_after: float = STALE_AFTER,
              heartbeat: float = HEARTBEAT) -> Optional[Claim]:
    """Claim ``run_dir`` for this process: a :class:`Claim`, or None when another live
    process holds it. A stale claim is taken over."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM_FILE
    token = uuid.uuid4().hex
    record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": token,
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    for _ in range(2):  # once as found, once after taking a stale claim over
        if create_text(path, record):  # exclusive, and never seen half-written
            return Claim(path, token, heartbeat)
        if not is_stale(path, stale_after=stale_after):
            return None
        aside = path.with_name(f"{CLAIM_FILE}.stale-{token}")
        try:
            os.rename(path, aside)  # atomic: one of several contenders wins
        except FileNotFoundError:
            return None  # another process took it over first
        aside.unlink()
    return None


def in_progress(out_dir) -> Dict[str, str]:
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


def claim_study(path: Path, record: dict, fingerprint: str) -> None:
    """Make ``path`` (``study.json``) name this study's settings, or refuse.

    The first process creates it exclusively (a hard link of a complete temp file, so
    no reader sees half of it); a later one with the same ``fingerprint`` (the settings
    every run shares) cooperates and rewrites it; one with another is refused with a
    ``ValueError`` before it writes anything. A ``study.json`` without a fingerprint (an
    older release's) is taken over."""
    text = json.dumps({**record, "fingerprint": fingerprint}, indent=2)
    if create_text(path, text):
        return
    try:
        theirs = json.loads(path.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        theirs = None  # damaged or an older release's: ours replaces it
    if theirs is not None and theirs != fingerprint:
        raise ValueError(f"{path.parent} holds a study with other settings (study.json); "
                         f"give this one another --out, or rerun that study's command to "
                         f"add runs to it")
    atomic_write_text(path, text)
