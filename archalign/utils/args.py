"""argparse pieces both command lines (``archalign``, ``neurn``) share: value types
that refuse nonsense at parse time, a parser whose errors are one line, the one line an
OSError or an interruption becomes, output paths checked before any work, Python
warnings as one line, and the one error boundary each CLI's ``main`` runs its command in
(:func:`error_boundary`)."""
from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from archalign.utils.errors import UsageError

__all__ = ["ArgumentsRefused", "OneLineParser", "check_output", "error_boundary",
           "finite_float", "nonnegative_int", "nonpositive_float", "one_line_warnings",
           "os_error_line", "positive_float", "positive_int", "process_count"]


class ArgumentsRefused(SystemExit):
    """A command line argparse refused (already reported); ``main`` returns 2."""


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``prog: error: ...; see prog --help``), exit status 2,
    raised as :class:`ArgumentsRefused` so that ``main()`` can return the status."""

    def error(self, message):
        import sys

        print(f"{self.prog}: error: {message}; see {self.prog} --help", file=sys.stderr)
        raise ArgumentsRefused(2)


def _number(kind, text: str, test, wanted: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
    if not test(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 1, "a whole number >= 1")


# Processes per CPU beyond which a count is a typo, not a plan: each process holds its
# own interpreter and torch, so 100,000 of them would only exhaust the machine.
PROCESSES_PER_CPU = 8


def process_count(text: str) -> int:
    """A number of worker processes: >= 1 and at most ``PROCESSES_PER_CPU`` per CPU."""
    most = PROCESSES_PER_CPU * (os.cpu_count() or 1)
    return _number(int, text, lambda v: 1 <= v <= most,
                   f"a whole number from 1 to {most} ({PROCESSES_PER_CPU} per CPU of this "
                   f"machine)")


def nonnegative_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "a whole number >= 0")


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: math.isfinite(v) and v > 0, "a number > 0")


def finite_float(text: str) -> float:
    return _number(float, text, math.isfinite, "a finite number")


def nonpositive_float(text: str) -> float:
    # gaps: scores are added to the total, so a gap that scored > 0 would be a reward
    return _number(float, text, lambda v: math.isfinite(v) and v <= 0,
                   "a number <= 0 (gap scores are added to the total: a gap costs, e.g. -1)")


_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or fix the permissions",
    errno.EPERM: "permission denied: write elsewhere or fix the permissions",
    errno.EISDIR: "a folder is in the way: give a file name",
    errno.ENOTDIR: "a parent of this path is a file, not a folder",
    errno.EEXIST: "a file is in the way",
}


def os_error_line(exc: OSError) -> str:
    """``"<path>: <what happened> (<what to do>)"`` for an OSError, naming the user's
    path (the atomic writer reports the target, never its temp file)."""
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    hint = _HINTS.get(exc.errno, "")
    text = f"{where}: {what}" if where else what
    return f"{text} ({hint})" if hint else text


def check_output(path, option: str, suffixes=(), *, folder: bool = False) -> Path:
    """Refuse an output a command could not write, before it computes or writes anything.

    Parameters
    ----------
    path : path-like
        The output the user named.
    option : str
        The option that named it (``"--out"``), for the message.
    suffixes : sequence of str
        The file types ``option`` writes (``(".npz", ".csv")``), matched case-blind;
        empty: any file name.
    folder : bool
        ``path`` is a folder to create or fill, not a file.

    Returns
    -------
    Path
        ``path``, when its type is known, it is not a folder (a file, for ``folder``),
        and the nearest existing folder above it is a writable folder (missing folders
        are made later, by the writer).

    Raises
    ------
    ValueError
        One line naming ``option``, the path and what to give instead.
    """
    path = Path(path)
    wanted = " or ".join(suffixes) if len(suffixes) <= 3 else f"one of {', '.join(suffixes)}"
    if folder:
        if path.exists() and not path.is_dir():
            raise UsageError(f"{option} {path}: is a file; {option} takes a folder")
    elif path.is_dir():
        example = path / ("out" + (suffixes[0] if suffixes else ".txt"))
        raise UsageError(f"{option} {path}: is a folder; name a file in it"
                         f"{' ending in ' + wanted if wanted else ''}, e.g. {example}")
    elif suffixes and path.suffix.lower() not in suffixes:
        kind = f"unknown file type {path.suffix!r}" if path.suffix else "no file type"
        raise UsageError(f"{option} {path}: {kind}; name a file ending in {wanted}")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is a file, not a folder; write "
                         f"elsewhere")
    if not os.access(parent, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(parent).f_flag & os.ST_RDONLY
        why = "is on a read-only file system" if read_only else "is not writable"
        raise UsageError(f"{option} {path}: {parent} {why}; write elsewhere")
    return path


def one_line_warnings(prog: str) -> None:
    """Show Python warnings as one line, ``<prog>: warning: <message>``, instead of
    Python's two (file:line: Category: message, then the source line), which read as
    a crash on a command line. Installed by each CLI's ``main``."""
    import warnings

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        try:
            print(f"{prog}: warning: {text}", file=file or sys.stderr)
        except OSError:  # a closed stderr must not turn a warning into an error
            pass

    warnings.showwarning = showwarning


def error_boundary(prog: str, run: Callable[[], int], *, prefix: str | None = None,
                   interrupted: Callable[[KeyboardInterrupt], str]) -> int:
    """Run a command (``run()`` returns its exit status) the way both CLIs do.

    A :class:`~archalign.utils.errors.UserError` or an ``OSError`` is the user's to fix:
    one line, ``<prefix>: error: <message>``, status 2. Ctrl-C: one line saying what was
    kept (``interrupted(exc)``), status 130. Anything else is a bug in our code, not in
    the input: its traceback and a line asking for a report, status 1.
    ``<PROG>_DEBUG=1`` re-raises all of them. Warnings are one line while it runs.
    """
    import traceback
    import warnings

    from archalign._version import __version__
    from archalign.utils.errors import UserError

    prefix = prefix or prog
    # <PROG>_DEBUG=1: every exception goes through with its traceback
    debug = os.environ.get(f"{prog.upper()}_DEBUG", "0") not in ("", "0")
    try:
        with warnings.catch_warnings():  # restores showwarning when the command ends
            one_line_warnings(prog)
            return run()
    except BrokenPipeError:
        # the reader went away (`archalign diff A B | head`): not an error, and stdout is
        # closed, so print nothing more there; 141 is a shell's status for SIGPIPE
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 141
    except (UserError, OSError) as exc:
        if debug:
            raise
        message = os_error_line(exc) if isinstance(exc, OSError) else str(exc)
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if debug:
            raise
        print(f"{prefix}: interrupted: {interrupted(exc)}", file=sys.stderr)
        return 130
    except Exception:
        if debug:
            raise
        traceback.print_exc()
        print(f"{prefix}: internal error: this is a bug in {prog} {__version__}, not in "
              f"your input; please report it with the traceback above and the command you "
              f"ran ({prog.upper()}_DEBUG=1 shows the traceback of every error)",
              file=sys.stderr)
        return 1
