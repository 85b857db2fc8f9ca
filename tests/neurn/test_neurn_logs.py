"""What ``neurn run`` writes on stderr (issue 28, "Logs"): tqdm bars on a terminal only,
otherwise one line per validation round; the run header first, with or without
``--no-progress``; "evaluation k of n" where a round is not an epoch.

The tiny study (``tiny_study.py``: 4 steps, 2 validation rounds) keeps every run a
few seconds.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neurn.cli import main
from neurn.study import Study
from neurn.study.train import progress_bar
from tiny_study import HEADER, LOG_LINE, ctrl_c_at_epoch, run_args, split_log

ROOT = Path(__file__).resolve().parents[2]
EVAL = re.compile(r"neurn run: (\S+): step (\d+)/(\d+) \((epoch|evaluation) (\d+) of (\d+)\): "
                  r"train loss (\d+\.\d{3}), source val (\d+\.\d)%, \d+\.\d s")
TQDM = ("\r", "it/s", "step/s", "run/s", "s/step", "s/run", "%|")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neurn-logs-cache")


def with_bars(args: list[str]) -> list[str]:
    """``args`` without ``--no-progress``: bars wherever they would render."""
    return [a for a in args if a != "--no-progress"]


def by_epochs(args: list[str], epochs: int = 2) -> list[str]:
    """``args`` with a budget of ``epochs`` passes instead of ``--steps``."""
    i = args.index("--steps")
    return args[:i] + ["--epochs", str(epochs)] + args[i + 2:]


def eval_lines(err: str) -> list[re.Match]:
    return [m for m in map(EVAL.fullmatch, err.splitlines()) if m]


# ---------------------------------------------------------------- a log, not a terminal
def test_piped_to_a_log_a_study_writes_lines_not_bars(tmp_path, cache):
    """The real case: progress on (the default), stderr a pipe, as ``> log 2>&1``."""
    out = tmp_path / "out"
    args = with_bars(run_args(out, cache, "--variants", "baseline", "neurn"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "neurn", *args], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = proc.stderr
    assert not any(mark in err for mark in TQDM), err  # no bar, no redraw
    log, rest = split_log(err)
    assert HEADER.match(log[0]) and "2 runs" in log[0] and "4 steps, 2 evaluations" in log[0]
    keys = ["test_resnet__baseline__seed0", "test_resnet__neurn__seed0"]
    # per run: started, one line per evaluation (2), finished; in order
    assert [line.split()[2][:-1] for line in log[1:]] == [k for k in keys for _ in range(4)]
    evals = eval_lines(err)
    assert [(m[1], m[2], m[3], m[4], m[5], m[6]) for m in evals] == [
        (k, step, "4", "evaluation", n, "2") for k in keys for step, n in (("2", "1"),
                                                                           ("4", "2"))]
    assert rest[0].startswith(f"wrote {out}/results.csv")  # then the closing lines
    # each line is its round's history record: mean training loss, source val
    for key, lines in zip(keys, (evals[:2], evals[2:])):
        history = json.loads((out / "runs" / key / "result.json").read_text())["history"]
        assert [(m[7], m[8]) for m in lines] == [
            (f"{h['train_loss']:.3f}", f"{h['val_top1']:.1f}") for h in history]
    assert "| source val |" in proc.stdout  # summary.md, printed once


def test_no_progress_still_prints_the_header_first_and_a_line_per_evaluation(
        tmp_path, cache, capsys):
    assert main(run_args(tmp_path / "out", cache)) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert HEADER.match(lines[0]), lines[0]
    assert not any(mark in err for mark in TQDM)
    log, _ = split_log(err)
    assert len(log) == 1 + 1 + 2 + 1  # header, started, 2 evaluations, finished
    assert all(LOG_LINE.fullmatch(line) for line in log[1:])
    assert len(eval_lines(err)) == 2


def test_with_steps_no_line_calls_an_evaluation_an_epoch(tmp_path, cache, capsys,
                                                         monkeypatch):
    """600 steps in 5 evaluations are 9.6 epochs of some source: "epoch 3/5" would lie."""
    ctrl_c_at_epoch(monkeypatch)  # Ctrl-C in the 2nd round, after the 1st is checkpointed
    assert main(run_args(tmp_path / "out", cache)) == 130
    log, rest = split_log(capsys.readouterr().err)
    (interrupted,) = rest
    assert interrupted.startswith("neurn run: interrupted: ")
    assert "resumes after evaluation 1 of 2 (step 2 of 4)" in interrupted
    assert [m[4] for m in eval_lines("\n".join(log))] == ["evaluation"]
    assert not any("epoch" in line for line in log + rest), log + rest


def test_with_epochs_the_rounds_are_epochs(tmp_path, cache, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main(by_epochs(run_args(out, cache))) == 0
    evals = eval_lines(capsys.readouterr().err)
    # 32 images in batches of 8: 4 steps an epoch
    assert [(m[2], m[3], m[4], m[5], m[6]) for m in evals] == [
        ("4", "8", "epoch", "1", "2"), ("8", "8", "epoch", "2", "2")]

    ctrl_c_at_epoch(monkeypatch)
    assert main(by_epochs(run_args(tmp_path / "stopped", cache))) == 130
    _, (interrupted,) = split_log(capsys.readouterr().err)
    assert "resumes after epoch 1 of 2; rerun" in interrupted


# ---------------------------------------------------------------- the bars
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_draw_on_a_terminal_only():
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        bar = progress_bar(total=3, show=True, file=stream, mininterval=0)
        assert bool(bar.disable) is not shown  # what the training loop reads
        bar.update(3)
        bar.close()
        assert ("\r" in stream.getvalue()) is shown
    off = progress_bar(total=3, show=False, file=Terminal())
    assert off.disable  # --no-progress: no bar even on a terminal
    off.close()


def test_the_api_is_quiet_without_progress_unless_asked_to_log(tmp_path):
    quiet = Study(["convnet"], device="cpu", out_dir=tmp_path / "s", progress=False)
    assert quiet.log is False
    assert Study(["convnet"], device="cpu", out_dir=tmp_path / "s", progress=False,
                 log=True).log is True
    assert Study(["convnet"], device="cpu", out_dir=tmp_path / "s").log is True
