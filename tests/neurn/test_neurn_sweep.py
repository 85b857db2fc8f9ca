"""A study shared between processes: claimed runs, shards, Dask workers (one killed
mid-run), all giving the sequential study's numbers."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from neurn.cli import main
from neurn.study.claims import (CLAIM_FILE, ClaimLost, check_held, claim_run, claim_study,
                                is_stale)
from tiny_study import split_log

ARGS = ["convnet", "--variants", "baseline", "neurn", "--seeds", "0", "1", "--targets",
        "optdigits", "--steps", "60", "--evals", "3", "-b", "16", "--eval-limit", "64",
        "--train-limit", "256", "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sweep-cache")


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, cache):
    """The reference: the grid trained one run after another in this process."""
    out = tmp_path_factory.mktemp("sequential") / "study"
    assert main(["run", *ARGS, "--cache-dir", str(cache), "--out", str(out),
                 "--no-progress"]) == 0
    return out


def _csv(out):
    return (out / "results.csv").read_text()


def _neurn(out, cache, *extra):
    """``neurn run`` in a process of its own, progress lines on (stderr)."""
    return subprocess.Popen([sys.executable, "-m", "neurn.cli", "run", *ARGS, "--cache-dir",
                             str(cache), "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ---------------------------------------------------------------- claims
def test_a_claim_is_exclusive_until_released(tmp_path):
    first = claim_run(tmp_path / "run")
    assert first is not None and claim_run(tmp_path / "run") is None  # live: respected
    info = json.loads(first.path.read_text())
    assert info["host"] == socket.gethostname() and info["pid"] == os.getpid()
    check_held(first)
    first.release()
    assert not first.path.exists()
    second = claim_run(tmp_path / "run")
    assert second is not None
    second.release()


def test_a_stale_claim_is_taken_over_and_its_owner_stops(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    run = tmp_path / "run"
    run.mkdir()
    path = run / CLAIM_FILE
    # a claim of a process of this host that has exited: stale at once
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(gone.stdout),
                                "token": "dead"}))
    assert is_stale(path)
    taken = claim_run(run)
    assert taken is not None and json.loads(path.read_text())["pid"] == os.getpid()
    taken.release()
    # another host's claim: stale only once its heartbeat is older than the timeout
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "far"}))
    assert not is_stale(path) and claim_run(run) is None
    old = time.time() - 3600
    os.utime(path, (old, old))
    assert is_stale(path)
    mine = claim_run(run, stale_after=600)
    assert mine is not None
    # while this process was presumed dead, another took the run over: it must stop
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "newer"}))
    with pytest.raises(ClaimLost):
        check_held(mine)
    mine.release()
    assert json.loads(path.read_text())["token"] == "newer"  # not removed by the old owner


def test_a_held_claim_keeps_beating(tmp_path):
    claim = claim_run(tmp_path / "run", heartbeat=0.05)
    old = time.time() - 3600
    os.utime(claim.path, (old, old))
    time.sleep(0.3)
    assert time.time() - claim.path.stat().st_mtime < 5 and not is_stale(claim.path)
    claim.release()


def test_a_study_folder_names_its_settings(tmp_path):
    path = tmp_path / "study.json"
    claim_study(path, {"lr": 0.001}, "aaaa")
    claim_study(path, {"lr": 0.001, "seeds": [0, 1]}, "aaaa")  # same settings: cooperates
    assert json.loads(path.read_text())["seeds"] == [0, 1]
    before = path.read_bytes()
    with pytest.raises(ValueError, match="other settings"):
        claim_study(path, {"lr": 0.01}, "bbbb")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["study.json"]


def test_other_settings_on_a_shared_folder_are_refused_before_any_write(sequential, cache,
                                                                        tmp_path, capsys):
    before = {p: p.stat().st_mtime_ns for p in sequential.rglob("*")}
    args = ["run", *ARGS, "--lr", "0.01", "--cache-dir", str(cache), "--out",
            str(sequential), "--no-progress"]
    assert main(args) == 2
    log, lines = split_log(capsys.readouterr().err)  # the header, then the refusal
    assert len(log) == 1 and len(lines) == 1 and "other settings" in lines[0]
    assert {p: p.stat().st_mtime_ns for p in sequential.rglob("*")} == before


# ---------------------------------------------------------------- shards and processes
def test_shards_and_a_third_process_share_one_folder(sequential, cache, tmp_path):
    out = tmp_path / "study"
    procs = [_neurn(out, cache, "--shard", "0/2"), _neurn(out, cache, "--shard", "1/2"),
             _neurn(out, cache)]
    logs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-2000:] for _, e in logs]
    started = [line for _, err in logs for line in err.splitlines() if line.endswith(
        ": started")]
    keys = sorted(p.name for p in (out / "runs").iterdir())
    assert len(keys) == 4 and sorted(line.split()[2][:-1] for line in started) == keys
    assert _csv(out) == _csv(sequential)  # the last writer saw every run
    assert not list(out.rglob(CLAIM_FILE)) and not list(out.rglob(".tmp-*"))


def test_table_of_a_study_in_progress_says_what_runs(sequential, tmp_path, capsys):
    import shutil

    out = tmp_path / "study"
    shutil.copytree(sequential, out)
    run = sorted((out / "runs").iterdir())[0]
    (run / "result.json").unlink()
    claim = claim_run(run)
    try:
        assert main(["table", str(out)]) == 0
    finally:
        claim.release()
    printed = capsys.readouterr().out
    assert f"- {run.name}: running on {socket.gethostname()} pid {os.getpid()}" in printed
    assert "1 run(s) in progress" in printed


# ---------------------------------------------------------------- Dask
def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(cache, tmp_path, capsys):
    t0 = time.perf_counter()
    assert main(["run", *ARGS, "--scheduler", "tcp://127.0.0.1:9", "--cache-dir", str(cache),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - t0 < 15 and err.count("\n") == 1
    assert "no Dask scheduler answered at tcp://127.0.0.1:9" in err
    assert not (tmp_path / "out").exists()


def test_a_local_cluster_gives_the_sequential_numbers(sequential, cache, tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    out = tmp_path / "study"
    assert main(["run", *ARGS, "--dask-workers", "2", "--cache-dir", str(cache), "--out",
                 str(out)]) == 0
    err = capsys.readouterr().err
    assert "Dask cluster at" in err and "2 workers" in err
    assert err.count(": finished on ") == 4
    assert _csv(out) == _csv(sequential)


def test_a_worker_killed_mid_run_costs_at_most_an_epoch(sequential, cache, tmp_path):
    pytest.importorskip("dask.distributed")
    from archalign.utils.dask import close, local_client
    from neurn.study import Study

    out = tmp_path / "study"
    study = Study(["convnet"], variants=["baseline", "neurn"], seeds=[0, 1],
                  targets=["optdigits"], steps=60, evals=3, batch_size=16, eval_limit=64,
                  train_limit=256, device="cpu", threads=1, cache_dir=cache, out_dir=out,
                  progress=False)
    client = local_client(2)
    killed = []

    def kill_one_in_a_checkpoint():
        # the first run seen with a checkpoint and no result: kill the process training it
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for claim in out.glob(f"runs/*/{CLAIM_FILE}"):
                run = claim.parent
                if (run / "checkpoint.pt").exists() and not (run / "result.json").exists():
                    pid = json.loads(claim.read_text())["pid"]
                    os.kill(pid, signal.SIGKILL)
                    killed.append((run.name, pid))
                    return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_one_in_a_checkpoint)
    killer.start()
    try:
        results = study.run(client=client)
    finally:
        killer.join()
        close(client)
    assert killed, "no run was caught between two checkpoints"
    assert not results.errors and not results.pending
    assert _csv(out) == _csv(sequential)


@pytest.mark.parametrize("extra, needle", [
    (["--gpus", "all"], "torch sees no CUDA GPU"),
    (["--runs-per-gpu", "2"], "add --gpus"),
    (["--shard", "2/2"], "0 <= I < N"),
    (["--shard", "x"], "write I/N"),
    (["--shard", "0/2", "--dask-workers", "2"], "without Dask"),
    (["--dask-workers", "0"], "--dask-workers: '0' is not a whole number from 1 to"),
])
def test_cluster_options_that_cannot_work_are_one_line(extra, needle, tmp_path, capsys):
    assert main(["run", "convnet", "--steps", "1", "--out", str(tmp_path / "out"),
                 *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and not (tmp_path / "out").exists()
