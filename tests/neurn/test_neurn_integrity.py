"""Issue 25: a study trusts no file it reads back until its digest checks out, nor a value
until its type and range do; a study folder is locked against processes of other
settings; every output path is checked before the first write.

The damage is the realistic kind: one flipped bit that leaves the file parsing (a digit
of a top-1, a low mantissa bit of a tensor), which torch and json read without
complaint. One tiny run (timm's ``test_resnet``, 4 steps, 2 validation points, a few
dozen images) is trained once per module, and once interrupted after its first epoch;
each test damages a private copy, and the repaired study must give the undamaged one's
numbers (CPU runs repeat exactly).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from archalign.utils.io import read_sealed_json, seal_json, state_digest, unseal_json
from neurn.cli import main
from neurn.results import read_run
from neurn.study import Study
from neurn.study.claims import STUDY_LOCK, claim_run, lock_study

from tiny_study import TINY, ctrl_c_at_epoch, error_line, folder_state, run_args

RUN = "runs/test_resnet__baseline__seed0"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("neurn-integrity-cache")


def tiny_study(out, cache) -> Study:
    """The study of :func:`run_args`, from Python."""
    return Study([TINY], variants=["baseline"], targets=["optdigits"], steps=4, evals=2,
                 batch_size=8, eval_limit=16, train_limit=32, device="cpu", threads=1,
                 cache_dir=cache, out_dir=out, progress=False)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, cache):
    """The same study stopped by Ctrl-C in its 2nd epoch: a checkpoint of the 1st."""
    out = tmp_path_factory.mktemp("interrupted") / "study"
    with pytest.MonkeyPatch.context() as patch:
        ctrl_c_at_epoch(patch)
        assert main(run_args(out, cache)) == 130
    assert (out / RUN / "checkpoint.pt").is_file()
    return out


@pytest.fixture
def stopped(interrupted, tmp_path):
    return shutil.copytree(interrupted, tmp_path / "stopped")


def flip_digit(path, after: str) -> None:
    """Flip one bit of the first digit after the text ``after``: the file still parses,
    holding another number (13.0 becomes 53.0)."""
    data = bytearray(path.read_bytes())
    i = data.index(after.encode()) + len(after)
    while not chr(data[i]).isdigit():
        i += 1
    data[i] ^= 0x04 if data[i] < ord("8") else 0x01  # 0-7 <-> 4-3, 8 <-> 9
    path.write_bytes(bytes(data))


def flip_tensor_bit(path, weights: dict) -> None:
    """Flip a low mantissa bit of the largest float tensor of ``weights`` where ``path``
    stores it (torch keeps a tensor's bytes as they are): torch loads the file as before,
    with one number slightly off."""
    tensor = max((t for t in weights.values() if t.is_floating_point()), key=torch.numel)
    data = bytearray(path.read_bytes())
    i = data.index(tensor.contiguous().numpy().tobytes())
    data[i + 1] ^= 0x01
    path.write_bytes(bytes(data))
    torch.load(path, weights_only=True)  # no complaint: only the digest can tell


def same_numbers(out, finished) -> None:
    assert (out / "results.csv").read_text() == (finished / "results.csv").read_text()


# ---------------------------------------------------------------- the digests
def test_a_sealed_record_checks_its_values_not_its_layout():
    text = seal_json({"top1": 13.0, "rows": [1, 2]}, indent=2)
    assert unseal_json(text) == {"top1": 13.0, "rows": [1, 2]}
    record = json.loads(text)
    assert unseal_json(json.dumps(record)) == {"top1": 13.0, "rows": [1, 2]}  # re-indented
    with pytest.raises(ValueError, match="do not match its digest"):
        unseal_json(text.replace("13.0", "53.0"))
    with pytest.raises(ValueError, match="no digest"):
        unseal_json(json.dumps({"top1": 13.0}))
    weights = {"w": torch.rand(2, 3, 4, 4)}
    moved = {"w": weights["w"].contiguous(memory_format=torch.channels_last)}
    assert state_digest(weights) == state_digest(moved)  # the values, not the layout
    assert state_digest(weights) != state_digest({"w": weights["w"].double()})


# ---------------------------------------------------------------- a flipped bit in each file
def test_a_flipped_digit_in_result_json_is_refused_by_table_and_retrained_by_run(
        study, finished, cache, capsys):
    path = study / RUN / "result.json"
    before = json.loads(path.read_text())["metrics"]["mnist"]["top1"]
    flip_digit(path, '"top1": ')
    assert json.loads(path.read_text())["metrics"]["mnist"]["top1"] != before
    assert main(["table", str(study)]) == 2
    error_line(capsys.readouterr().err, str(path), "do not match its digest", "neurn run")

    assert main(run_args(study, cache)) == 0
    err = capsys.readouterr().err
    assert f"neurn run: warning: {path} is damaged (its values do not match its digest" in err
    same_numbers(study, finished)
    assert read_run(path)["metrics"]["mnist"]["top1"] == before


def test_a_flipped_digit_in_results_json_is_refused_by_compare_and_rebuilt(
        study, finished, cache, capsys, no_training):
    path = study / "results.json"
    flip_digit(path, '"top1": ')
    assert main(["compare", str(study)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no number printed, right or wrong
    error_line(captured.err, str(path), "do not match its digest",
               f"rebuild it with `neurn table {study}`")
    assert main(["table", str(study)]) == 0  # rebuilt from the verified runs
    assert path.read_bytes() == (finished / "results.json").read_bytes()
    flip_digit(path, '"top1": ')
    assert main(run_args(study, cache)) == 0  # so does the study, training nothing
    assert path.read_bytes() == (finished / "results.json").read_bytes()
    capsys.readouterr()
    assert main(["compare", str(study)]) == 0
    repaired = capsys.readouterr().out
    assert main(["compare", str(finished)]) == 0
    assert repaired == capsys.readouterr().out.replace(str(finished), str(study))


def test_a_flipped_bit_in_checkpoint_pt_restarts_the_run(stopped, finished, cache, capsys):
    path = stopped / RUN / "checkpoint.pt"
    flip_tensor_bit(path, torch.load(path, weights_only=True)["model"])
    assert main(run_args(stopped, cache)) == 0
    err = capsys.readouterr().err
    assert f"{path} is damaged (its tensors do not match its digest" in err
    same_numbers(stopped, finished)


def test_a_flipped_bit_in_best_pt_retrains_the_run(study, finished, cache, capsys):
    path = study / RUN / "best.pt"
    flip_tensor_bit(path, torch.load(path, weights_only=True))
    assert main(run_args(study, cache)) == 0
    err = capsys.readouterr().err
    assert f"{path} is damaged (its tensors do not match the digest its result records" in err
    same_numbers(study, finished)
    recorded = read_run(study / RUN / "result.json")["weights_sha256"]
    assert state_digest(torch.load(path, weights_only=True)) == recorded


def test_a_flipped_digit_in_study_json_is_rewritten(study, finished, cache, capsys,
                                                    no_training):
    path = study / "study.json"
    flip_digit(path, '"lr": ')
    assert main(run_args(study, cache)) == 0
    err = capsys.readouterr().err
    assert f"neurn run: warning: {path} is damaged (its values do not match its digest" in err
    assert read_sealed_json(path) == read_sealed_json(finished / "study.json")
    same_numbers(study, finished)


# ---------------------------------------------------------------- files of earlier versions
def unsealed(path) -> dict:
    """The record at ``path`` as an earlier version wrote it: without its digest."""
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "sha256"}


def test_files_without_a_digest_are_not_trusted(study, stopped, finished, cache, capsys):
    result = study / RUN / "result.json"
    result.write_text(json.dumps(unsealed(result), indent=2))
    assert main(["table", str(study)]) == 2
    error_line(capsys.readouterr().err, str(result), "no digest: written by an earlier version")
    assert main(run_args(study, cache)) == 0
    assert f"{result} is damaged (no digest: written by an earlier version" in (
        capsys.readouterr().err)
    same_numbers(study, finished)

    checkpoint = stopped / RUN / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    del state["sha256"]
    torch.save(state, checkpoint)
    assert main(run_args(stopped, cache)) == 0
    assert f"{checkpoint} is damaged (no digest" in capsys.readouterr().err
    same_numbers(stopped, finished)

    table = study / "results.json"
    table.write_text(json.dumps(unsealed(table)))
    assert main(["compare", str(study)]) == 2
    error_line(capsys.readouterr().err, "no digest", f"rebuild it with `neurn table {study}`")

    settings = study / "study.json"
    settings.write_text(json.dumps(unsealed(settings)))
    assert main(run_args(study, cache)) == 0
    assert f"{settings} is damaged (no digest" in capsys.readouterr().err
    assert read_sealed_json(settings) == read_sealed_json(finished / "study.json")


@pytest.mark.parametrize("name, key", [("study.json", "fingerprint"),
                                       (f"{RUN}/result.json", "settings_hash")])
def test_an_earlier_versions_file_of_other_settings_still_refuses(study, cache, capsys,
                                                                  no_training, name, key):
    path = study / name
    path.write_text(json.dumps({**unsealed(path), key: "0" * 16}))
    before = folder_state(study)
    assert main(run_args(study, cache)) == 2  # never trusted, and never overwritten
    error_line(capsys.readouterr().err, "other settings")
    assert folder_state(study) == before


# ---------------------------------------------------------------- values out of range
def _set(path, change) -> None:
    """Change the record at ``path`` and seal it again: intact, with a wrong value."""
    record = read_sealed_json(path)
    change(record)
    path.write_text(seal_json(record, indent=2))


def _source(record) -> dict:
    return record["metrics"]["mnist"]


@pytest.mark.parametrize("change, needle", [
    (lambda r: _source(r).update(top1=150.0), "top-1 150.0, not a percentage"),
    (lambda r: _source(r).update(top1=-50.0), "top-1 -50.0, not a percentage"),
    (lambda r: _source(r).update(top1="98"), "top-1 '98', not a percentage"),
    (lambda r: _source(r).update(role="sideways"), "role 'sideways', not 'source' or 'target'"),
    (lambda r: _source(r).pop("top1"), "the metrics of mnist lack top1"),
    (lambda r: _source(r).update(n=-3), "malformed loss, image count"),
    (lambda r: r.update(seed="0"), "seed '0', not a whole number"),
    (lambda r: r.update(status="fine"), "status 'fine'"),
    (lambda r: r.update(val_top1=None), "validation top-1 None"),
    (lambda r: r.update(best_epoch=7), "at epoch 7"),
    (lambda r: r["history"][0].update(val_top1=101.0), "malformed history"),
], ids=["top1-150", "top1-neg", "top1-text", "role", "no-top1", "n", "seed", "status",
        "val-none", "epoch", "history"])
def test_values_out_of_range_are_refused_by_table(study, capsys, change, needle):
    path = study / RUN / "result.json"
    _set(path, change)
    assert main(["table", str(study)]) == 2
    error_line(capsys.readouterr().err, str(path), needle)


def test_a_value_out_of_range_is_retrained_by_run(study, finished, cache, capsys):
    path = study / RUN / "result.json"
    _set(path, lambda r: _source(r).update(top1=150.0))
    assert main(run_args(study, cache)) == 0
    assert f"{path} is damaged (mnist has top-1 150.0" in capsys.readouterr().err
    same_numbers(study, finished)


@pytest.mark.parametrize("change, needle", [
    (lambda row: row.update(top1=-50.0), "has top1 -50.0"),
    (lambda row: row.update(role="sideways"), "has role 'sideways'"),
    (lambda row: row.update(n=-1), "has n -1"),
    (lambda row: row.update(loss="low"), "has loss 'low'"),
])
def test_rows_out_of_range_are_refused_by_compare(study, capsys, change, needle):
    path = study / "results.json"
    _set(path, lambda record: change(record["rows"][0]))
    assert main(["compare", str(study)]) == 2
    error_line(capsys.readouterr().err, f"{path}: row 1 {needle}", "neurn table")


# ---------------------------------------------------------------- the folder's lock
def test_a_live_process_of_other_settings_is_named_and_nothing_is_written(
        tmp_path, cache, capsys, no_training):
    out = tmp_path / "out"
    out.mkdir()
    lock = lock_study(out, {"lr": 1.0}, "f" * 16)  # this process: another study's holder
    try:
        before = folder_state(out)
        assert main(run_args(out, cache)) == 2
        error_line(capsys.readouterr().err, "locked by a neurn run of other settings",
                   f"pid {os.getpid()} on {socket.gethostname()}", "another --out")
        assert folder_state(out) == before
    finally:
        lock.release()
    assert not (out / STUDY_LOCK).exists()


def test_a_stale_lock_is_taken_over(tmp_path, finished, cache, capsys):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / STUDY_LOCK).write_text(json.dumps({"host": socket.gethostname(),
                                              "pid": int(gone.stdout), "token": "dead",
                                              "fingerprint": "f" * 16}))
    assert main(run_args(out, cache)) == 0
    assert not (out / STUDY_LOCK).exists()  # released at the end
    same_numbers(out, finished)


def test_a_damaged_study_json_is_not_rewritten_while_a_run_trains(study, cache, capsys,
                                                                  no_training):
    flip_digit(study / "study.json", '"lr": ')
    claim = claim_run(study / RUN)  # this process trains a run, of settings nobody can tell
    try:
        before = folder_state(study)
        assert main(run_args(study, cache)) == 2
        error_line(capsys.readouterr().err, "study.json is damaged",
                   f"pid {os.getpid()} on {socket.gethostname()}", "is training")
        assert folder_state(study) == before
    finally:
        claim.release()


def test_an_unreadable_lock_is_refused_in_one_line(tmp_path):
    (tmp_path / STUDY_LOCK).write_text("{garbage")
    with pytest.raises(ValueError, match="cannot be read; it is taken over once nobody"):
        lock_study(tmp_path, {}, "f" * 16, wait=0)
    assert sorted(os.listdir(tmp_path)) == [STUDY_LOCK]


def test_a_process_of_the_same_settings_joins_the_holder(tmp_path, finished, cache):
    out = tmp_path / "out"
    holder = tiny_study(out, cache)
    out.mkdir()
    lock = lock_study(out, holder.describe(), holder.fingerprint())
    try:
        assert main(run_args(out, cache)) == 0  # through the runs' claims
        assert lock.held()  # the lock stays with its holder
    finally:
        lock.release()
    same_numbers(out, finished)


def test_two_processes_of_other_settings_at_once_one_is_refused(tmp_path, finished, cache):
    out = tmp_path / "out"
    commands = {"baseline": run_args(out, cache),
                "neurn": run_args(out, cache, "--variants", "neurn", "--lr", "0.01")}
    procs = {name: subprocess.Popen([sys.executable, "-m", "neurn.cli", *args],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in commands.items()}
    logs = {name: p.communicate(timeout=120) for name, p in procs.items()}
    codes = {name: p.returncode for name, p in procs.items()}
    assert sorted(codes.values()) == [0, 2], logs
    winner = next(name for name, code in codes.items() if code == 0)
    loser = next(name for name, code in codes.items() if code == 2)
    # refused by the live holder's lock, or by its study.json once it has finished
    error_line(logs[loser][1], "other settings")
    assert [p.name for p in (out / "runs").iterdir()] == [f"{TINY}__{winner}__seed0"]
    (result,) = (out / "runs").glob("*/result.json")
    assert read_run(result)["settings"]["lr"] == (0.01 if winner == "neurn" else 0.001)
    if winner == "baseline":
        same_numbers(out, finished)
    assert not (out / STUDY_LOCK).exists()


# ---------------------------------------------------------------- paths checked before writing
@pytest.mark.parametrize("block, needle", [
    (lambda d: (shutil.rmtree(d / RUN), (d / RUN).write_text("x")),
     "is a file where the study keeps a folder"),
    (lambda d: (shutil.rmtree(d / "runs"), (d / "runs").write_text("x")),
     "is a file where the study keeps a folder"),
    (lambda d: ((d / "data.json").unlink(), (d / "data.json").mkdir()),
     "is a folder where the study keeps a file"),
    (lambda d: ((d / "results.png").unlink(), (d / "results.png").mkdir()),
     "is a folder where the study keeps a file"),
    (lambda d: (d / RUN / "claim.json").mkdir(), "is a folder where the study keeps a file"),
], ids=["run-folder", "runs-folder", "data.json", "results.png", "claim.json"])
def test_a_blocked_output_path_is_refused_before_anything_is_written(
        study, cache, capsys, no_training, block, needle):
    block(study)
    before = folder_state(study)
    assert main(run_args(study, cache)) == 2
    error_line(capsys.readouterr().err, needle, "move it away")
    assert folder_state(study) == before  # study.json and data.json were not rewritten
