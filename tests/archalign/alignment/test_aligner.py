"""The compiled aligner against the pure-Python reference, known answers and Biopython."""
from __future__ import annotations
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archalign
from archalign import Scoring, align, pairwise, score
from archalign.alignment import _nw_reference as ref

# The paper's VGG figure (DESIGN.md): layer-type tokens, +1 / -2 / -2.
VGG11 = "C R M C R M C R C R M C R C R M C R C R M A L R D L R D L"
VGG16 = "C C M C C M C C C M C C C M C C C M L L L"
VGG19 = "C C M C C M C C C C M C C C C M C C C C M L L L"
TYPES = {t: i for i, t in enumerate("CRMALD")}


def ids(text):
    return [TYPES[t] for t in text.split()]


def random_scorings(rng, vocab):
    sym = rng.integers(-4, 3, (vocab, vocab))
    return [
        Scoring(),
        Scoring.paper(),
        Scoring(match=2, mismatch=-1, gap_open=-3, gap_extend=-1),
        Scoring(match=1, mismatch=-1, gap_open=-5, gap_extend=0),  # free extension
        Scoring(substitution=np.triu(sym) + np.triu(sym, 1).T, gap=-2),
        Scoring(substitution=sym, gap_open=-2, gap_extend=-1),  # asymmetric
        Scoring(substitution=rng.integers(-4, 3, (vocab, vocab)) / 2, gap=-1.5),  # exact halves
        Scoring(substitution=rng.normal(size=(vocab, vocab)), gap_open=-1.3, gap_extend=-0.4),
    ]


def test_paper_vgg_scores():
    s = Scoring.paper()
    assert score(ids(VGG16), ids(VGG11), s) == -10
    assert score(ids(VGG16), ids(VGG19), s) == 15
    assert score(ids(VGG19), ids(VGG11), s) == -10
    matrix = pairwise([ids(VGG11), ids(VGG16), ids(VGG19)], s)
    np.testing.assert_array_equal(matrix[[1, 1, 2], [0, 2, 0]], [-10, 15, -10])


def test_wikipedia_gattaca():
    # Needleman-Wunsch article: GCATGCG vs GATTACA, match 1, mismatch -1, gap -1.
    code = {c: i for i, c in enumerate("ACGT")}
    a = [code[c] for c in "GCATGCG"]
    b = [code[c] for c in "GATTACA"]
    assert score(a, b) == 0
    assert align(a, b).score == 0


@pytest.mark.parametrize("seed", range(4))
def test_score_and_align_match_reference(seed):
    rng = np.random.default_rng(seed)
    vocab = 4
    scorings = random_scorings(rng, vocab)
    for _ in range(60):
        m, n = rng.integers(0, 14, 2)
        a, b = rng.integers(0, vocab, m), rng.integers(0, vocab, n)
        for s in scorings:
            expected = ref.score(a, b, s)
            got = score(a, b, s)
            result = align(a, b, s)
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
            assert result.score == got
            assert ref.path_score(a, b, result.pairs, s) == pytest.approx(expected, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=12), st.lists(st.integers(0, 3), max_size=12),
       st.integers(-3, 3), st.integers(-3, 0), st.integers(-4, 0), st.integers(-4, 0))
def test_hypothesis_against_reference(a, b, match, mismatch, gap_open, gap_extend):
    gap_open, gap_extend = min(gap_open, gap_extend), max(gap_open, gap_extend)
    s = Scoring(match=match, mismatch=mismatch, gap_open=gap_open, gap_extend=gap_extend)
    expected = ref.score(a, b, s)
    assert score(a, b, s) == expected
    result = align(a, b, s)
    assert result.score == expected
    assert ref.path_score(a, b, result.pairs, s) == expected


def test_edge_cases():
    s = Scoring(gap_open=-3, gap_extend=-1)
    assert score([], [], s) == 0
    assert score([1], [], s) == -3
    assert score([], [1, 2, 3], s) == -5
    assert score([7], [7], s) == 1
    assert align([], [], s).path.shape == (0, 2)
    # very unequal lengths: one long gap is cheaper than many short ones
    assert score([5], [5] + [1] * 50, s) == 1 - 3 - 49
    # all-gap optimum: mismatches so costly that gapping everything wins
    harsh = Scoring(match=1, mismatch=-10, gap=-1)
    assert score([1, 1, 1], [2, 2, 2], harsh) == -6
    assert align([1, 1, 1], [2, 2, 2], harsh).counts() == {"identical": 0, "substituted": 0,
                                                          "gaps": 6}


def test_ties_are_deterministic():
    a, b = [1, 2], [2, 1]
    first = align(a, b)
    for _ in range(3):
        np.testing.assert_array_equal(align(a, b).path, first.path)


def test_integer_width_switches_instead_of_wrapping():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 3, 150), rng.integers(0, 3, 140)
    for s in [Scoring(match=100, mismatch=-70, gap=-90),              # beyond int16
              Scoring(match=10**7, mismatch=-10**7, gap=-3 * 10**6)]:  # beyond int32
        expected = ref.score(a, b, s)
        assert score(a, b, s) == expected
        assert align(a, b, s).score == expected
        np.testing.assert_array_equal(pairwise([a, b], s)[0, 1], expected)


def test_long_sequences_use_int32_lanes_exactly():
    rng = np.random.default_rng(6)
    seqs = [rng.integers(0, 6, int(rng.integers(2000, 2600))) for _ in range(3)]
    s = Scoring.paper()  # bound (m + n) * 2 > 8000: int32 lanes
    got = pairwise(seqs, s)
    for i in range(3):
        for j in range(3):
            assert got[i, j] == score(seqs[i], seqs[j], s)


@pytest.mark.parametrize("n", [1, 2, 31, 32, 33, 70])
def test_pairwise_equals_loop(n):
    rng = np.random.default_rng(n)
    vocab = 5
    seqs = [rng.integers(0, vocab, int(rng.integers(0, 40))) for _ in range(n)]
    for s in random_scorings(rng, vocab):
        expected = np.array([[score(x, y, s) for y in seqs] for x in seqs])
        np.testing.assert_array_equal(pairwise(seqs, s, n_jobs=1), expected)
        np.testing.assert_array_equal(pairwise(seqs, s, n_jobs=2), expected)
        others = seqs[: max(1, n // 3)]
        np.testing.assert_array_equal(pairwise(seqs, s, others=others), expected[:, :len(others)])


def test_pairwise_sparse_large_ids():
    # ids far apart and above 2**15 still take the dense int16 route exactly
    rng = np.random.default_rng(1)
    seqs = [rng.choice([3, 40_000, 2**31 - 2], int(rng.integers(1, 30))) for _ in range(40)]
    expected = np.array([[score(x, y) for y in seqs] for x in seqs])
    np.testing.assert_array_equal(pairwise(seqs), expected)


def test_pairwise_symmetry_and_shapes():
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, 4, int(rng.integers(1, 30))) for _ in range(20)]
    m = pairwise(seqs)
    np.testing.assert_array_equal(m, m.T)
    assert m.dtype == np.float64
    assert pairwise([], Scoring()).shape == (0, 0)
    assert pairwise(seqs, others=[]).shape == (20, 0)


def test_biopython_agrees():
    Align = pytest.importorskip("Bio.Align")
    rng = np.random.default_rng(3)
    for go, ge in [(-1, -1), (-4, -1)]:
        bio = Align.PairwiseAligner(mode="global", match_score=2, mismatch_score=-1,
                                    open_gap_score=go, extend_gap_score=ge)
        s = Scoring(match=2, mismatch=-1, gap_open=go, gap_extend=ge)
        for _ in range(40):
            a = rng.integers(0, 4, int(rng.integers(1, 60))).astype(np.int32)
            b = rng.integers(0, 4, int(rng.integers(1, 60))).astype(np.int32)
            assert score(a, b, s) == bio.score(a, b)


def test_alignment_rendering_with_names():
    result = align(ids("C R M"), ids("C M"), Scoring.paper())
    names = list("CRMALD")
    text = result.format(names)
    assert text.splitlines() == ["C R M", "|   |", "C - M"]
    assert result.pairs == [(0, 0), (1, None), (2, 1)]
    wrapped = align(list(range(6)) * 10, list(range(6)) * 10).format(width=20)
    assert all(len(line) <= 20 for line in wrapped.splitlines())


@pytest.mark.parametrize("bad, exc, words", [
    ([1.5, 2.0], TypeError, "integer"),
    (["conv", "relu"], TypeError, "Vocabulary"),
    ([[1, 2], [3, 4]], ValueError, "1-D"),
    ([1, -2], ValueError, "negative"),
    ([1, 2**40], ValueError, r"2\*\*31"),
])
def test_bad_sequences(bad, exc, words):
    with pytest.raises(exc, match=words):
        score(bad, [1])
    with pytest.raises(exc, match=words):
        pairwise([[1], bad])


def test_bad_scoring():
    with pytest.raises(ValueError, match="covers ids 0..2"):
        score([0, 3], [1], Scoring(substitution=np.eye(3), gap=-1))
    with pytest.raises(ValueError, match="square"):
        Scoring(substitution=np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        Scoring(substitution=[[1, np.nan], [0, 1]])
    with pytest.raises(ValueError, match="finite"):
        Scoring(match=np.nan)
    with pytest.raises(ValueError, match="not both"):
        Scoring(match=1, substitution=np.eye(2))
    with pytest.raises(ValueError, match="gap_extend"):
        Scoring(gap_open=-3)
    with pytest.raises(ValueError, match="gap_extend >= gap_open"):
        Scoring(gap_open=-1, gap_extend=-3)
    with pytest.raises(TypeError, match="Scoring"):
        score([1], [1], scoring={"match": 1})
    with pytest.raises(ValueError, match="n_jobs=0"):
        pairwise([[1]], n_jobs=0)


def test_scoring_paths_and_repr():
    assert Scoring().integer_path
    assert Scoring(match=0.5, mismatch=-0.25, gap=-1).integer_path
    assert not Scoring(match=np.pi).integer_path
    assert not Scoring(substitution=[[1, 0], [2, 1]]).symmetric
    assert repr(Scoring.paper()) == "Scoring(match=1, mismatch=-2, gap=-2)"
    assert Scoring(gap_open=-2, gap_extend=-2) == Scoring(gap=-2)


@pytest.mark.skipif(bool(os.environ.get("ARCHALIGN_SKIP_OPENMP_TEST")),
                    reason="ARCHALIGN_SKIP_OPENMP_TEST is set")
def test_openmp_enabled():
    # A serial build is legal but slow; fail loudly unless explicitly accepted.
    assert archalign.openmp_enabled(), "built without OpenMP (set ARCHALIGN_SKIP_OPENMP_TEST=1)"


# --- substitution matrices in pairwise(): per-item profiles and their fallback


def _substitution_scoring(rng, vocab, lo, hi, affine, symmetric=True):
    S = rng.integers(lo, hi + 1, (vocab, vocab))
    if symmetric:
        S = np.triu(S) + np.triu(S, 1).T
    gaps = {"gap_open": -3, "gap_extend": -1} if affine else {"gap": -2}
    return Scoring(substitution=S, **gaps)


def _few_ids_each(rng, n, vocab, ids_per_seq, lengths):
    """n sequences, each over its own few ids drawn from a large vocabulary."""
    return [rng.choice(rng.choice(vocab, ids_per_seq, replace=False),
                       int(rng.integers(*lengths))) for _ in range(n)]


def _loop(seqs, others, s):
    return np.array([[score(x, y, s) for y in others] for x in seqs])


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("width", [16, 32])
def test_pairwise_substitution_large_vocabulary(width, affine):
    # V = 3000 but each 64-query task holds a few hundred ids at most: the
    # profile covers only those, and must give exactly the scalar scores.
    rng = np.random.default_rng(width + affine)
    vocab, max_len = 3000, 40
    lo, hi = (-3, 2) if width == 16 else (-400, 300)
    seqs = _few_ids_each(rng, 70, vocab, 6, (0, max_len + 1))
    others = _few_ids_each(rng, 45, vocab, 6, (1, max_len + 1))
    s = _substitution_scoring(rng, vocab, lo, hi, affine)
    # the int16 lanes take items whose score bound fits int16, int32 the rest
    fits16 = (2 * max_len + 2) * s.integer_form.maxabs <= archalign.alignment._nw.I16_BOUND
    assert fits16 == (width == 16)
    square = pairwise(seqs, s)
    np.testing.assert_array_equal(square, _loop(seqs, seqs, s))
    rect = pairwise(seqs, s, others=others, n_jobs=2)
    np.testing.assert_array_equal(rect, _loop(seqs, others, s))
    for i, j in [(0, 1), (5, 3), (69, 44)]:
        assert rect[i, j] == ref.score(seqs[i], others[j], s)
    asym = _substitution_scoring(rng, vocab, lo, hi, affine, symmetric=False)
    np.testing.assert_array_equal(pairwise(seqs, asym, n_jobs=1), _loop(seqs, seqs, asym))


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("width", [16, 32])
@pytest.mark.parametrize("cap_rows", [0, 6])
def test_pairwise_substitution_profile_capacity(monkeypatch, cap_rows, width, affine):
    # Shrink the per-thread profile to cap_rows rows: tasks split into runs of
    # queries that fit, and a query with more distinct ids gathers instead.
    rng = np.random.default_rng(cap_rows + width + affine)
    length = 20  # every target block is 20 columns wide, so the capacity is exact
    seqs = [rng.choice(rng.choice(500, int(rng.integers(2, 13)), replace=False), length)
            for _ in range(75)]
    others = [rng.choice(rng.choice(500, int(rng.integers(2, 13)), replace=False), length)
              for _ in range(40)]
    lo, hi = (-3, 2) if width == 16 else (-400, 300)
    s = _substitution_scoring(rng, 500, lo, hi, affine)
    assert ((2 * length + 2) * s.integer_form.maxabs <= archalign.alignment._nw.I16_BOUND) == (width == 16)
    row_bytes = length * archalign.alignment._nw.LANES * width // 8
    monkeypatch.setattr(archalign.alignment.core, "_PROFILE_BYTES", max(1, cap_rows * row_bytes))
    distinct = [len(np.unique(x)) for x in seqs]
    if cap_rows:  # both paths run: queries that fit a profile and ones that do not
        assert min(distinct) <= cap_rows < max(distinct)
    np.testing.assert_array_equal(pairwise(seqs, s), _loop(seqs, seqs, s))
    np.testing.assert_array_equal(pairwise(seqs, s, others=others), _loop(seqs, others, s))
    assert pairwise(seqs[:2], s)[0, 1] == ref.score(seqs[0], seqs[1], s)
