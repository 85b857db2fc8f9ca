"""ONNX exports beside their torch traces in one panel (issue 13's target).

Exports resnet18, mobilenetv2_100, efficientnet_b0 and vit_tiny_patch16_224 (timm,
random weights) with ``torch.onnx.export`` (dynamo), reads each file back with
``archalign.tracing.onnx_trace`` and builds one similarity matrix over the 4 torch models and
the 4 files, with the default settings (an ONNX model in the panel turns on the
as-exported reading). For each model it prints the similarity of the pair and whether
the two are mutual nearest neighbours; target: >= 0.9 and mutual, for all four. Also
prints the same pairs without the as-exported reading, and each export's time.

    python benchmarks/bench_onnx.py [--out DIR]   (needs pip install 'archalign[onnx]')
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import archalign

MODELS = ("resnet18", "mobilenetv2_100", "efficientnet_b0", "vit_tiny_patch16_224")


def export(name: str, folder: Path) -> tuple[Path, float]:
    import timm
    import torch

    path = folder / f"{name}.onnx"
    t0 = time.perf_counter()
    model = timm.create_model(name, pretrained=False).eval()
    size = model.pretrained_cfg["input_size"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *size),), str(path), dynamo=True,
                          verbose=False)
    return path, time.perf_counter() - t0


def pairs(sm, files):
    """(similarity, mutual nearest neighbours) per model and its export; a tie for the
    nearest counts as nearest."""
    values = np.asarray(sm.values).copy()
    np.fill_diagonal(values, -np.inf)
    out = []
    for name, path in zip(MODELS, files):
        i, j = sm.labels.index(name), sm.labels.index(f"onnx:{path}")
        out.append((values[i, j], values[i, j] >= values[i].max() and
                    values[j, i] >= values[j].max()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="keep the .onnx files here (default: temp)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        exported = [export(name, folder) for name in MODELS]
        files = [path for path, _ in exported]
        specs = [*MODELS, *(f"onnx:{f}" for f in files)]
        t0 = time.perf_counter()
        sm = archalign.similarity_matrix(specs, progress=False)
        seconds = time.perf_counter() - t0
        plain = archalign.similarity_matrix(specs, progress=False, as_exported=False)
        lengths = {label: n for label, n in zip(sm.labels, sm.settings["unrolled_lengths"])}
        onnx_lengths = [lengths[f"onnx:{f}"] for f in files]
    print(f"matrix of {len(specs)} models in {seconds:.1f} s (as_exported = "
          f"{sm.settings['as_exported']})\n")
    print("| model | export (s) | ONNX calls | similarity | mutual NN | without as-exported |")
    print("|---|---|---|---|---|---|")
    for name, (_, t), n, (s, mutual), (s0, _) in zip(MODELS, exported, onnx_lengths,
                                                     pairs(sm, files), pairs(plain, files)):
        print(f"| {name} | {t:.1f} | {n} | {s:.3f} | {'yes' if mutual else 'NO'} | {s0:.3f} |")


if __name__ == "__main__":
    main()
