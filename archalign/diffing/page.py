"""A diff as HTML: a self-contained page (``render_html``) or a notebook fragment
(``render_fragment``, what ``Diff._repr_html_`` shows).

Both hold the same content: a header (the two models, the similarity and its setting,
the summary's words for each change, parameter counts and unrolled lengths), a colour
key, then the two rolled structures side by side, model A left and model B right, one
row per entry of the edit script:

- a changed layer shows its shape fields and every changed field on both sides, the
  changed ones marked (``g=1`` left, ``g=32`` right), so the difference reads without
  hovering; the full token of each side is its tooltip;
- a removed item fills only the left cell (red), an inserted one only the right (green);
- blocks are ``<details>`` sections: changed blocks open, kept, removed and inserted ones
  closed, their summary row reading like the text (``Bottleneck ×5 (10 layers each)``);
- runs of kept items further than ``CONTEXT`` rows from a change fold into one
  ``N unchanged`` row that opens on a click.

No script: ``<details>`` opens and closes by itself, so the page works where a
notebook does not run output scripts, and nothing in it can fetch anything (the page
also says so in a Content-Security-Policy). Every style rule sits under
``.archalign-diff`` (``page.css``), so the fragment leaves a notebook's own styles alone.
"""
from __future__ import annotations

import html
from pathlib import Path

from archalign.diffing.edits import entries, near_changes
from archalign.diffing.structure import Block, Item, Layer, unrolled_length
from archalign.diffing.text import field_label, folded_label, item_label
from archalign.tracing.token_format import SHAPE_KEYS

__all__ = ["render_html", "render_fragment", "CONTEXT"]

CONTEXT = 3  # kept rows shown on each side of a change, as in the text's default

_CSS = Path(__file__).resolve().parent / "page.css"
_GUTTER = {"keep": "", "change": "~", "delete": "−", "insert": "+"}
_SIDE_OP = {"a": "delete", "b": "insert"}
_EMPTY = {side: f'<div class="cell {side} empty"></div>' for side in "ab"}


def render_html(d) -> str:
    """Diff ``d`` as one offline HTML page (no request of any kind)."""
    title = _esc(f"archalign diff: {d.labels[0]} → {d.labels[1]}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<!-- Offline by construction: this page may load nothing from any host. -->\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{title}</title>\n<style>\nbody {{ margin: 0; }}\n{_style()}</style>\n"
            f"</head>\n<body>\n{_content(d)}\n</body>\n</html>\n")


def render_fragment(d) -> str:
    """Diff ``d`` as an HTML fragment for a notebook: the page's content, its styles
    scoped under ``.archalign-diff``."""
    return _content(d, style=f"<style>\n{_style()}</style>\n")


def _style() -> str:
    return _CSS.read_text(encoding="utf-8")


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------ header
def _content(d, style: str = "") -> str:
    a, b = (_esc(x) for x in d.labels)
    summary = "".join(f"<li>{_esc(line)}</li>" for line in d.summary)
    parts = [f'<div class="archalign-diff">\n{style}<header>',
             (f'<h1>archalign diff: <span class="name">{a}</span> → <span class="name">{b}'
              f'</span></h1>'),
             (f'<p class="similarity">similarity <b>{d.similarity:.4f}</b> <span '
              f'class="setting">({_esc(d.setting)})</span></p>'),
             _models_table(d), f'<ul class="summary">{summary}</ul>', "</header>", _LEGEND]
    if d.is_empty:
        parts.append('<p class="note">no difference in structure' + (
            " (module paths differ, which the diff does not compare)"
            if d.paths_differ else "") + "</p>")
    head = (f'<div class="row head"><div class="cell a">A · {a}</div><div class="gut"></div>'
            f'<div class="cell b">B · {b}</div></div>')
    parts += ['<div class="diff">', head]
    parts += _rows(d.a, d.b, d.edits, 0)
    parts.append("</div>\n</div>")
    return "\n".join(parts)


def _models_table(d) -> str:
    rows = [("model", *d.labels), ("parameters", *map(_params, d.num_params)),
            ("layers (unrolled)", *(f"{n:,}" for n in d.lengths))]
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(va)}</td><td>{_esc(vb)}</td></tr>"
                   for k, va, vb in rows)
    return f'<table class="models"><tr><th></th><th>A</th><th>B</th></tr>{body}</table>'


def _params(n: int | None) -> str:
    if n is None:
        return "not known"
    return f"{n:,} ({n / 1e6:.1f}M)" if n >= 1e5 else f"{n:,}"


_LEGEND = ('<div class="legend"><span class="key">colour key</span>'
           '<span class="sw keep">unchanged</span>'
           '<span class="sw change">~ changed</span>'
           '<mark class="fa">value in A</mark> → <mark class="fb">value in B</mark>'
           '<span class="sw delete">− only in A (removed)</span>'
           '<span class="sw insert">+ only in B (inserted)</span>'
           '<span class="sw fold">⋯ unchanged rows, folded</span>'
           '<span class="sw"><span class="tw"></span>block: click to open or close</span>'
           "</div>")


# ------------------------------------------------------------------------ rows
def _rows(a: Block, b: Block, edits: list[dict], depth: int) -> list[str]:
    """The rows of the children of ``a`` and ``b`` under ``edits``, kept runs folded."""
    rows = entries(a, b, edits)
    shown = near_changes(rows, CONTEXT)
    out, run = [], []
    for k, (e, x, y) in enumerate(rows):
        if e["op"] == "keep" and k not in shown:
            run.append((x, y))
            continue
        out += _folded(run, depth)
        run = []
        out.append(_entry(e, x, y, depth))
    return out + _folded(run, depth)


def _folded(run: list, depth: int) -> list[str]:
    # one kept item reads better as itself than as "1 unchanged"
    if len(run) < 2:
        return [_kept(x, y, depth) for x, y in run]
    text = _esc(folded_label([x for x, _ in run]))
    head = (f'<details class="fold"><summary class="row fold" style="--d:{depth}">'
            f'<div class="fold-text"><span class="tw"></span>⋯ {text}</div></summary>')
    return [head, *(_kept(x, y, depth) for x, y in run), "</details>"]


def _entry(e: dict, x: Item | None, y: Item | None, depth: int) -> str:
    if e["op"] == "keep":
        return _kept(x, y, depth)
    if e["op"] == "delete":
        return _one_side(x, "a", depth)
    if e["op"] == "insert":
        return _one_side(y, "b", depth)
    if e["type"] == "layer":
        return _row("change", depth, _cell("a", x, _changed_layer(x, e, "a")),
                    _cell("b", y, _changed_layer(y, e, "b")))
    head = _row("change", depth, _cell("a", x, _changed_block(x, e, "a"), twisty=True),
                _cell("b", y, _changed_block(y, e, "b"), twisty=True), tag="summary")
    return "\n".join(['<details class="block change" open>', head,
                      *_rows(x, y, e["edits"], depth + 1), "</details>"])


def _kept(x: Item, y: Item, depth: int) -> str:
    if isinstance(x, Layer):
        return _row("keep", depth, _cell("a", x, _esc(item_label(x))),
                    _cell("b", y, _esc(item_label(y))))
    head = _row("keep", depth, _cell("a", x, _esc(item_label(x)), twisty=True),
                _cell("b", y, _esc(item_label(y)), twisty=True), tag="summary")
    return "\n".join(['<details class="block keep">', head,
                      *(_kept(cx, cy, depth + 1) for cx, cy in zip(x.children, y.children)),
                      "</details>"])


def _one_side(item: Item, side: str, depth: int) -> str:
    """A removed (``side="a"``) or inserted (``"b"``) item, the other cell empty."""
    op = _SIDE_OP[side]
    block = isinstance(item, Block)
    cell = _cell(side, item, _esc(item_label(item, full=True)), twisty=block)
    cells = (cell, _EMPTY["b"]) if side == "a" else (_EMPTY["a"], cell)
    if not block:
        return _row(op, depth, *cells)
    return "\n".join([f'<details class="block {op}">', _row(op, depth, *cells, tag="summary"),
                      *(_one_side(c, side, depth + 1) for c in item.children), "</details>"])


def _row(op: str, depth: int, left: str, right: str, tag: str = "div") -> str:
    return (f'<{tag} class="row {op}" style="--d:{depth}">{left}'
            f'<div class="gut">{_GUTTER[op]}</div>{right}</{tag}>')


def _cell(side: str, item: Item, label: str, twisty: bool = False) -> str:
    # the tooltip holds the full token, of which a row shows the shape and changed fields
    title = _esc(item_label(item, full=True))
    tw = '<span class="tw"></span>' if twisty else ""
    return (f'<div class="cell {side}" title="{title}">{tw}<span class="path">'
            f'{_esc(item.path or "(model)")}</span> <span class="label">{label}</span></div>')


# ------------------------------------------------------------------------ labels
def _changed_layer(x: Layer, e: dict, side: str) -> str:
    """``Conv2d(k=3,s=1,g=1)`` with the changed fields marked, as one side has them; a
    field only the other side has reads ``key=∅``."""
    fields = e["fields"]
    parts = [_mark(side, k, field_label(k, v)) if k in fields else _esc(field_label(k, v))
             for k, v in x.params.items() if k in fields or k in SHAPE_KEYS]
    parts += [_mark(side, k, field_label(k, "∅")) for k, s in fields.items() if side not in s]
    inner = f"({','.join(parts)})" if parts else ""
    return f"{_esc(x.op)}{inner}{_count(x, e, side)}"


def _changed_block(x: Block, e: dict, side: str) -> str:
    n = sum(unrolled_length(c) for c in x.children)
    each = " each" if x.count > 1 else ""
    return (f"{_esc(x.name or 'block')}{_count(x, e, side)} "
            f"({n} layer{'s' * (n != 1)}{each})")


def _count(x: Item, e: dict, side: str) -> str:
    if "count" in e:
        return " " + _mark(side, "count", f"×{e['count'][side]}")
    return f" ×{x.count}" if x.count > 1 else ""


def _mark(side: str, field: str, text: str) -> str:
    return f'<mark class="f{side}" data-field="{_esc(field)}">{_esc(text)}</mark>'
