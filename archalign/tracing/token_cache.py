"""Token sequences of cached traces, kept beside them and verified before use.

Comparing the whole zoo needs only each model's tokens, its route, its length and its
parameter count, but its traces are ~57 MB of JSON that take seconds to parse. The first
time a cached trace is read for its tokens, its tokens at every granularity are written
next to it, as ids into a string table (``<cache key dir>/tokens/<model>@<size>.json``, a
few KB each); later runs read those instead.

A token file is trusted only when it proves what it was made from: it records the
SHA-256 of the trace file's bytes, which must equal the trace file's bytes now, and
the SHA-256 of its own payload, whose fields must have the right types. Anything else
(missing, truncated, edited, another schema, a trace re-traced since) is rebuilt from
the trace, which is read only if it matches its own digest
(:func:`archalign.tracing.verified_dict`). Writes are atomic.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_write_text
from archalign.tracing.token_format import GRANULARITIES

__all__ = ["TokenRecord", "load_token_records", "token_path"]

# 2: num_params joined the payload; a schema-1 file is rebuilt from its trace.
SCHEMA = 2


class TokenRecord:
    """What a comparison needs of a trace: ``model``, ``route``, ``len()`` (calls),
    ``num_params`` (None when the route could not count them) and
    ``tokens(granularity, rolled=False)``, as :class:`~archalign.tracing.Trace` has them."""

    __slots__ = ("model", "route", "n_calls", "num_params", "_tokens")

    def __init__(self, model: str, route: str, n_calls: int, tokens: dict[str, list[str]],
                 num_params: int | None = None):
        self.model, self.route, self.n_calls, self._tokens = model, route, n_calls, tokens
        self.num_params = num_params

    def __len__(self) -> int:
        return self.n_calls

    def tokens(self, granularity: str = "type", rolled: bool = False) -> list[str]:
        if granularity not in GRANULARITIES:
            raise UsageError(f"unknown granularity {granularity!r}; choose one of "
                             f"{', '.join(map(repr, GRANULARITIES))}")
        tokens = list(self._tokens[granularity])
        if rolled:
            from archalign.tracing.rolling import roll

            tokens = roll(tokens)[0]
        return tokens

    def __repr__(self) -> str:
        return f"TokenRecord(model={self.model!r}, route={self.route!r}, calls={self.n_calls})"


def token_path(trace_path: str | os.PathLike) -> Path:
    """Where the token file of the cached trace at ``trace_path`` lives."""
    trace_path = Path(trace_path)
    return trace_path.parent / "tokens" / trace_path.name


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path, trace_digest: str) -> TokenRecord | None:
    """The record in a token file, or None unless every check passes."""
    try:
        outer = json.loads(path.read_text(encoding="utf-8"))
        payload = outer["payload"]
        if (outer.get("schema") != SCHEMA or outer.get("trace_sha256") != trace_digest
                or outer.get("payload_sha256") != _digest(payload.encode())):
            return None
        d = json.loads(payload)
        strings, ids, n, params = d["strings"], d["tokens"], d["n_calls"], d["num_params"]
        # The digest proves the payload is one this module wrote; the fields are checked
        # as well so that a wrong writer cannot slip in, say, a negative id (which
        # Python indexing would quietly read from the end of the table). A non-int id
        # fails the indexing below with a TypeError.
        if not (type(d["model"]) is str and type(d["route"]) is str and type(n) is int
                and (params is None or type(params) is int)
                and type(strings) is list and all(type(t) is str for t in strings)
                and all(type(ids[g]) is list and len(ids[g]) == n
                        and min(ids[g], default=0) >= 0
                        and max(ids[g], default=-1) < len(strings) for g in GRANULARITIES)):
            return None
        tokens = {g: [strings[i] for i in ids[g]] for g in GRANULARITIES}
        return TokenRecord(d["model"], d["route"], n, tokens, params)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _write(path: Path, trace_digest: str, record: TokenRecord) -> None:
    index: dict[str, int] = {}
    ids = {g: [index.setdefault(t, len(index)) for t in record._tokens[g]]
           for g in GRANULARITIES}
    payload = json.dumps({"model": record.model, "route": record.route,
                          "n_calls": record.n_calls, "num_params": record.num_params,
                          "strings": list(index), "tokens": ids},
                         separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"schema": SCHEMA, "trace_sha256": trace_digest,
                                        "payload_sha256": _digest(payload.encode()),
                                        "payload": payload}))


def load_token_records(paths: dict[str, Path]) -> tuple[dict[str, TokenRecord], list[str]]:
    """Token records of the cached traces ``paths`` (model -> trace file).

    Returns (records, missing): ``missing`` lists the models whose trace file is absent
    or does not parse as a trace of this schema (trace them again).
    """
    from archalign.tracing.calls import Trace

    records, missing = {}, []
    for name, trace_file in paths.items():
        try:
            data = Path(trace_file).read_bytes()
        except OSError:
            missing.append(name)
            continue
        digest = _digest(data)
        side = token_path(trace_file)
        record = _read(side, digest)
        if record is None:
            try:
                trace = Trace.from_json(data.decode("utf-8"))
            except (ValueError, KeyError, TypeError):
                missing.append(name)
                continue
            if trace.model != name:
                missing.append(name)
                continue
            record = TokenRecord(trace.model, trace.route, len(trace),
                                 {g: trace.tokens(g) for g in GRANULARITIES}, trace.num_params)
            try:
                _write(side, digest, record)
            except OSError:
                pass  # a read-only cache still answers, it just stays slow
        records[name] = record
    return records, missing
