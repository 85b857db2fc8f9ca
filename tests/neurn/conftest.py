"""Fixtures of the tiny study (``tiny_study.py``) the fault suites share. ``finished``
needs a module-scoped ``cache`` fixture from the test module that uses it."""
from __future__ import annotations

import shutil

import pytest

from neurn.cli import main
from neurn.study import train as train_module
from tiny_study import run_args


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache):
    """The tiny study, trained once per module."""
    out = tmp_path_factory.mktemp("finished") / "study"
    assert main(run_args(out, cache)) == 0
    return out


@pytest.fixture
def study(finished, tmp_path):
    """A private copy of the finished study."""
    return shutil.copytree(finished, tmp_path / "study")


@pytest.fixture
def no_training(monkeypatch):
    """Training must not start (a refusal is expected first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(train_module, "train_one_epoch", refuse)
