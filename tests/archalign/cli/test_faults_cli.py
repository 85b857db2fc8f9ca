"""Fault injection for the archalign command line and the matrix file: damaged inputs,
OS errors and nonsense values end in one line on stderr and exit status 2, and leave
earlier good outputs as they were."""
from __future__ import annotations
import os

import numpy as np
import pytest

from archalign import Scoring, score
from archalign.cli import main
from archalign.similarity.matrix import MatrixFileError, SimilarityMatrix


@pytest.fixture
def sim(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, 4))
    scores = scores + scores.T
    sm = SimilarityMatrix(["a", "b", "c", "d"], scores, np.eye(4) * 0.5 + 0.5,
                          settings={"granularity": "shape"})
    return sm, sm.save(tmp_path / "sim.npz")


def one_line_refusal(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_saved_matrix_reads_back_verified(sim):
    sm, path = sim
    back = SimilarityMatrix.load(path)
    assert back.labels == sm.labels and np.array_equal(back.scores, sm.scores)
    assert back.settings == sm.settings


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "member flipped",
                                    "member missing", "wrong shape"])
def test_a_damaged_matrix_file_is_one_line(sim, tmp_path, capsys, damage):
    sm, path = sim
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x93NUMPY garbage, not a matrix" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        members = dict(np.load(path, allow_pickle=False))
        if damage == "member flipped":  # rewritten with valid CRCs: only the digest sees it
            members["scores"] = members["scores"].copy()
            members["scores"][1, 2] += 1.0
        elif damage == "member missing":
            del members["values"]
        else:
            members["values"] = members["values"][:3]
            del members["digest"]
        np.savez(path, **members)
    with pytest.raises(MatrixFileError, match="not an archalign matrix file"):
        SimilarityMatrix.load(path)
    assert main(["cluster", str(path), "-n", "2"]) == 2
    err = one_line_refusal(capsys, str(path), "archalign matrix")
    assert "allow_pickle" not in err


def test_a_matrix_from_before_the_digest_still_reads(sim):
    sm, path = sim
    members = dict(np.load(path, allow_pickle=False))
    del members["digest"]
    np.savez_compressed(path, **members)
    assert SimilarityMatrix.load(path).labels == sm.labels


def test_every_flipped_bit_is_caught_or_harmless(sim):
    # zip CRCs, zlib and the stored SHA-256 between them: a flip anywhere in the file
    # is refused, or (padding bits, unused header bytes) reads back the same matrix
    sm, path = sim
    raw = path.read_bytes()
    rng = np.random.default_rng(1)
    caught = 0
    for _ in range(300):
        flipped = bytearray(raw)
        k = int(rng.integers(len(raw)))
        flipped[k] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        try:
            back = SimilarityMatrix.load(path)
        except MatrixFileError:
            caught += 1
            continue
        assert back.labels == sm.labels and back.settings == sm.settings
        assert np.array_equal(back.scores, sm.scores) and np.array_equal(back.values,
                                                                          sm.values)
    assert caught > 200


@pytest.mark.parametrize("where", ["a folder", "parent is a file", "read-only"])
def test_an_unwritable_output_names_the_users_path(sim, tmp_path, capsys, where, request):
    sm, path = sim
    if where == "a folder":
        out = tmp_path / "fig.png"
        out.mkdir()
    elif where == "parent is a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "fig.png"
    else:
        out = request.getfixturevalue("read_only_dir") / "fig.png"
    assert main(["plot", str(path), "--dendrogram", str(out)]) == 2
    err = one_line_refusal(capsys, str(out))
    assert ".tmp-" not in err


def test_a_full_disk_keeps_the_previous_figure(sim, small_disk, capsys):
    sm, path = sim
    out = small_disk / "fig.png"
    out.write_bytes(b"the previous good figure")
    big = SimilarityMatrix([f"m{i}" for i in range(60)], np.eye(60), np.eye(60))
    big_path = big.save(path.parent / "big.npz")
    assert main(["plot", str(big_path), "--heatmap", str(out)]) == 2
    one_line_refusal(capsys, str(out), "No space left", "free some space")
    assert out.read_bytes() == b"the previous good figure"
    assert os.listdir(small_disk) == ["fig.png"]  # no temp file left behind


@pytest.mark.parametrize("argv, needle", [
    (["matrix", "resnet18", "resnet34", "--out", "x.npz", "--block", "0"], "--block: '0'"),
    (["matrix", "resnet18", "resnet34", "--out", "x.npz", "--workers", "0"], "--workers: '0'"),
    (["matrix", "resnet18", "resnet34", "--out", "x.npz", "-j", "0"], "--n-jobs: '0'"),
    (["matrix", "resnet18", "resnet34", "--out", "x.npz", "--jobs", "0"], "--jobs: '0'"),
    (["trace", "resnet18", "--timeout", "-5"], "--timeout: '-5'"),
    (["trace", "resnet18", "--timeout", "nan"], "--timeout: 'nan'"),
    (["matrix", "a", "b", "--out", "x.npz", "--match", "inf"], "--match: 'inf'"),
    (["cluster", "x.npz", "-n", "0"], "--n-clusters: '0'"),
])
def test_nonsense_values_are_refused_at_parse_time(argv, needle, capsys):
    assert main(argv) == 2
    one_line_refusal(capsys, needle, "--help")


def test_block_zero_and_a_negative_timeout_are_refused_by_the_library_too():
    import archalign

    with pytest.raises(ValueError, match="block must be at least 1"):
        archalign.pairwise([[1, 2], [2, 3]], block=0)
    for timeout in (-5, 0, float("nan")):
        with pytest.raises(ValueError, match="timeout must be"):
            archalign.trace_many(["resnet18"], timeout=timeout)


def test_scores_too_large_or_too_fine_for_the_integer_path():
    with pytest.raises(ValueError, match="too large"):
        Scoring(match=1e308, mismatch=-1, gap=-1)
    with pytest.raises(ValueError, match="too large"):
        Scoring(substitution=[[1.0, -1e300], [-1e300, 1.0]], gap=-1)
    tiny = Scoring(match=5e-10, mismatch=-1, gap=-1)  # below 1/1000: the float path
    assert not tiny.integer_path
    assert score([1, 2, 3], [1, 2, 3], tiny) == pytest.approx(1.5e-9)
    assert Scoring(match=0.5, mismatch=-1, gap=-1).integer_path  # halves stay exact


def test_workers_without_dask_names_the_extra(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("dask"):
            raise ImportError("No module named 'dask'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    assert main(["matrix", "resnet18", "resnet34", "--out", "x.npz", "--workers", "2"]) == 2
    one_line_refusal(capsys, "archalign[dask]")


def test_ctrl_c_is_one_line_saying_how_to_resume(monkeypatch, capsys):
    import archalign.tracing.zoo

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(archalign.tracing.zoo, "trace_many", interrupted)
    assert main(["trace", "resnet18"]) == 130
    one_line_refusal(capsys, "interrupted", "resume")


@pytest.mark.parametrize("content, needle", [
    ('{"names": "resnet18", "method": "fps"}', "'names' must be a non-empty list"),
    ('{"names": [], "method": "fps"}', "'names' must be a non-empty list"),
    ('{"names": ["a", 3], "method": "fps"}', "'names' must be a non-empty list"),
    ('{"names": ["a"]}', "'strategy' must be a str"),
    ('["a", "b"]', "not a JSON object"),
    ('{"names": ["a"', "JSONDecodeError"),
    (b"\xff\xfe\x00binary", "UnicodeDecodeError"),
])
def test_a_bad_shortlist_file_is_one_line(tmp_path, content, needle):
    from archalign.similarity.shortlist import Shortlist

    path = tmp_path / "s.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match="is not a shortlist file") as info:
        Shortlist.load(path)
    assert needle in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_damaged_data_cache_entry_is_rebuilt(tmp_path):
    from neurn.data._cache import cached_arrays

    built = []

    def build():
        built.append(1)
        rng = np.random.default_rng(0)
        return {"images": rng.integers(0, 255, (8, 3, 4, 4), dtype=np.uint8),
                "labels": np.arange(8), "origins": np.arange(8)}

    key = {"domain": "d", "seed": 0}
    first = cached_arrays(key, build, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    raw = path.read_bytes()
    rng = np.random.default_rng(2)
    for _ in range(40):  # any flip: caught and rebuilt, or the same arrays
        flipped = bytearray(raw)
        flipped[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        again = cached_arrays(key, build, cache_dir=tmp_path)
        assert all(np.array_equal(again[k], first[k]) for k in first)
    assert len(built) > 20  # most flips hit the arrays; the rest (zip dates, ...) are harmless
