"""A model's rolled, hierarchical structure: what ``archalign.diff`` compares.

A trace is a flat list of calls, each with the module path it ran in. Read as a tree
of those paths, in execution order, it becomes blocks (modules that hold calls) and
layers (the calls). Rolling it (``roll_items``) collapses runs of identical siblings
into one item with a count: ResNet-50's ``layer3`` reads as ``layer3.0`` (the block with
the downsample) and ``layer3.1-5 Bottleneck ×5``; a ViT's blocks as ``blocks.0-11 Block
×12``. Unlike :func:`archalign.roll` on the token sequence, only siblings of the module
tree are merged, so every rolled item keeps the module paths that name it and block
boundaries stay where the model put them.

Two items are the same when their *keys* are: the op and every hyper-parameter of a
layer, the count, and a block's children in order (computed once per item: a block's
key covers its whole subtree, and rolling and aligning compare keys many times). Module
paths and class names are
labels: they name items but are not compared, so a timm and a torchvision ResNet
(``act1`` against ``relu``) or a torch model and its ONNX export are the same structure.
A trace without module classes (an ONNX graph, whose node names are not a hierarchy)
is read flat, and so is the other model of a pair that holds one (``hierarchical=False``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property

from archalign.tokens.folding import exported_reading
from archalign.tracing.token_format import format_token
from archalign.utils.errors import UsageError

__all__ = ["Layer", "Block", "Item", "build_structure", "roll_items", "item_from_dict",
           "path_range", "unrolled_length", "block_count"]


@dataclass(frozen=True)
class Layer:
    """One call, or ``count`` identical calls back to back: op type, hyper-parameters
    (``"full"`` granularity) and the module path that names it."""

    op: str
    params: dict = field(hash=False, compare=False)
    path: str = field(default="", compare=False)
    count: int = 1

    @cached_property
    def base(self) -> tuple:
        """The key without the count: what a run of identical layers shares."""
        return ("layer", self.op, _frozen(self.params))

    @cached_property
    def key(self) -> tuple:
        return self.base + (self.count,)

    @property
    def token(self) -> str:
        return format_token(self.op, self.params, "full")

    def with_count(self, count: int, path: str) -> Layer:
        return Layer(self.op, self.params, path, count)

    def to_dict(self) -> dict:
        return {"type": "layer", "op": self.op, "params": self.params, "path": self.path,
                "count": self.count}


@dataclass(frozen=True)
class Block:
    """A module that holds calls, or ``count`` identical ones back to back; ``name`` is
    its class (``"Bottleneck"``), ``path`` its module path or a range (``layer3.1-5``)."""

    name: str
    path: str
    children: tuple = ()
    count: int = 1

    @cached_property
    def base(self) -> tuple:
        """The key without the count: what a run of identical blocks shares."""
        return ("block", tuple(c.key for c in self.children))

    @cached_property
    def key(self) -> tuple:
        return self.base + (self.count,)

    def with_count(self, count: int, path: str) -> Block:
        return Block(self.name, path, self.children, count)

    def to_dict(self) -> dict:
        return {"type": "block", "name": self.name, "path": self.path, "count": self.count,
                "children": [c.to_dict() for c in self.children]}


Item = Layer | Block


def item_from_dict(d: dict) -> Item:
    """The item :meth:`Layer.to_dict` / :meth:`Block.to_dict` wrote."""
    if d.get("type") == "layer":
        return Layer(d["op"], dict(d["params"]), d.get("path", ""), int(d.get("count", 1)))
    if d.get("type") == "block":
        return Block(d.get("name", ""), d.get("path", ""),
                     tuple(item_from_dict(c) for c in d["children"]), int(d.get("count", 1)))
    raise UsageError(f"not a structure item: {str(d)[:80]}")


def _frozen(params: dict) -> str:
    # JSON with sorted keys: lists and nested values compare as they print
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------ building
def build_structure(trace, *, as_exported: bool = False, hierarchical: bool = True) -> Block:
    """The rolled structure of ``trace`` as one root :class:`Block` (the model).

    ``as_exported``: read as an inference export writes it (archalign.tokens.folding).
    ``hierarchical=False``, or a trace without module classes: layers only, rolled.
    """
    calls = list(trace.calls)
    if as_exported:
        kept = exported_reading([c.token("full") for c in calls])
        calls = [_respelled(calls[i], token) for i, token in kept]
    else:
        calls = [(c.op, c.params, c.path, c.kind) for c in calls]
    calls = [(op, _plain_params(params), path, kind) for op, params, path, kind in calls]
    classes = getattr(trace, "modules", None) or {}
    root_name = classes.get("", trace.model)
    if not (hierarchical and classes):
        layers = [Layer(op, params, path) for op, params, path, _ in calls]
        return Block(root_name, "", roll_items(layers))
    return _tree(calls, classes, root_name)


def _respelled(call, token: str) -> tuple:
    # a respelled token (Flatten -> reshape, global pooling -> mean) keeps only what it says
    return token.split("(", 1)[0], call.params if "(" in token else {}, call.path, call.kind


def _plain_params(params: dict) -> dict:
    # one spelling per value, the token's: torch's k=3 and ONNX's k=[3, 3] are one kernel
    return {k: v[0] if isinstance(v, list) and v and not isinstance(v[0], list)
            and all(x == v[0] for x in v) else v for k, v in params.items()}


def _tree(calls, classes: dict, root_name: str) -> Block:
    # nodes are [path, children] lists while the tree grows; a module entered again
    # after another ran (a shared activation, say) opens a new node of the same path
    root: list = ["", []]
    stack = [root]
    for op, params, path, kind in calls:
        holder = path if kind == "function" else path.rpartition(".")[0]
        while not _holds(stack[-1][0], holder):
            stack.pop()
        top = stack[-1][0]
        rest = holder[len(top):].lstrip(".") if top else holder
        for part in rest.split(".") if rest else ():
            node = [f"{stack[-1][0]}.{part}" if stack[-1][0] else part, []]
            stack[-1][1].append(node)
            stack.append(node)
        stack[-1][1].append(Layer(op, params, path))
    return _freeze(root, classes, root_name)


def _holds(outer: str, inner: str) -> bool:
    return outer == "" or inner == outer or inner.startswith(outer + ".")


def _freeze(node: list, classes: dict, name: str) -> Block:
    path, children = node
    items = [c if isinstance(c, Layer) else _freeze(c, classes, classes.get(c[0], ""))
             for c in children]
    return Block(name, path, roll_items(items))


# ------------------------------------------------------------------------ rolling
_INDEXED = re.compile(r"^(.*?)(\d+)$")


def roll_items(items: list) -> tuple:
    """Runs of back-to-back items with the same key merged into one item with the
    run's count (counts add up) and a path range that names the run."""
    out: list = []
    for item in items:
        if out and out[-1][0].base == item.base:
            out[-1].append(item)
        else:
            out.append([item])
    return tuple(run[0] if len(run) == 1 else
                 run[0].with_count(sum(x.count for x in run), path_range(run[0].path, run[-1].path))
                 for run in out)


def path_range(first: str, last: str) -> str:
    """``layer3.1`` .. ``layer3.5`` -> ``layer3.1-5``; a range's own end is read as its
    last path (``layer3.1-2`` .. ``layer3.3`` -> ``layer3.1-3``)."""
    first_start = first.rsplit("-", 1)[0] if re.search(r"\d-\d+$", first) else first
    last_end = _range_end(last)
    if first_start == last_end:
        return first_start
    a, b = _INDEXED.match(first_start), _INDEXED.match(last_end)
    if a and b and a[1] == b[1]:
        return f"{first_start}-{b[2]}"
    return f"{first_start}..{last_end}"


def _range_end(path: str) -> str:
    m = re.match(r"^(.*?)(\d+)-(\d+)$", path)
    return f"{m[1]}{m[3]}" if m else path.split("..")[-1]


# ------------------------------------------------------------------------ measures
def unrolled_length(item: Item) -> int:
    """How many calls the item stands for."""
    if isinstance(item, Layer):
        return item.count
    return item.count * sum(unrolled_length(c) for c in item.children)


def block_count(block: Block) -> int:
    """How many child blocks ``block`` holds, rolled runs counted out."""
    return sum(c.count for c in block.children if isinstance(c, Block))
