"""The edit script between two rolled structures (``edit_script``), and its inverse
operations: ``mirror`` (the script from B to A) and ``apply_edits`` (A + script = B).

The children of two matched blocks are aligned with archalign's own aligner
(:func:`archalign.align`, Needleman-Wunsch) over the items, scored:

==============================================  ======
same key (identical item, count included)          3
same layer op, or same block (by class name,
module path or content), count or fields differ    1
anything else                                     -9 (never paired: two gaps cost less)
gap                                                -1
==============================================  ======

A paired item that is not identical is a *change*: a layer's changed fields and count,
or a block's count and, recursively, the script of its children. Unpaired items are
deletions (A only) and insertions (B only).

Entries, in A's order (what ``apply_edits`` reads)::

    {"op": "keep",   "a": path, "b": path}                   the same item on both sides
    {"op": "delete", "a": item}                              A's item, removed
    {"op": "insert", "b": item}                              B's item, added
    {"op": "change", "a": path, "b": path, "type": "layer", "name": op,
     "fields": {key: {"a": old, "b": new}}, "count": {"a": n, "b": m}}
    {"op": "change", "a": path, "b": path, "type": "block", "name": class,
     "count": {"a": n, "b": m}, "edits": [...]}

``fields`` holds only the hyper-parameters that differ (a side is absent when the key
is); ``count`` is present only when the counts differ.
"""
from __future__ import annotations

import numpy as np

from archalign.alignment.aligner import align
from archalign.diffing.structure import Block, Item, Layer, item_from_dict
from archalign.tokens.scoring import Scoring
from archalign.utils.errors import UsageError

__all__ = ["edit_script", "mirror", "apply_edits", "is_empty", "entries", "near_changes"]

_SAME, _RELATED, _UNRELATED, _GAP = 3.0, 1.0, -9.0, -1.0


def edit_script(a: Block, b: Block) -> list[dict]:
    """The edits that turn the children of ``a`` into those of ``b`` (module docstring)."""
    return _edits(a.children, b.children)


def _edits(xs: tuple, ys: tuple) -> list[dict]:
    if [x.key for x in xs] == [y.key for y in ys]:
        return [_keep(x, y) for x, y in zip(xs, ys)]
    out = []
    for i, j in _pairs(xs, ys):
        if j is None:
            out.append({"op": "delete", "a": xs[i].to_dict()})
        elif i is None:
            out.append({"op": "insert", "b": ys[j].to_dict()})
        elif xs[i].key == ys[j].key:
            out.append(_keep(xs[i], ys[j]))
        else:
            out.append(_change(xs[i], ys[j]))
    return out


def _pairs(xs: tuple, ys: tuple) -> list[tuple[int | None, int | None]]:
    if not xs or not ys:
        return [(i, None) for i in range(len(xs))] + [(None, j) for j in range(len(ys))]
    items = list(xs) + list(ys)
    ids = {}
    codes = np.array([ids.setdefault(x.key, len(ids)) for x in items], dtype=np.int32)
    first = {code: items[k] for k, code in reversed(list(enumerate(codes)))}
    reps = [first[c] for c in range(len(ids))]
    S = np.array([[_score(p, q) for q in reps] for p in reps])
    alignment = align(codes[:len(xs)], codes[len(xs):],
                      Scoring(substitution=S, gap=_GAP))
    return alignment.pairs


def _score(p: Item, q: Item) -> float:
    if p.key == q.key:
        return _SAME
    if isinstance(p, Layer) and isinstance(q, Layer) and p.op == q.op:
        return _RELATED
    if isinstance(p, Block) and isinstance(q, Block) and (
            (p.name and p.name == q.name) or p.base == q.base or p.path == q.path):
        return _RELATED
    return _UNRELATED


def _keep(x: Item, y: Item) -> dict:
    return {"op": "keep", "a": x.path, "b": y.path}


def _change(x: Item, y: Item) -> dict:
    entry = {"op": "change", "a": x.path, "b": y.path}
    if isinstance(x, Layer):
        entry.update(type="layer", name=x.op, fields=_fields(x.params, y.params))
    else:
        entry.update(type="block", name=x.name or y.name)
    if x.count != y.count:
        entry["count"] = {"a": x.count, "b": y.count}
    if isinstance(x, Block):
        entry["edits"] = _edits(x.children, y.children)
    return entry


def _fields(pa: dict, pb: dict) -> dict:
    out = {}
    for k in list(pa) + [k for k in pb if k not in pa]:
        if pa.get(k, _MISSING) != pb.get(k, _MISSING):
            out[k] = {side: p[k] for side, p in (("a", pa), ("b", pb)) if k in p}
    return out


_MISSING = object()


# ------------------------------------------------------------------ mirror / apply
def mirror(edits: list[dict]) -> list[dict]:
    """The script from B to A, given the script from A to B."""
    swap = {"a": "b", "b": "a"}
    out = []
    for e in edits:
        m = {"op": {"insert": "delete", "delete": "insert"}.get(e["op"], e["op"])}
        for k, v in e.items():
            if k in swap:
                m[swap[k]] = v
            elif k in ("fields", "count"):
                m[k] = _swapped(v) if k == "count" else {f: _swapped(s) for f, s in v.items()}
            elif k == "edits":
                m[k] = mirror(v)
            elif k != "op":
                m[k] = v
        out.append(m)
    return out


def _swapped(sides: dict) -> dict:
    return {{"a": "b", "b": "a"}[s]: v for s, v in sides.items()}


def apply_edits(a: Block, edits: list[dict]) -> Block:
    """``a`` with ``edits`` applied: the structure of B (paths of kept items are A's).

    Raises ``ValueError`` when the script does not fit ``a`` (another model's script)."""
    return Block(a.name, a.path, _apply(a.children, edits), a.count)


def _apply(items: tuple, edits: list[dict]) -> tuple:
    out, i = [], 0
    for e in edits:
        if e["op"] == "insert":
            out.append(item_from_dict(e["b"]))
            continue
        if i >= len(items):
            raise UsageError("the edit script is longer than the structure it is applied to")
        x, i = items[i], i + 1
        if e["op"] == "keep":
            out.append(x)
        elif e["op"] == "change":
            out.append(_changed(x, e))
        elif e["op"] != "delete":
            raise UsageError(f"unknown edit {e['op']!r}")
    if i != len(items):
        raise UsageError("the edit script does not cover the structure it is applied to")
    return tuple(out)


def _changed(x: Item, e: dict) -> Item:
    count = e.get("count", {}).get("b", x.count)
    if isinstance(x, Layer):
        params = dict(x.params)
        for k, sides in e.get("fields", {}).items():
            if "b" in sides:
                params[k] = sides["b"]
            else:
                params.pop(k, None)
        return Layer(x.op, params, e.get("b", x.path), count)
    return Block(x.name, e.get("b", x.path), _apply(x.children, e.get("edits", [])), count)


def is_empty(edits: list[dict]) -> bool:
    return all(e["op"] == "keep" for e in edits)


def entries(a: Block, b: Block, edits: list[dict]) -> list[tuple[dict, Item | None, Item | None]]:
    """(entry, A's item or None, B's item or None) for each entry of one level of
    ``edits``: the items each entry is about, read off both structures."""
    out, i, j = [], 0, 0
    for e in edits:
        x = a.children[i] if e["op"] != "insert" else None
        y = b.children[j] if e["op"] != "delete" else None
        i, j = i + (x is not None), j + (y is not None)
        out.append((e, x, y))
    return out


def near_changes(rows: list, context: int) -> set[int]:
    """Indices of ``rows`` (from :func:`entries`) within ``context`` of a change: the
    unchanged rows a rendering shows rather than folds."""
    changed = [k for k, (e, _, _) in enumerate(rows) if e["op"] != "keep"]
    return {k for c in changed for k in range(c - context, c + context + 1)}

