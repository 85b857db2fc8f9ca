"""What a trace is: :class:`Call`, :class:`Trace` and the tracing errors.

``Trace`` is plain data: it imports neither torch nor timm and round-trips through JSON
(``to_dict`` / ``from_dict``, ``save`` / ``load``). A trace file ends with the SHA-256 of
the bytes before it, so any change to a stored trace (an edited op, a lost call, one
flipped bit) is refused on load rather than read as a different model; ``SCHEMA_VERSION``
and the type of every field are checked too.
"""
from __future__ import annotations

import collections
import difflib
import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator, Sequence

from archalign.utils.errors import UnknownNameError, UsageError, UserError
from archalign.utils.io import atomic_write_text
from archalign.tracing.rolling import roll
from archalign.tracing.token_format import GRANULARITIES, format_token

__all__ = [
    "Trace", "Call", "TraceError", "TraceFallbackWarning", "UnknownModelError",
    "GRANULARITIES", "ROUTES", "SCHEMA_VERSION", "DEFAULT_INPUT_SIZE", "verified_dict",
    "unknown_model_error",
]

# 2: files end with their digest; 3: canonical op names, no dropout, module classes
SCHEMA_VERSION = 3
ROUTES = ("meta", "eager", "fx", "registration")
DEFAULT_INPUT_SIZE = (3, 224, 224)
_CALL_FIELDS = ("kind", "op", "path", "params", "inputs", "shape")
# A trace file is its JSON body with this member spliced in before the closing brace,
# holding the SHA-256 of the body: checking it costs one hash of the bytes, no re-encoding.
_DIGEST_HEAD, _DIGEST_TAIL = ',"sha256":"', '"}'
_DIGEST_LEN = len(_DIGEST_HEAD) + 64 + len(_DIGEST_TAIL)


class TraceError(UserError, RuntimeError):
    """A model could not be traced by any route; the message lists each route's error."""


class TraceFallbackWarning(UserWarning):
    """The primary (meta) route failed and a fallback route produced the trace."""


class UnknownModelError(UnknownNameError):
    """A name that timm does not know; the message suggests the closest names."""


def unknown_model_error(name: str, names: Sequence[str]) -> UnknownModelError:
    """The error for a name timm does not know, listing the closest of ``names``."""
    arch = name.split(".", 1)[0]
    close = difflib.get_close_matches(arch, names, n=5, cutoff=0.6)
    if not close:  # a prefix often finds what a typo misses: "resnt" -> "resnet*"
        close = fnmatch.filter(names, arch[:4] + "*")[:5]
    hint = f"; closest timm names: {', '.join(close)}" if close else ""
    return UnknownModelError(f"unknown timm model {name!r}{hint} "
                             f"(timm.list_models() lists all {len(names)})")


# ----------------------------------------------------------------------- data
class Call:
    """One recorded call.

    ``kind`` is ``"module"`` or ``"function"``; ``op`` the op type (a module's class
    name, or the op name of a functional call, see ``archalign.tracing.function_ops``); ``path``
    the module path (``"layer1.0.conv1"``) of the module called, or of the innermost
    module a functional op ran in (``""`` for the model's own forward); ``params`` its
    hyper-parameters; ``inputs`` the indices of the calls whose outputs it consumed;
    ``shape`` its (first) output shape, ``None`` when unknown (fx, registration routes).
    """

    __slots__ = ("index", "kind", "op", "path", "params", "inputs", "shape")

    def __init__(self, index: int, kind: str, op: str, path: str, params: dict,
                 inputs: Sequence[int] = (), shape: Sequence[int] | None = None):
        self.index = index
        self.kind = kind
        self.op = op
        self.path = path
        self.params = params
        self.inputs = tuple(inputs)
        self.shape = None if shape is None else tuple(shape)

    def token(self, granularity: str = "type") -> str:
        return format_token(self.op, self.params, granularity)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Call) and all(
            getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        where = f" @ {self.path}" if self.path else ""
        return f"Call({self.index}, {self.token('full')}{where})"


@dataclass(eq=False)
class Trace:
    """The calls one forward pass of a model executes, and how they were obtained."""

    model: str
    route: str
    calls: list[Call]
    input_size: tuple[int, ...] | None = None
    fused_attn: bool | None = None
    num_params: int | None = None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    # path -> class name of the modules that hold recorded calls ("" is the model):
    # what ``archalign.diff`` names blocks by. Empty for ONNX graphs.
    modules: dict[str, str] = field(default_factory=dict)

    # -------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[Call]:
        return iter(self.calls)

    def __getitem__(self, i: int) -> Call:
        return self.calls[i]

    def tokens(self, granularity: str = "type", rolled: bool = False) -> list[str]:
        """One token string per call, in execution order.

        ``"type"``: op type only (``Conv2d``, ``BatchNorm2d``, ``ReLU``, ``add``);
        ``"shape"``: plus kernel / stride / groups / heads (``Conv2d(k=3,s=1,g=dw)``);
        ``"full"``: every recorded hyper-parameter, widths included.
        ``rolled=True``: tandem repeats collapsed to one copy (``archalign.roll``,
        which also returns the repeat counts).
        """
        if granularity not in GRANULARITIES:
            raise UsageError(f"unknown granularity {granularity!r}; choose one of "
                             f"{', '.join(map(repr, GRANULARITIES))}")
        tokens = [c.token(granularity) for c in self.calls]
        if rolled:
            tokens = roll(tokens)[0]
        return tokens

    def counts(self, granularity: str = "type") -> collections.Counter:
        """How many times each token occurs."""
        return collections.Counter(self.tokens(granularity))

    @property
    def graph(self):
        """A ``networkx.DiGraph``: one node per call (its index), attributes ``kind``,
        ``op``, ``path``, ``params``, ``shape`` and ``token`` (type granularity); an edge
        u -> v when call v consumed a tensor produced by call u. Ops that are not recorded
        (indexing, ``contiguous``, dropout in eval, ...) are looked through, so the edge
        joins the recorded calls on either side. Model inputs have no node. Built on each
        access; export it with ``networkx.write_graphml`` etc."""
        import networkx as nx

        g = nx.DiGraph(model=self.model, route=self.route)
        for c in self.calls:
            g.add_node(c.index, kind=c.kind, op=c.op, path=c.path, params=c.params,
                       shape=c.shape, token=c.op)
        for c in self.calls:
            g.add_edges_from((i, c.index) for i in c.inputs)
        return g

    def __repr__(self) -> str:
        return (f"Trace(model={self.model!r}, route={self.route!r}, calls={len(self.calls)}, "
                f"input_size={self.input_size})")

    # -------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "model": self.model,
            "route": self.route,
            "input_size": list(self.input_size) if self.input_size else None,
            "fused_attn": self.fused_attn,
            "num_params": self.num_params,
            "notes": list(self.notes),
            "versions": dict(self.versions),
            "modules": dict(self.modules),
            "call_fields": list(_CALL_FIELDS),
            # One short list per call keeps zoo caches small and quick to parse.
            "calls": [[c.kind, c.op, c.path, c.params, list(c.inputs),
                       None if c.shape is None else list(c.shape)] for c in self.calls],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        _check_fields(d)
        return cls._from_checked(d)

    @classmethod
    def _from_checked(cls, d: dict[str, Any]) -> Trace:
        # Past _check_fields: checking again would add a third to a warm zoo's parse time.
        calls = [Call(i, k, op, path, params, inputs, shape)
                 for i, (k, op, path, params, inputs, shape) in enumerate(d["calls"])]
        size = d.get("input_size")
        return cls(model=d["model"], route=d["route"], calls=calls,
                   input_size=tuple(size) if size else None, fused_attn=d.get("fused_attn"),
                   num_params=d.get("num_params"), notes=list(d.get("notes", [])),
                   versions=dict(d.get("versions", {})), modules=dict(d["modules"]))

    def to_json(self) -> str:
        body = json.dumps(self.to_dict(), separators=(",", ":"))
        return f"{body[:-1]}{_DIGEST_HEAD}{_sha256(body)}{_DIGEST_TAIL}"

    @classmethod
    def from_json(cls, text: str) -> Trace:
        return cls._from_checked(verified_dict(text))

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON atomically: a reader never sees a half-written file."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trace:
        """Read a file :meth:`save` wrote; ``ValueError`` if it was changed since."""
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verified_dict(text: str) -> dict[str, Any]:
    """The dict a trace file holds, once its digest, schema and field types check out.

    Raises ``ValueError`` naming what failed. The digest covers every byte, so a file
    that passes is exactly what :meth:`Trace.save` wrote.
    """
    body = text[:-_DIGEST_LEN] + "}"
    tail = text[-_DIGEST_LEN:]
    if not (tail.startswith(_DIGEST_HEAD) and tail.endswith(_DIGEST_TAIL)):
        raise UsageError("trace file has no digest (damaged, or written before schema "
                         f"version {SCHEMA_VERSION}); re-trace the model to refresh it")
    if tail[len(_DIGEST_HEAD):-len(_DIGEST_TAIL)] != _sha256(body):
        raise UsageError("trace file does not match its digest (altered or damaged); "
                         "re-trace the model to refresh it")
    d = json.loads(body)
    _check_fields(d)
    return d


def _check_fields(d: Any) -> None:
    """``ValueError`` unless ``d`` has this schema's fields, each of the right type."""
    if not isinstance(d, dict) or d.get("schema") != SCHEMA_VERSION:
        found = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise UsageError(f"not an archalign trace of schema version {SCHEMA_VERSION} "
                         f"(found {found!r}); re-trace the model to refresh it")
    if d.get("call_fields") != list(_CALL_FIELDS):
        raise UsageError(f"trace call_fields {d.get('call_fields')!r} do not match "
                         f"{list(_CALL_FIELDS)!r}; re-trace the model to refresh it")
    calls, versions, modules = d.get("calls"), d.get("versions", {}), d.get("modules")
    header = (type(d.get("model")) is str and type(d.get("route")) is str
              and _optional_ints(d.get("input_size"))
              and type(d.get("fused_attn")) in (type(None), bool)
              and type(d.get("num_params")) in (type(None), int)
              and _strings(d.get("notes", []))
              and type(versions) is dict and _strings(list(versions.values()))
              and type(modules) is dict and _strings(list(modules.values()))
              and type(calls) is list)
    if not header:
        raise UsageError("trace header fields have the wrong types; re-trace the model")
    n = len(calls)
    for i, c in enumerate(calls):
        if not (type(c) is list and len(c) == len(_CALL_FIELDS)
                and type(c[0]) is str and type(c[1]) is str and type(c[2]) is str
                and type(c[3]) is dict and type(c[4]) is list
                and all(type(j) is int and 0 <= j < n for j in c[4])
                and _optional_ints(c[5])):
            raise UsageError(f"trace call {i} is malformed ({str(c)[:80]}); "
                             "re-trace the model")


def _optional_ints(x: Any) -> bool:
    # type() rather than isinstance(): True is an int to isinstance, not to JSON
    return x is None or (type(x) is list and all(type(v) is int for v in x))


def _strings(x: Any) -> bool:
    return type(x) is list and all(type(v) is str for v in x)
