"""``archalign shortlist``: k diverse models, from models or from a saved SIM.npz."""
from __future__ import annotations

import argparse
from pathlib import Path

from archalign.cli.matrix_cmd import draw
from archalign.cli.options import (add_linkage, add_model_args, check_figures, linkage,
                                   matrix_file, model_specs, renamed_option, token_settings)
from archalign.similarity.matrix_file import SUFFIXES as MATRIX_SUFFIXES
from archalign.utils.args import check_output, positive_int
from archalign.utils.errors import UsageError

STRATEGIES = ("medoids", "farthest")


def add_shortlist(subparsers) -> None:
    p = subparsers.add_parser(
        "shortlist", help="pick k diverse models (writes shortlist.json for neurn)",
        description="Pick k diverse architectures: one medoid per cluster of the full "
                    "similarity matrix, or greedy farthest points. The matrix is made from "
                    "the models, or read from a SIM.npz that `archalign matrix` wrote. "
                    "--streaming never builds the n x n matrix (n x k alignments), for "
                    "zoo-sized inputs.",
        epilog="examples:\n"
               "  archalign shortlist --panel default -k 3 --out shortlist.json\n"
               "  archalign shortlist sim.npz -k 3 --dendrogram picks.png\n"
               "  archalign shortlist 'resnet*' 'vit_*' -k 5 --streaming --out s.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, "timm names, wildcard patterns, torchvision:<name> or ONNX files "
                       "(model.onnx, onnx:PATH, onnx:dir/*.onnx); or one SIM.npz written by "
                       "`archalign matrix`, whose models and setting it keeps")
    p.add_argument("-k", type=positive_int, required=True, help="how many models to pick")
    p.add_argument("--strategy", choices=STRATEGIES,
                   help="medoids: one per cluster; farthest: greedy farthest points "
                        "(default: medoids)")
    # --method: the strategy's name before issue 28 (now --linkage everywhere)
    p.add_argument("--method", dest="old_method", choices=STRATEGIES, help=argparse.SUPPRESS)
    add_linkage(p)
    p.add_argument("--streaming", action="store_true",
                   help="farthest points without the full matrix (implies --strategy "
                        "farthest)")
    p.add_argument("--must-include", nargs="+", default=[], metavar="MODEL",
                   help="models that must be picked")
    p.add_argument("--exclude", nargs="+", default=[], metavar="MODEL",
                   help="models that must not be picked")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="write the shortlist .json (without it the picks are only printed)")
    p.add_argument("--matrix", type=Path, metavar="SIM.npz",
                   help="also save the full similarity matrix (not with --streaming)")
    p.add_argument("--dendrogram", type=Path, metavar="PNG",
                   help="also draw the dendrogram, coloured by the k clusters, the picks "
                        "marked")
    p.add_argument("--heatmap", type=Path, metavar="PNG",
                   help="also draw the clustered heatmap, the picks marked")
    p.set_defaults(func=_run_shortlist)


def _run_shortlist(args) -> int:
    from archalign.similarity.compare import similarity_matrix
    from archalign.similarity.matrix import SimilarityMatrix
    from archalign.similarity.shortlist import shortlist

    if args.out is not None:
        check_output(args.out, "--out", (".json",))
    renamed_option(args, "--method", "--strategy", "strategy")
    strategy = args.strategy or ("farthest" if args.streaming else "medoids")
    method = linkage(args)
    if args.streaming and (args.matrix or args.dendrogram or args.heatmap):
        raise UsageError("--streaming builds no matrix: drop --matrix / --dendrogram / "
                         "--heatmap")
    if args.streaming and strategy != "farthest":
        raise UsageError("--streaming picks farthest points: drop --strategy medoids")
    if args.matrix is not None:
        check_output(args.matrix, "--matrix", MATRIX_SUFFIXES)
    check_figures(dendrogram=args.dendrogram, heatmap=args.heatmap)
    saved = matrix_file(args)
    if saved is not None and (args.streaming or args.matrix):
        raise UsageError(f"{saved} is a matrix already: drop "
                         f"{'--streaming' if args.streaming else '--matrix'}")
    if saved is not None:
        sm = SimilarityMatrix.load(saved)
    else:
        kwargs = token_settings(args)  # refused, if it must be, before anything is traced
        specs = model_specs(args)
        if args.streaming:
            sm = None
            result = shortlist(specs, args.k, **kwargs, must_include=args.must_include,
                               exclude=args.exclude, n_jobs=args.n_jobs,
                               cache_dir=args.cache_dir, progress=args.progress)
        else:
            sm = similarity_matrix(specs, **kwargs, n_jobs=args.n_jobs,
                                   cache_dir=args.cache_dir, progress=args.progress)
    if sm is not None:
        result = sm.shortlist(args.k, strategy=strategy, must_include=args.must_include,
                              exclude=args.exclude, method=method)
        if args.matrix:
            sm.save(args.matrix)
            print(f"wrote {args.matrix}")
        draw(sm, args.dendrogram, args.heatmap, n_clusters=args.k, method=method,
             shortlist=result)
    if args.out is not None:
        result.save(args.out)
    where = f" -> {args.out}" if args.out is not None else ""
    print(f"shortlist ({result.strategy}, k={args.k}): {', '.join(result.names)}{where}")
    return 0
