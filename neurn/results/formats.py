"""The main table as one model, drawn as Markdown (``summary.md``), LaTeX or CSV.

:func:`build_table` arranges the summary records (:func:`neurn.results.tables.summarize`)
and the guard rails' marks into rows and columns once; the renderers only format that
model, and the two that round (Markdown, LaTeX) round through one function, so no
format can show a number, a row or a mark the others do not.

The columns: ``source val`` (:data:`~neurn.results.tables.SOURCE_VAL`, the selected
checkpoints' source-validation top-1, which chose them and decides the undertrained
mark), the source test split, each target, the targets' mean.

* ``markdown``: the table of ``summary.md``.
* ``latex``: a paste-ready booktabs ``tabular`` (``\\usepackage{booktabs}``): names
  escaped, ``*`` / ``\\dag`` / ``\\ddag`` for the marks, the table's notes as ``%``
  comments above it.
* ``csv``: long ("tidy"), one line per (study,) model, variant and domain, so that
  ``pandas.read_csv`` or a spreadsheet reads it as it is: mean, std, n and p unrounded
  in columns of their own (empty where there is none), the marks as True / False
  columns. A text cell that a spreadsheet would run as a formula gets a leading ``'``.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from collections.abc import Sequence

from archalign.utils.errors import UsageError
from neurn.results.guards import AT_CHANCE_MARK, UNDERTRAINED_MARK, Flags
from neurn.results.tables import SOURCE_VAL, TARGETS_MEAN, domain_columns

__all__ = ["CSV_FIELDS", "FORMATS", "Column", "Row", "Table", "build_table", "cell_text",
           "csv_text", "latex_escape", "latex_lines", "markdown_lines", "render_table"]

FORMATS = ("markdown", "latex", "csv")
CSV_FIELDS = ["model", "variant", "kind", "domain", "role", "mean", "std", "n", "p_value",
              "generated", "at_chance", "undertrained"]


@dataclass(frozen=True)
class Column:
    """A domain column (or the source validation) and the marks of its header."""

    domain: str
    source: bool  # the source's test split
    generated: bool  # our generated stand-in, not the dataset of that name
    at_chance: bool

    @property
    def role(self) -> str:
        """``val`` (the source validation), ``source``, ``target`` or ``mean`` (the
        average over targets)."""
        if self.domain == SOURCE_VAL:
            return "val"
        return "source" if self.source else "mean" if self.domain == TARGETS_MEAN else "target"


@dataclass(frozen=True)
class Row:
    """One line of the table: a variant's scores, or its paired difference to the baseline."""

    study: str | None  # the folder, in a comparison
    model: str
    variant: str  # "neurn - baseline" in a difference row
    kind: str  # "score" or "diff", as in the summary records
    undertrained: bool
    cells: tuple[dict | None, ...]  # summary records, one per column; None: not run

    @property
    def seeds(self) -> int:
        """Seeds (pairs, in a difference row) of the best-covered cell."""
        return max(r["n"] for r in self.cells if r is not None)


@dataclass(frozen=True)
class Table:
    """What every format draws: the columns, then the rows in the order they print."""

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]

    @property
    def by_study(self) -> bool:
        """Whether the rows come from several folders (``neurn compare``)."""
        return any(row.study is not None for row in self.rows)


def build_table(rows: list[dict], summary: list[dict], flags: Flags) -> Table:
    """The table of result rows and their summary records (those with a ``study`` key,
    a comparison, are grouped by it): per model, the variants, then the differences;
    the source validation's column first, beside the source test's, where the summary
    has it."""
    generated = {r["domain"] for r in rows if r["generated"] is True}
    source = {r["domain"] for r in rows if r["role"] == "source"}
    val = [SOURCE_VAL] if any(s["domain"] == SOURCE_VAL for s in summary) else []
    columns = tuple(Column(d, d in source, d in generated, d in flags.at_chance)
                    for d in val + domain_columns(rows))
    index = {(s.get("study"), s["kind"], s["model"], s["variant"], s["domain"]): s
             for s in summary}
    out = []
    for study, model in dict.fromkeys((s.get("study"), s["model"]) for s in summary):
        for kind in ("score", "diff"):
            variants = dict.fromkeys(s["variant"] for s in summary if s["kind"] == kind and
                                     (s.get("study"), s["model"]) == (study, model))
            for variant in variants:
                cells = tuple(index.get((study, kind, model, variant, c.domain))
                              for c in columns)
                out.append(Row(study, model, variant, kind,
                               kind == "score" and flags.marks(model, variant, study), cells))
    return Table(columns, tuple(out))


def _rounded(record: dict | None, signed: bool) -> tuple[str, str | None, ...] | None:
    """The mean, std and p-value as every rounding format shows them (None: absent)."""
    if record is None or not math.isfinite(record["mean"]):
        return None
    mean = f"{record['mean']:+.1f}" if signed else f"{record['mean']:.1f}"
    std = f"{record['std']:.1f}" if math.isfinite(record["std"]) else None
    p = record["p_value"]
    return mean, std, f"{p:.2g}" if p is not None and math.isfinite(p) else None


def cell_text(record: dict | None, signed: bool = False) -> str:
    """A Markdown cell: ``mean ± std (p=...)``, ``-`` where nothing was measured."""
    shown = _rounded(record, signed)
    if shown is None:
        return "-"
    mean, std, p = shown
    return mean + (f" ± {std}" if std else "") + (f" (p={p})" if p else "")


def _header(column: Column, name: str, chance_mark: str) -> str:
    return (name + (" (source test)" if column.source else "") +
            ("*" if column.generated else "") + (f" {chance_mark}" if column.at_chance else ""))


def markdown_lines(table: Table) -> list[str]:
    """The table of ``summary.md``, one line per row."""
    lead = "| study " if table.by_study else ""
    labels = [_header(c, c.domain, AT_CHANCE_MARK) for c in table.columns]
    lines = [lead + "| model | variant | seeds | " + " | ".join(labels) + " |",
             ("|---" if table.by_study else "") + "|---|---|---|" + "---|" * len(labels)]
    for row in table.rows:
        name = f"**{row.variant}**" if row.kind == "diff" else row.variant + (
            f" {UNDERTRAINED_MARK}" if row.undertrained else "")
        cells = [cell_text(r, row.kind == "diff") for r in row.cells]
        lead = f"| {row.study} " if table.by_study else ""
        lines.append(f"{lead}| {row.model} | {name} | {row.seeds} | " + " | ".join(cells) +
                     " |")
    return lines


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$",
                  "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # OT1, pdflatex's default font encoding, prints these as other glyphs
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX typesets it verbatim (specials escaped, ``--`` kept two hyphens)."""
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return re.sub("-(?=-)", "-{}", escaped)  # "--" would become an en dash


def _latex_signed(number: str) -> str:
    # a text-mode "-" is a hyphen, not a minus sign
    return f"${number[0]}${number[1:]}" if number[0] in "+-" else number


def _latex_p(p: str) -> str:
    mantissa, _, exponent = p.partition("e")
    if exponent:  # .2g writes 1.2e-05
        return rf"$p={mantissa}\times10^{{{int(exponent)}}}$"
    return f"$p={p}$"


def _latex_cell(record: dict | None, signed: bool) -> str:
    shown = _rounded(record, signed)
    if shown is None:
        return "--"
    mean, std, p = shown
    return (_latex_signed(mean) + (rf" $\pm$ {std}" if std else "") +
            (f" ({_latex_p(p)})" if p else ""))


def latex_lines(table: Table, notes: Sequence[str] = ()) -> list[str]:
    """A booktabs ``tabular`` with the same rows, numbers and marks as the Markdown
    table; ``notes`` (caption, legend) go above it as ``%`` comments."""
    names = (["study"] if table.by_study else []) + ["model", "variant", "seeds"]
    spec = "l" * (len(names) - 1) + "r" * (1 + len(table.columns))
    head = names + [_header(c, latex_escape(c.domain), r"\ddag") for c in table.columns]
    lines = ["% needs \\usepackage{booktabs} (\\toprule, \\midrule, \\bottomrule)"]
    # a note of several lines (a failed run's error) stays a comment on each
    lines += [f"% {line}".rstrip() for note in notes for line in note.splitlines() or [""]]
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(head) + r" \\",
              r"\midrule"]
    group = None
    for row in table.rows:
        if group is not None and (row.study, row.model) != group:
            lines.append(r"\midrule")  # between models, as the Markdown repeats the name
        group = (row.study, row.model)
        if row.kind == "diff":
            name = r"\textbf{" + " $-$ ".join(map(latex_escape, row.variant.split(" - "))) + "}"
        else:
            name = latex_escape(row.variant) + (r" \dag" if row.undertrained else "")
        lead = [latex_escape(row.study)] if table.by_study else []
        cells = lead + [latex_escape(row.model), name, str(row.seeds)] + [
            _latex_cell(r, row.kind == "diff") for r in row.cells]
        lines.append(" & ".join(cells) + r" \\")
    return lines + [r"\bottomrule", r"\end{tabular}"]


def _csv_safe(value):
    # a spreadsheet runs text starting with these as a formula; numbers are left as numbers
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def _csv_number(value):
    return "" if value is None or not math.isfinite(value) else value


def csv_text(table: Table) -> str:
    """The table long: one line per (study,) model, variant and domain, with a header."""
    buffer = io.StringIO()
    fields = (["study"] if table.by_study else []) + CSV_FIELDS
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        for column, record in zip(table.columns, row.cells):
            if record is None:
                continue
            line = {"study": row.study, "model": row.model, "variant": row.variant,
                    "kind": row.kind, "domain": column.domain, "role": column.role,
                    "mean": _csv_number(record["mean"]), "std": _csv_number(record["std"]),
                    "n": record["n"], "p_value": _csv_number(record["p_value"]),
                    "generated": column.generated, "at_chance": column.at_chance,
                    "undertrained": row.undertrained}
            writer.writerow({k: _csv_safe(line[k]) for k in fields})
    return buffer.getvalue()


def render_table(table: Table, fmt: str, notes: Sequence[str] = ()) -> str:
    """``table`` in ``fmt`` (one of ``FORMATS``) as text ending in a newline; ``notes``
    follow the Markdown table, precede the LaTeX one as comments, and are left out of
    the CSV (whose columns carry the marks)."""
    if fmt == "markdown":
        return "\n".join(markdown_lines(table) + [""] + list(notes)) + "\n"
    if fmt == "latex":
        return "\n".join(latex_lines(table, notes)) + "\n"
    if fmt == "csv":
        return csv_text(table)
    raise UsageError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
