"""Fixtures several test files share."""
from __future__ import annotations

import contextlib
import os
import subprocess

import pytest


@contextlib.contextmanager
def _tmpfs(path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 64 KiB tmpfs: writes past that fail with ENOSPC, as on a full
    disk. Needs root (mount); skipped otherwise."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which needs root")
    with _tmpfs(tmp_path / "small", "size=64k") as path:
        yield path


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only folder. Root ignores permission bits, so as root it is a read-only
    tmpfs mount; otherwise a chmod 0555 folder."""
    path = tmp_path / "ro"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        with _tmpfs(path, "ro,size=64k") as p:
            yield p
    else:
        path.mkdir()
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
