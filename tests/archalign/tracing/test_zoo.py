"""Zoo tracing: cache reuse and repair, worker failures and timeouts, the CLI."""
from __future__ import annotations
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

import pytest
import timm
from timm.models import _registry

from archalign.cli import main
from archalign.tracing.api import trace
from archalign.tracing.calls import Trace, UnknownModelError
from archalign.tracing.zoo import trace_many
from archalign.tracing.zoo_cache import cache_path, expand_names

pytestmark = pytest.mark.skipif("fork" not in mp.get_all_start_methods(),
                                reason="broken test models reach workers only through fork")


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    # Nothing a test does may touch the user's real cache directory.
    monkeypatch.setenv("ARCHALIGN_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """resnet18 and efficientnet_b0 traced once into a fresh cache."""
    cache = tmp_path_factory.mktemp("cache")
    result = trace_many(["resnet18", "efficientnet_b0"], cache_dir=cache, n_jobs=2, progress=False)
    return cache, result


def test_cold_run_traces_in_workers_and_writes_the_cache(warm_cache):
    cache, r = warm_cache
    assert r.computed and sorted(r.computed) == ["efficientnet_b0", "resnet18"]
    assert r.failures == {} and list(r.paths) == ["resnet18", "efficientnet_b0"]
    assert r.routes == {"resnet18": "meta", "efficientnet_b0": "meta"}
    assert r.traces["resnet18"].tokens("full") == trace("resnet18").tokens("full")
    path = cache_path("resnet18", cache_dir=cache)
    assert r.paths["resnet18"] == path and path.parent.name.startswith(f"timm-{timm.__version__}")
    assert "_fused1_" in path.parent.name and path.name == "resnet18@default.json"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]


def test_second_run_reads_the_cache(warm_cache):
    cache, _ = warm_cache
    mtime = cache_path("resnet18", cache_dir=cache).stat().st_mtime_ns
    r = trace_many(["resnet18", "efficientnet_b0"], cache_dir=cache, progress=False)
    assert sorted(r.cached) == ["efficientnet_b0", "resnet18"] and r.computed == []
    assert cache_path("resnet18", cache_dir=cache).stat().st_mtime_ns == mtime
    assert r.traces["efficientnet_b0"].counts()["add"] == 9


def test_warm_run_imports_neither_torch_nor_timm(warm_cache):
    cache, _ = warm_cache
    code = ("import sys; from archalign.tracing.zoo import trace_many; "
            f"r = trace_many(['resnet18', 'efficientnet_*'], cache_dir={str(cache)!r}, "
            "progress=False, load=False); "
            "assert 'resnet18' in r.cached, r.summary(); "
            "print('torch' in sys.modules, 'timm' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    # efficientnet_* names many uncached models; only resnet18 is asked for by name
    code = code.replace("'efficientnet_*'", "'efficientnet_b0'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_corrupt_or_stale_cache_file_is_recomputed(warm_cache, tmp_path):
    cache, _ = warm_cache
    path = cache_path("resnet18", cache_dir=cache)
    good = path.read_text()
    for bad in (good[: len(good) // 2], json.dumps({**json.loads(good), "schema": 0}), "[]"):
        path.write_text(bad)
        r = trace_many(["resnet18", "efficientnet_b0"], cache_dir=cache, progress=False)
        assert r.computed == ["resnet18"] and r.cached == ["efficientnet_b0"]
        assert Trace.load(path).tokens() == r.traces["resnet18"].tokens()


def test_names_and_patterns():
    assert expand_names("resnet18") == ["resnet18"]
    names = expand_names(["resnet1?t", "resnet18", "resnet14t", "vit_tiny_patch16_224"])
    assert names == ["resnet10t", "resnet14t", "resnet18", "vit_tiny_patch16_224"]
    assert expand_names("*") == timm.list_models()
    with pytest.raises(UnknownModelError, match="resnet18"):
        expand_names(["resnet18", "resnett18"])
    with pytest.raises(ValueError, match="matches no timm model"):
        expand_names("nosuchfamily*")
    with pytest.raises(ValueError, match="no model names"):
        expand_names([])


# ------------------------------------------------------------ failures and timeouts
def archalign_test_raises(pretrained=False, **kwargs):
    raise RuntimeError("this test model always fails to build")


def archalign_test_hangs(pretrained=False, **kwargs):
    time.sleep(600)


def archalign_test_dies(pretrained=False, **kwargs):
    os._exit(3)  # as a segfault or the OOM killer would end the worker


@pytest.fixture
def broken_models():
    fns = [archalign_test_raises, archalign_test_hangs, archalign_test_dies]
    for fn in fns:
        _registry.register_model(fn)
    yield [fn.__name__ for fn in fns]
    for fn in fns:
        _registry._clear_model_entries(fn.__name__)
        _registry._model_entrypoints.pop(fn.__name__, None)


def test_one_model_failing_hanging_or_dying_cannot_take_the_run_down(broken_models, tmp_path):
    names = broken_models + ["resnet18"]
    start = time.monotonic()
    r = trace_many(names, cache_dir=tmp_path, n_jobs=2, timeout=5, progress=False)
    assert time.monotonic() - start < 40
    assert list(r.paths) == ["resnet18"]
    assert "always fails to build" in r.failures["archalign_test_raises"]
    assert r.failures["archalign_test_hangs"] == "timed out after 5 s"
    assert r.failures["archalign_test_dies"] == "worker process died (exit code 3)"
    r.write_failures(tmp_path / "failures.json")
    assert json.loads((tmp_path / "failures.json").read_text()) == r.failures
    assert "1 traced" in r.summary() and "3 failed" in r.summary()


def test_workers_are_recycled(tmp_path, monkeypatch):
    from archalign.tracing import zoo

    monkeypatch.setattr(zoo, "MAX_TASKS_PER_WORKER", 1)  # a fresh worker for every model
    r = trace_many(["resnet10t", "resnet14t", "resnet18"], cache_dir=tmp_path, n_jobs=1,
                   progress=False)
    assert r.failures == {} and len(r.computed) == 3


# ---------------------------------------------------------------------------- CLI
def test_cli_trace_writes_outputs_and_reports(warm_cache, tmp_path, capsys):
    cache, _ = warm_cache
    out = tmp_path / "out"
    assert main(["trace", "resnet18", "efficientnet_b0", "--cache-dir", str(cache),
                 "--out", str(out), "--no-progress"]) == 0
    assert Trace.load(out / "resnet18.json").counts()["Conv2d"] == 20
    assert json.loads((out / "failures.json").read_text()) == {}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["traced"] == 2 and summary["models"]["resnet18"]["route"] == "meta"
    assert "2 models: 2 traced (2 from cache" in capsys.readouterr().out


def test_cli_errors(capsys, tmp_path):
    assert main(["trace", "resnt18", "--cache-dir", str(tmp_path)]) == 2
    assert "closest timm names: resnet18" in capsys.readouterr().err
    assert main(["trace", "resnet18", "--all"]) == 2
    assert main(["trace"]) == 2
    assert main([]) == 2
    with pytest.raises(SystemExit):
        main(["trace", "--help"])
    assert "--cache-dir" in capsys.readouterr().out


def test_cli_reports_failures_with_exit_status_1(broken_models, tmp_path, capsys):
    assert main(["trace", "archalign_test_raises", "--cache-dir", str(tmp_path),
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    failures = json.loads((tmp_path / "o" / "failures.json").read_text())
    assert list(failures) == ["archalign_test_raises"]
    assert "archalign_test_raises: TraceError" in capsys.readouterr().out
