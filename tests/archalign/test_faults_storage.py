"""Fault injection into stored results: blocks dirs, the trace cache, token files.

Every damaged file must end in a verified recompute equal to the undamaged result, or
in a one-line refusal; nothing damaged may be read as a (different) result.
"""
from __future__ import annotations
import hashlib
import json
import multiprocessing as mp
import time

import numpy as np
import pytest

from archalign import pairwise
from archalign.alignment.blocked import blocked_pairwise, plan_blocks
from archalign.tracing.calls import GRANULARITIES, Trace
from archalign.tracing.token_cache import load_token_records, token_path

N_FLIPS = 200


def flip_bit(data: bytes, rng) -> bytes:
    k = int(rng.integers(len(data) * 8))
    out = bytearray(data)
    out[k // 8] ^= 1 << (k % 8)
    return bytes(out)


def one_line(e: BaseException) -> str:
    text = str(e)
    assert text and "\n" not in text
    return text


# --------------------------------------------------------------------- blocks dirs
SEQS = [np.random.default_rng(0).integers(0, 6, k) for k in
        np.random.default_rng(1).integers(0, 40, 45)]
EXPECTED = pairwise(SEQS)
N_BLOCKS = len(plan_blocks(len(SEQS), 16))


def run(out, **kwargs):
    redone = []
    result = blocked_pairwise(SEQS, block=16, out=out, progress=False,
                              on_block=redone.append, **kwargs)
    np.testing.assert_array_equal(result, EXPECTED)
    return redone


@pytest.fixture
def blocks_dir(tmp_path):
    assert len(run(tmp_path)) == N_BLOCKS
    return tmp_path


def test_lower_half_is_rebuilt_from_checked_blocks(blocks_dir):
    scores = np.load(blocks_dir / "scores.npy", mmap_mode="r+")
    scores[40, 3] += 7  # mirrored from block 0:16 x 32:45, which is intact
    scores.flush()
    del scores
    assert run(blocks_dir) == []
    np.testing.assert_array_equal(np.load(blocks_dir / "scores.npy"), EXPECTED)


def truncate_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path):
    path.write_bytes(b"")


def garble_header(path):
    data = bytearray(path.read_bytes())
    data[10:40] = b"#" * 30
    path.write_bytes(bytes(data))


def other_dtype(path):
    np.save(path, EXPECTED.astype(np.float32))


def too_long(path):
    path.write_bytes(path.read_bytes() + b"\0" * 8)


@pytest.mark.parametrize("damage", [truncate_half, empty, garble_header, other_dtype, too_long])
def test_damaged_matrix_file_is_made_anew(blocks_dir, damage):
    damage(blocks_dir / "scores.npy")
    assert len(run(blocks_dir)) == N_BLOCKS
    assert run(blocks_dir) == []  # and the rebuilt directory resumes as usual


def flip_fingerprint(path):
    state = json.loads(path.read_text())
    state["fingerprint"] = "0" + state["fingerprint"][1:]
    path.write_text(json.dumps(state))


@pytest.mark.parametrize("damage", [truncate_half, empty, flip_fingerprint,
                                    lambda p: p.write_text('{"done": []}'),
                                    lambda p: p.write_text("[1, 2]")])
def test_damaged_state_file_means_recompute(blocks_dir, damage):
    damage(blocks_dir / "blocks.json")
    assert len(run(blocks_dir)) == N_BLOCKS


def test_random_flips_in_state_file_recompute_or_resume(blocks_dir):
    good = (blocks_dir / "blocks.json").read_bytes()
    rng = np.random.default_rng(5)
    for _ in range(20):
        (blocks_dir / "blocks.json").write_bytes(flip_bit(good, rng))
        assert len(run(blocks_dir)) in (0, N_BLOCKS)  # never a wrong matrix (run checks)


def test_block_changed_during_the_run_is_refused_then_recomputed(tmp_path):
    def tamper(box):
        if box == (16, 32, 16, 32):  # the first block is finished by now
            scores = np.load(tmp_path / "scores.npy", mmap_mode="r+")
            scores[1, 2] += 1
            scores.flush()

    with pytest.raises(ValueError, match="changed while") as e:
        blocked_pairwise(SEQS, block=16, out=tmp_path, progress=False, on_block=tamper)
    assert "scores.npy" in one_line(e.value)
    assert run(tmp_path) == [(0, 16, 0, 16)]


def test_unusable_directory_is_refused_in_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot keep blocks") as e:
        run(tmp_path / "file")
    assert str(tmp_path / "file") in one_line(e.value)
    (tmp_path / "dir" / "scores.npy").mkdir(parents=True)
    with pytest.raises(ValueError, match="cannot keep blocks") as e:
        run(tmp_path / "dir")
    assert "scores.npy" in one_line(e.value)


def test_unreachable_scheduler_fails_fast_in_one_line():
    pytest.importorskip("dask.distributed")
    start = time.monotonic()
    with pytest.raises(ValueError, match="tcp://127.0.0.1:9") as e:
        blocked_pairwise(SEQS[:3], backend="dask", client="tcp://127.0.0.1:9",
                         progress=False)
    assert time.monotonic() - start < 5
    one_line(e.value)


# --------------------------------------------------------------------- trace cache
SIZE = (3, 8, 8)
TINY = "archalign_test_tiny"


def archalign_test_tiny(pretrained=False, **kwargs):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


@pytest.fixture(scope="module")
def tiny_model():
    pytest.importorskip("timm")
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("a test model reaches the workers only through fork")
    from timm.models import _registry

    _registry.register_model(archalign_test_tiny)
    yield TINY
    _registry._clear_model_entries(TINY)
    _registry._model_entrypoints.pop(TINY, None)


@pytest.fixture
def cached(tiny_model, tmp_path):
    """(cache dir, cache file, the trace) of the tiny model, traced into a fresh cache."""
    from archalign.tracing.zoo import trace_many
    from archalign.tracing.zoo_cache import cache_path

    r = trace_many([TINY], cache_dir=tmp_path, input_size=SIZE, n_jobs=1, progress=False)
    assert r.computed == [TINY]
    return tmp_path, cache_path(TINY, input_size=SIZE, cache_dir=tmp_path), r.traces[TINY]


def retrace(cache):
    from archalign.tracing.zoo import trace_many

    return trace_many([TINY], cache_dir=cache, input_size=SIZE, n_jobs=1, progress=False)


def same(a: Trace, b: Trace) -> bool:
    return a.to_dict() == b.to_dict()


def edited(text, edit, redigest=False):
    """The entry with ``edit`` applied to its dict; its digest kept (what a damaged or
    hand-edited file looks like) or made anew (what a wrong writer would produce)."""
    d = json.loads(text)
    digest = d.pop("sha256")
    edit(d)
    body = json.dumps(d, separators=(",", ":"))
    if redigest:
        digest = hashlib.sha256(body.encode()).hexdigest()
    return f'{body[:-1]},"sha256":"{digest}"}}'


def rename_op(d):
    d["calls"][0][1] = "Conv3d"


def empty_calls(d):
    d["calls"] = []


def short_call(d):
    d["calls"][1] = ["module", "BatchNorm2d"]


def string_input(d):
    d["calls"][2][4] = ["0"]


def no_digest(text):  # as schema-1 entries were written
    return text[:text.rindex(',"sha256":')] + "}"


@pytest.mark.parametrize("damage", [
    lambda t: edited(t, rename_op), lambda t: edited(t, empty_calls),
    lambda t: edited(t, short_call), lambda t: edited(t, short_call, redigest=True),
    lambda t: edited(t, string_input, redigest=True), no_digest, lambda t: t[:-10],
], ids=["renamed-op", "emptied-calls", "malformed-call", "malformed-call-redigested",
        "bad-input-type-redigested", "no-digest", "truncated"])
def test_damaged_cache_entry_is_retraced_and_replaced(cached, damage):
    cache, path, original = cached
    path.write_text(damage(path.read_text()))
    r = retrace(cache)
    assert r.computed == [TINY] and r.cached == [] and r.failures == {}
    assert same(r.traces[TINY], original)
    assert same(Trace.load(path), original)  # the bad entry was overwritten
    assert retrace(cache).cached == [TINY]


def test_random_bit_flips_are_all_caught(cached):
    from archalign.tracing.zoo_cache import read_cached

    cache, path, original = cached
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    caught = 0
    for _ in range(N_FLIPS):
        path.write_bytes(flip_bit(good, rng))
        d = read_cached(path, TINY)
        if d is None:
            caught += 1
            with pytest.raises(ValueError):
                Trace.load(path)
        else:  # would have to be harmless: the same trace
            assert same(Trace.from_dict(d), original)
    assert caught == N_FLIPS  # the digest covers every byte
    path.write_bytes(flip_bit(good, rng))
    r = retrace(cache)
    assert r.computed == [TINY] and same(r.traces[TINY], original)


def test_trace_round_trip_still_verifies(cached):
    _, path, original = cached
    assert same(Trace.from_json(original.to_json()), original)
    assert same(Trace.from_dict(original.to_dict()), original)


# --------------------------------------------------------------------- token files
def test_flips_in_trace_or_token_file_never_change_tokens(cached):
    _, path, original = cached
    expected = {g: original.tokens(g) for g in GRANULARITIES}
    records, missing = load_token_records({TINY: path})
    assert missing == []
    side = token_path(path)
    good_trace, good_side = path.read_bytes(), side.read_bytes()
    rng = np.random.default_rng(1)
    for _ in range(N_FLIPS // 2):
        side.write_bytes(flip_bit(good_side, rng))  # rebuilt from the trace
        records, missing = load_token_records({TINY: path})
        assert missing == [] and {g: records[TINY].tokens(g) for g in GRANULARITIES} == expected
        path.write_bytes(flip_bit(good_trace, rng))  # the trace must be traced again
        side.write_bytes(good_side)
        records, missing = load_token_records({TINY: path})
        assert missing == [TINY] and records == {}
        path.write_bytes(good_trace)
