"""What changed, in words: the header of a diff, read off its edit script.

One line per kind of change, each naming where it happens:

- depth per stage: ``layer3: 6 → 23 blocks`` (every block whose number of child blocks
  differs; rolled runs are counted out);
- width: ``width ×2 in layer1-4 (conv1, bn1, conv2, bn2, conv3)``: changed layers whose
  changed widths (``in``, ``out``, ``c``, ``dim``, ``shape``) scaled by one factor,
  grouped by that factor;
- other hyper-parameters: ``Conv2d g: 1 → 32 in conv2 of 16 Bottleneck (layer1-4)``,
  grouped by op, field and values;
- layers repeated another number of times, removed or inserted layers and blocks;
- the parameter counts before and after.
"""
from __future__ import annotations

import re
from collections import defaultdict
from numbers import Number

from archalign.diff.structure import Block, Item, block_count, item_from_dict

__all__ = ["summarize", "walk", "WIDTH_FIELDS"]

WIDTH_FIELDS = frozenset({"in", "out", "c", "dim", "shape"})


def walk(a: Block, b: Block, edits: list[dict], times: int = 1):
    """(entry, item of A or None, item of B or None, repeats, enclosing pair) for every
    entry of ``edits``, nested ones included; ``repeats`` is how many copies of the entry
    the rolled blocks around it stand for (A's count where they differ)."""
    i = j = 0
    for e in edits:
        x = a.children[i] if e["op"] != "insert" else None
        y = b.children[j] if e["op"] != "delete" else None
        i, j = i + (x is not None), j + (y is not None)
        yield e, x, y, times, (a, b)
        if e["op"] == "change" and e["type"] == "block":
            yield from walk(x, y, e["edits"], times * min(x.count, y.count))


def summarize(a: Block, b: Block, edits: list[dict], params: tuple) -> list[str]:
    """The header lines (module docstring); ``params``: the two parameter counts."""
    lines = _depth(a, b, edits)
    widths: dict = defaultdict(list)
    others: dict = defaultdict(list)
    repeats, removed, inserted = [], [], []
    for e, x, y, times, (pa, pb) in walk(a, b, edits):
        if e["op"] == "delete":
            removed.append((item_from_dict(e["a"]), times))
        elif e["op"] == "insert":
            inserted.append((item_from_dict(e["b"]), times))
        elif e["op"] == "change" and e["type"] == "layer":
            # a layer of the model itself is placed by its path alone
            where = (y.path or x.path, (pb.name or pa.name) if pb.path else "")
            fields = e["fields"]
            factor = _width_factor({k: v for k, v in fields.items() if k in WIDTH_FIELDS})
            if factor is not None:
                widths[factor].append((where, times))
                fields = {k: v for k, v in fields.items() if k not in WIDTH_FIELDS}
            for field, sides in fields.items():
                others[(x.op, field, _show(sides.get("a")), _show(sides.get("b")))].append(
                    (where, times))
            if "count" in e:
                repeats.append(f"{x.op} ×{e['count']['a']} → ×{e['count']['b']} at {y.path}")
    for factor, spots in sorted(widths.items()):
        lines.append(f"width ×{factor:g} {_where(spots)}")
    for (op, field, va, vb), spots in others.items():
        lines.append(f"{op} {field}: {va} → {vb} {_where(spots, blocks=True)}")
    lines += [f"repeats: {r}" for r in repeats]
    lines += _listed("removed", removed) + _listed("inserted", inserted)
    lines.append(_params_line(*params))
    return lines


def _depth(a: Block, b: Block, edits: list[dict]) -> list[str]:
    pairs = [(a, b)] + [(x, y) for e, x, y, _, _ in walk(a, b, edits)
                        if e["op"] == "change" and e["type"] == "block"]
    out = []
    for x, y in pairs:
        n, m = block_count(x), block_count(y)
        if n != m and n and m:
            out.append(f"{y.path or 'model'}: {n} → {m} blocks")
    return out


def _width_factor(fields: dict) -> float | None:
    """The one factor every changed width field scaled by, if there is one."""
    factors = set()
    for field, sides in fields.items():
        va, vb = sides.get("a"), sides.get("b")
        if field not in WIDTH_FIELDS or va is None or vb is None:
            return None
        for p, q in zip(_numbers(va), _numbers(vb)):
            if not p:
                return None
            factors.add(round(q / p, 3))
        if len(_numbers(va)) != len(_numbers(vb)) or not _numbers(va):
            return None
    return factors.pop() if len(factors) == 1 else None


def _numbers(v) -> list:
    v = v if isinstance(v, list) else [v]
    return [x for x in v if isinstance(x, Number) and not isinstance(x, bool)] \
        if all(isinstance(x, Number) and not isinstance(x, bool) for x in v) else []


def _show(v) -> str:
    if isinstance(v, list):
        return "x".join(map(str, v)) if v else "-"
    return "(none)" if v is None else str(v)


_INDEXED = re.compile(r"^(.*?)(\d+)$")


def _where(spots: list, blocks: bool = False) -> str:
    """``in 48 layers of layer1-4 (conv1, bn1)``: the stages (first path parts, numbered
    ones as ranges) and the layer names (last path parts) of ``spots``, a list of
    ((path, enclosing block's class), times); ``at PATH`` for one layer."""
    stages, names, classes, total = [], [], defaultdict(int), 0
    for (path, block), times in spots:
        parts = path.split(".")
        if parts[0] not in stages:
            stages.append(parts[0])
        if len(parts) > 1 and parts[-1] not in names:
            names.append(parts[-1])
        classes[block] += times
        total += times
    if len(spots) == 1 and total == 1:
        return f"at {spots[0][0][0] or 'the model'}"
    stage_text = _ranges(stages)
    if blocks and len(classes) == 1 and next(iter(classes)):
        block, n = next(iter(classes.items()))
        return f"in {', '.join(names) or 'layers'} of {n} {block} ({stage_text})"
    named = f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else ""
    return f"in {total} layer{'s' * (total != 1)} of {stage_text}{named}"


def _ranges(stages: list[str]) -> str:
    """``["layer1", "layer2", "layer3"]`` -> ``layer1-3``; others listed."""
    out, run = [], []
    for s in stages + [None]:
        m = _INDEXED.match(s) if s else None
        if run and m and m[1] == run[-1][0] and int(m[2]) == run[-1][1] + 1:
            run.append((m[1], int(m[2])))
            continue
        if run:
            out.append(f"{run[0][0]}{run[0][1]}" if len(run) == 1
                       else f"{run[0][0]}{run[0][1]}-{run[-1][1]}")
            run = []
        if m:
            run = [(m[1], int(m[2]))]
        elif s is not None:
            out.append(s or "the model")
    return ", ".join(out)


def _listed(verb: str, items: list[tuple[Item, int]]) -> list[str]:
    if not items:
        return []
    parts = []
    for item, times in items:
        n = item.count * times
        what = (f"block {item.name or '(unnamed)'}" if isinstance(item, Block) else item.op)
        parts.append(f"{what}{f' ×{n}' if n > 1 else ''} at {item.path or 'the model'}")
    return [f"{verb}: {'; '.join(parts)}"]


def _params_line(pa: int | None, pb: int | None) -> str:
    if pa is None or pb is None:
        return "parameters: not known for both models"
    if pa == pb:
        return f"parameters: {_millions(pa)} (the same)"
    return f"parameters: {_millions(pa)} → {_millions(pb)} (×{pb / pa:.2f})" if pa else \
        f"parameters: {_millions(pa)} → {_millions(pb)}"


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n:,}"
