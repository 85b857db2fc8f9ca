"""A study folder's files: ``results.csv`` / ``results.json`` / ``summary.md`` (+ plots)
written from the runs, and each run's ``result.json`` read back, checked.

``result.json`` and ``results.json`` are sealed (:func:`archalign.utils.io.seal_json`: a
SHA-256 member over the canonical record), since a flipped digit still parses: a read
checks the digest first, then the type and range of every value the tables use. A file
without a digest (an earlier version's) is not trusted either: the study retrains such a
run, ``neurn table`` rebuilds ``results.json``.

Plain ``csv`` / ``json`` / numpy / scipy: pandas is not needed (``pandas.DataFrame(
results.rows)`` works if you have it).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field, replace
from numbers import Real
from pathlib import Path

import numpy as np

from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_savefig, atomic_write_text, read_sealed_json, seal_json

from neurn.results.formats import build_table, render_table
from neurn.results.guards import guard_rails
from neurn.results.markdown import (
    data_lines, failed_lines, init_lines, legend_lines, protocol_lines, skipped_lines,
    summary_markdown)
from neurn.results.plots import plot_bars, plot_curves
from neurn.results.tables import ROW_FIELDS, domain_columns, result_rows, summarize

__all__ = ["StudyResults", "load_results", "read_run", "table_text", "write_outputs"]


@dataclass
class StudyResults:
    """What :meth:`neurn.Study.run` returns: the rows, the summary and where files went."""

    rows: list[dict]
    summary: list[dict]
    markdown: str
    runs: list[dict]
    out_dir: Path
    pending: list[str] = field(default_factory=list)  # run keys not finished yet

    @property
    def errors(self) -> list[dict]:
        return [r for r in self.runs if r.get("status") != "ok"]


def write_outputs(runs: list[dict], out_dir, *, plots: bool = True,
                  baseline: str | None = "baseline", echo: bool = True,
                  pending: list[str] = ()):
    """Write results.csv / results.json / summary.md (+ plots); return ``StudyResults``.
    ``pending``: the keys of the grid's runs not finished yet, listed in summary.md."""
    out_dir = Path(out_dir)
    rows = result_rows(runs)
    summary = summarize(rows, baseline=baseline)
    markdown = summary_markdown(rows, summary, runs, baseline=baseline, pending=pending)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "results.csv", buffer.getvalue())
    atomic_write_text(out_dir / "results.json", seal_json(
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
    return StudyResults(rows, summary, markdown, runs, out_dir, list(pending))


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


def _count(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _percent(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and 0 <= value <= 100


def _loss(value) -> bool:
    # NaN / inf are what a diverged model scores, not damage; a negative loss is
    return isinstance(value, Real) and not isinstance(value, bool) and not value < 0


def _valid_counts(counts) -> bool:
    """``{source: {"train", "val", "test"}, target: n, ...}`` with counts >= 0."""
    def entry(v):
        return _count(v) or (isinstance(v, dict) and set(v) == {"train", "val", "test"}
                             and all(map(_count, v.values())))

    return isinstance(counts, dict) and all(map(entry, counts.values()))


def _metric_problem(name: str, m) -> str | None:
    if not isinstance(m, dict):
        return f"the metrics of {name} are not a record"
    missing = [k for k in _METRIC_KEYS if k not in m]
    if missing:
        return f"the metrics of {name} lack {', '.join(missing)}"
    if m["role"] not in ("source", "target"):
        return f"{name} has role {m['role']!r}, not 'source' or 'target'"
    if not _percent(m["top1"]):
        return f"{name} has top-1 {m['top1']!r}, not a percentage"
    if not (_loss(m["loss"]) and _count(m["n"]) and isinstance(m["generated"], bool)):
        return f"{name} has a malformed loss, image count or generated flag"
    return None


def _run_problem(run: dict) -> str | None:
    """What is wrong with the values of a run record that the tables read, or None."""
    if not all(isinstance(run[k], str) for k in ("model", "variant", "settings_hash")):
        return "a model, variant or settings hash that is not text"
    if not _count(run["seed"]):
        return f"seed {run['seed']!r}, not a whole number >= 0"
    if run["status"] not in ("ok", "error"):
        return f"status {run['status']!r}, not 'ok' or 'error'"
    if "num_classes" in run and not (_count(run["num_classes"]) and run["num_classes"] >= 2):
        return f"num_classes {run['num_classes']!r}, not a class count"
    plan, history = run["plan"], run["history"]
    if not (isinstance(plan, dict) and _count(plan.get("input_size"))
            and isinstance(plan.get("adaptation"), str)) or not isinstance(history, list):
        return "not a run's result: no plan or history"
    if not all(isinstance(h, dict) and _count(h.get("step")) and _percent(h.get("val_top1"))
               and _loss(h.get("train_loss")) for h in history):
        return "a malformed history (step, train loss, validation top-1)"
    # runs written before the counts were recorded have none, and still read
    if "counts" in run and not _valid_counts(run["counts"]):
        return "malformed image counts"
    if not all(_count(n) for n in (run.get("skipped") or {}).values()):
        return "malformed counts of skipped images"
    if run["status"] != "ok":
        return None if isinstance(run.get("error"), str) else "a failed run without its error"
    metrics = run.get("metrics")
    if not (isinstance(metrics, dict) and metrics):
        return "a finished run without its metrics"
    if not (_percent(run.get("val_top1")) and _count(run.get("best_epoch"))
            and 1 <= run["best_epoch"] <= len(history)):
        return (f"validation top-1 {run.get('val_top1')!r} at epoch {run.get('best_epoch')!r}"
                f", not a percentage at an epoch the run trained")
    return next(filter(None, (_metric_problem(n, m) for n, m in metrics.items())), None)


def read_run(path) -> dict:
    """A run's ``result.json``, verified: its digest, then every value the tables read
    (``ValueError`` saying what is wrong otherwise)."""
    run = read_sealed_json(path)
    missing = [k for k in _RUN_KEYS if k not in run]
    if missing:
        raise UsageError(f"not a run's result: no {', '.join(missing)}")
    problem = _run_problem(run)
    if problem:
        raise UsageError(problem)
    return run


def load_results(out_dir, *, baseline: str | None = "baseline"):
    """Rebuild the tables (no plots, no printing) from ``out_dir/runs/*/result.json``;
    one that fails its check (:func:`read_run`) is refused, naming it (``neurn run``
    retrains such a run)."""
    out_dir = Path(out_dir)
    paths = sorted((out_dir / "runs").glob("*/result.json"))
    if not paths:
        raise FileNotFoundError(f"no finished runs under {out_dir / 'runs'}")
    runs = []
    for path in paths:
        try:
            runs.append(read_run(path))
        except IsADirectoryError:
            raise UsageError(f"{path} is a folder, not a run's result; move it away") from None
        except ValueError as exc:  # bad JSON or UTF-8, no or another digest, bad values
            raise UsageError(f"{path} is damaged ({exc}); rerun the study (`neurn run ... "
                             f"--out {out_dir}`) to retrain that run") from None
    return write_outputs(runs, out_dir, plots=False, baseline=baseline, echo=False)


def table_text(results: StudyResults, fmt: str = "markdown", *, against: str | None = None) -> str:
    """What ``neurn table --format fmt`` prints: ``summary.md`` for ``markdown``; else
    summary.md's main table alone, drawn from the same model: ``latex`` with the notes
    below that table in summary.md (legend, images, failed runs) as comments above it,
    ``csv`` with the marks as columns. ``against``: the variant each Δ and paired p is
    taken against (``neurn table --against``; default the study's, ``baseline``).

    Raises
    ------
    ValueError
        No run of the study finished, so there is no table to draw.
    """
    if against is not None:
        results = _against(results, against)
    if fmt == "markdown":
        return results.markdown
    if not domain_columns(results.rows):
        raise UsageError(f"{results.out_dir}: no finished run, no table; its summary.md "
                         f"lists the errors")
    flags = guard_rails(results.rows, results.summary)
    runs = results.runs
    notes = (legend_lines(results.rows, flags, plain=True) + protocol_lines(runs) +
             init_lines(runs) + data_lines(runs) + skipped_lines(runs) + failed_lines(runs))
    return render_table(build_table(results.rows, results.summary, flags), fmt, notes)


def _against(results: StudyResults, variant: str) -> StudyResults:
    """``results`` with its differences taken against ``variant`` instead."""
    known = sorted({r["variant"] for r in results.rows})
    if variant not in known:
        raise UsageError(f"--against {variant}: {results.out_dir} has no such variant (it has "
                         f"{', '.join(known)})")
    summary = summarize(results.rows, baseline=variant)
    markdown = summary_markdown(results.rows, summary, results.runs, baseline=variant,
                                pending=results.pending)
    return replace(results, summary=summary, markdown=markdown)
