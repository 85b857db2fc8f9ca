"""``archalign matrix``, ``cluster``, ``shortlist`` and ``plot``: a similarity matrix and what
follows from it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from archalign.utils.args import check_output, finite_float, positive_int, process_count
from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_savefig
from archalign.cli.options import add_model_args, check_figures, model_specs, token_settings
from archalign.similarity.matrix_file import SUFFIXES as MATRIX_SUFFIXES
from archalign.tokens.settings import PRESETS


# ------------------------------------------------------------------------ matrix
def add_matrix(subparsers) -> None:
    p = subparsers.add_parser(
        "matrix", help="similarity matrix of a set of models (.npz / .csv)",
        description="Trace the models, align every pair of token sequences and write the "
                    "similarity matrix.",
        epilog="examples:\n"
               "  archalign matrix resnet18 resnet50 'efficientnet_b?' --out sim.npz\n"
               "  archalign matrix --panel paper44 --preset paper --out paper.npz "
               "--heatmap paper.png\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, "timm names, wildcard patterns, torchvision:<name> or ONNX files "
                       "(model.onnx, onnx:PATH, onnx:dir/*.onnx)")
    p.add_argument("--similarity", choices=("normalized", "correlation"),
                   help="normalized: in [0, 1] from the alignment scores; correlation: the "
                        "paper's Pearson correlation of score rows (default: normalized; "
                        "correlation with --preset paper)")
    p.add_argument("--preset", choices=PRESETS,
                   help="paper: type tokens, unrolled, match 1 / mismatch -2 / gap -2, "
                        "correlation; it fills the options not given, and refuses one that "
                        "says otherwise")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="output .npz (everything, reloadable) or .csv (similarity only)")
    p.add_argument("--heatmap", type=Path, metavar="PNG", help="also draw the clustered heatmap")
    p.add_argument("--dendrogram", type=Path, metavar="PNG", help="also draw the dendrogram")
    big = p.add_argument_group(
        "big panels", "compute the score matrix in blocks, resumably and/or on a Dask cluster")
    where = big.add_mutually_exclusive_group()
    # --workers: the first release's name; neurn's --workers counts DataLoader workers
    where.add_argument("--dask-workers", "--workers", dest="dask_workers", type=process_count,
                       metavar="N", help="run blocks on a local Dask cluster of N "
                                         "single-threaded worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run blocks on the Dask cluster at this scheduler address, "
                            "e.g. tcp://10.0.0.5:8786")
    big.add_argument("--block", type=positive_int, metavar="B",
                     help="sequences per block side (default 256; see README for sizing)")
    big.add_argument("--blocks-dir", type=Path, metavar="DIR",
                     help="keep finished blocks on disk here; rerun the same command to "
                          "resume after an interruption")
    p.set_defaults(func=_run_matrix)


def _run_matrix(args) -> int:
    from archalign.similarity.compare import similarity_matrix
    from archalign.similarity.panels import paper_labels

    from archalign.utils.dask import close, local_client

    # every output and option is checked before a model is traced or a file written
    check_output(args.out, "--out", MATRIX_SUFFIXES)
    check_figures(heatmap=args.heatmap, dendrogram=args.dendrogram)
    if args.blocks_dir is not None:
        check_output(args.blocks_dir, "--blocks-dir", folder=True)
    kwargs = token_settings(args, args.preset)
    specs = model_specs(args)
    client = local_client(args.dask_workers) if args.dask_workers else None
    try:
        sm = similarity_matrix(
            specs, similarity=args.similarity, preset=args.preset,
            jobs=args.jobs, **kwargs, cache_dir=args.cache_dir, progress=args.progress,
            backend="dask" if (client or args.scheduler) else "threads",
            client=client or args.scheduler, block=args.block, blocks_dir=args.blocks_dir)
    finally:
        if client is not None:
            close(client)
    if args.panel == "paper44":
        names = paper_labels()
        sm.labels = [names.get(x, x) for x in sm.labels]
    sm.save(args.out)
    rolled = "rolled " if sm.settings["rolled"] else ""
    print(f"{len(sm)} models, {sm.similarity} similarity of {rolled}"
          f"{sm.settings['granularity']} tokens, {sm.settings['scoring']} -> {args.out}")
    hidden = sm.hidden_changes()
    if hidden:
        a, b, note = hidden[0]
        why = " (rolled tokens count a repeated block once)" if sm.settings["rolled"] else ""
        where = "; `archalign cluster` lists them" if args.out.suffix == ".npz" else ""
        print(f"note: similarity 1.00 hides a depth or width change for {len(hidden)} "
              f"pair(s){why}, e.g. {a} = {b}: {note}{where}")
    _draw(sm, args.dendrogram, args.heatmap)
    return 0


def _draw(sm, dendrogram_path, heatmap_path, n_clusters=None) -> None:
    for path, draw in ((dendrogram_path, lambda: sm.plot_dendrogram(n_clusters=n_clusters)),
                       (heatmap_path, sm.plot_heatmap)):
        if path is not None:
            atomic_savefig(draw(), path, dpi=150)
            print(f"wrote {path}")


# ----------------------------------------------------------------------- cluster
def add_cluster(subparsers) -> None:
    p = subparsers.add_parser(
        "cluster", help="clusters of a saved similarity matrix",
        description="Cut the average-linkage dendrogram of a matrix written by "
                    "`archalign matrix` and print the clusters, with their agreement with "
                    "the models' name prefixes (adjusted Rand index) and the cophenetic "
                    "correlation.")
    p.add_argument("matrix", type=Path, metavar="SIM.npz")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("-n", "--n-clusters", type=positive_int, metavar="N",
                       help="number of clusters")
    group.add_argument("-t", "--threshold", type=finite_float,
                       help="cut where the distance (1 - similarity) exceeds this")
    p.add_argument("--method", default="average", choices=("average", "complete", "single",
                                                            "weighted"),
                   help="linkage method (default: %(default)s)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write {cluster: [models]}")
    p.set_defaults(func=_run_cluster)


# pairs named per cluster: a family of n designs tied at 1.00 has n(n-1)/2 of them
_MAX_NOTES = 6


def _name_prefix(label: str) -> str:
    import re

    match = re.match(r"[A-Za-z]+", label.split(":")[-1])
    return match.group(0).lower() if match else label


def _run_cluster(args) -> int:
    from archalign.similarity.matrix import SimilarityMatrix

    if args.json is not None:
        check_output(args.json, "--json", (".json",))
    sm = SimilarityMatrix.load(args.matrix)
    ids = sm.clusters(n=args.n_clusters, threshold=args.threshold, method=args.method)
    groups = sm.groups(ids)
    hidden = sm.hidden_changes()
    for c, members in sorted(groups.items()):
        print(f"cluster {c} ({len(members)}): {', '.join(members)}")
        inside = set(members)
        pairs = [(a, b, note) for a, b, note in hidden if a in inside and b in inside]
        if pairs:
            shown = "; ".join(f"{a} = {b} ({note})" for a, b, note in pairs[:_MAX_NOTES])
            more = f"; and {len(pairs) - _MAX_NOTES} more" if len(pairs) > _MAX_NOTES else ""
            print(f"  similarity 1.00, other depth or width: {shown}{more}")
    quality = sm.agreement(_name_prefix, n=len(groups), method=args.method)
    print(f"agreement with name prefixes: adjusted Rand index "
          f"{quality['adjusted_rand_index']:.3f}; cophenetic correlation "
          f"{quality['cophenetic_correlation']:.3f}")
    if args.json:
        from archalign.utils.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({str(k): v for k, v in groups.items()},
                                                indent=1))
    return 0


# --------------------------------------------------------------------- shortlist
def add_shortlist(subparsers) -> None:
    p = subparsers.add_parser(
        "shortlist", help="pick k diverse models (writes shortlist.json for neurn)",
        description="Pick k diverse architectures: one medoid per cluster of the full "
                    "similarity matrix, or greedy farthest points. --streaming never builds "
                    "the n x n matrix (n x k alignments), for zoo-sized inputs.",
        epilog="examples:\n"
               "  archalign shortlist --panel default -k 3 --out shortlist.json\n"
               "  archalign shortlist 'resnet*' 'vit_*' -k 5 --streaming --out s.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, "timm names, wildcard patterns, torchvision:<name> or ONNX files "
                       "(model.onnx, onnx:PATH, onnx:dir/*.onnx)")
    p.add_argument("-k", type=positive_int, required=True, help="how many models to pick")
    p.add_argument("--method", choices=("medoids", "farthest"), default="medoids",
                   help="medoids: one per cluster; farthest: greedy farthest points "
                        "(default: %(default)s)")
    p.add_argument("--streaming", action="store_true",
                   help="farthest points without the full matrix (implies --method farthest)")
    p.add_argument("--must-include", nargs="+", default=[], metavar="MODEL",
                   help="models that must be picked")
    p.add_argument("--exclude", nargs="+", default=[], metavar="MODEL",
                   help="models that must not be picked")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="shortlist .json")
    p.add_argument("--matrix", type=Path, metavar="SIM.npz",
                   help="also save the full similarity matrix (not with --streaming)")
    p.add_argument("--dendrogram", type=Path, metavar="PNG",
                   help="also draw the dendrogram, coloured by the k clusters")
    p.set_defaults(func=_run_shortlist)


def _run_shortlist(args) -> int:
    from archalign.similarity.compare import similarity_matrix
    from archalign.similarity.shortlist import shortlist

    check_output(args.out, "--out", (".json",))
    if args.streaming and (args.matrix or args.dendrogram):
        raise UsageError("--streaming builds no matrix: drop --matrix / --dendrogram")
    if args.matrix is not None:
        check_output(args.matrix, "--matrix", MATRIX_SUFFIXES)
    check_figures(dendrogram=args.dendrogram)
    kwargs = token_settings(args)
    specs = model_specs(args)
    if args.streaming:
        result = shortlist(specs, args.k, **kwargs,
                           must_include=args.must_include, exclude=args.exclude,
                           jobs=args.jobs, cache_dir=args.cache_dir, progress=args.progress)
    else:
        sm = similarity_matrix(specs, **kwargs, jobs=args.jobs,
                               cache_dir=args.cache_dir, progress=args.progress)
        result = sm.shortlist(args.k, method=args.method, must_include=args.must_include,
                              exclude=args.exclude)
        if args.matrix:
            sm.save(args.matrix)
            print(f"wrote {args.matrix}")
        _draw(sm, args.dendrogram, None, n_clusters=args.k)
    result.save(args.out)
    print(f"shortlist ({result.method}, k={args.k}): {', '.join(result.names)} -> {args.out}")
    return 0


# -------------------------------------------------------------------------- plot
def add_plot(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="dendrogram / heatmap of a saved similarity matrix",
        description="Draw a matrix written by `archalign matrix` as PNG/PDF/SVG files.")
    p.add_argument("matrix", type=Path, metavar="SIM.npz")
    p.add_argument("--dendrogram", type=Path, metavar="FILE", help="dendrogram output")
    p.add_argument("--heatmap", type=Path, metavar="FILE", help="clustered heatmap output")
    p.add_argument("-n", "--n-clusters", type=positive_int, metavar="N",
                   help="colour the dendrogram by this many clusters")
    p.set_defaults(func=_run_plot)


def _run_plot(args) -> int:
    from archalign.similarity.matrix import SimilarityMatrix

    if args.dendrogram is None and args.heatmap is None:
        raise UsageError("nothing to draw: give --dendrogram FILE and/or --heatmap FILE")
    check_figures(dendrogram=args.dendrogram, heatmap=args.heatmap)
    _draw(SimilarityMatrix.load(args.matrix), args.dendrogram, args.heatmap, args.n_clusters)
    return 0
