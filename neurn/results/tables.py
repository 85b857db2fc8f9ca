"""Result rows and their summary: the numbers every table, plot and comparison is drawn from.

* ``rows``: one per (model, variant, seed, domain), from the runs' ``result.json``.
* ``summary``: per model x variant x domain the mean and sample std (ddof 1) of top-1
  over seeds, plus ``targets (mean)``: the average over target domains, taken per seed
  then summarised, and ``source val``: the selected checkpoint's source-validation
  top-1 (what selected it, and what the undertrained guard reads; with held-out groups
  the average over a seed's runs); and per model x domain the difference of each NeuRN
  variant to the baseline, seed by seed (paired), with a paired t-test (``scipy.stats.ttest_rel``;
  the p-value is NaN with fewer than 2 seeds). Only runs with ``status == "ok"`` count.
"""
from __future__ import annotations

import numpy as np

from neurn.results.guards import DIGIT_CLASSES

__all__ = ["ROW_FIELDS", "SOURCE_VAL", "TARGETS_MEAN", "domain_columns", "paired_difference",
           "result_rows", "seed_table", "summarize"]

TARGETS_MEAN = "targets (mean)"
SOURCE_VAL = "source val"
"""The summary's name for the selected checkpoints' source-validation top-1; a column of
the tables (:func:`neurn.results.formats.build_table`), not a domain of the rows."""
ROW_FIELDS = ["model", "variant", "kernel_size", "seed", "group", "domain", "role", "generated",
              "top1", "loss", "n", "best_epoch", "val_top1", "input_size", "adaptation",
              "num_classes", "device", "status", "error"]


def result_rows(runs: list[dict]) -> list[dict]:
    """One row per (model, variant, seed, domain); failed runs give one row, domain ''."""
    rows = []
    for run in runs:
        common = {"model": run["model"], "variant": run["variant"],
                  "kernel_size": run.get("kernel_size"), "seed": run["seed"],
                  "group": run.get("group"),
                  "best_epoch": run.get("best_epoch"), "val_top1": run.get("val_top1"),
                  "input_size": run["plan"]["input_size"],
                  "adaptation": run["plan"]["adaptation"], "device": run.get("device"),
                  # sets chance and guards `neurn compare`; today's records lack it (10)
                  "num_classes": run.get("num_classes", DIGIT_CLASSES),
                  "status": run["status"], "error": run.get("error") or ""}
        if run["status"] != "ok":
            rows.append({**common, "domain": "", "role": "", "generated": "",
                         "top1": float("nan"), "loss": float("nan"), "n": 0})
            continue
        for name, m in run["metrics"].items():
            rows.append({**common, "domain": name, "role": m["role"],
                         "generated": m["generated"], "top1": m["top1"], "loss": m["loss"],
                         "n": m["n"]})
    return [{k: row.get(k) for k in ROW_FIELDS} for row in rows]


def seed_table(rows: list[dict]) -> dict[tuple, dict[int, float]]:
    """(model, variant, domain) -> {seed: top1}, with the targets' mean per seed and the
    source validation (:data:`SOURCE_VAL`) per seed added."""
    table: dict[tuple, dict[int, float]] = {}
    targets: dict[tuple, dict[int, list[float]]] = {}
    val: dict[tuple, dict[int, dict]] = {}  # a run's value, repeated on each of its rows
    for row in rows:
        if row["status"] != "ok":
            continue
        key = (row["model"], row["variant"], row["domain"])
        table.setdefault(key, {})[row["seed"]] = row["top1"]
        if row["role"] == "target":
            targets.setdefault((row["model"], row["variant"]), {}).setdefault(
                row["seed"], []).append(row["top1"])
        if row["val_top1"] is not None:  # None in rows of results.json files that lack it
            val.setdefault((row["model"], row["variant"]), {}).setdefault(
                row["seed"], {})[row.get("group")] = row["val_top1"]
    for (model, variant), seeds in targets.items():
        table[(model, variant, TARGETS_MEAN)] = {s: float(np.mean(v)) for s, v in seeds.items()}
    for (model, variant), seeds in val.items():
        table[(model, variant, SOURCE_VAL)] = {s: float(np.mean(list(runs.values())))
                                               for s, runs in seeds.items()}
    return table


def _mean_std(values) -> tuple:
    values = np.asarray(list(values), dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std


def paired_difference(a: dict, b: dict) -> dict:
    """``a - b`` over their common keys: mean, std, n and the paired t-test p-value."""
    from scipy import stats

    keys = sorted(set(a) & set(b))
    diffs = np.array([a[k] - b[k] for k in keys], dtype=float)
    mean, std = _mean_std(diffs)
    p = float("nan")
    # equal differences (up to float rounding: 98.4 - 98.2 is not 0.2 exactly) leave the
    # t statistic undefined, and scipy would compute it from the rounding noise
    same = len(keys) >= 2 and np.allclose(diffs, diffs[0], rtol=0, atol=1e-9)
    if len(keys) >= 2 and not same:
        p = float(stats.ttest_rel([a[k] for k in keys], [b[k] for k in keys]).pvalue)
    elif same and abs(diffs[0]) <= 1e-9:
        p = 1.0
    return {"mean": mean, "std": std, "n": len(keys), "p_value": p}


def summarize(rows: list[dict], *, baseline: str | None = "baseline") -> list[dict]:
    """Summary records: ``kind`` "score" (model, variant, domain, mean, std, n) and
    ``kind`` "diff" (model, variant - baseline, domain, mean, std, n, p_value)."""
    table = seed_table(rows)
    out = []
    for (model, variant, domain), seeds in table.items():
        mean, std = _mean_std(seeds.values())
        out.append({"kind": "score", "model": model, "variant": variant, "domain": domain,
                    "mean": mean, "std": std, "n": len(seeds), "p_value": None})
    if baseline is not None:
        for (model, variant, domain), seeds in table.items():
            base = table.get((model, baseline, domain))
            if variant == baseline or base is None:
                continue
            out.append({"kind": "diff", "model": model, "variant": f"{variant} - {baseline}",
                        "domain": domain, **paired_difference(seeds, base)})
    return out


def domain_columns(rows: list[dict]) -> list[str]:
    """The table's columns: the source, then the targets, then their mean."""
    source = [r["domain"] for r in rows if r["role"] == "source"]
    targets = [r["domain"] for r in rows if r["role"] == "target"]
    ordered = list(dict.fromkeys(source)) + list(dict.fromkeys(targets))
    return ordered + ([TARGETS_MEAN] if targets else [])
