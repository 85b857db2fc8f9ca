"""Options shared by the subcommands: model specs, tokens, scoring, output checks, and
the vocabulary of issue 28 (scipy's and scikit-learn's): ``--linkage`` for the
linkage, ``--strategy`` for a shortlist's choice, ``-j/--n-jobs``. The spellings they
replace stay as hidden options (``--jobs`` silently; ``--method``, whose meaning
changes, with a warning) for one release.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from archalign import defaults
from archalign.utils.errors import UsageError
from archalign.utils.args import (check_output, finite_float, nonnegative_int, nonpositive_float,
                             positive_int)


# ------------------------------------------------------------------------ outputs
def check_figures(**paths) -> None:
    """Refuse figure outputs (``option=path``, None for not asked) matplotlib could not
    write there, before any work."""
    asked = {option: path for option, path in paths.items() if path is not None}
    if not asked:
        return
    from matplotlib.backend_bases import FigureCanvasBase

    common = (".png", ".pdf", ".svg")
    others = sorted({f".{s}" for s in FigureCanvasBase.get_supported_filetypes()} - set(common))
    for option, path in asked.items():
        check_output(path, f"--{option}", (*common, *others))


# ------------------------------------------------------- shared model / scoring options
def add_model_args(p, models_help: str) -> None:
    p.add_argument("models", nargs="*", metavar="MODEL", help=models_help)
    p.add_argument("--panel", metavar="NAME",
                   help="add a named panel of models: 'default' (24 timm architectures "
                        "across families), 'cpu' (4 small ones, quick to train on a CPU) or "
                        "'paper44' (the NeuRN paper's models as timm / torchvision "
                        "equivalents)")
    add_token_args(p)
    add_n_jobs(p, "tracing processes and alignment threads (default: all CPUs)")
    p.add_argument("--cache-dir", metavar="DIR", type=Path, help="trace cache root "
                   "(default: $ARCHALIGN_CACHE_DIR or ~/.cache/archalign/traces)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="do not show progress bars")


def add_n_jobs(p, help_text: str) -> None:
    """``-j/--n-jobs N``, scikit-learn's name; ``--jobs``, the first releases', hidden."""
    p.add_argument("-j", "--n-jobs", type=positive_int, metavar="N", help=help_text)
    p.add_argument("--jobs", dest="n_jobs", type=positive_int, help=argparse.SUPPRESS)


LINKAGES = ("average", "complete", "single", "weighted")


def add_linkage(p, old_method: bool = False) -> None:
    """``--linkage METHOD`` (``args.linkage``, None when not given: see :func:`linkage`);
    ``old_method``: also the hidden ``--method``, the linkage's name on ``cluster``
    before issue 28."""
    p.add_argument("--linkage", choices=LINKAGES,
                   help="how clusters merge in the dendrogram: average (UPGMA, the "
                        "default), complete, single or weighted (scipy's linkage methods)")
    if old_method:
        p.add_argument("--method", dest="old_method", choices=LINKAGES, help=argparse.SUPPRESS)


def linkage(args) -> str:
    """The linkage asked for: ``--linkage``, or the old ``--method`` with a warning, or
    average."""
    renamed_option(args, "--method", "--linkage", "linkage")
    return args.linkage or "average"


def renamed_option(args, old: str, new: str, dest: str) -> None:
    """Move the value of the hidden option ``old`` (parsed into ``args.old_method``) to
    ``new`` (``args.<dest>``), with a FutureWarning; both given differently: refused."""
    value = getattr(args, "old_" + old.lstrip("-"), None)
    if value is None:
        return
    setattr(args, "old_" + old.lstrip("-"), None)  # moved once, warned once
    given = getattr(args, dest)
    if given is not None and given != value:
        raise UsageError(f"{old} is the old name of {new}; give {new} alone")
    warnings.warn(f"{old} is now {new} here (the old spelling goes in the next release)",
                  FutureWarning, stacklevel=2)
    setattr(args, dest, value)


def matrix_file(args) -> Path | None:
    """The SIM.npz given in place of models (``archalign shortlist sim.npz``), or None
    when models are given; refused beside models, a panel or the token options, which
    the matrix fixes itself."""
    files = [m for m in args.models if str(m).lower().endswith(".npz")]
    if not files:
        return None
    if len(args.models) > 1 or args.panel:
        raise UsageError(f"give one SIM.npz or models, not both ({files[0]} and "
                         f"{'--panel' if args.panel else 'models'})")
    tokens = ("granularity", "rolled", "as_exported", "family", "match", "mismatch", "gap",
              "gap_open", "gap_extend")
    given = [k for k in tokens if getattr(args, k, None) is not None]
    if getattr(args, "max_period", 0):
        given.append("max_period")
    if given:
        raise UsageError(f"{files[0]} holds a matrix made with its own tokens and scoring; "
                         f"drop --{', --'.join(g.replace('_', '-') for g in given)}")
    return Path(files[0])


def model_specs(args) -> list:
    from archalign.similarity.panels import PAPER44_UNAVAILABLE, panel

    specs = list(args.models)
    if args.panel:
        specs += panel(args.panel)
        if args.panel == "paper44":
            print(f"paper44: {len(PAPER44_UNAVAILABLE)} of the paper's models have no "
                  f"timm/torchvision equivalent and are left out:", file=sys.stderr)
            for name, why in PAPER44_UNAVAILABLE.items():
                print(f"  {name}: {why}", file=sys.stderr)
    if not specs:
        raise UsageError("give model names / patterns, or --panel NAME")
    return specs


def add_token_args(p) -> None:
    """Token and scoring options; the defaults are archalign.defaults'."""
    p.add_argument("-g", "--granularity", choices=("type", "shape", "full"),
                   help="token detail: op type only; + kernel/stride/groups; all "
                        f"hyper-parameters (default: {defaults.GRANULARITY})")
    p.add_argument("--rolled", action=argparse.BooleanOptionalAction,
                   help="collapse tandem repeats of blocks to one copy before aligning, so "
                        f"depth does not drown design (default: {_on(defaults.ROLLED)})")
    p.add_argument("--max-period", type=nonnegative_int, default=defaults.MAX_PERIOD or 0, metavar="N",
                   help="longest repeated block (in tokens) that --rolled collapses; 0 for "
                        "no limit (default: %(default)s)")
    p.add_argument("--as-exported", action=argparse.BooleanOptionalAction,
                   help="read every model as an inference export writes it: BatchNorm "
                        "folded into its conv, Flatten as reshape, global average pooling "
                        "as mean (default: on when a model is an ONNX file)")
    p.add_argument("--family", action=argparse.BooleanOptionalAction,
                   help="give related tokens partial credit (conv variants, norms, "
                        "activations, attention ops) instead of a flat mismatch "
                        f"(default: {_on(defaults.FAMILY)})")
    p.add_argument("--match", type=finite_float,
                   help=f"score of identical tokens (default {defaults.MATCH:g})")
    p.add_argument("--mismatch", type=finite_float,
                   help=f"score of different tokens (default {defaults.MISMATCH:g})")
    p.add_argument("--gap", type=nonpositive_float,
                   help="linear gaps: score per gapped position (<= 0)")
    p.add_argument("--gap-open", type=nonpositive_float,
                   help=f"affine gaps: score of a gap's first position (default "
                        f"{defaults.GAP_OPEN:g})")
    p.add_argument("--gap-extend", type=nonpositive_float,
                   help=f"affine gaps: score of each further position (default "
                        f"{defaults.GAP_EXTEND:g})")


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def token_settings(args, preset: str | None = None) -> dict:
    """``settings=`` (an EncodingSettings) and ``scoring=`` (a Scoring) of
    similarity_matrix / align_models / shortlist / diff from the token options, with
    ``preset`` filling what they leave out; refused here, before any model is traced, in
    the options' own names."""
    from archalign.tokens.scoring import Scoring
    from archalign.tokens.settings import EncodingSettings, resolve_settings

    fields = {"granularity": args.granularity, "rolled": args.rolled, "family": args.family,
              "max_period": args.max_period or None, "as_exported": args.as_exported}
    if preset is not None:
        _check_preset(args, preset)  # what is left agrees with it; it brings its scoring
        settings, scoring = resolve_settings(preset=preset, **fields)
        return {"settings": settings, "scoring": scoring}
    try:
        gap_open, gap_extend = defaults.resolve_gaps(args.gap, args.gap_open,
                                                     args.gap_extend)
    except ValueError as exc:
        raise UsageError(_option_names(str(exc))) from None
    if args.family and (args.match is not None or args.mismatch is not None):
        raise UsageError("--family builds its own substitution matrix; drop --match / "
                         "--mismatch or --family")
    match = defaults.MATCH if args.match is None else args.match
    mismatch = defaults.MISMATCH if args.mismatch is None else args.mismatch
    try:
        defaults.check_match(match, mismatch)
    except ValueError as exc:
        raise UsageError(_option_names(str(exc))) from None
    # with --family, the flat scores the vocabulary adds family credit to
    scoring = Scoring(match=match, mismatch=mismatch, gap_open=gap_open, gap_extend=gap_extend)
    settings = EncodingSettings(**{k: v for k, v in fields.items() if v is not None})
    return {"settings": settings, "scoring": scoring}


def _check_preset(args, preset: str) -> None:
    """Refuse, in option names, an option that says otherwise than ``--preset``."""
    from archalign.tokens.settings import preset_values

    fixed = preset_values(preset)
    scoring = fixed["scoring"]
    wanted = {"granularity": fixed["granularity"], "rolled": fixed["rolled"],
              "family": fixed["family"], "match": scoring.match, "mismatch": scoring.mismatch,
              "gap": None if scoring.affine else scoring.gap_open,
              "gap_open": scoring.gap_open, "gap_extend": scoring.gap_extend,
              "similarity": fixed["similarity"]}
    given = [k for k, v in wanted.items() if getattr(args, k, None) is not None
             and getattr(args, k) != v]
    if given:
        shown = (f"-g {fixed['granularity']} --{'' if fixed['rolled'] else 'no-'}rolled "
                 f"--{'' if fixed['family'] else 'no-'}family --match {scoring.match:g} "
                 f"--mismatch {scoring.mismatch:g} --gap {scoring.gap_open:g} "
                 f"--similarity {fixed['similarity']}")
        raise UsageError(f"--preset {preset} fixes the tokens and the scoring ({shown}); "
                         f"drop --{', --'.join(g.replace('_', '-') for g in given)}")


def _option_names(message: str) -> str:
    """A library message about ``gap_open=-1`` as the command line spells it,
    ``--gap-open -1``."""
    import re

    message = re.sub(r"\b(gap_open|gap_extend|gap|match|mismatch)=",
                     lambda m: f"--{m[1].replace('_', '-')} ", message)
    return re.sub(r"\bgap_(open|extend)\b", r"--gap-\1", message)
