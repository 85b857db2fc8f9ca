"""One vocabulary (issue 28): scipy's and scikit-learn's names in every signature
(``n_jobs``, ``n_clusters``, ``method=`` the linkage, ``strategy=`` a shortlist's
choice); the names they replace still work for one release, each call warning once;
and a SimilarityMatrix that reads like an array and a labelled table."""
from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pytest

import archalign
from archalign import Scoring, pairwise
from archalign.similarity.matrix import SimilarityMatrix
from archalign.similarity.shortlist import Shortlist, shortlist_from_matrix
from archalign.tracing.calls import Call, Trace
from archalign.tracing.specs import resolve_traces
from archalign.tracing.zoo import trace_many


def family_panel():
    """12 sequences in 3 families of 4, plus one odd one out (a singleton cluster)."""
    rng = np.random.default_rng(1)
    labels, seqs = [], []
    for f in range(3):
        template = rng.integers(0, 10, 40)
        for k in range(4):
            s = template.copy()
            flip = rng.random(40) < 0.1
            s[flip] = rng.integers(0, 10, flip.sum())
            labels.append(f"fam{f}_{k}")
            seqs.append(s)
    labels.append("odd")
    seqs.append(rng.integers(10, 14, 25))
    scoring = Scoring()
    return SimilarityMatrix.from_scores(labels, pairwise(seqs, scoring), lengths=[len(s) for s in seqs],
                                        scoring=scoring, settings={"granularity": "test"})


@pytest.fixture(scope="module")
def sm():
    return family_panel()


def _one_warning(call, *needles):
    """Run ``call``; exactly one FutureWarning, naming ``needles``; return its result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    future = [w for w in caught if issubclass(w.category, FutureWarning)]
    assert len(future) == 1, [str(w.message) for w in future]
    for needle in needles:
        assert needle in str(future[0].message)
    assert future[0].filename == __file__  # stacklevel: the caller's line
    return result


# ------------------------------------------------------------------ signatures
NEW_NAMES = [
    (archalign.similarity_matrix, {"n_jobs"}, {"jobs"}),
    (archalign.shortlist, {"n_jobs"}, {"jobs"}),
    (archalign.trace_many, {"n_jobs"}, {"jobs"}),
    (resolve_traces, {"n_jobs"}, {"jobs"}),
    (SimilarityMatrix.clusters, {"n_clusters", "method"}, {"n"}),
    (SimilarityMatrix.agreement, {"n_clusters", "method"}, {"n"}),
    (SimilarityMatrix.shortlist, {"strategy", "method"}, set()),
    (shortlist_from_matrix, {"strategy", "method"}, set()),
    (SimilarityMatrix.plot_dendrogram, {"n_clusters", "method", "shortlist", "ax", "title"}, set()),
    (SimilarityMatrix.plot_heatmap, {"n_clusters", "method", "shortlist", "ax", "annotate",
                                     "cmap", "title"}, set()),
    (SimilarityMatrix.to_html, {"n_clusters", "method", "shortlist", "alignments", "traces",
                                "cache_dir", "title"}, set()),
    (Shortlist, {"names", "strategy", "details", "settings", "encoding", "scoring"}, {"method"}),
]


@pytest.mark.parametrize("func, new, old", NEW_NAMES,
                         ids=[getattr(f, "__qualname__", str(f)) for f, _, _ in NEW_NAMES])
def test_the_new_names_are_in_every_signature(func, new, old):
    parameters = inspect.signature(func).parameters
    assert new <= set(parameters), sorted(parameters)
    assert not old & set(parameters)
    # nothing hidden behind **kwargs: help() lists every option
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values())


# ------------------------------------------------------------ the old names still work
def test_n_is_now_n_clusters(sm):
    new = sm.clusters(n_clusters=3)
    old = _one_warning(lambda: sm.clusters(n=3), "n= is now n_clusters=")
    np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(sm.clusters(3), new)  # positional, as before
    grouping = [x.split("_")[0] for x in sm.labels]
    assert _one_warning(lambda: sm.agreement(grouping, n=3)) == sm.agreement(grouping,
                                                                            n_clusters=3)
    with pytest.raises(ValueError, match="give n_clusters= alone"):
        sm.clusters(n=3, n_clusters=3)


@pytest.mark.parametrize("strategy", ["medoids", "farthest"])
def test_a_strategy_given_as_method_is_still_the_strategy(sm, strategy):
    new = sm.shortlist(3, strategy=strategy)
    old = _one_warning(lambda: sm.shortlist(3, method=strategy), "strategy=")
    assert old == new and old.strategy == strategy
    direct = _one_warning(lambda: shortlist_from_matrix(sm, 3, method=strategy))
    assert direct == new
    assert sm.shortlist(3, strategy) == new  # positional, as before
    if strategy != "medoids":  # (strategy="medoids", the default, reads as not given)
        return
    with pytest.raises(ValueError, match="give strategy= alone"):
        sm.shortlist(3, strategy="farthest", method=strategy)


def test_method_is_the_linkage_of_a_medoid_shortlist(sm):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the linkage's own name warns about nothing
        for method in ("average", "complete", "single", "weighted"):
            picks = sm.shortlist(4, method=method)
            assert picks.settings["linkage"] == method
            # one medoid per cluster of that linkage's cut
            ids = sm.clusters(n_clusters=4, method=method)
            assert sorted(ids[sm.index(x)] for x in picks.names) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="Euclidean"):
        sm.shortlist(3, method="ward")


def test_shortlist_method_is_now_strategy(sm, tmp_path):
    picks = sm.shortlist(3)
    assert _one_warning(lambda: picks.method, "Shortlist.method is now Shortlist.strategy") \
        == picks.strategy == "medoids"
    made = _one_warning(lambda: Shortlist(["a", "b"], method="farthest"))
    assert made.strategy == "farthest"
    # a file written before the rename names the strategy "method"
    data = json.loads(picks.save(tmp_path / "new.json").read_text())
    assert "strategy" in data and "method" not in data
    data["method"] = data.pop("strategy")
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert Shortlist.load(tmp_path / "old.json") == picks


def _trace(name: str, ops) -> Trace:
    """A trace from (op, params) pairs, without tracing any model."""
    return Trace(name, "meta", [Call(i, "module", op, f"m{i}", params)
                                for i, (op, params) in enumerate(ops)])


def test_jobs_is_now_n_jobs():
    conv, relu, lin = ("Conv2d", {"k": [3, 3], "s": [1, 1], "g": 1}), ("ReLU", {}), ("Linear", {})
    traces = [_trace("a", [conv, relu] * 3 + [lin]), _trace("b", [conv, relu, lin, lin])]
    labels, _ = _one_warning(lambda: resolve_traces(traces, jobs=1), "jobs= is now n_jobs=")
    assert labels == ["a", "b"]
    sm = _one_warning(lambda: archalign.similarity_matrix(traces, jobs=1, progress=False),
                      "similarity_matrix: jobs= is now n_jobs=")
    np.testing.assert_array_equal(
        sm.values, archalign.similarity_matrix(traces, n_jobs=1, progress=False).values)
    picks = _one_warning(lambda: archalign.shortlist(traces, 1, jobs=1, progress=False))
    assert picks == archalign.shortlist(traces, 1, n_jobs=1, progress=False)
    # trace_many reads the old name before it traces anything: 0 is refused as n_jobs
    with pytest.warns(FutureWarning, match="trace_many: jobs= is now n_jobs="), \
            pytest.raises(ValueError, match="n_jobs must be at least 1"):
        trace_many(["resnet18"], jobs=0, progress=False)


# ------------------------------------------------------ an array and a labelled table
def test_a_matrix_reads_like_an_array(sm):
    assert isinstance(sm.similarity, str)  # the measure's name; the matrix is values
    a = np.asarray(sm)
    assert a.shape == (len(sm), len(sm)) and a.dtype == np.float64
    np.testing.assert_array_equal(a, sm.values)
    assert np.asarray(sm, dtype=np.float32).dtype == np.float32
    i, j = sm.index("fam0_1"), sm.index("fam2_3")
    assert sm["fam0_1", "fam2_3"] == sm[i, j] == sm[i - len(sm), j] == sm.values[i, j]
    assert isinstance(sm["fam0_1", "fam2_3"], float)
    np.testing.assert_array_equal(sm[i, :], sm.values[i])
    np.testing.assert_array_equal(sm[["fam0_1", 0], ["odd", "fam1_0"]],
                                  sm.values[np.ix_([i, 0], [sm.index("odd"),
                                                            sm.index("fam1_0")])])
    assert "odd" in sm and "even" not in sm
    with pytest.raises(KeyError, match="closest"):
        sm["fam0_9", "odd"]
    with pytest.raises(ValueError, match="outside this matrix"):
        sm[len(sm), 0]
    with pytest.raises(ValueError, match="two keys"):
        sm["odd"]
    with pytest.raises(TypeError):
        iter(sm)


def test_loc_looks_up_by_label(sm):
    assert sm.loc["fam0_1", "fam2_3"] == sm["fam0_1", "fam2_3"]
    row = sm.loc["fam0_1"]
    assert list(row) == sm.labels and row["fam0_1"] == 1.0
    assert row == sm.loc["fam0_1", :] == dict(zip(sm.labels, sm.values[sm.index("fam0_1")]))
    assert sm.loc["odd", ["fam0_0", "fam1_0"]] == {"fam0_0": sm["odd", "fam0_0"],
                                                   "fam1_0": sm["odd", "fam1_0"]}
    assert sm.loc[["fam0_0", "fam1_0"], "odd"] == {"fam0_0": sm["fam0_0", "odd"],
                                                   "fam1_0": sm["fam1_0", "odd"]}
    assert sm.loc[["odd"], ["odd", "fam0_0"]].shape == (1, 2)
    with pytest.raises(ValueError, match="takes labels"):
        sm.loc[0, 1]
