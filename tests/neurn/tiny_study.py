"""The tiny study the fault suites share: timm's ``test_resnet``, 4 steps, 2 validation
points, a few dozen images (``tests/neurn/conftest.py`` trains it once per module)."""
from __future__ import annotations

import hashlib
import os
import re

TINY = "test_resnet"

HEADER = re.compile(r"neurn run: \d+ models? \(")
"""The run header, the first line of every `neurn run` that gets as far as its study."""
LOG_LINE = re.compile(r"neurn run: \S+: (started|finished .*|"
                      r"step \d+/\d+ \((epoch|evaluation) \d+ of \d+\): .*)")
"""A run's start and finish, and one line per validation round where no bar is drawn."""


def split_log(err: str) -> tuple[list[str], list[str]]:
    """``neurn run``'s stderr as its log (the header, then run and evaluation lines, all
    it prints before a failure) and the lines after it."""
    lines = err.strip().splitlines()
    if not lines or not HEADER.match(lines[0]):
        return [], lines
    n = 1
    while n < len(lines) and LOG_LINE.fullmatch(lines[n]):
        n += 1
    return lines[:n], lines[n:]


def run_args(out, cache, *extra):
    """``neurn run`` arguments of the tiny study into ``out``, with ``extra`` options."""
    return ["run", TINY, "--variants", "baseline", "--targets", "optdigits", "--steps", "4",
            "--evals", "2", "-b", "8", "--eval-limit", "16", "--train-limit", "32",
            "--device", "cpu", "--threads", "1", "--cache-dir", str(cache), "--out", str(out),
            "--no-progress", *extra]


def ctrl_c_at_epoch(patch, n: int = 2) -> list:
    """Make the ``n``-th training epoch (counted over every run; the default is the tiny
    run's 2nd, after the 1st is checkpointed) raise KeyboardInterrupt, as Ctrl-C would,
    through ``patch`` (a pytest MonkeyPatch). Returns the keyword arguments of each
    epoch started, appended as they start."""
    from neurn.study import train as train_module

    real, calls = train_module.train_one_epoch, []

    def interrupting(*args, **kwargs):
        calls.append(kwargs)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    patch.setattr(train_module, "train_one_epoch", interrupting)
    return calls


def folder_state(folder, *, mtimes: bool = True) -> dict:
    """Every file's bytes (and modification time: a rewrite of the same bytes shows too)
    and every folder's name under ``folder``."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            state[os.path.relpath(os.path.join(root, name), folder)] = "dir"
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            state[os.path.relpath(path, folder)] = ((digest, os.stat(path).st_mtime_ns)
                                                    if mtimes else digest)
    return state


def error_line(text: str, *needles) -> str:
    """The one error line of a refused command's stderr ``text`` (after the header and
    run lines a study that got that far logged), holding every needle."""
    _, lines = split_log(text)
    assert len(lines) == 1 and "Traceback" not in text, text
    assert lines[0].startswith("neurn ") and ": error: " in lines[0], text
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]

