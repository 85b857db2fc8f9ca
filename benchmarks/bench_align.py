"""Speed of archalign's aligner against the aligners people would otherwise use.

Prints two tables, every figure measured in this run. The first, on the same sequences:
single-pair global score throughput (GCUPS = len(a) * len(b) / s / 1e9) at
lengths 300, 1000 and 3000, and an all-pairs job over 500 sequences of length
~300, for archalign, Biopython's PairwiseAligner.score and parasail's exact
scan kernels (nw_scan_16; nw_scan_profile_16 with one query profile per row
for all-pairs). Scoring: match 1, mismatch -1, linear gap -1. Ratios are to
parasail. Sequences look like networks: repeated blocks over 68 token types
(parasail takes printable characters and folds lower case onto upper case,
so the vocabulary is the 68 printable ASCII characters that are not lower
case letters).

The second times archalign.pairwise on the same sequences with flat scoring
(match 1 / mismatch -1) and with a family-style substitution matrix over a
large vocabulary (V=2000, as Vocabulary.substitution_matrix(family=True)
builds: 1 on the diagonal, 0.5 within an op type, 0 within a family, -1
elsewhere), for linear and affine gaps; the target is family / flat <= 1.5.
"zoo-like" sequences share tokens the way a model zoo does; "no shared ids"
gives every sequence its own tokens, the worst case for the per-task profile.

    python benchmarks/bench_align.py [--n 500] [--len 300] [--quick]

Needs the `bench` extra: pip install '.[bench]'.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import archalign

ALPHABET = "".join(chr(c) for c in range(33, 127) if not chr(c).islower())
VOCAB = len(ALPHABET)
LARGE_VOCAB = 2000  # ids in the substitution-matrix comparison


def network_like(rng, length, vocab=VOCAB):
    """A token sequence built from a few repeated, lightly mutated blocks."""
    motifs = [rng.integers(0, vocab, rng.integers(3, 12)) for _ in range(4)]
    out = []
    while sum(map(len, out)) < length:
        block = motifs[rng.integers(len(motifs))].copy()
        flip = rng.random(len(block)) < 0.1
        block[flip] = rng.integers(0, vocab, flip.sum())
        out.extend([block] * int(rng.integers(1, 4)))
    return np.concatenate(out)[:length].astype(np.int32)


def zoo_like(rng, n, length, vocab=LARGE_VOCAB, families=40):
    """n network-like sequences sharing a large vocabulary the way a model zoo does.

    Token popularity is Zipf-like (a few ops, such as activations and norms,
    occur everywhere; most shapes are rare). Each architecture family owns 8
    motifs drawn from it, and a network repeats, lightly mutated, 4 motifs of
    its family. Traced timm models at "shape" granularity have ~15 distinct
    ids per network and 100-160 per 64 networks; these have more (~25, ~450).
    """
    popularity = 1 / np.arange(1, vocab + 1) ** 1.1
    popularity /= popularity.sum()
    perm = rng.permutation(vocab)  # popular ids spread over op types and families

    def draw(k):
        return perm[rng.choice(vocab, k, p=popularity)]

    pools = [[draw(int(rng.integers(3, 12))) for _ in range(8)] for _ in range(families)]
    seqs = []
    for _ in range(n):
        pool = pools[rng.integers(families)]
        motifs = [pool[k] for k in rng.choice(len(pool), 4, replace=False)]
        target = int(rng.integers(int(length * 0.8), int(length * 1.2)))
        out = []
        while sum(map(len, out)) < target:
            block = motifs[rng.integers(len(motifs))].copy()
            flip = rng.random(len(block)) < 0.05
            block[flip] = draw(int(flip.sum()))
            out.extend([block] * int(rng.integers(1, 4)))
        seqs.append(np.concatenate(out)[:target].astype(np.int32))
    return seqs


def family_matrix(vocab=LARGE_VOCAB, per_op=20, ops_per_family=5):
    """Vocabulary.substitution_matrix(family=True) for synthetic ids: 1 on the
    diagonal, 0.5 between ids of one op type, 0 within a family, -1 elsewhere."""
    op = np.arange(vocab) // per_op
    family = op // ops_per_family
    S = np.full((vocab, vocab), -1.0)
    S[family[:, None] == family[None, :]] = 0
    S[op[:, None] == op[None, :]] = 0.5
    np.fill_diagonal(S, 1)
    return S


def best_time(fn, min_time=0.3, repeat=3):
    """Best per-call seconds over `repeat` rounds of at least `min_time` each."""
    best = float("inf")
    for _ in range(repeat):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def as_text(seq):
    return "".join(ALPHABET[t] for t in seq)


def tools():
    import parasail
    from Bio.Align import PairwiseAligner

    matrix = parasail.matrix_create(ALPHABET, 1, -1)
    bio = PairwiseAligner(mode="global", match_score=1, mismatch_score=-1,
                          open_gap_score=-1, extend_gap_score=-1)
    return parasail, matrix, bio


def single_pair(rng, lengths, quick):
    parasail, matrix, bio = tools()
    scoring = archalign.Scoring(match=1, mismatch=-1, gap=-1)
    rows = []
    for L in lengths:
        a, b = network_like(rng, L), network_like(rng, L)
        ta, tb = as_text(a), as_text(b)
        ours = archalign.score(a, b, scoring)
        theirs = parasail.nw_scan_16(ta, tb, 1, 1, matrix).score
        bio_score = bio.score(a, b)
        assert ours == theirs == bio_score, (L, ours, theirs, bio_score)
        cells = L * L / 1e9
        t_ours = best_time(lambda: archalign.score(a, b, scoring))
        t_par = best_time(lambda: parasail.nw_scan_16(ta, tb, 1, 1, matrix))
        t_bio = best_time(lambda: bio.score(a, b), repeat=1 if quick else 3)
        rows.append((f"single pair L={L}", cells / t_ours, cells / t_par, cells / t_bio))
    return rows


def all_pairs(rng, n, L, quick):
    parasail, matrix, bio = tools()
    scoring = archalign.Scoring(match=1, mismatch=-1, gap=-1)
    seqs = [network_like(rng, int(rng.integers(int(L * 0.8), int(L * 1.2)))) for _ in range(n)]
    texts = [as_text(s) for s in seqs]
    lens = np.array([len(s) for s in seqs], dtype=np.float64)
    cells = (np.outer(lens, lens).sum() + (lens ** 2).sum()) / 2 / 1e9  # upper triangle

    def parasail_loop():
        out = np.zeros((n, n))
        for i in range(n):
            profile = parasail.profile_create_16(texts[i], matrix)
            for j in range(i, n):
                out[i, j] = parasail.nw_scan_profile_16(profile, texts[j], 1, 1).score
        return out

    def bio_loop(rows):
        return [[bio.score(seqs[i], seqs[j]) for j in range(i, n)] for i in range(rows)]

    start = time.perf_counter()
    ref = parasail_loop()
    t_par = time.perf_counter() - start
    threads = archalign.effective_n_jobs(None)
    ours = {}
    for jobs in (1, threads):
        ours[jobs] = best_time(lambda: archalign.pairwise(seqs, scoring, n_jobs=jobs),
                               min_time=0.1, repeat=3)
    got = archalign.pairwise(seqs, scoring)
    assert np.array_equal(np.triu(got), ref), "archalign.pairwise disagrees with parasail scan"
    # Biopython is slow: time a slice of rows and scale by the cells it covered.
    rows_bio = max(1, n // (20 if quick else 5))
    start = time.perf_counter()
    bio_loop(rows_bio)
    t_bio_part = time.perf_counter() - start
    part_cells = sum(lens[i] * lens[i:].sum() for i in range(rows_bio)) / 1e9
    t_bio = t_bio_part * cells / part_cells
    label = f"all-pairs {n} x ~{L}"
    rows = [(f"{label}, 1 thread", cells / ours[1], cells / t_par, cells / t_bio,
             ours[1], t_par, t_bio)]
    if threads > 1:
        rows.append((f"{label}, {threads} threads", cells / ours[threads], cells / t_par,
                     cells / t_bio, ours[threads], t_par, t_bio))
    return rows


def distinct_ids(seqs, group=64):
    """Mean distinct ids per sequence and per `group` length-sorted sequences
    (what one pairwise() task's profile has to cover)."""
    order = np.argsort([-len(s) for s in seqs], kind="stable")
    per_group = [len(np.unique(np.concatenate([seqs[k] for k in order[i:i + group]])))
                 for i in range(0, len(seqs), group)]
    return np.mean([len(np.unique(s)) for s in seqs]), np.mean(per_group)


def substitution_vs_flat(rng, n, L, quick):
    S = family_matrix()
    data = [("zoo-like", zoo_like(rng, n, L)),
            ("no shared ids", [network_like(rng, int(rng.integers(int(L * 0.8), int(L * 1.2))),
                                            LARGE_VOCAB) for _ in range(n)])]
    rows = []
    for name, seqs in data:
        per_seq, per_task = distinct_ids(seqs)
        for gaps_name, gaps in [("linear -1", {"gap": -1}),
                                ("affine -2/-1", {"gap_open": -2, "gap_extend": -1})]:
            flat = archalign.Scoring(match=1, mismatch=-1, **gaps)
            family = archalign.Scoring(substitution=S, **gaps)
            got = archalign.pairwise(seqs, family)
            for i, j in [(0, 1), (2, n - 1)]:
                assert got[i, j] == archalign.score(seqs[i], seqs[j], family), (name, i, j)
            # Alternate the two so that load from elsewhere hits both alike.
            t_flat = t_family = float("inf")
            for _ in range(2 if quick else 4):
                t_flat = min(t_flat, best_time(lambda: archalign.pairwise(seqs, flat),
                                               min_time=0, repeat=1))
                t_family = min(t_family, best_time(lambda: archalign.pairwise(seqs, family),
                                                   min_time=0, repeat=1))
            rows.append((f"{name} ({per_seq:.0f} / {per_task:.0f} ids)", gaps_name,
                         t_flat, t_family))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="sequences in the all-pairs job")
    parser.add_argument("--len", type=int, default=300, help="mean length in the all-pairs job")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller Biopython sample")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"archalign {archalign.__version__}: OpenMP={archalign.openmp_enabled()}, "
          f"threads={archalign.effective_n_jobs(None)}")
    singles = single_pair(rng, (300, 1000, 3000), args.quick)
    pairs = all_pairs(rng, args.n, args.len, args.quick)
    head = (f"| {'task':<32} | {'archalign GCUPS':>15} | {'parasail scan':>13} | "
            f"{'Biopython':>9} | {'vs parasail':>11} | {'vs Biopython':>12} |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, ours, par, bio, *_ in singles + pairs:
        print(f"| {name:<32} | {ours:>15.2f} | {par:>13.2f} | {bio:>9.2f} | "
              f"{ours / par:>10.1f}x | {ours / bio:>11.1f}x |")
    print()
    for name, _, _, _, t_ours, t_par, t_bio in pairs:
        print(f"{name}: archalign {t_ours:.3f} s, parasail scan loop {t_par:.2f} s, "
              f"Biopython loop {t_bio:.1f} s (extrapolated from a slice of rows)")
    print()
    print(f"archalign.pairwise, {args.n} x ~{args.len}, flat vs family substitution matrix "
          f"(V={LARGE_VOCAB}; ids: distinct per sequence / per 64 sequences)")
    head = (f"| {'sequences':<32} | {'gaps':<12} | {'flat s':>7} | {'family s':>8} | "
            f"{'family / flat':>13} |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, gaps, t_flat, t_family in substitution_vs_flat(rng, args.n, args.len, args.quick):
        print(f"| {name:<32} | {gaps:<12} | {t_flat:>7.3f} | {t_family:>8.3f} | "
              f"{t_family / t_flat:>12.2f}x |")


if __name__ == "__main__":
    main()
