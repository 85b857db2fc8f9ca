"""Result tables and plots of a NeuRN study: rows, summary, Markdown, bar plot, curves.

* ``rows``: one per (model, variant, seed, domain), from the runs' ``result.json``.
* ``summary``: per model x variant x domain the mean and sample std (ddof 1) of top-1
  over seeds, plus ``targets (mean)``: the average over target domains, taken per seed
  then summarised; and per model x domain the difference of each NeuRN variant to the
  baseline, seed by seed (paired), with a paired t-test (``scipy.stats.ttest_rel``;
  the p-value is NaN with fewer than 2 seeds). Only runs with ``status == "ok"`` count.
* guard rails (``neurn.guards``): undertrained runs and targets on which every model
  scores at chance stay in the tables, marked, with a legend.
* ``summary.md`` opens with one line per variant (mean over targets, Δ to baseline),
  then the table. ``neurn.compare`` merges the tables of several study folders.
* Plain ``csv`` / ``json`` / numpy / scipy: pandas is not needed (``pandas.DataFrame(
  results.rows)`` works if you have it).
"""
import csv
import io
import json
import math
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from archalign._io import atomic_savefig, atomic_write_text

from .guards import AT_CHANCE_MARK, DIGIT_CLASSES, UNDERTRAINED_MARK, Flags, guard_rails

__all__ = ["TARGETS_MEAN", "failed_lines", "lead_lines", "legend_lines", "load_results",
           "plot_bars", "plot_curves", "read_run", "result_rows", "skipped_lines", "summarize",
           "summary_markdown", "table_lines", "write_outputs"]

TARGETS_MEAN = "targets (mean)"
ROW_FIELDS = ["model", "variant", "kernel_size", "seed", "domain", "role", "generated",
              "top1", "loss", "n", "best_epoch", "val_top1", "input_size", "adaptation",
              "num_classes", "device", "status", "error"]


def result_rows(runs: List[dict]) -> List[dict]:
    """One row per (model, variant, seed, domain); failed runs give one row, domain ''."""
    rows = []
    for run in runs:
        common = {"model": run["model"], "variant": run["variant"],
                  "kernel_size": run.get("kernel_size"), "seed": run["seed"],
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


def _per_seed(rows: List[dict]) -> Dict[tuple, Dict[int, float]]:
    """(model, variant, domain) -> {seed: top1}, with the targets' mean per seed added."""
    table: Dict[tuple, Dict[int, float]] = {}
    targets: Dict[tuple, Dict[int, List[float]]] = {}
    for row in rows:
        if row["status"] != "ok":
            continue
        key = (row["model"], row["variant"], row["domain"])
        table.setdefault(key, {})[row["seed"]] = row["top1"]
        if row["role"] == "target":
            targets.setdefault((row["model"], row["variant"]), {}).setdefault(
                row["seed"], []).append(row["top1"])
    for (model, variant), seeds in targets.items():
        table[(model, variant, TARGETS_MEAN)] = {s: float(np.mean(v)) for s, v in seeds.items()}
    return table


def _mean_std(values) -> tuple:
    values = np.asarray(list(values), dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return float(np.mean(values)), std


def _paired(a: Dict, b: Dict) -> dict:
    """``a - b`` over their common keys: mean, std, n and the paired t-test p-value."""
    from scipy import stats

    keys = sorted(set(a) & set(b))
    diffs = np.array([a[k] - b[k] for k in keys], dtype=float)
    mean, std = _mean_std(diffs)
    p = float("nan")
    if len(keys) >= 2 and np.ptp(diffs) > 0:
        p = float(stats.ttest_rel([a[k] for k in keys], [b[k] for k in keys]).pvalue)
    elif len(keys) >= 2 and diffs[0] == 0:
        p = 1.0
    return {"mean": mean, "std": std, "n": len(keys), "p_value": p}


def summarize(rows: List[dict], *, baseline: Optional[str] = "baseline") -> List[dict]:
    """Summary records: ``kind`` "score" (model, variant, domain, mean, std, n) and
    ``kind`` "diff" (model, variant - baseline, domain, mean, std, n, p_value)."""
    table = _per_seed(rows)
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
                        "domain": domain, **_paired(seeds, base)})
    return out


# ---------------------------------------------------------------- Markdown
def _domains(rows: List[dict]) -> List[str]:
    source = [r["domain"] for r in rows if r["role"] == "source"]
    targets = [r["domain"] for r in rows if r["role"] == "target"]
    ordered = list(dict.fromkeys(source)) + list(dict.fromkeys(targets))
    return ordered + ([TARGETS_MEAN] if targets else [])


def _cell(record: Optional[dict], signed: bool = False) -> str:
    if record is None or not math.isfinite(record["mean"]):
        return "-"
    text = f"{record['mean']:+.1f}" if signed else f"{record['mean']:.1f}"
    if math.isfinite(record["std"]):
        text += f" ± {record['std']:.1f}"
    if record["p_value"] is not None and math.isfinite(record["p_value"]):
        text += f" (p={record['p_value']:.2g})"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def lead_lines(rows: List[dict], flags: Flags, *, baseline: Optional[str] = "baseline"
               ) -> List[str]:
    """One line per variant: its mean target top-1 over all its runs and the Δ to the
    baseline paired on (model, seed), so one number per variant sums up the study."""
    by_variant: Dict[str, Dict[tuple, float]] = {}
    for (model, variant, domain), seeds in _per_seed(rows).items():
        if domain == TARGETS_MEAN:
            by_variant.setdefault(variant, {}).update({(model, s): v for s, v in seeds.items()})
    if not by_variant:
        return []
    n_targets = len({r["domain"] for r in rows if r["role"] == "target"})
    lines = [f"Mean target top-1 per variant: each run's mean over the {n_targets} targets, "
             f"averaged over the variant's runs (models x seeds)" +
             (f"; Δ = variant - {baseline} on the same model and seed, averaged over those "
              f"pairs (± std, paired t-test)" if baseline in by_variant else "") + ":", ""]
    for variant, runs in by_variant.items():
        models = len({m for m, _ in runs})
        text = (f"- **{variant}**: {np.mean(list(runs.values())):.1f}% over "
                f"{_count(len(runs), 'run')} ({_count(models, 'model')})")
        if baseline in by_variant and variant != baseline:
            delta = _paired(runs, by_variant[baseline])
            text += (f"; Δ {_cell(delta, signed=True)} over {_count(delta['n'], 'pair')}"
                     if delta["n"] else f"; no Δ: no {baseline} run on the same model and seed")
            if 0 < delta["n"] < len(runs):
                text += (f" ({_count(len(runs) - delta['n'], 'run')} without a {baseline} "
                         f"partner left out)")
        weak = sum(r["variant"] == variant for r in flags.undertrained)
        if weak:
            text += f"; includes {_count(weak, 'undertrained run')} {UNDERTRAINED_MARK}"
        lines.append(text)
    return lines


def table_lines(rows: List[dict], summary: List[dict], flags: Flags) -> List[str]:
    """The main table: model x variant (and difference) rows, domain columns. Records
    with a ``study`` key (a comparison) get a first column naming it."""
    domains = _domains(rows)
    by_study = any("study" in s for s in summary)
    index = {(s.get("study"), s["kind"], s["model"], s["variant"], s["domain"]): s
             for s in summary}
    generated = {r["domain"] for r in rows if r["generated"] is True}
    source = {r["domain"] for r in rows if r["role"] == "source"}
    labels = [d + (" (source test)" if d in source else "") + ("*" if d in generated else "") +
              (f" {AT_CHANCE_MARK}" if d in flags.at_chance else "") for d in domains]
    lead = "| study " if by_study else ""
    lines = [lead + "| model | variant | seeds | " + " | ".join(labels) + " |",
             ("|---" if by_study else "") + "|---|---|---|" + "---|" * len(domains)]
    for study, model in dict.fromkeys((s.get("study"), s["model"]) for s in summary):
        for kind in ("score", "diff"):
            variants = dict.fromkeys(s["variant"] for s in summary if s["kind"] == kind and
                                     (s.get("study"), s["model"]) == (study, model))
            for variant in variants:
                records = [index.get((study, kind, model, variant, d)) for d in domains]
                cells = [_cell(r, kind == "diff") for r in records]
                n = max(r["n"] for r in records if r is not None)
                name = f"**{variant}**" if kind == "diff" else variant + (
                    f" {UNDERTRAINED_MARK}" if flags.marks(model, variant, study) else "")
                lead = f"| {study} " if by_study else ""
                lines.append(f"{lead}| {model} | {name} | {n} | " + " | ".join(cells) + " |")
    return lines


def legend_lines(rows: List[dict], flags: Flags) -> List[str]:
    """What the table's numbers and marks mean."""
    lines = ["Top-1 accuracy (%), mean ± std over seeds; checkpoint chosen on source "
             "validation only. Difference rows: paired over seeds, t-test p-value."]
    if any(r["generated"] is True for r in rows):
        lines.append("\\* generated by our code (\"-style\" stand-ins), not the real "
                     "dataset of that name.")
    lines += flags.legend()
    adaptations = {(r["model"], r["adaptation"]) for r in rows}
    if adaptations:
        lines.append("Input: " + "; ".join(f"{m}: {a}" for m, a in sorted(adaptations)) + ".")
    kernels = sorted({r["kernel_size"] for r in rows if r["kernel_size"] is not None})
    if kernels:
        lines.append(f"NeuRN kernel size k = {', '.join(map(str, kernels))}.")
    return lines


def failed_lines(records) -> List[str]:
    """The failed runs (run records or rows, possibly with a ``study`` key), listed."""
    failed = [r for r in records if r.get("status") != "ok"]
    if not failed:
        return []
    return ["", "Failed runs:"] + [
        "- " + (f"{r['study']}: " if r.get("study") is not None else "") +
        f"{r['model']} {r['variant']} seed {r['seed']}: {r['error']}" for r in failed]


def skipped_lines(runs) -> List[str]:
    """A note on the image files ``--skip-bad-images`` left out, if any."""
    counts: Dict[str, int] = {}
    for run in runs:
        for name, n in (run.get("skipped") or {}).items():
            counts[name] = max(counts.get(name, 0), int(n))
    if not any(counts.values()):
        return []
    return ["", "Unreadable images left out (--skip-bad-images): " +
            ", ".join(f"{name} {n}" for name, n in counts.items()) +
            "; data.json lists the files."]


def summary_markdown(rows: List[dict], summary: List[dict], runs: List[dict] = (), *,
                     baseline: Optional[str] = "baseline") -> str:
    """summary.md: the lead lines, the table with its legend, skipped images, the
    failed runs."""
    if not _domains(rows):
        lines = ["No finished runs."]
    else:
        flags = guard_rails(rows, summary)
        lines = (lead_lines(rows, flags, baseline=baseline) + [""] +
                 table_lines(rows, summary, flags) + [""] + legend_lines(rows, flags))
    return "\n".join(lines + skipped_lines(runs) + failed_lines(runs)) + "\n"


# ---------------------------------------------------------------- plots
def plot_bars(rows: List[dict], summary: List[dict]):
    """Grouped bars: one panel per model, domains on x, one bar per variant; error bars
    (± std over seeds) when some bar averages more than one seed."""
    from matplotlib.figure import Figure

    domains = _domains(rows)
    models = list(dict.fromkeys(r["model"] for r in rows if r["status"] == "ok"))
    variants = list(dict.fromkeys(r["variant"] for r in rows if r["status"] == "ok"))
    index = {(s["model"], s["variant"], s["domain"]): s for s in summary if s["kind"] == "score"}
    # decided on the seed count, not on std > 0: identical seeds still get (zero) bars
    seeded = any(s["n"] > 1 for s in index.values())
    panel_width = max(4.0, 0.35 * len(domains) * len(variants) + 1.5)
    ncols = max(1, min(3, len(models), int(16 // panel_width)))
    nrows = max(1, math.ceil(len(models) / ncols))
    fig = Figure(figsize=(panel_width * ncols, 3.2 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    width = 0.8 / max(1, len(variants))
    x = np.arange(len(domains))
    for ax, model in zip(axes, models):
        for i, variant in enumerate(variants):
            recs = [index.get((model, variant, d)) for d in domains]
            means = [r["mean"] if r else np.nan for r in recs]
            spread = [r["std"] if r and r["n"] > 1 else 0.0 for r in recs] if seeded else None
            ax.bar(x + (i - (len(variants) - 1) / 2) * width, means, width, yerr=spread,
                   capsize=2, label=variant)
        ax.set_title(model, fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(domains, rotation=40, ha="right", fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_ylabel("top-1 (%), ± std over seeds" if seeded else "top-1 (%)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(models):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_curves(runs: List[dict]):
    """Learning curves: per model, training loss and source-validation top-1 by step."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(r["model"] for r in runs))
    fig = Figure(figsize=(9, 2.8 * max(1, len(models))))
    axes = fig.subplots(max(1, len(models)), 2, squeeze=False)
    for (loss_ax, val_ax), model in zip(axes, models):
        for run in runs:
            if run["model"] != model or not run["history"]:
                continue
            steps = [h["step"] for h in run["history"]]
            label = f"{run['variant']} s{run['seed']}" + (" (error)" if run["status"] != "ok" else "")
            loss_ax.plot(steps, [h["train_loss"] for h in run["history"]], marker=".", label=label)
            val_ax.plot(steps, [h["val_top1"] for h in run["history"]], marker=".", label=label)
            if run.get("best_epoch"):
                best = run["history"][run["best_epoch"] - 1]
                val_ax.plot([best["step"]], [best["val_top1"]], "k*", markersize=8)
        loss_ax.set_title(f"{model}: training loss", fontsize=9)
        val_ax.set_title(f"{model}: source val top-1 (* = selected)", fontsize=9)
        loss_ax.set_xlabel("step")
        val_ax.set_xlabel("step")
        val_ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_outputs(runs: List[dict], out_dir, *, plots: bool = True,
                  baseline: Optional[str] = "baseline", echo: bool = True):
    """Write results.csv / results.json / summary.md (+ plots); return ``StudyResults``."""
    from .study import StudyResults

    out_dir = Path(out_dir)
    rows = result_rows(runs)
    summary = summarize(rows, baseline=baseline)
    markdown = summary_markdown(rows, summary, runs, baseline=baseline)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "results.csv", buffer.getvalue())
    atomic_write_text(out_dir / "results.json", json.dumps(
        _finite({"rows": rows, "summary": summary}), indent=1, default=_json_default))
    atomic_write_text(out_dir / "summary.md", markdown)
    if plots and rows:
        for name, fig in (("results.png", plot_bars(rows, summary) if any(
                r["status"] == "ok" for r in rows) else None),
                          ("learning_curves.png", plot_curves(runs))):
            if fig is not None:
                atomic_savefig(fig, out_dir / name, dpi=120)
    if echo:
        print(markdown)
    return StudyResults(rows, summary, markdown, runs, out_dir)


def _finite(value):
    """NaN / inf -> None, so results.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


_RUN_KEYS = ("model", "variant", "seed", "status", "plan", "history", "settings_hash")
_METRIC_KEYS = ("role", "generated", "top1", "loss", "n")


def read_run(path) -> dict:
    """A run's ``result.json``, checked for what the tables read (``ValueError``
    saying what is wrong otherwise)."""
    run = json.loads(Path(path).read_text())
    missing = [k for k in _RUN_KEYS if not isinstance(run, dict) or k not in run]
    if missing:
        raise ValueError(f"not a run's result: no {', '.join(missing)}")
    if not (isinstance(run["plan"], dict) and "input_size" in run["plan"]
            and "adaptation" in run["plan"]) or not isinstance(run["history"], list):
        raise ValueError("not a run's result: no plan or history")
    metrics = run.get("metrics")
    if run["status"] == "ok" and not (
            isinstance(metrics, dict) and metrics and
            all(isinstance(m, dict) and all(k in m for k in _METRIC_KEYS)
                for m in metrics.values())):
        raise ValueError("a finished run without its metrics")
    return run


def load_results(out_dir, *, baseline: Optional[str] = "baseline"):
    """Rebuild the tables (no plots, no printing) from ``out_dir/runs/*/result.json``;
    a damaged one is refused, naming it (``neurn run`` retrains such a run)."""
    out_dir = Path(out_dir)
    paths = sorted((out_dir / "runs").glob("*/result.json"))
    if not paths:
        raise FileNotFoundError(f"no finished runs under {out_dir / 'runs'}")
    runs = []
    for path in paths:
        try:
            runs.append(read_run(path))
        except IsADirectoryError:
            raise ValueError(f"{path} is a folder, not a run's result; move it away") from None
        except ValueError as exc:  # bad JSON, bad UTF-8 or the wrong content
            raise ValueError(f"{path} is damaged ({exc}); rerun the study (`neurn run ... "
                             f"--out {out_dir}`) to retrain that run") from None
    return write_outputs(runs, out_dir, plots=False, baseline=baseline, echo=False)
