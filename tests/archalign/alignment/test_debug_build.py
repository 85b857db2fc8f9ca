"""The debug build of the compiled cores (setup.py: ``ARCHALIGN_CYTHON_DEBUG=1``).

There an index out of bounds raises IndexError; the release build checks nothing and
reads on. Each malformed call below bypasses archalign.alignment.core's validation and
overruns by one element into memory that belongs to a larger array, so that the release
build reads valid memory and returns.

Building the debug extension is too slow for the suite: ``.ci/run`` builds it once in a
copy of the sources and runs the aligner and roller tests there, this file included,
with ``ARCHALIGN_CYTHON_DEBUG=1`` set. Here the debug tests run where the imported
extension is the debug build and skip otherwise; the release test does the opposite.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import archalign
from archalign.alignment import _nw
from archalign.tracing import _roll

WANT_DEBUG = os.environ.get("ARCHALIGN_CYTHON_DEBUG", "") not in ("", "0")
DEBUG_ONLY = pytest.mark.skipif(
    not _nw.DEBUG_BUILD, reason="release build, which checks no bounds (.ci/run builds the "
    "debug one, ARCHALIGN_CYTHON_DEBUG=1, and runs these tests on it)")
RELEASE_ONLY = pytest.mark.skipif(_nw.DEBUG_BUILD, reason="debug build: bounds are checked")


def lanes_offsets_past_tokens():
    """pairwise_lanes, its last sequence claiming two tokens more than the buffer holds
    (the buffer's spare element and one past it)."""
    calls = []
    real = _nw.pairwise_lanes
    _nw.pairwise_lanes = lambda *args: calls.append(list(args)) or real(*args)
    try:
        rng = np.random.default_rng(0)
        seqs = [rng.integers(0, 5, 300).astype(np.int32) for _ in range(40)]
        archalign.pairwise(seqs, archalign.Scoring(match=1, mismatch=-1, gap=-1), n_jobs=1)
    finally:
        _nw.pairwise_lanes = real
    (args,) = calls
    tok, off = args[3], args[4].copy()
    assert args[0] is tok and args[1] is args[4], "expected the symmetric call"
    room = np.zeros(len(tok) + 64, np.int32)
    room[:len(tok)] = tok
    tok = room[:len(tok)]
    off[-1] = len(tok) + 1
    args[0], args[1], args[3], args[4] = tok, off, tok, off
    real(*args)


def scalar_pair_past_offsets():
    """pairwise_scalar asked for target 2 of two: its offsets are read one past the end."""
    tok = np.arange(11, dtype=np.int32)
    off = np.array([0, 5, 10, 10], np.int64)[:3]
    result = np.zeros(1)
    _nw.pairwise_scalar(tok, off, tok, off, np.array([[0, 2]], np.int64), np.zeros((1, 1)),
                        1.0, -1.0, -1.0, -1.0, True, -np.inf, 1.0, result, 1)


MALFORMED = [lanes_offsets_past_tokens, scalar_pair_past_offsets]


def test_debug_build_flag():
    assert type(_nw.DEBUG_BUILD) is bool and _roll.DEBUG_BUILD is _nw.DEBUG_BUILD
    assert _nw.DEBUG_BUILD is WANT_DEBUG, (
        f"the imported extension ({_nw.__file__}) is the {'debug' if _nw.DEBUG_BUILD else 'release'}"
        f" build but ARCHALIGN_CYTHON_DEBUG is {'set' if WANT_DEBUG else 'not set'}: rebuild with "
        "`python setup.py build_ext --inplace`, with or without the variable")


@RELEASE_ONLY
@pytest.mark.parametrize("call", MALFORMED, ids=lambda f: f.__name__)
def test_release_build_does_not_check_bounds(call):
    # In a subprocess: unchecked code may crash as well as return.
    root = Path(archalign.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root),
                                                                     os.environ.get("PYTHONPATH")]))}
    script = textwrap.dedent(f"""
        import runpy
        runpy.run_path({str(Path(__file__).resolve())!r})[{call.__name__!r}]()
        print("returned")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert "IndexError" not in done.stderr, done.stderr
    print(f"{call.__name__}: exit {done.returncode}, {done.stdout.strip()}")


@DEBUG_ONLY
@pytest.mark.parametrize("call", MALFORMED, ids=lambda f: f.__name__)
def test_debug_build_raises_index_error(call):
    with pytest.raises(IndexError):
        call()
