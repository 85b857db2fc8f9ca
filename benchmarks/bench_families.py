"""Does the similarity recover architecture families? The whole timm zoo, every setting.

Ground truth, independent of archalign:

- ``module``: the timm source module that registers the model
  (``timm.list_models(module=m)``), e.g. ``resnet``, ``vision_transformer``;
- ``stem``: the model name's leading letters, after dropping the ``tf_`` /
  ``legacy_`` / ``gluon_`` provenance prefixes (``resnet50d`` -> ``resnet``,
  ``vit_tiny_patch16_224`` -> ``vit``).

Metrics, for each label:

- ``NN``: over models whose group has at least 2 members, the share whose nearest
  other model is in the same group (a tie among nearest models counts the share of
  the tied ones that are in the group: the expected score of a random tie-break);
- ``ARI`` / ``AMI``: average-linkage clusters of all models, cut into as many clusters
  as there are groups, against the groups (scikit-learn's adjusted Rand index and
  adjusted mutual information);
- ``coph``: the cophenetic correlation of that linkage with the distances;
- ``s``: seconds for the matrix from loaded traces (tokens, rolling, alignment,
  similarity), on all cores.

Settings: granularity {type, shape, full} x gaps {linear -1, affine grid} x rolled
{no, blocks of up to 16 / 64 / any number of tokens} x family {off, on}, plus the paper
preset (type tokens, +1 / -2 / -2, correlation). The script then names the setting it
recommends by the rule in ``choose``, and times the library's defaults end to end from
the cache. First it tries the optional depth term on the defaults (``depth_term``).

    archalign trace --all                       # once: fills the trace cache
    python benchmarks/bench_families.py [--quick | --depth] [--csv out.csv]

``--quick`` runs shape tokens only; ``--depth`` only the depth-term table. Needs the
``bench`` extra (scikit-learn).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import re
import sys
import time

import numpy as np

import archalign
from archalign import defaults
from archalign.similarity.matrix import SimilarityMatrix
from archalign.tokens.encode import encode_traces
from archalign.tracing.specs import resolve_traces

# (label, gap_open, gap_extend); linear -1 was the first release's default.
GAPS = [("linear -1", -1.0, -1.0), ("affine -2/-1", -2.0, -1.0),
        ("affine -4/-0.5", -4.0, -0.5), ("affine -4/-0.25", -4.0, -0.25),
        ("affine -8/-0.5", -8.0, -0.5)]
# Rolling: off (False), or blocks of up to this many tokens (archalign.roll's
# max_period; None: any length).
ROLLED = [False, 16, 64, None]
# The whole zoo in <= 2 s end to end: reading its verified token files takes ~0.7 s,
# which leaves ~1.3 s for tokens -> matrix; 1.5 s allows for timing noise.
BUDGET_S = 1.5
_PREFIXES = re.compile(r"^(tf_|legacy_|gluon_)+")


def ground_truth(labels):
    """(module, stem) label lists, one entry per model."""
    import timm

    module_of = {}
    for module in timm.list_modules():
        for name in timm.list_models(module=module):
            module_of.setdefault(name, module)
    missing = [x for x in labels if x not in module_of]
    if missing:
        raise SystemExit(f"bench_families: timm registers no module for {missing[:5]}")
    stems = [re.match(r"[a-z]*", _PREFIXES.sub("", x)).group(0) or x for x in labels]
    return [module_of[x] for x in labels], stems


def nearest_same_group(values, groups) -> float:
    """Share of models (in groups of >= 2) whose nearest other model shares the group."""
    groups = np.asarray(groups)
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    v = values.copy()
    np.fill_diagonal(v, -np.inf)
    best = v.max(axis=1, keepdims=True)
    tied = v >= best - 1e-12
    same = groups[None, :] == groups[:, None]
    share = (tied & same).sum(1) / tied.sum(1)
    return float(share[sizes[inverse] >= 2].mean())


def cluster_scores(sm: SimilarityMatrix, groups) -> dict:
    from scipy.cluster.hierarchy import cophenet, fcluster, linkage
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    condensed = sm.to_condensed()
    Z = linkage(condensed, method="average")
    ids = fcluster(Z, len(set(groups)), criterion="maxclust")
    return {"ARI": adjusted_rand_score(groups, ids),
            "AMI": adjusted_mutual_info_score(groups, ids),
            "coph": float(cophenet(Z, condensed)[0])}


def evaluate(sm: SimilarityMatrix, truth: dict) -> dict:
    row = {}
    for name, groups in truth.items():
        row[f"NN {name}"] = nearest_same_group(sm.values, groups)
        scores = cluster_scores(sm, groups)
        row[f"AMI {name}"], row[f"ARI {name}"] = scores["AMI"], scores["ARI"]
        row["coph"] = scores["coph"]
    return row


def matrix(labels, traces, granularity, rolled, family, gap_open, gap_extend,
           preset=False) -> tuple[SimilarityMatrix, float]:
    """The similarity matrix of one setting and its seconds from loaded traces.
    ``rolled``: False, or the longest block rolled (None: any)."""
    start = time.perf_counter()
    if preset:
        enc = encode_traces(traces, "type", archalign.Scoring.paper(), rolled=False)
    else:
        enc = encode_traces(traces, granularity, family=family, rolled=rolled is not False,
                            max_period=rolled or None, gap_open=gap_open,
                            gap_extend=gap_extend)
    scores = archalign.pairwise(enc.seqs, enc.scoring)
    sm = SimilarityMatrix.from_scores(labels, scores,
                                      "correlation" if preset else "normalized",
                                      lengths=[len(s) for s in enc.seqs], scoring=enc.scoring)
    return sm, time.perf_counter() - start


def grid(quick: bool):
    grans = ("shape",) if quick else ("type", "shape", "full")
    for gran, (gap, go, ge), rolled, family in itertools.product(
            grans, GAPS, ROLLED, (False, True)):
        yield {"granularity": gran, "gaps": gap, "rolled": rolled, "family": family,
               "gap_open": go, "gap_extend": ge}


def choose(rows):
    """The recommended setting: among those whose matrix fits ``BUDGET_S``, the best
    mean of the three module scores (NN, AMI, ARI), ties (to 3 decimals) to the faster."""
    candidates = [r for r in rows if r["granularity"] != "paper preset" and r["s"] <= BUDGET_S]
    return max(candidates, key=lambda r: (round((r["NN module"] + r["AMI module"]
                                                 + r["ARI module"]) / 3, 3), -r["s"]))


def depth_term(labels, traces, truth, weights=(0.1, 0.2, 0.3)) -> list[dict]:
    """The optional depth term, tried on the library defaults:
    ``sim = (1 - w) * sim_rolled + w * min(n_a, n_b) / max(n_a, n_b)`` with n the
    unrolled number of calls (1 for a model with itself, symmetric, in [0, 1])."""
    enc = encode_traces(traces)
    sm = SimilarityMatrix.from_scores(labels, archalign.pairwise(enc.seqs, enc.scoring),
                                      lengths=[len(s) for s in enc.seqs],
                                      scoring=enc.scoring)
    n = np.array([len(t) for t in traces], dtype=np.float64)
    depth = np.minimum.outer(n, n) / np.maximum.outer(n, n)
    rows = []
    for w in (0.0, *weights):
        mixed = SimilarityMatrix(labels, sm.scores, (1 - w) * sm.values + w * depth)
        rows.append({"depth weight": w, **evaluate(mixed, truth)})
    return rows


def end_to_end() -> float:
    """Seconds of archalign.similarity_matrix(<whole zoo>) with the library defaults,
    traces read from the cache."""
    start = time.perf_counter()
    archalign.similarity_matrix(["*"], progress=False)
    return time.perf_counter() - start


COLUMNS = ["granularity", "gaps", "rolled", "family", "NN module", "AMI module",
           "ARI module", "NN stem", "AMI stem", "ARI stem", "coph", "s"]


def fmt(row, col) -> str:
    v = row[col]
    if col == "rolled":
        return "no" if v is False else "any" if v is None else f"<= {v}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2f}" if col == "s" else f"{v:.3f}"
    return str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shape tokens only")
    ap.add_argument("--csv", help="also write the table as CSV")
    ap.add_argument("--depth", action="store_true",
                    help="only the depth-term table (on the defaults), not the grid")
    args = ap.parse_args(argv)

    import timm

    from archalign.tracing.zoo_cache import cache_path

    names = timm.list_models()
    missing = [x for x in names if not cache_path(x).exists()]
    if missing:
        print(f"bench_families: {len(missing)} of {len(names)} zoo models are not in the "
              f"trace cache; run `archalign trace --all` first", file=sys.stderr)
        return 2
    labels, traces = resolve_traces(names, progress=False, tokens_only=True)
    truth = dict(zip(("module", "stem"), ground_truth(labels)))
    n_modules = len(set(truth["module"]))
    multi = sum(1 for m in set(truth["module"]) if truth["module"].count(m) >= 2)
    print(f"{len(labels)} models, {n_modules} timm modules ({multi} with >= 2 models), "
          f"{len(set(truth['stem']))} name stems; {archalign.effective_n_jobs()} threads\n")

    depth_cols = ["depth weight", "NN module", "AMI module", "ARI module", "coph"]
    print("depth term on the defaults:\n| " + " | ".join(depth_cols) + " |")
    print("|" + "---|" * len(depth_cols))
    for row in depth_term(labels, traces, truth):
        print("| " + " | ".join(f"{row[c]:.3g}" if c == "depth weight" else fmt(row, c)
                                for c in depth_cols) + " |")
    print()
    if args.depth:
        return 0

    rows = []
    for setting in grid(args.quick):
        sm, seconds = matrix(labels, traces, setting["granularity"], setting["rolled"],
                             setting["family"], setting["gap_open"], setting["gap_extend"])
        rows.append({**setting, **evaluate(sm, truth), "s": seconds})
        print("  " + " | ".join(fmt(rows[-1], c) for c in COLUMNS), file=sys.stderr)
    sm, seconds = matrix(labels, traces, None, None, None, None, None, preset=True)
    rows.append({"granularity": "paper preset", "gaps": "linear -2", "rolled": False,
                 "family": False, **evaluate(sm, truth), "s": seconds})

    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(fmt(row, c) for c in COLUMNS) + " |")
    best = choose(rows)
    print(f"\nrecommended (best mean of NN / AMI / ARI by module within {BUDGET_S:g} s): "
          f"{best['granularity']} "
          f"tokens, {best['gaps']} gaps, rolled {fmt(best, 'rolled')}, family "
          f"{fmt(best, 'family')}")
    print(f"library defaults: {defaults.GRANULARITY} tokens, gaps {defaults.GAP_OPEN:g}/"
          f"{defaults.GAP_EXTEND:g}, rolled {defaults.ROLLED} (max_period "
          f"{defaults.MAX_PERIOD}), "
          f"family {defaults.FAMILY}")
    print(f"whole zoo end to end with the defaults (similarity_matrix from the cache): "
          f"{end_to_end():.2f} s")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
