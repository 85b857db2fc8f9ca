"""Faults of ``neurn run`` / ``table`` / ``compare`` (issue 15): refusals change nothing
on disk, every failure is one stderr line (status 2, 130 for Ctrl-C; after the study's
log when it got that far: its header, then its run lines), and damaged files of a study
folder are found before they are trusted.

One tiny run (``tiny_study.py``; fixtures ``finished``, ``study``, ``no_training`` in
``conftest.py``) is trained once per module and copied into each test that needs a
finished study.
"""
from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from archalign.utils.io import read_sealed_json, seal_json
from neurn.cli import main
from neurn.study import train as train_module
from tiny_study import ctrl_c_at_epoch, error_line, folder_state, run_args, split_log


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neurn-faults-cache")


RUN = "runs/test_resnet__baseline__seed0"


def one_error_line(capsys, *needles) -> str:
    return error_line(capsys.readouterr().err, *needles)


# ---------------------------------------------------------------- refusals change nothing
def test_refused_resume_leaves_every_byte_of_out(study, cache, capsys, no_training):
    before = folder_state(study, mtimes=False)
    assert main(run_args(study, cache, "--lr", "1e-2")) == 2
    one_error_line(capsys, "other settings", RUN)
    assert folder_state(study, mtimes=False) == before  # study.json was not rewritten


@pytest.mark.parametrize("extra, needle", [
    (["--variants", "baseline", "neurn:k=99"], "neurn:k=99"),  # 99 px kernel, 32 px images
    (["--variants", "neurn", "neurn:k=3"], "'neurn' and 'neurn:k=3'"),
    (["--variants", "neurn:k=5", "neurn:kernel_size=5"], "'neurn:k=5' and 'neurn:kernel_size"),
    (["--variants", "neurn:eps=nan"], "eps"),
    (["--weight-decay", "nan"], "weight_decay"),
    (["--weight-decay", "-0.1"], "weight_decay"),
    (["--lr", "inf"], "lr"),
    (["--lr", "0"], "lr"),
    (["--evals", "0"], "evals"),
    (["-b", "0"], "batch_size"),
    (["--eval-limit", "0"], "eval_limit"),
    (["--train-limit", "-3"], "train_limit"),
    (["--img-size", "4"], "img_size"),
    (["--workers", "-1"], "num_workers"),
    (["--threads", "0"], "threads"),
    (["--seeds", "-1"], "seeds"),
    (["--seeds", "0", "0"], "seeds"),
    (["--val-fraction", "nan"], "val fraction"),
    (["--device", "tpu9"], "'tpu9'"),
    (["--device", "meta"], "'meta'"),
])
def test_bad_values_are_refused_before_anything_is_written(tmp_path, cache, capsys,
                                                           no_training, extra, needle):
    out = tmp_path / "out"
    assert main(run_args(out, cache, *extra)) == 2
    one_error_line(capsys, needle)
    assert not out.exists()


def test_steps_zero_is_refused(tmp_path, cache, capsys, no_training):
    args = run_args(tmp_path / "out", cache)
    args[args.index("--steps") + 1] = "0"
    assert main(args) == 2
    one_error_line(capsys, "steps")


# ---------------------------------------------------------------- OS errors, one line
def test_out_that_is_a_file_or_under_a_file(tmp_path, cache, capsys, no_training):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    assert main(run_args(blocker, cache)) == 2
    one_error_line(capsys, str(blocker), "is a file")
    assert main(run_args(blocker / "study", cache)) == 2
    one_error_line(capsys, str(blocker), "is a file")
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize("where", ["out", "under"])
def test_read_only_out_is_refused_before_training(read_only_dir, cache, capsys, no_training,
                                                  where):
    out = read_only_dir if where == "out" else read_only_dir / "study"
    assert main(run_args(out, cache)) == 2
    one_error_line(capsys, str(out), "cannot write")
    assert list(read_only_dir.iterdir()) == []


def test_a_write_that_fails_names_the_users_file(tmp_path, finished, cache, capsys,
                                                 monkeypatch):
    # past the up-front check: the disk turns read-only, or the folder's mode changes
    # (`finished` has filled the data cache, so the first write is the lock, study.lock)
    import tempfile

    def read_only(*args, dir=None, prefix="", **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, prefix + "x"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(run_args(tmp_path / "out", cache)) == 2
    line = one_error_line(capsys, str(tmp_path / "out" / "study.lock"), "Read-only")
    assert ".tmp-" not in line


def test_full_disk_stops_the_study_and_records_no_failed_run(small_disk, cache, capsys):
    out = small_disk / "study"
    assert main(run_args(out, cache)) == 2
    line = one_error_line(capsys, str(out))
    assert ".tmp-" not in line and not list(small_disk.rglob(".tmp-*"))
    assert not (out / RUN / "result.json").exists()  # rerunning retries the run


def test_torch_save_failure_is_an_os_error_not_a_failed_run(tmp_path, cache, capsys,
                                                          monkeypatch):
    def full(*args, **kwargs):  # how torch's zip writer reports some full-disk writes
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 "
                           "vs 0\nmore")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "out"
    assert main(run_args(out, cache)) == 2
    one_error_line(capsys, str(out / RUN / "checkpoint.pt"), "torch.save failed")
    assert not (out / RUN / "result.json").exists()


# ---------------------------------------------------------------- damaged study files
def test_damaged_result_json_is_refused_by_table_and_retrained_by_run(
        study, finished, cache, capsys):
    (study / RUN / "result.json").write_text("{not json")
    assert main(["table", str(study)]) == 2
    one_error_line(capsys, str(study / RUN / "result.json"), "damaged", "neurn run")

    assert main(run_args(study, cache)) == 0
    err = capsys.readouterr().err
    assert f"neurn run: warning: {study / RUN / 'result.json'} is damaged" in err
    assert "Traceback" not in err
    # CPU runs repeat exactly: the retrained run is the lost one
    assert (study / "results.csv").read_text() == (finished / "results.csv").read_text()
    json.loads((study / RUN / "result.json").read_text())


def test_result_json_without_its_metrics_is_retrained(study, finished, cache, capsys):
    path = study / RUN / "result.json"
    record = read_sealed_json(path)
    del record["metrics"]
    path.write_text(seal_json(record))  # intact, so the values are what fails
    assert main(run_args(study, cache)) == 0
    assert "without its metrics" in capsys.readouterr().err
    assert "metrics" in json.loads(path.read_text())


@pytest.mark.parametrize("counts", ["many", {"mnist": {"train": -1, "val": 2, "test": 2}},
                                    {"svhn-gen": True}, {"mnist": {"train": 4}}])
def test_malformed_image_counts_are_refused_by_table(study, finished, counts, capsys):
    path = study / RUN / "result.json"
    record = read_sealed_json(path)
    assert "counts" in record
    record["counts"] = counts
    path.write_text(seal_json(record))  # intact, so the values are what fails
    assert main(["table", str(study)]) == 2
    one_error_line(capsys, str(path), "malformed image counts")


def test_a_result_without_counts_still_reads(study, finished, capsys):
    path = study / RUN / "result.json"
    record = read_sealed_json(path)
    del record["counts"]
    path.write_text(seal_json(record))  # intact, so the values are what fails
    assert main(["table", str(study)]) == 0
    assert "| mnist (source test) |" in capsys.readouterr().out


def test_truncated_best_pt_is_retrained(study, finished, cache, capsys):
    weights = study / RUN / "best.pt"
    weights.write_bytes(weights.read_bytes()[:300])
    assert main(run_args(study, cache)) == 0
    assert f"{weights} is damaged" in capsys.readouterr().err
    torch.load(weights, weights_only=True)
    assert (study / "results.csv").read_text() == (finished / "results.csv").read_text()


def test_ctrl_c_is_one_line_and_a_truncated_checkpoint_restarts_the_run(
        tmp_path, finished, cache, capsys, monkeypatch):
    real = train_module.train_one_epoch
    ctrl_c_at_epoch(monkeypatch)
    out = tmp_path / "out"
    assert main(run_args(out, cache)) == 130
    log, lines = split_log(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("neurn run: interrupted: "), lines
    assert len(log) == 3 and log[1].endswith(": started")  # the header, the 1st round
    # with --steps a round is an evaluation, not a pass over the data
    assert "0 of 1 runs finished" in lines[0]
    assert "after evaluation 1 of 2 (step 2 of 4)" in lines[0] and "epoch" not in lines[0]
    assert "rerun the same command" in lines[0]
    assert not (out / RUN / "claim.json").exists()  # released: the next process may train it

    checkpoint = out / RUN / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    monkeypatch.setattr(train_module, "train_one_epoch", real)
    assert main(run_args(out, cache)) == 0
    assert f"{checkpoint} is damaged" in capsys.readouterr().err
    assert not checkpoint.exists()
    assert (out / "results.csv").read_text() == (finished / "results.csv").read_text()


def test_checkpoint_of_other_settings_is_refused_before_writing(
        tmp_path, cache, capsys, monkeypatch):
    ctrl_c_at_epoch(monkeypatch)
    out = tmp_path / "out"
    assert main(run_args(out, cache)) == 130
    capsys.readouterr()
    before = folder_state(out, mtimes=False)
    assert main(run_args(out, cache, "--weight-decay", "0.1")) == 2
    one_error_line(capsys, "other settings")
    assert folder_state(out, mtimes=False) == before


def test_folder_where_a_result_belongs_is_refused(study, cache, capsys, no_training):
    (study / RUN / "result.json").unlink()
    (study / RUN / "result.json").mkdir()
    before = folder_state(study, mtimes=False)
    assert main(run_args(study, cache)) == 2
    one_error_line(capsys, str(study / RUN / "result.json"), "folder")
    assert folder_state(study, mtimes=False) == before
    assert main(["table", str(study)]) == 2
    one_error_line(capsys, str(study / RUN / "result.json"), "folder")


# ---------------------------------------------------------------- other inputs
@pytest.mark.parametrize("content, needle", [
    ({"names": "resnet18", "method": "medoids"}, "must be a non-empty list"),
    ({"names": [], "method": "medoids"}, "must be a non-empty list"),
    ({"models": ["resnet18"]}, "not a shortlist"),
    ("[1, 2", "not a shortlist"),
])
def test_bad_shortlist_is_one_line(tmp_path, capsys, no_training, content, needle):
    path = tmp_path / "shortlist.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, str(path), needle)


def test_shortlist_that_is_a_folder(tmp_path, capsys, no_training):
    (tmp_path / "shortlist.json").mkdir()
    assert main(["run", str(tmp_path / "shortlist.json"), "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "shortlist.json", "Is a directory", "give a file name")


def test_compare_inputs_in_the_wrong_shape(study, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["compare", str(tmp_path / "f"), str(study)]) == 2
    one_error_line(capsys, str(tmp_path / "f"), "a file, not a folder")
    (study / "results.json").unlink()
    (study / "results.json").mkdir()
    assert main(["compare", str(study)]) == 2
    one_error_line(capsys, str(study / "results.json"), "is a folder")
    assert main(["compare", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    one_error_line(capsys, "no such folder")
