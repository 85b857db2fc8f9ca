"""``summary.md``: the lead lines, the table, its legend, image counts, skipped images and
failed runs.

* guard rails (:mod:`neurn.results.guards`): undertrained runs and targets on which every
  model scores at chance stay in the tables, marked, with a legend.
* ``summary.md`` opens with one line per variant (mean over targets, Δ to baseline),
  then the table. :mod:`neurn.results.compare` merges the tables of several study folders.
"""
import math
from typing import Dict, List, Optional

import numpy as np

from ..models.pretrained import Init
from .guards import AT_CHANCE_MARK, UNDERTRAINED_MARK, Flags, guard_rails
from .tables import TARGETS_MEAN, domain_columns, paired_difference, seed_table

__all__ = ["data_lines", "failed_lines", "init_lines", "lead_lines", "legend_lines",
           "pending_lines", "protocol_lines", "skipped_lines", "summary_markdown",
           "table_lines"]


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
    for (model, variant, domain), seeds in seed_table(rows).items():
        if domain == TARGETS_MEAN:
            by_variant.setdefault(variant, {}).update({(model, s): v for s, v in seeds.items()})
    if not by_variant:
        return []
    n_targets = len({r["domain"] for r in rows if r["role"] == "target"})
    groups = {r.get("group") for r in rows} - {None}
    each = ("each model and seed's mean over the {n} held-out domains (one run each)"
            if groups else "each run's mean over the {n} targets").format(n=n_targets)
    lines = [f"Mean target top-1 per variant: {each}, averaged over the variant's models x "
             f"seeds" +
             (f"; Δ = variant - {baseline} on the same model and seed, averaged over those "
              f"pairs (± std, paired t-test)" if baseline in by_variant else "") + ":", ""]
    for variant, runs in by_variant.items():
        models = len({m for m, _ in runs})
        n_runs = len({(r["model"], r["seed"], r.get("group")) for r in rows
                      if r["variant"] == variant and r["status"] == "ok"})
        text = (f"- **{variant}**: {np.mean(list(runs.values())):.1f}% over "
                f"{_count(n_runs, 'run')} ({_count(models, 'model')}" +
                (f", {_count(len(groups), 'held-out group')})" if groups else ")"))
        if baseline in by_variant and variant != baseline:
            delta = paired_difference(runs, by_variant[baseline])
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
    domains = domain_columns(rows)
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


def data_lines(runs) -> List[str]:
    """How many images the numbers rest on: each source's splits, each target's size
    (one line per held-out group of a leave-one-domain-out study)."""
    groups: Dict[object, dict] = {}
    for run in runs:
        if run.get("counts"):
            groups.setdefault(run.get("group"), run["counts"])
    lines = []
    for group, counts in groups.items():
        sources = [f"{name} {n['train']:,} train / {n['val']:,} val" +
                   (f" / {n['test']:,} test" if n["test"] else "")
                   for name, n in counts.items() if isinstance(n, dict)]
        targets = [f"{name} {n:,}" for name, n in counts.items() if not isinstance(n, dict)]
        lead = "Images" if group is None else f"Images, {group} held out"
        lines.append(f"{lead}: source{'s' if len(sources) > 1 else ''} " + ", ".join(sources) +
                     ("; targets " + ", ".join(targets) if targets else "") + ".")
    return lines


def init_lines(runs) -> List[str]:
    """Where each model's weights started: from scratch, or which pretrained weights."""
    inits: Dict[str, str] = {}
    for run in runs:
        inits.setdefault(run["model"], Init.from_dict(run.get("init")).describe())
    if not inits:
        return []
    if len(set(inits.values())) == 1:
        return [f"Initialisation: {next(iter(inits.values()))}."]
    return ["Initialisation: " + "; ".join(f"{m}: {t}" for m, t in inits.items()) + "."]


def protocol_lines(runs) -> List[str]:
    """For leave-one-domain-out runs: what each target column is."""
    if not any(run.get("group") is not None for run in runs):
        return []
    return ["Leave-one-domain-out (DomainBed): each target column is the domain held out, "
            "the model trained on all the others; the checkpoint is chosen on a holdout of "
            "the training domains (training-domain validation); "
            f"{TARGETS_MEAN} is the average over held-out domains."]


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


def pending_lines(pending) -> List[str]:
    """The grid's runs not finished yet (other shards' or processes', or not started)."""
    if not pending:
        return []
    return ["", f"Not finished yet ({len(pending)}, left out of the table; `neurn table "
                f"DIR` shows which are running): " + ", ".join(pending) + "."]


def summary_markdown(rows: List[dict], summary: List[dict], runs: List[dict] = (), *,
                     baseline: Optional[str] = "baseline", pending=()) -> str:
    """summary.md: the lead lines, the table with its legend and image counts, skipped
    images, the failed runs, the runs not finished yet."""
    if not domain_columns(rows):
        lines = ["No finished runs."]
    else:
        flags = guard_rails(rows, summary)
        lines = (lead_lines(rows, flags, baseline=baseline) + [""] +
                 table_lines(rows, summary, flags) + [""] + legend_lines(rows, flags) +
                 protocol_lines(runs) + init_lines(runs) + data_lines(runs))
    return "\n".join(lines + skipped_lines(runs) + failed_lines(runs) +
                     pending_lines(pending)) + "\n"
