"""Tests for the NeuRN study's tables: guard rails, lead lines, error bars, ``neurn compare``.

Run records are built by hand in the shape ``Study.run_one`` writes (one real tiny
study checks that shape), so every number below can be computed by hand.
"""
from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from scipy import stats

from archalign.utils.io import seal_json
from neurn.cli import main
from neurn.results.guards import AT_CHANCE_MARK, UNDERTRAINED_MARK, guard_rails
from neurn.results import (lead_lines, plot_bars, plot_curves, read_run, result_rows, summarize,
                           summary_markdown, write_outputs)

SOURCE = "mnist"


def fake_run(model, variant, seed, val_top1, top1, *, source=SOURCE, status="ok", **extra):
    """A finished run as ``Study.run_one`` records it; ``top1``: {domain: accuracy}."""
    run = {"model": model, "variant": variant,
           "kernel_size": 3 if variant.startswith("neurn") else None, "seed": seed,
           "num_classes": 10, "img_size": 32, "skipped": {}, "status": status,
           "error": None if status == "ok" else "non-finite loss",
           "settings_hash": "0" * 16, "settings": {},
           "plan": {"name": model, "img_size": 32, "input_size": 32, "create_kwargs": {},
                    "adaptation": "native, 32 px input"},
           "device": "cpu", "amp": None, "channels_last": False,
           "history": [{"epoch": 1, "step": 4, "train_loss": 1.0, "train_top1": 50.0,
                        "val_loss": 0.5, "val_top1": val_top1, "lr": 1e-3,
                        "images_per_second": 100.0, "seconds": 1.0}],
           "train_seconds": 1.0, "metrics": {}, "group": None, "init": {"kind": "scratch"}}
    run["counts"] = {source: {"train": 400, "val": 100, "test": 100},
                     **{d: 100 for d in top1 if d != source}}
    if status == "ok":
        run.update(best_epoch=1, val_top1=val_top1, val_loss=0.5, eval_seconds=0.1)
        run["metrics"] = {d: {"role": "source" if d == source else "target",
                              "generated": d.endswith("-gen"), "top1": t, "loss": 1.0,
                              "n": 100} for d, t in top1.items()}
    run.update(extra)
    return run


def tables(runs):
    rows = result_rows(runs)
    summary = summarize(rows)
    return rows, summary, summary_markdown(rows, summary, runs)


def table_row(markdown, model, variant):
    return next(line for line in markdown.splitlines()
                if line.startswith(f"| {model} | {variant} |"))


GOOD = {"mnist": 98.0, "svhn-gen": 30.0, "usps-gen": 60.0}


# ---------------------------------------------------------------- the real record shape
@pytest.fixture(scope="module")
def real_study(tmp_path_factory):
    """One tiny real study through the CLI: its folder and what it printed on stderr."""
    out = tmp_path_factory.mktemp("real")
    with contextlib.redirect_stderr(io.StringIO()) as err, \
            contextlib.redirect_stdout(io.StringIO()):
        rc = main(["run", "test_resnet", "--targets", "optdigits", "--steps", "2", "--evals",
                   "1", "-b", "8", "--eval-limit", "16", "--train-limit", "32", "--device",
                   "cpu", "--threads", "1", "--cache-dir", str(out / "cache"), "--out",
                   str(out / "study"), "--no-progress", "--no-weights"])
    assert rc == 0
    return out / "study", err.getvalue()


def test_fake_records_have_the_shape_the_study_writes(real_study):
    folder, _ = real_study
    real = read_run(next((folder / "runs").glob("*/result.json")))
    fake = fake_run("m", "baseline", 0, 95.0, GOOD)
    assert set(fake) == set(real)
    assert set(fake["plan"]) == set(real["plan"]) and set(fake["history"][0]) == set(
        real["history"][0])
    assert set(fake["metrics"]["mnist"]) == set(real["metrics"]["mnist"])


def test_neurn_run_repeats_the_flags_on_stderr(real_study):
    folder, err = real_study  # 2 steps on 32 images: far below 90% on validation
    assert "neurn run: warning: undertrained" in err and "--steps" in err
    assert UNDERTRAINED_MARK in (folder / "summary.md").read_text()


# ---------------------------------------------------------------- guard rails
def test_undertrained_run_is_flagged_and_a_good_one_is_not():
    runs = [fake_run("resnet18", "baseline", 0, 97.0, GOOD),
            fake_run("resnet18", "neurn", 0, 62.5, GOOD)]
    rows, summary, markdown = tables(runs)
    flags = guard_rails(rows, summary)
    assert [(r["variant"], r["seed"]) for r in flags.undertrained] == [("neurn", 0)]
    assert table_row(markdown, "resnet18", f"neurn {UNDERTRAINED_MARK}")
    assert UNDERTRAINED_MARK not in table_row(markdown, "resnet18", "baseline")
    legend = next(line for line in markdown.splitlines()
                  if line.startswith(UNDERTRAINED_MARK))
    assert "resnet18 neurn seed 0 (62.5%)" in legend and "baseline" not in legend
    assert "--lr" in flags.messages()[0]


def test_validation_at_the_threshold_is_not_undertrained():
    rows, summary, _ = tables([fake_run("m", "baseline", 0, 90.0, GOOD)])
    assert guard_rails(rows, summary).undertrained == ()


def test_at_chance_target_is_flagged_and_a_discriminating_one_is_not():
    # chance is 10%; svhn-gen within 2 points for every model and variant, usps-gen not
    runs = [fake_run("a", "baseline", 0, 97.0, {"mnist": 98.0, "svhn-gen": 8.5,
                                                  "usps-gen": 10.0}),
            fake_run("a", "neurn", 0, 97.0, {"mnist": 98.0, "svhn-gen": 11.0,
                                               "usps-gen": 12.5}),
            fake_run("b", "baseline", 0, 97.0, {"mnist": 98.0, "svhn-gen": 12.0,
                                                  "usps-gen": 9.0})]
    rows, summary, markdown = tables(runs)
    flags = guard_rails(rows, summary)
    assert flags.at_chance == ("svhn-gen",) and flags.chance == 10.0
    header = markdown.splitlines()[next(i for i, line in enumerate(markdown.splitlines())
                                        if line.startswith("| model |"))]
    assert f"svhn-gen* {AT_CHANCE_MARK}" in header and f"usps-gen* {AT_CHANCE_MARK}" not in header
    assert "this target does not discriminate" in markdown
    assert table_row(markdown, "b", "baseline")  # the flagged target's rows stay


def test_chance_follows_the_class_count():
    # 4 classes: chance 25%, so 10% is far from chance and 26% is at chance
    runs = [fake_run("a", "baseline", 0, 97.0, {"mnist": 98.0, "x": 10.0, "y": 26.0},
                     num_classes=4)]
    rows, summary, _ = tables(runs)
    assert guard_rails(rows, summary).at_chance == ("y",)


# ---------------------------------------------------------------- lead lines
def test_lead_lines_equal_a_hand_computation():
    # targets-mean of each run = mean of its two targets
    runs = [fake_run("a", "baseline", 0, 97.0, {"mnist": 99.0, "t1": 20.0, "t2": 40.0}),  # 30
            fake_run("a", "baseline", 1, 97.0, {"mnist": 99.0, "t1": 30.0, "t2": 40.0}),  # 35
            fake_run("b", "baseline", 0, 97.0, {"mnist": 99.0, "t1": 50.0, "t2": 50.0}),  # 50
            fake_run("a", "neurn", 0, 97.0, {"mnist": 99.0, "t1": 40.0, "t2": 40.0}),  # 40
            fake_run("a", "neurn", 1, 97.0, {"mnist": 99.0, "t1": 30.0, "t2": 50.0}),  # 40
            fake_run("b", "neurn", 0, 97.0, {"mnist": 99.0, "t1": 50.0, "t2": 60.0}),  # 55
            fake_run("b", "neurn", 1, 97.0, {"mnist": 99.0, "t1": 70.0, "t2": 70.0})]  # 70
    rows, summary, markdown = tables(runs)
    base = next(line for line in markdown.splitlines() if line.startswith("- **baseline**"))
    neurn = next(line for line in markdown.splitlines() if line.startswith("- **neurn**"))
    assert f"{(30 + 35 + 50) / 3:.1f}% over 3 runs (2 models)" in base and "Δ" not in base
    assert f"{(40 + 40 + 55 + 70) / 4:.1f}% over 4 runs (2 models)" in neurn
    diffs = [40 - 30, 40 - 35, 55 - 50]  # (b, seed 1) has no baseline partner
    p = stats.ttest_rel([40, 40, 55], [30, 35, 50]).pvalue
    assert (f"Δ +{np.mean(diffs):.1f} ± {np.std(diffs, ddof=1):.1f} (p={p:.2g}) over 3 pairs"
            in neurn)
    assert "1 run without a baseline partner left out" in neurn
    assert markdown.index("- **neurn**") < markdown.index("| model |")  # before the table


def test_summary_names_the_images_behind_the_numbers():
    counts = {"mnist": {"train": 4000, "val": 500, "test": 500}, "svhn-gen": 1500,
              "usps-gen": 1200}
    runs = [fake_run("m", "baseline", 0, 95.0, GOOD, counts=counts),
            fake_run("m", "neurn", 0, 95.0, GOOD, counts=counts)]
    assert ("Images: source mnist 4,000 train / 500 val / 500 test; targets svhn-gen "
            "1,500, usps-gen 1,200.") in tables(runs)[2].splitlines()
    # runs written before the counts were recorded: no line, no error
    old = [{k: v for k, v in run.items() if k != "counts"} for run in runs]
    assert "Images:" not in tables(old)[2]


def test_lead_lines_without_a_baseline_give_no_delta():
    rows = result_rows([fake_run("a", "neurn", 0, 97.0, GOOD)])
    lines = lead_lines(rows, guard_rails(rows, summarize(rows)))
    assert lines[-1] == "- **neurn**: 45.0% over 1 run (1 model)"


# ---------------------------------------------------------------- error bars
def bar_axes(seeds):
    runs = [fake_run("a", v, s, 97.0, {"mnist": 98.0 - s, "t1": 20.0 + 4 * s})
            for v in ("baseline", "neurn") for s in seeds]
    rows = result_rows(runs)
    summary = summarize(rows)
    return [ax for ax in plot_bars(rows, summary).axes if ax.get_visible()]


def test_error_bars_show_the_std_over_seeds():
    (ax,) = bar_axes([0, 1])
    errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(errorbars) == 2  # one per variant
    # t1 over seeds: 20, 24 -> std (ddof 1) 2.83; its bar spans mean ± std
    segments = errorbars[0].lines[2][0].get_segments()
    (low, high) = segments[1][:, 1]
    assert (low, high) == pytest.approx((22 - np.std([20, 24], ddof=1),
                                         22 + np.std([20, 24], ddof=1)))


def test_one_seed_has_no_error_bars():
    (ax,) = bar_axes([0])
    assert not any(isinstance(c, ErrorbarContainer) for c in ax.containers)
    assert all(c.errorbar is None for c in ax.containers)


def test_bars_draw_chance_and_mark_an_undertrained_variant():
    runs = [fake_run("a", "baseline", 0, 97.0, {"mnist": 98.0, "t1": 20.0}),
            fake_run("a", "neurn", 0, 60.0, {"mnist": 90.0, "t1": 30.0})]  # below the guard
    rows = result_rows(runs)
    fig = plot_bars(rows, summarize(rows))
    (ax,) = [ax for ax in fig.axes if ax.get_visible()]
    chance = [line for line in ax.get_lines() if line.get_label().startswith("chance")]
    assert len(chance) == 1 and set(chance[0].get_ydata()) == {10.0}  # 10 classes
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "baseline" in labels and "neurn †" in labels


def test_learning_curves_tick_whole_steps_and_mark_undertrained_runs():
    runs = [fake_run("a", "baseline", 0, 97.0, {"mnist": 98.0, "t1": 20.0}),
            fake_run("a", "neurn", 0, 60.0, {"mnist": 90.0, "t1": 30.0})]
    for run in runs:  # two evaluations a few steps apart: fractional ticks without a locator
        run["history"] = [dict(run["history"][0], step=19), dict(run["history"][0], step=20)]
    fig = plot_curves(runs)
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert len(ticks) and all(float(t).is_integer() for t in ticks), ticks
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "neurn s0 †" in labels and "baseline s0" in labels


# ---------------------------------------------------------------- neurn compare
def study_folder(path, runs):
    """A study folder as ``neurn run`` leaves it: runs/*/result.json and the tables."""
    for run in runs:
        key = f"{run['model']}__{run['variant'].replace(':', '-')}__seed{run['seed']}"
        (path / "runs" / key).mkdir(parents=True)
        (path / "runs" / key / "result.json").write_text(seal_json(run))
    write_outputs(runs, path, plots=False, echo=False)
    return path


@pytest.fixture
def two_studies(tmp_path):
    a = study_folder(tmp_path / "k3", [fake_run("resnet18", "baseline", 0, 97.0, GOOD),
                                       fake_run("resnet18", "neurn", 0, 96.0, GOOD)])
    b = study_folder(tmp_path / "k5", [fake_run("resnet18", "baseline", 0, 97.0, GOOD),
                                       fake_run("resnet18", "neurn:k=5", 0, 70.0, GOOD)])
    return a, b


def test_compare_merges_two_folders(two_studies, tmp_path, capsys):
    a, b = two_studies
    out = tmp_path / "report" / "compare.md"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed
    lines = printed.splitlines()
    # summary.md's main table header, with the folder column in front
    own = next(line for line in (a / "summary.md").read_text().splitlines()
               if line.startswith("| model |"))
    assert lines[0] == "| study " + own
    assert f"| {a} | resnet18 | neurn | 1 |" in printed
    assert f"| {a} | resnet18 | **neurn - baseline** | 1 |" in printed
    assert f"| {b} | resnet18 | neurn:k=5 {UNDERTRAINED_MARK} | 1 |" in printed
    assert f"{b}: resnet18 neurn:k=5 seed 0 (70.0%)" in printed
    # per folder: baseline, variant and difference rows
    assert sum(line.startswith((f"| {a} |", f"| {b} |")) for line in lines) == 2 * 3


def test_compare_reads_a_real_study(real_study, two_studies, capsys):
    folder, _ = real_study
    assert main(["compare", str(folder), str(two_studies[0])]) == 0
    printed = capsys.readouterr().out
    assert f"| {folder} | test_resnet | baseline" in printed
    assert "different targets" in printed  # optdigits there, svhn-gen / usps-gen here


@pytest.mark.parametrize("damage", [
    lambda d: (d / "results.json").write_text('{"rows": [{"model": '),
    lambda d: (d / "results.json").write_text('{"summary": []}'),
    lambda d: (d / "results.json").write_text(json.dumps(
        {"rows": [{"model": "m", "variant": "baseline"}]})),
    lambda d: (d / "results.json").unlink(),
], ids=["truncated", "no-rows", "bad-row", "missing"])
def test_compare_refuses_a_damaged_folder_in_one_line_and_the_fix_works(
        two_studies, capsys, damage):
    a, b = two_studies
    damage(b)
    assert main(["compare", str(a), str(b)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing merged from a partial set
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("neurn compare: error:") and str(b) in line
    assert line.endswith(f"rebuild it with `neurn table {b}`")
    assert main(["table", str(b)]) == 0
    assert main(["compare", str(a), str(b)]) == 0


def test_compare_refuses_a_folder_without_runs(tmp_path, two_studies, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(two_studies[0]), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no results.json" in err and "neurn run" in err and "Traceback" not in err


def test_compare_refuses_a_missing_folder(tmp_path, two_studies, capsys):
    assert main(["compare", str(two_studies[0]), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "Traceback" not in err


@pytest.mark.parametrize("other, words", [
    (dict(source="usps-src"), "source usps-src"),
    (dict(num_classes=26), "26 classes"),
])
def test_compare_refuses_mismatched_studies(tmp_path, two_studies, capsys, other, words):
    top1 = {other.get("source", SOURCE): 98.0, "svhn-gen": 30.0}
    c = study_folder(tmp_path / "other", [fake_run("resnet18", "baseline", 0, 97.0, top1,
                                                   **other)])
    assert main(["compare", str(two_studies[0]), str(c)]) == 2
    err = capsys.readouterr().err
    assert "cannot compare" in err and words in err and "Traceback" not in err


def test_compare_refuses_the_same_folder_twice(two_studies, capsys):
    a, _ = two_studies
    assert main(["compare", str(a), str(a / ".." / a.name)]) == 2
    assert "given twice" in capsys.readouterr().err


def test_compare_unwritable_out_is_one_line(two_studies, capsys):
    a, b = two_studies
    assert main(["compare", str(a), str(b), "--out", str(a)]) == 2  # a folder
    err = capsys.readouterr().err
    assert err.startswith(f"neurn compare: error: {a}: Is a directory") and "Traceback" not in err


def test_differences_equal_up_to_rounding_have_no_p_value(recwarn):
    from neurn.results.tables import paired_difference

    # 98.4 - 98.2 and 97.4 - 97.2 differ in the 14th digit; a t-test would divide by it
    d = paired_difference({0: 98.4, 1: 97.4, 2: 96.6}, {0: 98.2, 1: 97.2, 2: 96.4})
    assert d["n"] == 3 and abs(d["mean"] - 0.2) < 1e-9 and math.isnan(d["p_value"])
    assert paired_difference({0: 98.4, 1: 97.4}, {0: 98.4, 1: 97.4})["p_value"] == 1.0
    assert not [w for w in recwarn if "catastrophic" in str(w.message)]

