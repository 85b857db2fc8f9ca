"""The atomic writer: whole files or the old version, with the umask's mode."""
from __future__ import annotations
import os
import stat

import pytest

from archalign.utils.io import atomic_savefig, atomic_write_bytes, atomic_write_text


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="file modes are POSIX")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "s.npz"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]


def test_figures_are_written_atomically_with_their_format(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = tmp_path / "plot.png"
    fig = plt.figure()
    atomic_savefig(fig, path)
    good = path.read_bytes()
    assert good.startswith(b"\x89PNG")  # the temp file's suffix told matplotlib the format

    def disk_full(*args, **kwargs):
        open(args[0], "wb").write(b"\x89PN")  # half a file, then the error
        raise OSError(28, "No space left on device")

    fig.savefig = disk_full
    with pytest.raises(OSError, match="No space"):
        atomic_savefig(fig, path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["plot.png"]
    plt.close(fig)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="file modes are POSIX")
def test_study_and_cache_writers_share_the_umask_mode(tmp_path):
    # checkpoints and the neurn data cache go through the same writer
    import numpy as np
    import torch

    from neurn.data._cache import _save_atomic
    from neurn.study.checkpoints import atomic_torch_save as _atomic_torch_save

    old = os.umask(0o022)
    try:
        _atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "best.pt")
        _save_atomic(tmp_path / "d.npz", {"a": np.zeros(2)})
    finally:
        os.umask(old)
    for name in ("best.pt", "d.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
