"""A diff as text: a unified diff of the rolled, hierarchical structures.

One line per item, indented by nesting; a rolled run is one line with its count and the
path range that names it (``layer3.1-5  Bottleneck ×5 → ×22``). Markers are those of
``git diff``: ``-`` removed, ``+`` inserted, and ``~`` for an item on both sides whose
count or hyper-parameters changed, which shows only the fields that changed
(``Conv2d(k=3,s=1, g=1→32)``). Runs of unchanged items are folded to a count, with
``context`` of them shown on each side of a change. ANSI colour when asked.
"""
from __future__ import annotations

from archalign.diffing.edits import entries, near_changes
from archalign.diffing.structure import Block, Item, Layer, item_from_dict, unrolled_length
from archalign.tracing.token_format import SHAPE_KEYS, format_token

__all__ = ["render_text", "item_label", "changed_label", "field_label", "folded_label"]

_COLOURS = {"-": "31", "+": "32", "~": "33", "@": "36", "#": "1"}


def render_text(d, *, color: bool = False, context: int = 3) -> str:
    """The text of Diff ``d`` (header, then body)."""
    paint = _painter(color)
    lines = [paint("#", f"archalign diff: {d.labels[0]} → {d.labels[1]}"),
             f"similarity {d.similarity:.4f} ({d.setting})"]
    lines += [f"  {line}" for line in d.summary]
    if d.is_empty:
        lines.append("no difference in structure" + (
            " (module paths differ, which the diff does not compare)"
            if d.paths_differ else ""))
        return "\n".join(lines)
    lines += [paint("-", f"--- {d.labels[0]}"), paint("+", f"+++ {d.labels[1]}")]
    _body(d.a, d.b, d.edits, 0, lines, paint, context)
    return "\n".join(lines)


def _painter(color: bool):
    if not color:
        return lambda mark, text: text
    return lambda mark, text: f"\x1b[{_COLOURS[mark]}m{text}\x1b[0m"


def _body(a: Block, b: Block, edits: list[dict], depth: int, lines: list, paint, context: int):
    pad = "  " * depth
    rows = entries(a, b, edits)
    shown = near_changes(rows, context)
    folded: list = []
    for k, (e, x, y) in enumerate(rows):
        if e["op"] == "keep" and k not in shown:
            folded.append(x)
            continue
        if folded:
            lines.append(paint("@", f"  {pad}⋯ {_folded(folded)}"))
            folded = []
        if e["op"] == "keep":
            lines.append(f"  {pad}{_path(x)}  {item_label(x)}")
        elif e["op"] == "delete":
            lines.append(paint("-", f"- {pad}{_path(x)}  {item_label(x, full=True)}"))
        elif e["op"] == "insert":
            lines.append(paint("+", f"+ {pad}{_path(y)}  {item_label(y, full=True)}"))
        else:
            path = x.path if x.path == y.path else f"{x.path} → {y.path}"
            lines.append(paint("~", f"~ {pad}{path or '(model)'}  {changed_label(e, x)}"))
            if e["type"] == "block":
                _body(x, y, e["edits"], depth + 1, lines, paint, context)
    if folded:
        lines.append(paint("@", f"  {pad}⋯ {_folded(folded)}"))


def _path(item: Item) -> str:
    return item.path or "(model)"


def _folded(items: list) -> str:
    n = sum(unrolled_length(x) for x in items)
    ends = _path(items[0]) if len(items) == 1 else f"{_path(items[0])} … {_path(items[-1])}"
    return f"{len(items)} unchanged ({n} layer{'s' * (n != 1)}: {ends})"


def item_label(item: Item | dict, full: bool = False) -> str:
    """``Conv2d(k=3,s=1,g=1) ×2`` for a layer (every field with ``full``), ``Bottleneck
    ×5 (10 layers each)`` for a block."""
    if isinstance(item, dict):
        item = item_from_dict(item)
    times = f" ×{item.count}" if item.count > 1 else ""
    if isinstance(item, Layer):
        return format_token(item.op, item.params, "full" if full else "shape") + times
    n = sum(unrolled_length(c) for c in item.children)
    each = " each" if item.count > 1 else ""
    return f"{item.name or 'block'}{times} ({n} layer{'s' * (n != 1)}{each})"


def changed_label(e: dict, x: Item) -> str:
    """A changed item: its name, the unchanged shape fields, and the changed fields
    ``key=old→new``; a changed count as ``×n → ×m``."""
    count = f" ×{e['count']['a']} → ×{e['count']['b']}" if "count" in e else (
        f" ×{x.count}" if x.count > 1 else "")
    if e["type"] == "block":
        return f"{e['name'] or 'block'}{count}"
    fields = e["fields"]
    same = [f"{k}={_value(v)}" for k, v in x.params.items() if k in SHAPE_KEYS and k not in fields]
    diffs = [f"{k}={_value(s.get('a', '∅'))}→{_value(s.get('b', '∅'))}" for k, s in fields.items()]
    inner = ",".join(same) + (", " if same and diffs else "") + ", ".join(diffs)
    return f"{x.op}({inner}){count}" if inner else f"{x.op}{count}"


def _value(v) -> str:
    # the token's own spelling of a value: (3, 3) -> "3", (1, 7) -> "1x7"
    return format_token("v", {"x": v}, "full")[len("v(x="):-1] if v != "∅" else v


def field_label(key: str, value) -> str:
    """``g=32``: one hyper-parameter as :func:`changed_label` spells it (``∅``: absent)."""
    return f"{key}={_value(value)}"


def folded_label(items: list) -> str:
    """``3 unchanged (12 layers: conv1 … maxpool)``: a run of kept items, folded."""
    return _folded(items)
