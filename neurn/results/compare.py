"""``neurn compare``: one table from several finished study folders.

Each folder is the ``--out`` of a ``neurn run``; its ``results.json`` (the typed copy of
``results.csv``) is verified against its digest (a flipped digit still parses) and
checked row by row before anything is merged, so a damaged, foreign or older file (one
without a digest) is named with its fix, ``neurn table DIR``, which rebuilds it from
the verified runs, instead of surfacing as a traceback or a wrong number.
Studies are merged only if they share the source domain and the class count (chance
and the source column would differ otherwise). The summary is recomputed per folder
from its rows, so every folder is treated alike whatever version wrote its summary.
"""
from __future__ import annotations

from numbers import Real
from pathlib import Path
from collections.abc import Sequence

from archalign.utils.errors import DataError
from archalign.utils.io import unseal_json

from neurn.results.formats import build_table, render_table
from neurn.results.guards import DIGIT_CLASSES, guard_rails
from neurn.results.markdown import failed_lines, legend_lines
from neurn.results.tables import ROW_FIELDS, TARGETS_MEAN, summarize

__all__ = ["StudyFolderError", "compare", "load_rows"]


class StudyFolderError(DataError):
    """A study folder that cannot be used; the message names it and the fix."""


def _row_problem(row) -> str | None:
    """What is wrong with one row of results.json, or None."""
    if not isinstance(row, dict):
        return "is not an object"
    # num_classes is newer than the other fields: files without it are digit studies
    missing = [k for k in ROW_FIELDS if k not in row and k != "num_classes"]
    if missing:
        return f"lacks {', '.join(map(repr, missing))}"
    for key in ("model", "variant", "domain", "role", "status"):
        if not isinstance(row[key], str):
            return f"has a non-text {key!r}"
    if isinstance(row["seed"], bool) or not isinstance(row["seed"], int):
        return "has a non-integer 'seed'"
    if row["status"] != "ok":
        return None
    if row["role"] not in ("source", "target"):
        return f"has role {row['role']!r} (expected 'source' or 'target')"
    for key in ("top1", "val_top1"):
        value = row[key]
        if key == "val_top1" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= 100:
            return f"has {key} {value!r} (expected a percentage)"
    n, loss, classes = row["n"], row["loss"], row.get("num_classes", DIGIT_CLASSES)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return f"has n {n!r} (expected an image count)"
    # results.json holds a NaN loss as null
    if loss is not None and (isinstance(loss, bool) or not isinstance(loss, Real) or loss < 0):
        return f"has loss {loss!r} (expected a number >= 0)"
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        return f"has num_classes {classes!r} (expected a class count)"
    return None


def load_rows(folder) -> list[dict]:
    """The checked rows of a finished study folder (``StudyFolderError`` otherwise)."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise StudyFolderError(f"{folder}: {what}; give the --out folder of a `neurn run`")
    path = folder / "results.json"
    fix = (f"rebuild it with `neurn table {folder}`"
           if any((folder / "runs").glob("*/result.json"))
           else f"rerun the study: `neurn run ... --out {folder}`")
    if path.is_dir():
        raise StudyFolderError(f"{path} is a folder, not a study's results; move it away, "
                               f"then {fix}")
    if not path.is_file():
        raise StudyFolderError(f"{folder}: no results.json; {fix}")
    try:
        data = unseal_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # bad JSON or UTF-8, no digest or another one
        raise StudyFolderError(f"{path} failed its check ({exc}); {fix}") from None
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise StudyFolderError(f"{path} is not a neurn study's results (no list of rows); "
                               f"{fix}")
    for i, row in enumerate(rows, 1):
        problem = _row_problem(row)
        if problem:
            raise StudyFolderError(f"{path}: row {i} {problem}; {fix}")
    if not any(r["status"] == "ok" for r in rows):
        raise StudyFolderError(f"{folder}: no finished run in results.json; see its "
                               f"summary.md for the errors, rerun `neurn run ... --out "
                               f"{folder}`")
    return [{"num_classes": DIGIT_CLASSES, **row} for row in rows]


def _setup(rows: list[dict]) -> str:
    """What two studies must share to sit in one table, in words."""
    sources = sorted({r["domain"] for r in rows if r["role"] == "source"})
    classes = sorted({r["num_classes"] for r in rows if r["status"] == "ok"})
    return f"source {', '.join(sources)}, {', '.join(map(str, classes))} classes"


def compare(folders: Sequence, *, baseline: str | None = "baseline",
            fmt: str = "markdown") -> str:
    """The main table of every folder in one, a first column naming it, with its legend
    and the failed runs (``fmt``: one of :data:`neurn.results.formats.FORMATS`)."""
    studies: dict[str, list[dict]] = {}
    seen = set()
    for folder in folders:
        if Path(folder).resolve() in seen:
            raise StudyFolderError(f"{folder} is given twice; name each folder once")
        seen.add(Path(folder).resolve())
        studies[str(folder)] = load_rows(folder)  # every folder checked before merging
    (first, first_rows), *others = studies.items()
    for label, rows in others:
        if _setup(rows) != _setup(first_rows):
            raise StudyFolderError(
                f"cannot compare {first} ({_setup(first_rows)}) with {label} "
                f"({_setup(rows)}): studies must share the source domain and class count")
    rows = [{**r, "study": label} for label, rs in studies.items() for r in rs]
    summary = [{**s, "study": label} for label, rs in studies.items()
               for s in summarize(rs, baseline=baseline)]
    flags = guard_rails(rows, summary)
    notes = legend_lines(rows, flags, plain=fmt != "markdown")
    targets = {label: list(dict.fromkeys(r["domain"] for r in rs if r["role"] == "target"))
               for label, rs in studies.items()}
    if len({tuple(sorted(t)) for t in targets.values()}) > 1:
        notes.append(f"The studies have different targets: {TARGETS_MEAN} averages each "
                     f"study's own (" + "; ".join(f"{label}: {', '.join(t)}"
                                                  for label, t in targets.items()) + ").")
    return render_table(build_table(rows, summary, flags), fmt, notes + failed_lines(rows))

