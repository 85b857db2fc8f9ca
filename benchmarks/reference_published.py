"""The reference study's ConvNet beside the published single-source digits figures.

Published (the ConvNet of ADA / M-ADA / RandConv, trained on 10,000 real MNIST digits,
tested on the real SVHN, MNIST-M, SYN and USPS; averages over those four as
Pro-RandConv, Choi et al., CVPR 2023, reports them): ERM 52.0, RandConv 74.8 (as re-run
by Pro-RandConv), MetaCNN 78.8, Pro-RandConv 81.4. Ours: ``benchmarks/reference_study.sh``
(4,000 MNIST digits, 600 steps), tested on our generated stand-ins of those four
(``svhn-gen``, ``mnistm-gen``, ``syndigits-gen``, ``usps-gen``): the same network and
protocol, other data, so the columns sit side by side without being the same quantity.

Prints, per model and variant, the mean over the four stand-ins (± std over seeds) and,
per stand-in, whether a variant beats ``randconv`` (mean paired difference over seeds
and its paired t-test p), every figure read from the study's ``results.csv``::

    python benchmarks/reference_published.py [STUDY]   (default results/reference-v2/study)
"""
from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path

from neurn.results.tables import paired_difference

STAND_INS = {"svhn-gen": "SVHN", "mnistm-gen": "MNIST-M", "syndigits-gen": "SYN",
             "usps-gen": "USPS"}
PUBLISHED = {"baseline": ("ERM", 52.0), "randconv": ("RandConv", 74.8),
             "prorandconv": ("Pro-RandConv", 81.4)}
PUBLISHED_ONLY = ("MetaCNN", 78.8)
REFERENCE = "randconv"
ORDER = ["baseline", "neurn", "randconv", "prorandconv", "neurn+randconv", "neurn+prorandconv"]


def read_scores(study: Path) -> dict[tuple[str, str], dict[int, dict[str, float]]]:
    """(model, variant) -> seed -> {stand-in: top-1} for the finished runs."""
    scores: dict = defaultdict(lambda: defaultdict(dict))
    with open(study / "results.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["status"] == "ok" and row["domain"] in STAND_INS:
                scores[row["model"], row["variant"]][int(row["seed"])][row["domain"]] = float(
                    row["top1"])
    return scores


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.1f}" if values else "-"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def paired(ours: dict[int, float], theirs: dict[int, float]) -> str:
    """``ours - theirs`` over common seeds, as the study's tables compute it."""
    d = paired_difference(ours, theirs)
    if d["n"] < 2:
        return "-"
    return f"{d['mean']:+.1f} (p {d['p_value']:.2g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", type=Path, default=Path("results/reference-v2/study"))
    study = parser.parse_args().study
    if not (study / "results.csv").is_file():
        parser.exit(2, f"{parser.prog}: error: {study / 'results.csv'} does not exist; run the "
                       f"study (benchmarks/reference_study.sh) or `neurn table {study}`\n")
    scores = read_scores(study)
    models = sorted({m for m, _ in scores}, key=lambda m: (m != "convnet", m))
    rank = {v: i for i, v in enumerate(ORDER)}
    scores = dict(sorted(scores.items(), key=lambda kv: (rank.get(kv[0][1], len(ORDER)), kv[0][1])))
    print("Mean top-1 over the four stand-ins (generated; mean ± std over seeds), beside the "
          "published mean over the real four:\n")
    print("| model | variant | ours: " + ", ".join(STAND_INS) + " | published (real data) |")
    print("|---|---|---|---|")
    for model in models:
        for (m, variant), seeds in scores.items():
            if m != model:
                continue
            means = [statistics.mean(s.values()) for s in seeds.values() if len(s) == 4]
            name, figure = PUBLISHED.get(variant, (None, None))
            shown = f"{name} {figure}" if model == "convnet" and name else ""
            print(f"| {model} | {variant} | {mean_std(means)} | {shown} |")
    print(f"| (convnet) | - | - | {PUBLISHED_ONLY[0]} {PUBLISHED_ONLY[1]} |")
    print(f"\nAgainst {REFERENCE} on each stand-in (mean paired difference over seeds, "
          f"paired t-test p):\n")
    print("| model | variant | " + " | ".join(STAND_INS) + " | mean of the four |")
    print("|---|---|" + "---|" * (len(STAND_INS) + 1))
    for model in models:
        reference = scores.get((model, REFERENCE))
        if reference is None:
            continue
        for (m, variant), seeds in scores.items():
            if m != model or variant in (REFERENCE, "baseline"):
                continue
            cells = [paired({s: v[d] for s, v in seeds.items() if d in v},
                            {s: v[d] for s, v in reference.items() if d in v})
                     for d in STAND_INS]
            four = paired({s: statistics.mean(v.values()) for s, v in seeds.items() if len(v) == 4},
                          {s: statistics.mean(v.values()) for s, v in reference.items()
                           if len(v) == 4})
            print(f"| {model} | {variant} | " + " | ".join(cells) + f" | {four} |")


if __name__ == "__main__":
    main()
