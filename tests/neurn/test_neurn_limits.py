"""Sizes far beyond the machine (issue 25, class 5): ``--img-size 100000``,
``--batch-size 10**9``, ``--threads 100000`` are refused in one line before anything is
allocated or written, instead of an OOM kill or an OpenMP abort mid-run."""
from __future__ import annotations

import pytest

from neurn.cli import main
from neurn.limits import MAX_THREADS, PER_CPU, check_sizes, physical_memory

GiB = 2 ** 30


def sizes(**given):
    kwargs = {"img_size": None, "batch_size": 64, "threads": None, "workers": None,
              "memory": 16 * GiB, "cpus": 4}
    kwargs.update(given)
    check_sizes(**kwargs)


@pytest.mark.parametrize("given", [
    {}, {"img_size": 224, "batch_size": 256}, {"img_size": 518, "batch_size": 32},
    {"threads": 4 * PER_CPU, "workers": 4 * PER_CPU},
    {"img_size": 0, "batch_size": -1, "threads": 0}])  # the study's checks refuse these
def test_what_can_fit_is_left_alone(given):
    sizes(**given)


def test_an_os_that_does_not_say_its_memory_is_not_second_guessed(monkeypatch):
    monkeypatch.setattr("neurn.limits.physical_memory", lambda: None)
    check_sizes(img_size=100000, batch_size=10 ** 9, threads=None, workers=None)


@pytest.mark.parametrize("given, needle", [
    ({"img_size": 100000}, ("--batch-size 64 at 100000 px: one training batch needs at "
                            "least 14.0 TiB")),
    ({"img_size": 100000, "batch_size": 1}, "at least 223.5 GiB"),
    ({"batch_size": 10 ** 9}, "at 32 px (the smallest default image size)"),
    ({"batch_size": 10 ** 400}, " EiB (its float32 input"),
    ({"threads": 100000}, ("--threads 100000: more than 8 per CPU of this machine "
                           "(4 CPUs); give at most 32")),
    ({"workers": 33}, "--workers 33: "),
    ({"threads": MAX_THREADS + 1, "remote": True}, f"give at most {MAX_THREADS}")])
def test_what_cannot_fit_is_one_line(given, needle):
    with pytest.raises(ValueError) as info:
        sizes(**given)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_remote_workers_memory_is_theirs():
    sizes(img_size=100000, batch_size=10 ** 9, threads=MAX_THREADS, remote=True)


def test_the_machine_is_read():
    assert physical_memory() > 0
    with pytest.raises(ValueError, match="more than this machine's"):
        check_sizes(img_size=None, batch_size=10 ** 9, threads=None, workers=None)


@pytest.mark.parametrize("argv, needle", [
    (["--img-size", "100000"], "--batch-size 64 at 100000 px"),
    (["--batch-size", str(10 ** 9)], "--batch-size 1000000000 at 32 px"),
    (["--threads", "100000"], "--threads 100000: more than"),
    (["--threads", "100000", "--scheduler", "tcp://127.0.0.1:9"], "give at most 4096")])
def test_neurn_run_refuses_before_anything(tmp_path, capsys, argv, needle):
    out = tmp_path / "study"
    assert main(["run", "convnet", *argv, "--out", str(out), "--cache-dir",
                 str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("neurn run: error: ") and needle in err
    assert not out.exists() and not (tmp_path / "cache").exists()
