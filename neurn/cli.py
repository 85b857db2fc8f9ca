"""``neurn`` command line: ``neurn run`` (the study), ``neurn domains``, ``neurn table``,
``neurn compare`` (several finished studies in one table).

Only this module reads argparse; it translates the arguments into keyword arguments
of :class:`neurn.Study`. Errors in the inputs (unknown model or domain, missing data,
a file that is not a shortlist, a damaged study folder) are printed as one line and exit
with status 2, before any training; so are OS errors (a read-only or full disk), naming
the user's path. ``neurn run`` prints its header first, then a line as each run starts
and finishes, and tqdm bars on a terminal, else (or with ``--no-progress``) a line per
validation round, all on stderr. After a study, its guard rails (undertrained runs,
targets at chance) are repeated on stderr so they are not lost above the table. Ctrl-C leaves finished
runs and the unfinished run's checkpoint, says so in one line and exits with 130; the
same command resumes.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from archalign._version import __version__
from archalign.utils.args import ArgumentsRefused, OneLineParser, error_boundary, process_count
from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_savefig, atomic_write_text

from neurn.results.formats import FORMATS
from neurn.study import DamagedFileWarning, Study  # the package imports the study anyway
from neurn.study.torch_settings import pick_threads

__all__ = ["main", "build_parser"]

EXAMPLES = """examples:
  # the README's main job (offline data, about 5 minutes on 2 cores): archalign picks
  # 3 diverse backbones of the `cpu` panel, neurn trains them with and without NeuRN
  archalign shortlist --panel cpu -k 3 --out results/shortlist.json
  neurn run results/shortlist.json --steps 450 --evals 5 --batch-size 64 \\
      --eval-limit 500 --out results/study

  # full scale on a GPU: real datasets from disk, 3 seeds
  neurn run results/shortlist.json --data-dir /data/digits --targets mnistm svhn usps syn \\
      --epochs 30 --seeds 0 1 2 --batch-size 128 --out results/study-full

  # NeuRN's kernel size as variants
  neurn run resnet18 --variants baseline neurn neurn:k=5 --steps 300 --out results/k

  # NeuRN beside the classic fixed front ends and RandConv, on the digits-DG convnet
  neurn run convnet --variants baseline neurn gray sobel lcn randconv --steps 600 \\
      --out results/fronts

  # DomainBed's protocol on PACS: ImageNet-pretrained ResNet-50, leave-one-domain-out
  # (every domain held out in turn), checkpoint chosen on 20% of the training domains,
  # batches of 32 images from each of the 3 training domains
  neurn run resnet50 --pretrained --dataset /data/PACS --test-envs all --steps 5000 \
      --evals 10 --batch-size 96 --seeds 0 1 2 --out results/pacs

  # any image folders in DomainBed's layout, single source
  neurn run resnet18 --source /data/PACS/photo --targets /data/PACS/sketch \
      /data/PACS/cartoon /data/PACS/art_painting --epochs 10 --out results/pacs-photo

  # merge finished studies into one table
  neurn compare results/study results/fronts --out results/all.md

  # a study's table for a paper (booktabs), or for pandas / a spreadsheet
  neurn table results/study --format latex --out results/study.tex
  neurn table results/study --format csv --out results/study-table.csv
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="neurn", description="NeuRN domain-generalization study on digit domains or "
                                  "any image-folder domains.")
    # one distribution: neurn's version is archalign's
    parser.add_argument("--version", action="version", version=f"neurn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser(
        "run", help="train models with and without NeuRN, test on unseen domains",
        description="Train each (model, variant, seed) on the source's train split, select "
                    "the checkpoint on its validation split (never on targets), evaluate on "
                    "the source test split and every target. Rerunning the same command "
                    "resumes; finished runs are skipped.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = run.add_argument_group("models and variants")
    g.add_argument("models", nargs="+", metavar="MODEL_OR_SHORTLIST",
                   help="a shortlist.json from `archalign shortlist`, timm model names, or "
                        "the built-in convnet (the digits-DG backbone of ADA / M-ADA / "
                        "RandConv)")
    g.add_argument("--variants", nargs="+", default=["baseline", "neurn"], metavar="V",
                   help="baseline; neurn[:k=5,per=channel]; fixed front ends gray, "
                        "sobel, lcn[:k=9]; augmentations while training "
                        "randconv[:p=0.5,k=1/3/5/7,mix=0] and "
                        "prorandconv[:L=10,k=3,p=0.5,deform=1]; a front end and an "
                        "augmentation joined by '+' (neurn+randconv); std=0 on any but lcn "
                        "feeds the backbone unstandardised input (default: baseline neurn)")
    g.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="S",
                   help="one run per seed (default: 0)")
    g.add_argument("--pretrained", action="store_true",
                   help="start every timm backbone from its pretrained weights (the tag in "
                        "its name, e.g. resnet50.a1_in1k, or timm's default): the hub, or "
                        "the Hugging Face cache offline; the classifier is re-initialised. "
                        "Defaults then follow DomainBed's ERM: --lr 5e-5 --weight-decay 0")
    g.add_argument("--weights", type=Path, metavar="PATH",
                   help="pretrained weights from a .safetensors / .pth file, or a folder "
                        "of <model>.safetensors files (implies --pretrained)")
    g = run.add_argument_group("data")
    g.add_argument("--source", nargs="+", metavar="DOMAIN",
                   help="source domain(s): a digit domain (default: mnist) or image "
                        "folders PATH/<class>/<image> (a path, or folder:PATH); several "
                        "folders train together, each split by --holdout-fraction")
    g.add_argument("--targets", nargs="+", metavar="DOMAIN",
                   help="target domains (default: every offline target; with --data-dir "
                        "the paper's mnistm svhn usps); image folders when the source is "
                        "one. See `neurn domains`.")
    g.add_argument("--dataset", type=Path, metavar="ROOT",
                   help="a DomainBed-style dataset ROOT/<domain>/<class>/<image>: train on "
                        "its domains but --test-envs, test on those (leave-one-domain-out)")
    g.add_argument("--test-envs", nargs="+", metavar="ENV",
                   help="with --dataset: the held-out domains (names, or indices in sorted "
                        "order), held out together; 'all' runs every leave-one-domain-out "
                        "split as its own group of runs")
    g.add_argument("--holdout-fraction", type=float, metavar="F",
                   help="with several sources or --dataset: fraction of each training "
                        "domain that validates (model selection; default: 0.2, DomainBed's)")
    g.add_argument("--img-size", type=int, metavar="PX",
                   help="image side the models are built for (default: 32 for digits; for "
                        "image folders the images' own size up to 224, or the pretrained "
                        "input size with --pretrained)")
    g.add_argument("--val-fraction", type=float, metavar="F",
                   help="image-folder source: fraction for validation (default: 0.1; a "
                        "seeded split stratified by class)")
    g.add_argument("--test-fraction", type=float, metavar="F",
                   help="image-folder source: fraction for the source test (default: 0.1)")
    g.add_argument("--skip-bad-images", action="store_true",
                   help="leave out image files that cannot be decoded (counted in "
                        "data.json and summary.md) instead of stopping")
    g.add_argument("--cache-images", action="store_true",
                   help="decode image folders into a uint8 memmap in the cache folder, "
                        "kept for later studies (default: decoded once per study, in "
                        "memory when they fit in half the free memory, else the memmap)")
    g.add_argument("--stream-images", action="store_true",
                   help="decode image files on every access instead (DataLoader "
                        "--workers), for data that fit neither in memory nor on disk")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random resized crop (area 0.7-1) + flip of source batches "
                        "(default: on for image folders, off for digits)")
    g.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="folder of the real datasets (full scale); offline data otherwise")
    g.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="offline data cache (default: $NEURN_CACHE_DIR or ~/.cache/neurn)")
    g.add_argument("--eval-limit", type=int, metavar="N",
                   help="evaluate on a fixed subset of at most N images per domain")
    g.add_argument("--train-limit", type=int, metavar="N",
                   help="train on a fixed subset of at most N source images (per training "
                        "domain with several)")
    g = run.add_argument_group("training budget")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="passes over the source train split "
                                                  "(default: 10)")
    budget.add_argument("--steps", type=int, help="optimizer steps in all, validated "
                                                 "--evals times")
    g.add_argument("--evals", type=int, default=5,
                   help="with --steps: number of validation points (default: 5)")
    g.add_argument("-b", "--batch-size", type=int, default=64, help="default: 64")
    g.add_argument("--lr", type=float,
                   help="peak learning rate (default: 1e-3; 5e-5 with --pretrained)")
    g.add_argument("--weight-decay", type=float,
                   help="default: 0.05; 0 with --pretrained")
    g.add_argument("--opt", choices=("adamw", "sgd"), default="adamw",
                   help="optimizer (default: adamw; cosine schedule with 5%% warm-up)")
    g = run.add_argument_group("machine and output")
    g.add_argument("--device", default="auto",
                   help="auto (CUDA when present), cpu, cuda, cuda:1 (default: auto)")
    g.add_argument("--threads", type=int,
                   help="CPU threads (default: the CPUs available less those other "
                        "processes keep busy, at least 1; the run header says how many)")
    g.add_argument("--workers", type=int,
                   help="DataLoader workers that decode image files, as timm's train.py "
                        "(default: 4, at most the CPUs, with --stream-images; else 0, the "
                        "data are in memory)")
    g = run.add_argument_group(
        "several processes, GPUs and machines",
        "runs are claimed one by one (runs/<run>/claim.json), so any number of `neurn "
        "run` processes may share one --out; each run is one Dask task with --scheduler, "
        "--dask-workers or --gpus (the engine of archalign matrix --scheduler)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="send each run to the Dask cluster at this scheduler address "
                            "(tcp://host:8786; Slurm: dask-jobqueue's SLURMCluster, README)")
    where.add_argument("--dask-workers", type=process_count, metavar="N",
                       help="start a local Dask cluster of N worker processes, one run each "
                            "at a time (threads split between them unless --threads)")
    where.add_argument("--gpus", metavar="all|N|I,J,..",
                       help="start one Dask worker per GPU (all, the first N, or these "
                            "indices), each seeing only its own device")
    g.add_argument("--runs-per-gpu", type=process_count, default=1, metavar="K",
                   help="with --gpus: K workers per GPU, to pack small runs (default: 1)")
    g.add_argument("--shard", metavar="I/N",
                   help="train only the I-th of N slices of the grid (0-based; a Slurm "
                        "array of N tasks, all with the same --out)")
    g.add_argument("--deterministic", action="store_true",
                   help="torch.use_deterministic_algorithms during the study (slower; "
                        "CPU runs repeat exactly without it)")
    g.add_argument("--out", type=Path, default=Path("neurn-study"), metavar="DIR",
                   help="output folder; rerun to resume (default: ./neurn-study)")
    g.add_argument("--no-weights", dest="keep_weights", action="store_false",
                   help="do not keep each run's selected weights (best.pt)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars, a line per validation round instead (as when "
                        "stderr is not a terminal, e.g. piped to a log: bars are drawn on "
                        "a terminal only); the run header and each run's start and finish "
                        "are printed either way")

    dom = sub.add_parser("domains", help="list the digit domains, or the image-folder "
                                         "domains under a DomainBed-style root")
    dom.add_argument("root", nargs="?", type=Path, metavar="ROOT",
                     help="list ROOT/<domain>/<class>/<image> instead (checks that every "
                          "domain has the same classes)")
    dom.add_argument("--sheet", type=Path, metavar="PNG",
                     help="also draw a contact sheet of the offline domains")

    table = sub.add_parser(
        "table", help="rebuild the tables of a study folder",
        description="Rebuild results.csv, results.json and summary.md of a study folder "
                    "from its runs, and print summary.md, or its main table as LaTeX or "
                    "CSV (the same numbers).")
    table.add_argument("out", type=Path, metavar="DIR")
    table.add_argument("--against", metavar="VARIANT",
                       help="take each Δ and paired p against VARIANT (e.g. randconv) instead of "
                            "baseline; printed only, the study's files keep baseline")
    _format_options(table, "write the output to FILE (atomically) instead of printing it")

    cmp = sub.add_parser(
        "compare", help="merge finished study folders into one table",
        description="Merge the results of finished studies (each the --out folder of a "
                    "`neurn run`) into one table with a column naming the folder. The "
                    "studies must share the source domain and the class count.")
    cmp.add_argument("folders", nargs="+", type=Path, metavar="DIR",
                     help="study folders (the --out of `neurn run`), one table row group each")
    _format_options(cmp, "also write the output to FILE (atomically)")
    return parser


def _format_options(parser: argparse.ArgumentParser, out_help: str) -> None:
    """``--format`` and ``--out FILE`` of ``neurn table`` / ``neurn compare``."""
    parser.add_argument("--format", choices=FORMATS, default="markdown",
                        help="markdown (default; as summary.md), latex (a booktabs tabular, "
                             "\\usepackage{booktabs}; notes as %% comments) or csv (one "
                             "line per model, variant and domain: mean, std, n, p_value in "
                             "columns)")
    parser.add_argument("--out", dest="file", type=Path, metavar="FILE", help=out_help)


def _run(args) -> int:
    from neurn.limits import check_sizes

    check_sizes(img_size=args.img_size, batch_size=args.batch_size, threads=args.threads,
                workers=args.workers, remote=bool(args.scheduler))
    # measured before anything here loads the CPUs
    threads, thread_note = pick_threads(args.threads)
    shard = _shard(args.shard)
    if shard != (0, 1) and (args.scheduler or args.dask_workers or args.gpus):
        raise UsageError("--shard slices the grid for processes without Dask; with "
                         "--scheduler / --dask-workers / --gpus the cluster takes every run")
    if args.runs_per_gpu != 1 and not args.gpus:
        raise UsageError("--runs-per-gpu packs runs on the GPUs of --gpus; add --gpus")
    # connect (or start the cluster) first: an unreachable scheduler fails before any work
    client = _client(args)
    if args.scheduler and args.threads is None:  # a remote worker knows its own CPUs
        threads, thread_note = None, "threads: each worker's CPUs"
    elif client is not None and args.threads is None:  # the CPUs split between workers
        workers = len(client.scheduler_info().get("workers", {})) or 1
        threads = max(1, threads // workers)
        thread_note = f"{threads} thread{'s' if threads > 1 else ''} per worker"
    try:
        return _study(args, threads, thread_note, shard, client)
    finally:
        if client is not None:
            from archalign.utils.dask import close

            close(client)


def _shard(text: str | None) -> tuple:
    if text is None:
        return 0, 1
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or int(index) >= int(count):
        raise UsageError(f"--shard {text}: write I/N with 0 <= I < N, e.g. --shard 0/4")
    return int(index), int(count)


def _client(args):
    """The Dask client of --scheduler / --dask-workers / --gpus, or None."""
    from archalign.utils import dask as _dask

    if args.scheduler:
        return _dask.connect(args.scheduler)
    if args.dask_workers is not None:
        return _dask.local_client(args.dask_workers)
    if args.gpus is not None:
        return _dask.gpu_client(_gpus(args.gpus), args.runs_per_gpu)
    return None


def _gpus(text: str) -> list[int]:
    """The devices of ``--gpus all|N|I,J,...``."""
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        raise UsageError("--gpus: torch sees no CUDA GPU here; use --dask-workers N for CPU "
                         "workers, or run on a GPU machine")
    if text == "all":
        return list(range(count))
    try:
        devices = ([int(i) for i in text.split(",") if i.strip()] if "," in text else
                   list(range(int(text))))  # a count: the first N
    except ValueError:
        raise UsageError(f"--gpus {text}: write all, a count (2), or indices (0,2,5)") from None
    if not devices or not all(0 <= d < count for d in devices):
        raise UsageError(f"--gpus {text}: torch sees {count} GPU(s), 0 .. {count - 1}")
    return devices


def _study(args, threads: int, thread_note: str, shard: tuple, client) -> int:
    from neurn.results.guards import guard_rails

    budget = {"steps": args.steps} if args.steps is not None else {"epochs": args.epochs}
    split = {name: value for name, value in (("val", args.val_fraction),
                                             ("test", args.test_fraction)) if value is not None}
    source = args.source[0] if args.source and len(args.source) == 1 else args.source
    study = Study(args.models, source=source, targets=args.targets,
                  img_size=args.img_size, split=split, skip_bad_images=args.skip_bad_images,
                  cache_images=args.cache_images, stream_images=args.stream_images,
                  augment=args.augment, dataset=args.dataset, test_envs=args.test_envs,
                  holdout_fraction=args.holdout_fraction, pretrained=args.pretrained,
                  weights=args.weights,
                  variants=args.variants, seeds=args.seeds, evals=args.evals,
                  batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                  optimizer=args.opt, device=args.device, out_dir=args.out,
                  data_dir=args.data_dir, cache_dir=args.cache_dir,
                  eval_limit=args.eval_limit, train_limit=args.train_limit,
                  threads=threads, num_workers=args.workers, progress=args.progress,
                  log=True, keep_weights=args.keep_weights, deterministic=args.deterministic,
                  shard=shard, **budget)
    # first, whatever the bars: a log then says what it is the log of
    print(_header(study, thread_note, shard), file=sys.stderr, flush=True)
    if study.config.device.type == "cpu" and "oversubscribed" in thread_note:
        print(f"neurn run: {thread_note.split('; ', 1)[1]}", file=sys.stderr, flush=True)
    study.load_data()  # missing or bad files fail here, before training
    skipped = {name: bad for data in study.groups.values() for name, bad in data.skipped.items()}
    for name, bad in skipped.items():
        if bad:
            print(f"neurn run: skipped {len(bad)} unreadable image(s) of {name} (listed in "
                  f"{args.out}/data.json)", file=sys.stderr)
    results = study.run(client=client)
    if not args.progress:  # with progress on, the study has printed it already
        print(results.markdown)
    print(f"wrote {args.out}/results.csv, results.json, summary.md, data.json, results.png, "
          f"learning_curves.png", file=sys.stderr)
    for message in guard_rails(results.rows, results.summary).messages():
        print(f"neurn run: warning: {message}", file=sys.stderr)
    return 1 if results.errors else 0


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _header(study: Study, thread_note: str, shard: tuple) -> str:
    """The run header: the grid, the device, the data, the initialisation, the budget
    (epochs, or steps and their evaluations) and the optimiser, in one line."""
    runs, groups = len(study.runs()), [g for g in study.groups if g is not None]
    split = (f"{_plural(len(groups), 'held-out group')} ({', '.join(groups)})" if groups else
             f"source {study.data.source}, targets {', '.join(study.data.targets)}")
    inits = {study.init(m).describe() for m in study.models}
    config = study.config
    # with --steps a validation round is no epoch: say how many there are instead
    budget = (_plural(config.epochs, "epoch") if config.steps is None else
              f"{_plural(config.steps, 'step')}, "
              f"{_plural(min(config.evals, config.steps), 'evaluation')}")
    return (f"neurn run: {_plural(len(study.models), 'model')} ({', '.join(study.models)}) x "
            f"{_plural(len(study.variants), 'variant')} x {_plural(len(study.seeds), 'seed')}" +
            (f" x {_plural(len(groups), 'group')}" if groups else "") +
            (f", shard {shard[0]}/{shard[1]}:" if shard != (0, 1) else "") +
            f" = {_plural(runs, 'run')} on {config.device}" +
            (f" ({thread_note})" if config.device.type == "cpu" else "") +
            f"; {split}; " + "; ".join(sorted(inits)) +
            f"; {budget}, batch {config.batch_size}, lr {config.lr:g}, weight decay "
            f"{config.weight_decay:g}")


def _domains(args) -> int:
    from neurn import data

    if args.root is not None:
        if args.sheet:
            raise UsageError("--sheet draws the offline digit domains; drop ROOT or --sheet")
        domains = data.domains_from_root(args.root)
        for name, d in domains.items():
            print(f"{name:15s} {len(d):7d} images  {len(d.classes)} classes  {d.root}")
        print(f"classes: {', '.join(next(iter(domains.values())).classes)}")
        return 0
    for name in data.list_domains():
        info = data.domain_info(name)
        kind = "source" if info.source else "target"
        where = "offline" if info.offline else "needs --data-dir"
        print(f"{name:15s} {kind:6s} {where:16s} {info.description}")
    if args.sheet:
        fig = data.contact_sheet(data.list_domains(offline=True))
        atomic_savefig(fig, args.sheet, dpi=120)
        print(f"wrote {args.sheet}")
    return 0


def _table(args) -> int:
    from neurn.results import load_results, table_text
    from neurn.study.claims import in_progress

    text = table_text(load_results(args.out), args.format, against=args.against)
    # the note on running runs follows the Markdown it annotates; elsewhere it would
    # break the LaTeX or CSV, so it goes to stderr
    note = sys.stdout if args.format == "markdown" and args.file is None else sys.stderr
    if args.file is None:  # summary.md then a blank line, as `neurn table` always printed
        print(text, end="\n" if args.format == "markdown" else "")
    else:
        atomic_write_text(args.file, text)
        print(f"wrote {args.file}", file=sys.stderr)
    running = in_progress(args.out)
    if running:
        print(f"{len(running)} run(s) in progress (claimed, no result yet):", file=note)
        for key, state in running.items():
            print(f"- {key}: {state}", file=note)
    return 0


def _compare(args) -> int:
    from neurn.results.compare import compare

    text = compare(args.folders, fmt=args.format)
    print(text, end="")
    if args.file is not None:
        atomic_write_text(args.file, text)
        print(f"wrote {args.file}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except ArgumentsRefused as exc:
        return exc.code
    handler = {"run": _run, "domains": _domains, "table": _table,
               "compare": _compare}[args.command]
    prefix = f"neurn {args.command}"

    def run() -> int:
        warnings.showwarning = _one_line_warnings(prefix, warnings.showwarning)
        warnings.simplefilter("always", DamagedFileWarning)
        return handler(args)

    # a StudyInterrupted says what was kept
    return error_boundary("neurn", run, prefix=prefix,
                          interrupted=lambda exc: str(exc) or "rerun the same command to resume")


def _one_line_warnings(prefix: str, show):
    """``warnings.showwarning`` printing neurn's own warnings as one line, the others as
    ``show`` would."""
    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DamagedFileWarning):
            print(f"{prefix}: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


if __name__ == "__main__":
    sys.exit(main())
