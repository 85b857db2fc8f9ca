"""Hugging Face transformers architectures in archalign (issue 13's targets).

1. Coverage: trace every model type ``AutoModel`` builds (``transformers:*``) from its
   default config, through the zoo runner (workers, timeouts, cache; a rerun reads the
   cache). Among the types that *build*, the share that also *traces* (target >= 85%),
   the routes, and the reasons for the rest, grouped.
2. Families: a similarity matrix (default settings) over BERT / RoBERTa / ELECTRA /
   DeBERTa, GPT-2 / GPT-J / GPT-NeoX, LLaMA / Mistral / Qwen2 and T5 / BART, clustered
   (average linkage) into 4; the adjusted Rand index against those 4 families.

    python benchmarks/bench_transformers.py [--jobs N] [--cache-dir DIR] [--skip-coverage]
"""
from __future__ import annotations

import argparse
import collections
import re
import time

import archalign
from archalign.tracing.zoo import trace_many

FAMILIES = {
    "bert": "encoder", "roberta": "encoder", "electra": "encoder", "deberta": "encoder",
    "gpt2": "gpt", "gptj": "gpt", "gpt_neox": "gpt",
    "llama": "llama", "mistral": "llama", "qwen2": "llama",
    "t5": "encoder-decoder", "bart": "encoder-decoder",
}


def reason(message: str) -> str:
    """A failure message without its model-specific details, for grouping."""
    text = re.sub(r"transformers:\S+", "", message)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\d[\d,_.]*", "…", text)
    return text[:110]


def coverage(args) -> None:
    t0 = time.perf_counter()
    result = trace_many(["transformers:*"], n_jobs=args.jobs, cache_dir=args.cache_dir,
                        load=False, progress=True, timeout=args.timeout)
    seconds = time.perf_counter() - t0
    total = len(result.paths) + len(result.failures)
    unbuilt = {n: m for n, m in result.failures.items() if "cannot build" in m}
    failed = {n: m for n, m in result.failures.items() if n not in unbuilt}
    built = total - len(unbuilt)
    routes = collections.Counter(result.routes.values())
    print(f"\n{total} model types, {seconds:.0f} s ({len(result.cached)} from cache)\n")
    print("| | model types |")
    print("|---|---|")
    print(f"| build from the default config | {built} |")
    print(f"| trace | {len(result.paths)} ({100 * len(result.paths) / max(built, 1):.1f}% of "
          f"those that build) |")
    print(f"| routes | {', '.join(f'{r} {n}' for r, n in routes.most_common())} |")
    print(f"| build but do not trace | {len(failed)} |")
    print(f"| do not build | {len(unbuilt)} |")
    for title, group in (("do not trace", failed), ("do not build", unbuilt)):
        print(f"\nWhy {len(group)} {title} (grouped):")
        for text, n in collections.Counter(reason(m) for m in group.values()).most_common(12):
            print(f"  {n:4d}  {text}")


def families(args) -> None:
    specs = [f"transformers:{t}" for t in FAMILIES]
    sm = archalign.similarity_matrix(specs, cache_dir=args.cache_dir, n_jobs=args.jobs,
                                     progress=False)
    groups = [FAMILIES[label.split(":", 1)[1]] for label in sm.labels]
    found = sm.agreement(groups)
    clusters = sm.clusters(n_clusters=4)
    print(f"\nfamilies: {len(sm.labels)} models, ARI {found['adjusted_rand_index']:.3f}, "
          f"cophenetic correlation {found['cophenetic_correlation']:.3f}")
    print("| model | family | cluster | nearest |")
    print("|---|---|---|---|")
    for label, group, c in zip(sm.labels, groups, clusters):
        near, value = sm.nearest(label, k=1)[0]
        print(f"| {label} | {group} | {c} | {near} ({value:.2f}) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int)
    p.add_argument("--cache-dir")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--skip-coverage", action="store_true")
    args = p.parse_args()
    if not args.skip_coverage:
        coverage(args)
    families(args)


if __name__ == "__main__":
    main()
