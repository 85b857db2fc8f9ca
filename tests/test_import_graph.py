"""The import graph of archalign/ and neurn/, read from the source with ``ast``.

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, absolute
and relative. ``import a.b`` and ``from a import b`` (b a module) are edges to ``a.b``;
``from a.b import name`` is an edge to ``a.b``. The checks: no import cycle in either
package, and archalign's stages import only downward, in the order of the pipeline::

    root utilities (utils/, _version, defaults) < tracing < tokens < alignment
    < similarity < diffing < cli and the package's own __init__ (the public API)
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("archalign", "neurn")
STAGES = {"tracing": 1, "tokens": 2, "alignment": 3, "similarity": 4, "diffing": 5, "cli": 6}
ROOT_UTILITIES = {"utils", "_version", "defaults"}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
        for path in sorted((ROOT / package).rglob("*.pyx")):  # compiled: a module too
            found.setdefault(_module_name(path), path)
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The module of ours an import of ``name`` loads (its longest known prefix)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    if path.suffix != ".py":
        return set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from a import b``: the submodule a.b when there is one, else a itself
            names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                     for a in node.names]
        else:
            continue
        targets.update(t for t in map(_target, names) if t and t != module)
    return targets


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles(package: str) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    nodes = [m for m in GRAPH if m.split(".")[0] == package]
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w.split(".")[0] != package:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def _stage(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        # archalign/__init__.py (the public API) and `python -m archalign`: over all
        return max(STAGES.values())
    if parts[1] in ROOT_UTILITIES:
        return 0
    assert parts[1] in STAGES, f"{module}: not in a stage subpackage nor a root utility"
    return STAGES[parts[1]]


def test_the_graph_is_read():
    assert "archalign.tracing.api" in GRAPH and "neurn" in GRAPH
    assert "archalign.alignment._nw" in GRAPH["archalign.alignment.core"]
    assert "archalign.tracing.calls" in GRAPH["archalign.tracing.api"]


def test_archalign_has_no_import_cycle():
    assert _cycles("archalign") == []


def test_neurn_has_no_import_cycle():
    assert _cycles("neurn") == []


def test_archalign_stages_import_only_downward():
    upward = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if m.startswith("archalign")
                    for t in targets if t.startswith("archalign") and _stage(t) > _stage(m))
    assert upward == []


def test_archalign_does_not_import_neurn():
    assert [m for m, targets in GRAPH.items() if m.startswith("archalign")
            and any(t.split(".")[0] == "neurn" for t in targets)] == []


def test_archalign_modules_stay_small():
    long = {m: n for m, p in MODULES.items() if m.startswith("archalign") and p.suffix == ".py"
            and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_importing_neurn_loads_no_aligner():
    # neurn shares archalign.utils (files, CLI pieces, errors); with archalign's lazy
    # top-level API that must not load the tracer or the compiled aligner
    import subprocess
    import sys

    code = ("import sys, neurn, neurn.cli; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('archalign'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert "archalign.utils.io" in loaded  # the check sees what neurn does load
    heavy = [m for m in loaded if m.count(".") and m.split(".")[1] in STAGES]
    assert not heavy, heavy


def test_the_lazy_api_lists_each_name_once_and_every_name_loads():
    # archalign/__init__.py names its API three times (the _API map, __all__ and the
    # TYPE_CHECKING imports): they must agree, and each name must be what its module defines
    import importlib

    import archalign

    assert sorted(archalign.__all__) == sorted({"__version__", *archalign._API})
    assert len(archalign.__all__) == len(set(archalign.__all__))
    init = ast.parse((ROOT / "archalign" / "__init__.py").read_text(encoding="utf-8"))
    checked = {a.name: node.module for node in ast.walk(init)
               if isinstance(node, ast.ImportFrom) and node.module != "archalign._version"
               and node.module != "__future__" and node.module != "typing"
               for a in node.names}
    assert checked == archalign._API
    for name, module in archalign._API.items():
        assert getattr(archalign, name) is getattr(importlib.import_module(module), name)
