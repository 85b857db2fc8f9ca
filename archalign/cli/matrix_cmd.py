"""``archalign matrix``, ``cluster`` and ``plot``: a similarity matrix and what follows
from it (``shortlist``: :mod:`archalign.cli.shortlist_cmd`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from archalign.utils.args import check_output, finite_float, positive_int, process_count
from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_savefig
from archalign.cli.options import (add_linkage, add_model_args, check_figures, linkage,
                                   model_specs, token_settings)
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
               "--heatmap paper.png\n"
               "  archalign matrix resnet18 resnet34 vgg11       (prints the matrix)\n",
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
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="output .npz (everything, reloadable) or .csv (similarity only); "
                        "without it the matrix is printed")
    p.add_argument("--heatmap", type=Path, metavar="PNG", help="also draw the clustered heatmap")
    p.add_argument("--dendrogram", type=Path, metavar="PNG", help="also draw the dendrogram")
    add_linkage(p)
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
    if args.out is not None:
        check_output(args.out, "--out", MATRIX_SUFFIXES)
    method = linkage(args)
    check_figures(heatmap=args.heatmap, dendrogram=args.dendrogram)
    if args.blocks_dir is not None:
        check_output(args.blocks_dir, "--blocks-dir", folder=True)
    kwargs = token_settings(args, args.preset)
    specs = model_specs(args)
    client = local_client(args.dask_workers) if args.dask_workers else None
    try:
        sm = similarity_matrix(
            specs, similarity=args.similarity, preset=args.preset,
            n_jobs=args.n_jobs, **kwargs, cache_dir=args.cache_dir, progress=args.progress,
            backend="dask" if (client or args.scheduler) else "threads",
            client=client or args.scheduler, block=args.block, blocks_dir=args.blocks_dir)
    finally:
        if client is not None:
            close(client)
    if args.panel == "paper44":
        names = paper_labels()
        sm.labels = [names.get(x, x) for x in sm.labels]
    if args.out is not None:
        sm.save(args.out)
    rolled = "rolled " if sm.settings["rolled"] else ""
    print(f"{len(sm)} models, {sm.similarity} similarity of {rolled}"
          f"{sm.settings['granularity']} tokens, {sm.settings['scoring']}"
          + (f" -> {args.out}" if args.out is not None else ":"))
    if args.out is None:
        print(format_matrix(sm))
    hidden = sm.hidden_changes()
    if hidden:
        a, b, note = hidden[0]
        why = " (rolled tokens count a repeated block once)" if sm.settings["rolled"] else ""
        where = ("; `archalign cluster` lists them" if args.out is not None
                 and args.out.suffix == ".npz" else "")
        print(f"note: similarity 1.00 hides a depth or width change for {len(hidden)} "
              f"pair(s){why}, e.g. {a} = {b}: {note}{where}")
    draw(sm, args.dendrogram, args.heatmap, method=method)
    return 0


def format_matrix(sm, digits: int = 3) -> str:
    """The similarity as a table: a row per model, a column per model, both labelled
    (what ``archalign matrix`` prints without ``--out``)."""
    widths = [max(digits + 3, len(x)) for x in sm.labels]  # a column as wide as its label
    first = max(len(x) for x in sm.labels)
    lines = [" " * first + "".join(f"  {x:>{w}}" for x, w in zip(sm.labels, widths))]
    for label, row in zip(sm.labels, sm.values):
        lines.append(f"{label:<{first}}"
                     + "".join(f"  {v:>{w}.{digits}f}" for v, w in zip(row, widths)))
    return "\n".join(lines)


def draw(sm, dendrogram_path, heatmap_path, n_clusters=None, method: str = "average",
         shortlist=None) -> None:
    """Draw the figures asked for (a path, or None for not asked) and say so."""
    options = {"n_clusters": n_clusters, "method": method, "shortlist": shortlist}
    for path, plot in ((dendrogram_path, sm.plot_dendrogram), (heatmap_path, sm.plot_heatmap)):
        if path is not None:
            atomic_savefig(plot(**options), path, dpi=150)
            print(f"wrote {path}")


# ----------------------------------------------------------------------- cluster
def add_cluster(subparsers) -> None:
    p = subparsers.add_parser(
        "cluster", help="clusters of a saved similarity matrix",
        description="Cut the dendrogram of a matrix written by `archalign matrix` (average "
                    "linkage unless --linkage says otherwise) and print the clusters; "
                    "--agreement adds their agreement with the models' name prefixes "
                    "(adjusted Rand index) and the cophenetic correlation.")
    p.add_argument("matrix", type=Path, metavar="SIM.npz")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("-n", "--n-clusters", type=positive_int, metavar="N",
                       help="number of clusters")
    group.add_argument("-t", "--threshold", type=finite_float,
                       help="cut where the distance (1 - similarity) exceeds this")
    add_linkage(p, old_method=True)
    p.add_argument("--agreement", action="store_true",
                   help="also print how well the clusters match the models' name prefixes "
                        "(adjusted Rand index; low on a panel that mixes families on "
                        "purpose) and the cophenetic correlation of the dendrogram")
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
    method = linkage(args)
    sm = SimilarityMatrix.load(args.matrix)
    ids = sm.clusters(n_clusters=args.n_clusters, threshold=args.threshold, method=method)
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
    if args.agreement:
        quality = sm.agreement(_name_prefix, n_clusters=len(groups), method=method)
        print(f"agreement with name prefixes: adjusted Rand index "
              f"{quality['adjusted_rand_index']:.3f}; cophenetic correlation "
              f"{quality['cophenetic_correlation']:.3f}")
    if args.json:
        from archalign.utils.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({str(k): v for k, v in groups.items()},
                                                indent=1))
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
                   help="colour the dendrogram and heatmap by this many clusters (default: "
                        "the shortlist's k, else scipy's rule)")
    add_linkage(p)
    p.add_argument("--shortlist", type=Path, metavar="FILE",
                   help="mark the models of this shortlist.json")
    p.set_defaults(func=_run_plot)


def _run_plot(args) -> int:
    from archalign.similarity.matrix import SimilarityMatrix
    from archalign.similarity.shortlist import Shortlist

    if args.dendrogram is None and args.heatmap is None:
        raise UsageError("nothing to draw: give --dendrogram FILE and/or --heatmap FILE")
    check_figures(dendrogram=args.dendrogram, heatmap=args.heatmap)
    method = linkage(args)
    sm = SimilarityMatrix.load(args.matrix)
    picks = Shortlist.load(args.shortlist) if args.shortlist else None
    draw(sm, args.dendrogram, args.heatmap, args.n_clusters, method, picks)
    return 0
