"""Blocked all-pairs: Dask backend, on-disk resume, corrupted blocks."""
from __future__ import annotations
import numpy as np
import pytest

from archalign import Scoring, pairwise
from archalign.alignment.blocked import blocked_pairwise, plan_blocks


def random_seqs(n=70, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 6, int(rng.integers(0, 50))) for _ in range(n)]


def test_plan_covers_upper_triangle_once():
    n, block = 23, 5
    covered = np.zeros((n, n), dtype=int)
    for i0, i1, j0, j1 in plan_blocks(n, block):
        assert j0 >= i0
        covered[i0:i1, j0:j1] += 1
    assert np.array_equal(np.triu(covered) > 0, np.triu(np.ones((n, n))) > 0)
    assert covered.max() == 1


@pytest.mark.parametrize("block", [7, 16, 32, 100])
def test_threads_blocked_equals_pairwise(block):
    seqs = random_seqs()
    s = Scoring(match=2, mismatch=-1, gap_open=-3, gap_extend=-1)
    np.testing.assert_array_equal(blocked_pairwise(seqs, s, block=block, progress=False),
                                  pairwise(seqs, s))


def test_resume_computes_only_missing_blocks(tmp_path):
    seqs = random_seqs()
    expected = pairwise(seqs)
    n_blocks = len(plan_blocks(len(seqs), 16))
    seen = []

    def interrupt_after_three(box):
        seen.append(box)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        blocked_pairwise(seqs, block=16, out=tmp_path, progress=False,
                         on_block=interrupt_after_three)
    rest = []
    result = blocked_pairwise(seqs, block=16, out=tmp_path, progress=False,
                              on_block=rest.append)
    assert len(rest) == n_blocks - 3 and not set(rest) & set(seen)
    np.testing.assert_array_equal(result, expected)
    again = []
    blocked_pairwise(seqs, block=16, out=tmp_path, progress=False, on_block=again.append)
    assert again == []


def test_corrupted_block_is_recomputed(tmp_path):
    seqs = random_seqs()
    expected = pairwise(seqs)
    blocked_pairwise(seqs, block=16, out=tmp_path, progress=False)
    scores = np.load(tmp_path / "scores.npy", mmap_mode="r+")
    scores[20, 40] += 7  # inside block rows 16:32, columns 32:48
    scores.flush()
    del scores
    redone = []
    result = blocked_pairwise(seqs, block=16, out=tmp_path, progress=False,
                              on_block=redone.append)
    assert redone == [(16, 32, 32, 48)]
    np.testing.assert_array_equal(result, expected)


def test_other_job_in_directory_is_refused(tmp_path):
    blocked_pairwise(random_seqs(seed=1), block=16, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="different job"):
        blocked_pairwise(random_seqs(seed=2), block=16, out=tmp_path, progress=False)


def test_asymmetric_scoring_refused():
    S = np.array([[1, 0], [-1, 1]])
    with pytest.raises(ValueError, match="symmetric"):
        blocked_pairwise([[0, 1], [1]], Scoring(substitution=S), progress=False)


def test_dask_backend_equals_threads():
    distributed = pytest.importorskip("dask.distributed")
    seqs = random_seqs(n=90, seed=3)
    s = Scoring.paper()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        got = pairwise(seqs, s, backend="dask", client=client, block=32)
    np.testing.assert_array_equal(got, pairwise(seqs, s))
