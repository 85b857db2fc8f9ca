"""Tests for the NeuRN study (neurn.models / neurn.study / neurn.results / cli).

Tiny budgets: timm's ``test_resnet`` (a few thousand parameters), a handful of steps,
a few dozen images, so the whole file runs in well under a minute on 2 cores.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from neurn.cli import main
from neurn.models import build_model, parse_variant, plan_model
from neurn.study import Study, engine
from neurn.study import train as train_module

TINY = "test_resnet"
TARGETS = ["optdigits", "usps-gen"]


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neurn-study-cache")


def tiny_study(out_dir, cache, **overrides) -> Study:
    kwargs = dict(source="mnist", targets=TARGETS, variants=["baseline", "neurn"],
                  seeds=[0], steps=6, evals=3, batch_size=8, lr=3e-3, device="cpu",
                  out_dir=out_dir, cache_dir=cache, eval_limit=40, train_limit=96,
                  threads=1, progress=False, keep_weights=True)
    kwargs.update(overrides)
    return Study([TINY], **kwargs)


def metrics_of(results):
    return {(r["model"], r["variant"], r["seed"], r["domain"]): (r["top1"], r["loss"])
            for r in results.rows}


def test_digits_at_another_image_size(tmp_path, cache):
    study = tiny_study(tmp_path / "s", cache, img_size=48, variants=["neurn"])
    images, _ = study.load_data()["train"][torch.arange(4)]
    assert images.shape == (4, 3, 48, 48) and images.dtype == torch.uint8
    (run,) = study.run().runs
    assert run["img_size"] == 48 and run["plan"]["input_size"] == 48
    assert run["settings"]["data"]["img_size"] == 48  # part of the settings hash
    default = tiny_study(tmp_path / "d", cache)
    # digit studies at the defaults keep the first release's settings (and hashes)
    assert "data" not in default._settings(default.grid()[0])


# ---------------------------------------------------------------- models and variants
def test_parse_variant():
    assert parse_variant("baseline").kind == "baseline"
    v = parse_variant("neurn:k=5,per=channel")
    assert v.neurn_kwargs == {"kernel_size": 5, "per": "channel"} and v.kernel_size == 5
    assert parse_variant("neurn").kernel_size == 3
    for bad in ("neurom", "neurn:k=4", "neurn:q=1", "baseline:k=3", "neurn:k=x"):
        with pytest.raises(ValueError):
            parse_variant(bad)


def test_vit_is_built_for_32px_with_a_4x4_token_grid():
    plan = plan_model("vit_tiny_patch16_224")
    assert plan.input_size == 32
    assert plan.create_kwargs == {"img_size": 32, "patch_size": 8}
    model, _ = build_model("test_vit", variant="neurn")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_model_too_big_for_32px_is_resized_and_says_so():
    plan = plan_model("inception_v3")
    assert plan.input_size > 32 and "resized" in plan.adaptation


def test_neurn_variant_runs_neurn_on_the_raw_image():
    model, _ = build_model(TINY, variant="neurn:k=5")
    assert model.neurn is not None and model.neurn.kernel_size == 5
    baseline, _ = build_model(TINY)
    assert baseline.neurn is None


def test_nan_loss_is_detected_before_the_step():
    class Nan(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan")) * self.w

    model = Nan()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = [(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))]
    with pytest.raises(engine.NonFiniteLossError):
        engine.train_one_epoch(model, batch, opt, device="cpu")
    assert model.w.item() == 1.0  # no step taken


# ---------------------------------------------------------------- the study
def test_study_end_to_end_writes_every_output(tmp_path, cache):
    results = tiny_study(tmp_path / "s", cache).run()
    out = tmp_path / "s"
    for name in ("results.csv", "results.json", "summary.md", "results.png",
                 "learning_curves.png", "study.json"):
        assert (out / name).is_file(), name
    assert not results.errors
    assert len(results.rows) == 2 * (1 + len(TARGETS))  # variants x (source + targets)
    assert {r["domain"] for r in results.rows} == {"mnist", *TARGETS}
    table = (out / "summary.md").read_text()
    assert "neurn - baseline" in table and "targets (mean)" in table and "usps-gen*" in table
    counts = json.loads((out / "data.json").read_text())["counts"]
    assert results.runs[0]["counts"] == counts
    assert f"Images: source mnist {counts['mnist']['train']:,} train" in table
    data = json.loads((out / "results.json").read_text())
    assert data["rows"] and data["summary"]
    for run_dir in (out / "runs").iterdir():
        assert (run_dir / "result.json").is_file() and (run_dir / "best.pt").is_file()
        assert not (run_dir / "checkpoint.pt").exists()
        torch.load(run_dir / "best.pt", weights_only=True)


def test_same_seed_same_numbers(tmp_path, cache):
    a = tiny_study(tmp_path / "a", cache, variants=["neurn"]).run()
    b = tiny_study(tmp_path / "b", cache, variants=["neurn"]).run()
    assert metrics_of(a) == metrics_of(b)
    assert a.runs[0]["history"] == b.runs[0]["history"] or all(
        x["val_top1"] == y["val_top1"] and x["train_loss"] == y["train_loss"]
        for x, y in zip(a.runs[0]["history"], b.runs[0]["history"]))


def test_selected_checkpoint_is_the_best_on_source_validation(tmp_path, cache):
    s = tiny_study(tmp_path / "s", cache, variants=["baseline"], steps=8, evals=4)
    run = s.run().runs[0]
    vals = [h["val_top1"] for h in run["history"]]
    assert run["best_epoch"] == vals.index(max(vals)) + 1
    assert run["val_top1"] == max(vals)
    # the saved weights really score that on validation
    model, _ = build_model(TINY)
    model.load_state_dict(torch.load(tmp_path / "s" / "runs" / "test_resnet__baseline__seed0"
                                     / "best.pt", weights_only=True))
    val = engine.evaluate(model, s._eval_loader(s.load_data()["val"]), device="cpu")
    assert val["top1"] == pytest.approx(max(vals))


def test_resume_after_interrupt_recomputes_nothing_finished(tmp_path, cache, monkeypatch):
    reference = tiny_study(tmp_path / "ref", cache).run()
    real = train_module.train_one_epoch
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # run 2 (neurn), its 2nd epoch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        tiny_study(tmp_path / "s", cache).run()
    runs = tmp_path / "s" / "runs"
    assert (runs / "test_resnet__baseline__seed0" / "result.json").is_file()
    assert (runs / "test_resnet__neurn__seed0" / "checkpoint.pt").is_file()
    assert (tmp_path / "s" / "results.csv").is_file()  # finished runs are tabulated

    calls.clear()
    monkeypatch.setattr(train_module, "train_one_epoch", lambda *a, **k: (
        calls.append(1), real(*a, **k))[1])
    resumed = tiny_study(tmp_path / "s", cache).run()
    assert len(calls) == 2  # only epochs 2 and 3 of the interrupted run
    assert metrics_of(resumed) == metrics_of(reference)
    calls.clear()
    tiny_study(tmp_path / "s", cache).run()
    assert calls == []  # everything finished: nothing recomputed


def test_other_settings_in_the_same_folder_are_refused(tmp_path, cache):
    tiny_study(tmp_path / "s", cache, variants=["baseline"]).run()
    with pytest.raises(ValueError, match="other settings"):
        tiny_study(tmp_path / "s", cache, variants=["baseline"], lr=1e-2).run()


def test_nan_run_is_recorded_and_the_study_goes_on(tmp_path, cache, monkeypatch):
    real = train_module.train_one_epoch

    def failing(model, *args, **kwargs):
        if model.neurn is not None:
            raise engine.NonFiniteLossError(3, float("nan"))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", failing)
    results = tiny_study(tmp_path / "s", cache).run()
    bad = [r for r in results.runs if r["status"] == "error"]
    assert len(bad) == 1 and "non-finite" in bad[0]["error"] and bad[0]["variant"] == "neurn"
    assert "Failed runs" in results.markdown
    assert any(r["status"] == "ok" for r in results.runs)


# ---------------------------------------------------------------- bad inputs
@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(train_module, "train_one_epoch", refuse)


def test_unknown_model(tmp_path, cache, no_training):
    with pytest.raises(ValueError, match="resnet18"):
        Study(["resnet81"], out_dir=tmp_path, cache_dir=cache)


def test_unknown_domain(tmp_path, cache, no_training):
    with pytest.raises(KeyError, match="svhn-gen"):
        Study([TINY], targets=["svhn-gne"], out_dir=tmp_path, cache_dir=cache)
    with pytest.raises(ValueError, match="target domain"):
        Study([TINY], source="optdigits", out_dir=tmp_path, cache_dir=cache)
    with pytest.raises(ValueError, match="data_dir"):
        Study([TINY], targets=["svhn"], out_dir=tmp_path, cache_dir=cache)


def test_missing_data_dir_and_files(tmp_path, cache, no_training):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        Study([TINY], data_dir=tmp_path / "nope", out_dir=tmp_path, cache_dir=cache)
    empty = tmp_path / "empty"
    empty.mkdir()
    s = Study([TINY], data_dir=empty, out_dir=tmp_path / "o", cache_dir=cache, progress=False)
    with pytest.raises(FileNotFoundError, match="MNIST.*not found"):
        s.run()


def test_wrong_shortlist_file(tmp_path, cache, no_training):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": ["resnet18"]}))
    with pytest.raises(ValueError, match="not a shortlist"):
        Study(str(bad), out_dir=tmp_path, cache_dir=cache)
    with pytest.raises(FileNotFoundError, match="no such shortlist"):
        Study(str(tmp_path / "missing.json"), out_dir=tmp_path, cache_dir=cache)


def test_bad_budget(tmp_path, cache, no_training):
    with pytest.raises(ValueError, match="not both"):
        Study([TINY], epochs=1, steps=2, out_dir=tmp_path, cache_dir=cache)
    with pytest.raises(ValueError, match="batch_size"):
        Study([TINY], batch_size=0, out_dir=tmp_path, cache_dir=cache)


# ---------------------------------------------------------------- CLI
def test_cli_runs_a_shortlist(tmp_path, cache, capsys):
    from archalign import Shortlist

    path = Shortlist([TINY], "medoids").save(tmp_path / "shortlist.json")
    rc = main(["run", str(path), "--targets", "optdigits", "--steps", "2", "--evals", "1",
               "-b", "8", "--eval-limit", "16", "--train-limit", "32", "--device", "cpu",
               "--threads", "1", "--cache-dir", str(cache), "--out", str(tmp_path / "o"),
               "--no-progress", "--no-weights"])
    assert rc == 0
    assert "neurn - baseline" in capsys.readouterr().out
    assert (tmp_path / "o" / "results.csv").is_file()
    assert main(["table", str(tmp_path / "o")]) == 0


def test_cli_bad_input_is_one_line_and_status_2(tmp_path, capsys, no_training):
    assert main(["run", "resnet81", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown timm model 'resnet81'" in err and "Traceback" not in err
