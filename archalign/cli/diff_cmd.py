"""``archalign diff``: what differs between two models, as text, JSON or an HTML page."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from archalign.utils.args import check_output, nonnegative_int
from archalign.utils.io import atomic_write_text
from archalign.cli.options import add_token_args, token_settings


_SUFFIXES = {"text": (), "json": (".json",), "html": (".html", ".htm")}


def add_diff(subparsers) -> None:
    p = subparsers.add_parser(
        "diff", help="what differs between two models, in words",
        description="Trace two models and show what differs: a header naming each "
                    "change (depth per stage, width, changed hyper-parameters, inserted "
                    "and removed layers, parameter counts), then a unified diff of their "
                    "rolled module structures. The similarity options only set the "
                    "header's similarity; the diff reads every hyper-parameter.",
        epilog="examples:\n"
               "  archalign diff resnet50 resnext50_32x4d\n"
               "  archalign diff resnet50 resnet101 --format json --out r50-r101.json\n"
               "  archalign diff transformers:bert transformers:roberta --format html "
               "--out bert.html\n"
               "  archalign diff resnet18 exports/resnet18.onnx\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", metavar="MODEL_A")
    p.add_argument("b", metavar="MODEL_B")
    p.add_argument("--format", choices=("text", "json", "html"), default="text",
                   help="text (default), json (the edit script, for tools) or html (a "
                        "self-contained side-by-side page)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="write to FILE (atomically) instead of standard output")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the text on a terminal (auto: when standard output is "
                        "one and NO_COLOR is unset)")
    p.add_argument("--context", type=nonnegative_int, default=3, metavar="N",
                   help="unchanged items shown around each change (default: %(default)s)")
    p.add_argument("--hierarchical", action=argparse.BooleanOptionalAction,
                   help="compare module trees (default: when both models have them; "
                        "ONNX graphs do not)")
    add_token_args(p)
    p.add_argument("--cache-dir", metavar="DIR", type=Path, help="trace cache root")
    p.set_defaults(func=_run_diff)


def _run_diff(args) -> int:
    from archalign.diffing import diff

    if args.out is not None:  # text goes to any file name; the two formats to their own
        check_output(args.out, "--out", _SUFFIXES[args.format])
    d = diff(args.a, args.b, hierarchical=args.hierarchical, cache_dir=args.cache_dir,
             **token_settings(args))
    if args.format == "json":
        text = d.to_json()
    elif args.format == "html":
        text = d.to_html()
    else:
        color = args.color == "always" or (
            args.color == "auto" and args.out is None and sys.stdout.isatty()
            and not os.environ.get("NO_COLOR"))
        text = d.to_text(color=color, context=args.context)
    if args.out is None:
        print(text)
    else:
        atomic_write_text(args.out, text + "\n")
        print(f"wrote {args.out} ({len(d)} changes)")
    return 0
