"""Depth and width beside the similarity: recorded, said when 1.0 hides them, and the
tie rule that keeps nearest neighbours and medoids independent of the models' order."""
from __future__ import annotations
import html
import json
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import archalign
from archalign.cli import main
from archalign.similarity.matrix import SimilarityMatrix
from archalign.similarity.ties import TIE_RULE
from archalign.tracing.specs import resolve_traces
from archalign.tracing.token_cache import load_token_records, token_path
from archalign.tracing.zoo_cache import cache_path

# resnet18 / resnet34: one design at two depths; resnet50 / wide_resnet50_2: one design
# and one depth at two widths; vgg11 the outsider
MODELS = ["resnet18", "resnet34", "resnet50", "wide_resnet50_2", "vgg11"]
SHUFFLED = ["vgg11", "wide_resnet50_2", "resnet34", "resnet50", "resnet18"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="module")
def sm(cache):
    return archalign.similarity_matrix(MODELS, cache_dir=cache, progress=False)


@pytest.fixture(scope="module")
def shuffled(cache):
    return archalign.similarity_matrix(SHUFFLED, cache_dir=cache, progress=False)


def test_matrix_records_depth_and_parameter_count(sm, cache):
    _, traces = resolve_traces(MODELS, cache_dir=cache, progress=False)
    assert sm.unrolled_lengths == [len(t) for t in traces]
    assert sm.num_params == [t.num_params for t in traces]
    assert sm.num_params[0] == 11_689_512  # timm's resnet18
    assert sm.settings["num_params"] == sm.num_params


def test_token_files_carry_parameter_counts(sm, cache):
    # the matrix was made from token files; one written before num_params joined them
    # (schema 1) is rebuilt from its trace rather than read without the count
    _, traces = resolve_traces(["resnet18"], cache_dir=cache, progress=False)
    trace_file = cache_path("resnet18", cache_dir=cache)
    side = token_path(trace_file)
    outer = json.loads(side.read_text())
    payload = json.loads(outer["payload"])
    del payload["num_params"]
    side.write_text(json.dumps(dict(outer, schema=1, payload=json.dumps(payload))))
    records, missing = load_token_records({"resnet18": trace_file})
    assert missing == [] and records["resnet18"].num_params == traces[0].num_params
    assert json.loads(side.read_text())["schema"] != 1


def test_similarity_one_says_what_it_hides(sm):
    assert sm.values[0, 1] == 1.0
    d18, d34 = sm.unrolled_lengths[:2]
    assert d18 < d34
    assert sm.hidden_change("resnet18", "resnet34") == (
        f"depth {d18} → {d34} layers, parameters 11.7M → 21.8M")
    assert sm.hidden_change("resnet34", "resnet18").startswith(f"depth {d34} → {d18} layers")
    # same depth, other width: only the parameter count differs
    assert sm.unrolled_lengths[2] == sm.unrolled_lengths[3]
    assert sm.hidden_change("resnet50", "wide_resnet50_2") == "parameters 25.6M → 68.9M"
    # below 1 the similarity speaks for itself; a model hides nothing from itself
    assert sm.values[0, 2] < 1 and sm.hidden_change("resnet18", "resnet50") is None
    assert sm.hidden_change("resnet18", "resnet18") is None
    assert [(a, b) for a, b, _ in sm.hidden_changes()] == [("resnet18", "resnet34"),
                                                          ("resnet50", "wide_resnet50_2")]


def test_nearest_breaks_ties_by_depth_whatever_the_order(sm, shuffled):
    for label in MODELS:
        assert sm.nearest(label, k=4) == shuffled.nearest(label, k=4)
    # resnet34 and resnet18 are equally similar to resnet50; resnet34 is nearer in depth
    near = [x for x, _ in sm.nearest("resnet50", k=3)]
    assert near == ["wide_resnet50_2", "resnet34", "resnet18"]
    # resnet50 and wide_resnet50_2 tie for resnet34 in similarity and depth: the closer
    # parameter count decides
    near = sm.nearest("resnet34", k=3)
    assert near[1][1] == near[2][1] and [x for x, _ in near] == ["resnet18", "resnet50",
                                                                   "wide_resnet50_2"]


def uniform(labels, depths, params):
    """Every model equally similar to every other: only the tie rule orders them."""
    n = len(labels)
    values = np.full((n, n), 0.5)
    np.fill_diagonal(values, 1.0)
    return SimilarityMatrix(labels, values, values, settings={"unrolled_lengths": depths,
                                                              "num_params": params})


def test_tie_rule_depth_then_parameters_then_label():
    labels = ["e", "d", "c", "b", "a"]
    depths = [100, 90, 110, 150, 110]
    params = [10**6, 10**6, 2 * 10**6, 10**6, 4 * 10**6]
    sm = uniform(labels, depths, params)
    # from "e" (100 layers, 1M): d and c/a are 10 layers away; d is closer in size
    # (equal), c (2M) closer than a (4M); b is farthest in depth
    assert [x for x, _ in sm.nearest("e", k=4)] == ["d", "c", "a", "b"]
    for perm in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        other = uniform([labels[i] for i in perm], [depths[i] for i in perm],
                        [params[i] for i in perm])
        assert other.nearest("e", k=4) == sm.nearest("e", k=4)
    # nothing known: the label alone decides
    blind = SimilarityMatrix(labels, sm.values, sm.values)
    assert [x for x, _ in blind.nearest("c", k=4)] == ["a", "b", "d", "e"]


def test_medoid_does_not_depend_on_the_order(sm, shuffled):
    # resnet18 and resnet34 tie for the most central model; the medians decide
    assert sm.shortlist(1).names == shuffled.shortlist(1).names
    for strategy in ("medoids", "farthest"):
        assert set(sm.shortlist(2, strategy=strategy).names) == set(
            shuffled.shortlist(2, strategy=strategy).names)
    # all equally far apart: the member nearest the median depth (110) is the medoid
    labels = ["e", "d", "c", "b", "a"]
    depths, params = [100, 90, 110, 150, 120], [10**6] * 5
    for perm in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        tied = uniform([labels[i] for i in perm], [depths[i] for i in perm],
                       [params[i] for i in perm])
        assert tied.shortlist(1).names == ["c"]


def test_save_load_and_submatrix_keep_depths(sm, tmp_path):
    back = SimilarityMatrix.load(sm.save(tmp_path / "m.npz"))
    assert back.unrolled_lengths == sm.unrolled_lengths and back.num_params == sm.num_params
    sub = sm.submatrix(["resnet34", "resnet18"])
    assert sub.unrolled_lengths == sm.unrolled_lengths[1::-1]
    assert sub.num_params == sm.num_params[1::-1]
    assert sub.hidden_change("resnet18", "resnet34") == sm.hidden_change("resnet18", "resnet34")


def test_old_matrix_without_records_still_loads(sm, tmp_path):
    settings = {k: v for k, v in sm.settings.items()
                if k not in ("unrolled_lengths", "num_params")}
    old = SimilarityMatrix(sm.labels, sm.scores, sm.values, sm.similarity, settings)
    back = SimilarityMatrix.load(old.save(tmp_path / "old.npz"))
    assert back.unrolled_lengths == [None] * len(sm) and back.num_params == [None] * len(sm)
    assert back.values[0, 1] == 1.0 and back.hidden_change("resnet18", "resnet34") is None
    assert not back.hidden_mask().any() and back.hidden_changes() == []
    # with depths unknown, the tie between resnet18 and resnet34 falls to the label
    assert [x for x, _ in back.nearest("resnet50", k=3)] == ["wide_resnet50_2", "resnet18",
                                                              "resnet34"]
    assert back.plot_heatmap().axes[0].get_xlabel() == ""
    text = back.to_html(tmp_path / "old.html", alignments=False).read_text()
    data = _report_data(text)
    assert data["depths"] == data["params"] == [None] * len(sm)
    assert f"layer calls known for 0 of {len(sm)} models" in text


def test_heatmap_marks_cells_that_hide_a_change(sm):
    ax = sm.plot_heatmap().axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("1.00*") == 4  # two pairs, both triangles
    assert texts.count("1.00") == len(sm)  # the diagonal
    assert "(2 pairs)" in ax.get_xlabel()
    plain = sm.plot_heatmap(annotate=False).axes[0]
    assert not plain.texts and len(plain.collections[0].get_offsets()) == 4


def test_cli_notes_pairs_at_one(sm, cache, tmp_path, capsys):
    out = tmp_path / "sim.npz"
    assert main(["matrix", *MODELS, "--out", str(out), "--cache-dir", str(cache),
                 "--no-progress"]) == 0
    assert "note: similarity 1.00 hides a depth or width change for 2 pair(s)" in (
        capsys.readouterr().out)
    assert main(["cluster", str(out), "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    resnets = next(i for i, x in enumerate(lines) if "resnet18" in x and x.startswith("cluster"))
    note = lines[resnets + 1]
    assert note.startswith("  similarity 1.00, other depth or width: ")
    assert "resnet18 = resnet34 (depth" in note
    assert "resnet50 = wide_resnet50_2 (parameters 25.6M → 68.9M)" in note


def _report_data(text: str) -> dict:
    return json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.DOTALL)[1])


def test_report_embeds_depths_and_explains_ties(sm, tmp_path):
    text = sm.to_html(tmp_path / "r.html", alignments=False).read_text()
    data = _report_data(text)
    position = [sm.index(x) for x in data["labels"]]
    assert data["depths"] == [sm.unrolled_lengths[i] for i in position]
    assert data["params"] == [sm.num_params[i] for i in position]
    assert html.escape(TIE_RULE) in text  # the settings table explains ties


# ------------------------------------------------------------------------ in a browser
# (the ``browser`` fixture: tests/archalign/conftest.py)
def test_report_hover_says_same_design(browser, sm, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from test_report import _open

    page = sm.to_html(tmp_path / "r.html", alignments=False)
    _open(browser, page)
    # the page's text for every pair is Python's
    for a in sm.labels:
        for b in sm.labels:
            assert browser.execute_script("return window.archalignReport.hiddenChange("
                                          "arguments[0], arguments[1])", a, b
                                          ) == sm.hidden_change(a, b), (a, b)
    canvas = browser.find_element(By.ID, "view")
    x, y = browser.execute_script(
        "return window.archalignReport.cellCentre('resnet18', 'resnet34')")
    rect = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
    ActionChains(browser).move_to_element_with_offset(
        canvas, x - rect["left"] - rect["width"] / 2, y - rect["top"] - rect["height"] / 2
    ).perform()
    tip = browser.find_element(By.ID, "tip").text
    assert tip.endswith(f"1.0000 (same design; {sm.hidden_change('resnet18', 'resnet34')})")
