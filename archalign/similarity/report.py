"""An interactive similarity report: one self-contained, offline HTML file.

``write_report(sm, "report.html")`` (``SimilarityMatrix.to_html``, ``archalign report``)
writes a page holding a clustered heatmap on a canvas (dendrogram leaf order, zoom and
pan, hover names both models and the similarity, row and column labels, a colour bar),
the dendrogram beside it with an adjustable cut (every cluster in its own colour,
:mod:`archalign.similarity.tree`'s, singletons too), a search box, the shortlist marked
(the cut opens at its k), the alignment of any pair a user clicks, and the settings
that made the matrix. The header, with the hint on what a click does, stays in view.

The page is hand-written (``report.html`` / ``report.css`` / ``report.js`` beside this
module, inlined at build time), not plotly or bokeh: at 1,371 models a plotting
library's heatmap is a DOM / SVG / JSON-of-floats problem and its bundle alone is
megabytes, while one ``ImageData`` of n x n pixels drawn with ``drawImage`` zooms at
any scale. Data travel as base64 typed arrays in one JSON block: the similarity
quantised to uint16 over its range (steps of 1.5e-5, hover shows 4 decimals; the top
step is kept for similarities of 1 to 1e-9), the linkage in leaf positions, each model's
depth and parameter count (so that hovering a cell at 1 names the depth or width change
it hides: ``SimilarityMatrix.hidden_change``), and the token sequences.

Alignments are computed in the page, not precomputed: the matrix's own token-id
sequences (rolled, with their counts) and its scoring are embedded, and the page runs
the same Gotoh recurrences as ``archalign/alignment/_nw_reference.py``. That reaches every pair
(939,735 for the zoo) for about 0.5 MB, where precomputing each model's k nearest would
reach only those. The ``.npz`` holds no sequences, so they are rebuilt from the traces
(the trace cache for timm names, or ``traces=``) with the setting the file holds
(``sm.encoding`` and ``sm.scoring``), and checked against its record (sequence lengths,
vocabulary); a mismatch is an error, and ``alignments=False`` makes a page without them.
"""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np

from archalign.similarity.ties import SAME, TIE_RULE
from archalign.similarity.tree import palette, shortlisted
from archalign.utils.errors import UsageError
from archalign.utils.io import atomic_write_text

__all__ = ["write_report", "build_report"]

_ASSETS = Path(__file__).resolve().parent
# A substitution matrix travels as V x V float32; past this the page would outgrow the
# size target (full tokens of the zoo: V = 8,712, 300 MB), so such reports carry none.
_MAX_SUBSTITUTION_VOCAB = 1024
_MAX_CUT = 200  # the most clusters the page's slider offers


def write_report(sm, path, *, shortlist=None, alignments: bool = True, traces=None,
                 cache_dir=None, n_clusters: int | None = None, method: str = "average",
                 title: str | None = None) -> Path:
    """Write the report of SimilarityMatrix ``sm`` to ``path`` (atomically; a missing
    folder is created) and return the path.

    Parameters
    ----------
    sm : SimilarityMatrix
    path : path
        The ``.html`` file to write.
    shortlist : Shortlist or list of str, optional
        Models to mark (a triangle and bold labels); every name must be in the matrix.
    alignments : bool
        Embed the token sequences, so that a click shows a pair's alignment; they come
        from ``traces`` (one per label, in order) or the trace cache at ``cache_dir``.
    traces, cache_dir
        Where the token sequences come from (see ``alignments``).
    n_clusters : int, optional
        Where the cut starts: default the shortlist's k when one is given, else about
        sqrt(n).
    method : str
        The linkage: "average" (default), "complete", "single" or "weighted".
    title : str, optional
    """
    encoded = _encoded(sm, traces, cache_dir) if alignments else None
    text = build_report(sm, shortlist=shortlist, encoded=encoded, n_clusters=n_clusters,
                        method=method, title=title)
    atomic_write_text(path, text)
    return Path(path)


def build_report(sm, *, shortlist=None, encoded=None, n_clusters: int | None = None,
                 method: str = "average", title: str | None = None) -> str:
    """The page as a string; ``encoded`` (archalign.tokens.encode.Encoded) enables alignments."""
    from scipy.cluster.hierarchy import leaves_list

    n = len(sm)
    if n < 2:
        raise UsageError("a report needs at least two models (it clusters them)")
    Z = sm.linkage(method)
    order = leaves_list(Z)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    names = shortlisted(sm.labels, shortlist)
    lo = -1.0 if sm.similarity == "correlation" else 0.0
    values = sm.values[np.ix_(order, order)]
    quantised = np.rint((np.clip(values, lo, 1.0) - lo) / (1.0 - lo) * 65535)
    # 65535 means "the same design" to the page, exactly when hidden_change() may speak
    quantised = np.where(values >= SAME, 65535, np.minimum(quantised, 65534)).astype("<u2")
    depths, params = sm.unrolled_lengths, sm.num_params
    data = {
        "labels": [sm.labels[i] for i in order],
        "lo": lo,
        "values": _typed(quantised),
        # children as leaf positions (< n) or merge ids (>= n), heights ascending as scipy's
        "merges": [[_node(a, position), _node(b, position), round(float(h), 6)]
                   for a, b, h in Z[:, :3]],
        # a shortlist of k opens at its k clusters, as a medoid shortlist cut them
        "clusters": int(n_clusters or len(names) or max(2, round(np.sqrt(n)))),
        "palette": palette(min(n, _MAX_CUT)),
        "similarity": sm.similarity,
        "shortlist": [int(position[sm.labels.index(x)]) for x in names],
        "depths": [depths[i] for i in order],
        "params": [params[i] for i in order],
        "colormap": _viridis(),
    }
    data.update(_alignment_data(encoded, order))
    title = title or _title(sm)
    page = (_ASSETS / "report.html").read_text(encoding="utf-8")
    fills = {"TITLE": html.escape(title), "STYLE": (_ASSETS / "report.css").read_text("utf-8"),
             "SETTINGS": _settings_rows(sm, method, data), "DATA": _script_json(data),
             "SCRIPT": (_ASSETS / "report.js").read_text("utf-8")}
    # one pass, so that no filled-in text is itself searched for placeholders
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: fills[m.group(1)], page)


def _node(node: float, position: np.ndarray) -> int:
    """A linkage child as the page reads it: a leaf's position, or a merge's id (>= n)."""
    node = int(node)
    return int(position[node]) if node < len(position) else node


def _encoded(sm, traces, cache_dir):
    """The matrix's token sequences and scoring, rebuilt from traces with the setting the
    matrix holds (``sm.encoding``, ``sm.scoring``) and checked against its record."""
    from archalign.tokens.encode import encode_traces
    from archalign.tracing.specs import resolve_traces

    s = sm.settings
    needed = [what for what, missing in (("its encoding settings", sm.encoding is None),
                                         ("its scoring", sm.scoring is None),
                                         ("lengths", "lengths" not in s),
                                         ("vocabulary", "vocabulary" not in s)) if missing]
    if needed:
        what = f"does not record {', '.join(needed)}"
        if needed == ["its scoring"] and isinstance(s.get("scoring"), str):
            # a file saved before scorings were stored, with scores it cannot tell apart
            what = (f"records its scoring only as the text {s['scoring']!r} (saved before "
                    f"scorings were stored; make the matrix again)")
        raise UsageError(f"this matrix {what}, so its alignments cannot be rebuilt; make the "
                         f"report with alignments=False (--no-alignments)")
    if traces is None:
        try:
            labels, traces = resolve_traces(sm.labels, cache_dir=cache_dir, progress=False,
                                            tokens_only=True)
        except (ValueError, KeyError) as exc:
            raise UsageError(f"cannot get the matrix's token sequences from traces ({exc}); "
                             f"give the trace cache with --cache-dir, or --no-alignments"
                             ) from None
        if labels != sm.labels:
            lost = sorted(set(sm.labels) - set(labels))
            raise UsageError(f"no traces for {len(lost)} of the matrix's models "
                             f"({', '.join(lost[:5])}); give the trace cache with "
                             f"--cache-dir, or --no-alignments")
    changed = UsageError("the traces found no longer give the sequences this matrix was made "
                         "from (other tokens, lengths or scoring); make the matrix again, or "
                         "the report with --no-alignments")
    try:
        enc = encode_traces(traces, settings=sm.encoding, scoring=sm.scoring)
    except UsageError:  # a substitution matrix over another vocabulary
        raise changed from None
    if [len(x) for x in enc.seqs] != list(s["lengths"]) or enc.vocab.tokens != list(
            s["vocabulary"]):
        raise changed
    return enc


def _alignment_data(enc, order) -> dict:
    if enc is None:
        return {"sequences": None, "alignments_note": "made without alignments"}
    V = len(enc.vocab)
    sub = enc.scoring.substitution
    if sub is not None and V > _MAX_SUBSTITUTION_VOCAB:
        return {"sequences": None, "alignments_note": f"the substitution matrix of {V} "
                f"tokens is too big to embed; use `archalign align A B`"}
    seqs = [np.asarray(enc.seqs[i]) for i in order]
    counts = [np.asarray(enc.counts[i]) for i in order]
    ids = np.concatenate(seqs) if seqs else np.zeros(0)
    flat_counts = np.concatenate(counts)
    return {
        "sequences": {"ids": _typed(ids.astype("<u2" if V < 2 ** 16 else "<u4")),
                      "counts": _typed(flat_counts.astype(
                          "<u2" if flat_counts.max(initial=0) < 2 ** 16 else "<u4")),
                      "offsets": np.concatenate([[0], np.cumsum([len(x) for x in seqs])]
                                                ).tolist()},
        "vocabulary": list(enc.vocab.tokens),
        "scoring": {"match": enc.scoring.match, "mismatch": enc.scoring.mismatch,
                    "gap_open": enc.scoring.gap_open, "gap_extend": enc.scoring.gap_extend,
                    "substitution": None if sub is None
                    else _typed(np.asarray(sub, dtype="<f4"))},
        "alignments_note": "",
    }


def _typed(a: np.ndarray) -> dict:
    dtype = {"u1": "uint8", "u2": "uint16", "u4": "uint32", "f4": "float32"}[a.dtype.str[1:]]
    return {"dtype": dtype, "data": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}


def _viridis() -> str:
    # the PNG heatmap's colour map, so that the page and plot_heatmap read alike
    from matplotlib import colormaps

    rgb = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).round()
    return base64.b64encode(rgb.astype(np.uint8).tobytes()).decode()


# Inside <script> the HTML tokenizer, not JSON, decides where the element ends: "</script"
# ends it, and "<!--" followed by "<script" makes the next "</script>" not end it (the
# page then blanks). These characters occur in JSON only inside strings, where \uXXXX
# is the same string, so the text stays valid JSON and holds no markup. U+2028 / U+2029
# end a line in older JavaScript string literals.
_SCRIPT_ESCAPES = str.maketrans({c: f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"})


def _script_json(data: dict) -> str:
    return json.dumps(data, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def _title(sm) -> str:
    s = sm.settings
    rolled = "rolled " if s.get("rolled") else ""
    grain = f"{s['granularity']} tokens" if "granularity" in s else "tokens"
    return f"{len(sm)} architectures: {sm.similarity} similarity of {rolled}{grain}"


def _settings_rows(sm, method: str, data: dict) -> str:
    s = sm.settings
    rows = [("models", len(sm)), ("similarity", sm.similarity), ("linkage", method)]
    rows += [(k, s[k]) for k in ("granularity", "rolled", "max_period", "family", "scoring",
                                 "gap_open", "gap_extend", "as_exported", "preset") if k in s]
    rows += [(f"version of {k}", v) for k, v in s.get("versions", {}).items()]
    known = [sum(x is not None for x in data[k]) for k in ("depths", "params")]
    rows.append(("depth and width", (f"layer calls known for {known[0]} of {len(sm)} "
                                     f"models, parameter counts for {known[1]}; hovering a "
                                     f"cell at 1.0000 names the change in them that the "
                                     f"similarity does not show")))
    rows.append(("ties", TIE_RULE))
    seqs = data["sequences"]
    rows.append(("alignments", f"computed in this page from the embedded token ids "
                               f"({seqs['offsets'][-1]:,} tokens over a vocabulary of "
                               f"{len(data['vocabulary'])})" if seqs
                 else data["alignments_note"]))
    return "\n".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                     for k, v in rows)
