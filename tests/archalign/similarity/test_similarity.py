"""SimilarityMatrix, clustering, shortlisting and plots on sequences with known structure."""
from __future__ import annotations
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from scipy.cluster.hierarchy import linkage as scipy_linkage

from archalign import Scoring, pairwise
from archalign.similarity.matrix import SimilarityMatrix
from archalign.similarity.measures import adjusted_rand_index
from archalign.similarity.shortlist import Shortlist, shortlist_from_matrix


def family_panel(seed=0, per_family=5, families=4, length=60):
    """Sequences in families: members are mutated copies of a family template."""
    rng = np.random.default_rng(seed)
    labels, seqs, groups = [], [], []
    for f in range(families):
        template = rng.integers(0, 12, length)
        for k in range(per_family):
            s = template.copy()
            flip = rng.random(length) < 0.1
            s[flip] = rng.integers(0, 12, flip.sum())
            s = np.delete(s, rng.integers(0, length, int(rng.integers(0, 4))))
            labels.append(f"fam{f}_{k}")
            seqs.append(s)
            groups.append(f)
    return labels, seqs, groups


def matrix(similarity="normalized", scoring=None, **kw):
    scoring = scoring or Scoring()
    labels, seqs, groups = family_panel(**kw)
    scores = pairwise(seqs, scoring)
    sm = SimilarityMatrix.from_scores(labels, scores, similarity,
                                      lengths=[len(s) for s in seqs], scoring=scoring,
                                      settings={"granularity": "test"})
    return sm, groups


@pytest.mark.parametrize("scoring", [Scoring(), Scoring.paper(),
                                     Scoring(match=2, mismatch=-1, gap_open=-3, gap_extend=-1)])
def test_normalized_similarity_properties(scoring):
    sm, _ = matrix(scoring=scoring)
    v = sm.values
    np.testing.assert_array_equal(np.diag(v), 1.0)
    np.testing.assert_array_equal(v, v.T)
    assert v.min() >= 0 and v.max() <= 1
    d = sm.to_condensed()
    assert d.shape == (len(sm) * (len(sm) - 1) // 2,)
    scipy_linkage(d, method="average")  # scipy accepts it as is


def test_normalized_formula_known_values():
    s = Scoring()  # match 1, mismatch -1, gap -1
    seqs = [[1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8]]
    sm = SimilarityMatrix.from_scores("abc", pairwise(seqs, s), lengths=[4, 4, 4], scoring=s)
    assert sm.values[0, 1] == 1.0
    # a vs c: four mismatches score -4; all-gap floor -8; self average 4 -> (−4+8)/(4+8)
    assert sm.values[0, 2] == pytest.approx(4 / 12)


def test_correlation_similarity_matches_numpy():
    sm, _ = matrix("correlation")
    np.testing.assert_allclose(sm.values, np.corrcoef(sm.scores), atol=1e-12)
    assert sm.distance.max() <= 2


def test_clusters_recover_families():
    sm, groups = matrix()
    ids = sm.clusters(n_clusters=4)
    assert adjusted_rand_index(groups, ids) == 1.0
    agreement = sm.agreement(lambda label: label.split("_")[0])
    assert agreement["adjusted_rand_index"] == 1.0
    assert agreement["cophenetic_correlation"] > 0.9
    assert sum(len(g) for g in sm.groups(ids).values()) == len(sm)
    with pytest.raises(ValueError, match="exactly one"):
        sm.clusters()
    with pytest.raises(ValueError, match="Euclidean"):
        sm.linkage("ward")


def test_adjusted_rand_index_known_values():
    assert adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7]) == 1.0
    # sklearn's documented example: ARI([0,0,1,1],[0,0,1,2]) = 0.5714...
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(4 / 7)


@pytest.mark.parametrize("strategy", ["medoids", "farthest"])
def test_shortlist_one_per_family(strategy):
    sm, _ = matrix()
    result = sm.shortlist(4, strategy=strategy)
    assert len(set(name.split("_")[0] for name in result.names)) == 4
    forced = sm.shortlist(4, strategy=strategy, must_include=["fam2_3"], exclude=["fam0_0"])
    assert "fam2_3" in forced.names and "fam0_0" not in forced.names
    assert len(set(name.split("_")[0] for name in forced.names)) == 4


def test_medoid_is_the_most_central_member():
    sm, _ = matrix()
    result = shortlist_from_matrix(sm, 4, strategy="medoids")
    D = sm.distance
    for name, detail in zip(result.names, result.details):
        members = [sm.index(x) for x in detail["cluster"]]
        totals = D[np.ix_(members, members)].sum(axis=1)
        assert totals.min() == D[sm.index(name), members].sum()


def test_shortlist_bad_input():
    sm, _ = matrix()
    with pytest.raises(ValueError, match="not in the panel"):
        sm.shortlist(2, must_include=["nope"])
    with pytest.raises(ValueError, match="k must be"):
        sm.shortlist(0)
    with pytest.raises(ValueError, match="method"):
        sm.shortlist(2, method="random")


def test_save_load_roundtrip(tmp_path):
    sm, _ = matrix()
    sm.save(tmp_path / "m.npz")
    back = SimilarityMatrix.load(tmp_path / "m.npz")
    assert back.labels == sm.labels and back.settings == sm.settings
    np.testing.assert_array_equal(back.values, sm.values)
    np.testing.assert_array_equal(back.scores, sm.scores)
    sm.save(tmp_path / "m.csv")
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert len(lines) == len(sm) + 1 and lines[0].split(",")[1] == sm.labels[0]
    result = sm.shortlist(3)
    result.save(tmp_path / "s.json")
    assert Shortlist.load(tmp_path / "s.json").names == result.names
    with pytest.raises(FileNotFoundError, match="archalign matrix"):
        SimilarityMatrix.load(tmp_path / "missing.npz")


def test_nearest_and_submatrix():
    sm, _ = matrix()
    near = sm.nearest("fam1_0", k=3)
    assert all(name.startswith("fam1_") for name, _ in near)
    assert [v for _, v in near] == sorted((v for _, v in near), reverse=True)
    sub = sm.submatrix(["fam3_1", "fam0_2"])
    assert sub.values[0, 1] == sm.values[sm.index("fam3_1"), sm.index("fam0_2")]
    with pytest.raises(KeyError, match="closest"):
        sm.nearest("fam1_9")


def test_plots_return_figures():
    sm, _ = matrix()
    fig = sm.plot_dendrogram(n_clusters=4)
    leaves = fig.dendrogram_data["ivl"]
    assert sorted(leaves) == sorted(sm.labels)
    # leaves of one family are contiguous in the drawing
    fams = [x.split("_")[0] for x in leaves]
    assert sum(a != b for a, b in zip(fams, fams[1:])) == 3
    colours = fig.dendrogram_data["leaves_color_list"]
    assert len(set(colours)) == 4
    assert sm.plot_heatmap().axes


def test_big_panel_plots_stay_bounded():
    rng = np.random.default_rng(0)
    n = 300
    scores = rng.normal(size=(n, n))
    scores = scores + scores.T
    sm = SimilarityMatrix.from_scores([f"m{i}" for i in range(n)], scores, "correlation")
    fig = sm.plot_heatmap()
    assert max(fig.get_size_inches()) <= 41
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert 0 < sum(bool(x) for x in labels) <= 250
