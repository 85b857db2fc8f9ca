"""A matrix's setting (issue 27) is stored as objects and read back: a saved and loaded
matrix reproduces its EncodingSettings and Scoring, passing them back in makes the same
matrix, a report of the loaded matrix is the report of the original, shortlists keep
them, and files written before the objects were stored still load and report."""
from __future__ import annotations
import json

import numpy as np
import pytest

import archalign
from archalign.similarity.matrix import MatrixFileError, SimilarityMatrix
from archalign.similarity.shortlist import Shortlist
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import EncodingSettings
from archalign.tokens.vocabulary import Vocabulary
from archalign.tracing.calls import Call, Trace
from archalign.utils.io import arrays_digest


def _trace(name, ops, num_params=None):
    """A trace from (op, params) pairs, without tracing any model."""
    return Trace(name, "meta", [Call(i, "module", op, f"m{i}", params)
                                for i, (op, params) in enumerate(ops)], num_params=num_params)


CONV3 = ("Conv2d", {"in": 8, "out": 8, "k": [3, 3], "s": [1, 1], "g": 1})
CONV1 = ("Conv2d", {"in": 8, "out": 16, "k": [1, 1], "s": [1, 1], "g": 1})
DW = ("Conv2d", {"in": 8, "out": 8, "k": [3, 3], "s": [1, 1], "g": 8})
BN, RELU, GELU = ("BatchNorm2d", {"c": 8}), ("ReLU", {}), ("GELU", {})
LN, LIN = ("LayerNorm", {"shape": [16]}), ("Linear", {"in": 8, "out": 4})
TRACES = [_trace("net_a", [CONV3, BN, RELU] * 3 + [("add", {}), LIN], 1000),
          _trace("net_b", [CONV3, BN, RELU] * 5 + [("add", {}), LIN], 1800),
          _trace("net_c", [CONV1, LN, GELU] * 2 + [LIN, GELU, LIN], 700),
          _trace("net_d", [CONV3, BN, RELU, DW, BN, RELU] * 2 + [LIN], 900)]
LABELS = [t.model for t in TRACES]

SETTINGS = {
    "default": {},
    "paper": {"preset": "paper"},
    "family": {"family": True, "gap": -1},
    "keywords": {"granularity": "full", "rolled": False, "gap_open": -3, "gap_extend": -1},
    "given": {"scoring": Scoring(match=2, mismatch=-1, gap_open=-4, gap_extend=-1)},
    "substitution": {"scoring": Vocabulary.from_traces(TRACES, "shape").scoring(
        gap=-1, family=0.25)},
}
_NEW_MEMBERS = ("encoding", "scoring", "substitution")


@pytest.fixture(scope="module")
def matrices():
    return {name: archalign.similarity_matrix(TRACES, progress=False, **kw)
            for name, kw in SETTINGS.items()}


@pytest.fixture(scope="module")
def saved(matrices, tmp_path_factory):
    folder = tmp_path_factory.mktemp("matrices")
    return {name: sm.save(folder / f"{name}.npz") for name, sm in matrices.items()}


def _same_matrix(a: SimilarityMatrix, b: SimilarityMatrix) -> None:
    assert a.labels == b.labels and a.similarity == b.similarity
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_saved_matrix_reproduces_its_settings_objects(name, matrices, saved):
    sm = matrices[name]
    assert isinstance(sm.encoding, EncodingSettings) and isinstance(sm.scoring, Scoring)
    back = SimilarityMatrix.load(saved[name])
    _same_matrix(back, sm)
    assert back.settings == sm.settings  # the record of earlier releases, unchanged
    assert back.encoding == sm.encoding and back.scoring == sm.scoring
    assert repr(back.scoring) == repr(sm.scoring)
    # the record and the objects say the same
    assert sm.settings["granularity"] == sm.encoding.granularity
    assert sm.settings["rolled"] == sm.encoding.rolled
    assert sm.settings["as_exported"] is sm.encoding.as_exported is False
    assert (sm.settings["gap_open"], sm.settings["gap_extend"]) == (sm.scoring.gap_open,
                                                                    sm.scoring.gap_extend)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_the_loaded_objects_make_the_same_matrix_again(name, saved):
    back = SimilarityMatrix.load(saved[name])
    again = archalign.similarity_matrix(TRACES, similarity=back.similarity,
                                        settings=back.encoding, scoring=back.scoring,
                                        progress=False)
    _same_matrix(again, back)
    assert again.encoding == back.encoding and again.scoring == back.scoring


def test_what_the_objects_hold_for_each_setting(matrices):
    assert matrices["default"].encoding == EncodingSettings(as_exported=False)
    assert matrices["paper"].encoding == EncodingSettings("type", rolled=False,
                                                          as_exported=False)
    assert matrices["paper"].scoring == Scoring.paper()
    # family credit: the setting's scoring is the flat one the credit was added to
    assert matrices["family"].encoding.family is True
    assert matrices["family"].scoring == Scoring(match=1, mismatch=-1, gap=-1)
    assert matrices["family"].settings["scoring"].startswith("Scoring(substitution=")
    assert matrices["keywords"].scoring == Scoring(gap_open=-3, gap_extend=-1)
    assert matrices["given"].scoring == SETTINGS["given"]["scoring"]
    assert matrices["substitution"].scoring == SETTINGS["substitution"]["scoring"]


def test_a_substitution_matrix_is_an_array_member_under_the_digest(saved):
    members = dict(np.load(saved["substitution"], allow_pickle=False))
    scoring = json.loads(str(members["scoring"]))
    assert "substitution" not in scoring and set(scoring) == {"gap_open", "gap_extend"}
    np.testing.assert_array_equal(members["substitution"],
                                  SETTINGS["substitution"]["scoring"].substitution)
    assert json.loads(str(members["encoding"])) == EncodingSettings(
        as_exported=False).to_dict()
    assert "substitution" not in dict(np.load(saved["default"], allow_pickle=False))
    assert str(members["digest"]) == arrays_digest(
        {m: a for m, a in members.items() if m != "digest"})


def _rewrite(path, digest: bool, **changes):
    members = dict(np.load(path, allow_pickle=False))
    members.update(changes)
    members = {m: a for m, a in members.items() if a is not None}
    if digest:
        members["digest"] = np.array(arrays_digest(
            {m: a for m, a in members.items() if m != "digest"}))
    np.savez_compressed(path, **members)


@pytest.mark.parametrize("change, digest, needle", [
    ({"encoding": json.dumps(dict(EncodingSettings().to_dict(), rolled=False))}, False,
     "SHA-256"),
    ({"substitution": np.eye(7)}, False, "SHA-256"),
    ({"encoding": json.dumps(dict(EncodingSettings().to_dict(), colour=1))}, True, "'colour'"),
    ({"scoring": json.dumps({"gap_open": -1, "gap_extend": "x"})}, True, "'gap_extend'"),
    ({"scoring": None}, True, "substitution matrix without the scoring"),
    ({"encoding": "{"}, True, "not JSON"),
])
def test_damaged_setting_members_are_refused_in_one_line(saved, tmp_path, change, digest,
                                                         needle):
    path = tmp_path / "m.npz"
    path.write_bytes(saved["substitution"].read_bytes())
    _rewrite(path, digest, **{k: v if not isinstance(v, str) else np.array(v)
                              for k, v in change.items()})
    with pytest.raises(MatrixFileError, match="not an archalign matrix file") as info:
        SimilarityMatrix.load(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["default", "paper", "family", "given", "substitution"])
def test_a_report_of_the_loaded_matrix_is_the_report_of_the_original(name, matrices, saved,
                                                                     tmp_path):
    sm, back = matrices[name], SimilarityMatrix.load(saved[name])
    original = sm.to_html(tmp_path / "a.html", traces=TRACES, shortlist=["net_c"]).read_text()
    loaded = back.to_html(tmp_path / "b.html", traces=TRACES, shortlist=["net_c"]).read_text()
    assert loaded == original
    data = json.loads(original.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    assert data["sequences"] is not None  # alignments embedded, from the stored setting
    has_matrix = data["scoring"]["substitution"] is not None
    assert has_matrix == (name in ("family", "substitution"))


def test_submatrix_and_shortlists_keep_the_setting(matrices, saved, tmp_path):
    sm = matrices["family"]
    sub = sm.submatrix(["net_c", "net_a"])
    assert sub.encoding == sm.encoding and sub.scoring == sm.scoring
    streaming = archalign.shortlist(TRACES, 2, family=True, gap=-1, progress=False)
    by_objects = archalign.shortlist(TRACES, 2, settings=sm.encoding, scoring=sm.scoring,
                                     progress=False)
    assert by_objects.names == streaming.names and by_objects.details == streaming.details
    for result in (sm.shortlist(2), sm.shortlist(2, strategy="farthest"), streaming):
        assert result.encoding == sm.encoding and result.scoring == sm.scoring
        back = Shortlist.load(result.save(tmp_path / "s.json"))
        assert back == result
    # a hand-given substitution matrix travels in full, and a shortlist without a
    # setting (older files, hand-written ones) still loads
    given = matrices["substitution"].shortlist(2)
    assert Shortlist.load(given.save(tmp_path / "g.json")).scoring == given.scoring
    Shortlist(["net_a"], "medoids").save(tmp_path / "old.json")
    old = json.loads((tmp_path / "old.json").read_text())
    del old["encoding"], old["scoring"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert Shortlist.load(tmp_path / "old.json").scoring is None


def test_a_damaged_shortlist_setting_is_one_line(matrices, tmp_path):
    path = matrices["default"].shortlist(2).save(tmp_path / "s.json")
    data = json.loads(path.read_text())
    data["encoding"]["rolled"] = "yes"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="is not a shortlist file") as info:
        Shortlist.load(path)
    assert "'encoding'" in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------ files from earlier releases
def _as_older_file(path, out):
    """``path`` as a release before the setting members wrote it: the five members and
    their digest."""
    members = dict(np.load(path, allow_pickle=False))
    old = {m: members[m] for m in ("labels", "scores", "values", "similarity", "settings")}
    np.savez_compressed(out, **old, digest=np.array(arrays_digest(old)))
    return out


@pytest.mark.parametrize("name, recovered", [
    ("default", True), ("paper", True), ("family", True), ("keywords", True),
    ("given", False), ("substitution", False)])
def test_an_older_file_loads_and_its_setting_is_recovered_from_its_record(
        name, recovered, matrices, saved, tmp_path):
    sm = matrices[name]
    old = SimilarityMatrix.load(_as_older_file(saved[name], tmp_path / "old.npz"))
    _same_matrix(old, sm)
    assert old.settings == sm.settings and old.encoding == sm.encoding
    if recovered:
        assert old.scoring == sm.scoring
        html = old.to_html(tmp_path / "old.html", traces=TRACES).read_text()
        assert html == sm.to_html(tmp_path / "new.html", traces=TRACES).read_text()
    else:  # scores given by hand were recorded only as text: no guess
        assert old.scoring is None
        with pytest.raises(ValueError, match="only as the text.*--no-alignments"):
            old.to_html(tmp_path / "old.html", traces=TRACES)
        assert old.to_html(tmp_path / "old.html", alignments=False).stat().st_size > 5_000


def test_a_matrix_built_by_hand_holds_no_setting(tmp_path):
    values = np.eye(3) * 0.5 + 0.5
    sm = SimilarityMatrix(["a", "b", "c"], values, values, settings={"granularity": "shape"})
    back = SimilarityMatrix.load(sm.save(tmp_path / "m.npz"))
    assert back.encoding is None and back.scoring is None
    assert set(np.load(tmp_path / "m.npz").files).isdisjoint(_NEW_MEMBERS)
    with pytest.raises(ValueError, match="EncodingSettings"):
        SimilarityMatrix(["a"], np.eye(1), np.eye(1), encoding={"granularity": "shape"})
