"""The ``archalign`` command line, over every stage: argv in, library calls, files and an
exit status out. Open this module first (``main``, ``build_parser``), then the
``*_cmd`` module of a subcommand.

One function registers each subcommand on the subparsers and sets ``func`` to the
function that runs it; runners take the parsed namespace, translate it into keyword
arguments for the library and return the exit status. Add a subcommand by writing
an ``add_<name>(subparsers)`` / ``_run_<name>(args)`` pair in a module of this package
(``trace_cmd``, ``matrix_cmd``, ``shortlist_cmd``, ``align_cmd``, ``diff_cmd``; options several
share are in ``options``)
and listing the first in ``_SUBCOMMANDS``.

Subcommands: ``trace``, ``matrix``, ``cluster``, ``shortlist``, ``plot``, ``align``,
``diff``, ``report``.
Errors a user can fix (unknown model, bad option combination, missing or damaged
file, an OS error, a nonsense value, an output that could not be written: a
:class:`~archalign.utils.errors.UserError` or an ``OSError``) are printed as one line and
exit with status 2, before anything is computed or written where they can be known then;
warnings are one line too (``archalign: warning: ...``); Ctrl-C is one line and status
130. Any other exception is a bug: its traceback, a request for a report, status 1
(:func:`archalign.utils.args.error_boundary`; ``ARCHALIGN_DEBUG=1`` re-raises all).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from archalign.utils.args import ArgumentsRefused, OneLineParser, error_boundary
from archalign._version import __version__
from archalign.cli.align_cmd import add_align, add_report
from archalign.cli.diff_cmd import add_diff
from archalign.cli.matrix_cmd import add_cluster, add_matrix, add_plot
from archalign.cli.shortlist_cmd import add_shortlist
from archalign.cli.trace_cmd import add_trace

__all__ = ["main", "build_parser"]


# -------------------------------------------------------------------------- main
_SUBCOMMANDS = [add_trace, add_matrix, add_cluster, add_shortlist, add_plot, add_align,
                add_diff, add_report]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="archalign",
        description="Architecture similarity of PyTorch models by global alignment of "
                    "their layer-token sequences.")
    parser.add_argument("--version", action="version", version=f"archalign {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except ArgumentsRefused as e:
        return e.code
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return error_boundary("archalign", lambda: args.func(args), interrupted=_interrupted)


def _interrupted(exc: KeyboardInterrupt) -> str:
    return ("finished traces stay in the cache (and finished blocks in --blocks-dir): run "
            "the same command again to resume")

if __name__ == "__main__":
    sys.exit(main())
