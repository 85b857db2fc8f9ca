"""Settings objects (issue 27): EncodingSettings and Scoring round-trip through their
dicts (and JSON), the old keywords map onto them in one place with the same result as
``settings=``, and a preset fills what is not given but refuses a conflict in one line."""
from __future__ import annotations
import dataclasses
import json

import numpy as np
import pytest

import archalign
from archalign.cli import main
from archalign.tokens.encode import encode_traces
from archalign.tokens.scoring import Scoring
from archalign.tokens.settings import EncodingSettings, preset_values, resolve_settings
from archalign.tokens.vocabulary import Vocabulary
from archalign.tracing.calls import Call, Trace
from archalign.utils.errors import DataError, UsageError


def _trace(name, ops, route="meta"):
    """A trace from (op, params) pairs, without tracing any model."""
    return Trace(name, route, [Call(i, "module", op, f"m{i}", params)
                               for i, (op, params) in enumerate(ops)])


CONV3 = ("Conv2d", {"in": 8, "out": 8, "k": [3, 3], "s": [1, 1], "g": 1})
CONV1 = ("Conv2d", {"in": 8, "out": 16, "k": [1, 1], "s": [1, 1], "g": 1})
BN, RELU, GELU = ("BatchNorm2d", {"c": 8}), ("ReLU", {}), ("GELU", {})
BLOCK = [CONV3, BN, RELU]
TRACES = [_trace("a", BLOCK * 3 + [("add", {})]),
          _trace("b", [CONV1, ("LayerNorm", {"shape": [16]}), GELU] * 2 + [RELU]),
          _trace("c", [CONV1, BN] + BLOCK * 5 + [("Linear", {"in": 8, "out": 4})])]


def _json_round_trip(d: dict) -> dict:
    return json.loads(json.dumps(d, allow_nan=False))


# ------------------------------------------------------------------- round trips
@pytest.mark.parametrize("settings", [
    EncodingSettings(),
    EncodingSettings("type", rolled=False),
    EncodingSettings("full", family=True, max_period=4, as_exported=True),
    EncodingSettings(family=0.3, as_exported=False),
])
def test_encoding_settings_round_trip(settings):
    assert EncodingSettings.from_dict(settings.to_dict()) == settings
    assert EncodingSettings.from_dict(_json_round_trip(settings.to_dict())) == settings
    assert set(settings.to_dict()) == {"granularity", "rolled", "family", "max_period",
                                       "as_exported"}


def test_encoding_settings_defaults_are_archalign_defaults():
    s = EncodingSettings()
    assert (s.granularity, s.rolled, s.family, s.max_period, s.as_exported) == (
        archalign.defaults.GRANULARITY, archalign.defaults.ROLLED, archalign.defaults.FAMILY,
        archalign.defaults.MAX_PERIOD, None)
    assert archalign.EncodingSettings is archalign.tokens.EncodingSettings is EncodingSettings
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rolled = False


@pytest.mark.parametrize("scoring", [
    Scoring(), Scoring.paper(), Scoring(gap_open=-8, gap_extend=-0.5),
    Scoring(match=2.5, mismatch=-1.25, gap=-0.1), Scoring(gap_open=-1, gap_extend=-1),
    Vocabulary.from_traces(TRACES, "shape").scoring(gap_open=-3, gap_extend=-1, family=True),
    Scoring(substitution=[[2.0, -1.0], [-0.5, 1.0]], gap=-1),  # asymmetric
])
def test_scoring_round_trip(scoring):
    back = Scoring.from_dict(scoring.to_dict())
    assert back == scoring and repr(back) == repr(scoring)
    assert back.affine == scoring.affine and back.integer_path == scoring.integer_path
    assert Scoring.from_dict(_json_round_trip(scoring.to_dict())) == scoring
    # a writer that keeps the matrix as an array (a matrix file) puts it back
    d = scoring.to_dict(matrix=False)
    if scoring.substitution is not None:
        assert "substitution" not in d
        d["substitution"] = scoring.substitution
    assert Scoring.from_dict(d) == scoring


def test_scoring_equality_compares_every_score_exactly():
    S = Vocabulary.from_traces(TRACES).substitution_matrix(family=True)
    T = S.copy()
    T[0, 1] = np.nextafter(T[0, 1], 0)
    assert Scoring(substitution=S) == Scoring(substitution=S.copy())
    assert Scoring(substitution=S) != Scoring(substitution=T)
    assert Scoring(substitution=S) != Scoring()
    assert Scoring(gap=-1) == Scoring(gap_open=-1, gap_extend=-1)
    assert Scoring(gap=-1) != Scoring(gap=-1.5) and Scoring() != Scoring(mismatch=-2)


@pytest.mark.parametrize("d, key", [
    ({"granularity": "shape", "rolled": True, "family": False, "max_period": None,
      "as_exported": None, "colour": "red"}, "'colour'"),
    ({"granularity": "shape", "rolled": True, "family": False, "max_period": None},
     "'as_exported'"),
    ({"granularity": "shape", "rolled": "yes", "family": False, "max_period": None,
      "as_exported": None}, "rolled"),
    ({"granularity": "big", "rolled": True, "family": False, "max_period": None,
      "as_exported": None}, "granularity"),
    ({"granularity": "shape", "rolled": True, "family": "x", "max_period": None,
      "as_exported": None}, "family"),
    ({"granularity": "shape", "rolled": True, "family": False, "max_period": 1.5,
      "as_exported": None}, "max_period"),
    (["shape"], "dict"),
])
def test_encoding_settings_from_dict_names_what_is_wrong(d, key):
    with pytest.raises(DataError) as info:
        EncodingSettings.from_dict(d)
    assert key in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("d, key", [
    ({"match": 1, "mismatch": -1, "gap_open": -1, "gap_extend": -1, "gap": -1}, "'gap'"),
    ({"match": 1, "mismatch": -1, "gap_open": -1}, "'gap_extend'"),
    ({"gap_open": -1, "gap_extend": -1}, "'match'"),
    ({"match": "1", "mismatch": -1, "gap_open": -1, "gap_extend": -1}, "'match'"),
    ({"match": 1, "mismatch": -1, "gap_open": True, "gap_extend": -1}, "'gap_open'"),
    ({"gap_open": -1, "gap_extend": -1, "substitution": "eye"}, "'substitution'"),
    ({"match": 1, "mismatch": -1, "gap_open": -1, "gap_extend": -1,
      "substitution": [[1.0]]}, "match/mismatch or a substitution"),
    ({"match": 1, "mismatch": -1, "gap_open": -1, "gap_extend": -3}, "gap_extend"),
    ("Scoring()", "dict"),
])
def test_scoring_from_dict_names_what_is_wrong(d, key):
    with pytest.raises(DataError) as info:
        Scoring.from_dict(d)
    assert key in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, field", [
    ({"granularity": "big"}, "granularity"), ({"rolled": "yes"}, "rolled"),
    ({"family": 1.5}, "family"), ({"family": "x"}, "family"), ({"max_period": 0}, "max_period"),
    ({"max_period": True}, "max_period"), ({"as_exported": 1}, "as_exported"),
])
def test_encoding_settings_refuse_bad_fields(kwargs, field):
    with pytest.raises(UsageError) as info:
        EncodingSettings(**kwargs)
    assert field in str(info.value) and "\n" not in str(info.value)


def test_encoding_settings_normalise_what_they_hold():
    s = EncodingSettings(rolled=np.bool_(False), family=np.float64(0.25),
                         max_period=np.int64(3))
    assert (s.rolled, s.family, s.max_period) == (False, 0.25, 3)
    assert type(s.family) is float and type(s.max_period) is int
    assert EncodingSettings(family=0).family is False  # no credit, as the keyword read it
    json.dumps(s.to_dict())


# ------------------------------------------------------ keywords and settings=
KEYWORD_CASES = [
    {},
    {"granularity": "type", "rolled": False},
    {"granularity": "full", "family": True, "gap": -1},
    {"family": 0.3, "gap_open": -3, "gap_extend": -1, "max_period": 2},
    {"rolled": True, "max_period": 1, "as_exported": True},
    {"scoring": Scoring(match=2, mismatch=-1, gap_open=-4, gap_extend=-1)},
    {"granularity": "type", "scoring": Scoring.paper(), "rolled": False},
]


def _as_objects(kw: dict) -> dict:
    """The same setting as settings= and scoring=, built by hand."""
    fields = {k: v for k, v in kw.items() if k in ("granularity", "rolled", "family",
                                                     "max_period", "as_exported")}
    scoring = kw.get("scoring")
    if scoring is None:
        gaps = archalign.defaults.resolve_gaps(kw.get("gap"), kw.get("gap_open"),
                                               kw.get("gap_extend"))
        scoring = Scoring(match=1, mismatch=-1, gap_open=gaps[0], gap_extend=gaps[1])
    return {"settings": EncodingSettings(**fields), "scoring": scoring}


@pytest.mark.parametrize("kw", KEYWORD_CASES)
def test_keywords_map_to_the_objects_identically(kw):
    objects = _as_objects(kw)
    assert resolve_settings(**kw) == (objects["settings"], objects["scoring"])
    by_keywords, by_objects = encode_traces(TRACES, **kw), encode_traces(TRACES, **objects)
    assert by_keywords.scoring == by_objects.scoring
    assert by_keywords.settings == by_objects.settings
    assert by_keywords.vocab.tokens == by_objects.vocab.tokens
    for x, y in [*zip(by_keywords.seqs, by_objects.seqs),
                 *zip(by_keywords.counts, by_objects.counts)]:
        np.testing.assert_array_equal(x, y)
    # what encode_traces reports applied is a setting that gives the same again
    again = encode_traces(TRACES, settings=by_keywords.settings, scoring=objects["scoring"])
    assert again.scoring == by_keywords.scoring


@pytest.mark.parametrize("kw", [KEYWORD_CASES[0], KEYWORD_CASES[2], KEYWORD_CASES[5]])
def test_similarity_matrix_takes_either_form_with_one_result(kw):
    a = archalign.similarity_matrix(TRACES, progress=False, **kw)
    b = archalign.similarity_matrix(TRACES, progress=False, **_as_objects(kw))
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.encoding == b.encoding and a.scoring == b.scoring
    assert {k: v for k, v in a.settings.items() if k != "versions"} == {
        k: v for k, v in b.settings.items() if k != "versions"}


def test_family_adds_credit_to_a_flat_scoring_given_with_settings():
    flat = Scoring(match=2, mismatch=-1, gap=-1)
    enc = encode_traces(TRACES, settings=EncodingSettings(family=True), scoring=flat)
    vocab = Vocabulary.from_traces(TRACES, "shape")
    assert enc.scoring == vocab.scoring(gap=-1, match=2, mismatch=-1, family=True)
    # a scoring with its own substitution matrix is used as it is
    given = vocab.scoring(gap=-2, family=0.25)
    assert encode_traces(TRACES, settings=EncodingSettings(family=True),
                         scoring=given).scoring is given


@pytest.mark.parametrize("call, needle", [
    (lambda: resolve_settings(EncodingSettings(rolled=False), rolled=True), "rolled=True"),
    (lambda: resolve_settings(EncodingSettings("type"), granularity="full"), "granularity"),
    (lambda: resolve_settings(EncodingSettings(), max_period=3), "max_period"),
    (lambda: resolve_settings(scoring=Scoring(), gap=-1), "gap="),
    (lambda: resolve_settings(scoring=Scoring(), family=True), "family="),
    (lambda: resolve_settings(settings={"granularity": "type"}), "EncodingSettings"),
    (lambda: resolve_settings(scoring="paper"), "Scoring"),
    (lambda: resolve_settings(gap_open=-2), "gap_extend="),
])
def test_conflicting_keywords_are_refused_in_one_line(call, needle):
    with pytest.raises(UsageError) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_keywords_that_agree_with_settings_are_accepted():
    s = EncodingSettings("type", rolled=False, max_period=4)
    assert resolve_settings(s, granularity="type", rolled=0, max_period=4)[0] == s


# ------------------------------------------------------------------------ presets
def test_a_preset_fills_only_what_is_not_given():
    paper = preset_values("paper")
    settings, scoring = resolve_settings(preset="paper")
    assert settings == EncodingSettings("type", rolled=False) and scoring == Scoring.paper()
    assert paper["similarity"] == "correlation"
    # what it does not fix is the caller's; what agrees with it is accepted
    settings, scoring = resolve_settings(preset="paper", max_period=3, as_exported=True,
                                         granularity="type", rolled=False, family=False,
                                         gap=-2)
    assert settings == EncodingSettings("type", rolled=False, max_period=3, as_exported=True)
    assert scoring == Scoring.paper()
    assert resolve_settings(EncodingSettings("type", rolled=False), Scoring.paper(),
                            preset="paper") == (EncodingSettings("type", rolled=False),
                                                Scoring.paper())


@pytest.mark.parametrize("kw, key, fixed", [
    ({"rolled": True}, "rolled=True", "rolled=False"),
    ({"granularity": "shape"}, "granularity='shape'", "granularity='type'"),
    ({"family": True}, "family=True", "family=False"),
    ({"gap": -1}, "gap=-1", "gap=-2"),
    ({"gap_open": -8, "gap_extend": -0.5}, "gap_open=-8", "gap_open=-2"),
    ({"scoring": Scoring()}, "scoring=Scoring(match=1, mismatch=-1, gap=-1)",
     "scoring=Scoring(match=1, mismatch=-2, gap=-2)"),
    ({"settings": EncodingSettings()}, "settings= has granularity='shape'",
     "granularity='type'"),
])
def test_a_preset_refuses_a_conflict_in_one_line(kw, key, fixed):
    with pytest.raises(UsageError) as info:
        resolve_settings(preset="paper", **kw)
    text = str(info.value)
    assert "\n" not in text and "preset='paper'" in text and key in text and fixed in text
    assert "drop " in text  # the fix


def test_similarity_matrix_refuses_a_preset_conflict_before_tracing():
    # an unknown model would fail to trace: the refusal comes first
    for kw, needle in (({"rolled": True}, "rolled=True"),
                       ({"similarity": "normalized"}, "similarity='normalized'")):
        with pytest.raises(UsageError, match="preset='paper'") as info:
            archalign.similarity_matrix(["no_such_model_at_all"], preset="paper",
                                        progress=False, **kw)
        assert needle in str(info.value) and "\n" not in str(info.value)
    sm = archalign.similarity_matrix(TRACES, preset="paper", rolled=False, progress=False,
                                     similarity="correlation", max_period=2)
    assert sm.similarity == "correlation" and sm.scoring == Scoring.paper()
    assert sm.encoding == EncodingSettings("type", rolled=False, max_period=2,
                                           as_exported=False)
    assert sm.settings["preset"] == "paper"


def test_the_cli_refuses_a_preset_conflict_in_one_line(tmp_path, capsys):
    out = str(tmp_path / "m.npz")
    assert main(["matrix", "resnet18", "resnet34", "--preset", "paper", "--similarity",
                 "normalized", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--preset paper fixes" in err and "drop --similarity" in err
    assert "--similarity correlation" in err  # the preset's value
    assert main(["matrix", "resnet18", "resnet34", "--preset", "paper", "-g", "full", "--gap",
                 "-1", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drop --granularity, --gap" in err
