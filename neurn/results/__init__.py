"""neurn.results: the runs' ``result.json`` records in; rows, summary, ``summary.md`` and plots out.

Open :mod:`.outputs` first (``write_outputs``, ``load_results``); :mod:`.tables` computes
the numbers, :mod:`.markdown` and :mod:`.plots` draw them, :mod:`.guards` flags the
doubtful ones, :mod:`.compare` merges study folders. Nothing here imports the study.
"""
from .markdown import (failed_lines, lead_lines, legend_lines, skipped_lines, summary_markdown,
                       table_lines)
from .outputs import StudyResults, load_results, read_run, write_outputs
from .plots import plot_bars, plot_curves
from .tables import ROW_FIELDS, TARGETS_MEAN, result_rows, summarize

__all__ = ["ROW_FIELDS", "StudyResults", "TARGETS_MEAN", "failed_lines", "lead_lines",
           "legend_lines", "load_results", "plot_bars", "plot_curves", "read_run",
           "result_rows", "skipped_lines", "summarize", "summary_markdown", "table_lines",
           "write_outputs"]
