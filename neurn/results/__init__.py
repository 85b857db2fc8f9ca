"""neurn.results: the runs' ``result.json`` records in; rows, summary, ``summary.md`` and plots out.

Open :mod:`.outputs` first (``write_outputs``, ``load_results``, ``table_text``);
:mod:`.tables` computes the numbers, :mod:`.formats` lays out the main table once and
draws it as Markdown, LaTeX or CSV, :mod:`.markdown` writes summary.md around it,
:mod:`.plots` draws the figures, :mod:`.guards` flags the doubtful numbers,
:mod:`.compare` merges study folders. Nothing here imports the study.
"""
from __future__ import annotations

from neurn.results.markdown import (
    failed_lines, lead_lines, legend_lines, skipped_lines, summary_markdown, table_lines)
from neurn.results.formats import FORMATS, build_table, render_table
from neurn.results.outputs import StudyResults, load_results, read_run, table_text, write_outputs
from neurn.results.plots import plot_bars, plot_curves
from neurn.results.tables import ROW_FIELDS, TARGETS_MEAN, result_rows, summarize

__all__ = ["FORMATS", "ROW_FIELDS", "StudyResults", "TARGETS_MEAN", "build_table",
           "failed_lines", "lead_lines", "legend_lines", "load_results", "plot_bars",
           "plot_curves", "read_run", "render_table", "result_rows", "skipped_lines",
           "summarize", "summary_markdown", "table_lines", "table_text", "write_outputs"]
