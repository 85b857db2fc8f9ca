"""A study folder's files: ``results.csv`` / ``results.json`` / ``summary.md`` (+ plots)
written from the runs, and each run's ``result.json`` read back, checked.

Plain ``csv`` / ``json`` / numpy / scipy: pandas is not needed (``pandas.DataFrame(
results.rows)`` works if you have it).
"""
import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from archalign._io import atomic_savefig, atomic_write_text

from .markdown import summary_markdown
from .plots import plot_bars, plot_curves
from .tables import ROW_FIELDS, result_rows, summarize

__all__ = ["StudyResults", "load_results", "read_run", "write_outputs"]


@dataclass
class StudyResults:
    """What :meth:`neurn.Study.run` returns: the rows, the summary and where files went."""

    rows: List[dict]
    summary: List[dict]
    markdown: str
    runs: List[dict]
    out_dir: Path
    pending: List[str] = field(default_factory=list)  # run keys not finished yet

    @property
    def errors(self) -> List[dict]:
        return [r for r in self.runs if r.get("status") != "ok"]


def write_outputs(runs: List[dict], out_dir, *, plots: bool = True,
                  baseline: Optional[str] = "baseline", echo: bool = True,
                  pending: List[str] = ()):
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


def _valid_counts(counts) -> bool:
    """``{source: {"train", "val", "test"}, target: n, ...}`` with counts >= 0."""
    def count(n):
        return isinstance(n, int) and not isinstance(n, bool) and n >= 0

    def entry(v):
        return count(v) or (isinstance(v, dict) and set(v) == {"train", "val", "test"}
                            and all(map(count, v.values())))

    return isinstance(counts, dict) and all(map(entry, counts.values()))


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
    # runs written before the counts were recorded have none, and still read
    if "counts" in run and not _valid_counts(run["counts"]):
        raise ValueError("malformed image counts")
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
