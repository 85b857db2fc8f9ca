"""The study's figures: grouped bars of top-1 per domain, and learning curves (matplotlib)."""
from __future__ import annotations

import math

import numpy as np

from neurn.results.guards import UNDERTRAINED_MARK, UNDERTRAINED_VAL_TOP1, guard_rails
from neurn.results.tables import domain_columns

__all__ = ["plot_bars", "plot_curves"]


def plot_bars(rows: list[dict], summary: list[dict]):
    """Grouped bars: one panel per model, domains on x, one bar per variant; error bars
    (± std over seeds) when some bar averages more than one seed; a dashed line at chance
    (100 / classes), and a variant holding an undertrained run marked † in the legend,
    as in the tables."""
    from matplotlib.figure import Figure

    flags = guard_rails(rows, summary)

    domains = domain_columns(rows)
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
            mark = f" {UNDERTRAINED_MARK}" if flags.marks(model, variant) else ""
            ax.bar(x + (i - (len(variants) - 1) / 2) * width, means, width, yerr=spread,
                   capsize=2, label=variant + mark)
        if math.isfinite(flags.chance):
            ax.axhline(flags.chance, color="0.3", linestyle="--", linewidth=0.8,
                       label=f"chance ({flags.chance:g}%)")
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


def plot_curves(runs: list[dict]):
    """Learning curves: per model, training loss and source-validation top-1 by step
    (whole-number ticks); the selected checkpoint starred, the undertrained guard drawn
    and a run whose selected checkpoint falls below it marked † in the legend."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    models = list(dict.fromkeys(r["model"] for r in runs))
    fig = Figure(figsize=(9, 2.8 * max(1, len(models))))
    axes = fig.subplots(max(1, len(models)), 2, squeeze=False)
    for (loss_ax, val_ax), model in zip(axes, models):
        for run in runs:
            if run["model"] != model or not run["history"]:
                continue
            steps = [h["step"] for h in run["history"]]
            label = f"{run['variant']} s{run['seed']}" + (" (error)" if run["status"] != "ok" else "")
            if run.get("best_epoch") and run.get("val_top1", 100.0) < UNDERTRAINED_VAL_TOP1:
                label += f" {UNDERTRAINED_MARK}"
            loss_ax.plot(steps, [h["train_loss"] for h in run["history"]], marker=".", label=label)
            val_ax.plot(steps, [h["val_top1"] for h in run["history"]], marker=".", label=label)
            if run.get("best_epoch"):
                best = run["history"][run["best_epoch"] - 1]
                val_ax.plot([best["step"]], [best["val_top1"]], "k*", markersize=8)
        val_ax.axhline(UNDERTRAINED_VAL_TOP1, color="0.3", linestyle="--", linewidth=0.8,
                       label=f"undertrained below {UNDERTRAINED_VAL_TOP1:g}%")
        loss_ax.set_title(f"{model}: training loss", fontsize=9)
        val_ax.set_title(f"{model}: source val top-1 (* = selected)", fontsize=9)
        for ax in (loss_ax, val_ax):
            ax.set_xlabel("step")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole
        val_ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
