"""argparse pieces both command lines (``archalign``, ``neurn``) share: value types
that refuse nonsense at parse time, a parser whose errors are one line, and the one
line an OSError or an interruption becomes."""
from __future__ import annotations

import argparse
import errno
import math

__all__ = ["OneLineParser", "UsageError", "positive_int", "positive_float", "nonnegative_int",
           "finite_float", "os_error_line"]


class UsageError(SystemExit):
    """A command line argparse refused (already reported); ``main`` returns 2."""


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``prog: error: ...; see prog --help``), exit status 2,
    raised as :class:`UsageError` so that ``main()`` can return the status."""

    def error(self, message):
        import sys

        print(f"{self.prog}: error: {message}; see {self.prog} --help", file=sys.stderr)
        raise UsageError(2)


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


def nonnegative_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "a whole number >= 0")


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: math.isfinite(v) and v > 0, "a number > 0")


def finite_float(text: str) -> float:
    return _number(float, text, math.isfinite, "a finite number")


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
