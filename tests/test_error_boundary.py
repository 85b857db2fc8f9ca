"""One error boundary per command line (issue 27): the user's errors (our UserError types
and OSError) are one line and status 2; anything else is a bug, shown with its traceback,
a request for a report and status 1; ``<PROG>_DEBUG=1`` re-raises everything."""
from __future__ import annotations

import numpy as np
import pytest

import neurn.data
from archalign.cli import main as archalign_main
from neurn.cli import main as neurn_main
from archalign.similarity.matrix import SimilarityMatrix
from archalign.utils.errors import (DataError, MissingExtraError, UnknownNameError, UsageError,
                                    UserError)


@pytest.fixture
def sim_path(tmp_path):
    sm = SimilarityMatrix(["a", "b", "c"], np.eye(3), np.eye(3) * 0.5 + 0.5,
                          settings={"granularity": "shape"})
    return str(sm.save(tmp_path / "sim.npz"))


def _bug(*args, **kwargs):
    return 1 / 0


def _bad_input(*args, **kwargs):
    raise DataError("sim.npz: damaged; rebuild it")


@pytest.fixture(params=["archalign", "neurn"])
def command(request, monkeypatch, sim_path):
    """(prog, the module whose function the command calls, that function's name, argv)."""
    monkeypatch.delenv("ARCHALIGN_DEBUG", raising=False)
    monkeypatch.delenv("NEURN_DEBUG", raising=False)
    if request.param == "archalign":
        return "archalign", SimilarityMatrix, "load", archalign_main, ["cluster", sim_path, "-n", "2"]
    return "neurn", neurn.data, "list_domains", neurn_main, ["domains"]


def test_a_bug_is_a_traceback_and_a_request_for_a_report(command, monkeypatch, capsys):
    prog, owner, name, main, argv = command
    monkeypatch.setattr(owner, name, _bug)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err, err
    assert "internal error" in err and "please report it" in err, err
    assert "error: division by zero" not in err  # never dressed as bad input


def test_a_user_error_is_one_line_and_status_2(command, monkeypatch, capsys):
    prog, owner, name, main, argv = command
    monkeypatch.setattr(owner, name, _bad_input)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(prog) and "error: sim.npz: damaged; rebuild it" in err


def test_an_os_error_is_one_line_and_status_2(command, monkeypatch, capsys):
    prog, owner, name, main, argv = command

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/data/x")
    monkeypatch.setattr(owner, name, denied)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/data/x" in err and "Traceback" not in err, err


@pytest.mark.parametrize("raiser", [_bug, _bad_input])
def test_debug_re_raises_everything(command, monkeypatch, raiser):
    prog, owner, name, main, argv = command
    monkeypatch.setattr(owner, name, raiser)
    monkeypatch.setenv(f"{prog.upper()}_DEBUG", "1")
    with pytest.raises((ZeroDivisionError, DataError)):
        main(argv)


def test_the_user_errors_keep_their_builtin_bases():
    # Python callers that catch the built-in types keep working
    assert issubclass(UsageError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(UnknownNameError, KeyError) and issubclass(MissingExtraError, ImportError)
    assert all(issubclass(e, UserError) for e in (UsageError, DataError, UnknownNameError,
                                                  MissingExtraError))
    assert str(UnknownNameError("unknown domain 'x'")) == "unknown domain 'x'"  # unquoted


def test_a_reader_that_goes_away_is_not_an_error():
    # `archalign diff A B | head`: the pipe closes early; no error line, the shell's status
    import subprocess
    import sys

    code = ("import sys; from archalign.utils.args import error_boundary\n"
            "def run():\n"
            "    for i in range(10**6):\n"
            "        print('line', i)\n"
            "    return 0\n"
            "sys.exit(error_boundary('archalign', run, interrupted=str))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(100)
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""
