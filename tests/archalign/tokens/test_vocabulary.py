"""Vocabulary: ids, the substitution matrix (flat and family-aware), the Scoring it feeds."""
from __future__ import annotations
import numpy as np
import pytest

from archalign.tokens.vocabulary import FAMILIES, Vocabulary, family_of, op_type
from archalign.tracing.calls import Call, Trace


def _trace(name, ops):
    """A trace from (op, params) pairs, without tracing any model."""
    return Trace(name, "meta", [Call(i, "module", op, f"m{i}", params)
                                for i, (op, params) in enumerate(ops)])


CONV3 = ("Conv2d", {"in": 8, "out": 8, "k": [3, 3], "s": [1, 1], "g": 1})
CONV1 = ("Conv2d", {"in": 8, "out": 16, "k": [1, 1], "s": [1, 1], "g": 1})
A = _trace("a", [CONV3, ("BatchNorm2d", {"c": 8}), ("ReLU", {}), ("add", {})])
B = _trace("b", [CONV1, ("LayerNorm", {"shape": [16]}), ("GELU", {}),
                 ("Linear", {"in": 16, "out": 4})])


def test_ids_are_sorted_tokens_and_encode_decode_round_trip():
    v = Vocabulary.from_traces([B, A])
    assert v.tokens == sorted(set(A.tokens()) | set(B.tokens()))
    assert Vocabulary.from_traces({"a": A, "b": B}).tokens == v.tokens  # order-free
    ids = v.encode(A)
    assert ids.dtype == np.int32 and ids.flags.c_contiguous and ids.shape == (4,)
    assert v.decode(ids) == A.tokens()
    assert len(v) == 7 and "ReLU" in v and v["ReLU"] == v.tokens.index("ReLU")


def test_granularity_decides_what_is_one_token():
    assert len(Vocabulary.from_traces([A, B], "type")) == 7  # both convs are "Conv2d"
    shape = Vocabulary.from_traces([A, B], "shape")
    assert {"Conv2d(k=3,s=1,g=1)", "Conv2d(k=1,s=1,g=1)"} <= set(shape)
    assert shape.encode(A)[0] != shape.encode(B)[0]


def test_unknown_tokens_and_bad_input():
    v = Vocabulary(["ReLU"])
    with pytest.raises(KeyError, match="from_traces"):
        v.encode(["GELU"])
    assert v.encode(["GELU", "ReLU"], add=True).tolist() == [1, 0] and len(v) == 2
    with pytest.raises(ValueError, match="granularity"):
        v.encode(A)  # built from strings: no granularity to read a Trace at
    with pytest.raises(TypeError, match="sequence of tokens"):
        v.encode("ReLU")
    with pytest.raises(IndexError, match="out of range"):
        v.decode([5])
    with pytest.raises(ValueError, match="empty"):
        Vocabulary().substitution_matrix()
    with pytest.raises(ValueError, match="larger than mismatch"):
        v.substitution_matrix(match=-1, mismatch=1)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        v.substitution_matrix(family=1.5)


def test_flat_matrix():
    v = Vocabulary(["a", "b", "c"])
    S = v.substitution_matrix(match=1, mismatch=-2)
    assert S.shape == (3, 3) and S.dtype == np.float64
    np.testing.assert_array_equal(S, [[1, -2, -2], [-2, 1, -2], [-2, -2, 1]])


TOKENS = ["Conv2d(k=3,s=1,g=1)", "Conv2d(k=1,s=1,g=1)", "Conv1d", "BatchNorm2d", "LayerNorm",
          "ReLU", "GELU", "scaled_dot_product_attention", "matmul", "add", "cat", "Foo"]


def test_family_matrix_values():
    v = Vocabulary(TOKENS)
    S = v.substitution_matrix(match=1, mismatch=-1, family=True)
    i = {t: k for k, t in enumerate(TOKENS)}

    def s(a, b):
        return S[i[a], i[b]]
    assert s("Conv2d(k=3,s=1,g=1)", "Conv2d(k=1,s=1,g=1)") == 0.5  # same op type
    assert s("Conv2d(k=3,s=1,g=1)", "Conv1d") == 0.0  # conv variants
    assert s("BatchNorm2d", "LayerNorm") == 0.0  # norm layers
    assert s("ReLU", "GELU") == 0.0  # activations
    assert s("scaled_dot_product_attention", "matmul") == 0.0  # attention ops
    assert s("add", "cat") == 0.0  # ways to merge branches
    assert s("Conv1d", "ReLU") == -1.0 and s("Foo", "add") == -1.0
    assert np.all(np.diag(S) == 1) and np.array_equal(S, S.T)


def test_family_scores_stay_exact_under_integer_scaling():
    v = Vocabulary(TOKENS)
    for match, mismatch in [(1, -1), (1, -2), (2, -3)]:
        for family in (True, 0.25, 0.5):
            S = v.substitution_matrix(match, mismatch, family=family)
            assert np.all(S * 8 == np.round(S * 8))
            assert mismatch <= S.min() and S.max() == match
    S = v.substitution_matrix(1, -2, family=0.25)
    assert S[0, 1] == -2 + 0.625 * 3 and S[0, 2] == -2 + 0.25 * 3


@pytest.mark.parametrize("op, family", [
    ("Conv2d", "conv"), ("StdConv2dSame", "conv"), ("MyConv3x3", "conv"),
    ("BatchNormAct2d", "norm"), ("LayerNorm2d", "norm"), ("RMSNorm", "norm"),
    ("SiLU", "activation"), ("HardSwish", "activation"), ("QuickGELU", "activation"),
    ("AttentionPool2d", "attention"), ("Softmax", "attention"),
    ("AdaptiveAvgPool2d", "pool"), ("mean", "pool"), ("DropPath", "dropout"),
    ("permute", "reshape"), ("Flatten", "reshape"), ("Frobnicate", None),
])
def test_family_table(op, family):
    assert family_of(op + "(k=3)") == family_of(op) == family
    assert op_type(op + "(k=3,s=1)") == op


def test_every_table_entry_is_a_known_family():
    assert set(FAMILIES.values()) == {"conv", "linear", "norm", "activation", "attention",
                                      "pool", "merge", "reshape", "resample", "dropout",
                                      "embedding"}


def test_scoring_and_alignment_over_vocabulary_ids():
    from archalign import score
    from archalign.tokens.scoring import Scoring

    v = Vocabulary.from_traces([A, B])
    linear = v.scoring(gap=-2, family=True)
    assert isinstance(linear, Scoring) and linear.gap_open == linear.gap_extend == -2
    np.testing.assert_array_equal(linear.substitution, v.substitution_matrix(family=True))
    affine = v.scoring(gap_open=-3, gap_extend=-1)
    assert (affine.gap_open, affine.gap_extend) == (-3, -1)
    assert v.scoring().gap_open == -1
    a, b = v.encode(A), v.encode(B)
    # Flat: 1 match (Conv2d), 3 mismatches. Family-aware: norm/act/merge-vs-linear
    # pairs: Conv2d 1 + BatchNorm~LayerNorm 0 + ReLU~GELU 0 + add/Linear -1 = 0.
    assert score(a, b, v.scoring(gap=-2)) == 1 - 3
    assert score(a, b, v.scoring(gap=-2, family=True)) == 0
    assert score(a, a, v.scoring(family=True)) == 4


def test_json_round_trip():
    v = Vocabulary.from_traces([A, B], "shape")
    back = Vocabulary.from_dict(v.to_dict())
    assert back.tokens == v.tokens and back.granularity == "shape"
