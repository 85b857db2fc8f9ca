"""``archalign align`` (two models, one alignment) and ``archalign report`` (the HTML page)."""
from __future__ import annotations

import argparse
from pathlib import Path

from archalign.utils.args import check_output, positive_int
from archalign.utils.io import atomic_savefig
from archalign.cli.options import add_linkage, add_token_args, check_figures, linkage, token_settings


# ------------------------------------------------------------------------- align
def add_align(subparsers) -> None:
    p = subparsers.add_parser(
        "align", help="print (or draw) the alignment of two models",
        description="Align two models' token sequences and print both rows with gaps: "
                    "'|' identical token, '.' substitution.")
    p.add_argument("a", metavar="MODEL_A")
    p.add_argument("b", metavar="MODEL_B")
    add_token_args(p)
    p.add_argument("--width", type=positive_int, default=100, help="wrap the text at this width")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also draw the alignment view")
    p.add_argument("--cache-dir", metavar="DIR", type=Path, help="trace cache root")
    p.set_defaults(func=_run_align)


def _run_align(args) -> int:
    from archalign.similarity.compare import align_models

    check_figures(plot=args.plot)
    alignment, vocab = align_models(args.a, args.b, **token_settings(args),
                                    cache_dir=args.cache_dir)
    print(alignment.format(vocab, width=args.width))
    counts = alignment.counts()
    print(f"\nscore {alignment.score:g}: {counts['identical']} identical, "
          f"{counts['substituted']} substituted, {counts['gaps']} gaps")
    if args.plot:
        from archalign.similarity.plotting import alignment_view

        atomic_savefig(alignment_view(alignment, names=vocab, labels=(args.a, args.b)),
                       args.plot, dpi=150)
        print(f"wrote {args.plot}")
    return 0


# ------------------------------------------------------------------------ report
def add_report(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="interactive HTML report of a saved similarity matrix",
        description="Write one self-contained HTML file (works offline) with the clustered "
                    "heatmap, the dendrogram with an adjustable cut, a search box, the "
                    "shortlist marked (the cut opens at its k) and, on a click, the "
                    "alignment of that pair. The "
                    "alignments are computed in the page from the token sequences, which are "
                    "rebuilt from the trace cache with the matrix's settings.",
        epilog="examples:\n"
               "  archalign report sim.npz --out report.html\n"
               "  archalign report zoo.npz --shortlist shortlist.json --out zoo.html\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("matrix", type=Path, metavar="SIM.npz")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="output .html")
    p.add_argument("--shortlist", type=Path, metavar="FILE",
                   help="mark the models of this shortlist.json")
    p.add_argument("-n", "--n-clusters", type=positive_int, metavar="N",
                   help="where the dendrogram cut starts (default: the shortlist's k, else "
                        "about sqrt(models))")
    add_linkage(p)
    p.add_argument("--no-alignments", dest="alignments", action="store_false",
                   help="leave the token sequences out (no traces needed; clicks then show "
                        "only the similarity)")
    p.add_argument("--cache-dir", metavar="DIR", type=Path,
                   help="trace cache root the matrix's models were traced into")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from archalign.similarity.matrix import SimilarityMatrix
    from archalign.similarity.shortlist import Shortlist

    check_output(args.out, "--out", (".html", ".htm"))
    method = linkage(args)
    sm = SimilarityMatrix.load(args.matrix)
    picks = Shortlist.load(args.shortlist) if args.shortlist else None
    path = sm.to_html(args.out, shortlist=picks, alignments=args.alignments,
                      cache_dir=args.cache_dir, n_clusters=args.n_clusters, method=method)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(sm)} models)")
    return 0
