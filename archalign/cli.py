"""The ``archalign`` command line.

One function registers each subcommand on the subparsers and sets ``func`` to the
function that runs it; runners take the parsed namespace, translate it into keyword
arguments for the library and return the exit status. Add a subcommand by writing a
``_add_<name>(subparsers)`` / ``_run_<name>(args)`` pair and listing the first in
``_SUBCOMMANDS``.

Subcommands: ``trace``, ``matrix``, ``cluster``, ``shortlist``, ``plot``, ``align``,
``report``.
Errors a user can fix (unknown model, bad option combination, missing or damaged
file, an OS error, a nonsense value) are printed as one line and exit with status 2;
Ctrl-C is one line and status 130.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from archalign import defaults
from archalign._args import (OneLineParser, UsageError, finite_float, nonnegative_int,
                             os_error_line, positive_float, positive_int)
from archalign._io import atomic_savefig
from archalign._version import __version__
from archalign.zoo import DEFAULT_TIMEOUT

__all__ = ["main", "build_parser"]


# ------------------------------------------------------------------------- trace
_TRACE_EPILOG = """\
examples:
  archalign trace resnet18 vit_tiny_patch16_224          two models, into the cache
  archalign trace 'resnet*' 'efficientnet_b?' --out traces/
  archalign trace --all --jobs 2 --out zoo/               the whole timm zoo

Patterns are fnmatch wildcards over timm.list_models(); quote them so the shell does
not expand them. Cached traces are reused (keyed by timm and torch versions, the
fused-attention switch, model name and input size), so an interrupted run resumes
where it stopped. Exit status: 0 when every model was traced, 1 when some failed
(see failures.json), 2 for bad arguments such as an unknown model name.
"""


def _add_trace(subparsers) -> None:
    p = subparsers.add_parser(
        "trace", help="trace timm models into layer-token sequences (cached JSON)",
        description="Trace timm models (built without weights on the meta device) into "
                    "the calls they execute, one JSON file per model, in parallel "
                    "worker processes.",
        epilog=_TRACE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("patterns", nargs="*", metavar="PATTERN",
                   help="timm model names or wildcard patterns, e.g. resnet50 'vit_*', or "
                        "transformers:<model_type> ('transformers:gpt*')")
    p.add_argument("--all", action="store_true",
                   help="trace every timm architecture (all of timm.list_models())")
    p.add_argument("--transformers-all", action="store_true",
                   help="trace every transformers model type AutoModel builds, from its "
                        "default config on the meta device (needs archalign[transformers])")
    p.add_argument("--out", metavar="DIR", type=Path,
                   help="also put <model>.json for every traced model here (hard links to "
                        "the cache where possible), with summary.json and failures.json; "
                        "without --out those two go into the cache directory")
    p.add_argument("--cache-dir", metavar="DIR", type=Path,
                   help="cache root (default: $ARCHALIGN_CACHE_DIR, else "
                        "$XDG_CACHE_HOME/archalign/traces or ~/.cache/archalign/traces)")
    p.add_argument("-j", "--jobs", type=positive_int, metavar="N",
                   help="worker processes (default: the number of CPUs available)")
    p.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help="give up on one model after this many seconds, kill its worker and "
                        "record it in failures.json (default: %(default)g)")
    p.add_argument("--input-size", type=positive_int, nargs=3, metavar=("C", "H", "W"),
                   help="trace every model at this input size instead of its own default "
                        "(timm's pretrained_cfg)")
    p.add_argument("--no-fused-attn", dest="fused_attn", action="store_false",
                   help="trace attention unfused (matmul + softmax instead of "
                        "scaled_dot_product_attention); cached separately")
    p.add_argument("--refresh", action="store_true",
                   help="trace again even models that are already cached")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="do not show the progress bar")
    p.set_defaults(func=_run_trace)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        if os.path.samefile(src, dst):
            return  # already a link to this cache file (rename would then do nothing)
    except OSError:
        pass  # dst missing
    tmp = dst.with_name(f".tmp-{dst.name}")
    tmp.unlink(missing_ok=True)  # left over by an interrupted run
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _run_trace(args: argparse.Namespace) -> int:
    from archalign._io import atomic_write_text
    from archalign.tracing import UnknownModelError
    from archalign.zoo import cache_path, trace_many

    wanted = [*(["*"] if args.all else []),
              *(["transformers:*"] if args.transformers_all else []), *args.patterns]
    if not wanted or (args.patterns and (args.all or args.transformers_all)):
        print("archalign trace: error: give model names / patterns, or --all / "
              "--transformers-all (not both)", file=sys.stderr)
        return 2
    try:
        result = trace_many(wanted, jobs=args.jobs,
                            cache_dir=args.cache_dir, input_size=args.input_size,
                            fused_attn=args.fused_attn,
                            timeout=args.timeout, refresh=args.refresh,
                            load=False, progress=args.progress)
    except (UnknownModelError, ValueError, ImportError) as e:
        print(f"archalign trace: error: {e}", file=sys.stderr)
        return 2

    cache_dir = cache_path(wanted[0] if args.transformers_all and not args.all else "x", input_size=args.input_size, fused_attn=args.fused_attn,
                           cache_dir=args.cache_dir).parent
    out = args.out if args.out is not None else cache_dir
    if args.out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, path in result.paths.items():
            _link_or_copy(path, out / f"{name.replace(':', '_').replace(os.sep, '_')}.json")
    summary = {
        "wall_seconds": round(result.wall_seconds, 3),
        "traced": len(result.paths), "failed": len(result.failures),
        "from_cache": len(result.cached), "input_size": args.input_size,
        "fused_attn": args.fused_attn,
        "models": {name: {"route": result.routes[name], "cache": str(path),
                          "from_cache": name not in result.seconds,
                          "seconds": round(result.seconds.get(name, 0.0), 4)}
                   for name, path in result.paths.items()},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    result.write_failures(out / "failures.json")

    print(result.summary())
    if result.failures:
        print(f"failures ({len(result.failures)}), reasons in {out / 'failures.json'}:")
        for name, reason in list(result.failures.items())[:10]:
            print(f"  {name}: {reason}")
        if len(result.failures) > 10:
            print(f"  ... and {len(result.failures) - 10} more")
    print(f"traces in {out}" + (f" (cache: {cache_dir})" if out != cache_dir else ""))
    return 1 if result.failures else 0



# ------------------------------------------------------- shared model / scoring options
def _add_model_args(p, models_help: str) -> None:
    p.add_argument("models", nargs="*", metavar="MODEL", help=models_help)
    p.add_argument("--panel", metavar="NAME",
                   help="add a named panel of models: 'default' (24 timm architectures "
                        "across families), 'cpu' (4 small ones, quick to train on a CPU) or "
                        "'paper44' (the NeuRN paper's models as timm / torchvision "
                        "equivalents)")
    _add_token_args(p)
    p.add_argument("-j", "--jobs", type=positive_int, metavar="N",
                   help="tracing processes and alignment threads (default: all CPUs)")
    p.add_argument("--cache-dir", metavar="DIR", type=Path, help="trace cache root "
                   "(default: $ARCHALIGN_CACHE_DIR or ~/.cache/archalign/traces)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="do not show progress bars")


def _model_specs(args) -> list:
    from archalign.panels import PAPER44_UNAVAILABLE, panel

    specs = list(args.models)
    if args.panel:
        specs += panel(args.panel)
        if args.panel == "paper44":
            print(f"paper44: {len(PAPER44_UNAVAILABLE)} of the paper's models have no "
                  f"timm/torchvision equivalent and are left out:", file=sys.stderr)
            for name, why in PAPER44_UNAVAILABLE.items():
                print(f"  {name}: {why}", file=sys.stderr)
    if not specs:
        raise ValueError("give model names / patterns, or --panel NAME")
    return specs


def _add_token_args(p) -> None:
    """Token and scoring options; the defaults are archalign.defaults'."""
    p.add_argument("-g", "--granularity", choices=("type", "shape", "full"),
                   default=defaults.GRANULARITY,
                   help="token detail: op type only; + kernel/stride/groups; all "
                        "hyper-parameters (default: %(default)s)")
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
    p.add_argument("--gap", type=finite_float, help="linear gaps: score per gapped position")
    p.add_argument("--gap-open", type=finite_float,
                   help=f"affine gaps: score of a gap's first position (default "
                        f"{defaults.GAP_OPEN:g})")
    p.add_argument("--gap-extend", type=finite_float,
                   help=f"affine gaps: score of each further position (default "
                        f"{defaults.GAP_EXTEND:g})")


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _token_kwargs(args) -> dict:
    """Keyword arguments of similarity_matrix / align_models / shortlist from the
    token options: --match / --mismatch make a Scoring, the rest pass through."""
    from archalign.scoring import Scoring

    kwargs = {"granularity": args.granularity, "rolled": args.rolled, "family": args.family,
              "as_exported": args.as_exported,
              "max_period": args.max_period or None, "gap": args.gap,
              "gap_open": args.gap_open, "gap_extend": args.gap_extend}
    if args.match is None and args.mismatch is None:
        return kwargs
    if args.family:
        raise ValueError("--family builds its own substitution matrix; drop --match / "
                         "--mismatch or --family")
    gap_open, gap_extend = defaults.resolve_gaps(args.gap, args.gap_open, args.gap_extend)
    match = defaults.MATCH if args.match is None else args.match
    mismatch = defaults.MISMATCH if args.mismatch is None else args.mismatch
    kwargs.update(scoring=Scoring(match=match, mismatch=mismatch, gap_open=gap_open,
                                  gap_extend=gap_extend),
                  family=None, gap=None, gap_open=None, gap_extend=None)
    return kwargs


# ------------------------------------------------------------------------ matrix
def _add_matrix(subparsers) -> None:
    p = subparsers.add_parser(
        "matrix", help="similarity matrix of a set of models (.npz / .csv)",
        description="Trace the models, align every pair of token sequences and write the "
                    "similarity matrix.",
        epilog="examples:\n"
               "  archalign matrix resnet18 resnet50 'efficientnet_b?' --out sim.npz\n"
               "  archalign matrix --panel paper44 --preset paper --out paper.npz "
               "--heatmap paper.png\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_model_args(p, "timm names, wildcard patterns, torchvision:<name> or ONNX files "
                       "(model.onnx, onnx:PATH, onnx:dir/*.onnx)")
    p.add_argument("--similarity", choices=("normalized", "correlation"), default="normalized",
                   help="normalized: in [0, 1] from the alignment scores; correlation: the "
                        "paper's Pearson correlation of score rows (default: %(default)s)")
    p.add_argument("--preset", choices=("paper",),
                   help="paper: type tokens, match 1 / mismatch -2 / gap -2, correlation")
    p.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="output .npz (everything, reloadable) or .csv (similarity only)")
    p.add_argument("--heatmap", type=Path, metavar="PNG", help="also draw the clustered heatmap")
    p.add_argument("--dendrogram", type=Path, metavar="PNG", help="also draw the dendrogram")
    big = p.add_argument_group(
        "big panels", "compute the score matrix in blocks, resumably and/or on a Dask cluster")
    where = big.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, metavar="N",
                       help="run blocks on a local Dask cluster of N single-threaded workers")
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
    from archalign.compare import similarity_matrix
    from archalign.panels import paper_labels

    client = None
    if args.workers:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("--workers runs a local Dask cluster, which needs dask: pip "
                              "install 'archalign[dask]'") from None

        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                     dashboard_address=None))
    try:
        kwargs = _token_kwargs(args)
        if args.preset:
            given = [k for k in ("rolled", "family", "match", "mismatch", "gap", "gap_open",
                                 "gap_extend") if getattr(args, k) is not None]
            if given:
                raise ValueError(f"--preset {args.preset} fixes the tokens and the scoring; "
                                 f"drop --{', --'.join(g.replace('_', '-') for g in given)}")
            kwargs = {}
        sm = similarity_matrix(
            _model_specs(args), similarity=args.similarity, preset=args.preset,
            jobs=args.jobs, **kwargs, cache_dir=args.cache_dir, progress=args.progress,
            backend="dask" if (client or args.scheduler) else "threads",
            client=client or args.scheduler, block=args.block, blocks_dir=args.blocks_dir)
    finally:
        if client is not None:
            client.cluster.close()
            client.close()
    if args.panel == "paper44":
        names = paper_labels()
        sm.labels = [names.get(x, x) for x in sm.labels]
    sm.save(args.out)
    rolled = "rolled " if sm.settings["rolled"] else ""
    print(f"{len(sm)} models, {sm.similarity} similarity of {rolled}"
          f"{sm.settings['granularity']} tokens, {sm.settings['scoring']} -> {args.out}")
    _draw(sm, args.dendrogram, args.heatmap)
    return 0


def _draw(sm, dendrogram_path, heatmap_path, n_clusters=None) -> None:
    for path, draw in ((dendrogram_path, lambda: sm.plot_dendrogram(n_clusters=n_clusters)),
                       (heatmap_path, sm.plot_heatmap)):
        if path is not None:
            atomic_savefig(draw(), path, dpi=150)
            print(f"wrote {path}")


# ----------------------------------------------------------------------- cluster
def _add_cluster(subparsers) -> None:
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


def _name_prefix(label: str) -> str:
    import re

    match = re.match(r"[A-Za-z]+", label.split(":")[-1])
    return match.group(0).lower() if match else label


def _run_cluster(args) -> int:
    from archalign.similarity import SimilarityMatrix

    sm = SimilarityMatrix.load(args.matrix)
    ids = sm.clusters(n=args.n_clusters, threshold=args.threshold, method=args.method)
    groups = sm.groups(ids)
    for c, members in sorted(groups.items()):
        print(f"cluster {c} ({len(members)}): {', '.join(members)}")
    quality = sm.agreement(_name_prefix, n=len(groups), method=args.method)
    print(f"agreement with name prefixes: adjusted Rand index "
          f"{quality['adjusted_rand_index']:.3f}; cophenetic correlation "
          f"{quality['cophenetic_correlation']:.3f}")
    if args.json:
        from archalign._io import atomic_write_text

        atomic_write_text(args.json, json.dumps({str(k): v for k, v in groups.items()},
                                                indent=1))
    return 0


# --------------------------------------------------------------------- shortlist
def _add_shortlist(subparsers) -> None:
    p = subparsers.add_parser(
        "shortlist", help="pick k diverse models (writes shortlist.json for neurn)",
        description="Pick k diverse architectures: one medoid per cluster of the full "
                    "similarity matrix, or greedy farthest points. --streaming never builds "
                    "the n x n matrix (n x k alignments), for zoo-sized inputs.",
        epilog="examples:\n"
               "  archalign shortlist --panel default -k 3 --out shortlist.json\n"
               "  archalign shortlist 'resnet*' 'vit_*' -k 5 --streaming --out s.json\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_model_args(p, "timm names, wildcard patterns, torchvision:<name> or ONNX files "
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
    from archalign.compare import similarity_matrix
    from archalign.shortlist import shortlist

    specs = _model_specs(args)
    if args.streaming:
        if args.matrix or args.dendrogram:
            raise ValueError("--streaming builds no matrix: drop --matrix / --dendrogram")
        result = shortlist(specs, args.k, **_token_kwargs(args),
                           must_include=args.must_include, exclude=args.exclude,
                           jobs=args.jobs, cache_dir=args.cache_dir, progress=args.progress)
    else:
        sm = similarity_matrix(specs, **_token_kwargs(args), jobs=args.jobs,
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
def _add_plot(subparsers) -> None:
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
    from archalign.similarity import SimilarityMatrix

    if args.dendrogram is None and args.heatmap is None:
        raise ValueError("nothing to draw: give --dendrogram FILE and/or --heatmap FILE")
    _draw(SimilarityMatrix.load(args.matrix), args.dendrogram, args.heatmap, args.n_clusters)
    return 0


# ------------------------------------------------------------------------- align
def _add_align(subparsers) -> None:
    p = subparsers.add_parser(
        "align", help="print (or draw) the alignment of two models",
        description="Align two models' token sequences and print both rows with gaps: "
                    "'|' identical token, '.' substitution.")
    p.add_argument("a", metavar="MODEL_A")
    p.add_argument("b", metavar="MODEL_B")
    _add_token_args(p)
    p.add_argument("--width", type=positive_int, default=100, help="wrap the text at this width")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also draw the alignment view")
    p.add_argument("--cache-dir", metavar="DIR", type=Path, help="trace cache root")
    p.set_defaults(func=_run_align)


def _run_align(args) -> int:
    from archalign.compare import align_models

    alignment, vocab = align_models(args.a, args.b, **_token_kwargs(args),
                                    cache_dir=args.cache_dir)
    print(alignment.format(vocab, width=args.width))
    counts = alignment.counts()
    print(f"\nscore {alignment.score:g}: {counts['identical']} identical, "
          f"{counts['substituted']} substituted, {counts['gaps']} gaps")
    if args.plot:
        from archalign.plotting import alignment_view

        atomic_savefig(alignment_view(alignment, names=vocab, labels=(args.a, args.b)),
                       args.plot, dpi=150)
        print(f"wrote {args.plot}")
    return 0


# ------------------------------------------------------------------------ report
def _add_report(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="interactive HTML report of a saved similarity matrix",
        description="Write one self-contained HTML file (works offline) with the clustered "
                    "heatmap, the dendrogram with an adjustable cut, a search box, the "
                    "shortlist marked and, on a click, the alignment of that pair. The "
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
                   help="where the dendrogram cut starts (default: about sqrt(models))")
    p.add_argument("--no-alignments", dest="alignments", action="store_false",
                   help="leave the token sequences out (no traces needed; clicks then show "
                        "only the similarity)")
    p.add_argument("--cache-dir", metavar="DIR", type=Path,
                   help="trace cache root the matrix's models were traced into")
    p.set_defaults(func=_run_report)


def _run_report(args) -> int:
    from archalign.shortlist import Shortlist
    from archalign.similarity import SimilarityMatrix

    sm = SimilarityMatrix.load(args.matrix)
    picks = Shortlist.load(args.shortlist) if args.shortlist else None
    path = sm.to_html(args.out, shortlist=picks, alignments=args.alignments,
                      cache_dir=args.cache_dir, n_clusters=args.n_clusters)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {len(sm)} models)")
    return 0


# -------------------------------------------------------------------------- main
_SUBCOMMANDS = [_add_trace, _add_matrix, _add_cluster, _add_shortlist, _add_plot, _add_align,
                _add_report]


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
    except UsageError as e:
        return e.code
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, KeyError, ImportError, OSError) as e:  # ImportError: an extra
        if isinstance(e, OSError):
            message = os_error_line(e)
        else:
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"archalign: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archalign: interrupted; finished traces stay in the cache (and finished "
              "blocks in --blocks-dir): run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
