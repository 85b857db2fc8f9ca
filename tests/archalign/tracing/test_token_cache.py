"""Token files beside cached traces: equal to the trace's tokens, rebuilt unless verified."""
from __future__ import annotations
import json

import pytest

from archalign.tracing.calls import GRANULARITIES, Call, Trace
from archalign.tracing.token_cache import SCHEMA, load_token_records, token_path


def toy_trace(name, n_blocks=3):
    ops = [("Conv2d", {"in": 3, "out": 8, "k": [3, 3], "s": [1, 1], "g": 1})]
    ops += [("BatchNorm2d", {"c": 8}), ("ReLU", {})] * n_blocks + [("Linear", {"in": 8})]
    calls = [Call(i, "module", op, f"m{i}", params, [i - 1] if i else [], None)
             for i, (op, params) in enumerate(ops)]
    return Trace(name, "meta", calls)


@pytest.fixture
def cache(tmp_path):
    paths = {}
    for name, n in (("a", 2), ("b", 5)):
        paths[name] = tmp_path / f"{name}@default.json"
        toy_trace(name, n).save(paths[name])
    return paths


def check(records, paths):
    for name, path in paths.items():
        trace = Trace.load(path)
        rec = records[name]
        assert (rec.model, rec.route, len(rec)) == (trace.model, trace.route, len(trace))
        for g in GRANULARITIES:
            assert rec.tokens(g) == trace.tokens(g)
            assert rec.tokens(g, rolled=True) == trace.tokens(g, rolled=True)


def test_first_read_writes_token_files_that_later_reads_use(cache):
    records, missing = load_token_records(cache)
    assert missing == []
    check(records, cache)
    side = token_path(cache["a"])
    assert side.exists()
    # A valid token file is used as it is: the trace is not parsed again.
    stamp = side.stat().st_mtime_ns
    again, _ = load_token_records(cache)
    check(again, cache)
    assert side.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("damage", ["flip_id", "truncate", "garbage", "other_schema"])
def test_damaged_token_file_is_rebuilt(cache, damage):
    load_token_records(cache)
    side = token_path(cache["b"])
    outer = json.loads(side.read_text())
    if damage == "flip_id":  # still parses, wrong ids: only the payload digest catches it
        assert "[0,1,2,1,2" in outer["payload"]
        outer["payload"] = outer["payload"].replace("[0,1,2,1,2", "[0,2,1,1,2", 1)
        side.write_text(json.dumps(outer))
    elif damage == "truncate":
        side.write_bytes(side.read_bytes()[:40])
    elif damage == "garbage":
        side.write_bytes(b"\x00\xff" * 10)
    else:
        outer["schema"] = 99
        side.write_text(json.dumps(outer))
    records, missing = load_token_records(cache)
    assert missing == []
    check(records, cache)
    assert json.loads(side.read_text())["schema"] == SCHEMA  # rewritten


def test_retraced_model_makes_its_token_file_stale(cache):
    load_token_records(cache)
    toy_trace("b", 7).save(cache["b"])  # the trace changed after the token file was made
    records, _ = load_token_records(cache)
    assert len(records["b"]) == 1 + 2 * 7 + 1
    check(records, cache)


def test_missing_or_broken_traces_are_reported(cache, tmp_path):
    paths = dict(cache, gone=tmp_path / "gone@default.json", bad=tmp_path / "bad@default.json")
    paths["bad"].write_text('{"schema": 1, "calls": [["module"]]}')
    records, missing = load_token_records(paths)
    assert sorted(missing) == ["bad", "gone"] and sorted(records) == ["a", "b"]
    # a trace of another model under this name is not trusted either
    toy_trace("a").save(tmp_path / "c@default.json")
    _, missing = load_token_records({"c": tmp_path / "c@default.json"})
    assert missing == ["c"]
