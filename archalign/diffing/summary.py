"""What changed, in words: the header of a diff, read off its edit script.

One line per kind of change, each naming where it happens:

- depth per stage: ``layer3: 6 → 23 blocks`` (every stage, a block whose child blocks
  are of one class, that holds another number of them; rolled runs are counted out);
- width: ``width ×2 in 80 layers of layer1-4 (conv1, bn1, ...)``: changed layers whose
  changed widths (``in``, ``out``, ``c``, ``dim``, ``shape``, and a depthwise conv's
  groups) scaled, grouped by factor; more than three factors (widths rounded to
  multiples of 8, say) read as one range;
- other hyper-parameters: ``Conv2d g: 1 → 32 in conv2 of 16 Bottleneck (layer1-4)``,
  grouped by op, field and values (more than three value pairs of one field: one line);
- layers repeated another number of times, removed or inserted layers and blocks;
- the unrolled lengths, input sizes and parameter counts before and after.
"""
from __future__ import annotations

import re
from collections import defaultdict
from numbers import Number

from archalign.diffing.edits import entries
from archalign.diffing.structure import Block, Item, block_count, item_from_dict, unrolled_length

__all__ = ["summarize", "walk", "WIDTH_FIELDS"]

WIDTH_FIELDS = frozenset({"in", "out", "c", "dim", "shape"})


def walk(a: Block, b: Block, edits: list[dict], times: int = 1):
    """(entry, item of A or None, item of B or None, repeats, enclosing pair) for every
    entry of ``edits``, nested ones included; ``repeats`` is how many copies of the entry
    the rolled blocks around it stand for (A's count where they differ)."""
    for e, x, y in entries(a, b, edits):
        yield e, x, y, times, (a, b)
        if e["op"] == "change" and e["type"] == "block":
            yield from walk(x, y, e["edits"], times * min(x.count, y.count))


def summarize(a: Block, b: Block, edits: list[dict], params: tuple,
              input_sizes: tuple = (None, None)) -> list[str]:
    """The header lines (module docstring); ``params``: the two parameter counts,
    ``input_sizes``: the two traces' input sizes (None where unknown)."""
    lines, stages = _depth(a, b, edits)
    widths: dict = defaultdict(list)  # factor -> spots
    others: dict = defaultdict(lambda: defaultdict(list))  # (op, field) -> values -> spots
    repeats, removed, inserted = [], [], []
    for e, x, y, times, (pa, pb) in walk(a, b, edits):
        if e["op"] in ("delete", "insert"):
            item = item_from_dict(e["a"] if e["op"] == "delete" else e["b"])
            if isinstance(item, Block) and (id(pa), id(pb)) in stages:
                continue  # a block of a stage whose depth line says it
            (removed if e["op"] == "delete" else inserted).append((item, times))
        elif e["op"] == "change" and e["type"] == "layer":
            # a layer of the model itself is placed by its path alone
            where = (y.path or x.path, (pb.name or pa.name) if pb.path else "")
            fields = dict(e["fields"])
            depthwise = _depthwise(x.params) and _depthwise(y.params)
            width = {k: v for k, v in fields.items()
                     if k in WIDTH_FIELDS or (k == "g" and depthwise)}
            factors = _width_factors(width)
            if factors:
                for factor in factors:
                    widths[factor].append((where, times))
                fields = {k: v for k, v in fields.items() if k not in width}
            for field, sides in fields.items():
                values = (_show(sides.get("a")), _show(sides.get("b")))
                others[(x.op, field)][values].append((where, times))
            if "count" in e:
                repeats.append(f"{x.op} ×{e['count']['a']} → ×{e['count']['b']} at {y.path}")
    lines += _width_lines(widths)
    for (op, field), by_values in others.items():
        if len(by_values) <= _MAX_LISTED:
            lines += [f"{op} {field}: {va} → {vb} {_where(spots, blocks=True)}"
                      for (va, vb), spots in by_values.items()]
        else:  # one line: a field that changes differently in many layers
            shown = ", ".join(f"{va} → {vb}" for va, vb in list(by_values)[:_MAX_LISTED])
            spots = [spot for group in by_values.values() for spot in group]
            lines.append(f"{op} {field}: {len(by_values)} changes ({shown}, ...) "
                         f"{_where(spots)}")
    lines += [f"repeats: {r}" for r in repeats]
    lines += _listed("removed", removed) + _listed("inserted", inserted)
    n, m = unrolled_length(a), unrolled_length(b)
    if n != m:
        lines.append(f"layers: {n} → {m} (unrolled)")
    if None not in input_sizes and tuple(input_sizes[0]) != tuple(input_sizes[1]):
        lines.append("input: {} → {}".format(*("x".join(map(str, x)) for x in input_sizes)))
    lines.append(_params_line(*params))
    return lines


# More groups than this read as a list nobody reads: they are summed up in one line.
_MAX_LISTED = 3


def _depthwise(params: dict) -> bool:
    return isinstance(params.get("g"), int) and params["g"] > 1 and params["g"] == params.get("in")


def _width_lines(widths: dict) -> list[str]:
    if len(widths) <= _MAX_LISTED:
        return [f"width ×{factor:g} {_where(spots)}" for factor, spots in sorted(widths.items())]
    # a layer whose widths scaled by two factors is listed under both: count it once
    spots = list({id(spot): spot for group in widths.values() for spot in group}.values())
    return [f"width ×{min(widths):g} to ×{max(widths):g} (by layer) {_where(spots)}"]


def _depth(a: Block, b: Block, edits: list[dict]) -> tuple[list[str], set]:
    """``layer3: 6 → 23 blocks`` for each stage (a block whose child blocks are all of
    one class on both sides) that holds another number of blocks, and the stages named
    (as pairs of ids)."""
    pairs = [(a, b)] + [(x, y) for e, x, y, _, _ in walk(a, b, edits)
                        if e["op"] == "change" and e["type"] == "block"]
    out, stages = [], set()
    for x, y in pairs:
        n, m = block_count(x), block_count(y)
        if n != m and n and m and len(_block_classes(x) | _block_classes(y)) == 1:
            out.append(f"{y.path or 'model'}: {n} → {m} blocks")
            stages.add((id(x), id(y)))
    return out, stages


def _block_classes(block: Block) -> set[str]:
    return {c.name for c in block.children if isinstance(c, Block)}


def _width_factors(fields: dict) -> set[float]:
    """The factors the widths in ``fields`` scaled by; empty unless all are numbers."""
    factors = set()
    for sides in fields.values():
        va, vb = _numbers(sides.get("a")), _numbers(sides.get("b"))
        if not va or len(va) != len(vb) or 0 in va:
            return set()
        factors.update(round(q / p, 3) for p, q in zip(va, vb))
    return factors


def _numbers(v) -> list:
    v = [] if v is None else v if isinstance(v, list) else [v]
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
        # a numbered layer (downsample.1) is named with its container
        name = ".".join(parts[-2:]) if parts[-1].isdigit() else parts[-1]
        if len(parts) > 1 and name not in names:
            names.append(name)
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
    """``inserted: Bottleneck block ×3 at layer4.1-3; AvgPool2d ×3 at ...``, grouped by
    what was inserted (a layer's op, a block's class)."""
    if not items:
        return []
    groups: dict = defaultdict(list)
    for item, times in items:
        what = f"{item.name or 'unnamed'} block" if isinstance(item, Block) else item.op
        groups[what].append((item.path or "the model", item.count * times))
    parts = []
    for what, spots in groups.items():
        n = sum(k for _, k in spots)
        paths = [p for p, _ in spots]
        where = ", ".join(paths[:_MAX_LISTED]) + (
            f" and {len(paths) - _MAX_LISTED} more" if len(paths) > _MAX_LISTED else "")
        parts.append(f"{what}{f' ×{n}' if n > 1 else ''} at {where}")
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
