"""``archalign trace``: trace models into the zoo cache (and link them into ``--out``)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from archalign.cli.options import add_n_jobs
from archalign.utils.args import check_output, positive_float, positive_int
from archalign.tracing.zoo import DEFAULT_TIMEOUT


# ------------------------------------------------------------------------- trace
_TRACE_EPILOG = """\
examples:
  archalign trace resnet18 vit_tiny_patch16_224          two models, into the cache
  archalign trace 'resnet*' 'efficientnet_b?' --out traces/
  archalign trace --all --n-jobs 2 --out zoo/             the whole timm zoo

Patterns are fnmatch wildcards over timm.list_models(); quote them so the shell does
not expand them. Cached traces are reused (keyed by timm and torch versions, the
fused-attention switch, model name and input size), so an interrupted run resumes
where it stopped. Exit status: 0 when every model was traced, 1 when some failed
(see failures.json), 2 for bad arguments such as an unknown model name.
"""


def add_trace(subparsers) -> None:
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
    add_n_jobs(p, "worker processes (default: the number of CPUs available)")
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


def _onnx_line(spec: str) -> str:
    from archalign.tracing.onnx_trace import onnx_path

    path = onnx_path(spec)
    missing = "" if os.path.exists(path) else " (and there is no such file)"
    return (f"{spec} is an ONNX file{missing}: `archalign trace` traces timm names or "
            f"patterns and transformers: specs into the trace cache; an ONNX graph is "
            f"read where it is used, uncached: `archalign matrix {spec} resnet50 --out "
            f"sim.npz` (also shortlist, align, diff), or archalign.trace({path!r}) in "
            f"Python")


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
    from archalign.utils.io import atomic_write_text
    from archalign.tracing.calls import UnknownModelError
    from archalign.tracing.onnx_trace import is_onnx_spec
    from archalign.tracing.zoo import trace_many
    from archalign.tracing.zoo_cache import cache_path

    wanted = [*(["*"] if args.all else []),
              *(["transformers:*"] if args.transformers_all else []), *args.patterns]
    if not wanted or (args.patterns and (args.all or args.transformers_all)):
        print("archalign trace: error: give model names / patterns, or --all / "
              "--transformers-all (not both)", file=sys.stderr)
        return 2
    onnx = next((p for p in args.patterns if is_onnx_spec(p)), None)
    if onnx is not None:
        print(f"archalign trace: error: {_onnx_line(onnx)}", file=sys.stderr)
        return 2
    try:
        if args.out is not None:
            check_output(args.out, "--out", folder=True)
        result = trace_many(wanted, n_jobs=args.n_jobs,
                            cache_dir=args.cache_dir, input_size=args.input_size,
                            fused_attn=args.fused_attn,
                            timeout=args.timeout, refresh=args.refresh,
                            load=False, progress=args.progress)
    except (UnknownModelError, ValueError, ImportError) as e:
        print(f"archalign trace: error: {e}", file=sys.stderr)
        return 2
    if result.unsaved:  # caching is what this command is for
        print(f"archalign trace: error: {len(result.unsaved)} model(s) traced but not "
              f"cached: {next(iter(result.unsaved.values()))}",
              file=sys.stderr)
        return 2

    cache_dir = cache_path(wanted[0] if args.transformers_all and not args.all else "x",
                           input_size=args.input_size, fused_attn=args.fused_attn,
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
