"""``archalign.diff(a, b)``: what differs between two architectures, as a :class:`Diff`.

The similarity says *how much* two models differ; a diff says *what*: depth per stage,
width, changed hyper-parameters, inserted and removed layers, parameter counts, and a
unified diff of the rolled module structure (:mod:`archalign.diffing.structure`) with an
edit script (:mod:`archalign.diffing.edits`) that tools can apply.

The diff reads every hyper-parameter (``"full"`` tokens), whatever the similarity
setting: a change the similarity is blind to by design (depth, under the default
rolled setting; widths, under shape tokens) is still named. The header's similarity is
the one ``archalign matrix`` would give the pair under the setting passed.

Swapping the models mirrors the diff exactly: the pair is aligned in one fixed order
(the smaller structure key first), so that ties in the alignment cannot break
differently in the two directions.
"""
from __future__ import annotations

import json
from dataclasses import replace

from archalign.diffing.edits import edit_script, is_empty, mirror
from archalign.diffing.structure import Block, build_structure, unrolled_length
from archalign.diffing.summary import summarize, walk
from archalign.diffing.text import render_text
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import EncodingSettings
from archalign.utils.errors import UsageError

__all__ = ["Diff", "diff", "FORMATS"]

FORMATS = ("text", "json", "html")


class Diff:
    """The difference between two models (built by :func:`diff`).

    Attributes
    ----------
    labels : (str, str)
    a, b : Block
        The rolled structures compared (:mod:`archalign.diffing.structure`).
    edits : list of dict
        The edit script from ``a`` to ``b`` (:mod:`archalign.diffing.edits`).
    summary : list of str
        The header, one line per kind of change.
    similarity : float
        The pair's similarity under ``setting``.
    num_params : (int or None, int or None)
        Parameter counts of the two models.
    lengths : (int, int)
        Their unrolled lengths (layers, as read).

    ``str(d)`` is the text, ``d.to_dict()`` the JSON, ``d._repr_html_()`` the page a
    notebook shows; ``len(d)`` counts the changed, inserted and removed items.
    """

    def __init__(self, labels, a: Block, b: Block, edits, similarity: float, setting: str,
                 num_params, paths_differ: bool = False, input_sizes=(None, None)):
        self.labels = tuple(labels)
        self.a, self.b, self.edits = a, b, edits
        self.similarity, self.setting = float(similarity), setting
        self.num_params = tuple(num_params)
        self.paths_differ = paths_differ
        self.input_sizes = tuple(None if x is None else tuple(x) for x in input_sizes)
        self.summary = summarize(a, b, edits, self.num_params, self.input_sizes)

    @property
    def lengths(self) -> tuple[int, int]:
        """The unrolled lengths (layers, as read) of the two structures."""
        return unrolled_length(self.a), unrolled_length(self.b)

    @property
    def is_empty(self) -> bool:
        return is_empty(self.edits)

    @property
    def changes(self) -> list[dict]:
        """Every changed, inserted or removed entry, nested ones included."""
        return [e for e, *_ in walk(self.a, self.b, self.edits) if e["op"] != "keep"]

    def __len__(self) -> int:
        return len(self.changes)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (f"Diff({self.labels[0]!r} → {self.labels[1]!r}, {len(self)} changes, "
                f"similarity {self.similarity:.4f})")

    def to_text(self, color: bool = False, context: int = 3) -> str:
        return render_text(self, color=color, context=context)

    def to_dict(self) -> dict:
        """The diff for tools: both structures, the edit script and the header."""
        return {
            **{side: {"model": self.labels[k], "num_params": self.num_params[k],
                      "layers": self.lengths[k], "input_size": self.input_sizes[k],
                      "structure": (self.a, self.b)[k].to_dict()}
               for k, side in enumerate("ab")},
            "similarity": self.similarity, "setting": self.setting,
            "summary": list(self.summary), "edits": self.edits,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def to_html(self) -> str:
        from archalign.diffing.page import render_html

        return render_html(self)

    def _repr_html_(self) -> str:
        from archalign.diffing.page import render_fragment

        return render_fragment(self)

    def mirrored(self) -> Diff:
        """The diff from B to A."""
        return Diff(self.labels[::-1], self.b, self.a, mirror(self.edits), self.similarity,
                    self.setting, self.num_params[::-1], self.paths_differ,
                    self.input_sizes[::-1])


def diff(a, b, *, granularity: str | None = None, as_exported: bool | None = None,
         hierarchical: bool | None = None, cache_dir=None,
         settings: EncodingSettings | None = None, scoring: Scoring | None = None,
         **setting) -> Diff:
    """The :class:`Diff` from model ``a`` to model ``b``.

    Parameters
    ----------
    a, b : model specs
        Anything :func:`archalign.similarity_matrix` takes: timm names,
        ``"torchvision:<name>"``, ``"transformers:<type>"``, ONNX files, nn.Modules,
        Traces.
    granularity, settings, scoring, **setting
        The similarity setting the header's similarity is computed under:
        ``settings=`` / ``scoring=`` or the keywords of
        :func:`archalign.similarity_matrix` (``rolled``, ``family``, ``gap_open``, ...;
        its defaults). The diff itself reads every field.
    as_exported : bool, optional
        Read both as an inference export writes them (archalign.tokens.folding).
        None: ``settings.as_exported``, else when either is an ONNX graph.
    hierarchical : bool, optional
        Compare module trees; None: when both traces have them (ONNX graphs do not,
        and are compared as rolled layer lists).
    """
    from archalign.similarity.compare import similarity_matrix
    from archalign.tokens.settings import resolve_settings
    from archalign.tracing.specs import resolve_traces

    # the similarity's own keywords go on to it; the rest is the setting, read first
    passed_on = {k: setting.pop(k) for k in ("similarity", "preset") if k in setting}
    settings, scoring = resolve_settings(settings, scoring, granularity=granularity,
                                         as_exported=as_exported,
                                         preset=passed_on.get("preset"), **setting)
    as_exported = settings.as_exported
    same = a is b or (isinstance(a, str) and a == b)  # named twice: resolved once
    labels, traces = resolve_traces([a] if same else [a, b], n_jobs=1, cache_dir=cache_dir,
                                    progress=False)
    if same:
        labels, traces = labels * 2, traces * 2
    if len(traces) != 2:
        raise UsageError(f"a diff needs two models; only {', '.join(labels)} could be traced")
    if as_exported is None:
        as_exported = any(t.route == "onnx" for t in traces)
    if hierarchical is None:
        hierarchical = all(t.modules for t in traces)
    sa, sb = (build_structure(t, as_exported=as_exported, hierarchical=hierarchical)
              for t in traces)
    if repr(sa.key) <= repr(sb.key):
        edits = edit_script(sa, sb)
    else:
        edits = mirror(edit_script(sb, sa))
    settings = replace(settings, as_exported=as_exported)
    sm = similarity_matrix(traces[:1] if same else traces, settings=settings, scoring=scoring,
                           n_jobs=1, progress=False, **passed_on)
    rolled_text = "rolled " if settings.rolled else ""
    described = f"{sm.similarity}, {rolled_text}{settings.granularity} tokens" + (
        ", as exported" if as_exported else "")
    paths = [[c.path for c in t.calls] for t in traces]
    return Diff(labels, sa, sb, edits, sm.values[0, -1], described,
                [t.num_params for t in traces], paths_differ=paths[0] != paths[1],
                input_sizes=[getattr(t, "input_size", None) for t in traces])
