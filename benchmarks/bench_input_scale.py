"""Why the NeuRN map is standardised before the backbone (issue 11: "NeuRN + ViT never learns").

The NeuRN map lies in [0, 1] and is mostly near 0 (mean 0.18, std 0.30 over the source
train split), while the baseline's pixels reach the backbone standardised (mean 0, std
1). This trains the same model from the same seed with the study's protocol three ways
and prints the source validation accuracy after each validation point:

* ``baseline``: standardised pixels;
* ``neurn``: the NeuRN map standardised with the fixed constants of
  ``neurn.models.INPUT_STATS`` (the default);
* ``neurn:std=0``: the NeuRN map fed raw, as the first release did.

Nothing here sees a target domain.

    python benchmarks/bench_input_scale.py [--model vit_tiny_patch16_224] [--steps 300]
                                           [--batch-size 32] [--lr 1e-3] [--out DIR]
"""
from __future__ import annotations

import argparse
import tempfile

from neurn.study import Study

VARIANTS = ("baseline", "neurn", "neurn:std=0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--evals", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="study folder (default: a temporary one); rerun "
                                      "with the same folder to resume")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        study = Study([args.model], variants=VARIANTS, seeds=[args.seed], steps=args.steps,
                      evals=args.evals, batch_size=args.batch_size, lr=args.lr, targets=[],
                      eval_limit=500, out_dir=args.out or scratch, keep_weights=False)
        runs = {run["variant"]: run for run in study.run().runs}
    steps = [args.steps * (i + 1) // args.evals for i in range(args.evals)]
    print(f"\n{args.model}, seed {args.seed}, batch {args.batch_size}, AdamW lr {args.lr:g}: "
          f"source validation top-1 (%) after each validation point")
    print("| variant | " + " | ".join(f"step {s}" for s in steps) + " | source test |")
    print("|---" * (len(steps) + 2) + "|")
    for name in VARIANTS:
        run = runs[name]
        curve = " | ".join(f"{point['val_top1']:.1f}" for point in run["history"])
        print(f"| {name} | {curve} | {run['metrics'][study.data.source]['top1']:.1f} |")


if __name__ == "__main__":
    main()
